"""The decision explorer: why (not) may a person act on a document now."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from relto.authz import Permission, Principal
from relto.decisions import Decision
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.server.console._pages import Pages
from relto.server.edge import needs

__all__ = ["mount"]

ACTIONS = ("read", "download", "share", "relabel")


def mount(app: FastAPI, pages: Pages) -> None:
    service = pages.node.documents
    vetting = pages.node.vetting

    def people_for(who: Principal) -> list[dict[str, str]]:
        visible = vetting.list_people(limit=200, caller=who).items
        out = [{"id": p.id, "name": p.name, "nation": p.home_nation} for p in visible]
        if not any(p["id"] == who.person_id for p in out):
            out.insert(0, {"id": who.person_id, "name": who.name, "nation": who.nation})
        return sorted(out, key=lambda p: (p["nation"], p["name"]))

    @app.get(
        "/console/decisions",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.DECISIONS_EXPLAIN),
    )
    def explorer(
        request: Request,
        person_id: str | None = None,
        doc_id: str | None = None,
        action: str = "read",
    ) -> HTMLResponse:
        who = pages.who(request)
        people = people_for(who)
        decision: Decision | None = None
        error = None
        person_name = doc_title = ""
        if person_id and doc_id:
            try:
                if action not in ACTIONS:
                    raise InvalidInput("unknown action")
                doc, decision = service.explain(
                    who, person_id[:64], doc_id, action, datetime.now(UTC)
                )
                person_name = next((p["name"] for p in people if p["id"] == person_id), person_id)
                doc_title = doc.title
            except (NotFound, AccessDenied):
                error = "Not found, or you may not see that person's decisions."
            except InvalidInput as exc:
                error = str(exc)[:300]
        return pages.render(
            request,
            "decisions.html",
            who,
            "decisions",
            title="Decision explorer",
            people=people,
            docs=service.page(who),
            actions=ACTIONS,
            person_id=person_id or who.person_id,
            doc_id=doc_id,
            action=action,
            decision=decision,
            error=error,
            person_name=person_name,
            doc_title=doc_title,
        )
