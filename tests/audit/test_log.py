"""The log on SQLite and a real PostgreSQL: appends, group commit, proofs, checkpoints."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import event

from relto.audit import (
    AuditError,
    NoteSigner,
    TransparencyLog,
    merkle,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from relto.audit.entries import decode_entry
from relto.errors import NotFound
from relto.events import AuditSink
from relto.store import Database

from .conftest import T0, fill


def test_log_is_a_durable_audit_sink(log: TransparencyLog, database: Database) -> None:
    assert isinstance(log, AuditSink)
    log.record("key.release", {"object": "o-1", "kas": "gbr"})
    # A fresh log object on the same database sees the committed entry.
    other = TransparencyLog(database)
    (entry,) = other.entries(0, 10)
    assert decode_entry(entry.body).payload == {"kas": "gbr", "object": "o-1"}
    assert entry.leaf_hash == merkle.leaf_hash(entry.body)


def test_entries_are_canonical_json_with_their_index(log: TransparencyLog) -> None:
    log.append("decision", {"b": 1, "a": "é", "z": [True, None]}, T0)
    (e,) = log.entries(0, 1)
    assert e.body == (
        b'{"index":0,"kind":"decision","payload":{"a":"\xc3\xa9","b":1,"z":[true,null]},'
        b'"time":"2026-11-29T12:00:00.000000Z","v":1}'
    )


def test_bad_event_rejected_and_nothing_appended(log: TransparencyLog) -> None:
    with pytest.raises(ValueError):
        log.append("Not A Kind", {}, T0)
    with pytest.raises(ValueError):
        log.append("decision", {"x": float("nan")}, T0)
    with pytest.raises(TypeError):
        log.append("decision", ["not", "a", "mapping"], T0)  # type: ignore[arg-type]
    assert log.head() == (0, merkle.EMPTY_ROOT)


def test_proofs_from_the_stored_tree_verify(log: TransparencyLog) -> None:
    fill(log, 37)
    size, root = log.head()
    assert size == 37 and root == log.root_at(37)
    for index in (0, 1, 17, 36):
        p = log.inclusion_proof(index)
        verify_inclusion(index, size, p.leaf_hash, p.proof, root)
        assert log.inclusion_proof_by_hash(p.leaf_hash) == p
    for first in (1, 8, 20, 37):
        c = log.consistency_proof(first)
        verify_consistency(first, size, c.proof, log.root_at(first), root)
    old = log.inclusion_proof(3, 10)
    verify_inclusion(3, 10, old.leaf_hash, old.proof, log.root_at(10))


def test_proof_outside_the_tree_is_not_found(log: TransparencyLog) -> None:
    fill(log, 3)
    with pytest.raises(NotFound):
        log.inclusion_proof(3)
    with pytest.raises(NotFound):
        log.consistency_proof(2, 9)
    with pytest.raises(NotFound):
        log.inclusion_proof_by_hash(bytes(32))


def test_append_and_proof_read_logarithmic_rows(log: TransparencyLog, database: Database) -> None:
    fill(log, 300)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        log._frontier = None  # force a reload of the right edge from the database
        log.append("decision", {"n": 300}, T0)
        log.inclusion_proof(123)
        log.consistency_proof(77)
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    # No statement scans the entries or rebuilds the tree.
    assert len(statements) < 15
    assert not any("FROM audit_entry" in s and "leaf_hash =" not in s for s in statements)


def test_group_commit_batches_concurrent_callers(log: TransparencyLog) -> None:
    batches: list[int] = []
    original = log._append_locked  # every commit of a group goes through it

    def spy(events: Sequence[tuple[str, Mapping[str, Any], Any]]) -> list[int]:
        batches.append(len(events))
        return original(events)

    log._append_locked = spy  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                log.record("decision", {"worker": n, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    size, root = log.head()
    assert size == 160 and sum(batches) == 160
    assert len(batches) < 160  # some callers shared a transaction
    indexes = sorted(decode_entry(e.body).index for e in log.entries(0, 200))
    assert indexes == list(range(160))
    assert log.root_at(160) == root


def test_bad_event_in_a_group_fails_only_its_caller(log: TransparencyLog) -> None:
    log._commit_batch(  # simulate two callers sharing one batch
        batch := [
            __import__("relto.audit.service", fromlist=["_Pending"])._Pending(
                "decision", {"ok": 1}, T0
            ),
            __import__("relto.audit.service", fromlist=["_Pending"])._Pending(
                "decision", {"bad": float("inf")}, T0
            ),
        ]
    )
    assert batch[0].error is None and batch[0].index == 0
    assert isinstance(batch[1].error, ValueError)
    assert log.size() == 1


def test_checkpoint_signed_and_stored(log: TransparencyLog, log_signer: NoteSigner) -> None:
    fill(log, 12)
    note = log.sign_checkpoint(log_signer, T0)
    cp = open_checkpoint(note, log_signer.verifier()).checkpoint
    assert (cp.size, cp.root) == log.head()
    assert log.sign_checkpoint(log_signer, T0) == note  # nothing new: same checkpoint
    assert log.latest_checkpoint() == note


def test_log_refuses_to_sign_a_fork_of_its_own_history(
    log: TransparencyLog, database: Database, log_signer: NoteSigner
) -> None:
    fill(log, 8)
    log.sign_checkpoint(log_signer, T0)
    with database.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(  # the stored root of the first 8 entries
            text("UPDATE audit_node SET hash = :h WHERE node_id = :n"),
            {"h": bytes(32), "n": 3 << 56},
        )
    fill(log, 2, 8)
    with pytest.raises(AuditError, match="refusing to sign"):
        log.sign_checkpoint(log_signer, T0)


def test_two_log_objects_on_one_database_do_not_fork(database: Database) -> None:
    a, b = TransparencyLog(database), TransparencyLog(database)
    a.append("decision", {"from": "a"}, T0)
    b.append("decision", {"from": "b"}, T0)  # b's cached right edge is stale
    a.append("decision", {"from": "a"}, T0)
    size, root = a.head()
    assert size == 3
    leaves = [merkle.leaf_hash(e.body) for e in a.entries(0, 3)]
    assert merkle.root_from_leaves(leaves) == root


def test_entry_pages_are_bounded(log: TransparencyLog) -> None:
    fill(log, 1005)
    assert len(log.entries(0, 5000)) == 1000
    assert [e.index for e in log.entries(1000, 2000)] == list(range(1000, 1005))


def test_head_row_serialises_writers_across_processes(database: Database) -> None:
    """Two logs with separate caches appending in turns never fork the tree."""
    logs = [TransparencyLog(database) for _ in range(3)]
    for i in range(12):
        logs[i % 3].append("decision", {"n": i}, T0)
    size, root = logs[0].head()
    bodies = [e.body for e in logs[1].entries(0, 20)]
    assert size == 12 and merkle.root_from_leaves([merkle.leaf_hash(b) for b in bodies]) == root


def test_proof_paths_match_full_proofs(log: TransparencyLog) -> None:
    fill(log, 21)
    assert log.inclusion_path(6, 21) == log.inclusion_proof(6, 21).proof
    assert log.consistency_path(5, 21) == log.consistency_proof(5, 21).proof


def test_log_owned_sqlite_file_fsyncs_every_commit(tmp_path: Any) -> None:
    from relto.audit.config import open_log
    from relto.config import Settings

    log = open_log(Settings(data_dir=tmp_path))
    log.append("decision", {"n": 1}, T0)
    with log.db.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    assert str(tmp_path / "audit.db") in str(log.db.engine.url)
