"""The rule table: every reason code as a formula, written once.

Each rule group below is a function of an *algebra* ``L`` and three views: the
subject ``s``, the object ``o`` and the environment ``e`` (action, time, world).
The same functions are run three ways: with :class:`SourceAlgebra` they compile,
once at import, into the plain Python functions the engine calls
(:data:`COMPILED`); with :data:`PY` they evaluate directly (explanations and
tests); the proofs in ``tests/decisions/test_proofs.py`` run them with a z3
algebra whose values are symbolic, so what z3 proves is about these formulas, not
a copy of them. Only the ingredients services provide are free in the proofs:
ranks from the level mapper, recognition, the export hook's answer.

Views (attributes every backend provides):

- clearance ``c``: ``status`` (str), ``issuer`` (nation), ``level_known`` (the
  level exists in the issuer's scheme), ``rank`` (the level mapped into the
  originator's scheme and ranked there; -1 when there is no equivalent),
  ``recognised`` (the issuer's clearances count for the originator's information).
- subject ``s``: ``id``, ``nats`` and ``clearances`` (collections), ``projects``,
  ``roles``, ``caveats`` (sets).
- object ``o``: ``originator``, ``rank`` (classification ranked in the
  originator's scheme; -1 unknown), ``relto`` (set), ``relto_wellformed``,
  ``project``, ``cats`` (collection), ``orcon``, ``approved`` (set),
  ``export_flagged``, ``export_ok``.
- environment ``e``: ``action``, ``at``, ``dual_all`` (the originator judges dual
  nationals by *all* nationalities), ``review_keeps`` (nations whose clearances
  still count under review), ``implicit``, ``known_cats`` (sets), ``admissions``
  (collection of ``nation``, ``project``, ``ceil`` (ceiling ranked in the
  originator's scheme, -1 none), ``start``, ``end``).

A request is allowed exactly when no rule fires. How several clearances combine
(see docs/decisions.md): a clearance is a *candidate* when its status and level
are interpretable; ``CLEARANCE_MISSING`` fires when there is none (and none was
uninterpretable, which is ``UNKNOWN_ATTRIBUTE``). Each candidate fails some of
NOT_CURRENT, NOT_RECOGNISED, TOO_LOW; if one fails none, no clearance reason
fires; otherwise the reasons are the failures of the candidate *nearest to
passing*: fewest failures, ties broken by weight NOT_CURRENT < TOO_LOW <
NOT_RECOGNISED (:data:`CLEARANCE_WEIGHTS`). The weights make every failure set
score differently, so the reported set never depends on clearance order.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

from relto.decisions._model import ACTIONS, CLEARANCE_STATUSES, Code
from relto.rulesource import SourceAlgebra, Src, compile_function, source_of

__all__ = [
    "CLEARANCE_CODES",
    "CLEARANCE_WEIGHTS",
    "COMPILED",
    "CURRENT_STATUSES",
    "GROUPS",
    "PY",
    "SECURITY_OFFICER",
    "PyAlgebra",
    "SourceAlgebra",
    "admission_rules",
    "caveat_rules",
    "clearance_rules",
    "compile_group",
    "export_rules",
    "need_to_know_rules",
    "originator_rules",
    "releasable_rules",
    "rules",
]

CURRENT_STATUSES: tuple[str, ...] = ("granted", "interim")
#: Under review counts as current only where the issuing nation keeps access on review.
UNDER_REVIEW = "under_review"
SECURITY_OFFICER = "security_officer"

MISSING = Code.CLEARANCE_MISSING.value
NOT_CURRENT = Code.CLEARANCE_NOT_CURRENT.value
NOT_RECOGNISED = Code.CLEARANCE_NOT_RECOGNISED.value
TOO_LOW = Code.CLEARANCE_TOO_LOW.value
CAVEAT = Code.CAVEAT_NOT_HELD.value
NOT_RELEASABLE = Code.NOT_RELEASABLE.value
NTK = Code.NO_NEED_TO_KNOW.value
NOT_ADMITTED = Code.NATION_NOT_ADMITTED.value
ORCON = Code.ORIGINATOR_CONTROLLED.value
EXPORT = Code.EXPORT_CONTROLLED.value
UNKNOWN = Code.UNKNOWN_ATTRIBUTE.value

CLEARANCE_CODES: tuple[str, ...] = (NOT_CURRENT, NOT_RECOGNISED, TOO_LOW)
#: Each failing check adds 8 + a distinct power of two: fewer failures always
#: score lower, and every failure set has its own score.
CLEARANCE_WEIGHTS: dict[str, int] = {NOT_CURRENT: 9, TOO_LOW: 10, NOT_RECOGNISED: 12}

Rules = dict[str, Any]


class PyAlgebra:
    """The concrete algebra: Python values."""

    true = True
    false = False
    not_ = staticmethod(operator.not_)
    eq = staticmethod(operator.eq)
    lt = staticmethod(operator.lt)
    le = staticmethod(operator.le)

    @staticmethod
    def and_(*xs: Any) -> bool:
        return all(xs)

    @staticmethod
    def or_(*xs: Any) -> bool:
        return any(xs)

    @staticmethod
    def ite(c: Any, a: Any, b: Any) -> Any:
        return a if c else b

    @staticmethod
    def add(*xs: Any) -> Any:
        return sum(xs)

    @staticmethod
    def member(x: Any, s: Any) -> bool:
        return x in s

    @staticmethod
    def lit_in(x: Any, lits: tuple[str, ...]) -> bool:
        return x in lits

    @staticmethod
    def any_(coll: Iterable[Any], fn: Callable[[Any], Any]) -> bool:
        return any(fn(x) for x in coll)

    @staticmethod
    def all_(coll: Iterable[Any], fn: Callable[[Any], Any]) -> bool:
        return all(fn(x) for x in coll)


PY = PyAlgebra()


# -- clearances ---------------------------------------------------------------


def clearance_known(L: Any, c: Any) -> Any:
    return L.and_(L.lit_in(c.status, tuple(sorted(CLEARANCE_STATUSES))), c.level_known)


def clearance_current(L: Any, c: Any, e: Any) -> Any:
    return L.or_(
        L.lit_in(c.status, CURRENT_STATUSES),
        L.and_(L.eq(c.status, UNDER_REVIEW), L.member(c.issuer, e.review_keeps)),
    )


def clearance_failures(L: Any, c: Any, o: Any, e: Any) -> dict[str, Any]:
    """The checks one clearance fails for this object: code -> condition."""
    return {
        NOT_CURRENT: L.not_(clearance_current(L, c, e)),
        NOT_RECOGNISED: L.not_(c.recognised),
        TOO_LOW: L.and_(L.le(0, o.rank), L.lt(c.rank, o.rank)),
    }


def clearance_score(L: Any, fails: dict[str, Any]) -> Any:
    return L.add(*(L.ite(fails[code], CLEARANCE_WEIGHTS[code], 0) for code in CLEARANCE_CODES))


def clearance_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    """CLEARANCE_* and the UNKNOWN_ATTRIBUTE of an uninterpretable clearance or level."""

    def known(c: Any) -> Any:
        return clearance_known(L, c)

    def fails(c: Any) -> dict[str, Any]:
        return clearance_failures(L, c, o, e)

    def score(c: Any) -> Any:
        return clearance_score(L, fails(c))

    passes = L.any_(s.clearances, lambda c: L.and_(known(c), L.eq(score(c), 0)))

    def chosen(c: Any) -> Any:
        return L.and_(
            known(c),
            L.all_(s.clearances, lambda d: L.or_(L.not_(known(d)), L.le(score(c), score(d)))),
        )

    unknown_clearance = L.any_(s.clearances, lambda c: L.not_(known(c)))
    out: Rules = {
        MISSING: L.and_(L.not_(L.any_(s.clearances, known)), L.not_(unknown_clearance)),
    }
    for code in CLEARANCE_CODES:
        out[code] = L.and_(
            L.not_(passes),
            L.any_(s.clearances, lambda c, code=code: L.and_(fails(c)[code], chosen(c))),
        )
    out[UNKNOWN] = L.or_(unknown_clearance, L.lt(o.rank, 0))
    return out


# -- nationality --------------------------------------------------------------


def releasable_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    any_ok = L.any_(s.nats, lambda n: L.member(n, o.relto))
    all_ok = L.and_(
        L.any_(s.nats, lambda n: L.true), L.all_(s.nats, lambda n: L.member(n, o.relto))
    )
    return {
        NOT_RELEASABLE: L.not_(L.ite(e.dual_all, all_ok, any_ok)),
        UNKNOWN: L.not_(o.relto_wellformed),
    }


def nation_admitted(L: Any, n: Any, o: Any, e: Any) -> Any:
    def row_for(a: Any) -> Any:
        return L.and_(L.eq(a.nation, n), L.eq(a.project, o.project))

    explicit = L.any_(e.admissions, row_for)
    covered = L.any_(
        e.admissions,
        lambda a: L.and_(
            row_for(a),
            L.le(a.start, e.at),
            L.lt(e.at, a.end),
            L.or_(L.lt(o.rank, 0), L.le(o.rank, a.ceil)),
        ),
    )
    return L.or_(covered, L.and_(L.member(n, e.implicit), L.not_(explicit)))


def admission_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    any_ok = L.any_(s.nats, lambda n: nation_admitted(L, n, o, e))
    all_ok = L.and_(
        L.any_(s.nats, lambda n: L.true),
        L.all_(s.nats, lambda n: nation_admitted(L, n, o, e)),
    )
    return {NOT_ADMITTED: L.not_(L.ite(e.dual_all, all_ok, any_ok))}


# -- need to know, caveats, originator, export --------------------------------


def need_to_know_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    """Project membership; relabelling also needs the security_officer role."""
    return {
        NTK: L.or_(
            L.not_(L.member(o.project, s.projects)),
            L.and_(L.eq(e.action, "relabel"), L.not_(L.member(SECURITY_OFFICER, s.roles))),
        ),
        UNKNOWN: L.not_(L.lit_in(e.action, tuple(sorted(ACTIONS)))),
    }


def caveat_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    return {
        CAVEAT: L.any_(
            o.cats, lambda k: L.and_(L.member(k, e.known_cats), L.not_(L.member(k, s.caveats)))
        ),
        UNKNOWN: L.any_(o.cats, lambda k: L.not_(L.member(k, e.known_cats))),
    }


def originator_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    """ORCON needs the originator's approval; ORCON objects cannot be shared on;
    only a national of the originator may relabel."""
    return {
        ORCON: L.or_(
            L.and_(o.orcon, L.not_(L.member(s.id, o.approved))),
            L.and_(o.orcon, L.eq(e.action, "share")),
            L.and_(
                L.eq(e.action, "relabel"),
                L.not_(L.any_(s.nats, lambda n: L.eq(n, o.originator))),
            ),
        )
    }


def export_rules(L: Any, s: Any, o: Any, e: Any) -> Rules:
    return {EXPORT: L.and_(o.export_flagged, L.not_(o.export_ok))}


#: The table: (group name, rule function). The engine memoises each group per
#: subject under a key of exactly the object attributes the group reads.
GROUPS: tuple[tuple[str, Callable[[Any, Any, Any, Any], Rules]], ...] = (
    ("clearance", clearance_rules),
    ("releasable", releasable_rules),
    ("admission", admission_rules),
    ("need_to_know", need_to_know_rules),
    ("caveats", caveat_rules),
    ("originator", originator_rules),
    ("export", export_rules),
)


def rules(L: Any, s: Any, o: Any, e: Any) -> dict[str, Any]:
    """Every code -> its firing condition (codes fired by several groups are OR-ed)."""
    out: dict[str, list[Any]] = {}
    for _name, fn in GROUPS:
        for code, cond in fn(L, s, o, e).items():
            out.setdefault(code, []).append(cond)
    return {code: (conds[0] if len(conds) == 1 else L.or_(*conds)) for code, conds in out.items()}


# -- compiling the table to Python -----------------------------------------------


def compile_group(
    fn: Callable[[Any, Any, Any, Any], Rules],
) -> tuple[str, Callable[[Any, Any, Any], dict[str, bool]]]:
    """``fn`` as a Python function of the views (source, function): what the engine runs."""
    L = SourceAlgebra()
    fired = fn(L, Src("s"), Src("o"), Src("e"))
    body = "{" + ", ".join(f"{code!r}: {source_of(cond)}" for code, cond in fired.items()) + "}"
    return compile_function(
        ("s", "o", "e"), body, f"<relto.decisions.rules:{fn.__name__}>", L.consts
    )


#: Every group compiled once at import; the engine calls these.
COMPILED: tuple[Callable[[Any, Any, Any], dict[str, bool]], ...] = tuple(
    compile_group(fn)[1] for _name, fn in GROUPS
)
