"""``relto federation``: descriptor, trust, update, list, untrust from the command line."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relto.audit.config import open_log
from relto.cli.main import main
from relto.config import load_settings
from relto.events import NullSink
from relto.store import create_database
from relto.vetting import Person, Role
from relto.vetting.service import VettingService

from .conftest import FakeNode

OFFICER = ["--actor", "gbr-so-fed"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_KEYSTORE_PASSPHRASE", "cli test passphrase 0123")
    monkeypatch.setenv("RELTO_NATION", "GBR")
    for name in ("RELTO_DEMO", "RELTO_DATABASE_URL", "RELTO_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    db = create_database(load_settings().effective_database_url)
    vetting = VettingService(db, NullSink())
    people = (
        ("gbr-so-fed", "GBR", Role.SECURITY_OFFICER),
        ("gbr-eng-fed", "GBR", Role.ENGINEER),
        ("usa-so-fed", "USA", Role.SECURITY_OFFICER),
    )
    for pid, nation, role in people:
        vetting.register_person(
            Person(pid, pid, frozenset({nation}), "MOD", nation, frozenset({role})),
            at=datetime.now(UTC),
            actor="test-setup",
        )
    db.dispose()
    return tmp_path


def test_descriptor_made_from_node_keys_with_private_key_files_0600(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = env / "gbr.jwt"
    assert main(["federation", "descriptor", "--out", str(out)]) == 1
    assert "RELTO_PUBLIC_URL" in capsys.readouterr().err
    args = ["federation", "descriptor", "--base-url", "https://relto.gbr.example", "-o", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    fingerprint = printed.split("fingerprint ")[1].strip()
    assert fingerprint.startswith("SHA256:") and "nation GBR" in printed
    for name in ("node.jwk", "attestation.jwk"):
        assert os.stat(env / "federation" / name).st_mode & 0o777 == 0o600
    assert main(args) == 0  # same keys the second time
    assert fingerprint in capsys.readouterr().out
    # this node trusting itself is only a way to check the descriptor verifies
    assert main(["federation", "trust", str(out), "--fingerprint", fingerprint, *OFFICER]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == fingerprint


def test_trust_update_list_untrust_round_trip(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usa = FakeNode("USA")
    now = datetime.now(UTC)
    first, second = env / "usa-1.jwt", env / "usa-2.jwt"
    first.write_text(usa.descriptor(at=now - timedelta(minutes=1)))
    second.write_text(usa.descriptor(at=now))
    fp = usa.node_key.fingerprint
    assert main(["federation", "trust", str(first), "--fingerprint", fp, *OFFICER]) == 0
    assert main(["federation", "update", str(second), *OFFICER]) == 0
    assert main(["federation", "update", str(first), *OFFICER]) == 1  # rollback
    assert "not after the pinned" in capsys.readouterr().err
    assert main(["federation", "list"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["nation"] == "USA" and row["fingerprint"] == fp and row["pinned_by"] == "gbr-so-fed"
    assert main(["federation", "untrust", "usa", *OFFICER]) == 0
    assert json.loads(capsys.readouterr().out)["nation"] == "USA"
    assert main(["federation", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    kinds = [json.loads(e.body)["kind"] for e in open_log(load_settings()).iter_entries()]
    for kind in ("pinned", "updated", "unpinned"):
        assert f"federation.node.{kind}" in kinds


def test_wrong_fingerprint_trusts_nothing(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usa, other = FakeNode("USA"), FakeNode("USA")
    path = env / "usa.jwt"
    path.write_text(usa.descriptor())
    wrong = other.node_key.fingerprint
    assert main(["federation", "trust", str(path), "--fingerprint", wrong, *OFFICER]) == 1
    assert "out of band" in capsys.readouterr().err
    assert main(["federation", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("actor", ["gbr-eng-fed", "usa-so-fed"])
def test_actor_not_security_officer_of_this_nation_refused(
    env: Path, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    usa = FakeNode("USA")
    path = env / "usa.jwt"
    path.write_text(usa.descriptor(at=datetime.now(UTC)))
    fp = usa.node_key.fingerprint
    assert main(["federation", "trust", str(path), "--fingerprint", fp, "--actor", actor]) == 1
    assert main(["federation", "trust", str(path), "--fingerprint", fp, "--actor", "nobody"]) == 1
    assert "no person 'nobody'" in capsys.readouterr().err
    assert main(["federation", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    entries = [json.loads(e.body) for e in open_log(load_settings()).iter_entries()]
    refusals = [e["payload"] for e in entries if e["kind"] == "authz.decision"]
    assert [(r["by"], r["permission"], r["allowed"]) for r in refusals] == [
        (actor, "federation:trust:write", False)
    ]


def test_refresh_reports_each_partner_and_keeps_an_unreachable_ones_pin(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usa = FakeNode("USA")  # at https://relto.usa.example: nobody answers there
    first = env / "usa.jwt"
    first.write_text(usa.descriptor(at=datetime.now(UTC)))
    fp = usa.node_key.fingerprint
    assert main(["federation", "trust", str(first), "--fingerprint", fp, *OFFICER]) == 0
    capsys.readouterr()
    assert main(["federation", "refresh"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["nation"] == "USA" and row["outcome"] == "unreachable"
    assert main(["federation", "list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["fingerprint"] == fp
