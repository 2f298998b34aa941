"""Console sign-in sessions the node can revoke.

A session is a random id handed to one browser (inside a signed cookie, see
:mod:`relto.server.auth`) and a record on the node saying whose it is and until
when. The record decides: signing out deletes it, and a cookie whose record is
gone or expired signs nobody in, however well signed it is -- a copied cookie
dies with the session it came from.

The node keeps only the SHA-256 of each id, so reading the database does not
let anyone act as the people signed in. :class:`DatabaseSessionStore` is the
node's (every worker and host of a node shares it); :class:`MemorySessionStore`
is the same contract in memory, for tests.

Time is passed in (``now``, seconds since the epoch) by the caller.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select

from relto.store import Database
from relto.store.sessions import ConsoleSessionRow

__all__ = [
    "MAX_SESSION_ID",
    "DatabaseSessionStore",
    "MemorySessionStore",
    "SessionStore",
    "new_session_id",
]

#: Longest session id looked up (ids are 43 characters; anything longer is not ours).
MAX_SESSION_ID = 64


def new_session_id() -> str:
    """A fresh session id: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _key(session_id: str) -> str:
    return hashlib.sha256(b"relto-session\0" + session_id.encode()).hexdigest()


def _usable(session_id: str) -> bool:
    return 0 < len(session_id) <= MAX_SESSION_ID


class SessionStore(Protocol):
    """Where a node keeps its console sessions."""

    def create(self, person_id: str, *, now: float, lifetime: float) -> str:
        """Start a session for ``person_id`` lasting ``lifetime`` seconds; its id."""
        ...

    def person(self, session_id: str, *, now: float) -> str | None:
        """Whose live session ``session_id`` is; ``None`` if unknown, ended or expired."""
        ...

    def revoke(self, session_id: str) -> None:
        """End one session (nothing happens if it is already gone)."""
        ...

    def revoke_person(self, person_id: str) -> int:
        """End every session of ``person_id``; how many there were."""
        ...


@dataclass(frozen=True)
class _Record:
    person_id: str
    expires_at: float


class MemorySessionStore:
    """Sessions in this process only (tests, tools)."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def create(self, person_id: str, *, now: float, lifetime: float) -> str:
        if lifetime <= 0:
            raise ValueError("a session needs a positive lifetime")
        session_id = new_session_id()
        with self._lock:
            self._records = {k: r for k, r in self._records.items() if r.expires_at > now}
            self._records[_key(session_id)] = _Record(person_id, now + lifetime)
        return session_id

    def person(self, session_id: str, *, now: float) -> str | None:
        if not _usable(session_id):
            return None
        record = self._records.get(_key(session_id))
        if record is None or record.expires_at <= now:
            return None
        return record.person_id

    def revoke(self, session_id: str) -> None:
        with self._lock:
            self._records.pop(_key(session_id), None)

    def revoke_person(self, person_id: str) -> int:
        with self._lock:
            gone = [k for k, r in self._records.items() if r.person_id == person_id]
            for k in gone:
                del self._records[k]
        return len(gone)


class DatabaseSessionStore:
    """Sessions in the node's database (table ``console_session``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, person_id: str, *, now: float, lifetime: float) -> str:
        if lifetime <= 0:
            raise ValueError("a session needs a positive lifetime")
        session_id = new_session_id()
        with self._db.session() as s:
            s.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now))
            s.add(
                ConsoleSessionRow(
                    id_hash=_key(session_id),
                    person_id=person_id,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return session_id

    def person(self, session_id: str, *, now: float) -> str | None:
        if not _usable(session_id):
            return None
        with self._db.session() as s:
            row = s.execute(
                select(ConsoleSessionRow.person_id, ConsoleSessionRow.expires_at).where(
                    ConsoleSessionRow.id_hash == _key(session_id)
                )
            ).first()
        if row is None or row.expires_at <= now:
            return None
        return str(row.person_id)

    def revoke(self, session_id: str) -> None:
        with self._db.session() as s:
            s.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.id_hash == _key(session_id))
            )

    def revoke_person(self, person_id: str) -> int:
        with self._db.session() as s:
            result = s.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.person_id == person_id)
            )
        return int(getattr(result, "rowcount", 0) or 0)
