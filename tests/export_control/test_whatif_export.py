"""What-if on export facts: ``licence-expire:``, ``authorize:`` and ``exclude:``
(ADR 0152), through :func:`what_if` and ``relto whatif``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relto.cli.main import main
from relto.decisions import (
    Authorize,
    Exclude,
    ExpireLicence,
    InvalidChange,
    Population,
    Scenario,
    load_scenario,
    parse_change,
    what_if,
)
from relto.decisions.export_hook import ExportControlCheck
from relto.decisions.whatif import AUTHORIZE_FOR, WHAT_IF, apply_change
from relto.export_control import AuthorizedUserStatus, Regime

HERE = Path(__file__).parent / "scenarios"
SCENARIO = HERE / "whatif_export.yaml"
NO_EXPORT = Path(__file__).parent.parent / "decisions" / "scenarios" / "example.yaml"
AT = datetime(2026, 6, 1, tzinfo=UTC)


def _scenario() -> Scenario:
    return load_scenario(SCENARIO)


def _population() -> Population:
    return _scenario().population(AT)


def _check(pop: Population) -> ExportControlCheck:
    assert isinstance(pop.export_check, ExportControlCheck)
    return pop.export_check


def _changed(change: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    r = what_if(_population(), [parse_change(change)])
    return r.gained, r.lost


# -- licence-expire -------------------------------------------------------------------


def test_expired_licence_loses_exactly_what_it_alone_allowed() -> None:
    assert _changed("licence-expire:TAA-0001") == ((), (("kenji", "sonar"),))


def test_expired_licence_leaves_the_loaded_facts_unchanged() -> None:
    pop = _population()
    before = _check(pop)
    after = _check(apply_change(pop, ExpireLicence("TAA-0001")))
    ended = {lic.number: lic for lic in after.facts.licences}["TAA-0001"]
    assert ended.valid_until == AT
    kept = {lic.number: lic for lic in before.facts.licences}["TAA-0001"]
    assert kept.valid_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert _check(pop) is before and before == _check(_population())


def test_licence_expiry_never_lengthens_or_starts_a_licence() -> None:
    pop = _population()
    after = _check(
        apply_change(apply_change(pop, ExpireLicence("DSP5-0002")), ExpireLicence("DSP5-0003"))
    )
    by_number = {lic.number: lic for lic in after.facts.licences}
    assert by_number["DSP5-0002"].valid_until == datetime(2026, 3, 1, tzinfo=UTC)  # ended already
    future = by_number["DSP5-0003"]
    assert future.valid_until == future.valid_from  # withdrawn: an empty window
    assert _changed("licence-expire:DSP5-0002") == ((), ())


def test_unknown_licence_is_an_error() -> None:
    with pytest.raises(InvalidChange, match="no licence 'TAA-9999' in the export facts"):
        what_if(_population(), [parse_change("licence-expire:TAA-9999")])


# -- authorize -------------------------------------------------------------------------


def test_authorized_organisation_reaches_its_people_and_its_own_transfers() -> None:
    gained, lost = _changed("authorize:au-yard:ITAR")
    # liam (au-yard) gains the 126.7 items not excluded; everyone in AUKUS territory
    # gains hull, which au-yard sends; armour stays excluded; kenji stays in JPN.
    assert gained == (
        ("alice", "hull"),
        ("bob", "hull"),
        ("liam", "hull"),
        ("liam", "sensor"),
        ("liam", "sonar"),
    )
    assert lost == ()


def test_authorized_organisation_status_is_recorded_on_the_org_and_its_people() -> None:
    pop = _population()
    after = _check(apply_change(pop, parse_change("authorize:au-yard:ITAR:AU-77")))
    status = AuthorizedUserStatus(Regime.ITAR, "AU-77", AT, AT + AUTHORIZE_FOR)
    assert after.parties["au-yard"].authorized == (status,)
    assert after.parties["liam"].authorized == (status,)
    assert after.parties["kenji"].authorized == ()
    assert after.parties["bob"].authorized == _check(pop).parties["bob"].authorized
    assert _check(pop).parties["liam"].authorized == ()  # the original is untouched


def test_authorized_person_gains_only_their_own_access() -> None:
    assert _changed("authorize:liam:ITAR") == ((("liam", "sensor"), ("liam", "sonar")), ())
    after = _check(apply_change(_population(), Authorize("liam", Regime.ITAR)))
    assert after.parties["au-yard"].authorized == ()
    assert after.parties["liam"].authorized[0].identifier == WHAT_IF


def test_authorized_partner_organisation_stays_outside_aukus_territory() -> None:
    """§126.7(b)(1): a status does not move kenji's place (JPN) into AUKUS territory."""
    assert _changed("authorize:jp-lab:ITAR") == ((), ())
    after = _check(apply_change(_population(), Authorize("jp-lab", Regime.ITAR)))
    assert after.parties["kenji"].authorized_user(Regime.ITAR, AT)


