"""The dashboard: the partnership's projects, who is admitted where, and (for its
members' security officers) admitting and ending admissions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relto.authz import Permission, Principal
from relto.errors import InvalidInput, ReltoError
from relto.federation.ledger import ChangeLedger
from relto.partnership import CLASSIFICATIONS, check_justification
from relto.server.console._confirm import confirm_tokens
from relto.server.console._pages import NOT_ALLOWED, Pages
from relto.server.console._preview import NOT_PREVIEWED, Change, render_preview
from relto.server.console.changes import (
    alarms_for,
    ledger_of,
    partner_status_for,
    pending_for,
)
from relto.server.edge import needs

__all__ = ["mount"]


def mount(app: FastAPI, pages: Pages) -> None:
    registry = pages.node.partnerships
    tokens = confirm_tokens(pages.node.settings)

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
        reach = partner_status_for(pages, who)
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
            # the partner nodes this node trusts: pinned by an officer, by fingerprint
            pins=sorted(pages.node.trust.pinned(), key=lambda p: p.nation),
            # partnership changes awaiting signatures, and witnessing alarms
            changes=pending_for(pages, request, who),
            alarms=alarms_for(pages, who),
            # when each partner was last heard from; the silent ones (an alarm that
            # clears when the partner is heard from again)
            reach=reach,
            silent=[s for s in reach.values() if s.state == "silent"],
        )

    def admission_change(
        who: Principal, project_id: str, nation: str, ceiling: str, valid_until: str, note: str
    ) -> tuple[Change | None, str | None]:
        """The admission to preview, or why not (a message for the dashboard)."""
        view = registry.overview(who, None, datetime.now(UTC))
        if view is None or not registry.may_admit(who, view.partnership):
            return None, NOT_ALLOWED
        if project_id not in {p.id for p in view.projects}:
            return None, "There is no such project."
        if nation not in view.partnership.nations:
            return None, f"{nation[:3]} is not a nation of the partnership."
        if ceiling not in CLASSIFICATIONS:
            return None, "That is not a classification of the partnership."
        if valid_until and _day(valid_until) is None:
            return None, "Valid until is not a date."
        params = {
            "project_id": project_id,
            "nation": nation,
            "ceiling": ceiling,
            "valid_until": valid_until,
            "note": note,
        }
        until = f" until {valid_until}" if valid_until else ""
        return Change(
            action="admission.admit",
            heading=f"admit {nation} to {project_id} up to {ceiling}{until}",
            what_if=f"admit:{nation}:{project_id}:{ceiling}",
            post_to="/console/admissions",
            params=params,
            back="/console",
            confirm_label="Admit",
        ), None

    @app.post(
        "/console/admissions/preview",
        include_in_schema=False,
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def console_admit_preview(
        request: Request,
        project_id: Annotated[str, Form(max_length=63)],
        nation: Annotated[str, Form(max_length=3)],
        ceiling: Annotated[str, Form(max_length=40)],
        csrf: Annotated[str, Form(max_length=200)] = "",
        valid_until: Annotated[str, Form(max_length=20)] = "",
        note: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        change, problem = admission_change(who, project_id, nation, ceiling, valid_until, note)
        if change is None:
            return pages.back("/console", problem or NOT_ALLOWED, bad=True)
        return render_preview(pages, tokens, request, who, change, datetime.now(UTC))

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
        confirm: Annotated[str, Form(max_length=200)] = "",
        justification: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        params = {
            "project_id": project_id,
            "nation": nation,
            "ceiling": ceiling,
            "valid_until": valid_until,
            "note": note,
        }
        if not tokens.check("admission.admit", params, confirm):
            return pages.back("/console", NOT_PREVIEWED, bad=True)
        at = datetime.now(UTC)
        until = _day(valid_until) if valid_until else None
        if valid_until and until is None:
            return pages.back("/console", "Valid until is not a date.", bad=True)
        try:
            check_justification(justification)
        except InvalidInput as exc:
            change, _ = admission_change(who, project_id, nation, ceiling, valid_until, note)
            if change is None:
                return pages.back("/console", NOT_ALLOWED, bad=True)
            return render_preview(
                pages, tokens, request, who, change, at,
                justification=justification, error=str(exc),
            )  # fmt: skip
        ledger = ledger_of(pages, request)
        if ledger is not None and pages.node.trust.pinned():
            # in a federation no nation alone admits: this becomes a proposal
            payload = {"nation": nation, "project": project_id, "ceiling": ceiling,
                       "valid_from": at.isoformat()}  # fmt: skip
            if until is not None:
                payload["valid_until"] = until.isoformat()
            what = f"{nation} to {project_id} up to {ceiling}"
            return _proposed(pages, ledger, who, "admission.grant", payload, justification, what)
        try:
            registry.admit(
                who,
                project_id=project_id,
                nation=nation,
                ceiling=ceiling,
                at=at,
                valid_until=until,
                note=note,
                justification=justification,
            )
        except ReltoError as exc:
            return pages.back("/console", pages.explain(exc), bad=True)
        return pages.back("/console", f"{nation} admitted to {project_id} up to {ceiling}.")

    def end_change(who: Principal, admission_id: str) -> Change | None:
        """The end of an admission to preview (``None``: not found, or not theirs to end)."""
        try:
            a = registry.admission(who, admission_id)
        except ReltoError:
            return None
        view = registry.overview(who, None, datetime.now(UTC))
        if view is None or not registry.may_admit(who, view.partnership):
            return None
        return Change(
            action="admission.end",
            heading=f"end the admission of {a.nation} to {a.project_id} (up to {a.ceiling})",
            what_if=f"end:{a.nation}:{a.project_id}",
            post_to=f"/console/admissions/{a.id}/end",
            params={"admission_id": a.id},
            back="/console",
            confirm_label="End admission",
            fields=(),
        )

    @app.post(
        "/console/admissions/{admission_id}/end/preview",
        include_in_schema=False,
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def console_end_preview(
        request: Request, admission_id: str, csrf: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        who = pages.posted_by(request, csrf)
        change = end_change(who, admission_id[:64])
        if change is None:
            return pages.back("/console", NOT_ALLOWED, bad=True)
        return render_preview(pages, tokens, request, who, change, datetime.now(UTC))

    @app.post(
        "/console/admissions/{admission_id}/end",
        include_in_schema=False,
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def console_end(
        request: Request,
        admission_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
        confirm: Annotated[str, Form(max_length=200)] = "",
        justification: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        if not tokens.check("admission.end", {"admission_id": admission_id[:64]}, confirm):
            return pages.back("/console", NOT_PREVIEWED, bad=True)
        at = datetime.now(UTC)
        try:
            check_justification(justification)
        except InvalidInput as exc:
            change = end_change(who, admission_id[:64])
            if change is None:
                return pages.back("/console", NOT_ALLOWED, bad=True)
            return render_preview(
                pages, tokens, request, who, change, at,
                justification=justification, error=str(exc),
            )  # fmt: skip
        ledger = ledger_of(pages, request)
        if ledger is not None and pages.node.trust.pinned():
            try:
                current = registry.admission(who, admission_id[:64])
            except ReltoError as exc:
                return pages.back("/console", pages.explain(exc), bad=True)
            payload = {"nation": current.nation, "project": current.project_id,
                       "at": at.isoformat()}  # fmt: skip
            what = f"the end of {current.nation}'s admission to {current.project_id}"
            return _proposed(pages, ledger, who, "admission.end", payload, justification, what)
        try:
            a = registry.end(who, admission_id, at, justification=justification)
        except ReltoError as exc:
            return pages.back("/console", pages.explain(exc), bad=True)
        return pages.back("/console", f"Admission of {a.nation} to {a.project_id} ended.")


def _proposed(
    pages: Pages,
    ledger: ChangeLedger,
    who: Principal,
    kind: str,
    payload: dict[str, str],
    justification: str,
    what: str,
) -> Response:
    """Propose ``kind`` to the partnership and say where it stands."""
    try:
        standing = ledger.propose(who, kind, payload, justification.strip())
    except ReltoError as exc:
        return pages.back("/console", pages.explain(exc), bad=True)
    q = standing.quorum
    waiting = ", ".join(sorted(q.members - q.approved_by)) or "nobody"
    return pages.back(
        "/console#changes",
        f"Proposed to the partnership: {what} (change {standing.change.seq}). "
        f"{len(q.approved_by)} of {q.required} member nodes have signed; it applies when "
        f"{waiting} {'has' if len(q.members - q.approved_by) == 1 else 'have'} signed too.",
    )


def _day(text: str) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        return None
