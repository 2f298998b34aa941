"""``relto export``: the export-control office from the command line.

Stops: export facts written on the authority of someone without the role; bad,
hostile (aliases, deep nesting) or unreadable files half-written or crashing with
a traceback; a change without a justification or unrecorded in the log; a denied
check exiting 0; a regulator's export that misses transfers, reads its window
wrongly or mixes log lines into the exported file.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from relto.cli.main import main
from relto.config import Settings, load_settings
from relto.export_control.records import COLUMNS, TransferRecord
from relto.node import Node, build_node
from relto.server import create_app

WHY = "Recorded for the export CLI test of this node."
DOC = "ai-sensor-fusion"  # USA, SECRET//REL TO USA, AUS, CAN, GBR, JPN, ai-autonomy
OFFICER = ["--actor", "usa-so-bennett"]  # USA's export-control officer
CHANGE = [*OFFICER, "--justification", WHY]

PARTIES: list[dict[str, Any]] = [
    {"id": "us-darpa", "kind": "organisation", "location": "USA", "ddtc_registered": True},
    {"id": "usa-eng-ramirez", "location": "USA", "nationalities": ["USA"],
     "organisation": "us-darpa", "ddtc_registered": True},
    {"id": "jpn-eng-sato", "location": "JPN", "nationalities": ["JPN"],
     "organisation": "jp-atla"},
]  # fmt: skip
LICENCE = """\
number: DSP5-JPN-1
regime: ITAR
kind: DSP-5
items: [USML XI]
organisations: [us-darpa, jp-atla]
nationalities: [JPN]
end_use: sensor fusion evaluation
valid_from: 2026-01-01
valid_until: 2030-01-01
value_ceiling: "100"
"""
LIST = """\
regime: ITAR
name: Example excluded list
version: "1"
source: example data, not regulatory content
entries:
  - {pattern: USML IV, source: example data}
