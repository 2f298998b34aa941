"""What-if: before admitting a partner or widening Releasable To, who would gain
or lose access to what (the security officer's own nation's people by name,
everyone else as counts per nation). Nothing is changed."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from relto.authz import Permission, Scope
from relto.documents import WhatIfView
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.partnership import CLASSIFICATIONS
from relto.server.console._pages import Pages
from relto.server.edge import needs

__all__ = ["mount"]


def describe_change(change: str) -> str:
    kind, _, rest = change.partition(":")
    parts = rest.split(":")
    if kind == "admit" and len(parts) >= 3:
        return f"admit {parts[0]} to {parts[1]} at {parts[2]}"
    if kind == "rel-to" and len(parts) == 2:
        return f"add {parts[1]} to Releasable To of {parts[0]}"
    return change


def mount(app: FastAPI, pages: Pages) -> None:
    service = pages.node.documents
    registry = pages.node.partnerships
    authz = pages.node.authorizer

    @app.get(
        "/console/what-if",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.DECISIONS_WHAT_IF),
    )
    def whatif(
        request: Request,
        nation: str = "",
        project: str = "",
        ceiling: str = "SECRET",
        doc_id: str = "",
        rel_to: str = "",
    ) -> HTMLResponse:
        who = pages.who(request)
        allowed = authz.allows(who, Permission.DECISIONS_WHAT_IF, Scope.of([who.home_nation]))
        form = {
            "nation": nation[:3],
            "project": project[:63],
            "ceiling": ceiling[:40],
            "doc_id": doc_id[:64],
            "rel_to": rel_to[:100],
        }
        at = datetime.now(UTC)
        view = registry.overview(who, None, at)
        docs = service.page(who)
        changes: list[str] = []
        if form["nation"] and form["project"]:
            changes.append(f"admit:{form['nation']}:{form['project']}:{form['ceiling']}")
        extra = [n.strip().upper() for n in form["rel_to"].split(",") if n.strip()]
        if form["doc_id"] and extra:
            changes.append(f"rel-to:{form['doc_id']}:{','.join(extra)}")
        result: WhatIfView | None = None
        error = None
        if allowed and changes:
            try:
                result = service.what_if(who, changes, at)
            except InvalidInput as exc:
                error = str(exc)[:300]
            except (NotFound, AccessDenied):
                error = "Not found, or you may not ask this."
        return pages.render(
            request,
            "whatif.html",
            who,
            "what-if",
            title="What-if",
            allowed=allowed,
            form=form,
            nations=view.partnership.nations if view else (),
            projects=view.projects if view else (),
            classifications=CLASSIFICATIONS,
            docs=docs,
            changes=[describe_change(c) for c in changes],
            result=result,
            error=error,
            titles={d.id: d.title for d in docs},
            banners={d.id: d.banner for d in docs},
        )
