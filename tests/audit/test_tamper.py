"""`verify_log` finds the first index where a stored log was tampered with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rfc8785
from sqlalchemy import text

from relto.audit import NoteSigner, TransparencyLog, merkle, open_checkpoint, verify_log
from relto.audit.checkpoint import Checkpoint
from relto.audit.sources import DatabaseSource
from relto.store import Database, create_database

from .conftest import T0, fill

N = 40


@pytest.fixture
def signed(log: TransparencyLog, log_signer: NoteSigner) -> Checkpoint:
    fill(log, N)
    note = log.sign_checkpoint(log_signer, T0)
    return open_checkpoint(note, log_signer.verifier()).checkpoint


def _sql(db: Database, sql: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def _body(db: Database, index: int) -> dict[str, object]:
    with db.engine.connect() as conn:
        raw = conn.execute(text("SELECT body FROM audit_entry WHERE idx = :i"), {"i": index})
        return json.loads(bytes(raw.scalar_one()))  # type: ignore[no-any-return]


def _rewrite(db: Database, index: int, doc: dict[str, object], *, fix_hash: bool) -> None:
    body = rfc8785.dumps(doc)
    if fix_hash:
        _sql(
            db,
            "UPDATE audit_entry SET body = :b, leaf_hash = :h WHERE idx = :i",
            b=body,
            h=merkle.leaf_hash(body),
            i=index,
        )
    else:
        _sql(db, "UPDATE audit_entry SET body = :b WHERE idx = :i", b=body, i=index)


def _check(log: TransparencyLog, cp: Checkpoint) -> tuple[int, str] | None:
    report = verify_log(DatabaseSource(log), [cp])
    return None if report.finding is None else (report.finding.index, report.finding.kind)


def test_untouched_log_verifies(log: TransparencyLog, signed: Checkpoint) -> None:
    report = verify_log(DatabaseSource(log), [signed])
    assert report.ok and report.checked == N
    fill(log, 5, N)  # growth after the checkpoint is fine
    assert verify_log(DatabaseSource(log), [signed]).ok


def test_edited_entry_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    doc = _body(database, 17)
    doc["payload"] = {**doc["payload"], "allowed": True}  # type: ignore[dict-item]
    doc["payload"]["person"] = "someone-else"  # type: ignore[index]
    _rewrite(database, 17, doc, fix_hash=False)
    assert _check(log, signed) == (17, "edited")


def test_edited_entry_with_recomputed_hash_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    doc = _body(database, 9)
    doc["payload"] = {"person": "nobody"}
    _rewrite(database, 9, doc, fix_hash=True)
    assert _check(log, signed) == (9, "edited")


def test_edited_entry_with_rewritten_tree_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    """The attacker rewrites the row, its hash and every stored node: only the
    trusted checkpoint still disagrees."""
    doc = _body(database, 33)
    doc["payload"] = {"person": "nobody"}
    _rewrite(database, 33, doc, fix_hash=True)
    bodies = [e.body for e in log.entries(0, N)]
    f = merkle.Frontier()
    with database.engine.begin() as conn:
        for b in bodies:
            for level, idx, h in f.append(merkle.leaf_hash(b)):
                conn.execute(
                    text("UPDATE audit_node SET hash = :h WHERE node_id = :n"),
                    {"h": h, "n": (level << 56) | idx},
                )
    finding = verify_log(DatabaseSource(log), [signed]).finding
    assert finding is not None and finding.kind == "rewritten" and finding.index <= 33


def test_deleted_row_detected(log: TransparencyLog, database: Database, signed: Checkpoint) -> None:
    _sql(database, "DELETE FROM audit_entry WHERE idx = 21")
    assert _check(log, signed) == (21, "deleted")


def test_deleted_row_with_renumbering_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    _sql(database, "DELETE FROM audit_entry WHERE idx = 12")
    for i in range(13, N):
        _sql(database, "UPDATE audit_entry SET idx = :n WHERE idx = :i", n=i - 1, i=i)
    assert _check(log, signed) == (12, "deleted")


def test_truncated_log_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    _sql(database, "DELETE FROM audit_entry WHERE idx >= 35")
    assert _check(log, signed) == (35, "deleted")


def test_reordered_rows_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    _sql(database, "UPDATE audit_entry SET idx = -1 WHERE idx = 5")
    _sql(database, "UPDATE audit_entry SET idx = 5 WHERE idx = 6")
    _sql(database, "UPDATE audit_entry SET idx = 6 WHERE idx = -1")
    assert _check(log, signed) == (5, "reordered")


def test_inserted_row_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    for i in range(N - 1, 19, -1):
        _sql(database, "UPDATE audit_entry SET idx = :n WHERE idx = :i", n=i + 1, i=i)
    doc = {
        "v": 1,
        "index": 20,
        "kind": "decision",
        "time": "2026-11-29T12:00:00.000000Z",
        "payload": {"person": "mallory", "allowed": True},
    }
    body = rfc8785.dumps(doc)
    _sql(
        database,
        "INSERT INTO audit_entry (idx, leaf_hash, kind, body) VALUES (20, :h, 'decision', :b)",
        h=merkle.leaf_hash(body),
        b=body,
    )
    assert _check(log, signed) == (20, "edited")  # the stored tree disagrees at 20


def test_inserted_row_with_rewritten_tree_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    """A crafted row inserted and every later row renumbered, nodes ignored: the
    shifted successor no longer carries its own index."""
    for i in range(N - 1, 19, -1):
        _sql(database, "UPDATE audit_entry SET idx = :n WHERE idx = :i", n=i + 1, i=i)
    doc = {"v": 1, "index": 20, "kind": "decision", "time": "x", "payload": {}}
    body = rfc8785.dumps(doc)
    _sql(
        database,
        "INSERT INTO audit_entry (idx, leaf_hash, kind, body) VALUES (20, :h, 'decision', :b)",
        h=merkle.leaf_hash(body),
        b=body,
    )
    _sql(database, "DELETE FROM audit_node")
    finding = verify_log(DatabaseSource(log), [signed]).finding
    assert finding is not None and finding.index in (20, 21)


def test_altered_stored_node_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    _sql(database, "UPDATE audit_node SET hash = :h WHERE node_id = :n", h=bytes(32), n=2 << 56 | 3)
    assert _check(log, signed) == (12, "node-altered")


def test_non_canonical_body_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    doc = _body(database, 2)
    body = json.dumps(doc, indent=1).encode()
    _sql(
        database,
        "UPDATE audit_entry SET body = :b, leaf_hash = :h WHERE idx = 2",
        b=body,
        h=merkle.leaf_hash(body),
    )
    assert _check(log, signed) == (2, "edited")


def test_forged_checkpoint_for_rewritten_history_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint, log_signer: NoteSigner
) -> None:
    """The trusted checkpoint is older than the rewrite: the rewritten log does not
    lead to it, whatever the host signs today."""
    _sql(database, "DELETE FROM audit_entry")
    _sql(database, "DELETE FROM audit_node")
    assert _check(log, signed) == (0, "deleted")


def test_edited_kind_column_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    _sql(database, "UPDATE audit_entry SET kind = 'nothing.happened' WHERE idx = 14")
    assert _check(log, signed) == (14, "edited")


def test_forged_row_after_the_checkpoint_detected(
    log: TransparencyLog, database: Database, signed: Checkpoint
) -> None:
    """A copy of an old entry appended after the checkpoint is not growth."""
    with database.engine.connect() as conn:
        body = bytes(conn.execute(text("SELECT body FROM audit_entry WHERE idx = 3")).scalar_one())
    _sql(
        database,
        "INSERT INTO audit_entry (idx, leaf_hash, kind, body) VALUES (:i, :h, 'decision', :b)",
        i=N,
        h=merkle.leaf_hash(body),
        b=body,
    )
    assert _check(log, signed) == (N, "inserted")


def test_body_stored_with_another_type_detected(tmp_path: Path, log_signer: NoteSigner) -> None:
    """SQLite lets a column hold any type: a body rewritten as TEXT is still compared."""
    db = create_database(f"sqlite:///{tmp_path / 'typed.db'}")
    log = TransparencyLog(db)
    fill(log, 12)
    cp = open_checkpoint(log.sign_checkpoint(log_signer, T0), log_signer.verifier()).checkpoint
    _sql(db, "UPDATE audit_entry SET body = CAST(body AS TEXT) || ' ' WHERE idx = 8")
    assert _check(log, cp) == (8, "edited")
