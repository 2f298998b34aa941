"""relto.audit: the transparency log.

An append-only RFC 9162 Merkle log of every decision and administrative change,
stored in the database with its subtree hashes; C2SP signed checkpoints, witness
cosignatures, and offline verification.

Safe entry points:

- :class:`TransparencyLog` -- append (``record`` is the durable, group-committed
  :class:`relto.events.AuditSink`), prove, sign checkpoints.
- :class:`Witness` -- cosign checkpoints that extend what it saw; refuse forks and
  rollbacks.
- :func:`verify_log` -- re-derive a stored log and find the first tampered index.
- :func:`verify_inclusion` / :func:`verify_consistency` -- check proofs offline.
"""

from relto.audit.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from relto.audit.errors import (
    AuditError,
    ForkRefused,
    InvalidNote,
    InvalidProof,
    KeyFileError,
    LogTampered,
    RollbackRefused,
    UnknownKey,
    WitnessRefused,
)
from relto.audit.keys import load_or_create_signer, load_signer, write_new_signer
from relto.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from relto.audit.note import (
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_verifier,
    sign_note,
)
from relto.audit.service import ConsistencyProof, InclusionProof, TransparencyLog
from relto.audit.verify import Finding, VerifyReport, verify_log
from relto.audit.witness import FileWitnessState, MemoryWitnessState, Witness

__all__ = [
    "AuditError",
    "Checkpoint",
    "ConsistencyProof",
    "CosignatureVerifier",
    "FileWitnessState",
    "Finding",
    "ForkRefused",
    "InclusionProof",
    "InvalidNote",
    "InvalidProof",
    "KeyFileError",
    "LogTampered",
    "MemoryWitnessState",
    "NoteSigner",
    "NoteVerifier",
    "RollbackRefused",
    "SignedCheckpoint",
    "TransparencyLog",
    "UnknownKey",
    "VerifyReport",
    "Witness",
    "WitnessRefused",
    "leaf_hash",
    "load_or_create_signer",
    "load_signer",
    "open_checkpoint",
    "open_note",
    "parse_verifier",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "write_new_signer",
]
