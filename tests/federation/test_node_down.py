"""A node down for an hour: the others mark it silent (once), go on applying
partnership changes by a quorum that does not need it and growing their logs; on
its return, on its same data folder, it catches up within a round -- every change
applied once, in the chain's order -- its witness cosigns the partners' newer
checkpoints from the size it had cosigned, its own checkpoints are cosigned again,
the silence alarms clear (once), and its log verifies.

Three member nodes (AUS, GBR, USA) under uvicorn on 127.0.0.1, each pinning the
others. Rounds are driven by hand (the server's loops do the same on a timer) and
the hour passes on an injected clock, not in sleep.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from relto.audit.checkpoint import open_checkpoint
from relto.audit.config import node_signer
from relto.audit.entries import decode_entry
from relto.audit.note import parse_verifier
from relto.audit.sources import DatabaseSource
from relto.audit.verify import verify_log
from relto.audit.witnessing import ALARM_KIND, Pushed
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.federation.ledger import ChangeLedger
from relto.federation.reachability import RETURNED_KIND, SILENT_KIND, Reachability
from relto.federation.replication import ChangePusher
from relto.launcher.federation import nation_share
from relto.node import Node
from relto.server import create_app
from relto.server.routes.changes import node_ledger
from relto.server.witnessing import push_once

from .live_server import Server, free_port

pytestmark = pytest.mark.xdist_group("replication")

OFFICERS = {"AUS": "aus-so-campbell", "GBR": "gbr-so-whitfield", "USA": "usa-so-bennett"}
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class Clock:
    """What "now" is for reachability on every node; moved on by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Live:
    nation: str
    settings: Settings
    clock: Clock
    app: Any = None
    server: Server | None = None
    pusher: ChangePusher | None = field(default=None, repr=False)

    def up(self, *, first: bool = False) -> None:
        """Build the node on its data folder (a fresh process, as after a restart)
        and serve it on its port."""
        self.app = create_app(self.settings)
        if first:
            load_demo(self.node.db, self.node.sink, nation_share(read_demo(), self.nation),
                      at=datetime.now(UTC))  # fmt: skip
        assert self.node.reachability is not None
        self.node.reachability.clock = self.clock
        self.pusher = None
        self.server = Server(self.app, self.settings.port)
        self.server.start()

    def down(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.node.db.dispose()
        self.node.log.db.dispose()

    @property
    def node(self) -> Node:
        node: Node = self.app.state.node
        return node

    @property
    def reach(self) -> Reachability:
        assert self.node.reachability is not None
        return self.node.reachability

    @property
    def ledger(self) -> ChangeLedger:
        found = node_ledger(self.node, self.app.state.changes)
        assert found is not None
        return found

    @property
    def officer(self):  # type: ignore[no-untyped-def]
        return self.node.directory.principal(OFFICERS[self.nation], via="node")

    def push_changes(self) -> None:
        """One replication round, as the server's loop runs it (one pusher, kept)."""
        if self.pusher is None:
            self.pusher = ChangePusher(self.ledger, self.node.trust.trusted,
                                       contacts=self.node.reachability)  # fmt: skip
        self.pusher.push()

    def round(self) -> dict[str, Pushed]:
        """One round of both loops."""
        self.push_changes()
        return {p.nation: p for p in push_once(self.node)}

    def entries(self, kind: str) -> list[dict[str, Any]]:
        log = self.node.log
        found = [decode_entry(e.body) for e in log.entries(0, log.size())]
        return [dict(e.payload) for e in found if e.kind == kind]

    def applied(self) -> list[str]:
        return [str(p["change"]) for p in self.entries("partnership.change.applied")]

    def state(self) -> dict[str, str]:
        return {s.nation: s.state for s in self.reach.statuses()}


@pytest.fixture
def three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Live]]:
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_PUSH_SECONDS", raising=False)  # 60 s a round
    clock = Clock()
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
            nodes[nation] = Live(nation, settings, clock)
            nodes[nation].up(first=True)
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
            if live.server is not None and live.server.server is not None:
                live.down()


def _admit(live: Live, nation: str, project: str) -> str:
    payload = {"nation": nation, "project": project, "ceiling": "SECRET",
               "valid_from": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()}  # fmt: skip
    return live.ledger.propose(
        live.officer, "admission.grant", payload, f"{nation} joins the {project} work"
    ).change.id


def _two_of_three_admit(nodes: dict[str, Live]) -> None:
    """The members agree (all three) that two of them suffice for an admission."""
    aus, gbr, usa = nodes["AUS"], nodes["GBR"], nodes["USA"]
    rule = gbr.ledger.propose(
        gbr.officer, "quorum.set", {"kind": "admission.grant", "required": 2},
        "two members suffice to admit a nation",
    ).change.id  # fmt: skip
    gbr.push_changes()
    for m in (aus, usa):
        m.ledger.decide(m.officer, rule, "approve", f"agreed on the {m.nation} node")
    for m in (aus, usa, gbr):
        m.round()
    for m in (aus, gbr, usa):
        assert m.ledger.standing(rule).status == "applied", m.nation


