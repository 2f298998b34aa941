"""Several server processes appending to one log (SQLite file or PostgreSQL) never
fork it: the head row serialises them and each reloads the right edge it missed."""

from __future__ import annotations

import multiprocessing as mp
import threading

from relto.audit import TransparencyLog, merkle
from relto.audit.entries import decode_entry
from relto.store import Database, create_database


def _worker(url: str, name: str, n: int) -> None:
    log = TransparencyLog(create_database(url, migrate=False))

    def run(t: int) -> None:
        for i in range(n):
            log.record("decision", {"process": name, "thread": t, "i": i})

    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.db.dispose()


def test_two_processes_appending_do_not_fork(database: Database) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, f"p{k}", 15)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    log = TransparencyLog(database)
    size, root = log.head()
    assert size == 2 * 3 * 15
    rows = log.entries(0, size)
    assert [decode_entry(e.body).index for e in rows] == list(range(size))
    assert merkle.root_from_leaves([merkle.leaf_hash(e.body) for e in rows]) == root
    assert log.root_at(size) == root
