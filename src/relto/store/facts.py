"""Change counters of the facts decisions read, so every process can cache them.

One row per kind of fact (:data:`PARTNERSHIP`: partnerships, projects, admissions;
:data:`VETTING`: people, clearances; :data:`DOCUMENTS`: document labels and policy
UUIDs; :data:`EXPORT`: export classifications, parties, licences and their
consumption, excluded lists, rules). Every write of such a fact calls
:func:`bump` in the SAME transaction, so the new value commits with the change or
not at all; a reader that sees the new value sees the change. A process that
built something from the facts keeps it while :func:`read_versions` returns the
values it was built at (see ADR 0078).

Counters, never timestamps (clock skew between processes) or row counts (an
update changes neither). A counter row that is missing reads as "unknown" and
callers must then not cache at all (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import BigInteger, Connection, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.batching import BatchWorker
from relto.store.db import Base, Database

__all__ = [
    "DOCUMENTS",
    "EXPORT",
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
EXPORT = "export"
#: Every counter the migrations seed.
KINDS = (PARTNERSHIP, VETTING, DOCUMENTS, EXPORT)


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


class VersionReader:
    """:func:`read_versions` for code on an event loop, batched.

    A coroutine awaiting :meth:`read` gets counters from a query that STARTS after it
    asked (never one already in flight), so a change committed before the call is
    always seen. All coroutines waiting when the reader thread takes its turn share
    that one query; the loop never waits on the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._worker: BatchWorker[None, Mapping[str, int]] = BatchWorker(
            self._read_for, "relto-fact-versions"
        )

    async def read(self) -> Mapping[str, int]:
        return await self._worker.submit(None)

    def _read_for(self, waiting: list[None]) -> list[Mapping[str, int]]:
        with self.db.engine.connect() as conn:
            versions = read_versions(conn)
        return [versions] * len(waiting)
