"""The dashboard shows partnership changes awaiting signatures -- who signed, how
many it needs, the what-if effect on this node -- and lets this node's security
officer approve or reject with a justification, signed by the node; a witnessing
alarm about a partner's log is shown at the top to the node's people."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.audit.witnessing import ALARM_KIND, Alarm
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.federation.homekeys import load_home_keys
from relto.federation.ledger import ChangeLedger
from relto.launcher.federation import nation_share
from relto.node import Node, build_node
from relto.store.witnessing import SqlAlarmStore

from .conftest import node_of, sign_in
from .console_steps import confirm_change


@pytest.fixture
def usa(tmp_path: Path) -> Iterator[tuple[Node, ChangeLedger]]:
    settings = Settings(
        nation="USA", data_dir=tmp_path / "usa", bind="127.0.0.1", port=47301,
        public_url="http://127.0.0.1:47301", secret_key=SecretStr(secrets.token_urlsafe(32)),
        keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
    )  # type: ignore[call-arg]  # fmt: skip
    node = build_node(settings)
    data = read_demo()
    load_demo(node.db, node.sink, nation_share(data, "USA"), at=datetime.now(UTC))
    ledger = ChangeLedger(
        db=node.db, sink=node.sink, authorizer=node.authorizer, registry=node.partnerships,
        pins=node.trust.trusted, node_key=load_home_keys(settings).node_key, nation="USA",
        partnership=data.partnership.id, founders=data.partnership.members,
    )  # fmt: skip
    yield node, ledger
    node.db.dispose()


def _pin_each_other(gbr: Node, usa: Node) -> None:
    now = datetime.now(UTC)
    for here, there, officer in ((gbr, usa, "gbr-so-whitfield"), (usa, gbr, "usa-so-bennett")):
        who = here.directory.principal(officer, via="node")
        assert who is not None and there.federation is not None
        here.trust.pin(
            there.federation.descriptor(now),
            fingerprint=there.federation.descriptors.fingerprint, actor=who, now=now,
        )  # fmt: skip


def test_officer_sees_a_pending_admission_with_its_effect_and_signs_it(
    demo_app: TestClient, usa: tuple[Node, ChangeLedger]
) -> None:
    gbr = node_of(demo_app)
    usa_node, usa_ledger = usa
    _pin_each_other(gbr, usa_node)
    bennett = usa_node.directory.principal("usa-so-bennett", via="node")
    payload = {"nation": "JPN", "project": "hypersonic", "ceiling": "SECRET",
               "valid_from": (datetime.now(UTC) + timedelta(days=1)).isoformat()}  # fmt: skip
    proposed = usa_ledger.propose(bennett, "admission.grant", payload, "JPN joins hypersonics")
    change = proposed.change
    # what replication carries to the GBR node
    sign_in(demo_app, "gbr-eng-harper")  # makes the node's ledger (first dashboard view)
    demo_app.get("/console")
    ledger = demo_app.app.state.changes["ledger"]  # type: ignore[attr-defined]
    ledger.receive(change.canonical().decode(), [a.token for a in proposed.approvals])

    page = demo_app.get("/console").text  # an engineer: sees it, cannot sign
    row = re.search(rf'<tr data-change="{change.id}">(.*?)</tr>', page, re.S)
    assert row is not None and 'data-signed="USA"' in row.group(1) and "1 of 3" in row.group(1)
    assert "/decision" not in row.group(1)

    csrf = sign_in(demo_app, "gbr-so-whitfield")
    page = demo_app.get("/console").text
    row = re.search(rf'<tr data-change="{change.id}">(.*?)</tr>', page, re.S)
    assert row is not None and "would gain read access" in row.group(1)
    too_short = {"csrf": csrf, "decision": "approve", "justification": "ok"}
    short = demo_app.post(f"/console/changes/{change.id}/decision", data=too_short)
    assert short.status_code == 303
    assert ledger.standing(change.id).quorum.approved_by == {"USA"}  # nothing signed
    r = demo_app.post(
        f"/console/changes/{change.id}/decision",
        data={"csrf": csrf, "decision": "approve", "justification": "effect checked here"},
    )
    assert r.status_code == 303
    assert "2 of 3" in demo_app.get(r.headers["location"]).text
    assert ledger.standing(change.id).quorum.approved_by == {"GBR", "USA"}


def test_witnessing_alarm_is_shown_to_the_nodes_people(demo_app: TestClient) -> None:
    gbr = node_of(demo_app)
    now = datetime.now(UTC)
    SqlAlarmStore(gbr.log.db).raise_alarm(
        Alarm(ALARM_KIND, "USA", "relto/usa/audit", "fork", 12, 12, b"\x01" * 32,
              "another root at size 12", now, now)
    )  # fmt: skip
    sign_in(demo_app, "gbr-eng-harper")
    page = demo_app.get("/console").text
    assert 'data-witness-alarm="USA"' in page and "fork" in page


def test_in_a_federation_the_admit_form_proposes_instead_of_admitting(
    demo_app: TestClient, usa: tuple[Node, ChangeLedger]
) -> None:
    """No nation alone admits: once the node pins a partner, the dashboard's
    admission becomes a proposal awaiting the other members' signatures."""
    gbr = node_of(demo_app)
    _pin_each_other(gbr, usa[0])
    csrf = sign_in(demo_app, "gbr-so-whitfield")
    form = {"project_id": "undersea", "nation": "JPN", "ceiling": "SECRET"}
    r = confirm_change(
        demo_app, "/console/admissions/preview", form, csrf, "JPN joins the undersea work"
    )
    assert r.status_code == 303
    page = demo_app.get(r.headers["location"]).text
    assert "Proposed to the partnership" in page and "AUS, USA have signed too" in page
    ledger = demo_app.app.state.changes["ledger"]  # type: ignore[attr-defined]
    [pending] = ledger.standings("pending")
    assert pending.change.kind == "admission.grant" and pending.quorum.approved_by == {"GBR"}
    admitted = gbr.partnerships.admissions(
        sign_principal(gbr), project_id="undersea", nation="JPN", offset=0, limit=10
    ).items
    assert not admitted  # nothing admitted by one nation


def sign_principal(node: Node):  # type: ignore[no-untyped-def]
    return node.directory.principal("gbr-so-whitfield", via="node")
