"""Labels of protected documents: banners, STANAG 4774 labels, page markings, and
the level bridge between national SPIF level names and the engine's table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from relto.decisions import COMMON_SCHEME, TableLevelMapper
from relto.decisions.protocols import DEFAULT_SCHEMES
from relto.errors import InvalidInput, ReltoError
from relto.labels import (
    Banner,
    MarkingError,
    banner_to_label,
    builtin_policy,
    map_level,
    marking,
    parse_banner,
    read_label,
    validate_label,
    write_label,
)
from relto.labels.spif import Loc

__all__ = ["ProductLevelMapper", "common_level", "compose_banner", "markings", "parsed_banner"]


def parsed_banner(banner: str, originator: str) -> Banner:
    return parse_banner(banner, originator=originator)


def markings(banner: str, originator: str, label_xml: str) -> tuple[str, str, str, tuple[str, ...]]:
    """(top, bottom, classification, rel_to) as the originator's SPIF marks them."""
    b = parse_banner(banner, originator=originator)
    try:
        spif = builtin_policy(originator)
        label = read_label(label_xml.encode())
        top = marking(label, spif, loc=Loc.PAGE_TOP)
        bottom = marking(label, spif, loc=Loc.PAGE_BOTTOM)
    except (ReltoError, ValueError, LookupError):  # a rule we cannot apply: the plain banner
        top = bottom = b.render()
    return top or b.render(), bottom or b.render(), b.classification, tuple(b.rel_to)


def compose_banner(
    originator: str, classification: str, rel_to: Sequence[str], *, at: datetime | None = None
) -> tuple[str, bytes]:
    """A valid banner and its STANAG 4774 label for the originator's scheme.

    REL TO always includes the originator; REL TO of the originator alone is
    written NOFORN. Anything the SPIF rejects raises :class:`InvalidInput`.
    """
    nations = sorted({originator, *(n.strip().upper() for n in rel_to if n.strip())})
    if len(nations) > 1:
        text = f"{classification}//REL TO {', '.join(nations)}"
    else:
        text = f"{classification}//NOFORN"
    try:
        banner = parse_banner(text, originator=originator)
        spif = builtin_policy(originator)
        label = banner_to_label(banner, spif)
    except (MarkingError, InvalidInput, ValueError) as exc:
        raise InvalidInput(f"not a valid marking: {exc}") from None
    result = validate_label(label, spif)
    if not result.valid:
        raise InvalidInput("not a valid label: " + "; ".join(result.reasons))
    return banner.render(), write_label(label, at=at or datetime.now(UTC))


class ProductLevelMapper:
    """The decision engine's level table, reading national SPIF level names too
    (demo mode only: it assumes equivalences no public source records, see ADR 0075).

    :mod:`relto.vetting` records what a clearance grants in the nation's SPIF
    (``GOKUHI``, ``CLASS III SECRET``) while the engine's table
    (:data:`relto.decisions.protocols.DEFAULT_SCHEMES`) spells levels in English. A
    SPIF name the table does not know is translated through
    :func:`relto.labels.map_level` to the USA scheme (the one every built-in SPIF
    has equivalences with) and back to the table's level of the same common rank.
    No equivalence: left as is, and the engine denies (fail closed).
    """

    def __init__(self) -> None:
        self._table = TableLevelMapper()
        self._common = {
            (nation, name): common
            for nation, levels in DEFAULT_SCHEMES.items()
            for name, common in levels
        }
        self._levels = {nation: tuple(levels) for nation, levels in DEFAULT_SCHEMES.items()}
        self._cache: dict[tuple[str, str], str] = {}

    def _normalise(self, nation: str, level: str) -> str:
        key = (nation, level)
        if key in self._common:
            return level
        if key in self._cache:
            return self._cache[key]
        out = level
        try:
            usa = map_level(nation, level, "USA")
        except (ReltoError, ValueError, LookupError):
            usa = None
        common = self._common.get(("USA", usa)) if usa else None
        if common is not None:
            for name, c in self._levels.get(nation, ()):
                if c == common:
                    out = name
        self._cache[key] = out
        return out

    def rank(self, nation: str, level: str) -> int | None:
        return self._table.rank(nation, self._normalise(nation, level))

    def map_level(self, from_nation: str, level: str, to_nation: str) -> str | None:
        return self._table.map_level(from_nation, self._normalise(from_nation, level), to_nation)


_BRIDGE = ProductLevelMapper()


def common_level(originator: str, classification: str) -> str:
    """A classification on the partnership's common scale ("" when unknown)."""
    try:
        return _BRIDGE.map_level(originator, classification, COMMON_SCHEME) or ""
    except (ReltoError, ValueError, LookupError):
        return ""
