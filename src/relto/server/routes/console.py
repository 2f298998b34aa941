"""The web console: server-rendered pages for security officers, engineers and auditors.

No front-end build step: Jinja2 templates and one stylesheet. Every page needs a
signed-in person (a bearer token, or a demo session in demo mode); state-changing
forms carry a CSRF token. Pages whose back-end capability is not installed on
this node say so instead of failing.

In demo mode, :func:`mount` also loads the demo partnership (idempotently) and
mounts the demo login page; outside demo mode neither exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from relto import __version__
from relto.errors import AccessDenied as AccessDeniedError
from relto.errors import ReltoError
from relto.partnership import (
    CLASSIFICATIONS,
    MAX_PAGE,
    UnknownRecord,
    admit,
    end_admission,
    matrix,
)
from relto.server.app import AppContext
from relto.server.auth import SESSION_COOKIE, SESSION_SECONDS, Principal, request_auth
from relto.store.partnership import SqlPartnershipRepository

__all__ = ["NATION_NAMES", "mount"]

log = structlog.stdlib.get_logger("relto.console")

_HERE = Path(__file__).resolve().parent.parent
STATIC_URL = "/static"

NATION_NAMES = {
    "AUS": "Australia",
    "GBR": "United Kingdom",
    "USA": "United States",
    "JPN": "Japan",
    "KOR": "Republic of Korea",
    "NZL": "New Zealand",
    "CAN": "Canada",
}

NAV: tuple[tuple[str, str, str], ...] = (
    ("/console", "Dashboard", "dashboard"),
    ("/console/people", "People & clearances", "people"),
    ("/console/documents", "Documents", "documents"),
    ("/console/decisions", "Decision explorer", "decisions"),
    ("/console/what-if", "What-if", "what-if"),
    ("/console/audit", "Audit log", "audit"),
)


class _LoginRequired(Exception):
    pass


def _safe_next(value: str | None) -> str:
    """Only local console paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return "/console"


