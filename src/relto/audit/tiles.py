"""C2SP tlog-tiles paths (c2sp.org/tlog-tiles): ``tile/<L>/<N>[.p/<W>]`` and
``tile/entries/<N>[.p/<W>]``, with ``<N>`` in zero-padded 3-digit path elements
(``x001/x234/067``). A tile at level ``L`` holds the stored nodes at tree level
``8 * L``, indexes ``N * 256 ..``; an entry bundle holds uint16-length-prefixed
entry bodies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relto.audit.errors import InvalidProof

__all__ = ["TILE_HEIGHT", "TILE_WIDTH", "TilePath", "format_tile_path", "parse_tile_path"]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

_LAST = re.compile(r"^[0-9]{3}$")
_INNER = re.compile(r"^x[0-9]{3}$")
_WIDTH = re.compile(r"^[1-9][0-9]{0,2}$")
_LEVEL = re.compile(r"^(0|[1-9][0-9]?)$")


@dataclass(frozen=True)
class TilePath:
    level: int | None  # None for an entry bundle
    index: int
    width: int  # 256 for a full tile


def _encode_index(n: int) -> str:
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def format_tile_path(tile: TilePath) -> str:
    head = "tile/entries" if tile.level is None else f"tile/{tile.level}"
    tail = "" if tile.width == TILE_WIDTH else f".p/{tile.width}"
    return f"{head}/{_encode_index(tile.index)}{tail}"


def parse_tile_path(path: str) -> TilePath:
    """Parse the part after ``tile/``: ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]``."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or len(parts) > 12:
        raise InvalidProof("not a tile path")
    head, rest = parts[0], parts[1:]
    level: int | None
    if head == "entries":
        level = None
    elif _LEVEL.match(head) and int(head) < 64:
        level = int(head)
    else:
        raise InvalidProof("bad tile level")
    width = TILE_WIDTH
    if rest[-1] != "" and len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH.match(rest[-1]) or int(rest[-1]) >= TILE_WIDTH:
            raise InvalidProof("bad partial tile width")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or not _LAST.match(rest[-1]) or not all(_INNER.match(p) for p in rest[:-1]):
        raise InvalidProof("bad tile index")
    index = 0
    for p in rest:
        index = index * 1000 + int(p.lstrip("x"))
    if rest[:-1] and rest[0] == "x000":
        raise InvalidProof("tile index has leading zero elements")
    return TilePath(level, index, width)
