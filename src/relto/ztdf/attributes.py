"""Policy attribute FQNs relto writes for a marking.

OpenTDF attribute value FQNs have the form ``<namespace>/attr/<name>/value/<value>``.
relto writes one for the classification, one per Releasable To nation or
tetragraph, and one per project, so that a KAS which only sees the policy (not
the label assertion) has every fact the decision needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

__all__ = ["DEFAULT_NAMESPACE", "attribute_fqn", "marking_attributes"]

#: Placeholder namespace; deployments set their own.
DEFAULT_NAMESPACE: Final = "https://relto.example"


def attribute_fqn(name: str, value: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``<namespace>/attr/<name>/value/<value>`` with both parts lower-cased and escaped."""
    if not name or not value:
        raise ValueError("attribute name and value must be non-empty")
    ns = namespace.rstrip("/")
    return f"{ns}/attr/{quote(name.lower(), safe='')}/value/{quote(value.lower(), safe='')}"


def marking_attributes(
    classification: str,
    rel_to: Iterable[str] = (),
    projects: Iterable[str] = (),
    namespace: str = DEFAULT_NAMESPACE,
) -> tuple[str, ...]:
    """The attribute FQNs for a marking, in a stable order."""
    out = [attribute_fqn("classification", classification, namespace)]
    out += [attribute_fqn("relto", c, namespace) for c in rel_to]
    out += [attribute_fqn("project", p, namespace) for p in projects]
    return tuple(out)
