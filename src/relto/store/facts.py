"""Change counters of the facts decisions read, so every process can cache them.

One row per kind of fact (:data:`PARTNERSHIP`: partnerships, projects, admissions;
:data:`VETTING`: people, clearances; :data:`DOCUMENTS`: document labels and policy
UUIDs). Every write of such a fact calls :func:`bump` in the SAME transaction, so
the new value commits with the change or not at all; a reader that sees the new
value sees the change. A process that built something from the facts keeps it
while :func:`read_versions` returns the values it was built at (see ADR 0078).

Counters, never timestamps (clock skew between processes) or row counts (an
update changes neither). A counter row that is missing reads as "unknown" and
callers must then not cache at all (fail closed).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

from sqlalchemy import BigInteger, Connection, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.store.db import Base, Database

__all__ = [
    "DOCUMENTS",
    "KINDS",
    "PARTNERSHIP",
    "VETTING",
    "FactVersionRow",
    "VersionReader",
    "bump",
    "read_versions",
]

PARTNERSHIP = "partnership"
VETTING = "vetting"
DOCUMENTS = "documents"
#: Every counter the migration seeds.
KINDS = (PARTNERSHIP, VETTING, DOCUMENTS)


class FactVersionRow(Base):
    """How many committed changes a kind of decision fact has seen."""

    __tablename__ = "fact_version"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


def bump(session: Session, name: str) -> None:
    """Count one change of ``name`` facts in ``session``'s transaction.

    ``UPDATE ... SET value = value + 1`` takes the row's write lock, so concurrent
    writers on PostgreSQL queue behind each other and never lose a count. A
    database without the row (tables made without the migration) gets it here.
    """
    if name not in KINDS:
        raise ValueError(f"unknown fact counter {name!r}")
    done = session.execute(
        update(FactVersionRow)
        .where(FactVersionRow.name == name)
        .values(value=FactVersionRow.value + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 1) == 0:
        session.add(FactVersionRow(name=name, value=1))
        session.flush()


def read_versions(session: Session | Connection) -> Mapping[str, int]:
    """Every counter as committed now (one query). A kind absent here is unknown."""
    return {
        name: int(value)
        for name, value in session.execute(select(FactVersionRow.name, FactVersionRow.value))
    }


_Versions = Mapping[str, int]


def _settle(done: list[tuple[asyncio.Future[_Versions], _Versions | BaseException]]) -> None:
    for fut, outcome in done:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


class VersionReader:
    """:func:`read_versions` for code on an event loop, batched.

    A coroutine awaiting :meth:`read` gets counters from a query that STARTS after it
    asked (never one already in flight), so a change committed before the call is
    always seen. All coroutines waiting when the reader thread takes its turn share
    that one query; the loop never waits on the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cv = threading.Condition()
        self._queue: list[asyncio.Future[_Versions]] = []
        self._thread: threading.Thread | None = None

    async def read(self) -> _Versions:
        fut: asyncio.Future[_Versions] = asyncio.get_running_loop().create_future()
        with self._cv:
            self._queue.append(fut)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._read_forever, name="relto-fact-versions", daemon=True
                )
                self._thread.start()
            self._cv.notify()
        return await fut

    def _read_forever(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                waiting, self._queue = self._queue, []
            outcome: _Versions | BaseException
            try:
                with self.db.engine.connect() as conn:
                    outcome = read_versions(conn)
            except Exception as exc:  # every waiter of this turn hears it
                outcome = exc
            by_loop: dict[
                asyncio.AbstractEventLoop,
                list[tuple[asyncio.Future[_Versions], _Versions | BaseException]],
            ] = {}
            for fut in waiting:
                by_loop.setdefault(fut.get_loop(), []).append((fut, outcome))
            for loop, done in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, done)
                except RuntimeError:  # that loop has closed: nobody is waiting
                    continue
