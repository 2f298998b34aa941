"""Documents: list, protect, open, download and relabel (relto.documents).

A document the signed-in person may not know of is "not found" on every page,
exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from relto.authz import Permission, Principal
from relto.decisions import Decision
from relto.documents import ActionDenied, DocumentView
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.server.console._pages import NOT_ALLOWED, Pages
from relto.server.edge import download_response, needs

__all__ = ["mount"]

#: How much of a text document the open page shows inline.
SHOW_BYTES = 256 * 1024
_NO_DOCUMENT = "There is no such document on this node."


def mount(app: FastAPI, pages: Pages) -> None:
    service = pages.node.documents

    def doc_page(
        request: Request,
        who: Principal,
        doc: DocumentView,
        decision: Decision | None = None,
        text: str | None = None,
    ) -> HTMLResponse:
        return pages.render(
            request,
            "document.html",
            who,
            "documents",
            title=doc.title,
            doc=doc,
            decision=decision,
            text=text,
            can_relabel=service.may(who, "relabel", doc, datetime.now(UTC)),
            nations=service.partnership_nations(doc.originator),
        )

    @app.get(
        "/console/documents",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.OBJECTS_LIST),
    )
    def documents(request: Request) -> HTMLResponse:
        who = pages.who(request)
        with_decisions = service.with_decisions(who, datetime.now(UTC))
        rows = [{"doc": d, "decision": decision} for d, decision in with_decisions]
        return pages.render(
            request,
            "documents.html",
            who,
            "documents",
            title="Documents",
            rows=rows,
            marked=[d for d, _ in with_decisions],
        )

    def new_form(
        request: Request, who: Principal, error: str | None = None, **form: Any
    ) -> HTMLResponse:
        return pages.render(
            request,
            "document_new.html",
            who,
            "documents",
            status_code=422 if error else 200,
            title="Protect a new document",
            choice=service.label_choice(who),
            error=error,
            form=form,
            max_mb=service.max_upload_bytes // (1024 * 1024),
        )

    @app.get(
        "/console/documents/new",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.OBJECTS_CREATE),
    )
    def new_document(request: Request) -> HTMLResponse:
        return new_form(request, pages.who(request))

    @app.post("/console/documents/new", include_in_schema=False, **needs(Permission.OBJECTS_CREATE))
    async def upload(
        request: Request,
        title: Annotated[str, Form(max_length=200)],
        project_id: Annotated[str, Form(max_length=63)],
        classification: Annotated[str, Form(max_length=60)],
        file: Annotated[UploadFile, File()],
        csrf: Annotated[str, Form(max_length=200)] = "",
        rel_to: Annotated[list[str] | None, Form(max_length=50)] = None,
    ) -> Response:
        who = pages.posted_by(request, csrf)
        limit = service.max_upload_bytes
        data = await file.read(limit + 1)
        nations = [n for n in (rel_to or []) if isinstance(n, str)][:50]
        form = {
            "title": title,
            "project_id": project_id,
            "classification": classification,
            "rel_to": nations,
        }
        if len(data) > limit:
            return new_form(request, who, f"The file is larger than {limit} bytes.", **form)
        try:
            doc = await run_in_threadpool(
                lambda: service.upload(
                    who,
                    title=title,
                    project_id=project_id,
                    classification=classification,
                    rel_to=nations,
                    filename=file.filename or "document",
                    media_type=file.content_type or "application/octet-stream",
                    data=data,
                    at=datetime.now(UTC),
                )
            )
        except InvalidInput as exc:
            return new_form(request, who, str(exc)[:400], **form)
        return pages.back(f"/console/documents/{doc.id}", f"Protected as {doc.banner}.")

    @app.get(
        "/console/documents/{doc_id}",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.OBJECTS_METADATA_READ),
    )
    def document(request: Request, doc_id: str) -> HTMLResponse:
        who = pages.who(request)
        try:
            doc = service.visible(who, doc_id)
        except NotFound:
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        return doc_page(request, who, doc)

    @app.post(
        "/console/documents/{doc_id}/open",
        include_in_schema=False,
        **needs(Permission.OBJECTS_READ),
    )
    def open_document(
        request: Request, doc_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        who = pages.posted_by(request, csrf)
        try:
            doc, decision, plaintext = service.open(who, doc_id, datetime.now(UTC))
        except NotFound:
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        text = None
        if plaintext is not None:
            try:
                text = plaintext[:SHOW_BYTES].decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None and len(plaintext) > SHOW_BYTES:
                text += "\n\n[… shown up to 256 KiB; download for the whole file]"
        return doc_page(request, who, doc, decision, text)

    @app.post(
        "/console/documents/{doc_id}/download",
        include_in_schema=False,
        **needs(Permission.OBJECTS_DOWNLOAD),
    )
    def download(
        request: Request, doc_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        who = pages.posted_by(request, csrf)
        try:
            doc, decision, plaintext = service.open(
                who, doc_id, datetime.now(UTC), action="download"
            )
        except NotFound:
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        if plaintext is None:
            return doc_page(request, who, doc, decision)
        return download_response(doc, plaintext)

    @app.post(
        "/console/documents/{doc_id}/relabel",
        include_in_schema=False,
        **needs(Permission.OBJECTS_RELABEL),
    )
    def relabel(
        request: Request,
        doc_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
        rel_to: Annotated[list[str] | None, Form(max_length=50)] = None,
    ) -> Response:
        who = pages.posted_by(request, csrf)
        page = f"/console/documents/{doc_id[:64]}"
        try:
            doc = service.relabel(
                who,
                doc_id,
                [n for n in (rel_to or []) if isinstance(n, str)][:50],
                datetime.now(UTC),
            )
        except ActionDenied as exc:
            reasons = "; ".join(r.sentence for r in exc.decision.reasons)
            return pages.back(page, f"Not allowed: {reasons}"[:300], bad=True)
        except (NotFound, AccessDenied):
            return pages.back(page, NOT_ALLOWED, bad=True)
        except InvalidInput as exc:
            return pages.back(page, str(exc)[:300], bad=True)
        return pages.back(f"/console/documents/{doc.id}", f"Now marked {doc.banner}.")
