"""REST API for partnerships, projects and admissions (``/api/v1``).

Thin edges: parse, call one service function, render. Callers see only the
partnerships their nation belongs to (``partnership:read``); anything else is
"not found". Changes are authorised by :mod:`relto.partnership`'s service
functions through :mod:`relto.authz`.
"""

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from relto.authz import Permission, Principal
from relto.partnership import (
    CLASSIFICATIONS,
    JUSTIFICATION_MAX,
    JUSTIFICATION_MIN,
    MAX_PAGE,
    Admission,
    Partnership,
    Project,
)
from relto.server.edge import Edge, needs

__all__ = ["Justification", "Limit", "Nation", "Offset", "PageOut", "Strict", "mount"]

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Nation = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
#: Why a person makes a change: required, recorded in the change's audit entry.
Justification = Annotated[
    str,
    Field(
        min_length=JUSTIFICATION_MIN,
        max_length=JUSTIFICATION_MAX,
        description="Why the change is made; recorded in its audit log entry.",
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnershipIn(Strict):
    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    members: Annotated[list[Nation], Field(min_length=1, max_length=50)]
    partners: Annotated[list[Nation], Field(max_length=50)] = []


class PartnershipOut(BaseModel):
    id: str
    name: str
    description: str
    members: list[str]
    partners: list[str]


class ProjectIn(Strict):
    id: Slug
    partnership_id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""


class ProjectOut(BaseModel):
    id: str
    partnership_id: str
    name: str
    description: str
    joint_custody: list[str] = Field(
        description="Nations whose key access services each hold a share of the key of a "
        "new object of this project by default (the uploader's nation always holds one)"
    )
    export_relevant: bool = Field(
        False,
        description="The project's new objects need an export classification: each is "
        "withheld until an export-control officer classifies it",
    )


class AdmissionIn(Strict):
    project_id: Slug
    nation: Nation
    ceiling: Annotated[str, Field(json_schema_extra={"enum": list(CLASSIFICATIONS)})]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    note: Annotated[str, Field(max_length=2000)] = ""
    justification: Justification


class AdmissionEndIn(Strict):
    note: Annotated[str, Field(max_length=2000)] = ""
    justification: Justification


class AdmissionOut(BaseModel):
    id: str
    project_id: str
    nation: str
    ceiling: str
    valid_from: datetime
    valid_until: datetime | None
    ended_at: datetime | None
    admitted_by: str
    ended_by: str | None
    note: str
    status: str


T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class MatrixOut(BaseModel):
    partnership_id: str
    at: datetime
    nations: list[str]
    projects: list[ProjectOut]
    ceilings: dict[str, dict[str, str | None]]


def _p(p: Partnership) -> PartnershipOut:
    return PartnershipOut(
        id=p.id,
        name=p.name,
        description=p.description,
        members=list(p.members),
        partners=list(p.partners),
    )


def _pr(p: Project) -> ProjectOut:
    return ProjectOut(
        id=p.id,
        partnership_id=p.partnership_id,
        name=p.name,
        description=p.description,
        joint_custody=list(p.joint_custody),
        export_relevant=p.export_relevant,
    )


def _a(a: Admission, at: datetime) -> AdmissionOut:
    return AdmissionOut(
        id=a.id,
        project_id=a.project_id,
        nation=a.nation,
        ceiling=a.ceiling,
        valid_from=a.valid_from,
        valid_until=a.valid_until,
        ended_at=a.ended_at,
        admitted_by=a.admitted_by,
        ended_by=a.ended_by,
        note=a.note,
        status=a.status_at(at),
    )


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def mount(app: FastAPI, edge: Edge) -> None:
    registry = edge.node.partnerships
    Who = Annotated[Principal, Depends(edge.who)]
    router = APIRouter(prefix="/api/v1", tags=["partnership"])

    @router.get(
        "/partnerships",
        summary="Partnerships the caller's nation belongs to",
        **needs(Permission.PARTNERSHIP_READ),
    )
    def list_partnerships(
        who: Who, offset: Offset = 0, limit: Limit = 50
    ) -> PageOut[PartnershipOut]:
        mine = registry.partnerships(who)
        return PageOut(
            items=[_p(p) for p in mine[offset : offset + limit]],
            total=len(mine),
            offset=offset,
            limit=limit,
        )

    @router.post(
        "/partnerships",
        status_code=201,
        summary="Define a partnership",
        **needs(Permission.ADMIN_PARTNERSHIPS_WRITE),
    )
    def post_partnership(body: PartnershipIn, who: Who) -> PartnershipOut:
        p = Partnership(
            id=body.id,
            name=body.name,
            description=body.description,
            members=tuple(body.members),
            partners=tuple(body.partners),
        )
        return _p(registry.create_partnership(who, p, datetime.now(UTC)))

    @router.get(
        "/partnerships/{partnership_id}",
        summary="One partnership",
        **needs(Permission.PARTNERSHIP_READ),
    )
    def get_partnership(partnership_id: str, who: Who) -> PartnershipOut:
        return _p(registry.partnership(who, partnership_id))

    @router.get(
        "/partnerships/{partnership_id}/matrix",
        summary="Projects × nations: the ceiling each nation is admitted at",
        **needs(Permission.PARTNERSHIP_READ),
    )
    def get_matrix(partnership_id: str, who: Who, at: datetime | None = None) -> MatrixOut:
        view = registry.overview(who, partnership_id, _utc(at) or datetime.now(UTC))
        assert view is not None
        return MatrixOut(
            partnership_id=view.partnership.id,
            at=view.at,
            nations=list(view.partnership.nations),
            projects=[_pr(x) for x in view.projects],
            ceilings=view.ceilings,
        )

    @router.get("/projects", summary="Projects (workstreams)", **needs(Permission.PARTNERSHIP_READ))
    def list_projects(
        who: Who,
        partnership_id: Annotated[str | None, Query(max_length=63)] = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> PageOut[ProjectOut]:
        mine = registry.projects(who, partnership_id)
        return PageOut(
            items=[_pr(p) for p in mine[offset : offset + limit]],
            total=len(mine),
            offset=offset,
            limit=limit,
        )

    @router.post(
        "/projects",
        status_code=201,
        summary="Add a project to a partnership",
        **needs(Permission.ADMIN_PROJECTS_WRITE),
    )
    def post_project(body: ProjectIn, who: Who) -> ProjectOut:
        project = Project(body.id, body.partnership_id, body.name, body.description)
        return _pr(registry.create_project(who, project, datetime.now(UTC)))

    @router.get(
        "/projects/{project_id}", summary="One project", **needs(Permission.PARTNERSHIP_READ)
    )
    def get_project(project_id: str, who: Who) -> ProjectOut:
        return _pr(registry.project(who, project_id))

    @router.get(
        "/admissions",
        summary="Admissions of nations to projects",
        **needs(Permission.PARTNERSHIP_READ),
    )
    def list_admissions(
        who: Who,
        project_id: Annotated[str | None, Query(max_length=63)] = None,
        nation: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> PageOut[AdmissionOut]:
        now = datetime.now(UTC)
        page = registry.admissions(
            who, project_id=project_id, nation=nation, offset=offset, limit=limit
        )
        items = [_a(a, now) for a in page.items]
        return PageOut(items=items, total=page.total, offset=page.offset, limit=page.limit)

    @router.post(
        "/admissions",
        status_code=201,
        summary="Admit a nation to a project",
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def post_admission(body: AdmissionIn, who: Who) -> AdmissionOut:
        at = datetime.now(UTC)
        a = registry.admit(
            who,
            project_id=body.project_id,
            nation=body.nation,
            ceiling=body.ceiling,
            at=at,
            valid_from=_utc(body.valid_from),
            valid_until=_utc(body.valid_until),
            note=body.note,
            justification=body.justification,
        )
        return _a(a, at)

    @router.post(
        "/admissions/{admission_id}/end",
        summary="End an admission now",
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def post_end(admission_id: str, body: AdmissionEndIn, who: Who) -> AdmissionOut:
        at = datetime.now(UTC)
        a = registry.end(who, admission_id, at, body.note, justification=body.justification)
        return _a(a, at)

    app.include_router(router)
