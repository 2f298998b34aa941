"""Partnership changes over HTTP (:mod:`relto.federation.ledger`).

- ``GET /api/v1/partnership/changes[?status=]``: every change this node holds, with
  its standing and the signed words on it (``partnership:read``: people of this
  node's nation);
- ``POST /api/v1/partnership/changes``: propose ``{kind, payload, justification}``
  (``admin:admissions:write``: a security officer of this node's member nation);
- ``POST /api/v1/partnership/changes/{id}/decision``: ``{decision: approve|reject,
  justification}``, signed by this node;
- ``POST /api/v1/partnership/changes/receive``: a partner node offers ``{change,
  approvals}`` (``partnership:changes:receive``, public: nothing is believed for who
  sent it -- every approval is verified against the node keys pinned here). It
  answers ``{status, head}`` (``head``: this node's next place); a refusal is the
  usual error body (``change_fork``, 409; ``change_refused``, 400) with ``head``.

A node that takes part in no federation answers 404 on all of them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from relto.authz import Permission, Scope
from relto.errors import InvalidInput, NotFound
from relto.federation.changes import MAX_CHANGE_BYTES, ChangeFork
from relto.federation.ledger import ChangeLedger, Standing
from relto.node import Node
from relto.server.edge import Edge, needs
from relto.server.errors import error_body

__all__ = ["mount", "node_ledger"]

PREFIX = "/api/v1/partnership/changes"
_MAX_APPROVALS = 32


class ProposeIn(BaseModel):
    kind: Annotated[str, Field(min_length=1, max_length=40)]
    payload: dict[str, Any]
    justification: Annotated[str, Field(min_length=1, max_length=2000)]


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject"]
    justification: Annotated[str, Field(min_length=1, max_length=2000)]


class OfferIn(BaseModel):
    change: Annotated[str, Field(min_length=2, max_length=MAX_CHANGE_BYTES)]
    approvals: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=8192)]],
        Field(max_length=_MAX_APPROVALS),
    ]


def _out(s: Standing) -> dict[str, Any]:
    return {
        "id": s.change.id,
        "seq": s.change.seq,
        "kind": s.change.kind,
        "status": s.status,
        "change": s.change.canonical().decode(),
        "approvals": [a.token for a in s.approvals],
        "approved_by": sorted(s.quorum.approved_by),
        "rejected_by": sorted(s.quorum.rejected_by),
        "required": s.quorum.required,
    }


def node_ledger(node: Node, held: dict[str, ChangeLedger]) -> ChangeLedger | None:
    """The node's ledger, made once the node holds a partnership and takes part in a
    federation (``held`` keeps it: one per process, whose lock orders proposals);
    ``None`` before."""
    found = held.get("ledger")
    if found is not None or node.federation is None:
        return found
    p = node.partnerships.served()
    if p is None:
        return None
    ledger = ChangeLedger(
        db=node.db,
        sink=node.sink,
        authorizer=node.authorizer,
        registry=node.partnerships,
        pins=node.trust.trusted,
        node_key=node.federation.descriptors.node_key,
        nation=node.settings.nation,
        partnership=p.id,
        founders=p.members,
    )
    return held.setdefault("ledger", ledger)


def mount(app: FastAPI, edge: Edge) -> dict[str, ChangeLedger]:
    """Mount the routes; the holder of the node's ledger (the push task uses it too)."""
    held: dict[str, ChangeLedger] = {}

    def ledger() -> ChangeLedger:
        found = node_ledger(edge.node, held)
        if found is None:
            raise NotFound(
                "this node keeps no partnership changes (no federation, or no partnership)"
            )
        return found

    @app.get(PREFIX, tags=["partnership"], summary="The partnership changes this node holds",
             **needs(Permission.PARTNERSHIP_READ))  # fmt: skip
    def list_changes(
        request: Request,
        status: Annotated[
            Literal["applied", "pending", "rejected", "superseded", "failed"] | None, Query()
        ] = None,
    ) -> JSONResponse:
        who = edge.who(request)
        held = ledger()
        edge.node.authorizer.require(
            who, Permission.PARTNERSHIP_READ, Scope.of([held.nation]), target="changes"
        )
        return JSONResponse({"head": held.chain().next_seq,
                             "changes": [_out(s) for s in held.standings(status)]})  # fmt: skip

    @app.post(PREFIX, tags=["partnership"], status_code=201,
              summary="Propose a partnership change (this node approves it)",
              **needs(Permission.ADMIN_ADMISSIONS_WRITE))  # fmt: skip
    def propose(request: Request, body: ProposeIn) -> JSONResponse:
        who = edge.who(request)
        standing = ledger().propose(who, body.kind, body.payload, body.justification)
        return JSONResponse(_out(standing), status_code=201)

    @app.post(f"{PREFIX}/{{change_id}}/decision", tags=["partnership"],
              summary="This node's approval or rejection of a change, signed now",
              **needs(Permission.ADMIN_ADMISSIONS_WRITE))  # fmt: skip
    def decide(request: Request, change_id: str, body: DecisionIn) -> JSONResponse:
        who = edge.who(request)
        standing = ledger().decide(who, change_id[:64], body.decision, body.justification)
        return JSONResponse(_out(standing))

    @app.post(f"{PREFIX}/receive", tags=["partnership"],
              summary="A partner node offers a change and the signed words on it",
              **needs(Permission.PARTNERSHIP_CHANGES_RECEIVE))  # fmt: skip
    def receive(request: Request, body: Annotated[OfferIn, Body()]) -> JSONResponse:
        held = ledger()
        try:
            standing = held.receive(body.change, body.approvals)
        except ChangeFork as fork:
            said = error_body("change_fork", str(fork)[:300], request, head=held.chain().next_seq)
            return JSONResponse(said, status_code=409)
        except InvalidInput as exc:
            said = error_body("change_refused", str(exc)[:300], request, head=held.chain().next_seq)
            return JSONResponse(said, status_code=400)
        return JSONResponse({"status": standing.status, "head": held.chain().next_seq})

    return held
