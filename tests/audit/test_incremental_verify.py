"""Incremental verification (the console's audit page): only the entries added
since the last verified tree head are re-derived, against a consistency proof
from that head; anything that does not extend it is caught."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text

from relto.audit import NoteSigner, TransparencyLog, merkle, open_checkpoint
from relto.audit.checkpoint import Checkpoint
from relto.audit.service import node_id
from relto.audit.sources import DatabaseSource
from relto.audit.verify import IncrementalVerifier, LogRow
from relto.store import Database, create_database

from .conftest import T0, Clock, fill

N = 40


class Counting(DatabaseSource):
    """Counts the rows read and remembers where reading started."""

    def __init__(self, log: TransparencyLog) -> None:
        super().__init__(log)
        self.read = 0
        self.starts: list[int] = []

    def rows_from(self, start: int) -> Iterator[LogRow]:
        self.starts.append(start)
        for row in super().rows_from(start):
            self.read += 1
            yield row

    def consistency(self, first: int, second: int) -> Sequence[bytes]:
        return super().consistency(first, second)


def _checkpoint(log: TransparencyLog, signer: NoteSigner) -> Checkpoint:
    return open_checkpoint(log.sign_checkpoint(signer, T0), signer.verifier()).checkpoint


def _sql(db: Database, sql: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_second_view_reads_only_new_entries(log: TransparencyLog, log_signer: NoteSigner) -> None:
    fill(log, N)
    source, verifier = Counting(log), IncrementalVerifier()
    first = verifier.verify(source, _checkpoint(log, log_signer))
    assert first.ok and first.since is None and first.checked == N and source.read == N
    fill(log, 7, N)
    source.read = 0
    second = verifier.verify(source, _checkpoint(log, log_signer))
    assert second.ok, second.describe()
    assert (second.since, second.checked, source.read, source.starts[-1]) == (N, 7, 7, N)
    assert "extends the tree head of size 40" in second.describe()
    head = verifier.head
    assert head is not None and (head.size, head.full_size) == (N + 7, N)
    # Nothing new: nothing read, the root is compared.
    source.read = 0
    assert verifier.verify(source, _checkpoint(log, log_signer)).ok and source.read == 0


def test_edited_new_entry_detected(
    log: TransparencyLog, database: Database, log_signer: NoteSigner
) -> None:
    fill(log, N)
    verifier = IncrementalVerifier()
    assert verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer)).ok
    fill(log, 10, N)
    cp = _checkpoint(log, log_signer)
    _sql(database, "UPDATE audit_entry SET body = :b WHERE idx = :i", b=b'{"x":1}', i=N + 3)
    report = verifier.verify(DatabaseSource(log), cp)
    assert report.finding is not None
    assert (report.finding.index, report.finding.kind) == (N + 3, "edited")
    assert verifier.head is None  # the next view verifies everything again


def test_altered_stored_node_among_new_entries_detected(
    log: TransparencyLog, database: Database, log_signer: NoteSigner
) -> None:
    fill(log, 32)
    verifier = IncrementalVerifier()
    assert verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer)).ok
    fill(log, 32, 32)
    cp = _checkpoint(log, log_signer)
    _sql(database, "UPDATE audit_node SET hash = :h WHERE node_id = :n",
         h=b"\x00" * 32, n=node_id(2, 10))  # fmt: skip
    report = verifier.verify(DatabaseSource(log), cp)
    assert report.finding is not None and report.finding.kind == "node-altered"


def test_swapped_database_with_rewritten_history_detected(
    log: TransparencyLog, log_signer: NoteSigner, tmp_path: Path
) -> None:
    """An administrator replaces the log with another history and signs a new,
    larger checkpoint with the node's key: it does not extend the verified head."""
    fill(log, N)
    verifier = IncrementalVerifier()
    assert verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer)).ok
    other = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'forged.db'}"), clock=Clock())
    other.append_many([("decision", {"person": "forged", "n": i}, T0) for i in range(N + 5)])
    report = verifier.verify(DatabaseSource(other), _checkpoint(other, log_signer))
    assert report.finding is not None
    assert (report.finding.index, report.finding.kind) == (N, "rewritten")
    other.db.dispose()


def test_rollback_to_smaller_checkpoint_detected(
    log: TransparencyLog, log_signer: NoteSigner
) -> None:
    fill(log, N)
    old = _checkpoint(log, log_signer)
    fill(log, 5, N)
    verifier = IncrementalVerifier()
    assert verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer)).ok
    report = verifier.verify(DatabaseSource(log), old)
    assert report.finding is not None and report.finding.kind == "deleted"


def test_old_entry_edit_needs_full_reverification(
    log: TransparencyLog, database: Database, log_signer: NoteSigner
) -> None:
    """The documented limit: an old row edited behind the verified head (with the
    stored nodes untouched) is found by the full re-verification on demand."""
    fill(log, N)
    verifier = IncrementalVerifier()
    assert verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer)).ok
    body = b'{"index":3,"kind":"decision","payload":{},"time":"2026-11-29T12:00:00.000000Z","v":1}'
    _sql(database, "UPDATE audit_entry SET body = :b, leaf_hash = :h WHERE idx = 3",
         b=body, h=merkle.leaf_hash(body))  # fmt: skip
    fill(log, 2, N)
    cp = _checkpoint(log, log_signer)
    assert verifier.verify(DatabaseSource(log), cp).ok
    full = verifier.verify(DatabaseSource(log), cp, full=True)
    assert full.finding is not None and (full.finding.index, full.finding.kind) == (3, "edited")


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257])
def test_incremental_matches_full_at_every_boundary(
    log: TransparencyLog, log_signer: NoteSigner, size: int
) -> None:
    fill(log, size)
    verifier = IncrementalVerifier()
    assert verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer)).ok
    for step in (1, 2, 5, 64):
        fill(log, step, log.size())
        report = verifier.verify(DatabaseSource(log), _checkpoint(log, log_signer))
        assert report.ok and report.checked == step, report.describe()
