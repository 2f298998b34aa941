"""People and clearances (relto.vetting): what the signed-in person may read, and
for a vetting officer of the person's nation, suspending and reinstating a
clearance (decided and recorded by the vetting service, like the API's
transitions; a suspension reaches partner nodes through the node's status list)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response

from relto.authz import Permission
from relto.errors import AccessDenied, InvalidInput, NotFound, ReltoError
from relto.server.console._pages import Pages
from relto.server.edge import needs
from relto.vetting import Status
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
            may_adjudicate=any(
                role == "vetting_officer" and nation == p.home_nation for role, nation in who.roles
            ),
        )

    @app.post(
        "/console/people/{person_id}/clearances/{clearance_id}/transition",
        include_in_schema=False,
        **needs(Permission.CLEARANCES_ADJUDICATE),
    )
    def transition(
        request: Request,
        person_id: str,
        clearance_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
        to: Annotated[str, Form(max_length=40)] = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        back = f"/console/people/{person_id[:64]}"
        try:
            target = Status(to)
        except ValueError:
            return pages.back(back, "Choose what to do with the clearance.", bad=True)
        if not reason.strip():
            return pages.back(back, "Give the reason: it is recorded with the change.", bad=True)
        try:
            c = service.get_clearance(clearance_id[:64], caller=who)
            if c.person_id != person_id[:64]:
                raise NotFound("no such clearance")
            service.transition(
                c.id,
                target,
                at=datetime.now(UTC),
                actor=who.person_id,
                reason=reason.strip(),
                caller=who,
            )
        except (NotFound, AccessDenied):
            return pages.back(back, pages.explain(AccessDenied("")), bad=True)
        except (InvalidInput, ReltoError) as exc:
            return pages.back(back, str(exc)[:300], bad=True)
        return pages.back(back, f"Clearance {target.value.replace('_', ' ')}.")
