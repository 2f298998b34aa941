"""z3 proofs over the engine's own rule table (relto.decisions.rules).

The rule functions are run with a symbolic algebra, so the formulas z3 reasons
about are the ones the engine evaluates, not a copy. Free variables: everything a
request can carry (statuses and strings are unconstrained, so unknown values are
covered), bounded to 3 clearances, 2 nationalities, 2 categories, 3 admissions.

Stops: reading up, release to a nationality outside Releasable To, a non-current
clearance counting, and the other invariants below. A failing proof fails the test
and prints the counterexample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import z3

from relto.decisions import ACTIONS
from relto.decisions.rules import PY, rules

STR = z3.StringSort()


def _v(x: Any) -> Any:
    return z3.StringVal(x) if isinstance(x, str) else x


class Coll:
    """A bounded collection: slots with a presence bit each."""

    def __init__(self, slots: list[tuple[Any, Any]]) -> None:
        self.slots = slots

    def __iter__(self) -> Iterator[Any]:
        return iter(v for _, v in self.slots)


class Z3Algebra:
    true = z3.BoolVal(True)
    false = z3.BoolVal(False)

    @staticmethod
    def not_(a: Any) -> Any:
        return z3.Not(a)

    @staticmethod
    def and_(*xs: Any) -> Any:
        return z3.And(*xs)

    @staticmethod
    def or_(*xs: Any) -> Any:
        return z3.Or(*xs)

    @staticmethod
    def eq(a: Any, b: Any) -> Any:
        return _v(a) == _v(b)

    @staticmethod
    def lt(a: Any, b: Any) -> Any:
        return a < b

    @staticmethod
    def le(a: Any, b: Any) -> Any:
        return a <= b

    @staticmethod
    def ite(c: Any, a: Any, b: Any) -> Any:
        return z3.If(c, a, b)

    @staticmethod
    def add(*xs: Any) -> Any:
        return z3.Sum(*xs)

    @staticmethod
    def member(x: Any, s: Any) -> Any:
        return z3.IsMember(_v(x), s)

    @staticmethod
    def lit_in(x: Any, lits: tuple[str, ...]) -> Any:
        return z3.Or(*(_v(x) == z3.StringVal(lit) for lit in lits))

    @staticmethod
    def any_(coll: Coll, fn: Callable[[Any], Any]) -> Any:
        return z3.Or(*(z3.And(p, fn(v)) for p, v in coll.slots))

    @staticmethod
    def all_(coll: Coll, fn: Callable[[Any], Any]) -> Any:
        return z3.And(*(z3.Implies(p, fn(v)) for p, v in coll.slots))


Z = Z3Algebra()


def S(name: str) -> Any:
    return z3.String(name)


def SET(name: str) -> Any:
    return z3.Const(name, z3.SetSort(STR))


@dataclass
class Clr:
    status: Any
    issuer: Any
    level_known: Any
    rank: Any
    recognised: Any


@dataclass
class Adm:
    nation: Any
    project: Any
    ceil: Any
    start: Any
    end: Any


@dataclass
class View:
    attrs: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.attrs[name]
        except KeyError:
            raise AttributeError(name) from None


def model() -> tuple[View, View, View, list[Any]]:
    """Symbolic subject, object and environment, and the domain constraints."""
    constraints: list[Any] = []
    clr_slots = []
    for i in range(3):
        c = Clr(
            S(f"c{i}.status"),
            S(f"c{i}.issuer"),
            z3.Bool(f"c{i}.known"),
            z3.Int(f"c{i}.rank"),
            z3.Bool(f"c{i}.recognised"),
        )
        constraints.append(c.rank >= -1)
        clr_slots.append((z3.Bool(f"c{i}.present"), c))
    nat_slots = [(z3.Bool(f"n{i}.present"), S(f"n{i}")) for i in range(2)]
    cat_slots = [(z3.Bool(f"k{i}.present"), S(f"k{i}")) for i in range(2)]
    adm_slots = []
    for i in range(3):
        a = Adm(
            S(f"a{i}.nation"),
            S(f"a{i}.project"),
            z3.Int(f"a{i}.ceil"),
            z3.Int(f"a{i}.start"),
            z3.Int(f"a{i}.end"),
        )
        constraints.append(a.ceil >= -1)
        adm_slots.append((z3.Bool(f"a{i}.present"), a))
    s = View(
        {
            "id": S("s.id"),
            "nats": Coll(nat_slots),
            "clearances": Coll(clr_slots),
            "projects": SET("s.projects"),
            "roles": SET("s.roles"),
            "caveats": SET("s.caveats"),
        }
    )
    o = View(
        {
            "originator": S("o.originator"),
            "rank": z3.Int("o.rank"),
            "relto": SET("o.relto"),
            "relto_wellformed": z3.Bool("o.relto_wellformed"),
            "project": S("o.project"),
            "cats": Coll(cat_slots),
            "orcon": z3.Bool("o.orcon"),
            "approved": SET("o.approved"),
            "export_flagged": z3.Bool("o.export_flagged"),
            "export_ok": z3.Bool("o.export_ok"),
        }
    )
    constraints.append(o.rank >= -1)
    e = View(
        {
            "action": S("e.action"),
            "at": z3.Int("e.at"),
            "dual_all": z3.Bool("e.dual_all"),
            "review_keeps": SET("e.review_keeps"),
            "implicit": SET("e.implicit"),
            "known_cats": SET("e.known_cats"),
            "admissions": Coll(adm_slots),
        }
    )
    return s, o, e, constraints


def allowed_formula() -> tuple[Any, View, View, View, list[Any], dict[str, Any]]:
    s, o, e, constraints = model()
    fired = rules(Z, s, o, e)
    return z3.Not(z3.Or(*fired.values())), s, o, e, constraints, fired


def spec_current(c: Clr, e: View) -> Any:
    st = c.status
    return z3.Or(
        st == z3.StringVal("granted"),
        st == z3.StringVal("interim"),
        z3.And(st == z3.StringVal("under_review"), z3.IsMember(c.issuer, e.review_keeps)),
    )


def prove(claim: Any, constraints: list[Any]) -> None:
    solver = z3.Solver()
    solver.set("timeout", 60_000)
    solver.add(*constraints)
    solver.add(z3.Not(claim))
    result = solver.check()
    assert result == z3.unsat, (
        f"proof failed ({result}); counterexample: {solver.model() if result == z3.sat else ''}"
    )


def test_allowing_is_possible() -> None:
    """Guard against vacuous proofs: some request is allowed."""
    allowed, _s, _o, _e, constraints, _ = allowed_formula()
    solver = z3.Solver()
    solver.add(*constraints, allowed)
    assert solver.check() == z3.sat


def test_no_allowed_request_reads_up() -> None:
    allowed, s, o, e, constraints, _ = allowed_formula()
    dominated = z3.Or(
        *(
            z3.And(p, c.level_known, c.recognised, spec_current(c, e), c.rank >= o.rank)
            for p, c in s.clearances.slots
        )
    )
    prove(z3.Implies(allowed, z3.And(o.rank >= 0, dominated)), constraints)


def test_no_release_outside_releasable_to() -> None:
    allowed, s, o, e, constraints, _ = allowed_formula()
    some_in = z3.Or(*(z3.And(p, z3.IsMember(n, o.relto)) for p, n in s.nats.slots))
    all_in = z3.And(*(z3.Implies(p, z3.IsMember(n, o.relto)) for p, n in s.nats.slots))
    prove(z3.Implies(allowed, z3.And(some_in, z3.Implies(e.dual_all, all_in))), constraints)


def test_no_non_current_clearance_is_ever_allowed() -> None:
    allowed, s, _o, e, constraints, _ = allowed_formula()
    none_current = z3.And(
        *(z3.Implies(p, z3.Not(spec_current(c, e))) for p, c in s.clearances.slots)
    )
    prove(z3.Implies(none_current, z3.Not(allowed)), constraints)


@pytest.mark.parametrize(
    "name",
    ["need_to_know", "orcon", "known_action", "known_categories", "export", "relto_wellformed"],
)
def test_other_invariants(name: str) -> None:
    allowed, s, o, e, constraints, _ = allowed_formula()
    claims = {
        "need_to_know": z3.IsMember(o.project, s.projects),
        "orcon": z3.Implies(o.orcon, z3.IsMember(s.id, o.approved)),
        "known_action": z3.Or(*(e.action == z3.StringVal(a) for a in sorted(ACTIONS))),
        "known_categories": z3.And(
            *(z3.Implies(p, z3.IsMember(k, e.known_cats)) for p, k in o.cats.slots)
        ),
        "export": z3.Implies(o.export_flagged, o.export_ok),
        "relto_wellformed": o.relto_wellformed,
    }
    prove(z3.Implies(allowed, claims[name]), constraints)


def test_clearance_reasons_never_contradict_clearance_missing() -> None:
    """MISSING excludes the per-clearance codes; a denial always names a reason."""
    _allowed, _s, _o, _e, constraints, fired = allowed_formula()
    per = z3.Or(
        fired["CLEARANCE_NOT_CURRENT"],
        fired["CLEARANCE_NOT_RECOGNISED"],
        fired["CLEARANCE_TOO_LOW"],
    )
    prove(z3.Not(z3.And(fired["CLEARANCE_MISSING"], per)), constraints)


def test_python_algebra_is_the_engine_algebra() -> None:
    """The engine evaluates the same table with PY (guards against a fork)."""
    from relto.decisions import engine as engine_module

    assert engine_module.PY is PY


def test_proofs_catch_a_broken_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proofs have teeth: drop TOO_LOW from the table and reading up is found."""
    from relto.decisions import rules as rules_module

    real = rules_module.clearance_failures

    def broken(L: Any, c: Any, o: Any, e: Any) -> dict[str, Any]:
        out = real(L, c, o, e)
        out["CLEARANCE_TOO_LOW"] = L.false
        return out

    monkeypatch.setattr(rules_module, "clearance_failures", broken)
    with pytest.raises(AssertionError, match="proof failed"):
        test_no_allowed_request_reads_up()


