"""A DPoP ``jti`` replay cache shared by every server process on one host.

Worker processes each keep their own memory, so an in-memory cache would let a
proof replayed to another worker through. This cache is a small SQLite file in
the data folder: inserting a key that is already there (and not expired) means a
replay. Durability is not needed -- proofs expire within the DPoP window -- so
the file runs with ``synchronous=OFF`` and WAL. Several hosts behind a load
balancer need a cache they all share (see docs/kas.md).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["SqliteReplayCache"]

_PURGE_EVERY = 2000


class SqliteReplayCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._count = 0
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

    def check_and_add(self, jti: str, expires_at: float) -> bool:
        conn = self._conn()
        now = time.time()
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
