"""Hypothesis properties of the engine: restricting never allows, answers are stable."""

from __future__ import annotations

import dataclasses
import random

from decisions_testing import (
    CATEGORIES,
    HashExport,
    random_object,
    random_subject,
    random_world,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.decisions import (
    CLEARANCE_STATUSES,
    CODES,
    ClearanceFact,
    Engine,
    Resource,
    Subject,
    TableLevelMapper,
)

ACTIONS = st.sampled_from(["read", "download", "share", "relabel"])
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
LEVEL_UP = {"UNCLASSIFIED": "CONFIDENTIAL", "CONFIDENTIAL": "SECRET", "SECRET": "TOP SECRET"}


def case(seed: int) -> tuple[Engine, Subject, Resource, object]:
    rng = random.Random(seed)
    world, recognition, at = random_world(rng)
    s = random_subject(rng, rng.randrange(10))
    o = random_object(rng, 0, [s.id, "other"])
    return Engine(world, TableLevelMapper(), recognition, HashExport()), s, o, at


def restrict_object(o: Resource, how: int, rng: random.Random) -> Resource:
    trigraphs = sorted(c for c in o.rel_to if len(c) == 3)
    if how == 0 and trigraphs:  # dropping a malformed code would remove a failure
        return dataclasses.replace(o, rel_to=o.rel_to - {rng.choice(trigraphs)})
    if how == 1:
        return dataclasses.replace(o, categories=o.categories | {rng.choice(CATEGORIES)})
    if how == 2:
        return dataclasses.replace(o, orcon=True)
    if how == 3:
        return dataclasses.replace(o, project=None)
    if how == 4 and o.orcon_approved:
        return dataclasses.replace(o, orcon_approved=frozenset())
    return dataclasses.replace(o, classification=LEVEL_UP.get(o.classification, o.classification))


def restrict_subject(s: Subject, how: int, rng: random.Random) -> Subject:
    readable = [
        i
        for i, c in enumerate(s.clearances)
        if c.status in CLEARANCE_STATUSES and TableLevelMapper().rank(c.nation, c.level) is not None
    ]
    if how == 0 and readable:  # dropping an unreadable clearance would remove a failure
        i = rng.choice(readable)
        return dataclasses.replace(s, clearances=s.clearances[:i] + s.clearances[i + 1 :])
    if how == 1 and readable:
        i = rng.choice(readable)
        c = s.clearances[i]
        revoked = ClearanceFact(c.id, c.nation, c.level, "revoked", "revoked")
        return dataclasses.replace(
            s, clearances=(*s.clearances[:i], revoked, *s.clearances[i + 1 :])
        )
    if how == 2 and s.projects:
        return dataclasses.replace(s, projects=s.projects - {rng.choice(sorted(s.projects))})
    if how == 3 and s.caveats:
        return dataclasses.replace(s, caveats=frozenset())
    return dataclasses.replace(s, roles=frozenset())


@settings(max_examples=400, deadline=None)
@given(SEEDS, ACTIONS, st.integers(0, 5))
def test_restricting_the_object_never_allows(seed: int, action: str, how: int) -> None:
    engine, s, o, at = case(seed)
    tighter = restrict_object(o, how, random.Random(seed))
    before = engine.evaluate(s, action, o, at=at)  # type: ignore[arg-type]
    after = engine.evaluate(s, action, tighter, at=at)  # type: ignore[arg-type]
    assert not (after.allowed and not before.allowed)


@settings(max_examples=400, deadline=None)
@given(SEEDS, ACTIONS, st.integers(0, 4))
def test_restricting_the_person_never_allows(seed: int, action: str, how: int) -> None:
    engine, s, o, at = case(seed)
    tighter = restrict_subject(s, how, random.Random(seed))
    before = engine.evaluate(s, action, o, at=at)  # type: ignore[arg-type]
    after = engine.evaluate(tighter, action, o, at=at)  # type: ignore[arg-type]
    assert not (after.allowed and not before.allowed)


@settings(max_examples=300, deadline=None)
@given(SEEDS, ACTIONS, st.randoms(use_true_random=False))
def test_reasons_do_not_depend_on_clearance_order(seed: int, action: str, r: random.Random) -> None:
    engine, s, o, at = case(seed)
    shuffled = list(s.clearances)
    r.shuffle(shuffled)
    other = dataclasses.replace(s, clearances=tuple(shuffled))
    a = engine.evaluate(s, action, o, at=at)  # type: ignore[arg-type]
    b = engine.evaluate(other, action, o, at=at)  # type: ignore[arg-type]
    assert a.allowed == b.allowed and a.codes == b.codes


@settings(max_examples=300, deadline=None)
@given(SEEDS, ACTIONS)
def test_decisions_are_explained_and_stable(seed: int, action: str) -> None:
    engine, s, o, at = case(seed)
    d = engine.evaluate(s, action, o, at=at)  # type: ignore[arg-type]
    assert d.allowed == (d.reasons == ())
    assert list(d.codes) == sorted(set(d.codes)) and set(d.codes) <= set(CODES)
    assert all(r.sentence.strip() for r in d.reasons)
    assert d.rule == (f"permit:{action}" if d.allowed else d.codes[0])
    # a memoised answer equals a fresh engine's
    fresh = Engine(engine.world, engine.mapper, engine.recognition, engine.export_check)
    assert fresh.evaluate(s, action, o, at=at) == engine.evaluate(s, action, o, at=at)  # type: ignore[arg-type]
