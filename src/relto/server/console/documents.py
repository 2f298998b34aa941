"""Documents: list, protect, open, download and relabel (relto.documents).

A document the signed-in person may not know of is "not found" on every page,
exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from relto.authz import Permission, Principal, Scope
from relto.decisions import Decision
from relto.documents import ActionDenied, DocumentView
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.export_control import Regime
from relto.export_office import proposed_classification
from relto.partnership import check_justification
from relto.server.console._confirm import confirm_tokens
from relto.server.console._pages import NOT_ALLOWED, Pages
from relto.server.console._preview import NOT_PREVIEWED, Change, render_preview
from relto.server.console.export import ITEM_KINDS, classification_block
from relto.server.console.partners import partner_views, session_key, view_of
from relto.server.edge import copy_response, needs
from relto.server.uploads import read_upload

__all__ = ["mount"]

log = structlog.get_logger("relto.console")

#: The upload form's export classification fields (``export_controlled``...).
EXPORT_FIELDS = (
    "controlled", "kind", "regime", "usml_category", "usml_paragraph", "sme", "eccn",
    "dsgl_item", "value",
)  # fmt: skip

#: How much of a text document the open page shows inline.
SHOW_BYTES = 256 * 1024
_NO_DOCUMENT = "There is no such document on this node."


def mount(app: FastAPI, pages: Pages) -> None:
    service = pages.node.documents
    exports = pages.node.exports
    registry = pages.node.partnerships
    tokens = confirm_tokens(pages.node.settings)

    def export_facts(who: Principal, doc: DocumentView) -> dict[str, Any] | None:
        """The object's export classification (and a proposal awaiting an officer),
        for whoever reads export facts (``export:facts:read``, own nation)."""
        if exports is None or not pages.node.authorizer.allows(
            who, Permission.EXPORT_FACTS_READ, Scope.of([who.home_nation])
        ):
            return None
        facts = exports.summary(who)
        return {
            "classification": facts.items.get(doc.id),
            "pending": facts.pending.get(doc.id),
        }

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
            export=export_facts(who, doc),
        )

    def export_relevant(who: Principal) -> set[str]:
        """The projects whose new objects need an export classification."""
        return {p.id for p in registry.projects(who, None) if p.export_relevant}

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
        # what the pinned partners release to the person, held and decided there
        reach = pages.reach
        listings = reach.listings(who, session_key(pages, request, who)) if reach else []
        return pages.render(
            request,
            "documents.html",
            who,
            "documents",
            title="Documents",
            rows=rows,
            listings=[
                {"nation": x.nation, "error": x.error, "docs": [view_of(o) for o in x.objects]}
                for x in listings
            ],
            federated=reach is not None,
            marked=[*(d for d, _ in with_decisions), *partner_views(listings)],
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
            max_mb=f"{service.max_upload_bytes / (1024 * 1024):g}",
            export_relevant=export_relevant(who),
            kinds=ITEM_KINDS,
            regimes=[r.value for r in Regime],
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
    async def upload(request: Request) -> Response:
        """The file is read from the request stream and encrypted as it arrives
        (:mod:`relto.server.uploads`): no plaintext is spooled to disk."""
        pages.who(request)  # signed in before a byte of the file is read
        with service.receive(datetime.now(UTC)) as incoming:
            try:
                form = await read_upload(request, incoming)
            except InvalidInput as exc:
                return new_form(request, pages.who(request), str(exc)[:400])
            who = pages.posted_by(request, form.one("csrf", max_length=200, default=""))
            fields: dict[str, Any] = {
                "title": form.one("title", max_length=200, default=""),
                "project_id": form.one("project_id", max_length=63, default=""),
                "classification": form.one("classification", max_length=60, default=""),
                "rel_to": form.many("rel_to", max_items=50, max_length=3),
            }
            for name in EXPORT_FIELDS:
                fields[f"export_{name}"] = form.one(f"export_{name}", max_length=200, default="")
            # an export-relevant project's object is withheld until an officer
            # classifies it: the proposal is checked before anything is stored
            proposal = None
            if fields["project_id"] in export_relevant(who):
                try:
                    if exports is None:
                        raise InvalidInput("this node keeps no export facts")
                    block = classification_block(fields, "export_")
                    if block is None:
                        raise InvalidInput(
                            f"{fields['project_id']} is export relevant: give the document's "
                            "export classification"
                        )
                    proposal = proposed_classification(block)
                except InvalidInput as exc:
                    return new_form(request, who, str(exc)[:400], **fields)
            try:
                doc = await run_in_threadpool(
                    lambda: service.upload(
                        who,
                        title=str(fields["title"]),
                        project_id=str(fields["project_id"]),
                        classification=str(fields["classification"]),
                        rel_to=list(fields["rel_to"]),
                        filename=form.filename or "document",
                        media_type=form.content_type or "application/octet-stream",
                        data=incoming,
                        at=datetime.now(UTC),
                    )
                )
            except InvalidInput as exc:
                return new_form(request, who, str(exc)[:400], **fields)
        page = f"/console/documents/{doc.id}"
        if proposal is None or exports is None:
            return pages.back(page, f"Protected as {doc.banner}.")
        try:
            await run_in_threadpool(
                lambda: exports.mark_pending(who, doc.id, proposal, at=datetime.now(UTC))
            )
        except Exception as exc:  # stored already: say so, whatever failed
            log.error("export_pending_not_marked", document=doc.id, error=str(exc)[:200])
            return pages.back(
                page,
                f"Protected as {doc.banner}, but it could not be withheld pending its export "
                f"classification ({str(exc)[:120]}): ask a {doc.originator} export-control "
                "officer to classify it now.",
                bad=True,
            )
        return pages.back(
            page,
            f"Protected as {doc.banner}. It is withheld until a {doc.originator} "
            "export-control officer classifies it.",
        )

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
            doc, decision, copy = service.download(who, doc_id, datetime.now(UTC))
        except NotFound:
            return pages.not_found(request, who, "documents", _NO_DOCUMENT)
        if copy is None:
            return doc_page(request, who, doc, decision)
        return copy_response(doc, copy)

    def relabel_change(who: Principal, doc_id: str, rel_to: list[str] | None) -> Change | str:
        """The relabel to preview, or a message saying why not."""
        try:
            doc = service.visible(who, doc_id)
        except NotFound:
            return NOT_ALLOWED
        decision = service.facts.decide(who.person_id, "relabel", doc, datetime.now(UTC))
        if not decision.allowed:
            return f"Not allowed: {'; '.join(r.sentence for r in decision.reasons)}"[:300]
        wanted = sorted({n.strip().upper() for n in (rel_to or []) if isinstance(n, str)})[:50]
        outside = sorted(set(wanted) - set(service.partnership_nations(doc.originator)))
        if outside:
            return f"Not a nation of the partnership: {', '.join(outside)[:40]}"
        nations = ",".join(wanted)
        shown = ", ".join(sorted({doc.originator, *wanted}))
        return Change(
            action="document.relabel",
            heading=f"make {doc.title} releasable to {shown}",
            what_if=f"set-rel-to:{doc.id}:{nations}",
            post_to=f"/console/documents/{doc.id}/relabel",
            params={"doc_id": doc.id, "rel_to": nations},
            back=f"/console/documents/{doc.id}",
            confirm_label="Save Releasable To",
            fields=tuple(("rel_to", n) for n in wanted),
        )

    @app.post(
        "/console/documents/{doc_id}/relabel/preview",
        include_in_schema=False,
        **needs(Permission.OBJECTS_RELABEL),
    )
    def relabel_preview(
        request: Request,
        doc_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
        rel_to: Annotated[list[str] | None, Form(max_length=50)] = None,
    ) -> Response:
        who = pages.posted_by(request, csrf)
        change = relabel_change(who, doc_id[:64], rel_to)
        if isinstance(change, str):
            return pages.back(f"/console/documents/{doc_id[:64]}", change, bad=True)
        return render_preview(pages, tokens, request, who, change, datetime.now(UTC))

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
        confirm: Annotated[str, Form(max_length=200)] = "",
        justification: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        page = f"/console/documents/{doc_id[:64]}"
        nations = sorted({n.strip().upper() for n in (rel_to or []) if isinstance(n, str)})[:50]
        params = {"doc_id": doc_id[:64], "rel_to": ",".join(nations)}
        if not tokens.check("document.relabel", params, confirm):
            return pages.back(page, NOT_PREVIEWED, bad=True)
        at = datetime.now(UTC)
        try:
            check_justification(justification)
        except InvalidInput as exc:
            change = relabel_change(who, doc_id[:64], nations)
            if isinstance(change, str):
                return pages.back(page, change, bad=True)
            return render_preview(
                pages, tokens, request, who, change, at,
                justification=justification, error=str(exc),
            )  # fmt: skip
        try:
            doc = service.relabel(who, doc_id, nations, at, justification=justification)
        except ActionDenied as exc:
            reasons = "; ".join(r.sentence for r in exc.decision.reasons)
            return pages.back(page, f"Not allowed: {reasons}"[:300], bad=True)
        except (NotFound, AccessDenied):
            return pages.back(page, NOT_ALLOWED, bad=True)
        except InvalidInput as exc:
            return pages.back(page, str(exc)[:300], bad=True)
        return pages.back(f"/console/documents/{doc.id}", f"Now marked {doc.banner}.")
