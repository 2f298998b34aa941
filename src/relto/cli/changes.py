"""``relto partnership change``: quorum-signed partnership changes on this node
(:mod:`relto.federation.ledger`).

- ``propose KIND --payload JSON --actor ID --justification TEXT``: a security officer
  of this node's (member) nation proposes; this node signs its approval;
- ``approve ID`` / ``reject ID`` with ``--actor`` and ``--justification``: this node's
  word, signed with its node key;
- ``list [--status pending]``: every change held, with who signed;
- ``export ID -o FILE`` / ``import FILE``: the change and every word this node holds
  on it, as one JSON file, for partner nodes (they verify each signature against
  the node keys their own officers pinned -- nothing is believed for who sent it).

A change is applied on a node as soon as that node holds the approvals of its
quorum (every member by default), in the chain's order. Exit status 3 when an
import is refused as a fork of the applied chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from relto.audit.config import open_log
from relto.authz import Authorizer
from relto.cli.partnership import ActorId, Justification, partnership_app
from relto.config import load_settings
from relto.errors import InvalidInput
from relto.federation import TrustStore
from relto.federation.changes import ChangeFork
from relto.federation.homekeys import load_home_keys
from relto.federation.ledger import ChangeLedger, Standing
from relto.partnership import MAX_PAGE
from relto.partnership.registry import PartnershipRegistry
from relto.store import create_database
from relto.store.federation import SqlPinRepository
from relto.store.partnership import SqlPartnershipRepository
from relto.vetting.directory import Directory
from relto.vetting.service import VettingService

__all__ = ["register"]

change_app = typer.Typer(
    help="Quorum-signed partnership changes: propose, approve, reject, exchange.",
    no_args_is_help=True,
)

ChangeId = Annotated[str, typer.Argument(help="The change's id (its SHA-256, hex).")]


class _Node:
    """This node's ledger and directory, from its settings."""

    def __init__(self) -> None:
        settings = load_settings().with_demo_secrets()
        db = create_database(settings.effective_database_url)
        log = open_log(settings)
        authorizer = Authorizer(log)
        with db.session() as s:
            partnerships = SqlPartnershipRepository(s).list_partnerships(0, MAX_PAGE).items
        if not partnerships:
            raise InvalidInput("this node holds no partnership")
        partnership = partnerships[0]
        trust = TrustStore(SqlPinRepository(db), authorizer, log, settings.nation)
        self.directory = Directory(VettingService(db, log))
        self.ledger = ChangeLedger(
            db=db,
            sink=log,
            authorizer=authorizer,
            registry=PartnershipRegistry(db, log, authorizer),
            pins=trust.trusted,
            node_key=load_home_keys(settings).node_key,
            nation=settings.nation,
            partnership=partnership.id,
            founders=partnership.members,
        )

    def actor(self, person_id: str) -> Any:
        who = self.directory.principal(person_id, via="node")
        if who is None:
            raise InvalidInput(f"no person {person_id[:64]!r} in this node's directory")
        return who


def _row(s: Standing) -> dict[str, Any]:
    return {
        "id": s.change.id,
        "seq": s.change.seq,
        "kind": s.change.kind,
        "payload": dict(s.change.payload),
        "proposed_by": f"{s.change.person} ({s.change.nation})",
        "status": s.status,
        "approved_by": sorted(s.quorum.approved_by),
        "rejected_by": sorted(s.quorum.rejected_by),
        "required": s.quorum.required,
    }


@change_app.command("propose")
def propose(
    kind: Annotated[
        str, typer.Argument(help="admission.grant, admission.end, project.create, ...")
    ],
    payload: Annotated[str, typer.Option("--payload", help="The change's payload, JSON.")],
    actor: ActorId,
    justification: Justification,
) -> None:
    """Propose a change; this node approves it with its node key."""
    try:
        body = json.loads(payload)
    except ValueError:
        raise InvalidInput("--payload is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("--payload is a JSON object")
    node = _Node()
    typer.echo(json.dumps(_row(node.ledger.propose(node.actor(actor), kind, body, justification))))


def _decide(change_id: str, decision: str, actor: str, justification: str) -> None:
    node = _Node()
    standing = node.ledger.decide(node.actor(actor), change_id, decision, justification)
    typer.echo(json.dumps(_row(standing)))


@change_app.command("approve")
def approve_change(change_id: ChangeId, actor: ActorId, justification: Justification) -> None:
    """This node approves a change it holds (signed with its node key)."""
    _decide(change_id, "approve", actor, justification)


@change_app.command("reject")
def reject_change(change_id: ChangeId, actor: ActorId, justification: Justification) -> None:
    """This node rejects a change it holds (signed with its node key)."""
    _decide(change_id, "reject", actor, justification)


@change_app.command("list")
def list_changes(
    status: Annotated[
        str | None, typer.Option(help="applied, pending, rejected or superseded.")
    ] = None,
) -> None:
    """Every change this node holds, one JSON line each, in chain order."""
    for s in _Node().ledger.standings(status):
        typer.echo(json.dumps(_row(s)))


@change_app.command("export")
def export(
    change_id: ChangeId,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write it.")],
) -> None:
    """Write a change and every word this node holds on it, for partner nodes."""
    held = _Node().ledger.standing(change_id)
    out.write_text(
        json.dumps(
            {
                "change": held.change.canonical().decode(),
                "approvals": [a.token for a in held.approvals],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    signers = ", ".join(sorted(a.nation for a in held.approvals))
    typer.echo(f"wrote {out} ({held.status}, signed by {signers})")


@change_app.command("import")
def import_change(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Take in a change and the words on it that verify here; apply what is ready."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        body, tokens = data["change"], data["approvals"]
        if not isinstance(body, str) or not isinstance(tokens, list):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidInput(f"{file} is not an exported change") from None
    try:
        standing = _Node().ledger.receive(body, [str(t) for t in tokens])
    except ChangeFork as fork:
        typer.echo(f"refused: {fork}", err=True)
        raise typer.Exit(3) from None
    typer.echo(json.dumps(_row(standing)))


def register(app: typer.Typer) -> None:
    partnership_app.add_typer(change_app, name="change")
