"""The facts loader is strict: unknown keys, floats for money, naive times and
oversized input are refused with ExportFactsError."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml

from relto.export_control import ExportFactsError, Regime, load_facts
from relto.export_control._loader import MAX_ENTRIES

FACTS_YAML = """
value_thresholds:
  ITAR: "25000"
licences:
  - number: "05-123456"
    regime: ITAR
    kind: DSP-5
    items: ["USML XI(a)"]
    organisations: [us-prime, jp-lab]
    nationalities: [JPN]
    end_use: radar integration test
    valid_from: 2025-01-01
    valid_until: 2027-01-01T00:00:00+00:00
    value_ceiling: 5000
    value_consumed: "1200.50"
    provisos: no re-transfer
excluded_lists:
  - regime: ITAR
    name: Test ETL
    version: "2026-01"
    source: test data, not regulatory content
    entries:
      - {pattern: "USML IV", source: test data}
dual_national_rules:
  - name: test rule
    source: test data
    locations: [GBR]
    nationalities: [FRA]
"""


def good() -> dict[str, object]:
    data = yaml.safe_load(FACTS_YAML)
    assert isinstance(data, dict)
    return data


def test_well_formed_facts_load() -> None:
    facts = load_facts(good())
    (lic,) = facts.licences
    assert lic.valid_from == datetime(2025, 1, 1, tzinfo=UTC)
    assert lic.value_consumed == Decimal("1200.50") and lic.value_ceiling == Decimal(5000)
    assert facts.value_thresholds == {Regime.ITAR: Decimal(25000)}
    assert facts.excluded_lists[0].entries[0].source == "test data"


def test_unknown_key_rejected() -> None:
    data = good()
    data["licences"][0]["ignored"] = 1  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="unknown keys"):
        load_facts(data)


def test_excluded_entry_without_source_rejected() -> None:
    data = good()
    data["excluded_lists"][0]["entries"] = [{"pattern": "USML IV"}]  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="missing keys"):
        load_facts(data)


def test_unknown_regime_rejected() -> None:
    data = good()
    data["licences"][0]["regime"] = "MARS"  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="unknown regime"):
        load_facts(data)


def test_float_money_rejected() -> None:
    data = good()
    data["licences"][0]["value_ceiling"] = 5000.5  # type: ignore[index]
    with pytest.raises(ExportFactsError):
        load_facts(data)


def test_naive_datetime_rejected() -> None:
    data = good()
    data["licences"][0]["valid_until"] = "2027-01-01T00:00:00"  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="timezone"):
        load_facts(data)


def test_inverted_validity_window_rejected() -> None:
    data = good()
    data["licences"][0]["valid_until"] = "2024-01-01"  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="not after"):
        load_facts(data)


def test_duplicate_licence_number_rejected() -> None:
    data = good()
    data["licences"] = data["licences"] * 2  # type: ignore[operator]
    with pytest.raises(ExportFactsError, match="twice"):
        load_facts(data)


def test_oversized_list_rejected() -> None:
    entries = [{"pattern": "USML IV", "source": "s"}] * (MAX_ENTRIES + 1)
    data = good()
    data["excluded_lists"][0]["entries"] = entries  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="more than"):
        load_facts(data)


def test_bad_nation_code_rejected() -> None:
    data = good()
    data["licences"][0]["nationalities"] = ["Japan"]  # type: ignore[index]
    with pytest.raises(ExportFactsError, match="alpha-3"):
        load_facts(data)


@pytest.mark.parametrize(
    "pattern", ["usml iv", "USML iv", "USML IV ", "USML IV(H)", "IV", "USML XXV"]
)
def test_itar_excluded_list_entry_spelt_otherwise_is_refused_not_silently_unmatched(
    pattern: str,
) -> None:
    data = {
        "excluded_lists": [
            {"regime": "ITAR", "name": "L", "version": "1", "source": "s",
             "entries": [{"pattern": pattern, "source": "s"}]}
        ]
    }  # fmt: skip
    with pytest.raises(ExportFactsError, match="written like 'USML IV'"):
        load_facts(data)
