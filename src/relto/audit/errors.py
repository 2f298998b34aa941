"""The transparency log's errors.

::

    relto.errors.ReltoError
    └── AuditError                    anything the transparency log refuses
        ├── InvalidProof              (also InvalidInput) a proof, hash or size that does
        │                             not verify or is malformed; nothing is trusted
        ├── InvalidNote               (also InvalidInput) a signed note, key or checkpoint
        │   │                         that is malformed or whose signature does not verify
        │   └── UnknownKey            no signature from a trusted key on the note
        ├── WitnessRefused            a witness will not cosign this checkpoint
        │   ├── RollbackRefused       smaller than the last checkpoint it cosigned
        │   ├── ForkRefused           not consistent with the last checkpoint it cosigned
        │   └── SizeConflict          the client's "old size" is not the witness's
        │                             (``size`` says what the witness has)
        ├── LogTampered               the stored log no longer matches a checkpoint
        │                             (``first_index`` says where it starts to differ)
        ├── NotCosigned               no checkpoint of the log is cosigned (yet) by the
        │                             witness asked for (a partner auditor's nation)
        ├── PartnerPageRejected       a partner node's page of entries for an auditor
        │                             does not verify (``reason``, ``index`` say where)
        └── KeyFileError              (also ConfigError) a key file that is missing,
                                      malformed or readable by others

Bad external data raises one of these; a caller's misuse raises ``ValueError`` or
``TypeError``. Messages never carry private key material.
"""

from __future__ import annotations

from relto.errors import ConfigError, InvalidInput, ReltoError

__all__ = [
    "AuditError",
    "ForkRefused",
    "InvalidNote",
    "InvalidProof",
    "KeyFileError",
    "LogTampered",
    "NotCosigned",
    "PartnerPageRejected",
    "RollbackRefused",
    "SizeConflict",
    "UnknownKey",
    "WitnessRefused",
]


class AuditError(ReltoError):
    """Base of the transparency log's errors."""

    code = "audit_error"


class InvalidProof(AuditError, InvalidInput):
    """A Merkle proof, hash or tree size is malformed or does not verify."""

    code = "invalid_proof"


class InvalidNote(AuditError, InvalidInput):
    """A signed note, verifier key or checkpoint is malformed or fails to verify."""

    code = "invalid_note"


class UnknownKey(InvalidNote):
    """The note carries no verified signature from any trusted key."""

    code = "unknown_key"


class WitnessRefused(AuditError):
    """A witness refuses to cosign a checkpoint."""

    code = "witness_refused"


class RollbackRefused(WitnessRefused):
    """The checkpoint is older (smaller) than the last one the witness cosigned."""

    code = "rollback_refused"


class ForkRefused(WitnessRefused):
    """The checkpoint is not consistent with the last one the witness cosigned.

    ``same_size`` is true when the sizes match and the roots differ (a split view);
    false when the consistency proof does not verify.
    """

    code = "fork_refused"

    def __init__(self, message: str, *, same_size: bool = False) -> None:
        super().__init__(message)
        self.same_size = same_size


class SizeConflict(WitnessRefused):
    """The submitted old size is not the size of the witness's last cosigned checkpoint."""

    code = "size_conflict"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class LogTampered(AuditError):
    """The stored log does not match a signed checkpoint."""

    code = "log_tampered"

    def __init__(self, message: str, *, first_index: int | None = None) -> None:
        super().__init__(message)
        self.first_index = first_index


class NotCosigned(AuditError):
    """No checkpoint of this log carries a cosignature by the witness asked for."""

    code = "not_cosigned"


class PartnerPageRejected(AuditError):
    """A page of a partner node's log entries, served to an auditor of another
    nation, does not verify: ``reason`` is one of ``malformed``,
    ``checkpoint_signature``, ``no_cosignature``, ``wrong_nation``,
    ``out_of_range``, ``inclusion`` or ``not_concerned``; ``index`` the entry, if
    one is to blame."""

    code = "partner_page_rejected"

    def __init__(self, message: str, *, reason: str, index: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.index = index


class KeyFileError(AuditError, ConfigError):
    """A key file is missing, malformed, or readable by other users."""

    code = "key_file_error"
