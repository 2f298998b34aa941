"""The services the engine asks, as small protocols, with table-based versions.

The engine needs two questions answered that belong to other capabilities:

- :class:`LevelMapper` (``relto.labels``): the rank of a level in a nation's
  scheme, and a level's equivalent in another nation's scheme (the SPIF
  equivalences). The partnership's common scale is the scheme of the pseudo-nation
  :data:`COMMON_SCHEME` (admission ceilings are written on it).
- :class:`Recognition` (``relto.vetting``): whether one nation's clearances count
  for another nation's information at a time.

The table versions below are complete implementations used by tests, the
benchmark, and scenarios when ``relto.labels`` / ``relto.vetting`` are not wired
in (see :mod:`relto.decisions.adapters` for the real ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from relto.decisions._model import Resource, Subject

__all__ = [
    "COMMON_SCHEME",
    "DEFAULT_SCHEMES",
    "Agreement",
    "ExportBasis",
    "ExportCheck",
    "LevelMapper",
    "Recognition",
    "TableLevelMapper",
    "TableRecognition",
]

#: Pseudo-nation naming the partnership's common classification scale.
COMMON_SCHEME = "COMMON"


@runtime_checkable
class LevelMapper(Protocol):
    def rank(self, nation: str, level: str) -> int | None:
        """Position of ``level`` in ``nation``'s scheme (0 lowest), ``None`` if unknown."""
        ...

    def map_level(self, from_nation: str, level: str, to_nation: str) -> str | None:
        """The highest level of ``to_nation`` that ``level`` of ``from_nation`` dominates.

        ``None`` when there is no equivalent (the engine then treats the level as
        dominating nothing in ``to_nation``'s scheme).
        """
        ...


@runtime_checkable
class Recognition(Protocol):
    def recognises(self, issuer_nation: str, info_nation: str, at: datetime) -> bool:
        """Whether ``issuer_nation``'s clearances count for ``info_nation``'s information."""
        ...


@runtime_checkable
class ExportCheck(Protocol):
    """Hook for the export-control issue: ``None`` allows, a sentence denies.

    A hook may also name the legal basis of what it allows, as
    :class:`ExportBasis`; the engine then puts it on the allowed
    :class:`~relto.decisions.Decision` (and denies if it names none)."""

    def check(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None: ...


@runtime_checkable
class ExportBasis(Protocol):
    """The legal basis of an allowed export-controlled request (``None``: none)."""

    def legal_basis(
        self, subject: Subject, action: str, obj: Resource, at: datetime
    ) -> str | None: ...


#: nation -> levels lowest first, each with its rank on the common scale.
DEFAULT_SCHEMES: Mapping[str, Sequence[tuple[str, int]]] = {
    COMMON_SCHEME: (
        ("UNCLASSIFIED", 0),
        ("RESTRICTED", 1),
        ("CONFIDENTIAL", 2),
        ("SECRET", 3),
        ("TOP SECRET", 4),
    ),
    "USA": (("UNCLASSIFIED", 0), ("CONFIDENTIAL", 2), ("SECRET", 3), ("TOP SECRET", 4)),
    "GBR": (("OFFICIAL", 0), ("OFFICIAL-SENSITIVE", 1), ("SECRET", 3), ("TOP SECRET", 4)),
    "AUS": (
        ("UNOFFICIAL", 0),
        ("OFFICIAL", 0),
        ("OFFICIAL: Sensitive", 1),
        ("PROTECTED", 2),
        ("SECRET", 3),
        ("TOP SECRET", 4),
    ),
    "CAN": (("UNCLASSIFIED", 0), ("CONFIDENTIAL", 2), ("SECRET", 3), ("TOP SECRET", 4)),
    "NZL": (
        ("UNCLASSIFIED", 0),
        ("RESTRICTED", 1),
        ("CONFIDENTIAL", 2),
        ("SECRET", 3),
        ("TOP SECRET", 4),
    ),
    "JPN": (("UNCLASSIFIED", 0), ("CONFIDENTIAL", 2), ("SECRET", 3), ("TOP SECRET", 4)),
    "KOR": (("UNCLASSIFIED", 0), ("CONFIDENTIAL", 2), ("SECRET", 3), ("TOP SECRET", 4)),
}


class TableLevelMapper:
    """Schemes as ordered tables, equivalence through a common rank (mapping down)."""

    def __init__(self, schemes: Mapping[str, Sequence[tuple[str, int]]] = DEFAULT_SCHEMES):
        self._rank: dict[tuple[str, str], int] = {}
        self._common: dict[tuple[str, str], int] = {}
        self._levels: dict[str, tuple[tuple[str, int], ...]] = {}
        for nation, levels in schemes.items():
            self._levels[nation] = tuple(levels)
            for i, (name, common) in enumerate(levels):
                self._rank[(nation, name)] = i
                self._common[(nation, name)] = common

    def rank(self, nation: str, level: str) -> int | None:
        return self._rank.get((nation, level))

    def map_level(self, from_nation: str, level: str, to_nation: str) -> str | None:
        common = self._common.get((from_nation, level))
        if common is None:
            return None
        if from_nation == to_nation:
            return level
        best: str | None = None
        for name, c in self._levels.get(to_nation, ()):
            if c <= common:
                best = name
        return best


@dataclass(frozen=True, slots=True)
class Agreement:
    """A bilateral agreement: each party recognises the other's clearances."""

    parties: frozenset[str]
    start: datetime | None = None
    end: datetime | None = None

    def active(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


class TableRecognition:
    """Recognition from a list of agreements; a nation always recognises itself."""

    def __init__(self, agreements: Iterable[Agreement] = ()) -> None:
        self.agreements: tuple[Agreement, ...] = tuple(agreements)
        self._by_pair: dict[frozenset[str], list[Agreement]] = {}
        for a in self.agreements:
            self._by_pair.setdefault(a.parties, []).append(a)

    def recognises(self, issuer_nation: str, info_nation: str, at: datetime) -> bool:
        if issuer_nation == info_nation:
            return True
        return any(
            a.active(at) for a in self._by_pair.get(frozenset((issuer_nation, info_nation)), ())
        )

    def with_agreement(self, agreement: Agreement) -> TableRecognition:
        return TableRecognition((*self.agreements, agreement))
