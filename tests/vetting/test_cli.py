"""The CLI: a vetting officer's full round on a database given with --db; bad input
gives one line and exit 1, with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relto.cli.main import main


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RELTO_DATABASE_URL", raising=False)
    monkeypatch.delenv("RELTO_AUDIT_DATABASE_URL", raising=False)
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, object]:
    code = main(list(args))
    out = capsys.readouterr().out
    return code, (json.loads(out) if code == 0 and out.strip() else out)


def test_officer_round_trip(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, p = run(
        capsys,
        "person",
        "add",
        "--id",
        "p-1",
        "--name",
        "Aiko Smith",
        "--nationality",
        "AUS",
        "--nationality",
        "JPN",
        "--organisation",
        "ANU",
        "--home-nation",
        "AUS",
        "--role",
        "engineer",
        "--project",
        "quantum-x:lead",
        "--actor",
        "vo-1",
        "--at",
        "2026-01-05T09:00:00Z",
        "--db",
        db,
    )
    assert code == 0 and p["nationalities"] == ["AUS", "JPN"]  # type: ignore[index]
    code, c = run(
        capsys,
        "clearance",
        "sponsor",
        "--person",
        "p-1",
        "--nation",
        "AUS",
        "--level",
        "nv1",
        "--sponsor",
        "Defence",
        "--reason",
        "needs SECRET",
        "--actor",
        "vo-1",
        "--id",
        "c-1",
        "--at",
        "2026-01-05T10:00:00Z",
        "--db",
        db,
    )
    assert code == 0 and c["status"] == "sponsored"  # type: ignore[index]
    for i, to in enumerate(("investigating", "adjudicating", "granted"), 6):
        code, c = run(
            capsys,
            "clearance",
            "transition",
            "c-1",
            to,
            "--reason",
            "step",
            "--actor",
            "vo-1",
            "--at",
            f"2026-01-{i:02d}T10:00:00Z",
            "--db",
            db,
        )
        assert code == 0, c
    assert c["current"] is True  # type: ignore[index]
    assert c["valid_until"] == "2036-01-08T00:00:00+00:00"  # type: ignore[index]
    code, c = run(capsys, "clearance", "show", "c-1", "--at", "2036-01-08T00:00:00Z", "--db", db)
    assert c["status"] == "expired"  # type: ignore[index]
    code, c = run(
        capsys,
        "clearance",
        "incident",
        "c-1",
        "breach",
        "--reason",
        "safe left open",
        "--actor",
        "so-1",
        "--at",
        "2026-02-01T00:00:00Z",
        "--db",
        db,
    )
    assert c["status"] == "under_review"  # type: ignore[index]
    code, h = run(capsys, "clearance", "history", "c-1", "--db", db)
    assert [e.get("to_status") for e in h][-1] == "under_review"  # type: ignore[union-attr]
    code, page = run(capsys, "clearance", "list", "--person", "p-1", "--db", db)
    assert [x["id"] for x in page["items"]] == ["c-1"]  # type: ignore[index]


def test_illegal_transition_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    run(
        capsys,
        "person",
        "add",
        "--id",
        "p-1",
        "--name",
        "A",
        "--nationality",
        "GBR",
        "--organisation",
        "O",
        "--home-nation",
        "GBR",
        "--actor",
        "vo",
        "--db",
        db,
    )
    run(
        capsys,
        "clearance",
        "sponsor",
        "--person",
        "p-1",
        "--nation",
        "GBR",
        "--level",
        "SC",
        "--sponsor",
        "MOD",
        "--reason",
        "r",
        "--actor",
        "vo",
        "--id",
        "c-9",
        "--db",
        db,
    )
    assert (
        main(
            [
                "clearance",
                "transition",
                "c-9",
                "granted",
                "--reason",
                "skip",
                "--actor",
                "vo",
                "--db",
                db,
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "cannot go from sponsored to granted" in err and "Traceback" not in err
    _code, h = run(capsys, "clearance", "history", "c-9", "--db", db)
    assert len(h) == 1  # type: ignore[arg-type]
    assert main(["clearance", "show", "c-9", "--at", "2026-01-01T00:00:00", "--db", db]) == 1
    assert "timezone" in capsys.readouterr().err


def test_recognition_command(capsys: pytest.CaptureFixture[str]) -> None:
    _code, r = run(capsys, "clearance", "recognises", "JPN", "GBR", "--at", "2026-01-01T00:00:00Z")
    assert r["recognised"] is True and r["agreement"] == "GBR-JPN-ISA-2013"  # type: ignore[index]
    _code, r = run(capsys, "clearance", "recognises", "KOR", "GBR", "--at", "2026-01-01T00:00:00Z")
    assert r["recognised"] is False  # type: ignore[index]


def test_cli_changes_are_in_the_transparency_log(
    capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path
) -> None:
    from relto.audit.service import TransparencyLog
    from relto.store import create_database

    run(
        capsys,
        "person",
        "add",
        "--id",
        "p-1",
        "--name",
        "A",
        "--nationality",
        "GBR",
        "--organisation",
        "O",
        "--home-nation",
        "GBR",
        "--actor",
        "vo",
        "--db",
        db,
    )
    log_db = create_database(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        log = TransparencyLog(log_db)
        assert log.size() == 1
        assert b"vetting.person.registered" in log.entries(0, 1)[0].body
    finally:
        log_db.dispose()
