"""``relto kas``: key management from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from relto.audit.config import open_log
from relto.cli.main import main
from relto.config import load_settings
from relto.events import NullSink
from relto.store import create_database
from relto.vetting import Person, Role
from relto.vetting.service import VettingService

OFFICER = ["--actor", "gbr-so-keys"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_KEYSTORE_PASSPHRASE", "cli test passphrase 0123")
    monkeypatch.delenv("RELTO_DEMO", raising=False)
    monkeypatch.delenv("RELTO_DATABASE_URL", raising=False)
    settings = load_settings()
    db = create_database(settings.effective_database_url)
    vetting = VettingService(db, NullSink())
    for pid, role in (("gbr-so-keys", Role.SECURITY_OFFICER), ("gbr-eng-keys", Role.ENGINEER)):
        vetting.register_person(
            Person(pid, pid, frozenset({"GBR"}), "MOD", "GBR", frozenset({role})),
            at=datetime.now(UTC),
            actor="test-setup",
        )
    db.dispose()
    return tmp_path


def test_rotate_list_retire(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kas", "keys", "rotate", "-a", "ec:secp256r1", *OFFICER]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["state"] == "active" and first["algorithm"] == "ec:secp256r1"
    assert main(["kas", "keys", "rotate", "--algorithm", "ec", *OFFICER]) == 0
    second = json.loads(capsys.readouterr().out)
    assert main(["kas", "keys", "list"]) == 0
    states = {k["kid"]: k["state"] for k in json.loads(capsys.readouterr().out)}
    assert states == {first["kid"]: "rotated", second["kid"]: "active"}
    assert main(["kas", "keys", "retire", first["kid"], *OFFICER]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "retired"
    assert main(["kas", "public-key", "-a", "ec:secp256r1", "--kid"]) == 0
    assert capsys.readouterr().out.strip() == second["kid"]
    assert main(["kas", "public-key", "-a", "ec:secp256r1"]) == 0
    serialization.load_pem_public_key(capsys.readouterr().out.encode())
    assert (env / "kas-keys" / "keys.json").exists()


def test_retiring_active_key_or_unknown_key_fails(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kas", "keys", "rotate", *OFFICER]) == 0
    kid = json.loads(capsys.readouterr().out)["kid"]
    assert main(["kas", "keys", "retire", kid, *OFFICER]) == 1
    assert "rotate first" in capsys.readouterr().err
    assert main(["kas", "keys", "retire", "nope", *OFFICER]) == 1
    assert main(["kas", "public-key", "-a", "ec"]) == 1


def test_missing_passphrase_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RELTO_KEYSTORE_PASSPHRASE", raising=False)
    monkeypatch.delenv("RELTO_DEMO", raising=False)
    assert main(["kas", "keys", "list"]) == 1
    assert "RELTO_KEYSTORE_PASSPHRASE" in capsys.readouterr().err


def test_import_key_from_another_kas(
    env: Path, capsys: pytest.CaptureFixture[str], conformance_dir: Path
) -> None:
    keys = json.loads((conformance_dir / "opentdf" / "extra-keys.json").read_text())
    pem = env / "golden.pem"
    pem.write_text(next(k["privateKey"] for k in keys if k["kid"] == "golden-r1"))
    assert main(["kas", "keys", "import", str(pem), "--kid", "golden-r1", *OFFICER]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["kid"] == "golden-r1" and row["state"] == "rotated"
    assert main(["kas", "keys", "import", str(pem), "--kid", "golden-r1", *OFFICER]) == 1
    assert main(["kas", "keys", "import", str(env / "missing.pem"), "--kid", "k2", *OFFICER]) == 1


def test_only_a_security_officer_of_the_node_changes_keys(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Key management is decided from the directory and recorded either way."""
    assert main(["kas", "keys", "rotate", "--actor", "gbr-eng-keys"]) == 1
    assert main(["kas", "keys", "rotate", "--actor", "nobody"]) == 1
    assert "no person 'nobody'" in capsys.readouterr().err
    assert main(["kas", "keys", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing was created
    assert main(["kas", "keys", "rotate", *OFFICER]) == 0
    kid = json.loads(capsys.readouterr().out)["kid"]
    entries = [json.loads(e.body) for e in open_log(load_settings()).iter_entries()]
    kinds = [(e["kind"], e["payload"].get("by")) for e in entries]
    assert ("authz.decision", "gbr-eng-keys") in kinds  # the refusal
    assert ("kas.key.rotated", "gbr-so-keys") in kinds
    assert any(e["payload"].get("kid") == kid for e in entries)
