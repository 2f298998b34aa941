"""Scenario files, `relto decide` and `relto whatif`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from relto.cli.main import main
from relto.decisions import (
    CODES,
    AddRelTo,
    Admit,
    ExpireClearance,
    InvalidChange,
    InvalidScenario,
    Recognise,
    RevokeClearance,
    decide_scenario,
    load_scenario,
    parse_change,
    what_if,
)

HERE = Path(__file__).parent / "scenarios"
EXAMPLE = HERE / "example.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, [line for line in out.splitlines() if line.strip()], err


def scenario(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    return f


def codes_by_request(path: Path) -> dict[str, list[str] | None]:
    return {r.id: (list(d.codes) if d else None) for r, d in decide_scenario(load_scenario(path))}


def test_shipped_example_is_the_documented_one() -> None:
    shipped = resources.files("relto.decisions").joinpath("data/example-scenario.yaml").read_text()
    assert shipped == EXAMPLE.read_text()


def test_decide_prints_one_json_line_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "decide", "--scenario", str(EXAMPLE))
    assert code == 0
    expected = (HERE / "example.expected.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in expected]
    for line in map(json.loads, lines):
        assert set(line) == {"request", "allowed", "reasons"}
        assert line["reasons"] == sorted(line["reasons"])
        assert line["allowed"] == (line["reasons"] == [])


def test_every_reason_code_is_exercised_by_the_example() -> None:
    seen: set[str] = set()
    for line in (HERE / "example.expected.jsonl").read_text().splitlines():
        seen.update(json.loads(line)["reasons"])
    assert seen == set(CODES)


def test_expected_example_outcomes() -> None:
    got = codes_by_request(EXAMPLE)
    assert got["r1"] == []
    assert got["r5"] == ["CLEARANCE_NOT_CURRENT"]  # expired before `at`
    assert got["r6"] == []  # JPN admitted from 2026-01-01
    assert got["r7"] == ["NATION_NOT_ADMITTED"]  # the request's own `at` is earlier
    assert got["r8"] == ["NOT_RELEASABLE"]  # USA judges dual nationals by all
    assert got["r15"] == ["CLEARANCE_MISSING"]


def test_at_option_sets_time_for_requests_without_their_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, _ = run(capsys, "decide", "--scenario", str(EXAMPLE), "--at", "2025-06-01")
    assert code == 0
    by_id = {x["request"]: x for x in map(json.loads, lines)}
    assert by_id["r5"]["allowed"] is True  # carol's clearance had not expired yet
    assert by_id["r6"]["reasons"] == ["NATION_NOT_ADMITTED"]


def test_unknown_person_or_object_in_a_request_denies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = scenario(
        tmp_path,
        "people: [{id: a, nationalities: [USA]}]\n"
        "objects: [{id: o, banner: 'SECRET//NOFORN', originator: USA, project: p}]\n"
        "requests: [{id: r, person: ghost, object: o}]\n",
    )
    code, lines, _ = run(capsys, "decide", "--scenario", str(f))
    assert code == 0
    assert json.loads(lines[0]) == {
        "request": "r",
        "allowed": False,
        "reasons": ["UNKNOWN_ATTRIBUTE"],
    }


@pytest.mark.parametrize(
    "text",
    [
        "people: [{id: a}]\n",
        "people: [{id: a, nationalities: [usa]}]\n",
        "bogus: 1\n",
        "people: [{id: a, nationalities: [USA], shoe: 9}]\n",
        "clearances: [{person: nobody, nation: USA, level: SECRET}]\n",
        "objects: [{id: o, originator: USA}]\n",
        "objects: [{id: o, banner: 'SECRET', label: '<x/>', originator: USA}]\n",
        "admissions: [{nation: JPN, project: p, level: HUSH}]\n",
        "nations: {USA: {dual_national: some}}\n",
        "at: yesterday\n",
        "{{{{",
        "- just\n- a list\n",
    ],
)
def test_malformed_scenario_rejected(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = scenario(tmp_path, text)
    with pytest.raises(InvalidScenario):
        load_scenario(f)
    code, lines, err = run(capsys, "decide", "--scenario", str(f))
    assert code == 1 and lines == [] and err.startswith("relto: error: scenario")


def test_missing_scenario_file_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "decide", "--scenario", str(tmp_path / "nope.yaml"))
    assert code == 1 and "cannot read scenario" in err


def test_unreadable_marking_denies_with_unknown_attribute(tmp_path: Path) -> None:
    f = scenario(
        tmp_path,
        "at: 2026-06-01\n"
        "people: [{id: a, nationalities: [USA], projects: [p]}]\n"
        "clearances: [{person: a, nation: USA, level: TOP SECRET}]\n"
        "objects:\n"
        "  - {id: bad, banner: 'SEKRIT//REL TO USA, GBR', originator: USA, project: p}\n"
        "  - {id: contradiction, banner: 'SECRET//NOFORN//REL TO USA, GBR',"
        " originator: USA, project: p}\n"
        "  - {id: sci, banner: 'TOP SECRET//SI/TK//NOFORN', originator: USA, project: p}\n"
        "  - {id: one, banner: 'SECRET//REL TO USA', originator: USA, project: p}\n"
        "requests:\n"
        "  - {id: bad, person: a, object: bad}\n"
        "  - {id: contradiction, person: a, object: contradiction}\n"
        "  - {id: sci, person: a, object: sci}\n"
        "  - {id: one, person: a, object: one}\n",
    )
    got = codes_by_request(f)
    assert got["bad"] == ["UNKNOWN_ATTRIBUTE"]
    assert got["contradiction"] == ["UNKNOWN_ATTRIBUTE"]
    assert got["sci"] == ["CAVEAT_NOT_HELD"]
    assert got["one"] == []


def test_vetting_level_codes_and_national_names_are_accepted(tmp_path: Path) -> None:
    f = scenario(
        tmp_path,
        "at: 2026-06-01\n"
        "people:\n"
        "  - {id: a, nationalities: [GBR], projects: [p]}\n"
        "  - {id: k, nationalities: [JPN], projects: [p]}\n"
        "clearances:\n"
        "  - {person: a, nation: GBR, level: SC}\n"
        "  - {person: k, nation: JPN, level: SECRET}\n"
        "admissions: [{nation: JPN, project: p, level: SECRET}]\n"
        "objects:\n"
        "  - {id: o, banner: 'SECRET//REL TO GBR, USA', originator: GBR, project: p}\n"
        "  - {id: u, banner: 'SECRET//REL TO USA, JPN', originator: USA, project: p}\n"
        "requests: [{id: r, person: a, object: o}, {id: k, person: k, object: u}]\n",
    )
    assert codes_by_request(f) == {"r": [], "k": []}


def test_lifecycle_events_and_expiry(tmp_path: Path) -> None:
    f = scenario(
        tmp_path,
        "people: [{id: a, nationalities: [USA], projects: [p]}]\n"
        "clearances:\n"
        "  - id: c\n    person: a\n    nation: USA\n    level: SECRET\n    expires: 2027-01-01\n"
        "    events:\n"
        "      - {at: 2025-01-01, status: interim}\n"
        "      - {at: 2025-03-01, status: granted}\n"
        "      - {at: 2026-02-01, status: suspended, cause: security incident}\n"
        "      - {at: 2026-04-01, status: granted}\n"
        "objects: [{id: o, banner: 'SECRET//NOFORN', originator: USA, project: p}]\n"
        "requests:\n"
        "  - {id: before, person: a, object: o, at: 2024-06-01}\n"
        "  - {id: interim, person: a, object: o, at: 2025-02-01}\n"
        "  - {id: suspended, person: a, object: o, at: 2026-03-01}\n"
        "  - {id: restored, person: a, object: o, at: 2026-05-01}\n"
        "  - {id: expired, person: a, object: o, at: 2027-06-01}\n",
    )
    assert codes_by_request(f) == {
        "before": ["CLEARANCE_MISSING"],
        "interim": [],
        "suspended": ["CLEARANCE_NOT_CURRENT"],
        "restored": [],
        "expired": ["CLEARANCE_NOT_CURRENT"],
    }


def test_shipped_vetting_agreements_apply_when_scenario_has_none(tmp_path: Path) -> None:
    f = scenario(
        tmp_path,
        "at: 2026-06-01\n"
        "people: [{id: k, nationalities: [JPN], projects: [p]}]\n"
        "clearances: [{person: k, nation: JPN, level: SECRET}]\n"
        "admissions: [{nation: JPN, project: p, level: SECRET}]\n"
        "objects:\n"
        "  - {id: us, banner: 'SECRET//REL TO USA, JPN', originator: USA, project: p}\n"
        "  - {id: nz, banner: 'SECRET//REL TO NZL, JPN', originator: NZL, project: p}\n"
        "requests: [{id: us, person: k, object: us}, {id: nz, person: k, object: nz}]\n",
    )
    got = codes_by_request(f)
    assert got["us"] == []  # JPN-USA GSOMIA in force since 2007
    assert "CLEARANCE_NOT_RECOGNISED" in (got["nz"] or [])  # entry into force unconfirmed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("admit:JPN:undersea:TOP SECRET", Admit("JPN", "undersea", "TOP SECRET")),
        ("revoke:c-alice", RevokeClearance("c-alice")),
        ("expire:c-alice", ExpireClearance("c-alice")),
        ("rel-to:sonar-design:JPN,KOR", AddRelTo("sonar-design", ("JPN", "KOR"))),
        ("recognise:AUS:USA", Recognise("AUS", "USA")),
    ],
)
def test_change_syntax(text: str, expected: object) -> None:
    assert parse_change(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "admit:jpn:undersea:SECRET",
        "revoke:",
        "rel-to:x",
        "recognise:AUS",
        "teleport:x",
        "admit:JPN:p:S:2026-13-01",
        "x" * 600,
    ],
)
def test_malformed_change_rejected(text: str) -> None:
    with pytest.raises(InvalidChange):
        parse_change(text)


def test_whatif_release_to_a_partner_gains_access_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = EXAMPLE.read_bytes()
    code, lines, _ = run(
        capsys, "whatif", "--scenario", str(EXAMPLE), "--change", "rel-to:sonar-design:JPN"
    )
    assert code == 0 and EXAMPLE.read_bytes() == before
    rows = [json.loads(x) for x in lines]
    assert {"change": "gained", "person": "ken", "object": "sonar-design"} in rows
    summary = rows[-1]["summary"]
    assert summary["gained"] >= 1 and summary["gained_by_nation"]["JPN"] >= 1
    assert summary["gained_by_project"]["undersea"] == summary["gained"]


def test_whatif_revocation_loses_access() -> None:
    sc = load_scenario(EXAMPLE)
    assert sc.at is not None
    pop = sc.population(sc.at)
    result = what_if(pop, [RevokeClearance("c-alice")])
    assert result.gained == ()
    assert ("alice", "sonar-design") in result.lost
    assert result.lost_by_nation == {"USA": len(result.lost)}
    assert what_if(pop, []).lost == ()  # the population itself did not change


def test_whatif_admission_gains_access_for_that_nation_only() -> None:
    sc = load_scenario(EXAMPLE)
    assert sc.at is not None
    pop = sc.population(sc.at)
    result = what_if(pop, [Admit("JPN", "undersea", "TOP SECRET")])
    assert set(result.gained_by_nation) <= {"JPN", "USA"}
    assert all(p in ("ken", "dana") for p, _ in result.gained)
    assert what_if(pop, [Recognise("AUS", "USA")]).gained == ()  # carol is expired anyway


def test_whatif_unknown_clearance_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "whatif", "--scenario", str(EXAMPLE), "--change", "revoke:nope")
    assert code == 1 and "no clearance" in err


def test_common_spellings_are_accepted(tmp_path: Path) -> None:
    """Scenario authors write `nationality`, inline clearances, fields instead of banners."""
    f = scenario(
        tmp_path,
        "description: spellings\n"
        "now: 2026-06-01\n"
        "people:\n"
        "  - id: a\n    nationality: USA\n    projects: [p]\n"
        "    clearances: [{issuer: USA, level: SECRET, status: Under Review}]\n"
        "  - id: b\n    nationality: USA\n    projects: [p]\n"
        "    clearances: [{issuer: USA, level: SECRET, status: GRANTED, valid_until: 2027-01-01}]\n"
        "objects:\n"
        "  - {id: o, classification: SECRET, releasable_to: [USA, GBR], originator: USA,"
        " project: p}\n"
        "  - {id: m, marking: 'SECRET//REL TO USA, GBR', originator: USA, project: p}\n"
        "requests:\n"
        "  - {id: a, subject: a, resource: o, expect: {allowed: false}}\n"
        "  - {id: b, subject: b, resource: o}\n"
        "  - {id: m, subject: b, resource: m, time: 2027-02-01}\n",
    )
    assert codes_by_request(f) == {
        "a": ["CLEARANCE_NOT_CURRENT"],  # USA suspends access during review
        "b": [],
        "m": ["CLEARANCE_NOT_CURRENT"],  # expired by then
    }


def test_dual_national_rule_spellings(tmp_path: Path) -> None:
    f = scenario(
        tmp_path,
        "at: 2026-06-01\n"
        "partnership: {members: [USA, GBR]}\n"
        "dual_national_rule: {USA: all}\n"
        "people: [{id: d, nationalities: [USA, JPN], projects: [p]}]\n"
        "clearances: [{person: d, nation: USA, level: SECRET}]\n"
        "objects: [{id: o, banner: 'SECRET//REL TO USA, GBR', originator: USA, project: p}]\n"
        "requests: [{id: r, person: d, object: o}]\n",
    )
    # with "all", JPN must also be released to and admitted
    assert codes_by_request(f) == {"r": ["NATION_NOT_ADMITTED", "NOT_RELEASABLE"]}


def test_whatif_rejects_a_ceiling_off_the_common_scale() -> None:
    sc = load_scenario(EXAMPLE)
    assert sc.at is not None
    with pytest.raises(InvalidChange):
        what_if(sc.population(sc.at), [Admit("JPN", "undersea", "GOKUHI")])
