"""Partner documents: what the pinned partner nodes release to the signed-in
person, listed next to the node's own and opened from this console.

This node reaches each partner for the person (:class:`relto.federation.reach.PartnerReach`):
its attestation of the person, bound to a key it holds for the console session,
is what the partner sees. The partner decides, releases and records; a denial
shows the partner's reason codes and sentences. A partner that cannot be reached
makes only its own documents unavailable, and the page says which.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from relto.authz import Permission, Principal
from relto.client import (
    AccessDenied,
    ClientError,
    Decision,
    NodeUnreachable,
    NotFound,
    ObjectInfo,
)
from relto.documents import DocumentView, common_level
from relto.errors import NotFound as NodeNotFound
from relto.federation.reach import PartnerListing, PartnerReach
from relto.node import Node
from relto.server.console._pages import Pages
from relto.server.edge import download_response, needs

__all__ = ["mount", "partner_reach", "partner_views"]

_NATION = re.compile(r"^[A-Z]{3}$")
_NO_DOCUMENT = "There is no such document at that partner node, or it is not released to you."
#: How much of a text document the open page shows inline.
SHOW_BYTES = 256 * 1024


def partner_reach(node: Node) -> PartnerReach | None:
    """The node's reach to its partners, or ``None`` when it vouches for nobody
    (no federation documents: no public address) or has no secret to key sessions."""
    secret = node.settings.secret_key.get_secret_value() if node.settings.secret_key else ""
    if node.federation is None or len(secret) < 16:
        return None
    return PartnerReach(
        pins=node.trust.trusted,
        home=node.federation,
        secret=hashlib.sha256(b"relto-partner-reach\0" + secret.encode()).digest(),
        clock=lambda: datetime.now(UTC),
        own_kas=node.documents.keys,
    )


def view_of(obj: ObjectInfo) -> DocumentView:
    """A partner's object as the console's pages show documents (for the banner
    and the page marking: :mod:`._marking`)."""
    return DocumentView(
        id=obj.id,
        title=obj.title,
        project_id=obj.project_id,
        originator=obj.originator,
        banner=obj.banner,
        top_marking=obj.banner,
        bottom_marking=obj.banner,
        classification=obj.classification,
        rel_to=obj.rel_to,
        owner=obj.owner,
        filename=obj.filename,
        media_type=obj.media_type,
        plaintext_size=obj.size,
        version=obj.version,
        created_at=obj.created_at,
        updated_at=obj.updated_at,
        policy_uuid=obj.policy_uuid,
        common_level=common_level(obj.originator, obj.classification),
        custody=obj.custody,
    )


def partner_views(listings: list[PartnerListing]) -> list[DocumentView]:
    """Every listed partner document, ids prefixed with the holding nation (for the
    page marking, where ids must not collide with the node's own)."""
    return [
        replace(view_of(o), id=f"{listing.nation}/{o.id}")
        for listing in listings
        for o in listing.objects
    ]


def session_key(pages: Pages, request: Request, who: Principal) -> str:
    """What the node keys the person's partner key by: the console session, or, for
    a bearer token, the person alone."""
    session = pages.edge.auth.session_id(request)
    return f"session:{session}" if session else f"bearer:{who.person_id}"


def mount(app: FastAPI, pages: Pages, reach: PartnerReach | None) -> None:
    def page(
        request: Request,
        who: Principal,
        nation: str,
        obj: ObjectInfo,
        *,
        decision: Decision | None = None,
        denied: AccessDenied | None = None,
        error: str | None = None,
        text: str | None = None,
        opened: bool = False,
        status_code: int = 200,
    ) -> HTMLResponse:
        view = view_of(obj)
        return pages.render(
            request,
            "partner_document.html",
            who,
            "documents",
            status_code,
            title=obj.title,
            doc=view,
            nation=nation,
            decision=decision,
            denied=denied,
            error=error,
            text=text,
            opened=opened,
        )

    def unavailable(request: Request, who: Principal, message: str, status: int) -> HTMLResponse:
        return pages.render(
            request,
            "unavailable.html",
            who,
            "documents",
            status_code=status,
            title="Partner document unavailable",
            message=message,
        )

    def refused(request: Request, who: Principal, nation: str, exc: AccessDenied) -> HTMLResponse:
        """The partner refused the person before any document (the attestation's
        status at home, say): its reasons, as a denial shows them."""
        return pages.render(
            request,
            "partner_refused.html",
            who,
            "documents",
            status_code=403,
            title=f"Refused by the {nation} node",
            nation=nation,
            denied=exc,
        )

    def known(nation: str) -> bool:
        return reach is not None and bool(_NATION.match(nation))

    @app.get(
        "/console/partners/{nation}/documents/{doc_id}",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.OBJECTS_METADATA_READ),
    )
    async def partner_document(request: Request, nation: str, doc_id: str) -> HTMLResponse:
        who = pages.who(request)
        if reach is None or not known(nation):
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        key = session_key(pages, request, who)
        try:
            obj = await run_in_threadpool(reach.object, who, key, nation, doc_id[:200])
        except (NotFound, NodeNotFound, ValueError):
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        except AccessDenied as exc:
            return refused(request, who, nation, exc)
        except ClientError as exc:
            return unavailable(request, who, str(exc)[:300], 502)
        return page(request, who, nation, obj)

    async def opened(
        request: Request, nation: str, doc_id: str, csrf: str, *, download: bool
    ) -> Response:
        who = pages.posted_by(request, csrf)
        if reach is None or not known(nation):
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        key = session_key(pages, request, who)
        try:
            obj = await run_in_threadpool(reach.object, who, key, nation, doc_id[:200])
        except (NotFound, NodeNotFound, ValueError):
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        except AccessDenied as exc:
            return refused(request, who, nation, exc)
        except NodeUnreachable as exc:  # the node that holds the key does not answer
            message = (
                f"{nation} key access service unreachable: the {nation} node does not answer "
                f"({exc}); only {nation}'s documents are unavailable."
            )
            return unavailable(request, who, message[:400], 502)
        except ClientError as exc:
            return unavailable(request, who, str(exc)[:300], 502)
        try:
            plaintext = await run_in_threadpool(reach.open, who, key, nation, obj.id)
        except AccessDenied as exc:
            return page(request, who, nation, obj, denied=exc, opened=True, status_code=403)
        except (NotFound, NodeNotFound, ValueError):
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        except ClientError as exc:
            return page(request, who, nation, obj, error=str(exc)[:300], opened=True,
                        status_code=502)  # fmt: skip
        if download:
            return download_response(view_of(obj), plaintext)
        try:
            text: str | None = plaintext[:SHOW_BYTES].decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and len(plaintext) > SHOW_BYTES:
            text += "\n\n[… shown up to 256 KiB; download for the whole file]"
        return page(request, who, nation, obj, text=text, opened=True)

    @app.post(
        "/console/partners/{nation}/documents/{doc_id}/open",
        include_in_schema=False,
        **needs(Permission.OBJECTS_READ),
    )
    async def open_partner_document(
        request: Request,
        nation: str,
        doc_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        return await opened(request, nation, doc_id, csrf, download=False)

    @app.post(
        "/console/partners/{nation}/documents/{doc_id}/download",
        include_in_schema=False,
        **needs(Permission.OBJECTS_DOWNLOAD),
    )
    async def download_partner_document(
        request: Request,
        nation: str,
        doc_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        return await opened(request, nation, doc_id, csrf, download=True)
