"""What every console page shares: templates, the signed-in person, CSRF, the
page's marking banner, flash messages and the uniform "not found" page.

Flash messages ("JPN admitted to hypersonic up to SECRET.") are never read from
the URL: :meth:`Pages.back` seals one into a short-lived cookie signed by the
node and bound to the session (or, for a bearer token, the person) of the
request that made it; the next page rendered for that session shows it once and
clears it.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from relto import __version__
from relto.authz import Permission, Principal, Scope, decide
from relto.documents import DocumentView
from relto.errors import AccessDenied, NotFound, ReltoError
from relto.federation.reach import PartnerReach
from relto.server.auth import FLASH_COOKIE, FLASH_SECONDS
from relto.server.console._marking import PageMarking, page_marking
from relto.server.edge import Edge

__all__ = [
    "GATED_NAV",
    "NATION_NAMES",
    "NAV",
    "NOT_ALLOWED",
    "STATIC_URL",
    "Pages",
    "safe_next",
]

HERE = Path(__file__).resolve().parent.parent
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

#: Pages listed only for people whose roles let them use them (for their own nation).
GATED_NAV: tuple[tuple[str, str, str, Permission], ...] = (
    ("/console/export", "Export control", "export", Permission.EXPORT_FACTS_READ),
    ("/console/trace", "Trace a leak", "trace", Permission.TRACING_TRACE),
)

NOT_ALLOWED = "Not found, or you may not make this change."

#: The request being answered and who sent it, once :meth:`Pages.who` knows
#: (each request runs in its own context, so requests never see each other's).
_ANSWERING: ContextVar[tuple[Request, Principal] | None] = ContextVar(
    "relto_console_answering", default=None
)


class LoginRequired(Exception):
    """No signed-in person: the console's handler sends them to sign in."""


def decide_nav(who: Principal, permission: Permission) -> bool:
    """Whether ``who`` may use a gated page for their own nation (a menu entry,
    never an authorisation: the page decides again)."""
    return decide(who, permission, Scope.of([who.home_nation])).allowed


def safe_next(value: str | None) -> str:
    """Only local console paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return "/console"


class Pages:
    """Rendering and request helpers bound to one app's :class:`Edge`."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.node = edge.node
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        #: The pinned partners, reached for the signed-in person (``None``: this
        #: node vouches for nobody; set by :func:`relto.server.console.mount`).
        self.reach: PartnerReach | None = None

    def install(self, app: FastAPI) -> None:
        # a sign-in page exists: the demo picker, or the node's own OIDC issuer
        has_login = self.node.settings.demo or self.edge.auth.sessions_enabled

        @app.exception_handler(LoginRequired)
        async def _to_login(request: Request, exc: LoginRequired) -> Response:
            if has_login:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={safe_next(target)}", status_code=303)
            return HTMLResponse(
                "<!doctype html><title>Sign-in required · relto</title><main>"
                "<h1>Sign-in required</h1><p>Present a bearer token from your nation's "
                "identity provider.</p></main>",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="relto"'},
            )

    def who(self, request: Request) -> Principal:
        """The signed-in person, or off to sign in."""
        principal = self.edge.auth.principal(request)
        if principal is None:
            raise LoginRequired()
        _ANSWERING.set((request, principal))
        return principal

    def posted_by(self, request: Request, csrf: str) -> Principal:
        """The signed-in person sending a form, with its CSRF token checked."""
        principal = self.who(request)
        if principal.via == "session" and not self.edge.auth.check_session_csrf(request, csrf):
            raise HTTPException(403, "missing or invalid CSRF token")
        return principal

    def marking(self, documents: Iterable[DocumentView]) -> PageMarking:
        """The banner of a page showing ``documents`` (:mod:`._marking`)."""
        return page_marking(documents, self.node.settings.console_marking_floor)

    def render(
        self,
        request: Request,
        name: str,
        who: Principal | None,
        active: str = "",
        status_code: int = 200,
        *,
        marked: Iterable[DocumentView] = (),
        **context: Any,
    ) -> HTMLResponse:
        """Render template ``name``. ``marked``: the documents the page shows
        (titles, banners, contents): the page's banner is the highest of their
        markings. Documents passed in the context itself (one, or a list of them)
        count too."""
        auth = self.edge.auth
        shown = list(marked)
        for value in context.values():
            if isinstance(value, DocumentView):
                shown.append(value)
            elif isinstance(value, list | tuple):
                shown.extend(v for v in value if isinstance(v, DocumentView))
        flash_cookie = auth.cookie(request, FLASH_COOKIE)
        flash = None
        if flash_cookie and who is not None:
            flash = auth.signer.open_flash(flash_cookie, auth.flash_binding(request, who))
        base = {
            "who": who,
            "nav": NAV
            + tuple(
                (href, label, key)
                for href, label, key, permission in GATED_NAV
                if who is not None and decide_nav(who, permission)
            ),
            "active": active,
            "demo": self.node.settings.demo,
            "csrf": auth.session_csrf(request),
            "static_url": STATIC_URL,
            "version": __version__,
            "node_nation": self.node.settings.nation,
            "nation_names": NATION_NAMES,
            "flash": flash[0] if flash else None,
            "flash_kind": flash[1] if flash else "ok",
            "marking": self.marking(shown),
        }
        base.update(context)
        response = self.templates.TemplateResponse(request, name, base, status_code=status_code)
        if flash_cookie:
            auth.clear_cookie(request, response, FLASH_COOKIE)
        return response

    def not_found(
        self, request: Request, who: Principal, active: str, message: str
    ) -> HTMLResponse:
        return self.render(
            request,
            "unavailable.html",
            who,
            active,
            status_code=404,
            title="Not found",
            message=message,
        )

    def back(self, path: str, message: str, *, bad: bool = False) -> RedirectResponse:
        """Back to ``path`` (a console page) with ``message`` shown there once, to
        the person this request was answered for (after :meth:`who`)."""
        answering = _ANSWERING.get()
        if answering is None:
            raise RuntimeError("Pages.back() answers a request Pages.who() has identified")
        request, principal = answering
        auth = self.edge.auth
        response = RedirectResponse(path, status_code=303)
        sealed = auth.signer.seal_flash(
            auth.flash_binding(request, principal), message, "bad" if bad else "ok"
        )
        auth.set_cookie(request, response, FLASH_COOKIE, sealed, FLASH_SECONDS)
        return response

    @staticmethod
    def explain(exc: ReltoError) -> str:
        """A message a person can act on; access problems stay opaque."""
        if isinstance(exc, AccessDenied | NotFound):
            return NOT_ALLOWED
        return str(exc)[:300]
