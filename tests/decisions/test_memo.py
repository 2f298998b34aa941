"""The engine's memos never serve one request's answer to another.

Threat: a cached decision keyed too coarsely hands a denied person an allow (or
the wrong reasons, or the wrong obligations). Every test compares the shared,
memoising engine against a fresh engine per request (nothing remembered).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from decisions_testing import AT, HashExport, engine_for, random_universe

from relto.decisions import (
    Action,
    Agreement,
    ClearanceFact,
    Engine,
    ExportFacts,
    Resource,
    Subject,
    TableLevelMapper,
    TableRecognition,
    World,
)

ACTIONS = ("read", "download", "share", "relabel", "fly", Action.READ, Action.SHARE)


def test_memoised_decisions_equal_fresh_ones() -> None:
    for seed in range(3):
        rng = random.Random(seed)
        u = random_universe(rng, 12, 60)
        shared = engine_for(u)
        for _ in range(2500):
            s, a, o = rng.choice(u.subjects), rng.choice(ACTIONS), rng.choice(u.objects)
            got = shared.evaluate(s, a, o, at=u.at)
            assert got == engine_for(u).evaluate(s, a, o, at=u.at), (s, a, o)


def test_transient_objects_never_inherit_a_former_objects_answer() -> None:
    """Objects made and dropped one after another (ids may be reused) decide afresh."""
    rng = random.Random(7)
    u = random_universe(rng, 6, 400)
    shared = engine_for(u)
    for i in range(3000):
        base = rng.choice(u.objects)
        o = Resource(
            f"t{i}",
            base.originator,
            base.classification,
            base.rel_to,
            base.project,
            base.categories,
            base.orcon,
            base.orcon_approved,
            base.export,
        )
        s, a = rng.choice(u.subjects), rng.choice(ACTIONS)
        assert shared.evaluate(s, a, o, at=u.at) == engine_for(u).evaluate(s, a, o, at=u.at)
        del o


def _person(pid: str, nats: frozenset[str]) -> Subject:
    return Subject(
        pid,
        nats,
        (ClearanceFact(f"{pid}c", "USA", "TOP SECRET", "granted"),),
        projects=frozenset({"undersea"}),
        roles=frozenset({"security_officer"}),
    )


def test_allow_obligations_follow_the_action_not_the_memo(world: World, engine: Engine) -> None:
    alice = _person("alice", frozenset({"USA"}))
    doc = Resource("d", "USA", "SECRET", frozenset({"USA"}), "undersea")
    assert engine.evaluate(alice, "read", doc, at=AT).allowed
    for action in ("read", "download", "share", "relabel"):
        got = engine.evaluate(alice, action, doc, at=AT)
        fresh = Engine(world, TableLevelMapper(), engine.recognition).evaluate(
            alice, action, doc, at=AT
        )
        assert got == fresh and got.rule == f"permit:{action}"


def test_orcon_approval_is_part_of_what_is_remembered(engine: Engine) -> None:
    alice = _person("alice", frozenset({"USA"}))
    approved = Resource(
        "a", "USA", "SECRET", frozenset({"USA"}), "undersea", orcon=True,
        orcon_approved=frozenset({"alice"}),
    )  # fmt: skip
    not_approved = Resource(
        "b", "USA", "SECRET", frozenset({"USA"}), "undersea", orcon=True,
        orcon_approved=frozenset({"bob"}),
    )  # fmt: skip
    assert engine.evaluate(alice, "read", approved, at=AT).allowed
    assert engine.evaluate(alice, "read", not_approved, at=AT).codes == ("ORIGINATOR_CONTROLLED",)
    assert engine.evaluate(alice, "read", approved, at=AT).allowed


def test_export_hook_is_asked_on_every_request_and_its_answer_counts(world: World) -> None:
    class Flipping:
        def __init__(self) -> None:
            self.calls = 0

        def check(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None:
            self.calls += 1
            return None if self.calls % 2 else f"licence {self.calls} withdrawn"

    hook = Flipping()
    engine = Engine(world, TableLevelMapper(), _recognition(), hook)
    alice = _person("alice", frozenset({"USA"}))
    doc = Resource(
        "x", "USA", "SECRET", frozenset({"USA"}), "undersea", export=ExportFacts("ITAR", "XI")
    )
    answers = [engine.evaluate(alice, "read", doc, at=AT) for _ in range(4)]
    assert hook.calls == 4
    assert [d.allowed for d in answers] == [True, False, True, False]
    assert answers[1].reasons[0].sentence == "licence 2 withdrawn"
    assert answers[3].reasons[0].sentence == "licence 4 withdrawn"


def test_dual_nationals_and_malformed_releasable_to_are_keyed_apart(world: World) -> None:
    engine = Engine(world, TableLevelMapper(), _recognition(), HashExport())
    dual = _person("dual", frozenset({"USA", "GBR"}))
    lists = [
        frozenset({"USA"}),
        frozenset({"GBR"}),
        frozenset({"USA", "GBR"}),
        frozenset({"USA", "bad"}),
        frozenset({"GBR", "bad"}),
        frozenset(),
    ]
    for _ in range(2):
        for rel in lists:
            o = Resource("r", "USA", "SECRET", rel, "undersea")
            fresh = Engine(world, TableLevelMapper(), _recognition(), HashExport())
            assert engine.evaluate(dual, "read", o, at=AT) == fresh.evaluate(dual, "read", o, at=AT)


def _recognition() -> TableRecognition:
    return TableRecognition([Agreement(frozenset({"GBR", "USA"}))])


def test_threads_sharing_an_engine_never_merge_object_groups() -> None:
    """Threat: two threads numbering new object groups at once give two groups one
    number, and one group's memoised decisions answer for the other."""
    import sys
    import threading

    rng = random.Random(11)
    u = random_universe(rng, 8, 300)
    shared = engine_for(u)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    errors: list[str] = []
    try:

        def work(seed: int) -> None:
            r = random.Random(seed)
            for _ in range(1500):
                s, a, o = r.choice(u.subjects), r.choice(ACTIONS), r.choice(u.objects)
                if shared.evaluate(s, a, o, at=u.at) != engine_for(u).evaluate(s, a, o, at=u.at):
                    errors.append(f"{s} {a} {o}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:3]
    numbers = list(shared._gkeys.values())
    assert len(numbers) == len(set(numbers))


def test_engine_asked_at_ever_new_times_stays_bounded(monkeypatch: Any) -> None:
    """A long-lived engine (the product's) is asked at "now" on every request: its
    per-time memo must not grow without end."""
    from datetime import timedelta

    import relto.decisions.engine as engine_module

    monkeypatch.setattr(engine_module, "_MAX_RECOGNITIONS", 100)
    rng = random.Random(5)
    u = random_universe(rng, 6, 20)
    shared = engine_for(u)
    unbounded = engine_for(u)
    unbounded_cap = 10**9
    for i in range(300):
        at = u.at + timedelta(microseconds=i)
        for s in u.subjects:
            o = u.objects[i % len(u.objects)]
            assert shared.evaluate(s, "read", o, at=at) == engine_for(u).evaluate(
                s, "read", o, at=at
            )
            monkeypatch.setattr(engine_module, "_MAX_RECOGNITIONS", unbounded_cap)
            unbounded.evaluate(s, "read", o, at=at)
            monkeypatch.setattr(engine_module, "_MAX_RECOGNITIONS", 100)
    assert len(unbounded._recog) > 100  # the workload would outgrow the bound
    assert len(shared._recog) <= 100
