"""REST API for partnerships, projects and admissions (``/api/v1``).

Thin edges: parse, call one service function, render. Callers see only the
partnerships their nation belongs to; anything else is "not found".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from relto.errors import AccessDenied, InvalidInput
from relto.partnership import (
    CLASSIFICATIONS,
    MAX_PAGE,
    Admission,
    Partnership,
    Project,
    UnknownRecord,
    admit,
    create_partnership,
    create_project,
    end_admission,
    matrix,
)
from relto.server.app import AppContext
from relto.server.auth import Principal, request_auth
from relto.store.partnership import SqlPartnershipRepository

__all__ = ["mount"]

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Nation = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnershipIn(_Strict):
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


class ProjectIn(_Strict):
    id: Slug
    partnership_id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""


class ProjectOut(BaseModel):
    id: str
    partnership_id: str
    name: str
    description: str


class AdmissionIn(_Strict):
    project_id: Slug
    nation: Nation
    ceiling: Annotated[str, Field(json_schema_extra={"enum": list(CLASSIFICATIONS)})]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    note: Annotated[str, Field(max_length=2000)] = ""


class AdmissionEndIn(_Strict):
    note: Annotated[str, Field(max_length=2000)] = ""


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
        id=p.id, partnership_id=p.partnership_id, name=p.name, description=p.description
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


def _visible(repo: SqlPartnershipRepository, partnership_id: str, who: Principal) -> Partnership:
    p = repo.get_partnership(partnership_id)
    if p is None or who.nation not in p.nations:
        raise UnknownRecord("no such partnership")
    return p


def _visible_project(repo: SqlPartnershipRepository, project_id: str, who: Principal) -> Project:
    project = repo.get_project(project_id)
    if project is None:
        raise UnknownRecord("no such project")
    _visible(repo, project.partnership_id, who)
    return project


def _principal(request: Request) -> Principal:
    return request_auth(request.app.state.ctx).require(request)


Who = Annotated[Principal, Depends(_principal)]


def mount(app: FastAPI, ctx: AppContext) -> None:
    request_auth(ctx)
    # Made now, so the KAS (mounted next) decides with the decision engine from its
    # first request.
    from relto.server.documents import document_service

    document_service(ctx)
    router = APIRouter(prefix="/api/v1", tags=["partnership"])

    @router.get("/partnerships", summary="Partnerships the caller's nation belongs to")
    def list_partnerships(
        who: Who, offset: Offset = 0, limit: Limit = 50
    ) -> PageOut[PartnershipOut]:
        with ctx.db.session() as s:
            page = SqlPartnershipRepository(s).list_partnerships(0, MAX_PAGE)
        mine = [p for p in page.items if who.nation in p.nations]
        return PageOut(
            items=[_p(p) for p in mine[offset : offset + limit]],
            total=len(mine),
            offset=offset,
            limit=limit,
        )

    @router.post("/partnerships", status_code=201, summary="Define a partnership")
    def post_partnership(body: PartnershipIn, who: Who) -> PartnershipOut:
        at = datetime.now(UTC)
        with ctx.db.session() as s:
            p = create_partnership(
                SqlPartnershipRepository(s),
                ctx.sink,
                partnership=Partnership(
                    id=body.id,
                    name=body.name,
                    description=body.description,
                    members=tuple(body.members),
                    partners=tuple(body.partners),
                ),
                actor=who.actor(),
                at=at,
            )
        return _p(p)

    @router.get("/partnerships/{partnership_id}", summary="One partnership")
    def get_partnership(partnership_id: str, who: Who) -> PartnershipOut:
        with ctx.db.session() as s:
            return _p(_visible(SqlPartnershipRepository(s), partnership_id, who))

    @router.get(
        "/partnerships/{partnership_id}/matrix",
        summary="Projects × nations: the ceiling each nation is admitted at",
    )
    def get_matrix(partnership_id: str, who: Who, at: datetime | None = None) -> MatrixOut:
        when = _utc(at) or datetime.now(UTC)
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            p = _visible(repo, partnership_id, who)
            projects = list(repo.list_projects(p.id, 0, MAX_PAGE).items)
            admissions = [a for pr in projects for a in repo.admissions_for(pr.id)]
        return MatrixOut(
            partnership_id=p.id,
            at=when,
            nations=list(p.nations),
            projects=[_pr(x) for x in projects],
            ceilings=matrix(p, projects, admissions, when),
        )

    @router.get("/projects", summary="Projects (workstreams)")
    def list_projects(
        who: Who,
        partnership_id: Annotated[str | None, Query(max_length=63)] = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> PageOut[ProjectOut]:
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            page = repo.list_projects(partnership_id, 0, MAX_PAGE)
            visible = {
                p.id for p in repo.list_partnerships(0, MAX_PAGE).items if who.nation in p.nations
            }
        mine = [p for p in page.items if p.partnership_id in visible]
        return PageOut(
            items=[_pr(p) for p in mine[offset : offset + limit]],
            total=len(mine),
            offset=offset,
            limit=limit,
        )

    @router.post("/projects", status_code=201, summary="Add a project to a partnership")
    def post_project(body: ProjectIn, who: Who) -> ProjectOut:
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            _visible(repo, body.partnership_id, who)
            p = create_project(
                repo,
                ctx.sink,
                project=Project(body.id, body.partnership_id, body.name, body.description),
                actor=who.actor(),
                at=datetime.now(UTC),
            )
        return _pr(p)

    @router.get("/projects/{project_id}", summary="One project")
    def get_project(project_id: str, who: Who) -> ProjectOut:
        with ctx.db.session() as s:
            return _pr(_visible_project(SqlPartnershipRepository(s), project_id, who))

    @router.get("/admissions", summary="Admissions of nations to projects")
    def list_admissions(
        who: Who,
        project_id: Annotated[str | None, Query(max_length=63)] = None,
        nation: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> PageOut[AdmissionOut]:
        now = datetime.now(UTC)
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            if project_id is not None:
                _visible_project(repo, project_id, who)
            visible_projects = {
                pr.id
                for p in repo.list_partnerships(0, MAX_PAGE).items
                if who.nation in p.nations
                for pr in repo.list_projects(p.id, 0, MAX_PAGE).items
            }
            page = repo.list_admissions(
                project_id=project_id, nation=nation, offset=offset, limit=limit
            )
        items = [_a(a, now) for a in page.items if a.project_id in visible_projects]
        return PageOut(items=items, total=page.total, offset=page.offset, limit=page.limit)

    @router.post("/admissions", status_code=201, summary="Admit a nation to a project")
    def post_admission(body: AdmissionIn, who: Who) -> AdmissionOut:
        at = datetime.now(UTC)
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            _visible_project(repo, body.project_id, who)
            a = admit(
                repo,
                ctx.sink,
                project_id=body.project_id,
                nation=body.nation,
                ceiling=body.ceiling,
                actor=who.actor(),
                at=at,
                valid_from=_utc(body.valid_from),
                valid_until=_utc(body.valid_until),
                note=body.note,
            )
        return _a(a, at)

    @router.post("/admissions/{admission_id}/end", summary="End an admission now")
    def post_end(admission_id: str, body: AdmissionEndIn, who: Who) -> AdmissionOut:
        at = datetime.now(UTC)
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            current = repo.get_admission(admission_id)
            if current is None:
                raise UnknownRecord("no such admission")
            _visible_project(repo, current.project_id, who)
            a = end_admission(
                repo, ctx.sink, admission_id=admission_id, actor=who.actor(), at=at, note=body.note
            )
        return _a(a, at)

    app.include_router(router)
    _mount_objects(app, ctx)


# -- objects (protected documents), decisions and what-if ---------------------------------


class ObjectOut(BaseModel):
    id: str
    title: str
    project_id: str
    originator: str
    banner: str
    classification: str
    rel_to: list[str]
    owner: str
    filename: str
    media_type: str
    size: int
    version: int
    created_at: datetime
    updated_at: datetime
    policy_uuid: str


class ReasonOut(BaseModel):
    code: str
    sentence: str


class DecisionOut(BaseModel):
    person_id: str
    object_id: str
    action: str
    allowed: bool
    reasons: list[ReasonOut]
    rule: str
    policy_version: str
    obligations: list[str]


class RelToIn(_Strict):
    rel_to: Annotated[list[Nation], Field(max_length=50)]


class WhatIfIn(_Strict):
    changes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500)]],
        Field(min_length=1, max_length=20),
    ]


class PairOut(BaseModel):
    person_id: str
    object_id: str


class WhatIfOut(BaseModel):
    changes: list[str]
    gained: list[PairOut]
    lost: list[PairOut]
    gained_by_nation: dict[str, int]
    gained_by_project: dict[str, int]
    lost_by_nation: dict[str, int]
    lost_by_project: dict[str, int]


Action = Literal["read", "download", "share", "relabel"]

#: How many documents a ``readable=true`` listing decides at most.
_MAX_SCAN = 10_000


def _o(d: Any) -> ObjectOut:
    return ObjectOut(
        id=d.id,
        title=d.title,
        project_id=d.project_id,
        originator=d.originator,
        banner=d.banner,
        classification=d.classification,
        rel_to=list(d.rel_to),
        owner=d.owner,
        filename=d.filename,
        media_type=d.media_type,
        size=d.plaintext_size,
        version=d.version,
        created_at=d.created_at,
        updated_at=d.updated_at,
        policy_uuid=d.policy_uuid,
    )


def _mount_objects(app: FastAPI, ctx: AppContext) -> None:
    from relto.server.documents import MAX_DOCUMENT_BYTES, document_service

    service = document_service(ctx)
    router = APIRouter(prefix="/api/v1", tags=["objects"])

    def visible(doc_id: str, who: Principal) -> Any:
        return service.visible_to(doc_id, who.nation)

    @router.get("/objects", summary="Protected objects of the caller's partnership (metadata)")
    def list_objects(
        who: Who,
        offset: Offset = 0,
        limit: Limit = 50,
        readable: Annotated[
            bool, Query(description="Only objects the caller may read now")
        ] = False,
    ) -> PageOut[ObjectOut]:
        if not readable:
            docs = service.list(who.nation, limit=limit, offset=offset)
            return PageOut(
                items=[_o(d) for d in docs],
                total=service.count(who.nation),
                offset=offset,
                limit=limit,
            )
        at = datetime.now(UTC)
        subject = service.subject(who.person_id, at)
        engine = service.engine()
        readable_docs: list[Any] = []
        scanned = 0
        while subject is not None and scanned < _MAX_SCAN:
            batch = service.list(who.nation, limit=MAX_PAGE, offset=scanned)
            if not batch:
                break
            scanned += len(batch)
            keep = {
                r.id for r in engine.readable(subject, [service.resource(d) for d in batch], at=at)
            }
            readable_docs.extend(d for d in batch if d.id in keep)
        return PageOut(
            items=[_o(d) for d in readable_docs[offset : offset + limit]],
            total=len(readable_docs),
            offset=offset,
            limit=limit,
        )

    @router.post(
        "/objects",
        status_code=201,
        summary="Protect a file: label it and encrypt it into a ZTDF container",
    )
    async def post_object(
        who: Who,
        title: Annotated[str, Form(min_length=1, max_length=200)],
        project_id: Annotated[str, Form(max_length=63)],
        classification: Annotated[str, Form(max_length=60)],
        file: Annotated[UploadFile, File()],
        rel_to: Annotated[list[str] | None, Form(max_length=50)] = None,
    ) -> ObjectOut:
        from starlette.concurrency import run_in_threadpool

        limit = min(MAX_DOCUMENT_BYTES, ctx.settings.max_upload_bytes)
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise InvalidInput(f"the file is larger than {limit} bytes")
        doc = await run_in_threadpool(
            lambda: service.upload(
                person_id=who.person_id,
                nation=who.nation,
                title=title,
                project_id=project_id,
                classification=classification,
                rel_to=[n for n in (rel_to or []) if isinstance(n, str)][:50],
                filename=file.filename or "document",
                media_type=file.content_type or "application/octet-stream",
                data=data,
                at=datetime.now(UTC),
            )
        )
        return _o(doc)

    @router.get("/objects/{object_id}", summary="One object's metadata")
    def get_object(object_id: str, who: Who) -> ObjectOut:
        return _o(visible(object_id, who))

    @router.get(
        "/objects/{object_id}/content",
        summary="Open: decide, rewrap the key through the KAS, return the plaintext",
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    def get_content(object_id: str, who: Who) -> Response:
        visible(object_id, who)
        doc, _decision, plaintext = service.open(
            person_id=who.person_id,
            nation=who.nation,
            name=who.name,
            doc_id=object_id,
            at=datetime.now(UTC),
        )
        if plaintext is None:
            raise AccessDenied("denied")  # opaque outward; the reasons are in the audit log
        return Response(
            plaintext,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{doc.filename}"',
                "X-Relto-Marking": doc.banner,
                "Cache-Control": "no-store",
            },
        )

    @router.get(
        "/objects/{object_id}/decision",
        summary="The explained decision for a person (default: the caller)",
    )
    def get_decision(
        object_id: str,
        who: Who,
        person_id: Annotated[str | None, Query(max_length=64)] = None,
        action: Action = "read",
    ) -> DecisionOut:
        doc = visible(object_id, who)
        target = person_id or who.person_id
        if not service.may_explain(who.person_id, who.roles, target, doc):
            raise UnknownRecord("no such object")
        d = service.decide(target, action, doc, datetime.now(UTC))
        return DecisionOut(
            person_id=target,
            object_id=doc.id,
            action=action,
            allowed=bool(d.allowed),
            reasons=[ReasonOut(code=r.code, sentence=r.sentence) for r in d.reasons],
            rule=d.rule,
            policy_version=d.policy_version,
            obligations=[str(getattr(o, "kind", o)) for o in d.obligations],
        )

    @router.put(
        "/objects/{object_id}/rel-to",
        summary="Change Releasable To (security officer of the originating nation)",
    )
    def put_rel_to(object_id: str, body: RelToIn, who: Who) -> ObjectOut:
        visible(object_id, who)
        return _o(
            service.relabel(
                person_id=who.person_id,
                roles=who.roles,
                doc_id=object_id,
                rel_to=body.rel_to,
                at=datetime.now(UTC),
            )
        )

    @router.post(
        "/what-if",
        tags=["decisions"],
        summary="Who would gain or lose access if these changes were made (nothing is changed)",
    )
    def post_what_if(body: WhatIfIn, who: Who) -> WhatIfOut:
        if not who.holds("security_officer"):
            raise AccessDenied("what-if is for security officers")
        r = service.what_if(body.changes, nation=who.nation, at=datetime.now(UTC))
        return WhatIfOut(
            changes=body.changes,
            gained=[PairOut(person_id=p, object_id=o) for p, o in r.gained],
            lost=[PairOut(person_id=p, object_id=o) for p, o in r.lost],
            gained_by_nation=dict(r.gained_by_nation),
            gained_by_project=dict(r.gained_by_project),
            lost_by_nation=dict(r.lost_by_nation),
            lost_by_project=dict(r.lost_by_project),
        )

    app.include_router(router)
