"""Partnership changes and witnessing alarms on the dashboard.

- The changes this node holds that still await signatures, each with who signed
  and how many it needs; for a pending admission, its what-if effect computed on
  this node (security officers); a security officer of this node's nation
  approves or rejects with a justification (``POST
  /console/changes/{id}/decision``), signed by this node's node key.
- Witnessing alarms: a pinned partner whose log this node's witness saw fork or
  roll back, shown at the top of the dashboard to everyone of this node's nation.
- Silent partners: a pinned partner not heard from for more than a few push
  rounds (:mod:`relto.federation.reachability`), shown apart from the fork
  alarms (those are evidence and stay; this clears when the partner is heard
  from again), and when each partner was last heard from, in the pins table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import Response

from relto.audit.witnessing import ALARM_KIND, Alarm
from relto.authz import Permission, Principal
from relto.errors import AccessDenied, InvalidInput, NotFound, ReltoError
from relto.federation.ledger import ChangeLedger, Standing
from relto.federation.reachability import PartnerStatus
from relto.server.console._pages import Pages
from relto.server.edge import needs
from relto.server.routes.changes import node_ledger

__all__ = ["ChangeRow", "alarms_for", "mount", "partner_status_for", "pending_for"]


@dataclass(frozen=True)
class ChangeRow:
    """A pending change as the dashboard shows it."""

    standing: Standing
    summary: str
    effect: str | None
    may_decide: bool


def ledger_of(pages: Pages, request: Request) -> ChangeLedger | None:
    held = getattr(request.app.state, "changes", None)
    return None if held is None else node_ledger(pages.node, held)


def _summary(s: Standing) -> str:
    return json.dumps(dict(s.change.payload), sort_keys=True, separators=(", ", ": "))[:300]


def _effect(pages: Pages, who: Principal, s: Standing) -> str | None:
    """The what-if of a pending admission on this node, for a security officer."""
    p = s.change.payload
    if s.change.kind != "admission.grant":
        return None
    try:
        view = pages.node.documents.what_if(
            who, [f"admit:{p['nation']}:{p['project']}:{p['ceiling']}"], datetime.now(UTC)
        )
    except (AccessDenied, ReltoError):
        return None
    elsewhere = sum(view.gained_elsewhere.values())
    nation = pages.node.settings.nation
    return (
        f"on this node: {len(view.gained)} (person, document) pairs of {nation} "
        f"and {elsewhere} of other nations would gain read access"
    )


def pending_for(pages: Pages, request: Request, who: Principal) -> list[ChangeRow] | None:
    """The pending changes, or ``None`` on a node without a ledger."""
    ledger = ledger_of(pages, request)
    if ledger is None:
        return None
    officer = ("security_officer", ledger.nation) in who.roles
    rows = []
    for s in ledger.standings("pending"):
        said = any(a.nation == ledger.nation for a in s.approvals)
        rows.append(
            ChangeRow(
                standing=s,
                summary=_summary(s),
                effect=_effect(pages, who, s) if officer else None,
                may_decide=officer and not said,
            )
        )
    return rows


def alarms_for(pages: Pages, who: Principal) -> list[Alarm]:
    """Forks and rollbacks this node's witness saw in pinned partners' logs."""
    witness = pages.node.witness
    if witness is None:
        return []
    try:
        return [a for a in witness.read_alarms(who) if a.kind == ALARM_KIND]
    except (AccessDenied, NotFound):
        return []


def partner_status_for(pages: Pages, who: Principal) -> dict[str, PartnerStatus]:
    """How each pinned partner stands (last heard from, silent), by nation; empty
    for someone not of this node's nation, or on a node in no federation."""
    reach = pages.node.reachability
    if reach is None:
        return {}
    try:
        return {s.nation: s for s in reach.read_status(who)}
    except (AccessDenied, NotFound):
        return {}


def mount(app: FastAPI, pages: Pages) -> None:
    @app.post(
        "/console/changes/{change_id}/decision",
        include_in_schema=False,
        **needs(Permission.ADMIN_ADMISSIONS_WRITE),
    )
    def decide(
        request: Request,
        change_id: str,
        csrf: Annotated[str, Form(max_length=200)] = "",
        decision: Annotated[str, Form(max_length=10)] = "",
        justification: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        who = pages.posted_by(request, csrf)
        ledger = ledger_of(pages, request)
        if ledger is None:
            return pages.back("/console", "This node keeps no partnership changes.", bad=True)
        if decision not in ("approve", "reject"):
            return pages.back("/console#changes", "Approve or reject.", bad=True)
        if len(justification.strip()) < 10:
            return pages.back(
                "/console#changes", "Say why, in at least 10 characters: it is signed.", bad=True
            )
        try:
            standing = ledger.decide(who, change_id[:64], decision, justification.strip())
        except (NotFound, AccessDenied):
            return pages.back("/console#changes", pages.explain(AccessDenied("")), bad=True)
        except (InvalidInput, ReltoError) as exc:
            return pages.back("/console#changes", str(exc)[:300], bad=True)
        verdict: dict[str, Any] = {
            "applied": "approved by its quorum and applied on this node",
            "pending": f"{len(standing.quorum.approved_by)} of {standing.quorum.required} "
            "member nodes have approved it",
            "rejected": "rejected: its quorum can no longer be reached",
        }
        said = "approved" if decision == "approve" else "rejected"
        return pages.back(
            "/console#changes",
            f"{ledger.nation} {said} change {standing.change.seq}: "
            f"{verdict.get(standing.status, standing.status)}.",
        )
