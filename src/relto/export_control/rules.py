"""The export rule table: every condition of :func:`decide_transfer` as a formula.

Each function below takes an *algebra* ``L`` and the things a transfer is judged
on, and builds its conditions with ``L``'s operations only. The same functions run
two ways: with :class:`SourceAlgebra` they compile, once at import, into the plain
Python functions ``decide_transfer`` calls (:data:`COMPILED`); and in
``tests/export_control/test_proofs.py`` with a z3 algebra on symbolic values, so
what z3 proves is about these formulas, not a copy of them. ``decide.py`` adds
only the sentences, and picks the basis to report in :data:`BASES` order.

What the table reads. :func:`transfer_view` and :func:`facts_view` build the two
views; parties, licences, excluded lists, authorized-user statuses and §126.18
rules are the model's own objects (the proofs give symbolic ones the same
attributes):

- transfer ``t``: ``place``, ``action``, ``at``, ``value`` (optional), ``item``,
  and ``sender`` and ``recipient``, each a :class:`Party` (``kind``,
  ``location``, ``nationalities``, ``organisation`` (optional),
  ``ddtc_registered``, ``debarred``, ``government_body_of`` (optional),
  ``authorized``).
- ``t.item``: ``present`` (a classification exists), ``kind_known``,
  ``controlled``, ``regime`` and ``regime_known``, ``has_designator`` and
  ``designator`` ("" when there is none), ``canonical`` (an ITAR item's
  designator is written as a USML category I to XXI and paragraphs such as
  ``(a)(1)``, the form excluded-list patterns are matched in), ``sme``.
- facts ``f``: ``ok`` (they are :class:`ExportFacts`), ``lists``, ``rules`` (the
  §126.18 rules), ``licences``, ``threshold`` (the ITAR §123.15 amount, optional).

A rule tests an optional value with ``L.some`` before it reads it; the compiled
code short-circuits, so ``None`` is never compared.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from relto.export_control.model import (
    AUKUS_MEMBERS,
    Action,
    DualNationalRule,
    ExcludedList,
    ExportFacts,
    ItemClassification,
    ItemKind,
    Licence,
    Party,
    PartyKind,
    Regime,
    Transfer,
    pattern_matches,
)
from relto.rulesource import SourceAlgebra, Src, compile_function, source_of

__all__ = [
    "BASES",
    "CODE_OF",
    "COMPILED",
    "ITAR_126_7",
    "LICENCE",
    "NOT_CONTROLLED",
    "SIGNATURES",
    "SourceAlgebra",
    "authorized_user",
    "bases",
    "canonical",
    "canonical_usml_pattern",
    "compile_rule",
    "debarment_rules",
    "eligible_126_7",
    "exemption_rules",
    "facts_view",
    "itar_126_7_rules",
    "licence_allows",
    "licence_candidate",
    "licence_nationality_uncovered",
    "licence_rules",
    "nationality_uncovered_126_18",
    "on_excluded_list",
    "shape_rules",
    "transfer_view",
]

Rules = dict[str, Any]

ITAR = Regime.ITAR.value
AUKUS: tuple[str, ...] = tuple(sorted(AUKUS_MEMBERS))
MANUFACTURE = Action.MANUFACTURE.value
PERSON = PartyKind.PERSON.value

# -- the legal bases, in the order decide_transfer prefers them ---------------------

NOT_CONTROLLED = "not controlled"
ITAR_126_7 = "ITAR 126.7"
LICENCE = "licence"
BASES: tuple[str, ...] = (NOT_CONTROLLED, ITAR_126_7, LICENCE)

# -- condition names; each is its reason code unless CODE_OF says otherwise ---------

FACTS_MALFORMED = "facts_malformed"
CLASSIFICATION_MISSING = "classification_missing"
CLASSIFICATION_MALFORMED = "classification_malformed"
REGIME_UNKNOWN = "regime_unknown"
CLASSIFICATION_INCOMPLETE = "classification_incomplete"
SENDER_DEBARRED = "sender_debarred"
RECIPIENT_DEBARRED = "recipient_debarred"
PLACE_OUTSIDE = "place_outside_aukus_territory"
SENDER_NOT_ELIGIBLE = "sender_not_eligible"
RECIPIENT_NOT_ELIGIBLE = "recipient_not_authorized_user"
LIST_NOT_LOADED = "excluded_list_not_loaded"
ON_LIST = "item_on_excluded_list"
NOT_CANONICAL = "designator_not_canonical"
THRESHOLD_NOT_LOADED = "value_threshold_not_loaded"
OVER_THRESHOLD = "value_over_123_15"
SME_MANUFACTURE = "sme_manufacture_abroad"
DUAL_NATIONAL = "dual_national_not_covered"
NATIONALITY_UNKNOWN = "nationality_unknown"
NO_LICENCE_FREE_BASIS = "no_licence_free_basis"
LICENCE_EXPIRED = "licence_expired"
LICENCE_NOT_YET_VALID = "licence_not_yet_valid"
CEILING_USED = "licence_value_ceiling_reached"
CEILING_EXCEEDED = "licence_value_left_exceeded"
SENDER_ORG = "sender_organisation_not_covered"
RECIPIENT_ORG = "recipient_organisation_not_covered"
LICENCE_NATIONALITY = "recipient_nationality_not_covered"
NO_COVERING_LICENCE = "no_covering_licence"

#: Conditions that report under another condition's code.
CODE_OF: dict[str, str] = {CEILING_EXCEEDED: CEILING_USED}


# -- shape: what must hold before anything else is read ------------------------------


def shape_rules(L: Any, t: Any, f: Any) -> Rules:
    """Fail closed on unreadable facts and a missing, malformed or incomplete item."""
    i = t.item
    readable = L.and_(i.present, i.kind_known)
    return {
        FACTS_MALFORMED: L.not_(f.ok),
        CLASSIFICATION_MISSING: L.not_(i.present),
        CLASSIFICATION_MALFORMED: L.and_(i.present, L.not_(i.kind_known)),
        REGIME_UNKNOWN: L.and_(readable, i.controlled, L.not_(i.regime_known)),
        CLASSIFICATION_INCOMPLETE: L.and_(
            readable, i.controlled, i.regime_known, L.not_(i.has_designator)
        ),
    }


def debarment_rules(L: Any, t: Any) -> Rules:
    return {SENDER_DEBARRED: t.sender.debarred, RECIPIENT_DEBARRED: t.recipient.debarred}


# -- ITAR §126.7 ----------------------------------------------------------------------


def authorized_user(L: Any, p: Any, at: Any) -> Any:
    """An ITAR authorized-user status of ``p`` valid at ``at`` (half-open window)."""
    return L.any_(
        p.authorized,
        lambda s: L.and_(L.eq(s.regime, ITAR), L.le(s.valid_from, at), L.lt(at, s.valid_until)),
    )


def eligible_126_7(L: Any, p: Any, at: Any) -> Any:
    """§126.7(b)(2)(i)-(iii)."""
    gov = p.government_body_of
    return L.or_(
        p.ddtc_registered,
        L.and_(L.some(gov), L.lit_in(gov, AUKUS)),
        authorized_user(L, p, at),
    )


def on_excluded_list(L: Any, lst: Any, designator: Any) -> Any:
    """An ITAR excluded list with an entry matching ``designator`` (§126.7(b)(3))."""
    return L.and_(
        L.eq(lst.regime, ITAR), L.any_(lst.entries, lambda e: L.matches(e.pattern, designator))
    )


def nationality_uncovered_126_18(L: Any, n: Any, t: Any, f: Any) -> Any:
    """Recipient nationality ``n`` is beyond AUS/GBR/USA and no loaded §126.18 rule
    covers it for where the recipient is."""
    r = t.recipient
    return L.and_(
        L.not_(L.lit_in(n, AUKUS)),
        L.not_(
            L.any_(
                f.rules,
                lambda rule: L.and_(
                    L.member(n, rule.nationalities),
                    L.member(r.location, rule.locations),
                    L.or_(
                        L.not_(rule.requires_authorized_user),
                        authorized_user(L, r, t.at),
                    ),
                ),
            )
        ),
    )


def _no_nationality(L: Any, r: Any) -> Any:
    return L.and_(L.eq(r.kind, PERSON), L.not_(L.any_(r.nationalities, lambda n: L.true)))


def itar_126_7_rules(L: Any, t: Any, f: Any) -> Rules:
    """Every unmet condition of §126.7(b)(1)-(4) and relto's §126.18 reading."""
    r, value = t.recipient, t.value
    return {
        PLACE_OUTSIDE: L.not_(L.lit_in(t.place, AUKUS)),
        SENDER_NOT_ELIGIBLE: L.not_(eligible_126_7(L, t.sender, t.at)),
        RECIPIENT_NOT_ELIGIBLE: L.not_(eligible_126_7(L, r, t.at)),
        LIST_NOT_LOADED: L.not_(L.any_(f.lists, lambda lst: L.eq(lst.regime, ITAR))),
        ON_LIST: L.any_(f.lists, lambda lst: on_excluded_list(L, lst, t.item.designator)),
        NOT_CANONICAL: L.not_(t.item.canonical),
        THRESHOLD_NOT_LOADED: L.and_(L.some(value), L.not_(L.some(f.threshold))),
        OVER_THRESHOLD: L.and_(L.some(value), L.some(f.threshold), L.lt(f.threshold, value)),
        SME_MANUFACTURE: L.and_(t.item.sme, L.eq(t.action, MANUFACTURE)),
        DUAL_NATIONAL: L.and_(
            L.eq(r.kind, PERSON),
            L.any_(r.nationalities, lambda n: nationality_uncovered_126_18(L, n, t, f)),
        ),
        NATIONALITY_UNKNOWN: _no_nationality(L, r),
    }


