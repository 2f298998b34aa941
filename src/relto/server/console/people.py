"""People and clearances (relto.vetting): what the signed-in person may read."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from relto.authz import Permission
from relto.errors import AccessDenied, NotFound
from relto.server.console._pages import Pages
from relto.server.edge import needs
from relto.vetting.overview import clearance_view, people_overview

__all__ = ["mount"]


def mount(app: FastAPI, pages: Pages) -> None:
    service = pages.node.vetting

    @app.get(
        "/console/people",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.PEOPLE_READ),
    )
    def people(request: Request) -> HTMLResponse:
        who = pages.who(request)
        at = datetime.now(UTC)
        view = people_overview(service, who, at)
        return pages.render(
            request,
            "people.html",
            who,
            "people",
            title="People & clearances",
            rows=view.rows,
            upcoming=view.upcoming,
            horizon_days=view.horizon_days,
            at=at,
        )

    @app.get(
        "/console/people/{person_id}",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.PEOPLE_READ),
    )
    def person(request: Request, person_id: str) -> HTMLResponse:
        who = pages.who(request)
        at = datetime.now(UTC)
        try:
            p = service.get_person(person_id[:64], caller=who)
        except (NotFound, AccessDenied):
            return pages.not_found(
                request, who, "people", "There is no such person, or you may not see their record."
            )
        clearances = service.list_clearances(limit=200, person_id=p.id, caller=who).items
        return pages.render(
            request,
            "person.html",
            who,
            "people",
            title=p.name,
            person=p,
            roles=sorted(r.value for r in p.roles),
            projects=[m.project for m in p.projects],
            clearances=[clearance_view(c, at, service.policy) for c in clearances],
        )
