"""TEMPORARY minimal banner reader, used only until ``relto.labels.parse_banner`` lands.

Reads ``[//NAT ]LEVEL[//CONTROL...]`` with ``REL TO A, B``, ``NOFORN``, ``ORCON``
and ``/``-separated compartments. Remove once relto.labels provides the parser.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FallbackBanner", "parse_banner"]

_TETRAGRAPHS = {
    "FVEY": ("AUS", "CAN", "GBR", "NZL", "USA"),
    "ACGU": ("AUS", "CAN", "GBR", "USA"),
    "TEYE": ("AUS", "GBR", "USA"),
}


@dataclass(frozen=True)
class FallbackBanner:
    classification: str
    rel_to: tuple[str, ...]
    noforn: bool
    originator: str | None
    controls: tuple[str, ...]


def parse_banner(text: str, originator: str | None = None) -> FallbackBanner:
    text = " ".join(text.strip().split())
    if not text or len(text) > 1000:
        raise ValueError("empty or oversized banner")
    if text.startswith("//"):
        head, _, rest = text[2:].partition("//")
        nat, _, level = head.partition(" ")
        originator = nat
        parts = [level, *([p for p in rest.split("//")] if rest else [])]
    else:
        parts = text.split("//")
    level = parts[0].strip()
    rel: list[str] = []
    noforn = False
    controls: list[str] = []
    for part in parts[1:]:
        part = part.strip()
        if part.startswith("REL TO"):
            for code in part[len("REL TO") :].split(","):
                code = code.strip()
                if code:
                    rel.extend(_TETRAGRAPHS.get(code, (code,)))
        elif part in ("NOFORN", "NF"):
            noforn = True
        elif part:
            controls.extend(c.strip() for c in part.split("/") if c.strip())
    return FallbackBanner(level, tuple(rel), noforn, originator, tuple(controls))
