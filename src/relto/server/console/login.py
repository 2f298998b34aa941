"""Demo sign-in and sign-out (demo mode only: never mounted otherwise).

Signing in records a session on the node (:mod:`relto.sessions`); signing out
deletes it, so the cookie is worthless afterwards wherever it was copied to.
"Sign out everywhere" ends every session of the signed-in person. The sign-in
form carries a token bound to a short-lived cookie set with the form, so another
site cannot sign a visitor in as someone of its choosing (login CSRF).
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relto.authz import Permission
from relto.server.auth import LOGIN_COOKIE, LOGIN_SECONDS, SESSION_COOKIE
from relto.server.console._pages import NATION_NAMES, Pages, safe_next
from relto.server.edge import needs

__all__ = ["mount", "mount_sign_out"]

log = structlog.stdlib.get_logger("relto.console")


def mount(app: FastAPI, pages: Pages) -> None:
    directory = pages.node.directory
    auth = pages.edge.auth

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
        cookie, token = auth.signer.login_form()
        response = pages.render(
            request,
            "login.html",
            None,
            title="Sign in",
            groups=ordered,
            next=safe_next(next),
            login_token=token,
        )
        auth.set_cookie(request, response, LOGIN_COOKIE, cookie, LOGIN_SECONDS)
        return response

    @app.post("/login", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def login(
        request: Request,
        person_id: Annotated[str, Form(max_length=100)],
        next: Annotated[str, Form(max_length=500)] = "/console",
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        if not auth.signer.check_login_form(auth.cookie(request, LOGIN_COOKIE), csrf):
            log.info("demo_login_refused", reason="sign-in form token missing, wrong or expired")
            return RedirectResponse("/login", status_code=303)
        if directory.principal(person_id, via="session") is None:
            return RedirectResponse("/login", status_code=303)
        response = RedirectResponse(safe_next(next), status_code=303)
        auth.start_session(request, response, person_id)
        auth.clear_cookie(request, response, LOGIN_COOKIE)
        log.info("demo_login", person=person_id)
        return response

    mount_sign_out(app, pages)


def mount_sign_out(app: FastAPI, pages: Pages) -> None:
    """Sign-out and "sign out everywhere", for every kind of console session (demo,
    or OIDC: :mod:`.oidc_login`)."""
    auth = pages.edge.auth

    @app.post("/logout", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        response = RedirectResponse("/login", status_code=303)
        if auth.check_session_csrf(request, csrf):
            person_id = auth.end_session(request)
            auth.clear_cookie(request, response, SESSION_COOKIE)
            log.info("demo_logout", person=person_id)
        return response

    @app.post("/logout/everywhere", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def logout_everywhere(
        request: Request, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        who = pages.posted_by(request, csrf)
        ended = auth.end_all_sessions(who.person_id)
        response = RedirectResponse("/login", status_code=303)
        auth.clear_cookie(request, response, SESSION_COOKIE)
        log.info("demo_logout_everywhere", person=who.person_id, sessions=ended)
        return response