def exemption_rules(L: Any, t: Any, f: Any) -> Rules:
    """Why no licence-free basis applies: the §126.7 conditions for an ITAR item;
    for any other regime, that relto implements none."""
    itar = L.eq(t.item.regime, ITAR)
    out = {name: L.and_(itar, cond) for name, cond in itar_126_7_rules(L, t, f).items()}
    out[NO_LICENCE_FREE_BASIS] = L.not_(itar)
    return out


# -- licences -------------------------------------------------------------------------


def licence_candidate(L: Any, lic: Any, t: Any) -> Any:
    """A licence of the item's regime with a pattern covering its designator."""
    return L.and_(
        L.eq(lic.regime, t.item.regime),
        L.any_(lic.items, lambda p: L.matches(p, t.item.designator)),
    )


def _names(L: Any, p: Any, lic: Any) -> Any:
    org = p.organisation
    return L.and_(L.some(org), L.member(org, lic.organisations))


def licence_nationality_uncovered(L: Any, n: Any, lic: Any) -> Any:
    return L.not_(L.member(n, lic.nationalities))


def licence_rules(L: Any, lic: Any, t: Any) -> Rules:
    """Every condition a covering licence fails for this transfer."""
    r, value, ceiling = t.recipient, t.value, lic.value_ceiling
    expired = L.le(lic.valid_until, t.at)
    return {
        LICENCE_EXPIRED: expired,
        LICENCE_NOT_YET_VALID: L.and_(L.not_(expired), L.lt(t.at, lic.valid_from)),
        CEILING_USED: L.and_(L.some(ceiling), L.le(ceiling, lic.value_consumed)),
        CEILING_EXCEEDED: L.and_(
            L.some(ceiling),
            L.lt(lic.value_consumed, ceiling),
            L.some(value),
            L.lt(ceiling, L.add(lic.value_consumed, value)),
        ),
        SENDER_ORG: L.not_(_names(L, t.sender, lic)),
        RECIPIENT_ORG: L.not_(_names(L, r, lic)),
        NATIONALITY_UNKNOWN: _no_nationality(L, r),
        LICENCE_NATIONALITY: L.and_(
            L.eq(r.kind, PERSON),
            L.any_(r.nationalities, lambda n: licence_nationality_uncovered(L, n, lic)),
        ),
    }