def _concrete_views(seed: int) -> tuple[Any, Any, Any]:
    """Engine views for a generated request (what the compiled table is called with)."""
    import random

    from decisions_testing import engine_for, random_universe

    rng = random.Random(seed)
    u = random_universe(rng, 3, 3)
    engine = engine_for(u)
    s, o = rng.choice(u.subjects), rng.choice(u.objects)
    action = rng.choice(["read", "download", "share", "relabel", "fly"])
    plan = engine._plan(s, u.at)
    return engine._views(plan, action, o, export_ok=rng.random() < 0.5)


def _zset(values: Any) -> Any:
    out = z3.EmptySet(STR)
    for v in values:
        out = z3.SetAdd(out, z3.StringVal(str(v)))
    return out


def _z3_of(views: tuple[Any, Any, Any]) -> tuple[View, View, View]:
    """The concrete views as z3 constants (times as epoch seconds)."""
    s, o, e = views

    def secs(t: Any) -> int:
        return int(min(t.timestamp(), 2**40))

    zs = View(
        {
            "id": z3.StringVal(s.id),
            "nats": Coll([(z3.BoolVal(True), z3.StringVal(n)) for n in s.nats]),
            "clearances": Coll(
                [
                    (
                        z3.BoolVal(True),
                        Clr(
                            z3.StringVal(c.status),
                            z3.StringVal(c.issuer),
                            z3.BoolVal(c.level_known),
                            z3.IntVal(c.rank),
                            z3.BoolVal(c.recognised),
                        ),
                    )
                    for c in s.clearances
                ]
            ),
            "projects": _zset(s.projects),
            "roles": _zset(s.roles),
            "caveats": _zset(s.caveats),
        }
    )
    zo = View(
        {
            "originator": z3.StringVal(o.originator),
            "rank": z3.IntVal(o.rank),
            "relto": _zset(o.relto),
            "relto_wellformed": z3.BoolVal(o.relto_wellformed),
            "project": z3.StringVal(o.project if o.project is not None else "\x00none"),
            "cats": Coll([(z3.BoolVal(True), z3.StringVal(k)) for k in o.cats]),
            "orcon": z3.BoolVal(o.orcon),
            "approved": _zset(o.approved),
            "export_flagged": z3.BoolVal(o.export_flagged),
            "export_ok": z3.BoolVal(o.export_ok),
        }
    )
    ze = View(
        {
            "action": z3.StringVal(e.action),
            "at": z3.IntVal(secs(e.at)),
            "dual_all": z3.BoolVal(e.dual_all),
            "review_keeps": _zset(e.review_keeps),
            "implicit": _zset(e.implicit),
            "known_cats": _zset(e.known_cats),
            "admissions": Coll(
                [
                    (
                        z3.BoolVal(True),
                        Adm(
                            z3.StringVal(a.nation),
                            z3.StringVal(a.project),
                            z3.IntVal(a.ceil),
                            z3.IntVal(secs(a.start)),
                            z3.IntVal(secs(a.end)),
                        ),
                    )
                    for a in e.admissions
                ]
            ),
        }
    )
    return zs, zo, ze


@pytest.mark.parametrize("seed", range(60))
def test_z3_reading_of_the_table_is_what_the_engine_runs(seed: int) -> None:
    """On concrete requests, z3's interpretation equals the compiled code the engine calls."""
    from relto.decisions.rules import COMPILED, GROUPS

    views = _concrete_views(seed)
    zs, zo, ze = _z3_of(views)
    for (name, fn), compiled in zip(GROUPS, COMPILED, strict=True):
        expected = compiled(*views)
        assert fn(PY, *views) == expected, name
        for code, cond in fn(Z, zs, zo, ze).items():
            value = z3.simplify(cond)
            assert z3.is_true(value) == expected[code] and (
                z3.is_true(value) or z3.is_false(value)
            ), (name, code)