def test_organisation_named_only_by_its_people_reaches_them() -> None:
    after = _check(apply_change(_population(), Authorize("uk-lab", Regime.UK_STRATEGIC)))
    assert "uk-lab" not in after.parties  # no party record is invented
    for pid in ("bob", "dana"):
        assert after.parties[pid].authorized_user(Regime.UK_STRATEGIC, AT)
    # dana already holds an ITAR status; her IRN nationality is still not covered
    assert _changed("authorize:uk-lab:ITAR") == ((), ())


def test_unknown_party_is_an_error() -> None:
    with pytest.raises(InvalidChange, match="no export party or organisation 'mallory'"):
        what_if(_population(), [parse_change("authorize:mallory:ITAR")])


# -- exclude ---------------------------------------------------------------------------


def test_excluded_item_loses_126_7_but_not_its_licence() -> None:
    # kenji keeps sonar under the TAA; alice and bob lose their ITAR 126.7 basis
    assert _changed("exclude:ITAR:USML XI(a)") == ((), (("alice", "sonar"), ("bob", "sonar")))
    assert _changed("exclude:ITAR:USML XX") == ((), ())  # au-yard is not eligible anyway


def test_what_if_exclusion_goes_on_its_own_list_and_is_named_in_the_denial() -> None:
    pop = _population()
    after = apply_change(
        apply_change(pop, Exclude(Regime.ITAR, "USML XI(a)")), Exclude(Regime.ITAR, "USML XII")
    )
    lists = _check(after).facts.excluded_lists
    assert [x.name for x in lists] == ["Example excluded list", WHAT_IF]
    assert lists[0] == _check(pop).facts.excluded_lists[0]  # the officer's list as loaded
    assert [(e.pattern, e.source) for e in lists[1].entries] == [
        ("USML XI(a)", WHAT_IF),
        ("USML XII", WHAT_IF),
    ]
    assert len(_check(pop).facts.excluded_lists) == 1
    sc = _scenario()
    decision = after.engine().evaluate(sc.subject_at("bob", AT), "read", sc.objects["sonar"], at=AT)
    sentence = " ".join(r.sentence for r in decision.reasons)
    assert not decision.allowed and "USML XI(a)(1) is on what-if version what-if" in sentence


def test_exclusion_without_a_loaded_list_is_refused() -> None:
    """A one-entry what-if list would stand in for the whole official list."""
    with pytest.raises(InvalidChange, match="no EAR excluded list is loaded"):
        what_if(_population(), [parse_change("exclude:EAR:ECCN 3A001")])


def test_exclusion_pattern_must_name_an_item_of_the_regime() -> None:
    with pytest.raises(InvalidChange, match="ITAR patterns start with 'USML '"):
        parse_change("exclude:ITAR:XI(a)")


# -- common ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change", ["licence-expire:TAA-0001", "authorize:alice:ITAR", "exclude:ITAR:USML XI"]
)
def test_export_change_without_export_facts_is_refused(change: str) -> None:
    sc = load_scenario(NO_EXPORT)
    assert sc.at is not None and sc.export_check is None
    with pytest.raises(InvalidChange, match="the scenario has no export facts"):
        what_if(sc.population(sc.at), [parse_change(change)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("licence-expire:TAA-0001", ExpireLicence("TAA-0001")),
        ("licence-expire:DSP-5 050:12", ExpireLicence("DSP-5 050:12")),
        ("authorize:au-yard:ITAR", Authorize("au-yard", Regime.ITAR, WHAT_IF)),
        ("authorise:liam:UK_STRATEGIC:AUC-3", Authorize("liam", Regime.UK_STRATEGIC, "AUC-3")),
        ("exclude:ITAR:USML XI(a)", Exclude(Regime.ITAR, "USML XI(a)")),
        ("exclude:AUS_DSGL:DSGL ML11", Exclude(Regime.AUS_DSGL, "DSGL ML11")),
    ],
)
def test_export_changes_parse(text: str, expected: object) -> None:
    assert parse_change(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("licence-expire:", "cannot read change"),
        ("licence-expire:TAA\n1", "not printable"),
        ("authorize:liam", "cannot read change"),
        ("authorize::ITAR", "party '' is empty"),
        ("authorize:liam:itar", "'itar' is not a regime"),
        ("authorize:liam:ITAR:AU-1:extra", "cannot read change"),
        ("authorize:liam:ITAR:", "identifier '' is empty"),
        ("exclude:ITAR", "cannot read change"),
        ("exclude:ITAR:", "pattern '' is empty"),
        ("exclude:ITAR:USML ", "names no ITAR item"),
        ("exclude:EAR:USML XI", "EAR patterns start with 'ECCN '"),
        ("exclude:NOPE:USML XI", "'NOPE' is not a regime"),
    ],
)
def test_malformed_export_change_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidChange, match=message):
        parse_change(text)


