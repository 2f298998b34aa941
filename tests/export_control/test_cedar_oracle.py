"""Differential test: decide_transfer against an independent Cedar model of the
export rule (export_basis.cedar, export_reasons.cedar, export.cedarschema).

Stops: a condition of §126.7, §126.18 or a licence that drifts from its documented
meaning, a legal basis or licence reported wrongly, and a reason code reported (or
omitted) wrongly. >= 50,000 generated transfers (seeded); any Cedar evaluation
error fails the test.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import cedarpy
import pytest

from relto.export_control import Transfer, TransferDecision, decide_transfer

from .export_oracle import (
    BASIS_TEXT,
    REASONS_TEXT,
    SCHEMA_TEXT,
    entities,
    item_ids,
    request,
)
from .export_testing import World, random_transfer, random_world

WORLDS = 100
TRANSFERS_PER_WORLD = 520
#: Every reason code decide_transfer can give for a transfer of well-formed objects.
CODES = {
    "facts_malformed",
    "classification_missing",
    "classification_malformed",
    "regime_unknown",
    "classification_incomplete",
    "sender_debarred",
    "recipient_debarred",
    "place_outside_aukus_territory",
    "sender_not_eligible",
    "recipient_not_authorized_user",
    "excluded_list_not_loaded",
    "item_on_excluded_list",
    "designator_not_canonical",
    "value_threshold_not_loaded",
    "value_over_123_15",
    "sme_manufacture_abroad",
    "dual_national_not_covered",
    "nationality_unknown",
    "no_licence_free_basis",
    "licence_expired",
    "licence_not_yet_valid",
    "licence_value_ceiling_reached",
    "sender_organisation_not_covered",
    "recipient_organisation_not_covered",
    "recipient_nationality_not_covered",
    "no_covering_licence",
}


def _schema() -> Any:
    return cedarpy.Schema.from_str(SCHEMA_TEXT)


@pytest.mark.parametrize("text", [BASIS_TEXT, REASONS_TEXT], ids=["basis", "reasons"])
def test_cedar_policies_validate_against_schema(text: str) -> None:
    result = cedarpy.validate_policies(text, _schema())
    assert result.validation_passed, [str(e) for e in result.errors]


def test_reason_policies_name_every_code() -> None:
    ids = {line.split('"')[1] for line in REASONS_TEXT.splitlines() if line.startswith("@id(")}
    assert ids == CODES


class Oracle:
    """Both policy sets, pre-parsed."""

    def __init__(self, basis: str = BASIS_TEXT, reasons: str = REASONS_TEXT) -> None:
        self.schema = _schema()
        self.basis = cedarpy.PolicySet.from_str(basis)
        self.reasons = cedarpy.PolicySet.from_str(reasons)

    def judge(
        self, w: World, cases: list[tuple[Transfer, bool]]
    ) -> list[tuple[str | None, set[str]]]:
        """Per transfer: the basis Cedar grants (its @id; None: denied), and for a
        denial the reason codes."""
        ents = cedarpy.Entities.from_json_str(_json(entities(w)), self.schema)
        ids = item_ids(w)
        reqs = [request(t, ids[id(t.item)], ok) for t, ok in cases]
        out: list[tuple[str | None, set[str]]] = []
        for res in cedarpy.is_authorized_batch(reqs, self.basis, ents, self.schema):
            assert not res.diagnostics.errors, f"Cedar evaluation error: {res.diagnostics.errors}"
            names = res.diagnostics.id_annotations_by_reason
            granted = sorted(names[r] for r in res.diagnostics.reasons)
            out.append((_first(granted) if res.allowed else None, set()))
        denied = [i for i, (basis, _) in enumerate(out) if basis is None]
        results = cedarpy.is_authorized_batch(
            [reqs[i] for i in denied], self.reasons, ents, self.schema
        )
        for i, res in zip(denied, results, strict=True):
            assert not res.diagnostics.errors, f"Cedar evaluation error: {res.diagnostics.errors}"
            names = res.diagnostics.id_annotations_by_reason
            out[i] = (None, {names[r] for r in res.diagnostics.reasons})
        return out


def _json(x: Any) -> str:
    return json.dumps(x)


def _first(granted: list[str]) -> str:
    """relto's order: not controlled, ITAR 126.7, then licences in loaded order."""
    order = ["not controlled", "ITAR 126.7", "licence 0", "licence 1", "licence 2"]
    return min(granted, key=order.index)


def _basis(d: TransferDecision, w: World) -> str | None:
    if not d.allowed:
        return None
    if d.licence_number is not None:
        numbers = [lic.number for lic in w.facts.licences]
        return f"licence {numbers.index(d.licence_number)}"
    return d.legal_basis


def _cases(rng: random.Random, w: World, n: int) -> list[tuple[Transfer, bool]]:
    """Transfers, and whether the facts are readable (1 % are handed a mapping)."""
    return [(random_transfer(rng, w), rng.random() >= 0.01) for _ in range(n)]


def _compare(
    w: World, cases: list[tuple[Transfer, bool]], cedar: list[tuple[str | None, set[str]]]
) -> list[tuple[Transfer, TransferDecision, tuple[str | None, set[str]]]]:
    """The transfers on which decide_transfer and Cedar disagree."""
    bad = []
    for (t, ok), (basis, codes) in zip(cases, cedar, strict=True):
        d = decide_transfer(t, w.facts if ok else {"licences": []})  # type: ignore[arg-type]
        if _basis(d, w) != basis or {r.code for r in d.reasons} != codes:
            bad.append((t, d, (basis, codes)))
    return bad


def test_decide_transfer_agrees_with_cedar_on_50k_transfers() -> None:
    rng = random.Random(20261206)
    oracle = Oracle()
    started = time.monotonic()
    bases: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    total = 0
    for _ in range(WORLDS):
        w = random_world(rng)
        cases = _cases(rng, w, TRANSFERS_PER_WORLD)
        cedar = oracle.judge(w, cases)
        bad = _compare(w, cases, cedar)
        assert not bad, bad[:3]
        for basis, reasons in cedar:
            bases[(basis or "denied").split(" ")[0]] += 1
            codes.update(reasons)
        total += len(cases)
    assert total >= 50_000
    # the generator exercises every basis and every reason code
    assert bases["not"] > 1_000 and bases["ITAR"] > 500 and bases["licence"] > 200, bases
    assert bases["denied"] > 10_000, bases
    assert set(codes) == CODES, CODES - set(codes)
    assert time.monotonic() - started < 60


def test_differential_test_catches_a_dropped_condition() -> None:
    """A Cedar model that forgets the excluded lists disagrees within a few worlds."""
    clause = '  !(context.facts has l0 &&\n    context.facts.l0.regime == "ITAR" &&\n'
    assert BASIS_TEXT.count(clause) == 1
    broken = BASIS_TEXT.replace(
        clause, '  !(false && context.facts has l0 &&\n    context.facts.l0.regime == "ITAR" &&\n'
    )
    oracle = Oracle(basis=broken)
    rng = random.Random(7)
    for _ in range(10):
        w = random_world(rng)
        cases = _cases(rng, w, 300)
        if _compare(w, cases, oracle.judge(w, cases)):
            return
    pytest.fail("the broken Cedar model was not caught")
