"""Partnership changes replicate between real nodes over HTTP (three member nodes
under uvicorn on loopback): each node offers what it holds to every node it pins,
the receiver verifies every signature against its own pins and applies in the
chain's order; a node that was down catches up, and nothing is applied twice."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from relto.audit.entries import decode_entry
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.federation.ledger import ChangeLedger
from relto.federation.replication import ChangePusher
from relto.launcher.federation import nation_share
from relto.node import Node
from relto.server import create_app
from relto.server.routes.changes import node_ledger

from .live_server import Server, free_port

pytestmark = pytest.mark.xdist_group("replication")

OFFICERS = {"AUS": "aus-so-campbell", "GBR": "gbr-so-whitfield", "USA": "usa-so-bennett"}


@dataclass
class Live:
    nation: str
    node: Node
    app: Any
    server: Server

    @property
    def ledger(self) -> ChangeLedger:
        found = node_ledger(self.node, self.app.state.changes)
        assert found is not None
        return found

    @property
    def officer(self):  # type: ignore[no-untyped-def]
        return self.node.directory.principal(OFFICERS[self.nation], via="node")

    def push(self) -> list[Any]:
        return ChangePusher(self.ledger, self.node.trust.trusted).push()

    def applied(self) -> list[str]:
        log = self.node.log
        entries = [decode_entry(e.body) for e in log.entries(0, log.size())]
        return [str(e.payload["change"]) for e in entries if e.kind == "partnership.change.applied"]


@pytest.fixture
def three(tmp_path: Path) -> Iterator[dict[str, Live]]:
    data = read_demo()
    nodes: dict[str, Live] = {}
    try:
        for nation in ("AUS", "GBR", "USA"):
            port = free_port()
            settings = Settings(
                nation=nation, data_dir=tmp_path / nation.lower(), bind="127.0.0.1", port=port,
                public_url=f"http://127.0.0.1:{port}",
                secret_key=SecretStr(secrets.token_urlsafe(32)),
                keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
            )  # type: ignore[call-arg]  # fmt: skip
            app = create_app(settings)
            node: Node = app.state.node
            load_demo(node.db, node.sink, nation_share(data, nation), at=datetime.now(UTC))
            live = Live(nation, node, app, Server(app, port))
            live.server.start()
            nodes[nation] = live
        now = datetime.now(UTC)
        for a in nodes.values():
            for b in nodes.values():
                if a is not b:
                    assert b.node.federation is not None
                    a.node.trust.pin(
                        b.node.federation.descriptor(now),
                        fingerprint=b.node.federation.descriptors.fingerprint,
                        actor=a.officer, now=now,
                    )  # fmt: skip
        yield nodes
    finally:
        for live in nodes.values():
            live.server.stop()
            live.node.db.dispose()


def _admit(live: Live, nation: str, project: str) -> str:
    payload = {"nation": nation, "project": project, "ceiling": "SECRET",
               "valid_from": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()}  # fmt: skip
    return live.ledger.propose(
        live.officer, "admission.grant", payload, f"{nation} joins the project work"
    ).change.id


def test_change_replicates_and_applies_on_every_node_once(three: dict[str, Live]) -> None:
    aus, gbr, usa = three["AUS"], three["GBR"], three["USA"]
    change = _admit(gbr, "JPN", "hypersonic")
    gbr.push()
    for m in (aus, usa):
        assert m.ledger.standing(change).status == "pending"
        m.ledger.decide(m.officer, change, "approve", f"checked on the {m.nation} node")
    for m in (aus, usa, gbr, aus, usa):  # a few rounds, in any order
        m.push()
    for m in (aus, gbr, usa):
        assert m.ledger.standing(change).status == "applied", m.nation
        assert m.applied().count(change) == 1, m.nation


def test_node_down_for_a_while_catches_up_on_its_return(three: dict[str, Live]) -> None:
    aus, gbr, usa = three["AUS"], three["GBR"], three["USA"]
    first = _admit(gbr, "JPN", "hypersonic")
    gbr.push()
    for m in (aus, usa):
        m.ledger.decide(m.officer, first, "approve", "ok")
    for m in (aus, usa, gbr):
        m.push()
    usa.server.stop()  # USA is down
    second = _admit(gbr, "KOR", "hypersonic")
    pushed = {p.nation: p for p in gbr.push()}
    assert pushed["USA"].unreachable and pushed["AUS"].sent >= 1
    aus.ledger.decide(aus.officer, second, "approve", "ok")
    aus.push()
    assert gbr.ledger.standing(second).status == "pending"  # USA has not signed
    usa.server.start()  # back
    gbr.push()
    assert usa.ledger.standing(second).status == "pending"
    usa.ledger.decide(usa.officer, second, "approve", "ok")
    for m in (usa, aus, gbr):
        m.push()
    for m in (aus, gbr, usa):
        assert m.ledger.standing(second).status == "applied", m.nation
        assert m.applied() == [first, second], m.nation  # same order, once each


def test_offer_with_no_verifiable_approval_is_refused_over_http(three: dict[str, Live]) -> None:
    gbr, usa = three["GBR"], three["USA"]
    change = _admit(gbr, "JPN", "hypersonic")
    body = gbr.ledger.standing(change).change.canonical().decode()
    r = httpx.post(f"{usa.node.settings.public_url}/api/v1/partnership/changes/receive",
                   json={"change": body, "approvals": []}, timeout=10)  # fmt: skip
    assert r.status_code == 400
    assert "no member node's approval" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "change_refused"


def test_restarted_pusher_does_not_resend_the_chain_to_a_partner_that_holds_it(
    three: dict[str, Live],
) -> None:
    """A pusher that forgot the heads (a restart) offers from 0: the first answer
    says where the partner is, and the rest of the chain is not sent again."""
    aus, gbr, usa = three["AUS"], three["GBR"], three["USA"]
    for project in ("hypersonic", "quantum", "undersea"):
        change = _admit(gbr, "JPN", project)
        gbr.push()
        for m in (aus, usa):
            m.ledger.decide(m.officer, change, "approve", f"checked on the {m.nation} node")
        for m in (aus, usa, gbr):
            m.push()
    assert len(gbr.applied()) == 3
    pushed = {p.nation: p for p in gbr.push()}  # a new pusher: no heads yet
    assert {n: (p.sent, p.head, p.refused) for n, p in pushed.items()} == {
        "AUS": (1, 3, 0), "USA": (1, 3, 0)
    }  # fmt: skip
    for m in (aus, usa):
        assert m.applied() == gbr.applied(), m.nation
