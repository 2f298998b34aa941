"""Demo sign-in (demo mode only: never mounted otherwise)."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relto.authz import Permission
from relto.server.auth import SESSION_COOKIE, SESSION_SECONDS
from relto.server.console._pages import NATION_NAMES, Pages, safe_next
from relto.server.edge import needs

__all__ = ["mount"]

log = structlog.stdlib.get_logger("relto.console")


def mount(app: FastAPI, pages: Pages) -> None:
    directory = pages.node.directory
    signer = pages.edge.auth.signer

    @app.get(
        "/login",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.SESSION_MANAGE),
    )
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        order = list(NATION_NAMES)
        groups: dict[str, list[dict[str, Any]]] = {}
        for p in sorted(directory.people(), key=lambda p: (p.home_nation, p.name)):
            groups.setdefault(p.home_nation, []).append(
                {
                    "person_id": p.id,
                    "name": p.name,
                    "organisation": p.organisation,
                    "roles": sorted((r.value, p.home_nation) for r in p.roles),
                }
            )
        ordered = sorted(
            groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
        )
        return pages.render(
            request, "login.html", None, title="Sign in", groups=ordered, next=safe_next(next)
        )

    @app.post("/login", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def login(
        person_id: Annotated[str, Form(max_length=100)],
        next: Annotated[str, Form(max_length=500)] = "/console",
    ) -> Response:
        if directory.principal(person_id, via="session") is None:
            return RedirectResponse("/login", status_code=303)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            signer.sign(person_id),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            path="/",
        )
        log.info("demo_login", person=person_id)
        return response

    @app.post("/logout", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        response = RedirectResponse("/login", status_code=303)
        if signer.check_csrf(request.cookies.get(SESSION_COOKIE), csrf):
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response
