"""Facts in, decisions out: the engine's plain, frozen data.

The engine never sees a database row, a SPIF or a vetting record: adapters
(:mod:`relto.decisions.adapters`, the scenario loader) turn those into the facts
below, already resolved for the evaluation time (a clearance's ``status`` is its
status *at* that time). Everything here is immutable so that facts and decisions
can be cached and shared between threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "ACTIONS",
    "CLEARANCE_STATUSES",
    "CODES",
    "Action",
    "Admission",
    "ClearanceFact",
    "Code",
    "Decision",
    "ExportFacts",
    "Obligation",
    "Reason",
    "Resource",
    "Subject",
    "World",
]


class Code(StrEnum):
    """Reason codes. Their string values are the stable wire form."""

    CLEARANCE_MISSING = "CLEARANCE_MISSING"
    CLEARANCE_NOT_CURRENT = "CLEARANCE_NOT_CURRENT"
    CLEARANCE_NOT_RECOGNISED = "CLEARANCE_NOT_RECOGNISED"
    CLEARANCE_TOO_LOW = "CLEARANCE_TOO_LOW"
    CAVEAT_NOT_HELD = "CAVEAT_NOT_HELD"
    NOT_RELEASABLE = "NOT_RELEASABLE"
    NO_NEED_TO_KNOW = "NO_NEED_TO_KNOW"
    NATION_NOT_ADMITTED = "NATION_NOT_ADMITTED"
    ORIGINATOR_CONTROLLED = "ORIGINATOR_CONTROLLED"
    EXPORT_CONTROLLED = "EXPORT_CONTROLLED"
    UNKNOWN_ATTRIBUTE = "UNKNOWN_ATTRIBUTE"


#: Every reason code, in the documented output order (alphabetical by value).
CODES: tuple[str, ...] = tuple(sorted(c.value for c in Code))


class Action(StrEnum):
    """What a subject wants to do with an object."""

    READ = "read"
    DOWNLOAD = "download"
    SHARE = "share"
    RELABEL = "relabel"


ACTIONS: frozenset[str] = frozenset(a.value for a in Action)

#: Clearance statuses the engine can interpret (those of relto.vetting's lifecycle).
CLEARANCE_STATUSES: frozenset[str] = frozenset(
    {
        "sponsored",
        "investigating",
        "adjudicating",
        "interim",
        "granted",
        "suspended",
        "under_review",
        "revoked",
        "denied",
        "expired",
        "lapsed",
    }
)


@dataclass(frozen=True, slots=True)
class ClearanceFact:
    """One clearance as it stands at the evaluation time.

    ``level`` is a classification name in the *issuing nation's* scheme (the
    level the clearance grants access to). ``status`` is one of
    :data:`CLEARANCE_STATUSES`; ``cause`` is a sentence fragment saying why it has
    that status ("was revoked on 2026-03-01"), used in explanations.
    """

    id: str
    nation: str
    level: str
    status: str
    cause: str = ""


@dataclass(frozen=True, slots=True)
class Subject:
    """A person as the engine sees them at one time."""

    id: str
    nationalities: frozenset[str]
    clearances: tuple[ClearanceFact, ...] = ()
    caveats: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ExportFacts:
    """Placeholder for the export-control issue: the object is export controlled.

    ``regime`` and ``classification`` are carried for explanations; the check
    itself is an :class:`~relto.decisions.ExportCheck` hook on the engine. With
    no hook installed an export-controlled object is always denied.
    """

    regime: str
    classification: str


@dataclass(frozen=True, slots=True)
class Resource:
    """An object (document, container) as the engine sees it.

    ``classification`` is a level in the *originator's* scheme; ``rel_to`` holds
    ISO 3166 trigraphs (tetragraphs such as FVEY already expanded);
    ``categories`` are restrictive categories and caveats (ATOMAL, SI, ...);
    ``orcon`` marks originator control, with ``orcon_approved`` the person ids
    the originator approved.
    """

    id: str
    originator: str
    classification: str
    rel_to: frozenset[str]
    project: str | None = None
    categories: frozenset[str] = frozenset()
    orcon: bool = False
    orcon_approved: frozenset[str] = frozenset()
    export: ExportFacts | None = None
    #: Set when the object's marking could not be read: every request is then
    #: denied with UNKNOWN_ATTRIBUTE alone (no rule can be judged against it).
    marking_error: str | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """``nation`` takes part in ``project`` up to ``ceiling`` during [start, end).

    ``ceiling`` is a level on the partnership's common scale
    (:data:`relto.decisions.COMMON_SCHEME`); ``end`` ``None`` is open-ended.
    """

    nation: str
    project: str
    ceiling: str
    start: datetime
    end: datetime | None = None


def _frozen_map(m: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class World:
    """Partnership-wide facts a decision depends on.

    - ``admissions``: which nation takes part in which project, to which ceiling.
    - ``implicit_members``: nations treated as admitted at every level to any
      project for which they have *no* admission at all (scenario convenience;
      production passes an empty set, so nothing is implied).
    - ``dual_national_rule``: per originator nation, ``"any"`` (default) or
      ``"all"``: how a person with several nationalities is judged for
      Releasable To and admissions.
    - ``review_keeps_access``: nations whose clearances still count while under review
      (every other nation suspends access during review: fail closed).
    - ``known_categories``: restrictive categories the engine can interpret.
    - ``policy_version``: identifies the rules and data that decided.
    """

    admissions: tuple[Admission, ...] = ()
    implicit_members: frozenset[str] = frozenset()
    dual_national_rule: Mapping[str, str] = field(default_factory=_frozen_map)
    review_keeps_access: frozenset[str] = frozenset()
    known_categories: frozenset[str] = frozenset()
    policy_version: str = "unversioned"


@dataclass(frozen=True, slots=True)
class Reason:
    """One failing rule: a stable ``code`` and a sentence a person understands."""

    code: str
    sentence: str


@dataclass(frozen=True, slots=True)
class Obligation:
    """Something the caller must do when acting on the decision."""

    kind: str  # "log" | "fingerprint"
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this subject do this to this object, now, and why (not)?".

    ``reasons`` holds every failing rule, one per code, in :data:`CODES` order;
    ``rule`` names what decided (``"permit:<action>"`` or the first failing
    code); ``obligations`` apply whatever the outcome (a denial is logged too).
    ``legal_basis`` is set on an allowed decision on an export-controlled object
    whose export check names one (``ITAR 126.7``, ``licence TAA TAA-0001``, ``not
    controlled``), else ``None``.
    """

    allowed: bool
    reasons: tuple[Reason, ...]
    rule: str
    policy_version: str
    obligations: tuple[Obligation, ...]
    legal_basis: str | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def explain(self) -> str:
        if self.allowed:
            return "allowed"
        return "denied: " + "; ".join(f"{r.code}: {r.sentence}" for r in self.reasons)


#: Empty-mapping default reused by callers.
EMPTY_RULES: Mapping[str, str] = MappingProxyType({})
