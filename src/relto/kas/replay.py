"""A DPoP ``jti`` replay cache shared by every server process on one host.

Worker processes each keep their own memory, so an in-memory cache would let a
proof replayed to another worker through. This cache is a small SQLite file in
the data folder: inserting a key that is already there (and not expired) means a
replay. Durability is not needed -- proofs expire within the DPoP window -- so
the file runs with ``synchronous=OFF`` and WAL. Several hosts behind a load
balancer need a cache they all share (see docs/kas.md).

Code on an event loop uses :meth:`SqliteReplayCache.check_and_add_async`: the key
joins a queue that one writer thread drains, a batch per transaction, and the
coroutine resumes with the answer; the loop never waits on the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["SqliteReplayCache"]

_PURGE_EVERY = 2000

_Waiter = tuple[str, float, "asyncio.Future[bool]"]
_Done = tuple["asyncio.Future[bool]", "bool | BaseException"]


def _settle(done: list[_Done]) -> None:
    for fut, outcome in done:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


class SqliteReplayCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._count = 0
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS dpop_jti (k TEXT PRIMARY KEY, exp REAL NOT NULL)")
        self.path.chmod(0o600)
        self._cv = threading.Condition()
        self._queue: list[_Waiter] = []
        self._writer: threading.Thread | None = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
        return conn

    def check_and_add(self, jti: str, expires_at: float) -> bool:
        """Record ``jti``; ``False`` if it was recorded before and has not expired."""
        return self._check(self._conn(), jti, expires_at, time.time())

    async def check_and_add_async(self, jti: str, expires_at: float) -> bool:
        """:meth:`check_and_add` for an event loop (batched by the writer thread)."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        with self._cv:
            self._queue.append((jti, expires_at, fut))
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_forever, name="relto-dpop-replay", daemon=True
                )
                self._writer.start()
            self._cv.notify()
        return await fut

    def _write_forever(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                batch, self._queue = self._queue, []
            outcomes: list[bool | BaseException]
            try:
                outcomes = list(self._check_batch([(k, e) for k, e, _ in batch]))
            except Exception as exc:  # the file failed: every waiter of the batch hears it
                outcomes = [exc] * len(batch)
            by_loop: dict[
                asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], bool | BaseException]]
            ] = {}
            for (_, _, fut), outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(fut.get_loop(), []).append((fut, outcome))
            for loop, done in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, done)
                except RuntimeError:  # that loop has closed: nobody is waiting
                    continue

    def _check_batch(self, items: list[tuple[str, float]]) -> list[bool]:
        """Every key of ``items`` in one transaction, in order (a key twice in one
        batch: the second is a replay)."""
        conn = self._conn()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = [self._check(conn, jti, expires_at, now) for jti, expires_at in items]
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return out

    def _check(self, conn: sqlite3.Connection, jti: str, expires_at: float, now: float) -> bool:
        try:
            conn.execute("INSERT INTO dpop_jti (k, exp) VALUES (?, ?)", (jti, expires_at))
        except sqlite3.IntegrityError:
            # Seen before: a replay unless that entry has expired.
            cur = conn.execute(
                "UPDATE dpop_jti SET exp = ? WHERE k = ? AND exp < ?", (expires_at, jti, now)
            )
            return cur.rowcount == 1
        self._count += 1
        if self._count % _PURGE_EVERY == 0:
            conn.execute("DELETE FROM dpop_jti WHERE exp < ?", (now,))
        return True
