"""Tables and the SQL repository of :mod:`relto.vetting`.

People, clearances and the append-only clearance event log. The repository converts
rows to the pure domain objects and back and never commits: the caller's
``Database.session()`` does, after the audit sink accepted the change.

Clearance events are append-only: the repository only ever inserts them, the primary
key ``(clearance_id, seq)`` makes two concurrent appends of the same sequence number
collide (one fails, nothing is lost), and database triggers refuse UPDATE and
DELETE on the event table (see the migration).

Every write counts one change of the vetting facts (:func:`relto.store.facts.bump`)
in the same transaction, so decision caches in every process see it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text, case, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.store.db import Base
from relto.store.facts import VETTING, bump
from relto.vetting import (
    ACTIVE,
    Clearance,
    ClearanceEvent,
    EventKind,
    IncidentKind,
    ObligationKind,
    Person,
    ProjectMembership,
    Role,
    Status,
)

__all__ = [
    "ClearanceEventRow",
    "ClearanceRow",
    "PersonRow",
    "SqlVettingRepository",
]


class PersonRow(Base):
    __tablename__ = "vetting_person"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    organisation: Mapped[str] = mapped_column(String(200), nullable=False)
    home_nation: Mapped[str] = mapped_column(String(3), nullable=False)
    nationalities: Mapped[str] = mapped_column(String(200), nullable=False)  # "AUS,JPN"
    roles: Mapped[str] = mapped_column(String(200), nullable=False)  # "engineer,auditor"
    projects: Mapped[str] = mapped_column(Text, nullable=False)  # JSON [[project, role]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ClearanceRow(Base):
    __tablename__ = "vetting_clearance"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("vetting_person.id"), nullable=False, index=True
    )
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    level: Mapped[str] = mapped_column(String(40), nullable=False)
    classification: Mapped[str] = mapped_column(String(80), nullable=False)
    caveats: Mapped[str] = mapped_column(String(1200), nullable=False)  # "SCI,..."
    sponsor: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ClearanceEventRow(Base):
    __tablename__ = "vetting_clearance_event"

    clearance_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("vetting_clearance.id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    obligation: Mapped[str | None] = mapped_column(String(40))
    occurred_on: Mapped[date | None] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    incident: Mapped[str | None] = mapped_column(String(20))
    ref: Mapped[int | None] = mapped_column(Integer)


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _split(text: str) -> list[str]:
    return [c for c in text.split(",") if c]


def person_from_row(row: PersonRow) -> Person:
    projects = tuple(ProjectMembership(p, r) for p, r in json.loads(row.projects))
    return Person(
        id=row.id,
        name=row.name,
        nationalities=frozenset(_split(row.nationalities)),
        organisation=row.organisation,
        home_nation=row.home_nation,
        roles=frozenset(Role(r) for r in _split(row.roles)),
        projects=projects,
    )


def _event_from_row(row: ClearanceEventRow) -> ClearanceEvent:
    return ClearanceEvent(
        seq=row.seq,
        kind=EventKind(row.kind),
        at=_utc(row.at),
        actor=row.actor,
        reason=row.reason,
        from_status=Status(row.from_status) if row.from_status else None,
        to_status=Status(row.to_status) if row.to_status else None,
        valid_until=_opt_utc(row.valid_until),
        obligation=ObligationKind(row.obligation) if row.obligation else None,
        occurred_on=row.occurred_on,
        due_at=_opt_utc(row.due_at),
        incident=IncidentKind(row.incident) if row.incident else None,
        ref=row.ref,
    )


def _event_row(clearance_id: str, e: ClearanceEvent) -> ClearanceEventRow:
    return ClearanceEventRow(
        clearance_id=clearance_id,
        seq=e.seq,
        kind=e.kind.value,
        at=e.at,
        actor=e.actor,
        reason=e.reason,
        from_status=e.from_status.value if e.from_status else None,
        to_status=e.to_status.value if e.to_status else None,
        valid_until=e.valid_until,
        obligation=e.obligation.value if e.obligation else None,
        occurred_on=e.occurred_on,
        due_at=e.due_at,
        incident=e.incident.value if e.incident else None,
        ref=e.ref,
    )


class SqlVettingRepository:
    """People and clearances in one session (the caller owns the transaction)."""

    def __init__(self, session: Session) -> None:
        self.s = session

    # -- people ---------------------------------------------------------------------

    def get_person(self, person_id: str) -> Person | None:
        row = self.s.get(PersonRow, person_id)
        return None if row is None else person_from_row(row)

    def put_person(self, person: Person, at: datetime) -> bool:
        """Insert or update; returns True when the person is new."""
        row = self.s.get(PersonRow, person.id)
        created = row is None
        if row is None:
            row = PersonRow(id=person.id, created_at=at)
            self.s.add(row)
        row.name = person.name
        row.organisation = person.organisation
        row.home_nation = person.home_nation
        row.nationalities = ",".join(sorted(person.nationalities))
        row.roles = ",".join(sorted(r.value for r in person.roles))
        row.projects = json.dumps([[m.project, m.role] for m in person.projects])
        row.updated_at = at
        bump(self.s, VETTING)
        self.s.flush()
        return created

    def list_people(self, *, limit: int, after: str | None) -> list[Person]:
        q = select(PersonRow).order_by(PersonRow.id).limit(limit)
        if after is not None:
            q = q.where(PersonRow.id > after)
        return [person_from_row(r) for r in self.s.scalars(q)]

    # -- clearances -----------------------------------------------------------------

    def get_people(self, person_ids: Iterable[str]) -> dict[str, Person]:
        """The people with these ids that exist, in one query."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        rows = self.s.scalars(select(PersonRow).where(PersonRow.id.in_(ids)))
        return {r.id: person_from_row(r) for r in rows}

    def get_clearance(self, clearance_id: str) -> Clearance | None:
        row = self.s.get(ClearanceRow, clearance_id)
        if row is None:
            return None
        events = self.s.scalars(
            select(ClearanceEventRow)
            .where(ClearanceEventRow.clearance_id == clearance_id)
            .order_by(ClearanceEventRow.seq)
        )
        return _clearance(row, events)

    def add_clearance(self, c: Clearance) -> None:
        self.s.add(
            ClearanceRow(
                id=c.id,
                person_id=c.person_id,
                nation=c.nation,
                level=c.level,
                classification=c.classification,
                caveats=",".join(sorted(c.caveats)),
                sponsor=c.sponsor,
                created_at=c.created_at,
            )
        )
        self.s.flush()
        self.append_events(c.id, c.events)

    def append_events(self, clearance_id: str, events: tuple[ClearanceEvent, ...]) -> None:
        """Insert new events only; never touches stored ones."""
        for e in events:
            self.s.add(_event_row(clearance_id, e))
        bump(self.s, VETTING)
        self.s.flush()

    def list_clearances(
        self, *, limit: int, after: str | None, person_id: str | None = None
    ) -> list[Clearance]:
        """A page of clearances with their events: two queries, whatever the page size."""
        q = select(ClearanceRow).order_by(ClearanceRow.id).limit(limit)
        if after is not None:
            q = q.where(ClearanceRow.id > after)
        if person_id is not None:
            q = q.where(ClearanceRow.person_id == person_id)
        rows = list(self.s.scalars(q))
        if not rows:
            return []
        events: dict[str, list[ClearanceEventRow]] = {r.id: [] for r in rows}
        for e in self.s.scalars(
            select(ClearanceEventRow)
            .where(ClearanceEventRow.clearance_id.in_(list(events)))
            .order_by(ClearanceEventRow.clearance_id, ClearanceEventRow.seq)
        ):
            events[e.clearance_id].append(e)
        return [_clearance(r, events[r.id]) for r in rows]

    def expiry_counts(self, at: datetime, until: datetime) -> tuple[int, int]:
        """``(expired, expiring)``: clearances whose last recorded transition is to
        an active status (granted, interim) with a validity date at or before
        ``at`` (expired, not renewed or closed), and after ``at`` but at or before
        ``until``. One aggregate query over each clearance's last transition."""
        e = ClearanceEventRow
        last = (
            select(e.clearance_id, func.max(e.seq).label("seq"))
            .where(e.kind == EventKind.TRANSITION.value)
            .group_by(e.clearance_id)
            .subquery()
        )
        row = self.s.execute(
            select(
                func.sum(case((e.valid_until <= at, 1), else_=0)),
                func.sum(case((e.valid_until > at, 1), else_=0)),
            )
            .select_from(e)
            .join(last, (e.clearance_id == last.c.clearance_id) & (e.seq == last.c.seq))
            .where(
                e.to_status.in_([s.value for s in ACTIVE]),
                e.valid_until.is_not(None),
                e.valid_until <= until,
            )
        ).one()
        return int(row[0] or 0), int(row[1] or 0)


def _clearance(row: ClearanceRow, events: Iterable[ClearanceEventRow]) -> Clearance:
    return Clearance(
        id=row.id,
        person_id=row.person_id,
        nation=row.nation,
        level=row.level,
        classification=row.classification,
        caveats=frozenset(_split(row.caveats)),
        sponsor=row.sponsor,
        events=tuple(_event_from_row(e) for e in events),
    )
