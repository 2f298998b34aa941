"""``relto partnership change``: three member nodes' officers propose, approve and
exchange a change by file, as they exchange descriptors; it is applied on each node
once that node holds every member's signed word."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relto.cli.main import main

from .test_ledger import Member, members

__all__ = ["members"]


def _as(m: Member, monkeypatch: pytest.MonkeyPatch) -> None:
    s = m.node.settings
    monkeypatch.setenv("RELTO_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("RELTO_NATION", s.nation)
    monkeypatch.setenv("RELTO_PUBLIC_URL", str(s.public_url))
    for name in ("RELTO_DEMO", "RELTO_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def test_officers_propose_approve_and_exchange_by_file(
    members: dict[str, Member],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    gbr, aus, usa = members["GBR"], members["AUS"], members["USA"]
    start = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    payload = json.dumps({"nation": "JPN", "project": "hypersonic", "ceiling": "SECRET",
                          "valid_from": start})  # fmt: skip
    why = ["--justification", "JPN joins the hypersonics work package"]
    _as(gbr, monkeypatch)
    assert main(["partnership", "change", "propose", "admission.grant", "--payload", payload,
                 "--actor", "gbr-so-whitfield", *why]) == 0  # fmt: skip
    proposed = _last_json(capsys)
    assert proposed["status"] == "pending" and proposed["approved_by"] == ["GBR"]
    change = proposed["id"]
    exported = tmp_path / "change.json"
    assert main(["partnership", "change", "export", change, "-o", str(exported)]) == 0

    for m, officer in ((aus, "aus-so-campbell"), (usa, "usa-so-bennett")):
        _as(m, monkeypatch)
        assert main(["partnership", "change", "import", str(exported)]) == 0
        capsys.readouterr()
        assert main(["partnership", "change", "approve", change, "--actor", officer, *why]) == 0
        state = _last_json(capsys)
        assert main(["partnership", "change", "export", change, "-o", str(exported)]) == 0
    assert state["status"] == "applied" and state["approved_by"] == ["AUS", "GBR", "USA"]

    _as(gbr, monkeypatch)
    capsys.readouterr()
    assert main(["partnership", "change", "import", str(exported)]) == 0
    assert _last_json(capsys)["status"] == "applied"
    assert main(["partnership", "change", "list", "--status", "applied"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["id"] == change


def test_engineer_cannot_propose_from_the_command_line(
    members: dict[str, Member],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _as(members["GBR"], monkeypatch)
    code = main(["partnership", "change", "propose", "member.add", "--payload",
                 '{"nation": "JPN"}', "--actor", "gbr-eng-harper",
                 "--justification", "an engineer tries to add a member"])  # fmt: skip
    assert code != 0 and capsys.readouterr().out == ""
