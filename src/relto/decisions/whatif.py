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
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Union

from relto.decisions._model import Admission, Resource, Subject, World
from relto.decisions.engine import Engine
from relto.decisions.errors import InvalidChange
from relto.decisions.protocols import COMMON_SCHEME, ExportCheck, LevelMapper, Recognition

__all__ = [
    "AddRelTo",
    "Admit",
    "Change",
    "EndAdmission",
    "ExpireClearance",
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
MAX_CHANGES = 64


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


Change = Union[  # noqa: UP007
    Admit, EndAdmission, RevokeClearance, ExpireClearance, AddRelTo, SetRelTo, Recognise
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
    raise InvalidChange(
        f"cannot read change {text[:80]!r}; expected admit:NATION:project:LEVEL[:FROM[:UNTIL]], "
        "end:NATION:project, revoke:ID, expire:ID, rel-to:OBJECT:NATION[,NATION], "
        "set-rel-to:OBJECT:[NATION[,NATION]] or recognise:ISSUER:NATION"
    )
