"""A partner node that falls silent is shown on the dashboard and in the API to the
node's people, apart from the fork alarms: the silence alarm clears when the
partner is heard from again, a fork alarm stays (it is evidence).

GBR is the demo node (in-process); USA a real node under uvicorn on loopback, which
GBR pushes its checkpoints to. An hour passes on GBR's reachability clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from federation.live_server import Server, free_port
from relto.audit.witnessing import ALARM_KIND, Alarm
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.events import MemorySink
from relto.federation.reachability import RETURNED_KIND, SILENT_KIND
from relto.launcher.federation import nation_share
from relto.node import Node
from relto.server import create_app
from relto.server.witnessing import push_once
from relto.store.witnessing import SqlAlarmStore

from .conftest import node_of, sign_in

STATUS = "/api/v1/federation/partners/status"
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def usa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Node, Server]]:
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    port = free_port()
    settings = Settings(
        nation="USA", data_dir=tmp_path / "usa", bind="127.0.0.1", port=port,
        public_url=f"http://127.0.0.1:{port}", secret_key=SecretStr(secrets.token_urlsafe(32)),
        keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
    )  # type: ignore[call-arg]  # fmt: skip
    app = create_app(settings)
    node: Node = app.state.node
    load_demo(node.db, node.sink, nation_share(read_demo(), "USA"), at=datetime.now(UTC))
    server = Server(app, port)
    server.start()
    yield node, server
    server.stop()
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


def _usa_status(client: TestClient) -> dict[str, object]:
    r = client.get(STATUS)
    assert r.status_code == 200, r.text
    (usa,) = [p for p in r.json()["partners"] if p["nation"] == "USA"]
    return dict(usa)


def _silent_for_an_hour(gbr: Node, clock: Clock, server: Server) -> None:
    """GBR's witness pushes reach USA, then USA stops and an hour of rounds miss it."""
    (first,) = push_once(gbr)
    assert first.outcome == "cosigned", first
    server.stop()
    for _ in range(4):
        clock.now += timedelta(minutes=15)
        (missed,) = push_once(gbr)
        assert missed.outcome == "unreachable"


def test_silent_partner_alarm_clears_when_it_returns(
    demo_app: TestClient, sink: MemorySink, usa: tuple[Node, Server]
) -> None:
    gbr = node_of(demo_app)
    usa_node, server = usa
    _pin_each_other(gbr, usa_node)
    assert gbr.reachability is not None
    clock = Clock()
    gbr.reachability.clock = clock
    sign_in(demo_app, "gbr-eng-harper")  # any person of the node's nation
    assert _usa_status(demo_app)["state"] == "unknown"
    _silent_for_an_hour(gbr, clock, server)

    status = _usa_status(demo_app)
    assert status["state"] == "silent" and status["missed_rounds"] == 4
    assert status["last_heard"] == T0.isoformat() and status["how"] == "cosigned"
    assert str(status["last_miss"]).startswith("unreachable")
    page = demo_app.get("/console").text
    assert 'data-partner-silent="USA"' in page and "has not been heard from since" in page
    assert 'data-reach="silent"' in page
    assert [e.payload["nation"] for e in sink.events if e.kind == SILENT_KIND] == ["USA"]

    server.start()  # back
    clock.now += timedelta(minutes=15)
    (back,) = push_once(gbr)
    assert back.outcome == "cosigned"
    assert _usa_status(demo_app)["state"] == "reachable"
    page = demo_app.get("/console").text
    assert "data-partner-silent" not in page and 'data-reach="reachable"' in page
    push_once(gbr)  # heard again: nothing more recorded
    assert [e.payload["nation"] for e in sink.events if e.kind == SILENT_KIND] == ["USA"]
    assert [e.payload["nation"] for e in sink.events if e.kind == RETURNED_KIND] == ["USA"]


def test_silence_is_not_a_fork_alarm(
    demo_app: TestClient, sink: MemorySink, usa: tuple[Node, Server]
) -> None:
    gbr = node_of(demo_app)
    usa_node, server = usa
    _pin_each_other(gbr, usa_node)
    assert gbr.reachability is not None
    clock = Clock()
    gbr.reachability.clock = clock
    sign_in(demo_app, "gbr-eng-harper")
    _silent_for_an_hour(gbr, clock, server)
    # silence raises no witnessing alarm, and shows apart from them
    assert demo_app.get("/api/v1/audit/witness/alarms").json()["alarms"] == []
    assert not [e for e in sink.events if e.kind == ALARM_KIND]
    page = demo_app.get("/console").text
    assert 'data-partner-silent="USA"' in page and "data-witness-alarm" not in page

    # a fork alarm (evidence) is kept when the silent partner returns; silence is not
    now = datetime.now(UTC)
    SqlAlarmStore(gbr.log.db).raise_alarm(
        Alarm(ALARM_KIND, "USA", "relto/usa/audit", "fork", 12, 12, b"\x01" * 32,
              "another root at size 12", now, now)
    )  # fmt: skip
    server.start()
    clock.now += timedelta(minutes=15)
    push_once(gbr)
    page = demo_app.get("/console").text
    assert 'data-witness-alarm="USA"' in page and "data-partner-silent" not in page
    assert len(demo_app.get("/api/v1/audit/witness/alarms").json()["alarms"]) == 1


def test_partner_status_is_for_the_nodes_own_people(
    demo_app: TestClient, usa: tuple[Node, Server]
) -> None:
    _pin_each_other(node_of(demo_app), usa[0])
    assert demo_app.get(STATUS).status_code == 401
    sign_in(demo_app, "usa-so-bennett")  # a foreign officer on the GBR node
    r = demo_app.get(STATUS)
    assert r.status_code == 404 and r.json()["error"]["code"]
    sign_in(demo_app, "gbr-eng-harper")
    body = demo_app.get(STATUS).json()
    assert body["nation"] == "GBR" and body["silent_after_seconds"] == 180
    assert [p["nation"] for p in body["partners"]] == ["USA"]
