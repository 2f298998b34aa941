"""The dashboard: the partnership's projects, who is admitted where, and (for its
members' security officers) admitting and ending admissions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relto.authz import Permission
from relto.errors import ReltoError
from relto.partnership import CLASSIFICATIONS
from relto.server.console._pages import Pages
from relto.server.edge import needs

__all__ = ["mount"]


def mount(app: FastAPI, pages: Pages) -> None:
    registry = pages.node.partnerships

    @app.get("/", include_in_schema=False, **needs(Permission.CONSOLE_USE))
    def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    @app.get(
        "/console",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.PARTNERSHIP_READ),
    )
    def dashboard(request: Request) -> HTMLResponse:
        who = pages.who(request)
        at = datetime.now(UTC)
        view = registry.overview(who, None, at)
        admissions = sorted(
            view.admissions if view else (), key=lambda a: (a.project_id, a.nation, a.valid_from)
        )
        return pages.render(
            request,
            "dashboard.html",
            who,
            "dashboard",
            title="Dashboard",
            partnership=view.partnership if view else None,
            projects=view.projects if view else (),
            ceilings=view.ceilings if view else {},
            admissions=admissions,
            can_admit=view is not None and registry.may_admit(who, view.partnership),
            classifications=CLASSIFICATIONS,
            at=at,
        )

    @app.post(
        "/console/admissions", include_in_schema=False, **needs(Permission.ADMIN_ADMISSIONS_WRITE)
    )
    def console_admit(
        request: Request,
        project_id: Annotated[str, Form(max_length=63)],
        nation: Annotated[str, Form(max_length=3)],
        ceiling: Annotated[str, Form(max_length=40)],
        csrf: Annotated[str, Form(max_length=200)] = "",
        valid_until: Annotated[str, Form(max_length=20)] = "",
        note: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        try:
            until = (
                datetime.combine(date.fromisoformat(valid_until), time(), tzinfo=UTC)
                if valid_until
                else None
            )
        except ValueError:
            return pages.back("/console", "Valid until is not a date.", bad=True)
        try:
            registry.admit(
                who,
                project_id=project_id,
                nation=nation,
                ceiling=ceiling,
                at=datetime.now(UTC),
                valid_until=until,
                note=note,
            )
        except ReltoError as exc:
            return pages.back("/console", pages.explain(exc), bad=True)
        return pages.back("/console", f"{nation} admitted to {project_id} up to {ceiling}.")

    @app.post(
        "/console/admissions/{admission_id}/end",
        include_in_schema=False,
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def console_end(
        request: Request, admission_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        who = pages.posted_by(request, csrf)
        try:
            a = registry.end(who, admission_id, datetime.now(UTC))
        except ReltoError as exc:
            return pages.back("/console", pages.explain(exc), bad=True)
        return pages.back("/console", f"Admission of {a.nation} to {a.project_id} ended.")