def licence_allows(L: Any, lic: Any, t: Any) -> Any:
    return L.and_(licence_candidate(L, lic, t), L.not_(L.or_(*licence_rules(L, lic, t).values())))


# -- the decision ---------------------------------------------------------------------


def bases(L: Any, t: Any, f: Any) -> Rules:
    """Each legal basis -> when it applies. A transfer is allowed exactly when one
    does; ``decide_transfer`` reports the first in :data:`BASES` order and, for
    ``licence``, the first loaded licence for which :func:`licence_allows` holds."""
    readable = L.not_(L.or_(*shape_rules(L, t, f).values()))
    controlled = L.and_(readable, t.item.controlled)
    clear = L.not_(L.or_(*debarment_rules(L, t).values()))
    return {
        NOT_CONTROLLED: L.and_(readable, L.not_(t.item.controlled)),
        ITAR_126_7: L.and_(controlled, clear, L.not_(L.or_(*exemption_rules(L, t, f).values()))),
        LICENCE: L.and_(
            controlled, clear, L.any_(f.licences, lambda lic: licence_allows(L, lic, t))
        ),
    }


# -- compiling the table to Python (relto.rulesource) --------------------------------


def compile_rule(fn: Callable[..., Any], *params: str) -> tuple[str, Callable[..., Any]]:
    """``fn(L, *params)`` as a plain Python function of ``params``: (source, function).
    A rule returning a dict of conditions compiles to one returning a dict of bools."""
    L = SourceAlgebra()
    out = fn(L, *(Src(p) for p in params))
    if isinstance(out, dict):
        body = "{" + ", ".join(f"{name!r}: bool({source_of(c)})" for name, c in out.items()) + "}"
    else:
        body = f"bool({source_of(out)})"
    namespace = {"_matches": pattern_matches, **L.consts}
    return compile_function(params, body, f"<relto.export_control.rules:{fn.__name__}>", namespace)


