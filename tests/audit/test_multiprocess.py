"""Several server processes appending to one log (SQLite file or PostgreSQL) never
fork it: the head row serialises them and each reloads the right edge it missed.

On a SQLite file the writers of every process also queue on a blocking file lock
(``<database>.lock``) before they touch the database, so none of them is left in
SQLite's busy handler, which sleeps with growing back-off (the tail latency that
two uvicorn workers showed)."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from relto.audit import TransparencyLog, merkle
from relto.audit.entries import decode_entry
from relto.store import Database, create_database

THREADS = 4
PER_THREAD = 25


def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


def _worker(url: str, name: str, n: int, start: Any) -> None:
    db = create_database(url, migrate=False)
    if db.dialect == "sqlite":
        # Any contention left for SQLite's own lock fails at once ("database is
        # locked") instead of sleeping: the file lock must have serialised writers.
        event.listen(db.engine, "connect", _no_busy_wait)
    log = TransparencyLog(db, sync_commits=db.dialect == "sqlite")
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            for i in range(n):
                log.record("decision", {"process": name, "thread": t, "i": i})
        except BaseException as exc:  # pragma: no cover - fails the process below
            errors.append(exc)

    log.size()  # connected and ready: now both processes start together
    start.wait(60)
    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.db.dispose()
    if errors:
        raise SystemExit(f"{name}: {errors[0]!r}")


def test_two_processes_appending_do_not_fork(database: Database) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_worker, args=(url, f"p{k}", PER_THREAD, start)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    log = TransparencyLog(database)
    size, root = log.head()
    assert size == 2 * THREADS * PER_THREAD
    rows = log.entries(0, size)
    # No index lost or given twice, every event of every thread there exactly once.
    assert [decode_entry(e.body).index for e in rows] == list(range(size))
    seen = sorted(
        (p["process"], p["thread"], p["i"]) for p in (decode_entry(e.body).payload for e in rows)
    )
    expected = [
        (f"p{k}", t, i) for k in range(2) for t in range(THREADS) for i in range(PER_THREAD)
    ]
    assert seen == expected
    assert merkle.root_from_leaves([merkle.leaf_hash(e.body) for e in rows]) == root
    assert log.root_at(size) == root


# -- the cross-process writer lock (SQLite file) ------------------------------------


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Iterator[TransparencyLog]:
    db = create_database(f"sqlite:///{tmp_path / 'audit.db'}")
    yield TransparencyLog(db, sync_commits=True)
    db.dispose()


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[int]:
    """The writer lock, held by another open file (as another process holds it)."""
    fd = os.open(tmp_path / "audit.db.lock", os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield fd
    finally:
        os.close(fd)


def _wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_writer_waits_for_another_process_holding_the_lock(
    sqlite_log: TransparencyLog, held_lock: int
) -> None:
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(sqlite_log.submit("decision", {"a": 1})))
    t.start()
    time.sleep(0.3)
    assert not done and sqlite_log.size() == 0  # nothing written behind the holder's back
    released = time.monotonic()
    fcntl.flock(held_lock, fcntl.LOCK_UN)
    t.join(10)
    assert done == [0]
    assert time.monotonic() - released < 2.0  # woken by the kernel, no back-off sleep
    assert sqlite_log.size() == 1


def test_callers_queued_behind_another_process_share_one_commit(
    sqlite_log: TransparencyLog, held_lock: int
) -> None:
    batches: list[int] = []
    original = sqlite_log._append_locked

    def spy(events: Sequence[tuple[str, Mapping[str, Any], Any]]) -> list[int]:
        batches.append(len(events))
        return original(events)

    sqlite_log._append_locked = spy  # type: ignore[method-assign]
    indexes: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: indexes.append(sqlite_log.submit("decision", {"n": n})))
        for n in range(12)
    ]
    for t in threads:
        t.start()
    _wait_for(lambda: len(sqlite_log._queue) == 12)
    fcntl.flock(held_lock, fcntl.LOCK_UN)
    for t in threads:
        t.join(10)
    # The batch is taken once the lock is held: everyone who queued meanwhile is in it.
    assert batches == [12]
    assert sorted(indexes) == list(range(12))


def test_checkpoint_signing_waits_for_the_lock_too(
    sqlite_log: TransparencyLog, held_lock: int
) -> None:
    from relto.audit import NoteSigner

    signer = NoteSigner.generate("relto.example/gbr/audit")
    notes: list[str] = []
    t = threading.Thread(target=lambda: notes.append(sqlite_log.sign_checkpoint(signer)))
    t.start()
    time.sleep(0.2)
    assert not notes
    fcntl.flock(held_lock, fcntl.LOCK_UN)
    t.join(10)
    assert len(notes) == 1 and sqlite_log.latest_checkpoint() == notes[0]


def test_writer_lock_failure_is_a_storage_error_and_leaves_no_event_queued(
    tmp_path: Path,
) -> None:
    from relto.errors import StorageError

    db = create_database(f"sqlite:///{tmp_path / 'audit.db'}")
    log = TransparencyLog(db)
    lock = log._file_lock
    assert lock is not None and lock.path == f"{tmp_path / 'audit.db'}.lock"
    lock.path = str(tmp_path / "missing-dir" / "audit.db.lock")
    with pytest.raises(StorageError) as info:
        log.record("decision", {"a": 1})
    assert "missing-dir" not in str(info.value)
    assert log._queue == [] and log.size() == 0
    lock.path = f"{tmp_path / 'audit.db'}.lock"
    assert log.submit("decision", {"a": 2}) == 0
    db.dispose()


def test_postgresql_and_memory_logs_take_no_file_lock(database: Database) -> None:
    log = TransparencyLog(database)
    assert (log._file_lock is None) == (database.dialect != "sqlite")
    memory = TransparencyLog(create_database("sqlite://"))
    assert memory._file_lock is None
