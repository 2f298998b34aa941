"""What every console page shares: templates, the signed-in person, CSRF, flash
messages and the uniform "not found" page."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from relto import __version__
from relto.authz import Principal
from relto.errors import AccessDenied, NotFound, ReltoError
from relto.server.auth import SESSION_COOKIE
from relto.server.edge import Edge

__all__ = [
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

NOT_ALLOWED = "Not found, or you may not make this change."


class LoginRequired(Exception):
    """No signed-in person: the console's handler sends them to sign in."""


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

    def install(self, app: FastAPI) -> None:
        demo = self.node.settings.demo

        @app.exception_handler(LoginRequired)
        async def _to_login(request: Request, exc: LoginRequired) -> Response:
            if demo:
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
        return principal

    def posted_by(self, request: Request, csrf: str) -> Principal:
        """The signed-in person sending a form, with its CSRF token checked."""
        principal = self.who(request)
        if principal.via == "session" and not self.edge.auth.signer.check_csrf(
            request.cookies.get(SESSION_COOKIE), csrf
        ):
            raise HTTPException(403, "missing or invalid CSRF token")
        return principal

    def render(
        self,
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
            "demo": self.node.settings.demo,
            "csrf": self.edge.auth.signer.csrf(cookie) if cookie else "",
            "static_url": STATIC_URL,
            "version": __version__,
            "node_nation": self.node.settings.nation,
            "nation_names": NATION_NAMES,
            "flash": flash[:300] if flash else None,
            "flash_kind": "bad" if request.query_params.get("kind") == "bad" else "ok",
        }
        base.update(context)
        return self.templates.TemplateResponse(request, name, base, status_code=status_code)

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

    @staticmethod
    def back(path: str, message: str, *, bad: bool = False) -> RedirectResponse:
        query = {"flash": message}
        if bad:
            query["kind"] = "bad"
        return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)

    @staticmethod
    def explain(exc: ReltoError) -> str:
        """A message a person can act on; access problems stay opaque."""
        if isinstance(exc, AccessDenied | NotFound):
            return NOT_ALLOWED
        return str(exc)[:300]
