"""Tables and the SQL repository of :mod:`relto.partnership`.

The repository converts rows to the pure domain objects and back; it never
commits (the caller's ``Database.session()`` does, after the audit sink accepted
the change). Every write also counts one change of the partnership facts
(:func:`relto.store.facts.bump`) in the same transaction, so decision caches in
every process see it on their next decision.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    false,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.partnership.model import Admission, Partnership, Project, RecordedAgreement
from relto.partnership.service import Page, page_bounds
from relto.store.db import Base
from relto.store.facts import PARTNERSHIP, bump

__all__ = [
    "AdmissionRow",
    "AgreementRow",
    "PartnershipRow",
    "ProjectRow",
    "SqlPartnershipRepository",
]


class PartnershipRow(Base):
    __tablename__ = "partnership"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    members: Mapped[str] = mapped_column(String(200), nullable=False)  # "AUS,GBR,USA"
    partners: Mapped[str] = mapped_column(String(200), nullable=False)


class ProjectRow(Base):
    __tablename__ = "partnership_project"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    partnership_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("partnership.id"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: Nations holding joint custody of new objects by default: "GBR,USA" ("": none).
    joint_custody: Mapped[str] = mapped_column(
        String(100), nullable=False, default="", server_default=""
    )
    #: New objects need an export classification (:attr:`Project.export_relevant`).
    export_relevant: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )


class AdmissionRow(Base):
    __tablename__ = "partnership_admission"
    __table_args__ = (Index("ix_partnership_admission_project_nation", "project_id", "nation"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("partnership_project.id"), nullable=False
    )
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    ceiling: Mapped[str] = mapped_column(String(40), nullable=False)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    admitted_by: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    ended_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class AgreementRow(Base):
    """A security-of-information agreement the partnership recorded by quorum."""

    __tablename__ = "partnership_agreement"

    partnership_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("partnership.id"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    parties: Mapped[str] = mapped_column(String(7), nullable=False)  # "GBR,JPN"
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    in_force: Mapped[date] = mapped_column(Date, nullable=False)
    terminated: Mapped[date | None] = mapped_column(Date)
    scope: Mapped[str] = mapped_column(String(20), nullable=False)
    sources: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of strings
    recorded_by: Mapped[str] = mapped_column(String(200), nullable=False, default="")


def _agreement(row: AgreementRow) -> RecordedAgreement:
    parties = _split(row.parties)
    return RecordedAgreement(
        id=row.id,
        partnership_id=row.partnership_id,
        parties=(parties[0], parties[1]),
        title=row.title,
        in_force=row.in_force,
        terminated=row.terminated,
        scope=row.scope,
        sources=tuple(json.loads(row.sources)),
        recorded_by=row.recorded_by,
    )


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _split(codes: str) -> tuple[str, ...]:
    return tuple(c for c in codes.split(",") if c)


def _partnership(row: PartnershipRow) -> Partnership:
    return Partnership(
        id=row.id,
        name=row.name,
        description=row.description,
        members=_split(row.members),
        partners=_split(row.partners),
    )


def _project(row: ProjectRow) -> Project:
    return Project(
        id=row.id,
        partnership_id=row.partnership_id,
        name=row.name,
        description=row.description,
        joint_custody=_split(row.joint_custody or ""),
        export_relevant=bool(row.export_relevant),
    )


def _admission(row: AdmissionRow) -> Admission:
    valid_from = _utc(row.valid_from)
    assert valid_from is not None
    return Admission(
        id=row.id,
        project_id=row.project_id,
        nation=row.nation,
        ceiling=row.ceiling,
        valid_from=valid_from,
        valid_until=_utc(row.valid_until),
        ended_at=_utc(row.ended_at),
        admitted_by=row.admitted_by,
        ended_by=row.ended_by,
        note=row.note,
    )


class SqlPartnershipRepository:
    """:class:`relto.partnership.PartnershipRepository` on a SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def get_partnership(self, partnership_id: str) -> Partnership | None:
        row = self.s.get(PartnershipRow, partnership_id)
        return _partnership(row) if row else None

    def list_partnerships(self, offset: int, limit: int) -> Page[Partnership]:
        offset, limit = page_bounds(offset, limit)
        total = self.s.scalar(select(func.count()).select_from(PartnershipRow)) or 0
        rows = self.s.scalars(
            select(PartnershipRow).order_by(PartnershipRow.id).offset(offset).limit(limit)
        )
        return Page(tuple(_partnership(r) for r in rows), total, offset, limit)

    def add_partnership(self, p: Partnership) -> None:
        self.s.add(
            PartnershipRow(
                id=p.id,
                name=p.name,
                description=p.description,
                members=",".join(p.members),
                partners=",".join(p.partners),
            )
        )
        bump(self.s, PARTNERSHIP)
        self.s.flush()

    def get_project(self, project_id: str) -> Project | None:
        row = self.s.get(ProjectRow, project_id)
        return _project(row) if row else None

    def list_projects(self, partnership_id: str | None, offset: int, limit: int) -> Page[Project]:
        offset, limit = page_bounds(offset, limit)
        q = select(ProjectRow)
        c = select(func.count()).select_from(ProjectRow)
        if partnership_id is not None:
            q = q.where(ProjectRow.partnership_id == partnership_id)
            c = c.where(ProjectRow.partnership_id == partnership_id)
        total = self.s.scalar(c) or 0
        rows = self.s.scalars(q.order_by(ProjectRow.id).offset(offset).limit(limit))
        return Page(tuple(_project(r) for r in rows), total, offset, limit)

    def add_project(self, p: Project) -> None:
        self.s.add(
            ProjectRow(
                id=p.id,
                partnership_id=p.partnership_id,
                name=p.name,
                description=p.description,
                joint_custody=",".join(p.joint_custody),
                export_relevant=p.export_relevant,
            )
        )
        bump(self.s, PARTNERSHIP)
        self.s.flush()

    def put_project(self, p: Project) -> None:
        """Store a changed project (its name, description, joint custody and
        whether it is export relevant)."""
        row = self.s.get(ProjectRow, p.id)
        if row is None or row.partnership_id != p.partnership_id:
            raise ValueError(f"no project {p.id!r} of partnership {p.partnership_id!r}")
        row.name = p.name
        row.description = p.description
        row.joint_custody = ",".join(p.joint_custody)
        row.export_relevant = p.export_relevant
        bump(self.s, PARTNERSHIP)
        self.s.flush()

    def get_admission(self, admission_id: str) -> Admission | None:
        row = self.s.get(AdmissionRow, admission_id)
        return _admission(row) if row else None

    def admissions_for(self, project_id: str, nation: str | None = None) -> list[Admission]:
        q = select(AdmissionRow).where(AdmissionRow.project_id == project_id)
        if nation is not None:
            q = q.where(AdmissionRow.nation == nation)
        return [_admission(r) for r in self.s.scalars(q.order_by(AdmissionRow.valid_from))]

    def all_admissions(self) -> list[Admission]:
        return [_admission(r) for r in self.s.scalars(select(AdmissionRow))]

    def list_admissions(
        self, *, project_id: str | None, nation: str | None, offset: int, limit: int
    ) -> Page[Admission]:
        offset, limit = page_bounds(offset, limit)
        q = select(AdmissionRow)
        c = select(func.count()).select_from(AdmissionRow)
        if project_id is not None:
            q = q.where(AdmissionRow.project_id == project_id)
            c = c.where(AdmissionRow.project_id == project_id)
        if nation is not None:
            q = q.where(AdmissionRow.nation == nation)
            c = c.where(AdmissionRow.nation == nation)
        total = self.s.scalar(c) or 0
        q = q.order_by(
            AdmissionRow.project_id, AdmissionRow.nation, AdmissionRow.valid_from, AdmissionRow.id
        )
        rows = self.s.scalars(q.offset(offset).limit(limit))
        return Page(tuple(_admission(r) for r in rows), total, offset, limit)

    def put_admission(self, a: Admission) -> None:
        row = self.s.get(AdmissionRow, a.id)
        if row is None:
            row = AdmissionRow(id=a.id)
            self.s.add(row)
        row.project_id = a.project_id
        row.nation = a.nation
        row.ceiling = a.ceiling
        row.valid_from = a.valid_from
        row.valid_until = a.valid_until
        row.ended_at = a.ended_at
        row.admitted_by = a.admitted_by
        row.ended_by = a.ended_by
        row.note = a.note
        bump(self.s, PARTNERSHIP)
        self.s.flush()

    def put_partnership(self, p: Partnership) -> None:
        """Store a changed partnership (its name, description, members, partners)."""
        row = self.s.get(PartnershipRow, p.id)
        if row is None:
            raise ValueError(f"no partnership {p.id!r}")
        row.name = p.name
        row.description = p.description
        row.members = ",".join(p.members)
        row.partners = ",".join(p.partners)
        bump(self.s, PARTNERSHIP)
        self.s.flush()

    def put_agreement(self, a: RecordedAgreement) -> None:
        """Record (or replace, by id) an agreement of a partnership."""
        row = self.s.get(AgreementRow, (a.partnership_id, a.id))
        if row is None:
            row = AgreementRow(partnership_id=a.partnership_id, id=a.id)
            self.s.add(row)
        row.parties = ",".join(a.parties)
        row.title = a.title
        row.in_force = a.in_force
        row.terminated = a.terminated
        row.scope = a.scope
        row.sources = json.dumps(list(a.sources))
        row.recorded_by = a.recorded_by
        bump(self.s, PARTNERSHIP)
        self.s.flush()

    def agreements(self, partnership_id: str | None = None) -> list[RecordedAgreement]:
        """The agreements recorded (for one partnership, or all), by id."""
        q = select(AgreementRow)
        if partnership_id is not None:
            q = q.where(AgreementRow.partnership_id == partnership_id)
        return [_agreement(r) for r in self.s.scalars(q.order_by(AgreementRow.id))]