#: Each table function decide_transfer calls, with the names of its arguments.
SIGNATURES: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "shape_rules": (shape_rules, ("t", "f")),
    "debarment_rules": (debarment_rules, ("t",)),
    "exemption_rules": (exemption_rules, ("t", "f")),
    "bases": (bases, ("t", "f")),
    "on_excluded_list": (on_excluded_list, ("lst", "designator")),
    "nationality_uncovered_126_18": (nationality_uncovered_126_18, ("n", "t", "f")),
    "licence_candidate": (licence_candidate, ("lic", "t")),
    "licence_rules": (licence_rules, ("lic", "t")),
    "licence_allows": (licence_allows, ("lic", "t")),
    "licence_nationality_uncovered": (licence_nationality_uncovered, ("n", "lic")),
}


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """The table as the Python functions ``decide_transfer`` calls."""

    shape_rules: Callable[[TransferView, FactsView], dict[str, bool]]
    debarment_rules: Callable[[TransferView], dict[str, bool]]
    exemption_rules: Callable[[TransferView, FactsView], dict[str, bool]]
    bases: Callable[[TransferView, FactsView], dict[str, bool]]
    on_excluded_list: Callable[[ExcludedList, str], bool]
    nationality_uncovered_126_18: Callable[[str, TransferView, FactsView], bool]
    licence_candidate: Callable[[Licence, TransferView], bool]
    licence_rules: Callable[[Licence, TransferView], dict[str, bool]]
    licence_allows: Callable[[Licence, TransferView], bool]
    licence_nationality_uncovered: Callable[[str, Licence], bool]


# -- the views ----------------------------------------------------------------------


class ItemView(NamedTuple):
    present: bool
    kind_known: bool
    controlled: bool
    regime: object
    regime_known: bool
    has_designator: bool
    designator: str
    canonical: bool
    sme: bool


class TransferView(NamedTuple):
    place: str
    action: object
    at: datetime
    value: Decimal | None
    item: ItemView
    sender: Party
    recipient: Party


class FactsView(NamedTuple):
    ok: bool
    lists: tuple[ExcludedList, ...]
    rules: tuple[DualNationalRule, ...]
    licences: tuple[Licence, ...]
    threshold: Decimal | None


_NO_ITEM = ItemView(False, False, False, None, False, False, "", False, False)
_NO_FACTS = FactsView(False, (), (), (), None)


#: USML Categories I to XXI (22 CFR §121.1).
_USML_CATEGORIES = frozenset(
    {"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII"}
    | {"XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI"}
)
_USML_PARAGRAPHS = re.compile(r"(?:\([a-z0-9]+\))*")


_USML_PATTERN = re.compile(r"USML (?P<cat>[IVX]+)(?P<par>(?:\([a-z0-9]+\))*)")


def canonical_usml_pattern(pattern: str) -> bool:
    """An ITAR list or licence pattern written the canonical way (``USML IV``,
    ``USML XI(a)(1)``): the only spelling that matches canonical designators."""
    m = _USML_PATTERN.fullmatch(pattern)
    return m is not None and m.group("cat") in _USML_CATEGORIES


def canonical(item: ItemClassification) -> bool:
    """Whether an ITAR item's designator is spelt the canonical way."""
    return _canonical(item)


def _canonical(item: ItemClassification) -> bool:
    """``USML XI(a)(1)`` is; ``USML xi(a)``, ``USML XI (a)`` and ``USML XIa`` are not:
    no pattern written the canonical way matches them, so an excluded list would
    not see them."""
    return (
        item.usml_category in _USML_CATEGORIES
        and _USML_PARAGRAPHS.fullmatch(item.usml_paragraph or "") is not None
    )


def _item_view(item: ItemClassification | None) -> ItemView:
    if item is None:
        return _NO_ITEM
    designator = item.designator
    return ItemView(
        present=True,
        kind_known=isinstance(item.kind, ItemKind),
        controlled=bool(item.controlled),
        regime=item.regime,
        regime_known=isinstance(item.regime, Regime),
        has_designator=designator is not None,
        designator=designator or "",
        canonical=item.regime is Regime.ITAR and _canonical(item),
        sme=bool(item.sme),
    )


def transfer_view(t: Transfer) -> TransferView:
    return TransferView(t.place, t.action, t.at, t.value, _item_view(t.item), t.sender, t.recipient)


def facts_view(facts: object) -> FactsView:
    """``ok`` is False (and nothing else is read) unless ``facts`` is ExportFacts."""
    if not isinstance(facts, ExportFacts):
        return _NO_FACTS
    return FactsView(
        ok=True,
        lists=facts.excluded_lists,
        rules=facts.dual_national_rules,
        licences=facts.licences,
        threshold=facts.value_thresholds.get(Regime.ITAR),
    )


#: Every table function compiled once at import; decide_transfer calls these.
COMPILED = CompiledRules(
    **{name: compile_rule(fn, *params)[1] for name, (fn, params) in SIGNATURES.items()}
)
