"""A log row edited by hand moves no checkpoint, so no witness can see it; the node's
own software re-derives its stored log and reports the mismatch, signed with its
node key, to every partner it pins, where it is kept as a witnessing alarm.

Two real nodes (GBR and USA, under uvicorn on 127.0.0.1, each pinning the other);
the GBR log's database is edited with SQL, as an operator would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import rfc8785
from pydantic import SecretStr
from sqlalchemy import text

from federation.live_server import Server, free_port
from relto.audit.entries import decode_entry
from relto.audit.selfcheck import SELF_CHECK_KIND
from relto.audit.witnessing import ALARM_KIND
from relto.config import Settings
from relto.federation import SigningKey
from relto.federation.integrity import REPORT_PATH, IntegrityReport, sign_report
from relto.node import Node
from relto.server import create_app
from relto.server.integrity import self_check_once
from relto.server.witnessing import push_once

from .test_witnessing import Nation, _pin

SECRET = SecretStr("integrity-test-secret-0123456789")


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Nation]]:
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    nations = {}
    for nation in ("GBR", "USA"):
        port = free_port()
        settings = Settings(
            nation=nation, data_dir=tmp_path / nation.lower(), port=port,
            secret_key=SECRET, keystore_passphrase=SECRET,
        )  # type: ignore[call-arg]  # fmt: skip
        app = create_app(settings)
        nations[nation] = Nation(app.state.node, f"http://127.0.0.1:{port}", Server(app, port))
    try:
        for n in nations.values():
            n.server.start()
        _pin(nations["GBR"].node, nations["USA"])
        _pin(nations["USA"].node, nations["GBR"])
        yield nations
    finally:
        for n in nations.values():
            n.server.stop()
            n.node.db.dispose()


def _kinds(node: Node) -> list[str]:
    log = node.log
    return [decode_entry(e.body).kind for e in log.entries(0, log.size())]


def _edit_by_hand(node: Node, index: int) -> None:
    """What an operator with the database does: rewrite one row's body, leaving the
    stored hashes (and so every checkpoint) as they were."""
    assert node.log.size() > index
    with node.log.db.engine.begin() as conn:
        raw = conn.execute(text("SELECT body FROM audit_entry WHERE idx = :i"), {"i": index})
        doc = json.loads(bytes(raw.scalar_one()))
        doc["payload"] = {**doc["payload"], "by": "someone-else"}
        conn.execute(
            text("UPDATE audit_entry SET body = :b WHERE idx = :i"),
            {"b": rfc8785.dumps(doc), "i": index},
        )


def _altered_alarms(node: Node) -> list[object]:
    assert node.witness is not None
    return [a for a in node.witness.alarms.alarms() if a.reason == "altered"]


def test_untouched_log_reports_nothing(pair: dict[str, Nation]) -> None:
    gbr, usa = pair["GBR"], pair["USA"]
    push_once(gbr.node)
    result = self_check_once(gbr.node)
    assert result is not None and result.finding is None and result.checked > 0
    assert _altered_alarms(usa.node) == []
    assert SELF_CHECK_KIND not in _kinds(gbr.node)


def test_row_edited_by_hand_is_found_and_alarms_every_partner(pair: dict[str, Nation]) -> None:
    gbr, usa = pair["GBR"], pair["USA"]
    for i in range(5):
        gbr.node.log.record("test.work", {"by": "gbr-eng-harper", "i": i})
    (pushed,) = push_once(gbr.node)
    assert pushed.outcome == "cosigned"  # USA cosigned the log as it was
    _edit_by_hand(gbr.node, 3)
    assert [p.outcome for p in push_once(gbr.node)] == ["current"]  # no witness can see it
    result = self_check_once(gbr.node)
    assert result is not None and result.finding is not None
    assert (result.finding.index, result.finding.kind) == (3, "edited")
    (alarm,) = _altered_alarms(usa.node)
    assert (alarm.nation, alarm.witnessed_size) == ("GBR", 3)  # type: ignore[attr-defined]
    assert "index 3" in alarm.detail  # type: ignore[attr-defined]
    assert _kinds(usa.node).count(ALARM_KIND) == 1
    assert _kinds(gbr.node).count(SELF_CHECK_KIND) == 1
    # reported again next round: kept once, recorded once
    self_check_once(gbr.node)
    assert len(_altered_alarms(usa.node)) == 1
    assert _kinds(usa.node).count(ALARM_KIND) == 1


def test_report_not_signed_by_the_pinned_node_key_accuses_nobody(
    pair: dict[str, Nation],
) -> None:
    """Anyone can post a report; only the pinned node key of the nation it names
    makes one count -- nobody else can accuse GBR of altering its log."""
    usa = pair["USA"]
    forged = sign_report(
        IntegrityReport("GBR", "relto/gbr/audit", 3, "edited", "forged", 10, datetime.now(UTC)),
        SigningKey.generate(),
    )
    resp = httpx.post(usa.url + REPORT_PATH, json={"report": forged}, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_report"
    junk = httpx.post(usa.url + REPORT_PATH, json={"report": "a.b.c"}, timeout=10)
    assert junk.status_code == 400
    assert _altered_alarms(usa.node) == []
    assert ALARM_KIND not in _kinds(usa.node)


def test_self_check_command_finds_the_edit_and_reports_it(
    pair: dict[str, Nation], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``relto audit self-check`` does now what the server does on its schedule."""
    from relto.cli.main import main

    gbr, usa = pair["GBR"], pair["USA"]
    s = gbr.node.settings
    for name, value in (
        ("RELTO_DATA_DIR", str(s.data_dir)), ("RELTO_NATION", "GBR"), ("RELTO_PORT", str(s.port)),
        ("RELTO_SECRET_KEY", SECRET.get_secret_value()),
        ("RELTO_KEYSTORE_PASSPHRASE", SECRET.get_secret_value()),
    ):  # fmt: skip
        monkeypatch.setenv(name, value)
    for i in range(5):
        gbr.node.log.record("test.work", {"by": "gbr-eng-harper", "i": i})
    push_once(gbr.node)
    assert main(["audit", "self-check"]) == 0
    assert "entries re-derived" in capsys.readouterr().out
    _edit_by_hand(gbr.node, 2)
    assert main(["audit", "self-check"]) == 1
    assert "ALTERED: index 2 (edited)" in capsys.readouterr().err
    (alarm,) = _altered_alarms(usa.node)
    assert alarm.nation == "GBR"  # type: ignore[attr-defined]
