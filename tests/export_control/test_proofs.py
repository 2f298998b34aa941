"""z3 proofs over the export rule table decide_transfer runs (relto.export_control.rules).

The table's functions are run with a z3 algebra on symbolic values, so the
formulas z3 reasons about are the ones compiled into decide_transfer, not a copy.
The claims below are written from docs/export_control.md, independently of the
table. Everything a transfer and the loaded facts can carry is free (strings,
times, amounts, flags), bounded to 3 recipient nationalities, 2 authorized-user
statuses per party, 2 excluded lists of 2 entries, 2 licences of 2 patterns and
2 §126.18 rules. Pattern matching is an uninterpreted predicate, so each proof
holds for any matcher, the real one included.

Stops: a controlled transfer allowed without a legal basis, an excluded item or a
place outside AUS/GBR/USA passing under §126.7, a debarred party or a missing or
incomplete classification allowed, an item whose designator is spelt so that no
list pattern can match it passing under §126.7, and a licence reported that does
not meet every condition. A failing proof fails the test and prints the counterexample.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import z3

from relto.export_control import decide, decide_transfer, rules
from relto.export_control.model import pattern_matches

from .export_testing import random_transfer, random_world

STR = z3.StringSort()
AUKUS = ("AUS", "GBR", "USA")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- the z3 algebra -------------------------------------------------------------------


@dataclass
class Opt:
    """An optional value: ``present`` and the value it has when present."""

    present: Any
    val: Any


class Coll:
    """A bounded collection: slots with a presence bit each."""

    def __init__(self, slots: list[tuple[Any, Any]]) -> None:
        self.slots = slots

    def __iter__(self) -> Iterator[Any]:
        return iter(v for _, v in self.slots)


MATCHES = z3.Function("matches", STR, STR, z3.BoolSort())


def _v(x: Any) -> Any:
    if isinstance(x, Opt):
        return x.val
    return z3.StringVal(x) if isinstance(x, str) else x


def _or(xs: list[Any]) -> Any:
    return z3.Or(*xs) if xs else z3.BoolVal(False)


def _and(xs: list[Any]) -> Any:
    return z3.And(*xs) if xs else z3.BoolVal(True)


class Z3Algebra:
    true = z3.BoolVal(True)
    false = z3.BoolVal(False)

    @staticmethod
    def not_(a: Any) -> Any:
        return z3.Not(a)

    @staticmethod
    def and_(*xs: Any) -> Any:
        return _and(list(xs))

    @staticmethod
    def or_(*xs: Any) -> Any:
        return _or(list(xs))

    @staticmethod
    def some(x: Any) -> Any:
        return x.present if isinstance(x, Opt) else z3.BoolVal(True)

    @staticmethod
    def eq(a: Any, b: Any) -> Any:
        return _v(a) == _v(b)

    @staticmethod
    def lt(a: Any, b: Any) -> Any:
        return _v(a) < _v(b)

    @staticmethod
    def le(a: Any, b: Any) -> Any:
        return _v(a) <= _v(b)

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        return _v(a) + _v(b)

    @staticmethod
    def matches(pattern: Any, designator: Any) -> Any:
        p, d = _v(pattern), _v(designator)
        if z3.is_string_value(p) and z3.is_string_value(d):  # concrete: the real matcher
            return z3.BoolVal(pattern_matches(p.as_string(), d.as_string()))
        return MATCHES(p, d)

    @staticmethod
    def member(x: Any, s: Any) -> Any:
        return z3.IsMember(_v(x), s)

    @staticmethod
    def lit_in(x: Any, lits: tuple[str, ...]) -> Any:
        return _or([_v(x) == z3.StringVal(lit) for lit in lits])

    @staticmethod
    def any_(coll: Coll, fn: Callable[[Any], Any]) -> Any:
        return _or([z3.And(p, fn(v)) for p, v in coll.slots])


Z = Z3Algebra()


@dataclass
class View:
    """Attributes by name, as the table reads them off views and model objects."""

    attrs: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.attrs[name]
        except KeyError:
            raise AttributeError(name) from None


# -- the symbolic transfer and facts --------------------------------------------------


def S(name: str) -> Any:
    return z3.String(name)


def SET(name: str) -> Any:
    return z3.Const(name, z3.SetSort(STR))


def _opt(name: str, sort: Callable[[str], Any]) -> Opt:
    return Opt(z3.Bool(f"{name}?"), sort(name))


def _coll(name: str, n: int, make: Callable[[str], Any]) -> Coll:
    return Coll([(z3.Bool(f"{name}{i}?"), make(f"{name}{i}")) for i in range(n)])


def _status(name: str) -> View:
    return View(
        {
            "regime": S(f"{name}.regime"),
            "valid_from": z3.Int(f"{name}.from"),
            "valid_until": z3.Int(f"{name}.until"),
        }
    )


def _party(name: str, nats: int) -> View:
    return View(
        {
            "kind": S(f"{name}.kind"),
            "location": S(f"{name}.location"),
            "nationalities": _coll(f"{name}.nat", nats, S),
            "organisation": _opt(f"{name}.org", S),
            "ddtc_registered": z3.Bool(f"{name}.ddtc"),
            "debarred": z3.Bool(f"{name}.debarred"),
            "government_body_of": _opt(f"{name}.gov", S),
            "authorized": _coll(f"{name}.au", 2, _status),
        }
    )


def _list(name: str) -> View:
    return View(
        {
            "regime": S(f"{name}.regime"),
            "entries": _coll(f"{name}.e", 2, lambda n: View({"pattern": S(n)})),
        }
    )


def _rule(name: str) -> View:
    return View(
        {
            "locations": SET(f"{name}.locations"),
            "nationalities": SET(f"{name}.nationalities"),
            "requires_authorized_user": z3.Bool(f"{name}.requires_au"),
        }
    )


def _licence(name: str) -> View:
    return View(
        {
            "regime": S(f"{name}.regime"),
            "items": _coll(f"{name}.item", 2, S),
            "organisations": SET(f"{name}.organisations"),
            "nationalities": SET(f"{name}.nationalities"),
            "valid_from": z3.Int(f"{name}.from"),
            "valid_until": z3.Int(f"{name}.until"),
            "value_ceiling": _opt(f"{name}.ceiling", z3.Real),
            "value_consumed": z3.Real(f"{name}.consumed"),
        }
    )


def model() -> tuple[View, View]:
    """A symbolic transfer and symbolic facts."""
    item = View(
        {
            "present": z3.Bool("item.present"),
            "kind_known": z3.Bool("item.kind_known"),
            "controlled": z3.Bool("item.controlled"),
            "regime": S("item.regime"),
            "regime_known": z3.Bool("item.regime_known"),
            "has_designator": z3.Bool("item.has_designator"),
            "designator": S("item.designator"),
            "canonical": z3.Bool("item.canonical"),
            "sme": z3.Bool("item.sme"),
        }
    )
    t = View(
        {
            "place": S("place"),
            "action": S("action"),
            "at": z3.Int("at"),
            "value": _opt("value", z3.Real),
            "item": item,
            "sender": _party("s", 1),
            "recipient": _party("r", 3),
        }
    )
    f = View(
        {
            "ok": z3.Bool("facts.ok"),
            "lists": _coll("list", 2, _list),
            "rules": _coll("rule", 2, _rule),
            "licences": _coll("lic", 2, _licence),
            "threshold": _opt("threshold", z3.Real),
        }
    )
    return t, f


@dataclass
class Outcome:
    t: View
    f: View
    not_controlled: Any  # the basis decide_transfer reports, in its order
    itar: Any
    licence: Any

    @property
    def allowed(self) -> Any:
        return z3.Or(self.not_controlled, self.itar, self.licence)


def outcome() -> Outcome:
    t, f = model()
    b = rules.bases(Z, t, f)
    nc, itar, lic = b[rules.NOT_CONTROLLED], b[rules.ITAR_126_7], b[rules.LICENCE]
    return Outcome(t, f, nc, z3.And(z3.Not(nc), itar), z3.And(z3.Not(nc), z3.Not(itar), lic))


def prove(claim: Any) -> None:
    solver = z3.Solver()
    solver.set("timeout", 60_000)
    solver.add(z3.Not(claim))
    result = solver.check()
    assert result == z3.unsat, (
        f"proof failed ({result}); counterexample: {solver.model() if result == z3.sat else ''}"
    )


def satisfiable(claim: Any) -> bool:
    solver = z3.Solver()
    solver.add(claim)
    return bool(solver.check() == z3.sat)


# -- the claims, from docs/export_control.md -----------------------------------------


def aukus(x: Any) -> Any:
    return z3.Or(*(_v(x) == z3.StringVal(n) for n in AUKUS))


def authorized_now(p: View, at: Any) -> Any:
    """An ITAR authorized-user status valid at the time (half-open window)."""
    return _or(
        [
            z3.And(
                present, s.regime == z3.StringVal("ITAR"), s.valid_from <= at, at < s.valid_until
            )
            for present, s in p.authorized.slots
        ]
    )


def eligible(p: View, at: Any) -> Any:
    """§126.7(b)(2): a DDTC-registered U.S. person, an AUS/GBR/USA government body,
    or an ITAR Authorized User at the time."""
    gov = p.government_body_of
    return z3.Or(p.ddtc_registered, z3.And(gov.present, aukus(gov.val)), authorized_now(p, at))


def excluded(t: View, f: View) -> Any:
    """Some loaded ITAR excluded list has an entry matching the item."""
    return _or(
        [
            z3.And(
                present,
                lst.regime == z3.StringVal("ITAR"),
                MATCHES(e.pattern, t.item.designator),
                here,
            )
            for present, lst in f.lists.slots
            for here, e in lst.entries.slots
        ]
    )


def is_person(p: View) -> Any:
    return p.kind == z3.StringVal("person")


def nationalities_covered_126_18(t: View, f: View) -> Any:
    """Every recipient nationality beyond AUS/GBR/USA is covered by a loaded
    §126.18 rule for the recipient's location (with authorized-user status if the
    rule asks for it)."""
    r = t.recipient

    def covered(n: Any) -> Any:
        return _or(
            [
                z3.And(
                    present,
                    z3.IsMember(n, rule.nationalities),
                    z3.IsMember(r.location, rule.locations),
                    z3.Or(z3.Not(rule.requires_authorized_user), authorized_now(r, t.at)),
                )
                for present, rule in f.rules.slots
            ]
        )

    return _and(
        [z3.Implies(here, z3.Or(aukus(n), covered(n))) for here, n in r.nationalities.slots]
    )


def some_nationality(p: View) -> Any:
    return _or([here for here, _ in p.nationalities.slots])


def itar_126_7_holds(t: View, f: View) -> Any:
    """Every condition of §126.7(b)(1)-(4) and the §126.18 reading, as documented."""
    value, threshold = t.value, f.threshold
    return z3.And(
        t.item.regime == z3.StringVal("ITAR"),
        aukus(t.place),
        eligible(t.sender, t.at),
        eligible(t.recipient, t.at),
        _or([z3.And(p, lst.regime == z3.StringVal("ITAR")) for p, lst in f.lists.slots]),
        z3.Not(excluded(t, f)),
        t.item.canonical,
        z3.Implies(value.present, z3.And(threshold.present, value.val <= threshold.val)),
        z3.Not(z3.And(t.item.sme, t.action == z3.StringVal("manufacture"))),
        z3.Implies(
            is_person(t.recipient),
            z3.And(some_nationality(t.recipient), nationalities_covered_126_18(t, f)),
        ),
    )


def licence_holds(lic: View, t: View) -> Any:
    """The licence covers the item, is valid at the time, has value left, and names
    the sender's and recipient's organisations and every nationality of a
    recipient person."""
    s, r, value, ceiling = t.sender, t.recipient, t.value, lic.value_ceiling
    return z3.And(
        lic.regime == t.item.regime,
        _or([z3.And(here, MATCHES(p, t.item.designator)) for here, p in lic.items.slots]),
        lic.valid_from <= t.at,
        t.at < lic.valid_until,
        z3.Implies(
            ceiling.present,
            z3.And(
                lic.value_consumed < ceiling.val,
                z3.Implies(value.present, lic.value_consumed + value.val <= ceiling.val),
            ),
        ),
        s.organisation.present,
        z3.IsMember(s.organisation.val, lic.organisations),
        r.organisation.present,
        z3.IsMember(r.organisation.val, lic.organisations),
        z3.Implies(
            is_person(r),
            z3.And(
                some_nationality(r),
                _and(
                    [
                        z3.Implies(here, z3.IsMember(n, lic.nationalities))
                        for here, n in r.nationalities.slots
                    ]
                ),
            ),
        ),
    )


def controlled_item(t: View) -> Any:
    return z3.And(t.item.present, t.item.controlled)


# -- the proofs -----------------------------------------------------------------------


@pytest.mark.parametrize("basis", ["not_controlled", "itar", "licence", "denied"])
def test_every_outcome_is_reachable(basis: str) -> None:
    """Guard against vacuous proofs: each basis, and a denial, can happen."""
    o = outcome()
    claim = z3.Not(o.allowed) if basis == "denied" else getattr(o, basis)
    assert satisfiable(claim)


def test_allowed_controlled_transfer_has_a_legal_basis() -> None:
    """(a) ITAR 126.7, or a loaded licence meeting every documented condition."""
    o = outcome()
    t, f = o.t, o.f
    licensed = _or([z3.And(p, licence_holds(lic, t)) for p, lic in f.licences.slots])
    prove(z3.Implies(z3.And(o.allowed, controlled_item(t)), z3.Or(o.itar, licensed)))


@pytest.mark.parametrize("slot", [0, 1])
def test_reported_licence_meets_every_condition(slot: int) -> None:
    """(a) decide_transfer reports the first licence licence_allows accepts: any
    licence it accepts on the licence path meets every condition."""
    o = outcome()
    present, lic = o.f.licences.slots[slot]
    accepted = z3.And(o.licence, present, rules.licence_allows(Z, lic, o.t))
    prove(z3.Implies(accepted, licence_holds(lic, o.t)))


def test_126_7_only_when_every_condition_holds() -> None:
    """(a) an ITAR 126.7 allowance meets §126.7(b)(1)-(4), §126.18 and no debarment."""
    o = outcome()
    t = o.t
    clear = z3.Not(z3.Or(t.sender.debarred, t.recipient.debarred))
    prove(z3.Implies(o.itar, z3.And(controlled_item(t), clear, itar_126_7_holds(t, o.f))))


def test_excluded_item_never_allowed_under_126_7() -> None:
    """(b) an item matched by a loaded ITAR excluded list never passes as ITAR 126.7."""
    o = outcome()
    prove(z3.Implies(excluded(o.t, o.f), z3.Not(o.itar)))


def test_non_canonical_designator_never_allowed_under_126_7() -> None:
    """(b) a designator spelt otherwise than the lists' patterns (``USML iv(h)``)
    cannot be checked against them, so it never passes as ITAR 126.7."""
    o = outcome()
    prove(z3.Implies(z3.Not(o.t.item.canonical), z3.Not(o.itar)))


def test_no_itar_list_loaded_never_allowed_under_126_7() -> None:
    o = outcome()
    loaded = _or([z3.And(p, lst.regime == z3.StringVal("ITAR")) for p, lst in o.f.lists.slots])
    prove(z3.Implies(z3.Not(loaded), z3.Not(o.itar)))


def test_place_outside_aukus_never_gets_126_7() -> None:
    """(c) a place outside AUS/GBR/USA never gets ITAR 126.7."""
    o = outcome()
    prove(z3.Implies(z3.Not(aukus(o.t.place)), z3.Not(o.itar)))


def test_other_regimes_never_get_126_7() -> None:
    o = outcome()
    prove(z3.Implies(o.t.item.regime != z3.StringVal("ITAR"), z3.Not(o.itar)))


def test_debarred_party_never_allowed() -> None:
    """(d) a debarred sender or recipient is never allowed a controlled item."""
    o = outcome()
    t = o.t
    debarred = z3.Or(t.sender.debarred, t.recipient.debarred)
    prove(z3.Implies(z3.And(controlled_item(t), debarred), z3.Not(o.allowed)))


def test_debarred_party_passes_only_an_uncontrolled_item() -> None:
    """(d) the only basis a debarred party ever gets is ``not controlled``: an item
    the officer found not controlled is outside export control altogether."""
    o = outcome()
    t = o.t
    debarred = z3.Or(t.sender.debarred, t.recipient.debarred)
    prove(
        z3.Implies(z3.And(o.allowed, debarred), z3.And(o.not_controlled, z3.Not(t.item.controlled)))
    )


@pytest.mark.parametrize(
    "gap", ["missing", "incomplete", "kind_unknown", "regime_unknown", "facts"]
)
def test_missing_or_incomplete_classification_never_allowed(gap: str) -> None:
    """(e) fail closed: no classification, a controlled item without its designator,
    an unknown kind or regime, or unreadable facts."""
    o = outcome()
    i = o.t.item
    cases = {
        "missing": z3.Not(i.present),
        "incomplete": z3.And(i.present, i.controlled, z3.Not(i.has_designator)),
        "kind_unknown": z3.And(i.present, z3.Not(i.kind_known)),
        "regime_unknown": z3.And(i.present, i.controlled, z3.Not(i.regime_known)),
        "facts": z3.Not(o.f.ok),
    }
    prove(z3.Implies(cases[gap], z3.Not(o.allowed)))


def test_no_basis_applies_when_a_shape_rule_fires() -> None:
    """decide_transfer asks for a basis before it reads the shape reasons."""
    o = outcome()
    shape = z3.Or(*rules.shape_rules(Z, o.t, o.f).values())
    prove(z3.Implies(shape, z3.Not(o.allowed)))


def test_every_denial_names_a_reason() -> None:
    """A denial always carries at least one of the reasons decide_transfer reports."""
    o = outcome()
    t, f = o.t, o.f
    reasons = z3.Or(
        *rules.shape_rules(Z, t, f).values(),
        *rules.debarment_rules(Z, t).values(),
        *rules.exemption_rules(Z, t, f).values(),
        Z.any_(
            f.licences,
            lambda lic: z3.And(
                rules.licence_candidate(Z, lic, t), z3.Or(*rules.licence_rules(Z, lic, t).values())
            ),
        ),
        z3.Not(Z.any_(f.licences, lambda lic: rules.licence_candidate(Z, lic, t))),
    )
    prove(z3.Implies(z3.Not(o.allowed), reasons))


# -- the proofs have teeth -----------------------------------------------------------


def test_proof_catches_a_dropped_excluded_list_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table that forgets the excluded lists lets an excluded item pass: z3 finds it."""
    monkeypatch.setattr(rules, "on_excluded_list", lambda L, lst, designator: L.false)
    with pytest.raises(AssertionError, match="proof failed"):
        test_excluded_item_never_allowed_under_126_7()


