"""Service functions: every change is checked, stored, then audited.

Each function takes a :class:`PartnershipRepository` (the SQL one in
:mod:`relto.store.partnership`, :class:`MemoryRepository` in tests), an
:class:`~relto.events.AuditSink` and ``at``. The sink is called after the change is
written and before the caller commits, so a change the audit log did not accept is
rolled back with the transaction.

Who may change a partnership is decided by :mod:`relto.authz` (the one
authorisation point), asked here, never in a route: only a security officer of a
member nation may create projects and admit or end admissions; a refusal is
recorded in the audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.errors import InvalidInput
from relto.events import AuditSink
from relto.partnership.errors import (
    AdmissionConflict,
    InvalidPartnership,
    NotPermitted,
    UnknownRecord,
)
from relto.partnership.model import (
    Admission,
    Partnership,
    Project,
    RecordedAgreement,
    check_ceiling,
    check_custody,
    check_nation,
    classification_rank,
    require_aware,
)

__all__ = [
    "JUSTIFICATION_MAX",
    "JUSTIFICATION_MIN",
    "MAX_PAGE",
    "Actor",
    "MemoryRepository",
    "Page",
    "PartnershipRepository",
    "admit",
    "ceiling_for",
    "change_membership",
    "check_justification",
    "create_partnership",
    "create_project",
    "end_admission",
    "matrix",
    "page_bounds",
    "record_agreement",
    "set_export_relevant",
    "set_joint_custody",
]

#: The largest page any list returns.
MAX_PAGE = 200
#: Bounds of the justification a person gives for a change (characters).
JUSTIFICATION_MIN = 10
JUSTIFICATION_MAX = 500


def check_justification(text: str) -> str:
    """Why a person makes a change, recorded in its audit entry: one to a few
    sentences of plain text (no control characters but newlines), surrounding
    spaces dropped, :data:`JUSTIFICATION_MIN` to :data:`JUSTIFICATION_MAX`
    characters. Raises :class:`relto.errors.InvalidInput`."""
    if not isinstance(text, str):
        raise TypeError("justification must be a string")
    text = text.strip().replace("\r\n", "\n")
    if not JUSTIFICATION_MIN <= len(text) <= JUSTIFICATION_MAX:
        raise InvalidInput(
            f"a justification of {JUSTIFICATION_MIN} to {JUSTIFICATION_MAX} characters is required"
        )
    if any((ord(c) < 32 and c != "\n") or ord(c) == 127 for c in text):
        raise InvalidInput("the justification must be plain text")
    return text


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a person id and the roles they hold, per nation."""

    person_id: str
    nation: str
    roles: frozenset[tuple[str, str]] = frozenset()  # (role, nation)
    nationalities: frozenset[str] = frozenset()

    @property
    def home_nation(self) -> str:
        return self.nation


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    offset: int
    limit: int


def page_bounds(offset: int, limit: int) -> tuple[int, int]:
    """Clamp a requested page to ``0 <= offset`` and ``1 <= limit <= MAX_PAGE``."""
    if offset < 0:
        raise InvalidPartnership("offset must not be negative")
    if limit < 1:
        raise InvalidPartnership("limit must be at least 1")
    return offset, min(limit, MAX_PAGE)


class PartnershipRepository(Protocol):
    """Where partnerships live. Reads return domain objects; writes take them."""

    def get_partnership(self, partnership_id: str) -> Partnership | None: ...
    def list_partnerships(self, offset: int, limit: int) -> Page[Partnership]: ...
    def add_partnership(self, p: Partnership) -> None: ...
    def get_project(self, project_id: str) -> Project | None: ...
    def list_projects(
        self, partnership_id: str | None, offset: int, limit: int
    ) -> Page[Project]: ...
    def add_project(self, p: Project) -> None: ...
    def put_project(self, p: Project) -> None: ...
    def get_admission(self, admission_id: str) -> Admission | None: ...
    def admissions_for(self, project_id: str, nation: str | None = None) -> list[Admission]: ...
    def list_admissions(
        self,
        *,
        project_id: str | None,
        nation: str | None,
        offset: int,
        limit: int,
    ) -> Page[Admission]: ...
    def put_admission(self, a: Admission) -> None: ...
    def put_partnership(self, p: Partnership) -> None: ...
    def put_agreement(self, a: RecordedAgreement) -> None: ...
    def agreements(self, partnership_id: str | None = None) -> list[RecordedAgreement]: ...


