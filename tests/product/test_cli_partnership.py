"""``relto partnership``: the matrix, admissions and the demo file from the command
line; changes need a member nation's security officer and land in the log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relto.cli.main import app, main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_DEMO", "true")  # load-demo runs only in demo mode
    return tmp_path


def test_load_demo_then_admit_and_end(env: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["partnership", "load-demo"])
    assert r.exit_code == 0, r.output
    assert "8 project(s)" in r.output and "17 people" in r.output
    again = runner.invoke(app, ["partnership", "load-demo"])
    assert "0 project(s)" in again.output  # idempotent
    r = runner.invoke(
        app,
        [
            "partnership",
            "admit",
            "undersea",
            "JPN",
            "SECRET",
            "--actor",
            "gbr-so-whitfield",
            "--justification",
            "JPN joins the undersea sensor trials",
        ],
    )
    assert r.exit_code == 0, r.output
    # Log lines from other tests' logging set-up may share the output: find the id.
    found = re.search(r"\(admission ([0-9a-f]+)\)", r.output)
    assert found, r.output
    admission_id = found.group(1)
    shown = runner.invoke(app, ["partnership", "show"])
    row = next(line for line in shown.output.splitlines() if "undersea" in line)
    cells = [c.strip() for c in row.split("│")[1:9]]
    assert cells == ["undersea", "TS", "TS", "TS", "S", "-", "-", "-"]
    end = ["partnership", "end", admission_id, "--actor", "gbr-so-whitfield"]
    r = runner.invoke(app, end)
    assert r.exit_code != 0  # no justification, no change
    r = runner.invoke(app, [*end, "--justification", "The trials are over"])
    assert r.exit_code == 0 and "ended" in r.output
    from relto.audit.config import open_log
    from relto.config import load_settings

    kinds = [e.body for e in open_log(load_settings()).iter_entries()]
    assert any(b"partnership.admission_ended" in b and b"The trials are over" in b for b in kinds)
    assert any(b"partnership.admitted" in b and b"undersea sensor trials" in b for b in kinds)


def test_partner_nation_cannot_admit_itself(env: Path) -> None:
    assert main(["partnership", "load-demo"]) == 0
    code = main(
        [
            "partnership",
            "admit",
            "hypersonic",
            "JPN",
            "SECRET",
            "--actor",
            "jpn-eng-sato",
            "--justification",
            "we would like to take part",
        ]
    )
    assert code == 1


def test_command_line_cannot_make_someone_an_officer(env: Path) -> None:
    """The CLI used to take the actor's nation and role from its own arguments: now
    an engineer, or a name the directory does not know, admits nothing."""
    assert main(["partnership", "load-demo"]) == 0
    for actor in ("gbr-eng-harper", "op"):
        why = ["--justification", "needed for the trials"]
        code = main(["partnership", "admit", "undersea", "JPN", "SECRET", "--actor", actor, *why])
        assert code == 1, actor


def test_cli_admission_without_justification_refused(env: Path) -> None:
    assert main(["partnership", "load-demo"]) == 0
    base = ["partnership", "admit", "undersea", "JPN", "SECRET", "--actor", "gbr-so-whitfield"]
    assert main(base) != 0
    assert main([*base, "--justification", "too short"]) == 1  # 9 characters


def test_check_reports_a_broken_file(env: Path) -> None:
    bad = env / "bad.yaml"
    bad.write_text("partnership: {id: Bad Id, name: x, members: [GBR]}\n")
    assert main(["partnership", "load-demo", "--check", "--file", str(bad)]) == 1
    assert main(["partnership", "load-demo", "--check"]) == 0
