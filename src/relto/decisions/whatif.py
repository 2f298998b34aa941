"""What-if analysis: who would gain or lose access under a hypothetical change.

A :class:`Population` is everything a decision needs for a set of people and
objects at one time. :func:`what_if` applies changes to a *copy* (facts are
frozen; nothing is written anywhere), decides every (person, object) pair before
and after with the batch path, and reports the pairs that gain and lose access,
with counts per nation (a dual national counts once under each nationality) and
per project.

Change syntax for the command line (:func:`parse_change`)::

    admit:<NATION>:<project>:<CEILING>[:<from YYYY-MM-DD>[:<until YYYY-MM-DD>]]
    revoke:<clearance-id>          the clearance is revoked at the analysis time
    expire:<clearance-id>          the clearance is expired at the analysis time
    end:<NATION>:<project>         the nation's admission in force ends at the analysis time
    rel-to:<object-id>:<NATION>[,<NATION>...]
    set-rel-to:<object-id>:[<NATION>[,<NATION>...]]   Releasable To becomes exactly
                                   these nations (and the originator), as a relabel
    recognise:<ISSUER>:<INFO-NATION>   an agreement between the two is in force

Changes to export facts (the population needs an export check, i.e. a scenario
with export data; see ``docs/export_control.md``)::

    licence-expire:<number>        the licence ends at the analysis time (one not yet
                                   valid is withdrawn; an ended one stays as it was)
    authorize:<party-id>:<REGIME>[:<identifier>]   (also spelt authorise)
                                   the party holds an authorized-user status under
                                   REGIME from the analysis time for 100 years
                                   (identifier ``what-if`` unless given). On an
                                   organisation, every recorded person whose
                                   organisation it is gets the status too (ADR 0152)
    exclude:<REGIME>:<pattern>     the pattern (``USML XI(a)``, ``ECCN 3A001``,
                                   ``DSGL ML11``) is on a what-if excluded list of
                                   REGIME; a list of REGIME must be loaded already

REGIME is one of ``ITAR``, ``EAR``, ``AUS_DSGL``, ``UK_STRATEGIC``. The licence
number and the pattern are the rest of the argument, colons included.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Union

from relto.decisions._model import Admission, Resource, Subject, World
from relto.decisions.engine import Engine
from relto.decisions.errors import InvalidChange
from relto.decisions.export_hook import ExportControlCheck
from relto.decisions.protocols import COMMON_SCHEME, ExportCheck, LevelMapper, Recognition
from relto.export_control import (
    AuthorizedUserStatus,
    ExcludedEntry,
    ExcludedList,
    Party,
    PartyKind,
    Regime,
)

__all__ = [
    "AddRelTo",
    "Admit",
    "Authorize",
    "Change",
    "EndAdmission",
    "Exclude",
    "ExpireClearance",
    "ExpireLicence",
    "Population",
    "Recognise",
    "RevokeClearance",
    "SetRelTo",
    "WhatIfResult",
    "apply_change",
    "parse_change",
    "what_if",
]

_NATION = re.compile(r"^[A-Z]{3}$")
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
#: Licence numbers, party ids and patterns are the officer's free text: any
#: printable characters (a party id has no colon: it is a field separator).
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
MAX_CHANGES = 64
#: How long a hypothetical authorized-user status lasts. The analysis decides at
#: one time only, so any window that holds it would do; 100 years reads as "from
#: now on" in the denial sentences and never ends inside an analysis.
AUTHORIZE_FOR = timedelta(days=36525)
#: The name, version and source of the excluded list a what-if entry goes on.
WHAT_IF = "what-if"
#: How each regime's designators start (``ItemClassification.designator``), with
#: an example pattern for the error message.
_DESIGNATOR_PREFIX = {
    Regime.ITAR: ("USML ", "USML XI(a)"),
    Regime.EAR: ("ECCN ", "ECCN 3A001"),
    Regime.AUS_DSGL: ("DSGL ", "DSGL ML11"),
    Regime.UK_STRATEGIC: ("DSGL ", "DSGL ML11"),
}


@dataclass(frozen=True)
class Population:
    """People and objects as facts at ``at``, with the world and services."""

    subjects: tuple[Subject, ...]
    objects: tuple[Resource, ...]
    world: World
    mapper: LevelMapper
    recognition: Recognition
    at: datetime
    export_check: ExportCheck | None = None

    def engine(self) -> Engine:
        return Engine(self.world, self.mapper, self.recognition, self.export_check)


@dataclass(frozen=True)
class Admit:
    nation: str
    project: str
    ceiling: str
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class EndAdmission:
    """The admission of ``nation`` to ``project`` in force at the analysis time ends
    then (one not yet started is withdrawn)."""

    nation: str
    project: str


@dataclass(frozen=True)
class RevokeClearance:
    clearance_id: str


@dataclass(frozen=True)
class ExpireClearance:
    clearance_id: str


@dataclass(frozen=True)
class AddRelTo:
    object_id: str
    nations: tuple[str, ...]


@dataclass(frozen=True)
class SetRelTo:
    """Releasable To becomes ``nations`` plus the originator (a relabel)."""

    object_id: str
    nations: tuple[str, ...]


@dataclass(frozen=True)
class Recognise:
    issuer: str
    info_nation: str


@dataclass(frozen=True)
class ExpireLicence:
    """The licence numbered ``number`` ends at the analysis time."""

    number: str


@dataclass(frozen=True)
class Authorize:
    """``party`` becomes an authorized user under ``regime`` from the analysis time.

    On an organisation, every recorded person whose organisation it is gets the
    same status (a what-if-local expansion, ADR 0152)."""

    party: str
    regime: Regime
    identifier: str = WHAT_IF


@dataclass(frozen=True)
class Exclude:
    """``pattern`` is added to the excluded technology list of ``regime``."""

    regime: Regime
    pattern: str


Change = Union[  # noqa: UP007
    Admit,
    EndAdmission,
    RevokeClearance,
    ExpireClearance,
    AddRelTo,
    SetRelTo,
    Recognise,
    ExpireLicence,
    Authorize,
    Exclude,
]


class _OverlayRecognition:
    """Recognition plus hypothetical agreements (always in force)."""

    def __init__(self, base: Recognition, pairs: Iterable[frozenset[str]]) -> None:
        self.base = base
        self.pairs = frozenset(pairs)

    def recognises(self, issuer_nation: str, info_nation: str, at: datetime) -> bool:
        if frozenset((issuer_nation, info_nation)) in self.pairs:
            return True
        return self.base.recognises(issuer_nation, info_nation, at)


@dataclass(frozen=True)
class WhatIfResult:
    gained: tuple[tuple[str, str], ...]
    lost: tuple[tuple[str, str], ...]
    gained_by_nation: Mapping[str, int] = field(default_factory=dict)
    gained_by_project: Mapping[str, int] = field(default_factory=dict)
    lost_by_nation: Mapping[str, int] = field(default_factory=dict)
    lost_by_project: Mapping[str, int] = field(default_factory=dict)


def _set_status(pop: Population, clearance_id: str, status: str, cause: str) -> Population:
    found = False
    subjects = []
    for s in pop.subjects:
        if any(c.id == clearance_id for c in s.clearances):
            found = True
            cl = tuple(
                replace(c, status=status, cause=cause) if c.id == clearance_id else c
                for c in s.clearances
            )
            s = replace(s, clearances=cl)
        subjects.append(s)
    if not found:
        raise InvalidChange(f"no clearance {clearance_id[:60]!r} in this population")
    return replace(pop, subjects=tuple(subjects))


def _end_admission(pop: Population, change: EndAdmission) -> Population:
    kept: list[Admission] = []
    found = False
    for a in pop.world.admissions:
        if a.nation != change.nation or a.project != change.project:
            kept.append(a)
        elif a.end is not None and a.end <= pop.at:
            kept.append(a)  # over already: nothing to end
        elif a.start > pop.at:
            found = True  # not started yet: withdrawn
        else:
            found = True
            kept.append(replace(a, end=pop.at))
    if not found:
        raise InvalidChange(f"{change.nation} holds no admission to {change.project[:60]!r} to end")
    return replace(pop, world=replace(pop.world, admissions=tuple(kept)))


def _export_check(pop: Population) -> ExportControlCheck:
    if not isinstance(pop.export_check, ExportControlCheck):
        raise InvalidChange("the scenario has no export facts to change")
    return pop.export_check


def _with_check(pop: Population, check: ExportControlCheck) -> Population:
    return replace(pop, export_check=check)


def _expire_licence(pop: Population, change: ExpireLicence) -> Population:
    check = _export_check(pop)
    licences = check.facts.licences
    if not any(lic.number == change.number for lic in licences):
        raise InvalidChange(f"no licence {change.number[:60]!r} in the export facts")
    ended = tuple(
        # never lengthened; one not yet valid gets an empty window (withdrawn)
        replace(lic, valid_until=max(lic.valid_from, min(lic.valid_until, pop.at)))
        if lic.number == change.number
        else lic
        for lic in licences
    )
    return _with_check(pop, replace(check, facts=replace(check.facts, licences=ended)))


def _authorize(pop: Population, change: Authorize) -> Population:
    check = _export_check(pop)
    status = AuthorizedUserStatus(change.regime, change.identifier, pop.at, pop.at + AUTHORIZE_FOR)
    named = check.parties.get(change.party)
    people = [
        p
        for p in check.parties.values()
        if p.kind is PartyKind.PERSON and p.organisation_id == change.party
    ]
    if named is not None and named.kind is PartyKind.PERSON:
        people = []  # a person's status is their own
    if named is None and not people:
        raise InvalidChange(
            f"no export party or organisation {change.party[:60]!r} in the scenario"
        )
    touched: dict[str, Party] = {}
    for p in ([named] if named is not None else []) + people:
        touched[p.id] = replace(p, authorized=(*p.authorized, status))
    parties = {pid: touched.get(pid, p) for pid, p in check.parties.items()}
    return _with_check(pop, replace(check, parties=parties))


def _exclude(pop: Population, change: Exclude) -> Population:
    check = _export_check(pop)
    lists = check.facts.excluded_lists
    if not any(x.regime is change.regime for x in lists):
        # A what-if list alone would stand in for the whole official list and let
        # every item not on it pass the check that fails closed without a list.
        raise InvalidChange(
            f"no {change.regime} excluded list is loaded; load the officer's list "
            "before asking what adding an entry would do"
        )
    entry = ExcludedEntry(change.pattern, WHAT_IF)

    def ours(x: ExcludedList) -> bool:
        return x.regime is change.regime and x.name == WHAT_IF and x.source == WHAT_IF

    if any(ours(x) for x in lists):
        new = tuple(replace(x, entries=(*x.entries, entry)) if ours(x) else x for x in lists)
    else:
        new = (*lists, ExcludedList(change.regime, WHAT_IF, WHAT_IF, WHAT_IF, (entry,)))
    return _with_check(pop, replace(check, facts=replace(check.facts, excluded_lists=new)))


def apply_change(pop: Population, change: Change) -> Population:
    """A new population with ``change`` applied; ``pop`` is untouched."""
    if isinstance(change, Admit):
        if pop.mapper.rank(COMMON_SCHEME, change.ceiling) is None:
            raise InvalidChange(
                f"{change.ceiling[:40]!r} is not a level of the partnership's common scale"
            )
        adm = Admission(
            change.nation, change.project, change.ceiling, change.start or pop.at, change.end
        )
        world = replace(pop.world, admissions=(*pop.world.admissions, adm))
        return replace(pop, world=world)
    if isinstance(change, EndAdmission):
        return _end_admission(pop, change)
    if isinstance(change, RevokeClearance):
        return _set_status(pop, change.clearance_id, "revoked", "hypothetical revocation")
    if isinstance(change, ExpireClearance):
        return _set_status(pop, change.clearance_id, "expired", "hypothetical expiry")
    if isinstance(change, AddRelTo):
        if not any(o.id == change.object_id for o in pop.objects):
            raise InvalidChange(f"no object {change.object_id[:60]!r} in this population")
        objects = tuple(
            replace(o, rel_to=o.rel_to | frozenset(change.nations))
            if o.id == change.object_id
            else o
            for o in pop.objects
        )
        return replace(pop, objects=objects)
    if isinstance(change, SetRelTo):
        if not any(o.id == change.object_id for o in pop.objects):
            raise InvalidChange(f"no object {change.object_id[:60]!r} in this population")
        objects = tuple(
            replace(o, rel_to=frozenset({o.originator, *change.nations}))
            if o.id == change.object_id
            else o
            for o in pop.objects
        )
        return replace(pop, objects=objects)
    if isinstance(change, Recognise):
        pair = frozenset((change.issuer, change.info_nation))
        return replace(pop, recognition=_OverlayRecognition(pop.recognition, [pair]))
    if isinstance(change, ExpireLicence):
        return _expire_licence(pop, change)
    if isinstance(change, Authorize):
        return _authorize(pop, change)
    if isinstance(change, Exclude):
        return _exclude(pop, change)
    raise TypeError(f"not a what-if change: {type(change).__name__}")


def _allowed(pop: Population, action: str) -> set[tuple[str, str]]:
    engine = pop.engine()
    out: set[tuple[str, str]] = set()
    for s in pop.subjects:
        for o in engine.readable(s, pop.objects, at=pop.at, action=action):
            out.add((s.id, o.id))
    return out


def what_if(pop: Population, changes: Sequence[Change], *, action: str = "read") -> WhatIfResult:
    """Pairs that gain and lose ``action`` access if ``changes`` were made. Writes nothing."""
    if len(changes) > MAX_CHANGES:
        raise InvalidChange(f"at most {MAX_CHANGES} changes at once")
    after = pop
    for ch in changes:
        after = apply_change(after, ch)
    before_set = _allowed(pop, action)
    after_set = _allowed(after, action)
    gained = tuple(sorted(after_set - before_set))
    lost = tuple(sorted(before_set - after_set))
    nats = {s.id: s.nationalities for s in pop.subjects}
    projects = {o.id: o.project or "(none)" for o in pop.objects}

    def by_nation(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
        c: Counter[str] = Counter()
        for sid, _ in pairs:
            c.update(nats[sid])
        return dict(sorted(c.items()))

    def by_project(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
        return dict(sorted(Counter(projects[oid] for _, oid in pairs).items()))

    return WhatIfResult(
        gained, lost, by_nation(gained), by_project(gained), by_nation(lost), by_project(lost)
    )


def _nation(text: str) -> str:
    if not _NATION.match(text):
        raise InvalidChange(f"{text[:10]!r} is not a nation trigraph")
    return text


def _ident(text: str, what: str) -> str:
    if not _ID.match(text):
        raise InvalidChange(f"{what} {text[:60]!r} is not a valid id")
    return text


def _day(text: str) -> datetime:
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise InvalidChange(f"{text[:20]!r} is not a date (YYYY-MM-DD)") from None
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _text(text: str, what: str) -> str:
    if not _TEXT.match(text):
        raise InvalidChange(f"{what} {text[:60]!r} is empty, too long or not printable")
    return text


def _regime(text: str) -> Regime:
    try:
        return Regime(text)
    except ValueError:
        known = ", ".join(r.value for r in Regime)
        raise InvalidChange(f"{text[:20]!r} is not a regime ({known})") from None


def _pattern(regime: Regime, text: str) -> str:
    prefix, example = _DESIGNATOR_PREFIX[regime]
    if not _text(text, "pattern").startswith(prefix) or not text[len(prefix) :].strip():
        raise InvalidChange(
            f"{text[:60]!r} names no {regime} item; {regime} patterns start with "
            f"{prefix!r}, e.g. {example!r}"
        )
    return text


def parse_change(text: str) -> Change:
    """Parse one ``--change`` argument (syntax in the module docstring)."""
    if not isinstance(text, str) or len(text) > 500:
        raise InvalidChange("a change must be a string of at most 500 characters")
    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    if kind == "admit" and 3 <= len(parts) <= 5:
        start = _day(parts[3]) if len(parts) > 3 else None
        end = _day(parts[4]) if len(parts) > 4 else None
        if start is not None and end is not None and end <= start:
            raise InvalidChange("the admission must end after it starts")
        return Admit(_nation(parts[0]), _ident(parts[1], "project"), parts[2], start, end)
    if kind == "end" and len(parts) == 2:
        return EndAdmission(_nation(parts[0]), _ident(parts[1], "project"))
    if kind == "set-rel-to" and len(parts) == 2:
        nations = tuple(_nation(n.strip()) for n in parts[1].split(",") if n.strip())
        return SetRelTo(_ident(parts[0], "object"), nations)
    if kind == "revoke" and len(parts) == 1:
        return RevokeClearance(_ident(parts[0], "clearance"))
    if kind == "expire" and len(parts) == 1:
        return ExpireClearance(_ident(parts[0], "clearance"))
    if kind == "rel-to" and len(parts) == 2:
        nations = tuple(_nation(n.strip()) for n in parts[1].split(",") if n.strip())
        if not nations:
            raise InvalidChange("rel-to needs at least one nation")
        return AddRelTo(_ident(parts[0], "object"), nations)
    if kind in ("recognise", "recognize") and len(parts) == 2:
        return Recognise(_nation(parts[0]), _nation(parts[1]))
    if kind == "licence-expire" and rest:
        return ExpireLicence(_text(rest, "licence number"))
    if kind in ("authorize", "authorise") and len(parts) in (2, 3):
        ident = _text(parts[2], "identifier") if len(parts) == 3 else WHAT_IF
        return Authorize(_text(parts[0], "party"), _regime(parts[1]), ident)
    if kind == "exclude" and len(parts) >= 2:
        regime = _regime(parts[0])
        return Exclude(regime, _pattern(regime, rest.partition(":")[2]))
    raise InvalidChange(
        f"cannot read change {text[:80]!r}; expected admit:NATION:project:LEVEL[:FROM[:UNTIL]], "
        "end:NATION:project, revoke:ID, expire:ID, rel-to:OBJECT:NATION[,NATION], "
        "set-rel-to:OBJECT:[NATION[,NATION]], recognise:ISSUER:NATION, "
        "licence-expire:NUMBER, authorize:PARTY:REGIME[:IDENTIFIER] or exclude:REGIME:PATTERN"
    )
