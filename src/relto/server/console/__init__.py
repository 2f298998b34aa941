"""The web console: server-rendered pages for security officers, engineers and
auditors, one module per page (shared helpers in :mod:`._pages`).

No front-end build step: Jinja2 templates and one stylesheet. Every page needs a
signed-in person (a bearer token, or a session: demo sign-in in demo mode,
sign-in at the node's own OpenID provider otherwise, :mod:`.oidc_login`);
state-changing forms carry a CSRF token. The demo sign-in page exists only in
demo mode.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from relto.server.console import (
    audit,
    changes,
    dashboard,
    decisions,
    documents,
    export,
    login,
    oidc_login,
    partners,
    people,
    trace,
    whatif,
)
from relto.server.console._pages import HERE, STATIC_URL, Pages
from relto.server.console.guard import ConsoleGuard
from relto.server.edge import Edge

__all__ = ["mount"]


def mount(app: FastAPI, edge: Edge) -> None:
    pages = Pages(edge)
    pages.reach = partners.partner_reach(edge.node)
    pages.install(app)
    app.mount(STATIC_URL, StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(ConsoleGuard)
    if edge.node.settings.demo:
        login.mount(app, pages)
    oidc_login.mount(app, pages)  # outside demo mode: sign-in at the node's own issuer
    for page in (
        dashboard,
        changes,
        people,
        documents,
        decisions,
        whatif,
        audit,
        export,
        trace,
    ):
        page.mount(app, pages)
    partners.mount(app, pages, pages.reach)