def mount(app: FastAPI, ctx: AppContext) -> None:
    auth = request_auth(ctx)
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app.mount(STATIC_URL, StaticFiles(directory=str(_HERE / "static")), name="static")
    state: dict[str, Any] = {"load_report": None}
    ctx.extras["console"] = state

    _security_headers(app, ctx.settings)
    if ctx.settings.demo:
        # Server workers start together: one loads, the others find it loaded.
        with ctx.db.exclusive("demo-load"):
            _load_demo(ctx, state)

    def who_or_login(request: Request) -> Principal:
        principal = auth.principal(request)
        if principal is None:
            raise _LoginRequired()
        return principal

    @app.exception_handler(_LoginRequired)
    async def _to_login(request: Request, exc: _LoginRequired) -> Response:
        if ctx.settings.demo:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={_safe_next(target)}", status_code=303)
        return HTMLResponse(
            "<!doctype html><title>Sign-in required · relto</title><main><h1>Sign-in required</h1>"
            "<p>Present a bearer token from your nation's identity provider.</p></main>",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="relto"'},
        )

    def render(
        request: Request,
        name: str,
        who: Principal | None,
        active: str = "",
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        cookie = request.cookies.get(SESSION_COOKIE)
        flash = request.query_params.get("flash")
        base = {
            "who": who,
            "nav": NAV,
            "active": active,
            "demo": ctx.settings.demo,
            "csrf": auth.signer.csrf(cookie) if cookie else "",
            "static_url": STATIC_URL,
            "version": __version__,
            "node_nation": ctx.settings.nation,
            "nation_names": NATION_NAMES,
            "flash": flash[:300] if flash else None,
            "flash_kind": "bad" if request.query_params.get("kind") == "bad" else "ok",
        }
        base.update(context)
        return templates.TemplateResponse(request, name, base, status_code=status_code)

    def check_csrf(request: Request, token: str) -> None:
        principal = auth.principal(request)
        if principal is None:
            raise _LoginRequired()
        if principal.via == "session" and not auth.signer.check_csrf(
            request.cookies.get(SESSION_COOKIE), token
        ):
            from fastapi import HTTPException

            raise HTTPException(403, "missing or invalid CSRF token")

    def back(path: str, message: str, *, bad: bool = False) -> RedirectResponse:
        from urllib.parse import urlencode

        query = {"flash": message}
        if bad:
            query["kind"] = "bad"
        return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)

    # -- sign-in (demo only) ---------------------------------------------------

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    if ctx.settings.demo:
        directory = auth.directory

        @app.get("/login", include_in_schema=False, response_class=HTMLResponse)
        def login_page(request: Request, next: str | None = None) -> HTMLResponse:
            people = sorted(
                directory.entries(),  # type: ignore[attr-defined]
                key=lambda e: (e.nationality, e.name),
            )
            order = list(NATION_NAMES)
            groups: dict[str, list[Any]] = {}
            for e in people:
                groups.setdefault(e.nationality, []).append(
                    {
                        "person_id": e.person_id,
                        "name": e.name,
                        "organisation": e.organisation,
                        "roles": sorted(e.roles),
                    }
                )
            ordered = sorted(
                groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
            )
            return render(
                request,
                "login.html",
                None,
                title="Sign in",
                groups=ordered,
                next=_safe_next(next),
            )

        @app.post("/login", include_in_schema=False)
        def login(
            person_id: Annotated[str, Form(max_length=100)],
            next: Annotated[str, Form(max_length=500)] = "/console",
        ) -> Response:
            if directory.lookup(person_id) is None:
                return RedirectResponse("/login", status_code=303)
            response = RedirectResponse(_safe_next(next), status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                auth.signer.sign(person_id),
                max_age=SESSION_SECONDS,
                httponly=True,
                samesite="lax",
                path="/",
            )
            log.info("demo_login", person=person_id)
            return response

        @app.post("/logout", include_in_schema=False)
        def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
            response = RedirectResponse("/login", status_code=303)
            if auth.signer.check_csrf(request.cookies.get(SESSION_COOKIE), csrf):
                response.delete_cookie(SESSION_COOKIE, path="/")
            return response

    # -- dashboard and admissions ------------------------------------------------

    def partnership_for(repo: SqlPartnershipRepository, who: Principal) -> Any:
        for p in repo.list_partnerships(0, MAX_PAGE).items:
            if who.nation in p.nations:
                return p
        return None

    @app.get("/console", include_in_schema=False, response_class=HTMLResponse)
    def dashboard(request: Request) -> HTMLResponse:
        who = who_or_login(request)
        at = datetime.now(UTC)
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            p = partnership_for(repo, who)
            projects = list(repo.list_projects(p.id, 0, MAX_PAGE).items) if p else []
            admissions = [a for pr in projects for a in repo.admissions_for(pr.id)]
        ceilings = matrix(p, projects, admissions, at) if p else {}
        can_admit = bool(p) and any(who.holds("security_officer", n) for n in p.members)
        admissions.sort(key=lambda a: (a.project_id, a.nation, a.valid_from))
        return render(
            request,
            "dashboard.html",
            who,
            "dashboard",
            title="Dashboard",
            partnership=p,
            projects=projects,
            ceilings=ceilings,
            admissions=admissions,
            can_admit=can_admit,
            classifications=CLASSIFICATIONS,
            at=at,
        )

    @app.post("/console/admissions", include_in_schema=False)
    def console_admit(
        request: Request,
        project_id: Annotated[str, Form(max_length=63)],
        nation: Annotated[str, Form(max_length=3)],
        ceiling: Annotated[str, Form(max_length=40)],
        csrf: Annotated[str, Form(max_length=200)] = "",
        valid_until: Annotated[str, Form(max_length=20)] = "",
        note: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        check_csrf(request, csrf)
        who = who_or_login(request)
        at = datetime.now(UTC)
        try:
            until = (
                datetime.combine(date.fromisoformat(valid_until), time(), tzinfo=UTC)
                if valid_until
                else None
            )
        except ValueError:
            return back("/console", "Valid until is not a date.", bad=True)
        try:
            with ctx.db.session() as s:
                repo = SqlPartnershipRepository(s)
                project = repo.get_project(project_id)
                if project is None:
                    raise UnknownRecord("no such project")
                admit(
                    repo,
                    ctx.sink,
                    project_id=project_id,
                    nation=nation,
                    ceiling=ceiling,
                    actor=who.actor(),
                    at=at,
                    valid_until=until,
                    note=note,
                )
        except ReltoError as exc:
            return back("/console", _explain(exc), bad=True)
        return back("/console", f"{nation} admitted to {project_id} up to {ceiling}.")

    @app.post("/console/admissions/{admission_id}/end", include_in_schema=False)
    def console_end(
        request: Request, admission_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        check_csrf(request, csrf)
        who = who_or_login(request)
        try:
            with ctx.db.session() as s:
                a = end_admission(
                    SqlPartnershipRepository(s),
                    ctx.sink,
                    admission_id=admission_id,
                    actor=who.actor(),
                    at=datetime.now(UTC),
                )
        except ReltoError as exc:
            return back("/console", _explain(exc), bad=True)
        return back("/console", f"Admission of {a.nation} to {a.project_id} ended.")

    # -- pages whose back-ends are other capabilities -----------------------------

    _mount_people(app, ctx, render, who_or_login)
    _mount_documents(app, ctx, render, who_or_login, check_csrf, back)
    _mount_decisions(app, ctx, render, who_or_login)
    _mount_audit(app, ctx, render, who_or_login)


def _explain(exc: ReltoError) -> str:
    """A message a person can act on; access problems stay opaque."""
    from relto.errors import AccessDenied, NotFound

    if isinstance(exc, AccessDenied | NotFound):
        return "Not found, or you may not make this change."
    return str(exc)[:300]


def _load_demo(ctx: AppContext, state: Mapping[str, Any] | dict[str, Any]) -> None:
    from relto.demo import load_demo, read_demo

    data = read_demo()
    report = load_demo(ctx.db, ctx.sink, data, at=datetime.now(UTC))
    _load_demo_documents(ctx, data, report)
    if isinstance(state, dict):
        state["load_report"] = report
    log.info(
        "demo_loaded",
        partnerships=report.partnerships,
        projects=report.projects,
        admissions=report.admissions,
        people=report.people,
        documents=report.documents,
    )


# -- people and clearances (relto.vetting) ---------------------------------------------

REVALIDATION_HORIZON_DAYS = 90


def vetting_service(ctx: AppContext) -> Any:
    """The node's :class:`relto.vetting.service.VettingService`."""
    api = ctx.extras.get("vetting")
    if api is not None and hasattr(api, "service"):
        return api.service
    from relto.vetting.service import VettingService

    service = VettingService(ctx.db, ctx.sink)
    ctx.extras.setdefault("console_vetting", service)
    return service


def _clearance_view(c: Any, at: datetime, policy: Any) -> dict[str, Any]:
    status = c.status_at(at)
    currency = c.currency(at, policy)
    return {
        "clearance": c,
        "status": status.value if status is not None else "none",
        "until": c.valid_until_at(at),
        "reason": currency.reason,
    }


def _mount_people(
    app: FastAPI, ctx: AppContext, render: Callable[..., HTMLResponse], who_or_login: Any
) -> None:
    from relto.errors import AccessDenied, NotFound
    from relto.vetting import Caller

    @app.get("/console/people", include_in_schema=False, response_class=HTMLResponse)
    def people(request: Request) -> HTMLResponse:
        who = who_or_login(request)
        caller = Caller(who.person_id, who.roles)
        service = vetting_service(ctx)
        at = datetime.now(UTC)
        persons = list(service.list_people(limit=200, caller=caller).items)
        clearances = list(service.list_clearances(limit=200, caller=caller).items)
        by_person: dict[str, list[dict[str, Any]]] = {}
        for c in clearances:
            by_person.setdefault(c.person_id, []).append(_clearance_view(c, at, service.policy))
        rows = [
            {
                "person": p,
                "roles": sorted(r.value for r in p.roles),
                "projects": [m.project for m in p.projects],
                "clearances": by_person.get(p.id, []),
            }
            for p in sorted(persons, key=lambda p: (p.home_nation, p.name))
        ]
        names = {p.id: p for p in persons}
        upcoming = []
        for c in clearances:
            view = _clearance_view(c, at, service.policy)
            until = view["until"]
            if (
                until is not None
                and view["status"] in ("granted", "interim", "under_review", "suspended")
                and until - at <= timedelta(days=REVALIDATION_HORIZON_DAYS)
                and c.person_id in names
            ):
                upcoming.append(
                    {
                        "person": names[c.person_id],
                        "clearance": c,
                        "status": view["status"],
                        "until": until,
                        "days": max(0, (until - at).days),
                    }
                )
        upcoming.sort(key=lambda r: r["until"])
        return render(
            request,
            "people.html",
            who,
            "people",
            title="People & clearances",
            rows=rows,
            upcoming=upcoming,
            horizon_days=REVALIDATION_HORIZON_DAYS,
            at=at,
        )

    @app.get("/console/people/{person_id}", include_in_schema=False, response_class=HTMLResponse)
    def person(request: Request, person_id: str) -> HTMLResponse:
        who = who_or_login(request)
        caller = Caller(who.person_id, who.roles)
        service = vetting_service(ctx)
        at = datetime.now(UTC)
        try:
            p = service.get_person(person_id[:64], caller=caller)
        except (NotFound, AccessDenied):
            return render(
                request,
                "unavailable.html",
                who,
                "people",
                status_code=404,
                title="Not found",
                message="There is no such person, or you may not see their record.",
            )
        clearances = service.list_clearances(limit=200, person_id=p.id, caller=caller).items
        return render(
            request,
            "person.html",
            who,
            "people",
            title=p.name,
            person=p,
            roles=sorted(r.value for r in p.roles),
            projects=[m.project for m in p.projects],
            clearances=[_clearance_view(c, at, service.policy) for c in clearances],
        )


# -- documents (relto.labels, relto.ztdf, relto.kas, relto.decisions) -------------------


def _mount_documents(
    app: FastAPI,
    ctx: AppContext,
    render: Callable[..., HTMLResponse],
    who_or_login: Callable[[Request], Principal],
    check_csrf: Callable[[Request, str], None],
    back: Callable[..., RedirectResponse],
) -> None:
    from relto.errors import AccessDenied, InvalidInput, NotFound
    from relto.server.documents import MAX_DOCUMENT_BYTES, document_service

    service = document_service(ctx)

    def not_found(request: Request, who: Principal) -> HTMLResponse:
        return render(
            request,
            "unavailable.html",
            who,
            "documents",
            status_code=404,
            title="Not found",
            message="There is no such document on this node.",
        )

    def doc_page(
        request: Request,
        who: Principal,
        doc: Any,
        decision: Any = None,
        text: str | None = None,
    ) -> HTMLResponse:
        choice = service.label_choice(who.person_id, doc.originator)
        return render(
            request,
            "document.html",
            who,
            "documents",
            title=doc.title,
            doc=doc,
            decision=decision,
            text=text,
            can_relabel=who.holds("security_officer", doc.originator),
            nations=choice.nations,
        )

    @app.get("/console/documents", include_in_schema=False, response_class=HTMLResponse)
    def documents(request: Request) -> HTMLResponse:
        who = who_or_login(request)
        at = datetime.now(UTC)
        docs = service.list(who.nation)
        subject = service.subject(who.person_id, at)
        engine = service.engine()
        rows = []
        for d in docs:
            if subject is None:
                decision = service.decide(who.person_id, "read", d, at)
            else:
                decision = engine.evaluate(subject, "read", service.resource(d), at=at)
            rows.append({"doc": d, "decision": decision})
        return render(request, "documents.html", who, "documents", title="Documents", rows=rows)

    def new_form(
        request: Request, who: Principal, error: str | None = None, **form: Any
    ) -> HTMLResponse:
        return render(
            request,
            "document_new.html",
            who,
            "documents",
            status_code=422 if error else 200,
            title="Protect a new document",
            choice=service.label_choice(who.person_id, who.nation),
            error=error,
            form=form,
            max_mb=MAX_DOCUMENT_BYTES // (1024 * 1024),
        )

    @app.get("/console/documents/new", include_in_schema=False, response_class=HTMLResponse)
    def new_document(request: Request) -> HTMLResponse:
        return new_form(request, who_or_login(request))

    @app.post("/console/documents/new", include_in_schema=False)
    async def upload(
        request: Request,
        title: Annotated[str, Form(max_length=200)],
        project_id: Annotated[str, Form(max_length=63)],
        classification: Annotated[str, Form(max_length=60)],
        file: Annotated[UploadFile, File()],
        csrf: Annotated[str, Form(max_length=200)] = "",
        rel_to: Annotated[list[str] | None, Form(max_length=50)] = None,
    ) -> Response:
        check_csrf(request, csrf)
        who = who_or_login(request)
        limit = min(MAX_DOCUMENT_BYTES, ctx.settings.max_upload_bytes)
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
        from starlette.concurrency import run_in_threadpool

        try:
            doc = await run_in_threadpool(
                lambda: service.upload(
                    person_id=who.person_id,
                    nation=who.nation,
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
        return back(f"/console/documents/{doc.id}", f"Protected as {doc.banner}.")

    @app.get("/console/documents/{doc_id}", include_in_schema=False, response_class=HTMLResponse)
    def document(request: Request, doc_id: str) -> HTMLResponse:
        who = who_or_login(request)
        try:
            doc = service.visible_to(doc_id, who.nation)
        except NotFound:
            return not_found(request, who)
        return doc_page(request, who, doc)

    def open_doc(request: Request, who: Principal, doc_id: str) -> tuple[Any, Any, bytes | None]:
        service.visible_to(doc_id, who.nation)
        return service.open(
            person_id=who.person_id,
            nation=who.nation,
            name=who.name,
            doc_id=doc_id,
            at=datetime.now(UTC),
        )

    @app.post("/console/documents/{doc_id}/open", include_in_schema=False)
    def open_document(
        request: Request, doc_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        check_csrf(request, csrf)
        who = who_or_login(request)
        try:
            doc, decision, plaintext = open_doc(request, who, doc_id)
        except NotFound:
            return not_found(request, who)
        text = None
        if plaintext is not None:
            try:
                text = plaintext[:_SHOW_BYTES].decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None and len(plaintext) > _SHOW_BYTES:
                text += "\n\n[… shown up to 256 KiB; download for the whole file]"
        return doc_page(request, who, doc, decision, text)

    @app.post("/console/documents/{doc_id}/download", include_in_schema=False)
    def download(
        request: Request, doc_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        check_csrf(request, csrf)
        who = who_or_login(request)
        try:
            doc, decision, plaintext = open_doc(request, who, doc_id)
        except NotFound:
            return not_found(request, who)
        if plaintext is None:
            return doc_page(request, who, doc, decision)
        return Response(
            plaintext,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{doc.filename}"',
                "X-Relto-Marking": doc.banner,
                "Cache-Control": "no-store",
            },
        )

    @app.post("/console/documents/{doc_id}/relabel", include_in_schema=False)
    def relabel(
        request: Request,
        doc_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
        rel_to: Annotated[list[str] | None, Form(max_length=50)] = None,
    ) -> Response:
        check_csrf(request, csrf)
        who = who_or_login(request)
        try:
            service.visible_to(doc_id, who.nation)
            doc = service.relabel(
                person_id=who.person_id,
                roles=who.roles,
                doc_id=doc_id,
                rel_to=[n for n in (rel_to or []) if isinstance(n, str)][:50],
                at=datetime.now(UTC),
            )
        except (NotFound, AccessDenied):
            return back(f"/console/documents/{doc_id[:64]}", _NOT_ALLOWED, bad=True)
        except InvalidInput as exc:
            return back(f"/console/documents/{doc_id[:64]}", str(exc)[:300], bad=True)
        return back(f"/console/documents/{doc.id}", f"Now marked {doc.banner}.")


_NOT_ALLOWED = "Not found, or you may not make this change."
#: How much of a text document the open page shows inline.
_SHOW_BYTES = 256 * 1024


# -- audit (relto.audit) -----------------------------------------------------------------

AUDIT_PAGE_ENTRIES = 30
_MAX_VERIFY = 500_000


def _summarise(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    who = payload.get("by") or payload.get("subject") or payload.get("actor") or ""
    what_keys = (
        "object_title",
        "title",
        "document",
        "object",
        "project",
        "nation",
        "ceiling",
        "banner",
        "to",
        "clearance_id",
        "person_id",
        "to_status",
        "policy_uuid",
    )
    parts: list[str] = []
    for key in what_keys:
        value = payload.get(key)
        if isinstance(value, str | int) and value != "" and len(parts) < 4:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    allowed = payload.get("allowed")
    if kind == "kas.rewrap" and "released" in payload:
        allowed = bool(payload.get("released"))
    reasons = payload.get("reasons")
    codes = (
        [str(r.get("code")) for r in reasons if isinstance(r, Mapping)]
        if isinstance(reasons, list)
        else []
    )
    return {
        "who": str(who)[:80],
        "what": "; ".join(parts)[:300],
        "allowed": allowed,
        "codes": codes,
    }


def _mount_audit(
    app: FastAPI,
    ctx: AppContext,
    render: Callable[..., HTMLResponse],
    who_or_login: Callable[[Request], Principal],
) -> None:
    from relto.audit.access import may_read_entries
    from relto.audit.checkpoint import open_checkpoint
    from relto.audit.config import node_signer
    from relto.audit.entries import decode_entry
    from relto.audit.sources import DatabaseSource
    from relto.audit.verify import verify_log
    from relto.server.routes.audit import log_for

    @app.get("/console/audit", include_in_schema=False, response_class=HTMLResponse)
    def audit(request: Request) -> HTMLResponse:
        who = who_or_login(request)
        allowed = may_read_entries(who.roles)
        if not allowed:
            return render(request, "audit.html", who, "audit", title="Audit log", allowed=False)
        log = log_for(ctx)
        signer = node_signer(ctx.settings)
        note = log.sign_checkpoint(signer)
        signed = open_checkpoint(note, signer.verifier())
        size = signed.checkpoint.size
        if size <= _MAX_VERIFY:
            report = verify_log(DatabaseSource(log), [signed.checkpoint])
            report_text = report.describe()
        else:  # pragma: no cover - very large logs are verified offline
            report = None
            report_text = "the log is too large to verify here; run relto audit verify"
        rows = []
        for stored in reversed(log.entries(max(0, size - AUDIT_PAGE_ENTRIES), size)):
            try:
                entry = decode_entry(stored.body)
            except ReltoError:
                rows.append({"index": stored.index, "time": "", "kind": "(undecodable)",
                             "who": "", "what": "", "allowed": None, "codes": []})  # fmt: skip
                continue
            rows.append(
                {
                    "index": entry.index,
                    "time": entry.time.replace("T", " ")[:19],
                    "kind": entry.kind,
                    **_summarise(entry.kind, entry.payload),
                }
            )
        return render(
            request,
            "audit.html",
            who,
            "audit",
            title="Audit log",
            allowed=True,
            checkpoint=note,
            report=report or type("R", (), {"ok": False})(),
            report_text=report_text,
            vkey=signer.verifier().vkey,
            entries=rows,
            size=size,
        )


def _load_demo_documents(ctx: AppContext, data: Any, report: Any) -> None:
    """Protect the demo file's sample documents (once), as their owners."""
    from relto.errors import NotFound
    from relto.labels import parse_banner
    from relto.server.documents import document_service

    service = document_service(ctx)
    for d in data.documents:
        try:
            service.get(d.id)
            continue
        except NotFound:
            pass
        owner = data.person(d.owner)
        banner = parse_banner(d.label, originator=d.originator)
        try:
            service.upload(
                person_id=d.owner,
                nation=d.originator,
                title=d.title,
                project_id=d.project,
                classification=banner.classification,
                rel_to=list(banner.rel_to),
                filename=f"{d.id}.txt",
                media_type="text/plain",
                data=d.text.encode(),
                at=datetime.now(UTC),
                doc_id=d.id,
            )
            report.documents += 1
        except ReltoError as exc:
            report.skipped.append(f"document {d.id}: {exc}")
            log.warning(
                "demo_document_skipped", document=d.id, owner=owner and owner.id, error=str(exc)
            )


# -- decision explorer and what-if (relto.decisions) -------------------------------------


def _mount_decisions(
    app: FastAPI,
    ctx: AppContext,
    render: Callable[..., HTMLResponse],
    who_or_login: Callable[[Request], Principal],
) -> None:
    from relto.errors import InvalidInput, NotFound
    from relto.server.documents import document_service

    service = document_service(ctx)
    actions = ("read", "download", "share", "relabel")

    def people_for(who: Principal) -> list[dict[str, str]]:
        from relto.vetting import Caller

        vetting = vetting_service(ctx)
        visible = vetting.list_people(limit=200, caller=Caller(who.person_id, who.roles)).items
        out = [{"id": p.id, "name": p.name, "nation": p.home_nation} for p in visible]
        if not any(p["id"] == who.person_id for p in out):
            out.insert(0, {"id": who.person_id, "name": who.name, "nation": who.nation})
        return sorted(out, key=lambda p: (p["nation"], p["name"]))

    @app.get("/console/decisions", include_in_schema=False, response_class=HTMLResponse)
    def explorer(
        request: Request,
        person_id: str | None = None,
        doc_id: str | None = None,
        action: str = "read",
    ) -> HTMLResponse:
        who = who_or_login(request)
        people = people_for(who)
        docs = service.list(who.nation)
        decision = error = None
        person_name = doc_title = ""
        if person_id and doc_id:
            try:
                doc = service.visible_to(doc_id, who.nation)
                if action not in actions:
                    raise InvalidInput("unknown action")
                if not service.may_explain(who.person_id, who.roles, person_id[:64], doc):
                    raise NotFound("not visible")
                decision = service.decide(person_id[:64], action, doc, datetime.now(UTC))
                person_name = next((p["name"] for p in people if p["id"] == person_id), person_id)
                doc_title = doc.title
            except (NotFound, AccessDeniedError):
                error = "Not found, or you may not see that person's decisions."
            except InvalidInput as exc:
                error = str(exc)[:300]
        return render(
            request,
            "decisions.html",
            who,
            "decisions",
            title="Decision explorer",
            people=people,
            docs=docs,
            actions=actions,
            person_id=person_id or who.person_id,
            doc_id=doc_id,
            action=action,
            decision=decision,
            error=error,
            person_name=person_name,
            doc_title=doc_title,
        )

    @app.get("/console/what-if", include_in_schema=False, response_class=HTMLResponse)
    def whatif(
        request: Request,
        nation: str = "",
        project: str = "",
        ceiling: str = "SECRET",
        doc_id: str = "",
        rel_to: str = "",
    ) -> HTMLResponse:
        who = who_or_login(request)
        allowed = who.holds("security_officer")
        form = {
            "nation": nation[:3],
            "project": project[:63],
            "ceiling": ceiling[:40],
            "doc_id": doc_id[:64],
            "rel_to": rel_to[:100],
        }
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            p = partnership_for_nation(repo, who.nation)
            projects = list(repo.list_projects(p.id, 0, MAX_PAGE).items) if p else []
        docs = service.list(who.nation)
        changes: list[str] = []
        if form["nation"] and form["project"]:
            changes.append(f"admit:{form['nation']}:{form['project']}:{form['ceiling']}")
        extra = [n.strip().upper() for n in form["rel_to"].split(",") if n.strip()]
        if form["doc_id"] and extra:
            changes.append(f"rel-to:{form['doc_id']}:{','.join(extra)}")
        result = error = None
        at = datetime.now(UTC)
        if allowed and changes:
            try:
                result = service.what_if(changes, nation=who.nation, at=at)
            except InvalidInput as exc:
                error = str(exc)[:300]
        names: dict[str, str] = {}
        nations_of: dict[str, str] = {}
        if result is not None:
            vetting = vetting_service(ctx)
            for pid, _ in (*result.gained, *result.lost):
                if pid not in names:
                    try:
                        person = vetting.get_person(pid)
                        names[pid] = person.name
                        nations_of[pid] = ", ".join(sorted(person.nationalities))
                    except NotFound:
                        names[pid] = pid
        return render(
            request,
            "whatif.html",
            who,
            "what-if",
            title="What-if",
            allowed=allowed,
            form=form,
            nations=p.nations if p else (),
            projects=projects,
            classifications=CLASSIFICATIONS,
            docs=docs,
            changes=[_describe_change(c) for c in changes],
            result=result,
            error=error,
            names=names,
            nations_of=nations_of,
            titles={d.id: d.title for d in docs},
            banners={d.id: d.banner for d in docs},
        )


def _describe_change(change: str) -> str:
    kind, _, rest = change.partition(":")
    parts = rest.split(":")
    if kind == "admit" and len(parts) >= 3:
        return f"admit {parts[0]} to {parts[1]} at {parts[2]}"
    if kind == "rel-to" and len(parts) == 2:
        return f"add {parts[1]} to Releasable To of {parts[0]}"
    return change


def partnership_for_nation(repo: SqlPartnershipRepository, nation: str) -> Any:
    for p in repo.list_partnerships(0, MAX_PAGE).items:
        if nation in p.nations:
            return p
    return None


_CONSOLE_PREFIXES = ("/console", "/login", "/logout", "/static")
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


_UPLOAD_PATHS = frozenset({"/console/documents/new", "/api/v1/objects"})
_FORM_OVERHEAD = 64 * 1024


def _security_headers(app: FastAPI, settings: Any) -> None:
    """Console pages: no scripts, no framing, no sniffing, nothing cached. Uploads:
    refused before the form is parsed when larger than the limit or of unknown size."""
    from relto.server.documents import MAX_DOCUMENT_BYTES

    limit = min(MAX_DOCUMENT_BYTES, settings.max_upload_bytes) + _FORM_OVERHEAD
    app.add_middleware(_ConsoleGuard, upload_limit=limit)


_CONSOLE_HEADERS = (
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class _ConsoleGuard:
    """Pure ASGI middleware for :func:`_security_headers` (no per-request task)."""

    def __init__(self, app: Any, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if scope.get("method") == "POST" and path in _UPLOAD_PATHS:
            length = ""
            for name, value in scope.get("headers", ()):
                if name == b"content-length":
                    length = value.decode("latin-1")
                    break
            if not length.isdigit() or int(length) > self.upload_limit:
                from fastapi.responses import JSONResponse

                from relto.server.errors import error_body

                body = error_body(
                    "too_large",
                    f"uploads are limited to {self.upload_limit} bytes, with a length",
                    Request(scope),
                )
                await JSONResponse(body, status_code=413)(scope, receive, send)
                return
        if not (path == "/" or path.startswith(_CONSOLE_PREFIXES)):
            await self.app(scope, receive, send)
            return
        extra = list(_CONSOLE_HEADERS)
        if not path.startswith("/static"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