def test_proof_catches_a_dropped_organisation_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "_names", lambda L, p, lic: L.true)
    with pytest.raises(AssertionError, match="proof failed"):
        test_allowed_controlled_transfer_has_a_legal_basis()


def test_proof_catches_a_dropped_place_check(monkeypatch: pytest.MonkeyPatch) -> None:
    real = rules.itar_126_7_rules

    def broken(L: Any, t: Any, f: Any) -> dict[str, Any]:
        out = real(L, t, f)
        out[rules.PLACE_OUTSIDE] = L.false
        return out

    monkeypatch.setattr(rules, "itar_126_7_rules", broken)
    with pytest.raises(AssertionError, match="proof failed"):
        test_place_outside_aukus_never_gets_126_7()


# -- the proofs read the code that runs ----------------------------------------------


def test_decide_transfer_calls_the_compiled_table() -> None:
    """decide.py runs rules.COMPILED, and COMPILED is the table as it stands."""
    assert vars(decide)["R"] is rules.COMPILED
    for name, (fn, params) in rules.SIGNATURES.items():
        compiled = getattr(rules.COMPILED, name)
        assert compiled.__code__.co_filename == f"<relto.export_control.rules:{fn.__name__}>"
        fresh = rules.compile_rule(fn, *params)[1]
        assert compiled.__code__.co_code == fresh.__code__.co_code, name


