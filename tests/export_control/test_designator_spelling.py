"""An excluded item must not pass under §126.7 because its designator is spelt
differently from the list's pattern (found while writing the export z3 proofs).

Excluded-list patterns match designators by prefix: ``USML IV`` matches
``USML IV(h)`` but not ``USML iv(h)``, ``USML IV (h)`` or ``USML IVh``. Before the
fix such an item was allowed as ``ITAR 126.7`` with ``USML IV`` on the list.
The list entry and the items are invented test data.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relto.export_control import (
    Action,
    AuthorizedUserStatus,
    ExcludedEntry,
    ExcludedList,
    ExportFacts,
    ItemClassification,
    ItemKind,
    Party,
    PartyKind,
    Regime,
    Transfer,
    TransferDecision,
    decide_transfer,
)
from relto.export_control._parties import load_item

AT = datetime(2026, 6, 1, tzinfo=UTC)
SOURCE = "test data, not regulatory content"
FACTS = ExportFacts(
    excluded_lists=(
        ExcludedList(Regime.ITAR, "Test ETL", "1", SOURCE, (ExcludedEntry("USML IV", SOURCE),)),
    )
)
SENDER = Party(
    "alice", PartyKind.PERSON, "USA", frozenset({"USA"}), "us-prime", ddtc_registered=True
)
READER = Party(
    "bob",
    PartyKind.PERSON,
    "GBR",
    frozenset({"GBR"}),
    "uk-lab",
    authorized=(
        AuthorizedUserStatus(
            Regime.ITAR, "AU-1", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        ),
    ),
)


def _decide(item: ItemClassification | None) -> TransferDecision:
    return decide_transfer(Transfer(item, SENDER, READER, Action.READ, "GBR", AT), FACTS)


def _item(category: str, paragraph: str | None) -> ItemClassification:
    return ItemClassification(True, ItemKind.TECHNICAL_DATA, Regime.ITAR, category, paragraph)


@pytest.mark.parametrize(
    ("category", "paragraph"),
    [("iv", "(h)"), ("IV ", "(h)"), (" IV", "(h)"), ("IV", "h"), ("IV", " (h)"), ("IV", "(H)")],
)
def test_excluded_item_spelt_differently_does_not_pass_126_7(category: str, paragraph: str) -> None:
    d = _decide(_item(category, paragraph))
    assert not d.allowed and d.legal_basis is None
    codes = [r.code for r in d.reasons]
    assert "designator_not_canonical" in codes
    sentence = next(r.sentence for r in d.reasons if r.code == "designator_not_canonical")
    assert "§126.7(b)(3)" in sentence


def test_misspelt_designator_from_a_scenario_export_block_is_denied() -> None:
    """The same item as an officer would write it in a scenario's export block."""
    data = {"controlled": True, "kind": "technical_data", "regime": "ITAR", "usml_category": "iv"}
    d = _decide(load_item(data | {"usml_paragraph": "(h)"}, "objects[0].export").item)
    assert not d.allowed


@pytest.mark.parametrize(
    ("category", "paragraph"),
    [("XI", "(a)(1)"), ("XI", None), ("XXI", "(a)(1)(i)"), ("XII", "(c)")],
)
def test_canonical_designator_not_on_the_list_still_passes_126_7(
    category: str, paragraph: str | None
) -> None:
    d = _decide(_item(category, paragraph))
    assert d.allowed and d.legal_basis == "ITAR 126.7"


def test_canonical_designator_on_the_list_is_reported_as_excluded() -> None:
    d = _decide(_item("IV", "(h)"))
    codes = [r.code for r in d.reasons]
    assert "item_on_excluded_list" in codes and "designator_not_canonical" not in codes