@dataclass
class MemoryRepository:
    """An in-process repository for tests and tools."""

    partnerships: dict[str, Partnership] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    admissions: dict[str, Admission] = field(default_factory=dict)
    recorded: dict[tuple[str, str], RecordedAgreement] = field(default_factory=dict)

    def get_partnership(self, partnership_id: str) -> Partnership | None:
        return self.partnerships.get(partnership_id)

    def list_partnerships(self, offset: int, limit: int) -> Page[Partnership]:
        return _page(sorted(self.partnerships.values(), key=lambda p: p.id), offset, limit)

    def add_partnership(self, p: Partnership) -> None:
        self.partnerships[p.id] = p

    def get_project(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def list_projects(self, partnership_id: str | None, offset: int, limit: int) -> Page[Project]:
        items = [
            p
            for p in self.projects.values()
            if partnership_id is None or p.partnership_id == partnership_id
        ]
        return _page(sorted(items, key=lambda p: p.id), offset, limit)

    def add_project(self, p: Project) -> None:
        self.projects[p.id] = p

    def put_project(self, p: Project) -> None:
        self.projects[p.id] = p

    def get_admission(self, admission_id: str) -> Admission | None:
        return self.admissions.get(admission_id)

    def admissions_for(self, project_id: str, nation: str | None = None) -> list[Admission]:
        return [
            a
            for a in self.admissions.values()
            if a.project_id == project_id and (nation is None or a.nation == nation)
        ]

    def list_admissions(
        self, *, project_id: str | None, nation: str | None, offset: int, limit: int
    ) -> Page[Admission]:
        items = [
            a
            for a in self.admissions.values()
            if (project_id is None or a.project_id == project_id)
            and (nation is None or a.nation == nation)
        ]
        items.sort(key=lambda a: (a.project_id, a.nation, a.valid_from, a.id))
        return _page(items, offset, limit)

    def put_admission(self, a: Admission) -> None:
        self.admissions[a.id] = a

    def put_partnership(self, p: Partnership) -> None:
        if p.id not in self.partnerships:
            raise ValueError(f"no partnership {p.id!r}")
        self.partnerships[p.id] = p

    def put_agreement(self, a: RecordedAgreement) -> None:
        self.recorded[(a.partnership_id, a.id)] = a

    def agreements(self, partnership_id: str | None = None) -> list[RecordedAgreement]:
        found = [
            a
            for (pid, _), a in self.recorded.items()
            if partnership_id is None or pid == partnership_id
        ]
        return sorted(found, key=lambda a: a.id)


def _page(items: Sequence[T], offset: int, limit: int) -> Page[T]:
    offset, limit = page_bounds(offset, limit)
    return Page(tuple(items[offset : offset + limit]), len(items), offset, limit)


# -- permission -------------------------------------------------------------------


def _require(
    sink: AuditSink,
    actor: Grantee,
    permission: Permission,
    partnership: Partnership,
    target: str,
    at: datetime,
) -> None:
    """The authorisation point's answer for a change to ``partnership`` (its member
    nations' officers decide), recorded; a refusal raises :class:`NotPermitted`."""
    decision = Authorizer(sink, clock=lambda: at).check(
        actor, permission, Scope.of(partnership.members), target=target
    )
    if not decision.allowed:
        raise NotPermitted(
            f"{actor.person_id} is not a security officer of a member nation of {partnership.id}"
        )


def _partnership_of(repo: PartnershipRepository, project_id: str) -> tuple[Project, Partnership]:
    project = repo.get_project(project_id)
    if project is None:
        raise UnknownRecord(f"no project {project_id[:70]!r}")
    partnership = repo.get_partnership(project.partnership_id)
    if partnership is None:  # pragma: no cover - foreign key
        raise UnknownRecord(f"no partnership {project.partnership_id!r}")
    return project, partnership


# -- changes ----------------------------------------------------------------------


def create_partnership(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    partnership: Partnership,
    actor: Grantee,
    at: datetime,
) -> Partnership:
    """Define a partnership. Only a security officer of one of its members may."""
    require_aware(at)
    _require(sink, actor, Permission.ADMIN_PARTNERSHIPS_WRITE, partnership, partnership.id, at)
    if repo.get_partnership(partnership.id) is not None:
        raise InvalidPartnership(f"partnership {partnership.id!r} already exists")
    repo.add_partnership(partnership)
    sink.record(
        "partnership.created",
        {
            "partnership": partnership.id,
            "name": partnership.name,
            "members": list(partnership.members),
            "partners": list(partnership.partners),
            "by": actor.person_id,
            "at": at.isoformat(),
        },
    )
    return partnership


def create_project(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    project: Project,
    actor: Grantee,
    at: datetime,
) -> Project:
    """Add a project (workstream) to a partnership."""
    require_aware(at)
    partnership = repo.get_partnership(project.partnership_id)
    if partnership is None:
        raise UnknownRecord(f"no partnership {project.partnership_id!r}")
    _require(sink, actor, Permission.ADMIN_PROJECTS_WRITE, partnership, project.id, at)
    if repo.get_project(project.id) is not None:
        raise InvalidPartnership(f"project {project.id!r} already exists")
    repo.add_project(project)
    sink.record(
        "partnership.project_created",
        {
            "partnership": partnership.id,
            "project": project.id,
            "name": project.name,
            "by": actor.person_id,
            "at": at.isoformat(),
        },
    )
    return project


def set_joint_custody(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    project_id: str,
    nations: Iterable[str],
    actor: Grantee,
    at: datetime,
    justification: str | None = None,
) -> Project:
    """Set the nations that hold joint custody of the project's new objects by
    default (empty: none). Each must be a nation of the partnership; the
    uploader's own nation always holds a share besides. Objects already protected
    keep the custody they were protected under. Decided like any project change
    (``admin:projects:write``: a security officer of a member nation) and
    recorded as ``partnership.joint_custody_set``; ``justification`` as for
    :func:`admit`."""
    require_aware(at)
    why = None if justification is None else check_justification(justification)
    wanted = check_custody(tuple(dict.fromkeys(str(n).strip().upper() for n in nations)))
    project, partnership = _partnership_of(repo, project_id)
    _require(sink, actor, Permission.ADMIN_PROJECTS_WRITE, partnership, project.id, at)
    outside = [n for n in wanted if n not in partnership.nations]
    if outside:
        raise InvalidPartnership(
            f"not a nation of partnership {partnership.id}: {', '.join(outside)}"
        )
    changed = replace(project, joint_custody=wanted)
    repo.put_project(changed)
    sink.record(
        "partnership.joint_custody_set",
        {
            "partnership": partnership.id,
            "project": project.id,
            "joint_custody": list(wanted),
            "previous": list(project.joint_custody),
            "by": actor.person_id,
            "at": at.isoformat(),
            **({} if why is None else {"justification": why}),
        },
    )
    return changed


def set_export_relevant(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    project_id: str,
    relevant: bool,
    actor: Grantee,
    at: datetime,
    justification: str | None = None,
) -> Project:
    """Say whether the project's objects may be export controlled: then the
    console asks the uploader of each new object for its export classification,
    and the object is withheld until an export-control officer classifies it.
    Objects already protected are not changed. Decided like any project change
    (``admin:projects:write``) and recorded as ``partnership.export_relevant_set``;
    ``justification`` as for :func:`admit`."""
    require_aware(at)
    if not isinstance(relevant, bool):
        raise TypeError("relevant must be true or false")
    why = None if justification is None else check_justification(justification)
    project, partnership = _partnership_of(repo, project_id)
    _require(sink, actor, Permission.ADMIN_PROJECTS_WRITE, partnership, project.id, at)
    changed = replace(project, export_relevant=relevant)
    repo.put_project(changed)
    sink.record(
        "partnership.export_relevant_set",
        {
            "partnership": partnership.id,
            "project": project.id,
            "export_relevant": relevant,
            "previous": project.export_relevant,
            "by": actor.person_id,
            "at": at.isoformat(),
            **({} if why is None else {"justification": why}),
        },
    )
    return changed


def admit(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    project_id: str,
    nation: str,
    ceiling: str,
    actor: Grantee,
    at: datetime,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    note: str = "",
    admission_id: str | None = None,
    justification: str | None = None,
) -> Admission:
    """Admit ``nation`` to a project up to ``ceiling`` from ``valid_from`` (default ``at``).

    Refuses a nation outside the partnership and an interval that overlaps an
    admission the nation already holds for that project (end it first).
    ``justification`` (:func:`check_justification`) is recorded in the audit
    entry; every person-facing edge requires one (``None`` only for loaders).
    """
    require_aware(at)
    check_nation(nation)
    check_ceiling(ceiling)
    why = None if justification is None else check_justification(justification)
    project, partnership = _partnership_of(repo, project_id)
    _require(sink, actor, Permission.ADMIN_ADMISSIONS_WRITE, partnership, project.id, at)
    if nation not in partnership.nations:
        raise InvalidPartnership(f"{nation} is not a nation of partnership {partnership.id}")
    start = valid_from or at
    admission = Admission(
        id=admission_id or uuid.uuid4().hex,
        project_id=project.id,
        nation=nation,
        ceiling=ceiling,
        valid_from=start,
        valid_until=valid_until,
        admitted_by=actor.person_id,
        note=note,
    )
    for other in repo.admissions_for(project.id, nation):
        if other.overlaps(admission.valid_from, admission.valid_until):
            raise AdmissionConflict(
                f"{nation} already has an admission to {project.id} over that time; end it first"
            )
    repo.put_admission(admission)
    sink.record(
        "partnership.admitted",
        {
            "admission": admission.id,
            "project": project.id,
            "nation": nation,
            "ceiling": ceiling,
            "valid_from": admission.valid_from.isoformat(),
            "valid_until": admission.valid_until.isoformat() if admission.valid_until else None,
            "by": actor.person_id,
            "at": at.isoformat(),
            **({} if why is None else {"justification": why}),
        },
    )
    return admission


def end_admission(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    admission_id: str,
    actor: Grantee,
    at: datetime,
    note: str = "",
    justification: str | None = None,
) -> Admission:
    """End an admission at ``at``: from then on the nation no longer takes part.
    ``justification`` as for :func:`admit`."""
    require_aware(at)
    why = None if justification is None else check_justification(justification)
    current = repo.get_admission(admission_id)
    if current is None:
        raise UnknownRecord("no such admission")
    _project, partnership = _partnership_of(repo, current.project_id)
    _require(sink, actor, Permission.ADMIN_ADMISSIONS_WRITE, partnership, admission_id, at)
    if current.end is not None and current.end <= at:
        raise InvalidPartnership("the admission has already ended")
    end = max(at, current.valid_from)
    ended = replace(current, ended_at=end, ended_by=actor.person_id, note=note or current.note)
    repo.put_admission(ended)
    sink.record(
        "partnership.admission_ended",
        {
            "admission": ended.id,
            "project": ended.project_id,
            "nation": ended.nation,
            "ended_at": end.isoformat(),
            "by": actor.person_id,
            "at": at.isoformat(),
            **({} if why is None else {"justification": why}),
        },
    )
    return ended


def change_membership(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    partnership_id: str,
    nation: str,
    member: bool,
    actor: Grantee,
    at: datetime,
    justification: str | None = None,
) -> Partnership:
    """Make ``nation`` a member of the partnership (``member=True``; a partner moves
    up) or no longer one (it stays a partner nation: its admissions are untouched
    and end only when ended). Members' security officers make partnership changes;
    no admission is implied either way. A change that is already so changes
    nothing and records nothing. The last member cannot leave."""
    require_aware(at)
    check_nation(nation)
    why = None if justification is None else check_justification(justification)
    partnership = repo.get_partnership(partnership_id)
    if partnership is None:
        raise UnknownRecord(f"no partnership {partnership_id[:70]!r}")
    _require(sink, actor, Permission.ADMIN_PARTNERSHIPS_WRITE, partnership, nation, at)
    if member == partnership.is_member(nation):
        return partnership
    if member:
        changed = replace(
            partnership,
            members=(*partnership.members, nation),
            partners=tuple(n for n in partnership.partners if n != nation),
        )
    else:
        if len(partnership.members) == 1:
            raise InvalidPartnership("the last member cannot leave the partnership")
        changed = replace(
            partnership,
            members=tuple(n for n in partnership.members if n != nation),
            partners=(*partnership.partners, nation),
        )
    repo.put_partnership(changed)
    sink.record(
        "partnership.member_added" if member else "partnership.member_removed",
        {
            "partnership": partnership.id,
            "nation": nation,
            "members": list(changed.members),
            "by": actor.person_id,
            "at": at.isoformat(),
            **({} if why is None else {"justification": why}),
        },
    )
    return changed


def record_agreement(
    repo: PartnershipRepository,
    sink: AuditSink,
    *,
    agreement: RecordedAgreement,
    actor: Grantee,
    at: datetime,
    justification: str | None = None,
) -> RecordedAgreement:
    """Record (or replace, by id) a security-of-information agreement between two
    nations of the partnership: while it is in force, decisions recognise either
    party's clearances for the other's information (beside relto.vetting's sourced
    agreements; a recorded one replaces a sourced one of the same id)."""
    require_aware(at)
    why = None if justification is None else check_justification(justification)
    partnership = repo.get_partnership(agreement.partnership_id)
    if partnership is None:
        raise UnknownRecord(f"no partnership {agreement.partnership_id[:70]!r}")
    _require(sink, actor, Permission.ADMIN_PARTNERSHIPS_WRITE, partnership, agreement.id, at)
    outside = [n for n in agreement.parties if n not in partnership.nations]
    if outside:
        raise InvalidPartnership(
            f"not a nation of partnership {partnership.id}: {', '.join(outside)}"
        )
    repo.put_agreement(agreement)
    sink.record(
        "partnership.agreement_recorded",
        {
            "partnership": partnership.id,
            "agreement": agreement.id,
            "parties": list(agreement.parties),
            "in_force": agreement.in_force.isoformat(),
            "terminated": agreement.terminated.isoformat() if agreement.terminated else None,
            "scope": agreement.scope,
            "sources": list(agreement.sources),
            "recorded_by": agreement.recorded_by,
            "by": actor.person_id,
            "at": at.isoformat(),
            **({} if why is None else {"justification": why}),
        },
    )
    return agreement


# -- reading ----------------------------------------------------------------------


def ceiling_for(admissions: Iterable[Admission], nation: str, at: datetime) -> str | None:
    """The highest ceiling ``nation`` holds among ``admissions`` active at ``at``."""
    require_aware(at)
    best: str | None = None
    for a in admissions:
        if (
            a.nation == nation
            and a.active_at(at)
            and (best is None or classification_rank(a.ceiling) > classification_rank(best))
        ):
            best = a.ceiling
    return best


def matrix(
    partnership: Partnership,
    projects: Iterable[Project],
    admissions: Iterable[Admission],
    at: datetime,
) -> dict[str, dict[str, str | None]]:
    """Project id → nation → ceiling active at ``at`` (``None``: not admitted)."""
    by_project: dict[str, list[Admission]] = {}
    for a in admissions:
        by_project.setdefault(a.project_id, []).append(a)
    return {
        p.id: {n: ceiling_for(by_project.get(p.id, []), n, at) for n in partnership.nations}
        for p in projects
    }