def _hour_passes_without(nodes: dict[str, Live], down: str) -> None:
    """An hour of rounds every 20 minutes on the nodes that are up."""
    for _ in range(3):
        nodes["AUS"].clock.now += timedelta(minutes=20)
        for m in nodes.values():
            if m.nation != down:
                m.round()


def test_node_back_after_an_hour_catches_up_without_applying_twice(
    three: dict[str, Live],
) -> None:
    aus, gbr, usa = three["AUS"], three["GBR"], three["USA"]
    _two_of_three_admit(three)
    for m in three.values():  # everybody has cosigned everybody's current head
        m.round()
    assert all(s == "reachable" for m in three.values() for s in m.state().values())
    usa_cosigned_gbr = gbr.node.witnessing.store.last_size("USA")  # type: ignore[union-attr]
    assert usa_cosigned_gbr > 0
    usa.down()

    # while USA is down: three admissions by AUS and GBR, and their logs grow
    changes = []
    for nation, project in (("JPN", "hypersonic"), ("KOR", "hypersonic"), ("JPN", "quantum")):
        change = _admit(gbr, nation, project)
        gbr.push_changes()
        aus.ledger.decide(aus.officer, change, "approve", "checked on the AUS node")
        aus.push_changes()
        changes.append(change)
    for m in (aus, gbr):
        assert [m.ledger.standing(c).status for c in changes] == ["applied"] * 3, m.nation
    _hour_passes_without(three, "USA")
    for m in (aus, gbr):
        assert m.state() == {"USA": "silent", **{n: "reachable" for n in ("AUS", "GBR")
                                                  if n != m.nation}}, m.nation  # fmt: skip
        assert [e["nation"] for e in m.entries(SILENT_KIND)] == ["USA"], m.nation

    usa.up()  # on its same data folder, a new process
    gbr_round = gbr.round()  # the first round that reaches it
    aus.round()
    usa_round = usa.round()

    # every change applied on USA once, in the chain's order, none failed
    assert usa.applied() == aus.applied() == gbr.applied()
    assert all(n == 1 for n in Counter(usa.applied()).values())
    assert {s.status for s in usa.ledger.standings()} == {"applied"}
    assert [usa.ledger.standing(c).status for c in changes] == ["applied"] * 3
    view = usa.node.partnerships.overview(usa.officer, None, datetime.now(UTC))
    assert view is not None
    admitted = Counter((a.nation, a.project_id) for a in view.admissions
                       if a.admitted_by.startswith("quorum:"))  # fmt: skip
    for key in (("JPN", "hypersonic"), ("KOR", "hypersonic"), ("JPN", "quantum")):
        assert admitted[key] == 1, key

    # USA's witness cosigned GBR's newer checkpoint, from the size it had cosigned
    back = gbr_round["USA"]
    assert (back.outcome, back.old) == ("cosigned", usa_cosigned_gbr), back
    assert back.size > usa_cosigned_gbr
    assert usa.node.witness is not None
    assert usa.node.witness.last_size("relto/gbr/audit") >= back.size
    # ... and its own checkpoints are cosigned by both partners again
    assert {n: p.outcome for n, p in usa_round.items()} == {"AUS": "cosigned", "GBR": "cosigned"}
    store = usa.node.witnessing.store  # type: ignore[union-attr]
    assert {c.nation for c in store.at(usa_round["AUS"].size)} == {"AUS", "GBR"}

    # the silence alarms cleared, each recorded once; USA accuses nobody
    for m in (aus, gbr):
        assert m.state()["USA"] == "reachable", m.nation
        assert [e["nation"] for e in m.entries(RETURNED_KIND)] == ["USA"], m.nation
    assert usa.entries(SILENT_KIND) == [] and usa.entries(RETURNED_KIND) == []

    # another round: nothing more applied, nothing recorded twice, no fork alarm
    applied = usa.applied()
    for m in (gbr, aus, usa):
        m.round()
    assert usa.applied() == applied
    for m in three.values():
        assert len(m.entries(SILENT_KIND)) == len(m.entries(RETURNED_KIND)) == (
            0 if m is usa else 1
        )  # fmt: skip
        assert m.entries(ALARM_KIND) == [] and m.entries("partnership.change.failed") == []

    # the returning node's own log verifies against its checkpoint cosigned by both
    note = usa.node.witnessing.cosigned()  # type: ignore[union-attr]
    assert note is not None
    witnesses = [parse_verifier(p.descriptor.witness_key)
                 for p in usa.node.trust.trusted().values()]  # fmt: skip
    signed = open_checkpoint(note, node_signer(usa.settings).verifier(), extra=witnesses)
    assert set(signed.verified.timestamps) == {"relto/aus/witness", "relto/gbr/witness"}
    report = verify_log(DatabaseSource(usa.node.log), [signed.checkpoint])
    assert report.ok, report.describe()
