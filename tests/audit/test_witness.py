"""A witness cosigns only checkpoints that extend the last one it cosigned."""

from __future__ import annotations

from pathlib import Path

import pytest

from relto.audit import (
    FileWitnessState,
    ForkRefused,
    InvalidNote,
    NoteSigner,
    RollbackRefused,
    TransparencyLog,
    UnknownKey,
    Witness,
    open_checkpoint,
)
from relto.audit.note import open_note
from relto.store import create_database

from .conftest import T0, Clock, fill


@pytest.fixture
def sqlite_log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog(create_database(f"sqlite:///{tmp_path / 'a.db'}"), clock=Clock())


def test_witness_cosigns_consistent_growth(
    sqlite_log: TransparencyLog, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    w = Witness(witness_signer, [log_signer.verifier()])
    fill(sqlite_log, 5)
    first = sqlite_log.sign_checkpoint(log_signer, T0)
    cosigned = w.cosign_note(first, [], at=T0)
    opened = open_note(cosigned, [log_signer.verifier(), witness_signer.cosignature_verifier()])
    assert len(opened.verified) == 2
    fill(sqlite_log, 9, 5)
    second = sqlite_log.sign_checkpoint(log_signer, T0)
    proof = sqlite_log.consistency_proof(w.last_size(log_signer.name), 14).proof
    w.cosign(second, proof, at=T0)
    assert w.last_size(log_signer.name) == 14


def test_rollback_checkpoint_refused(
    sqlite_log: TransparencyLog, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    w = Witness(witness_signer, [log_signer.verifier()])
    fill(sqlite_log, 3)
    old = sqlite_log.sign_checkpoint(log_signer, T0)
    fill(sqlite_log, 4, 3)
    new = sqlite_log.sign_checkpoint(log_signer, T0)
    w.cosign(old, [], at=T0)
    w.cosign(new, sqlite_log.consistency_proof(3, 7).proof, at=T0)
    with pytest.raises(RollbackRefused):
        w.cosign(old, [], at=T0)
    assert w.last_size(log_signer.name) == 7


def test_forked_checkpoint_refused(
    tmp_path: Path, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    honest = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'h.db'}"), clock=Clock())
    fork = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'f.db'}"), clock=Clock())
    fill(honest, 4)
    fill(fork, 4)
    fork.append("decision", {"rewritten": True}, T0)  # index 4 differs
    fill(honest, 1, 4)
    w = Witness(witness_signer, [log_signer.verifier()])
    w.cosign(honest.sign_checkpoint(log_signer, T0), [], at=T0)  # size 5
    # Same size, different root: a split view.
    with pytest.raises(ForkRefused):
        w.cosign(fork.sign_checkpoint(log_signer, T0), [], at=T0)
    # Larger but not an extension: the fork's own proof does not match what w saw.
    fill(fork, 3, 10)
    forked = fork.sign_checkpoint(log_signer, T0)
    with pytest.raises(ForkRefused):
        w.cosign(forked, fork.consistency_proof(5, 8).proof, at=T0)
    assert w.last_size(log_signer.name) == 5


def test_checkpoint_from_unknown_log_refused(
    sqlite_log: TransparencyLog, witness_signer: NoteSigner
) -> None:
    rogue = NoteSigner.generate("relto.example/gbr/audit")  # right name, wrong key
    fill(sqlite_log, 2)
    note = sqlite_log.sign_checkpoint(rogue, T0)
    known = NoteSigner.generate("relto.example/gbr/audit")
    w = Witness(witness_signer, [known.verifier()])
    with pytest.raises(UnknownKey):
        w.cosign(note, [], at=T0)
    w2 = Witness(witness_signer, [])
    with pytest.raises(UnknownKey):
        w2.cosign(note, [], at=T0)


def test_witness_state_survives_restart_and_is_private(
    tmp_path: Path, sqlite_log: TransparencyLog, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    state = tmp_path / "witness.json"
    fill(sqlite_log, 6)
    note = sqlite_log.sign_checkpoint(log_signer, T0)
    Witness(witness_signer, [log_signer.verifier()], FileWitnessState(state)).cosign(
        note, [], at=T0
    )
    assert state.stat().st_mode & 0o777 == 0o600
    again = Witness(witness_signer, [log_signer.verifier()], FileWitnessState(state))
    assert again.last_size(log_signer.name) == 6
    state.write_text("{not json")
    with pytest.raises(InvalidNote):
        again.last_size(log_signer.name)


def test_cosigned_checkpoint_stored_with_the_log(
    sqlite_log: TransparencyLog, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    fill(sqlite_log, 3)
    note = sqlite_log.sign_checkpoint(log_signer, T0)
    sig = Witness(witness_signer, [log_signer.verifier()]).cosign(note, [], at=T0)
    merged = sqlite_log.add_cosignatures(note, log_signer.verifier(), sig)
    assert sqlite_log.latest_checkpoint() == merged
    signed = open_checkpoint(
        merged, log_signer.verifier(), extra=[witness_signer.cosignature_verifier()]
    )
    assert len(signed.verified.verified) == 2
