"""The security policies shipped with relto, loaded once.

SPIFs for USA, GBR, AUS, CAN, NZL, JPN, KOR and NATO plus the PARTNERSHIP policy
live under ``relto/labels/data``. Both the banner parser (a national level name
such as GBR's ``OFFICIAL`` is a classification only when that nation originates
the marking) and the national schemes read them, so they sit below both; the
public names are those of :mod:`relto.labels.national`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from relto.labels.spif import Spif, load_spif

__all__ = ["NATIONS", "POLICIES", "builtin_policy", "builtin_registry"]

#: The national (and NATO) schemes shipped with relto.
NATIONS: tuple[str, ...] = ("USA", "GBR", "AUS", "CAN", "NZL", "JPN", "KOR", "NATO")
#: Every built-in policy name accepted by :func:`builtin_policy`.
POLICIES: tuple[str, ...] = (*NATIONS, "PARTNERSHIP")


@functools.cache
def builtin_policy(name: str) -> Spif:
    """The built-in SPIF called ``name`` (``"USA"`` ... ``"NATO"``, ``"PARTNERSHIP"``)."""
    key = name.strip().upper()
    if key not in POLICIES:
        raise ValueError(f"no built-in policy {name!r}; choose one of {', '.join(POLICIES)}")
    data = resources.files("relto.labels").joinpath("data", f"{key.lower()}.xml").read_bytes()
    return load_spif(data, strict=True)


@functools.lru_cache(maxsize=1)
def builtin_registry() -> Mapping[str, Spif]:
    """Every built-in SPIF by policy id."""
    return MappingProxyType({builtin_policy(n).policy_id: builtin_policy(n) for n in POLICIES})
