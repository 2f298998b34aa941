"""REST API for protected objects, explained decisions and what-if (``/api/v1``).

Thin edges: parse, call one :class:`relto.documents.DocumentService` method,
render. An object releasable to none of the caller's nationalities is "not found"
on every route, exactly like one that does not exist.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from relto.authz import Permission, Principal
from relto.documents import DocumentView
from relto.errors import AccessDenied, InvalidInput
from relto.server.edge import Edge, copy_response, needs
from relto.server.routes.partnership import (
    Justification,
    Limit,
    Nation,
    Offset,
    PageOut,
    Strict,
)
from relto.server.uploads import UPLOAD_BODY, read_upload

__all__ = ["mount"]


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
    custody: list[str] = Field(
        description="Nations whose key access services each hold a share of the key "
        "(joint custody): opening needs every one to release; empty: the originator's alone"
    )


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


class RelToIn(Strict):
    rel_to: Annotated[list[Nation], Field(max_length=50)]
    justification: Justification


class WhatIfIn(Strict):
    changes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500)]],
        Field(min_length=1, max_length=20),
    ]


class PairOut(BaseModel):
    person_id: str
    name: str
    object_id: str


class WhatIfOut(BaseModel):
    changes: list[str]
    gained: list[PairOut] = Field(description="People of the caller's nation who would gain")
    lost: list[PairOut] = Field(description="People of the caller's nation who would lose")
    gained_elsewhere: dict[str, int] = Field(
        description="Other nations' people: how many (person, object) pairs, per home nation"
    )
    lost_elsewhere: dict[str, int]
    gained_by_nation: dict[str, int]
    gained_by_project: dict[str, int]
    lost_by_nation: dict[str, int]
    lost_by_project: dict[str, int]


Action = Literal["read", "download", "share", "relabel"]


def _o(d: DocumentView) -> ObjectOut:
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
        custody=list(d.custody),
    )


def _custody(values: list[str]) -> tuple[str, ...] | None:
    """The form's ``custody`` values: absent, the project's default (``None``);
    ``none``, no joint custody."""
    if not values:
        return None
    if [v.strip().lower() for v in values] == ["none"]:
        return ()
    return tuple(values)


def mount(app: FastAPI, edge: Edge) -> None:
    service = edge.node.documents
    Who = Annotated[Principal, Depends(edge.who)]
    router = APIRouter(prefix="/api/v1", tags=["objects"])

    @router.get(
        "/objects",
        summary="Protected objects the caller may know of (metadata)",
        **needs(Permission.OBJECTS_LIST),
    )
    def list_objects(
        who: Who,
        offset: Offset = 0,
        limit: Limit = 50,
        readable: Annotated[
            bool, Query(description="Only objects the caller may read now")
        ] = False,
    ) -> PageOut[ObjectOut]:
        if not readable:
            docs = service.page(who, limit=limit, offset=offset)
            return PageOut(
                items=[_o(d) for d in docs], total=service.count(who), offset=offset, limit=limit
            )
        found = service.readable(who, datetime.now(UTC))
        return PageOut(
            items=[_o(d) for d in found[offset : offset + limit]],
            total=len(found),
            offset=offset,
            limit=limit,
        )

    create = needs(Permission.OBJECTS_CREATE)
    create["openapi_extra"]["requestBody"] = UPLOAD_BODY

    @router.post(
        "/objects",
        status_code=201,
        summary="Protect a file: label it and encrypt it into a ZTDF container",
        description=(
            "A multipart form: title, project_id, classification, rel_to (repeated), "
            "custody (repeated, optional: the nations holding joint custody; absent: the "
            "project's default; `none`: the originator's KAS alone) and the file. The "
            "file is encrypted as it arrives; nothing is spooled."
        ),
        **create,
    )
    async def post_object(request: Request, who: Who) -> ObjectOut:
        with service.receive(datetime.now(UTC)) as incoming:
            form = await read_upload(request, incoming)
            title = form.one("title", max_length=200)
            project_id = form.one("project_id", max_length=63)
            classification = form.one("classification", max_length=60)
            rel_to = form.many("rel_to", max_items=50, max_length=3)
            custody = form.many("custody", max_items=8, max_length=4)
            if await run_in_threadpool(service.export_relevant, project_id):
                # the console asks for the classification and withholds the object
                # until an officer classifies it; this route cannot, so it refuses
                raise InvalidInput(
                    f"project {project_id} is export relevant: upload through the console, "
                    "which asks for the export classification"
                )
            doc = await run_in_threadpool(
                lambda: service.upload(
                    who,
                    title=title,
                    project_id=project_id,
                    classification=classification,
                    rel_to=rel_to,
                    filename=form.filename or "document",
                    media_type=form.content_type or "application/octet-stream",
                    data=incoming,
                    at=datetime.now(UTC),
                    custody=_custody(custody),
                )
            )
        return _o(doc)

    @router.get(
        "/objects/{object_id}",
        summary="One object's metadata",
        **needs(Permission.OBJECTS_METADATA_READ),
    )
    def get_object(object_id: str, who: Who) -> ObjectOut:
        return _o(service.visible(who, object_id))

    @router.get(
        "/objects/{object_id}/content",
        summary="Download: decide, and return the caller's own fingerprinted copy",
        description=(
            "The copy is the recipient's own (issue 17): a document as a per-recipient "
            "PDF, an image watermarked for them, anything else as a ZTDF container "
            "re-protected for them alone; each copy is recorded (`trace.copy`) before "
            "it is returned. There is no way to get the plaintext as it was uploaded."
        ),
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}, "application/zip": {}}}},
        **needs(Permission.OBJECTS_DOWNLOAD),
    )
    def get_content(object_id: str, who: Who) -> Response:
        doc, _decision, copy = service.download(who, object_id, datetime.now(UTC))
        if copy is None:
            raise AccessDenied("denied")  # opaque outward; the reasons are in the audit log
        return copy_response(doc, copy)

    @router.get(
        "/objects/{object_id}/container",
        summary="The protected container (ZTDF ciphertext), to open through the KAS",
        description=(
            "For anyone who may know of the object, people of partner nations with an "
            "attestation included: the key comes only from the KAS, which decides."
        ),
        response_class=StreamingResponse,
        responses={200: {"content": {"application/zip": {}}}},
        **needs(Permission.OBJECTS_METADATA_READ),
    )
    def get_container(object_id: str, who: Who) -> StreamingResponse:
        doc, f = service.container(who, object_id)

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(64 * 1024):
                    yield chunk

        return StreamingResponse(
            chunks(),
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="{doc.id}.tdf"',
                "X-Relto-Marking": doc.banner,
                "Cache-Control": "no-store",
            },
        )

    @router.get(
        "/objects/{object_id}/decision",
        summary="The explained decision for a person (default: the caller)",
        **needs(Permission.DECISIONS_EXPLAIN),
    )
    def get_decision(
        object_id: str,
        who: Who,
        person_id: Annotated[str | None, Query(max_length=64)] = None,
        action: Action = "read",
    ) -> DecisionOut:
        target = person_id or who.person_id
        doc, d = service.explain(who, target, object_id, action, datetime.now(UTC))
        return DecisionOut(
            person_id=target,
            object_id=doc.id,
            action=action,
            allowed=bool(d.allowed),
            reasons=[ReasonOut(code=r.code, sentence=r.sentence) for r in d.reasons],
            rule=d.rule,
            policy_version=d.policy_version,
            obligations=[o.kind for o in d.obligations],
        )

    @router.put(
        "/objects/{object_id}/rel-to",
        summary="Change Releasable To (decided by the engine's relabel rules)",
        **needs(Permission.OBJECTS_RELABEL),
    )
    def put_rel_to(object_id: str, body: RelToIn, who: Who) -> ObjectOut:
        at = datetime.now(UTC)
        doc = service.relabel(who, object_id, body.rel_to, at, justification=body.justification)
        return _o(doc)

    @router.post(
        "/what-if",
        tags=["decisions"],
        summary="Who would gain or lose access if these changes were made (nothing is changed)",
        **needs(Permission.DECISIONS_WHAT_IF),
    )
    def post_what_if(body: WhatIfIn, who: Who) -> WhatIfOut:
        r = service.what_if(who, body.changes, datetime.now(UTC))
        return WhatIfOut(
            changes=list(r.changes),
            gained=[PairOut(person_id=p, name=r.names.get(p, p), object_id=o) for p, o in r.gained],
            lost=[PairOut(person_id=p, name=r.names.get(p, p), object_id=o) for p, o in r.lost],
            gained_elsewhere=r.gained_elsewhere,
            lost_elsewhere=r.lost_elsewhere,
            gained_by_nation=r.gained_by_nation,
            gained_by_project=r.gained_by_project,
            lost_by_nation=r.lost_by_nation,
            lost_by_project=r.lost_by_project,
        )

    app.include_router(router)