def _micros(at: datetime) -> Any:
    return z3.IntVal((at - EPOCH) // timedelta(microseconds=1))


def _amount(x: Decimal | None) -> Any:
    return Opt(z3.BoolVal(x is not None), z3.RealVal(str(x if x is not None else 0)))


def _name(x: object) -> Any:
    return z3.StringVal("" if x is None else str(x))


def _zset(xs: frozenset[str]) -> Any:
    out = z3.EmptySet(STR)
    for x in sorted(xs):
        out = z3.SetAdd(out, z3.StringVal(x))
    return out


def _zcoll(xs: Any, make: Callable[[Any], Any]) -> Coll:
    return Coll([(z3.BoolVal(True), make(x)) for x in xs])


def _zparty(p: Any) -> View:
    return View(
        {
            "kind": _name(p.kind),
            "location": _name(p.location),
            "nationalities": _zcoll(sorted(p.nationalities), z3.StringVal),
            "organisation": Opt(z3.BoolVal(p.organisation is not None), _name(p.organisation)),
            "ddtc_registered": z3.BoolVal(p.ddtc_registered),
            "debarred": z3.BoolVal(p.debarred),
            "government_body_of": Opt(
                z3.BoolVal(p.government_body_of is not None), _name(p.government_body_of)
            ),
            "authorized": _zcoll(
                p.authorized,
                lambda s: View(
                    {
                        "regime": _name(s.regime),
                        "valid_from": _micros(s.valid_from),
                        "valid_until": _micros(s.valid_until),
                    }
                ),
            ),
        }
    )


def _z3_of(t: rules.TransferView, f: rules.FactsView) -> tuple[View, View]:
    """Concrete views (what the compiled table is called with) as z3 constants."""
    i = t.item
    item = View(
        {
            "present": z3.BoolVal(i.present),
            "kind_known": z3.BoolVal(i.kind_known),
            "controlled": z3.BoolVal(i.controlled),
            "regime": _name(i.regime),
            "regime_known": z3.BoolVal(i.regime_known),
            "has_designator": z3.BoolVal(i.has_designator),
            "designator": z3.StringVal(i.designator),
            "canonical": z3.BoolVal(i.canonical),
            "sme": z3.BoolVal(i.sme),
        }
    )
    zt = View(
        {
            "place": _name(t.place),
            "action": _name(t.action),
            "at": _micros(t.at),
            "value": _amount(t.value),
            "item": item,
            "sender": _zparty(t.sender),
            "recipient": _zparty(t.recipient),
        }
    )
    zf = View(
        {
            "ok": z3.BoolVal(f.ok),
            "lists": _zcoll(
                f.lists,
                lambda lst: View(
                    {
                        "regime": _name(lst.regime),
                        "entries": _zcoll(
                            lst.entries, lambda e: View({"pattern": z3.StringVal(e.pattern)})
                        ),
                    }
                ),
            ),
            "rules": _zcoll(
                f.rules,
                lambda r: View(
                    {
                        "locations": _zset(r.locations),
                        "nationalities": _zset(r.nationalities),
                        "requires_authorized_user": z3.BoolVal(r.requires_authorized_user),
                    }
                ),
            ),
            "licences": _zcoll(
                f.licences,
                lambda lic: View(
                    {
                        "regime": _name(lic.regime),
                        "items": _zcoll(lic.items, z3.StringVal),
                        "organisations": _zset(lic.organisations),
                        "nationalities": _zset(lic.nationalities),
                        "valid_from": _micros(lic.valid_from),
                        "valid_until": _micros(lic.valid_until),
                        "value_ceiling": _amount(lic.value_ceiling),
                        "value_consumed": z3.RealVal(str(lic.value_consumed)),
                    }
                ),
            ),
            "threshold": _amount(f.threshold),
        }
    )
    return zt, zf


def _truth(cond: Any) -> bool:
    value = z3.simplify(cond)
    assert z3.is_true(value) or z3.is_false(value), value
    return bool(z3.is_true(value))


@pytest.mark.parametrize("seed", range(8))
def test_z3_reading_of_the_table_is_what_decide_transfer_runs(seed: int) -> None:
    """On concrete transfers, z3's reading of each table function equals the
    compiled function decide_transfer calls, and the decision matches it."""
    rng = random.Random(seed)
    w = random_world(rng)
    for _ in range(40):
        transfer = random_transfer(rng, w)
        t, f = rules.transfer_view(transfer), rules.facts_view(w.facts)
        zt, zf = _z3_of(t, f)
        for fn, args, zargs in (
            (rules.shape_rules, (t, f), (zt, zf)),
            (rules.debarment_rules, (t,), (zt,)),
            (rules.exemption_rules, (t, f), (zt, zf)),
            (rules.bases, (t, f), (zt, zf)),
        ):
            expected = getattr(rules.COMPILED, fn.__name__)(*args)
            got = {name: _truth(c) for name, c in fn(Z, *zargs).items()}
            assert got == expected, (fn.__name__, transfer)
        for lic, zlic in zip(f.licences, zf.licences, strict=True):
            assert _truth(rules.licence_allows(Z, zlic, zt)) == rules.COMPILED.licence_allows(
                lic, t
            )
            got = {n: _truth(c) for n, c in rules.licence_rules(Z, zlic, zt).items()}
            assert got == rules.COMPILED.licence_rules(lic, t)
        b = rules.COMPILED.bases(t, f)
        d = decide_transfer(transfer, w.facts)
        assert d.allowed == any(b.values())
        if d.allowed:
            first = next(name for name in rules.BASES if b[name])
            assert d.legal_basis == first or (first == rules.LICENCE and d.licence_number)
