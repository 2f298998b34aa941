"""The node's partnerships as a person may see and change them.

Reads show only the partnerships the person's nation belongs to
(``partnership:read``); anything else is "not found". Changes go through the
service functions of :mod:`relto.partnership.service`, which ask the
authorisation point and record every change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.errors import InvalidInput
from relto.events import AuditSink
from relto.partnership.errors import UnknownRecord
from relto.partnership.model import Admission, Partnership, Project, RecordedAgreement
from relto.partnership.service import (
    MAX_PAGE,
    Page,
    admit,
    change_membership,
    create_partnership,
    create_project,
    end_admission,
    matrix,
    record_agreement,
    set_export_relevant,
    set_joint_custody,
)
from relto.store import Database
from relto.store.partnership import SqlPartnershipRepository

__all__ = ["Overview", "PartnershipRegistry"]


@dataclass(frozen=True)
class Overview:
    """A partnership with its projects, admissions and the ceiling matrix at a time."""

    partnership: Partnership
    projects: tuple[Project, ...]
    admissions: tuple[Admission, ...]
    ceilings: dict[str, dict[str, str | None]]
    at: datetime


#: Why a node in a federation refuses a single officer's change of the partnership.
NEEDS_QUORUM = (
    "this node takes part in a federation: admissions, their end and projects are "
    "partnership changes, applied when every member node has signed; propose one "
    "(relto partnership change propose, or POST /api/v1/partnership/changes)"
)


class PartnershipRegistry:
    """The partnership's records on this node. ``federated``: whether the node pins
    partner nodes; then admitting, ending admissions, creating projects, changing the
    members and recording agreements go only through quorum-signed changes
    (``by_quorum=True``, :mod:`relto.federation.ledger`): no nation alone changes the
    partnership."""

    def __init__(
        self,
        db: Database,
        sink: AuditSink,
        authorizer: Authorizer,
        federated: Callable[[], bool] = lambda: False,
    ) -> None:
        self._db = db
        self._sink = sink
        self._authz = authorizer
        self._federated = federated

    def _alone(self, by_quorum: bool) -> None:
        if not by_quorum and self._federated():
            raise InvalidInput(NEEDS_QUORUM)

    # -- reading -------------------------------------------------------------------

    def _sees(self, who: Grantee, p: Partnership) -> bool:
        return self._authz.allows(who, Permission.PARTNERSHIP_READ, Scope.of(p.nations))

    def _visible(self, repo: SqlPartnershipRepository, who: Grantee, pid: str) -> Partnership:
        p = repo.get_partnership(pid)
        if p is None or not self._sees(who, p):
            raise UnknownRecord("no such partnership")
        return p

    def _visible_project(
        self, repo: SqlPartnershipRepository, who: Grantee, project_id: str
    ) -> Project:
        project = repo.get_project(project_id)
        if project is None:
            raise UnknownRecord("no such project")
        self._visible(repo, who, project.partnership_id)
        return project

    def partnerships(self, who: Grantee) -> list[Partnership]:
        with self._db.session() as s:
            items = SqlPartnershipRepository(s).list_partnerships(0, MAX_PAGE).items
        return [p for p in items if self._sees(who, p)]

    def served(self) -> Partnership | None:
        """The partnership this node serves (the first it holds), for the node's own
        machinery (its change ledger); ``None`` before one is loaded."""
        with self._db.session() as s:
            items = SqlPartnershipRepository(s).list_partnerships(0, 1).items
        return items[0] if items else None

    def partnership(self, who: Grantee, partnership_id: str) -> Partnership:
        with self._db.session() as s:
            return self._visible(SqlPartnershipRepository(s), who, partnership_id)

    def overview(self, who: Grantee, partnership_id: str | None, at: datetime) -> Overview | None:
        """One partnership (default: the first of the person's) with its projects,
        admissions and ceilings at ``at``; ``None`` when the person has none."""
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            if partnership_id is None:
                mine = [p for p in repo.list_partnerships(0, MAX_PAGE).items if self._sees(who, p)]
                if not mine:
                    return None
                p = mine[0]
            else:
                p = self._visible(repo, who, partnership_id)
            projects = tuple(repo.list_projects(p.id, 0, MAX_PAGE).items)
            admissions = tuple(a for pr in projects for a in repo.admissions_for(pr.id))
        return Overview(p, projects, admissions, matrix(p, projects, admissions, at), at)

    def may_admit(self, who: Grantee, p: Partnership) -> bool:
        """Whether to offer the admission forms (the change itself is decided again)."""
        return self._authz.allows(who, Permission.ADMIN_ADMISSIONS_WRITE, Scope.of(p.members))

    def projects(self, who: Grantee, partnership_id: str | None) -> list[Project]:
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            visible = {
                p.id for p in repo.list_partnerships(0, MAX_PAGE).items if self._sees(who, p)
            }
            items = repo.list_projects(partnership_id, 0, MAX_PAGE).items
        return [p for p in items if p.partnership_id in visible]

    def project(self, who: Grantee, project_id: str) -> Project:
        with self._db.session() as s:
            return self._visible_project(SqlPartnershipRepository(s), who, project_id)

    def admissions(
        self,
        who: Grantee,
        *,
        project_id: str | None,
        nation: str | None,
        offset: int,
        limit: int,
    ) -> Page[Admission]:
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            if project_id is not None:
                self._visible_project(repo, who, project_id)
            visible = {
                pr.id
                for p in repo.list_partnerships(0, MAX_PAGE).items
                if self._sees(who, p)
                for pr in repo.list_projects(p.id, 0, MAX_PAGE).items
            }
            page = repo.list_admissions(
                project_id=project_id, nation=nation, offset=offset, limit=limit
            )
        items = tuple(a for a in page.items if a.project_id in visible)
        return Page(items, page.total, page.offset, page.limit)

    # -- changing ------------------------------------------------------------------

    def create_partnership(self, who: Grantee, p: Partnership, at: datetime) -> Partnership:
        with self._db.session() as s:
            return create_partnership(
                SqlPartnershipRepository(s), self._sink, partnership=p, actor=who, at=at
            )

    def create_project(
        self, who: Grantee, project: Project, at: datetime, *, by_quorum: bool = False
    ) -> Project:
        self._alone(by_quorum)
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible(repo, who, project.partnership_id)
            return create_project(repo, self._sink, project=project, actor=who, at=at)

    def set_joint_custody(
        self,
        who: Grantee,
        project_id: str,
        nations: Sequence[str],
        at: datetime,
        *,
        justification: str,
    ) -> Project:
        """Set the project's default joint custody (see
        :func:`relto.partnership.service.set_joint_custody`); a person must say why."""
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible_project(repo, who, project_id)
            return set_joint_custody(
                repo,
                self._sink,
                project_id=project_id,
                nations=nations,
                actor=who,
                at=at,
                justification=justification,
            )

    def set_export_relevant(
        self,
        who: Grantee,
        project_id: str,
        relevant: bool,
        at: datetime,
        *,
        justification: str,
    ) -> Project:
        """Say whether the project is export relevant (see
        :func:`relto.partnership.service.set_export_relevant`); a person must say why."""
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible_project(repo, who, project_id)
            return set_export_relevant(
                repo,
                self._sink,
                project_id=project_id,
                relevant=relevant,
                actor=who,
                at=at,
                justification=justification,
            )

    def admit(
        self,
        who: Grantee,
        *,
        project_id: str,
        nation: str,
        ceiling: str,
        at: datetime,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        note: str = "",
        justification: str,
        by_quorum: bool = False,
    ) -> Admission:
        """Admit (see :func:`relto.partnership.service.admit`); a person must say why."""
        self._alone(by_quorum)
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible_project(repo, who, project_id)
            return admit(
                repo,
                self._sink,
                project_id=project_id,
                nation=nation,
                ceiling=ceiling,
                actor=who,
                at=at,
                valid_from=valid_from,
                valid_until=valid_until,
                note=note,
                justification=justification,
            )

    def end(
        self,
        who: Grantee,
        admission_id: str,
        at: datetime,
        note: str = "",
        *,
        justification: str,
        by_quorum: bool = False,
    ) -> Admission:
        """End an admission now; a person must say why."""
        self._alone(by_quorum)
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            current = repo.get_admission(admission_id[:64])
            if current is None:
                raise UnknownRecord("no such admission")
            self._visible_project(repo, who, current.project_id)
            return end_admission(
                repo,
                self._sink,
                admission_id=current.id,
                actor=who,
                at=at,
                note=note,
                justification=justification,
            )

    def admission(self, who: Grantee, admission_id: str) -> Admission:
        """One admission of a partnership ``who`` may see (else not found)."""
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            current = repo.get_admission(admission_id[:64])
            if current is None:
                raise UnknownRecord("no such admission")
            self._visible_project(repo, who, current.project_id)
            return current

    def change_membership(
        self,
        who: Grantee,
        *,
        partnership_id: str,
        nation: str,
        member: bool,
        at: datetime,
        justification: str,
        by_quorum: bool = False,
    ) -> Partnership:
        """Add or remove a member (see :func:`relto.partnership.service.change_membership`)."""
        self._alone(by_quorum)
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible(repo, who, partnership_id)
            changed = change_membership(
                repo, self._sink, partnership_id=partnership_id, nation=nation,
                member=member, actor=who, at=at, justification=justification,
            )  # fmt: skip
            return changed

    def record_agreement(
        self,
        who: Grantee,
        agreement: RecordedAgreement,
        at: datetime,
        *,
        justification: str,
        by_quorum: bool = False,
    ) -> RecordedAgreement:
        """Record an agreement (see :func:`relto.partnership.service.record_agreement`)."""
        self._alone(by_quorum)
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible(repo, who, agreement.partnership_id)
            done = record_agreement(
                repo, self._sink, agreement=agreement, actor=who, at=at,
                justification=justification,
            )  # fmt: skip
            return done

    def agreements(self, who: Grantee, partnership_id: str) -> list[RecordedAgreement]:
        """The agreements a partnership ``who`` may see has recorded."""
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            self._visible(repo, who, partnership_id)
            return repo.agreements(partnership_id)
