"""The vetting data files: strict parsing, sources everywhere, level mapping."""

from __future__ import annotations

import pytest

from relto.vetting import VettingDataError, VettingPolicy, load_policy
from relto.vetting._data import _read

NATIONS = {"AUS", "CAN", "GBR", "JPN", "KOR", "NZL", "USA"}


def test_every_value_has_a_source(policy: VettingPolicy) -> None:
    assert set(policy.schemes) == NATIONS
    for scheme in policy.schemes.values():
        assert scheme.suspends_source.source
        for lv in scheme.levels.values():
            assert lv.grants_source.source and lv.validity_source.source
    for rule in policy.obligations.values():
        assert rule.source.source
        if not rule.source.verified:
            assert rule.source.note
    for a in policy.agreements:
        assert a.sources and a.note


def test_issue_periods(policy: VettingPolicy) -> None:
    years = {
        (n, c): lv.validity_years for n, s in policy.schemes.items() for c, lv in s.levels.items()
    }
    assert years[("AUS", "BASELINE")] == 15 and years[("AUS", "NV1")] == 10
    assert years[("GBR", "SC")] == 10 and years[("GBR", "DV")] == 7
    assert years[("CAN", "SECRET")] == 10 and years[("CAN", "TOP_SECRET")] == 5
    assert years[("JPN", "ESC")] == 10 and years[("JPN", "SDS")] == 5
    assert policy.level("USA", "TOP_SECRET").continuous_vetting


def test_issue_agreement_dates(policy: VettingPolicy) -> None:
    by = {a.id: a for a in policy.agreements}
    assert by["JPN-USA-GSOMIA-2007"].signed.isoformat() == "2007-08-10"  # type: ignore[union-attr]
    assert by["AUS-JPN-ISA-2012"].signed.isoformat() == "2012-05-17"  # type: ignore[union-attr]
    assert by["AUS-JPN-ISA-2012"].in_force.year == 2013  # type: ignore[union-attr]
    # corrections from Japan's Ministry of Foreign Affairs (issue 13), as verified in
    # the research notes: JPN-USA in force on signature, JPN-AUS on 22 March 2013
    assert by["JPN-USA-GSOMIA-2007"].in_force.isoformat() == "2007-08-10"  # type: ignore[union-attr]
    assert by["AUS-JPN-ISA-2012"].in_force.isoformat() == "2013-03-22"  # type: ignore[union-attr]
    assert by["JPN-KOR-GSOMIA-2016"].signed.isoformat() == "2016-11-23"  # type: ignore[union-attr]
    assert by["AUS-KOR-CMI-2009"].signed.year == 2009  # type: ignore[union-attr]
    assert by["CAN-JPN-ISA-2025"].signed.year == 2025  # type: ignore[union-attr]
    assert by["JPN-NZL-ISA-2025"].signed.year == 2025  # type: ignore[union-attr]


def test_every_mapped_level_exists_in_the_nations_spif(policy: VettingPolicy) -> None:
    """Each vetting level grants a classification that relto.labels' SPIF defines."""
    from relto.labels import builtin_policy

    for nation, levels in policy.level_mapping().items():
        names = {c.name for c in builtin_policy(nation).classifications}
        for code, name in levels.items():
            assert name in names, (nation, code, name, sorted(names))


@pytest.mark.parametrize(
    "text",
    [
        "format: relto-vetting-agreements/1\nagreements: {}",
        "format: other/1\nagreements: []",
        "format: relto-vetting-agreements/1\nagreements: []\nextra: 1",
        "format: relto-vetting-agreements/1\nagreements:\n  - {id: x}",
        ": not yaml : [",
    ],
)
def test_malformed_agreement_file_rejected(text: str) -> None:
    with pytest.raises(VettingDataError):
        load_policy(agreements=text)


def test_agreement_in_force_before_signature_rejected() -> None:
    bad = _read("agreements.yaml").replace("in_force: 2013-03-22", "in_force: 2011-01-01", 1)
    with pytest.raises(VettingDataError, match="before signature"):
        load_policy(agreements=bad)


def test_unknown_key_in_scheme_rejected() -> None:
    bad = _read("schemes.yaml").replace(
        "    authority: Australian", "    colour: red\n    authority: Australian"
    )
    with pytest.raises(VettingDataError, match="unknown keys"):
        load_policy(schemes=bad)


def test_higher_vetting_level_never_grants_less(policy: VettingPolicy) -> None:
    """Levels are listed lowest first; what they grant must not go down."""
    from relto.labels import builtin_policy

    for nation, levels in policy.level_mapping().items():
        order = [c.name for c in builtin_policy(nation).classifications]
        ranks = [order.index(name) for name in levels.values()]
        assert ranks == sorted(ranks), (nation, levels)