# -- the command line ------------------------------------------------------------------


def _cli(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[dict[str, object]], str]:
    code = main(["whatif", "--scenario", str(SCENARIO), *args])
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines() if x.strip()], err


def test_cli_prints_who_gains_and_loses_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = SCENARIO.read_bytes()
    code, rows, _ = _cli(
        capsys, "--change", "authorize:au-yard:ITAR", "--change", "licence-expire:TAA-0001"
    )
    assert code == 0 and SCENARIO.read_bytes() == before
    assert rows[:-1] == [
        {"change": "gained", "person": "alice", "object": "hull"},
        {"change": "gained", "person": "bob", "object": "hull"},
        {"change": "gained", "person": "liam", "object": "hull"},
        {"change": "gained", "person": "liam", "object": "sensor"},
        {"change": "gained", "person": "liam", "object": "sonar"},
        {"change": "lost", "person": "kenji", "object": "sonar"},
    ]
    assert rows[-1]["summary"] == {
        "gained": 5,
        "lost": 1,
        "gained_by_nation": {"AUS": 3, "GBR": 1, "USA": 1},
        "gained_by_project": {"sonar": 5},
        "lost_by_nation": {"JPN": 1},
        "lost_by_project": {"sonar": 1},
    }


def test_cli_exclusion_with_a_regime_name_and_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, _ = _cli(capsys, "--change", "exclude:ITAR:USML XI(a)")
    assert code == 0
    assert [(r["change"], r["person"], r["object"]) for r in rows[:-1]] == [
        ("lost", "alice", "sonar"),
        ("lost", "bob", "sonar"),
    ]


def test_cli_bad_export_change_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, err = _cli(capsys, "--change", "licence-expire:NOPE-1")
    assert code == 1 and rows == []
    assert "no licence 'NOPE-1' in the export facts" in err


def test_cli_export_change_on_a_scenario_without_export_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["whatif", "--scenario", str(NO_EXPORT), "--change", "exclude:ITAR:USML XI"])
    _, err = capsys.readouterr()
    assert code == 1 and "the scenario has no export facts" in err


# -- properties ------------------------------------------------------------------------

_SC = load_scenario(SCENARIO)
_CHECK = _SC.export_check
assert _CHECK is not None
LICENCES = st.sampled_from(sorted(lic.number for lic in _CHECK.facts.licences))
PATTERNS = st.builds(
    lambda c, p: f"USML {c}{p}",
    st.sampled_from(["IV", "XI", "XII", "XX"]),
    st.sampled_from(["", "(a)", "(a)(1)", "(b)", "(c)", "(h)"]),
)
PARTIES = st.sampled_from(sorted({*_CHECK.parties, "uk-lab", "jp-lab"}))
REGIMES = st.sampled_from(list(Regime))
TIMES = st.integers(-400, 600).map(lambda d: AT + timedelta(days=d))
NARROWING = st.lists(
    st.one_of(
        LICENCES.map(ExpireLicence),
        PATTERNS.map(lambda p: Exclude(Regime.ITAR, p)),
    ),
    min_size=1,
    max_size=4,
)
_FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(changes=NARROWING, at=TIMES)
def test_expiry_and_exclusion_never_grant_access(
    changes: list[ExpireLicence | Exclude], at: datetime
) -> None:
    result = what_if(_SC.population(at), changes)
    assert result.gained == ()


@_FAST
@given(changes=st.lists(st.builds(Authorize, PARTIES, REGIMES), min_size=1, max_size=4), at=TIMES)
def test_authorization_never_takes_access_away(changes: list[Authorize], at: datetime) -> None:
    result = what_if(_SC.population(at), changes)
    assert result.lost == ()
