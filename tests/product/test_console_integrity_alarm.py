"""A partner's signed report that its own log was altered shows on the dashboard of
this node's people as a log integrity alarm, apart from forks and rollbacks; the
same report posted again is kept once.

GBR is the demo node (in-process); USA a real node whose node key signs the report.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from federation.live_server import Server
from relto.audit.witnessing import ALARM_KIND
from relto.events import MemorySink
from relto.federation.integrity import REPORT_PATH, IntegrityReport, sign_report
from relto.node import Node

from .conftest import node_of, sign_in
from .test_console_partner_silence import _pin_each_other, usa  # noqa: F401 - fixture


def test_partner_log_altered_is_shown_to_the_nodes_people(
    demo_app: TestClient,
    sink: MemorySink,
    usa: tuple[Node, Server],  # noqa: F811
) -> None:
    gbr = node_of(demo_app)
    usa_node, _server = usa
    _pin_each_other(gbr, usa_node)
    assert usa_node.federation is not None
    report = IntegrityReport(
        "USA", "relto/usa/audit", 41, "edited", "the body no longer hashes to its leaf",
        120, datetime.now(UTC),
    )  # fmt: skip
    token = sign_report(report, usa_node.federation.descriptors.node_key)
    for expected in ("kept", "known"):
        r = demo_app.post(REPORT_PATH, json={"report": token})
        assert r.status_code == 200 and r.json()["status"] == expected, r.text
    assert [e.payload["nation"] for e in sink.events if e.kind == ALARM_KIND] == ["USA"]
    sign_in(demo_app, "gbr-eng-harper")
    page = demo_app.get("/console").text
    assert 'data-alarm-reason="altered"' in page and "Log integrity alarm" in page
    assert "no longer matches at index 41 (edited)" in page
