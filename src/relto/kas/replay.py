"""DPoP ``jti`` replay caches shared by every server process of a node.

Worker processes each keep their own memory, so an in-memory cache would let a
proof replayed to another worker through. Inserting a key that is already there
(and not expired) means a replay. Durability is not needed -- proofs expire within
the DPoP window.

- :class:`SqliteReplayCache`: a small SQLite file in the data folder
  (``synchronous=OFF``, WAL), shared by the processes of one host;
- :class:`DatabaseReplayCache`: the ``kas_dpop_jti`` table of the node's database;
  on PostgreSQL every host of the node shares it (the runtime picks it there).

Code on an event loop uses ``check_and_add_async``: the key joins a queue that one
writer thread drains, a batch per transaction, and the coroutine resumes with the
answer; the loop never waits on the file or the database.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Connection, text

from relto.batching import BatchWorker
from relto.store import Database

__all__ = ["DatabaseReplayCache", "SqliteReplayCache"]

_PURGE_EVERY = 2000


class _Batched:
    """``check_and_add_async`` over a subclass's ``_check_batch`` (one transaction)."""

    def __init__(self) -> None:
        self._worker: BatchWorker[tuple[str, float], bool] = BatchWorker(
            self._check_batch, "relto-dpop-replay"
        )
        self._count = 0

    def _check_batch(self, items: list[tuple[str, float]]) -> list[bool]:
        raise NotImplementedError

    def check_and_add(self, jti: str, expires_at: float) -> bool:
        """Record ``jti``; ``False`` if it was recorded before and has not expired."""
        return self._check_batch([(jti, expires_at)])[0]

    async def check_and_add_async(self, jti: str, expires_at: float) -> bool:
        """:meth:`check_and_add` for an event loop (batched by the writer thread)."""
        return await self._worker.submit((jti, expires_at))

    def _purge_due(self, inserted: int) -> bool:
        before = self._count
        self._count += inserted
        return before // _PURGE_EVERY != self._count // _PURGE_EVERY


class SqliteReplayCache(_Batched):
    """The cache of one host: a SQLite file its server processes share."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS dpop_jti (k TEXT PRIMARY KEY, exp REAL NOT NULL)")
        self.path.chmod(0o600)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
        return conn

    def _check_batch(self, items: list[tuple[str, float]]) -> list[bool]:
        """Every key of ``items`` in one transaction, in order (a key twice in one
        batch: the second is a replay)."""
        conn = self._conn()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = [self._check(conn, jti, expires_at, now) for jti, expires_at in items]
            if self._purge_due(sum(out)):
                conn.execute("DELETE FROM dpop_jti WHERE exp < ?", (now,))
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
        return True


#: Insert, or take over an expired entry; a row comes back only when the key is fresh.
_UPSERT = text(
    "INSERT INTO kas_dpop_jti (k, exp) VALUES (:k, :exp) "
    "ON CONFLICT (k) DO UPDATE SET exp = excluded.exp WHERE kas_dpop_jti.exp < :now "
    "RETURNING k"
)


class DatabaseReplayCache(_Batched):
    """The cache in the node's database (``kas_dpop_jti``): on PostgreSQL, shared by
    every host of the node. One statement per key decides atomically."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    def _check_batch(self, items: list[tuple[str, float]]) -> list[bool]:
        now = time.time()
        with self.db.engine.begin() as conn:
            out = [self._check(conn, jti, expires_at, now) for jti, expires_at in items]
            if self._purge_due(sum(out)):
                conn.execute(text("DELETE FROM kas_dpop_jti WHERE exp < :now"), {"now": now})
        return out

    @staticmethod
    def _check(conn: Connection, jti: str, expires_at: float, now: float) -> bool:
        row = conn.execute(_UPSERT, {"k": jti, "exp": expires_at, "now": now}).first()
        return row is not None
