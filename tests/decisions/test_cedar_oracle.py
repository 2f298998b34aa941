"""Differential test: relto's engine against an independent Cedar policy set.

Stops: a rule that drifts from its documented meaning, a reason code reported (or
omitted) wrongly, and a memoisation bug in the engine's batch path. >= 100,000
generated requests; any Cedar evaluation error fails the test.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import cedarpy
import pytest
from cedar_oracle import (
    SCHEMA,
    context,
    grant_entity,
    object_entity,
    origin_entity,
    policies,
    user_entity,
)
from decisions_testing import ORIGINATORS, HashExport, engine_for, random_universe

from relto.decisions import TableLevelMapper

ACTIONS = ("read", "download", "share", "relabel")
WORLDS = 25
REQUESTS_PER_WORLD = 4_100


def test_cedar_policies_validate_against_schema() -> None:
    result = cedarpy.validate_policies(policies(), json.dumps(SCHEMA))
    assert result.validation_passed, [str(e) for e in result.errors]


def test_engine_agrees_with_cedar_on_100k_requests() -> None:
    rng = random.Random(20261129)
    policy_set = cedarpy.PolicySet.from_str(policies())
    schema = cedarpy.Schema.from_json_str(json.dumps(SCHEMA))
    mapper = TableLevelMapper()
    export = HashExport()
    total = 0
    outcomes: Counter[str] = Counter()
    codes_seen: Counter[str] = Counter()
    started = time.monotonic()
    for _ in range(WORLDS):
        u = random_universe(rng, 80, 80)
        engine = engine_for(u)
        ents = [user_entity(s) for s in u.subjects]
        ents += [object_entity(o, mapper) for o in u.objects]
        ents += [origin_entity(n, u.world, mapper) for n in ORIGINATORS]
        ents += [
            grant_entity(s, n, u.at, mapper, u.recognition) for s in u.subjects for n in ORIGINATORS
        ]
        entities = cedarpy.Entities.from_json_str(json.dumps(ents), schema)
        cases = [
            (rng.choice(u.subjects), rng.choice(ACTIONS), rng.choice(u.objects))
            for _ in range(REQUESTS_PER_WORLD)
        ]
        requests = [
            {
                "principal": {"type": "User", "id": s.id},
                "action": {"type": "Action", "id": a},
                "resource": {"type": "Object", "id": o.id},
                "context": context(s, a, o, u.at, export),
            }
            for s, a, o in cases
        ]
        results = cedarpy.is_authorized_batch(requests, policy_set, entities, schema)
        assert len(results) == len(cases)
        for (s, a, o), res in zip(cases, results, strict=True):
            errors = res.diagnostics.errors
            assert not errors, f"Cedar evaluation error: {errors}"
            ids = res.diagnostics.id_annotations_by_reason
            cedar_codes = {ids[r] for r in res.diagnostics.reasons} - {"PERMIT"}
            d = engine.evaluate(s, a, o, at=u.at)
            assert d.allowed == res.allowed, (s, a, o, d, cedar_codes)
            assert set(d.codes) == cedar_codes, (s, a, o, d.explain(), sorted(cedar_codes))
            outcomes["allow" if d.allowed else "deny"] += 1
            codes_seen.update(d.codes)
            total += 1
    assert total >= 100_000
    # the generator must exercise every code and both outcomes
    assert outcomes["allow"] > 1_000 and outcomes["deny"] > 1_000, outcomes
    from relto.decisions import CODES

    assert set(CODES) <= set(codes_seen), set(CODES) - set(codes_seen)
    assert time.monotonic() - started < 120


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_readable_matches_single_decisions(seed: int) -> None:
    rng = random.Random(seed)
    u = random_universe(rng, 20, 400)
    engine = engine_for(u)
    fresh = engine_for(u)
    for s in u.subjects:
        batch = {o.id for o in engine.readable(s, u.objects, at=u.at)}
        single = {o.id for o in u.objects if fresh.evaluate(s, "read", o, at=u.at).allowed}
        assert batch == single