"""
RULES = 'value_threshold: "1000"\n'
BLOCK = """\
controlled: true
kind: technical_data
regime: ITAR
usml_category: XI
usml_paragraph: (a)(1)
sender: us-darpa
value: "10"
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the demo loaded once (and its transparency log)."""
    folder = tmp_path_factory.mktemp("export-cli-template")
    app = create_app(Settings(demo=True, data_dir=folder))
    app.state.node.db.dispose()
    return folder


@pytest.fixture
def data(tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the demo node's data folder, the one the commands work on."""
    folder = tmp_path / "data"
    shutil.copytree(template, folder)
    monkeypatch.setenv("RELTO_DATA_DIR", str(folder))
    monkeypatch.setenv("RELTO_DEMO", "true")
    monkeypatch.delenv("RELTO_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    yield folder


def relto(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def error_line(err: str) -> str:
    """The one line that says what went wrong (after any log lines of the node,
    which go to stderr too), or "" when the command did not fail that way."""
    lines = err.splitlines()
    last = lines[-1] if lines else ""
    errors = [line for line in lines if line.startswith("relto: ")]
    return last if errors == [last] and last.startswith("relto: error: ") else ""


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def the_node() -> Node:
    """The node on the data folder, as the server would build it."""
    return build_node(load_settings())


def log_entries(prefix: str) -> list[dict[str, Any]]:
    """Every entry of the node's transparency log whose kind starts with ``prefix``."""
    node = the_node()
    try:
        return [
            json.loads(body) for _, _, body, kind in node.log.iter_rows() if kind.startswith(prefix)
        ]
    finally:
        node.db.dispose()


def download(person_id: str) -> bool:
    """``person_id`` downloads the document through the node (its key through the
    KAS, which records the transfer); whether it was released."""
    node = the_node()
    try:
        who = node.directory.principal(person_id, via="session")
        assert who is not None
        _, decision, copy = node.documents.download(who, DOC, datetime.now(UTC))
        return bool(decision.allowed and copy is not None)
    finally:
        node.db.dispose()


def record_facts(capsys: pytest.CaptureFixture[str]) -> None:
    """USA's officer records, with the commands, the facts under which Ramirez
    (ITAR 126.7) and Sato (the DSP-5) may receive the document."""
    for party in PARTIES:
        f = write(f"{party['id']}.yaml", yaml.safe_dump(party))
        assert relto(capsys, "export", "users", "add", "--file", f, *CHANGE)[0] == 0
    code, out, _ = relto(capsys, "export", "lists", "load", "-f", write("l.yaml", LIST), *CHANGE)
    assert code == 0 and out == "loaded ITAR list 'Example excluded list' version 1\n"
    code, out, _ = relto(
        capsys, "export", "licences", "add", "-f", write("lic.yaml", LICENCE), *CHANGE
    )
    assert code == 0 and out == "recorded licence DSP5-JPN-1\n"
    code, out, _ = relto(
        capsys, "export", "rules", "set", "ITAR", "-f", write("r.yaml", RULES), *CHANGE
    )
    assert code == 0 and out == "recorded the rules of ITAR\n"
    code, out, _ = relto(
        capsys, "export", "classify", DOC, "--file", write("b.yaml", BLOCK), *CHANGE
    )
    assert code == 0 and out == f"classified {DOC} (classification version 1)\n"


def facts_json(capsys: pytest.CaptureFixture[str]) -> tuple[Any, Any, Any]:
    out = []
    for group in ("users", "licences", "lists"):
        code, text, err = relto(capsys, "export", group, "list", "--json", *OFFICER)
        assert code == 0, err
        out.append(json.loads(text))
    return out[0], out[1], out[2]


def test_officer_records_facts_from_files_every_change_logged_with_its_justification(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    parties, licences, lists = facts_json(capsys)
    assert [p["id"] for p in parties] == sorted(p["id"] for p in PARTIES)
    (lic,) = licences
    assert (lic["number"], lic["value_consumed"], lic["quantity_consumed"]) == (
        "DSP5-JPN-1", "0", 0,
    )  # fmt: skip
    (lst,) = lists
    assert (lst["version"], lst["active"], lst["loaded_by"]) == ("1", True, "usa-so-bennett")
    entries = log_entries("export.")
    assert [e["kind"] for e in entries] == [
        *["export.party.recorded"] * 3,
        "export.list.loaded",
        "export.licence.recorded",
        "export.rules.recorded",
        "export.classified",
    ]
    assert {(e["payload"]["by"], e["payload"]["justification"]) for e in entries} == {
        ("usa-so-bennett", WHY)
    }
    # the tables name what is recorded
    code, out, _ = relto(capsys, "export", "users", "list", *OFFICER)
    assert code == 0 and "us-darpa" in out and "usa-eng-ramirez" in out
    code, out, _ = relto(capsys, "export", "licences", "list", *OFFICER)
    assert code == 0 and "DSP5-JPN-1" in out and "DSP-5" in out
    code, out, _ = relto(capsys, "export", "lists", "list", *OFFICER)
    assert code == 0 and "Example excluded list" in out


def test_classify_with_set_and_check_gives_the_legal_basis(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    sets = ["controlled=true", "kind=technical_data", "regime=ITAR", "usml_category=XI",
            "sender=us-darpa", "sme=false"]  # fmt: skip
    args = [a for s in sets for a in ("--set", s)]
    code, out, _ = relto(capsys, "export", "classify", DOC, *args, *CHANGE)
    assert code == 0 and out == f"classified {DOC} (classification version 2)\n"
    code, out, _ = relto(capsys, "export", "check", "usa-eng-ramirez", DOC, *OFFICER)
    assert (code, out) == (0, "allowed: ITAR 126.7\n")
    code, out, _ = relto(
        capsys, "export", "check", "jpn-eng-sato", DOC, "--action", "download", *OFFICER
    )
    assert (code, out) == (0, "allowed: licence DSP-5 DSP5-JPN-1\n")


def test_a_denied_check_names_every_missing_condition_and_exits_3(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    code, out, _ = relto(capsys, "export", "check", "gbr-eng-harper", DOC, *OFFICER)
    assert code == 3
    lines = out.splitlines()
    assert lines[0] == "denied"
    codes = [line.strip().split(":")[0] for line in lines[1:]]
    assert "party_not_recorded" in codes and len(codes) > 1
    # a share goes on from one person to another, judged like any transfer
    code, out, _ = relto(
        capsys, "export", "check", "usa-eng-ramirez", DOC, "--action", "share",
        "--to", "gbr-eng-harper", *OFFICER,
    )  # fmt: skip
    assert code == 3 and out.startswith("denied\n")
    # the licence is no longer valid in 2031
    code, out, _ = relto(
        capsys, "export", "check", "jpn-eng-sato", DOC, "--at", "2031-01-01", *OFFICER
    )
    assert code == 3


def test_records_export_for_a_regulator_in_csv_and_json(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    assert download("usa-eng-ramirez") and download("jpn-eng-sato")
    assert not download("gbr-eng-harper")
    code, _, err = relto(
        capsys, "export", "records", "--format", "csv", "--output", "records.csv", *OFFICER
    )
    assert code == 0 and err.endswith("wrote 2 transfer records to records.csv\n")
    with open("records.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        assert tuple(reader.fieldnames or ()) == COLUMNS
    assert [r["recipient"] for r in rows] == ["usa-eng-ramirez", "jpn-eng-sato"]
    assert [r["legal_basis"] for r in rows] == ["ITAR 126.7", "licence DSP-5 DSP5-JPN-1"]
    assert rows[1]["licence_number"] == "DSP5-JPN-1" and rows[1]["value"] == "10"
    assert rows[0]["designator"] == "USML XI(a)(1)" and rows[1]["recipient_nationalities"] == "JPN"
    # JSON to stdout: only the export, no log line
    code, out, _ = relto(capsys, "export", "records", "--format", "json", *OFFICER)
    assert code == 0
    records = [TransferRecord.from_dict(d, d["record_id"]) for d in json.loads(out)["records"]]
    assert [r.recipient for r in records] == ["usa-eng-ramirez", "jpn-eng-sato"]
    assert [str(r.record_id) for r in records] == [r["record_id"] for r in rows]
    code, _, _ = relto(capsys, "export", "records", "--format", "json", "-o", "r.json", *OFFICER)
    assert json.loads(Path("r.json").read_text(encoding="utf-8")) == json.loads(out)
    # CSV to stdout parses the same as the file
    code, out, _ = relto(capsys, "export", "records", *OFFICER)
    assert list(csv.DictReader(io.StringIO(out))) == rows
    # the licence counts the transfer made under it
    _, licences, _ = facts_json(capsys)
    assert (licences[0]["value_consumed"], licences[0]["quantity_consumed"]) == ("10", 1)
    # another nation's auditor sees none of USA's records
    code, out, _ = relto(
        capsys, "export", "records", "--format", "json", "--actor", "gbr-aud-patel"
    )
    assert code == 0 and json.loads(out) == {"records": []}


def test_records_window_includes_from_and_excludes_to(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    download("usa-eng-ramirez")
    download("jpn-eng-sato")
    code, out, _ = relto(capsys, "export", "records", "--format", "json", *OFFICER)
    first, second = (TransferRecord.from_dict(d) for d in json.loads(out)["records"])
    tick = timedelta(microseconds=1)
    windows: dict[tuple[str, ...], list[str]] = {
        ("--from", first.at.isoformat(), "--to", second.at.isoformat()): ["usa-eng-ramirez"],
        ("--from", second.at.isoformat()): ["jpn-eng-sato"],
        ("--from", (second.at + tick).isoformat()): [],
        ("--to", first.at.isoformat()): [],
        ("--from", "2026-01-01", "--to", "2100-01-01"): ["usa-eng-ramirez", "jpn-eng-sato"],
        ("--to", "2026-01-01"): [],
    }
    for window, want in windows.items():
        code, out, err = relto(capsys, "export", "records", "--format", "json", *window, *OFFICER)
        assert code == 0, err
        assert [r["recipient"] for r in json.loads(out)["records"]] == want, window


def _unchanged(capsys: pytest.CaptureFixture[str]) -> tuple[Any, Any, Any, int]:
    return (*facts_json(capsys), len(log_entries("export.")))


BAD_FACTS: list[tuple[list[str], dict[str, str], str]] = [
        (["users", "add", "-f", "p.yaml"], {"p.yaml": "id: [unclosed\n"}, "p.yaml at line"),
        (["users", "add", "-f", "p.yaml"], {"p.yaml": "- a list\n"}, "expected a mapping"),
        (["users", "add", "-f", "p.yaml"],
         {"p.yaml": "id: x-1\nlocation: USA\nname: &a x\norganisation: *a\n"}, "aliases"),
        (["users", "add", "-f", "p.yaml"],
         {"p.yaml": "id: x-1\nlocation: USA\nname: [[[[[[[x]]]]]]]\n"}, "nested deeper"),
        (["users", "add", "-f", "p.yaml"], {"p.yaml": "id: x-1\nlocation: Atlantis\n"},
         "ISO 3166"),
        (["users", "add", "-f", "missing.yaml"], {}, "cannot read missing.yaml"),
        (["licences", "add", "-f", "l.yaml"],
         {"l.yaml": LICENCE.replace("2030-01-01", "2025-01-01")}, "valid_until"),
        (["licences", "add", "-f", "l.yaml"],
         {"l.yaml": LICENCE + "value_consumed: '0'\n"}, "value_consumed"),
        (["lists", "load", "-f", "l.yaml"], {"l.yaml": LIST}, "already loaded"),
        (["rules", "set", "NOPE", "-f", "r.yaml"], {"r.yaml": RULES}, "unknown regime"),
        (["rules", "set", "ITAR", "-f", "r.yaml"], {"r.yaml": "colour: red\n"}, "unknown keys"),
        (["classify", DOC], {}, "--file or --set"),
        (["classify", DOC, "--set", "controlled"], {}, "key=value"),
        (["classify", DOC, "--set", "controlled=maybe", "--set", "kind=technical_data"], {},
         "expected true or false"),
        (["classify", "no-such-document", "--set", "controlled=false",
          "--set", "kind=technical_data"], {}, "no such document"),
]  # fmt: skip


def test_bad_facts_are_one_line_errors_and_nothing_is_written(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    before = _unchanged(capsys)
    for args, files, message in BAD_FACTS:
        for name, text in files.items():
            write(name, text)
        code, out, err = relto(capsys, "export", *args, *CHANGE)
        assert code == 1 and out == "", (args, out)
        assert error_line(err) and message in error_line(err), (args, err)
    assert _unchanged(capsys) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["records", "--from", "yesterday"], "--from must be an ISO date"),
        (["records", "--to", "2026-06-01T09:00:00"], "--to needs a timezone"),
        (["records", "--from", "2026-06-02", "--to", "2026-06-01"], "--to must be after --from"),
        (["records", "-o", "no/such/folder/r.csv"], "cannot write"),
        (["check", "jpn-eng-sato", DOC, "--action", "steal"], "--action must be"),
        (["check", "nobody-at-all", DOC], "no such person"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    data: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = relto(capsys, "export", *args, *OFFICER)
    assert code == 1 and out == ""
    assert error_line(err) and message in error_line(err), err


def test_an_actor_without_the_role_changes_nothing(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_facts(capsys)
    before = _unchanged(capsys)
    attempts = [
        ["classify", DOC, "--set", "controlled=false", "--set", "kind=technical_data"],
        ["users", "add", "-f", write("p.yaml", yaml.safe_dump({**PARTIES[1], "debarred": True}))],
        ["licences", "add", "-f", write("l.yaml", LICENCE.replace('"100"', '"100000"'))],
        ["lists", "load", "-f", write("l2.yaml", LIST.replace('"1"', '"2"'))],
        ["rules", "set", "ITAR", "-f", write("r.yaml", 'value_threshold: "999999"\n')],
    ]
    for actor in ("gbr-so-whitfield", "usa-eng-ramirez", "nobody-at-all"):
        for args in attempts:
            code, out, err = relto(
                capsys, "export", *args, "--actor", actor, "--justification", WHY
            )
            assert code == 1 and out == "" and error_line(err), (actor, args, err)
        assert relto(capsys, "export", "check", "jpn-eng-sato", DOC, "--actor", actor)[0] == 1
    assert _unchanged(capsys) == before


def test_a_change_needs_a_justification(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write("p.yaml", yaml.safe_dump(PARTIES[0]))
    code, _, err = relto(capsys, "export", "users", "add", "-f", f, *OFFICER)
    assert code == 2 and "--justification" in err
    code, _, err = relto(
        capsys, "export", "users", "add", "-f", f, *OFFICER, "--justification", "short"
    )
    assert code == 1 and error_line(err)
    assert log_entries("export.") == []


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = relto(capsys, "export", "--help")
    assert code == 0
    for command in ("classify", "users", "licences", "lists", "rules", "check", "records"):
        assert command in out
    for group, commands in (
        ("users", ("add", "list")),
        ("licences", ("add", "list")),
        ("lists", ("load", "list")),
        ("rules", ("set",)),
    ):
        code, out, _ = relto(capsys, "export", group, "--help")
        assert code == 0 and all(c in out for c in commands)
