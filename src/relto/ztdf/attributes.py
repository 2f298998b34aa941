"""Policy attribute FQNs relto writes for a marking.

OpenTDF attribute value FQNs have the form ``<namespace>/attr/<name>/value/<value>``.
relto writes one for the classification, one per Releasable To nation or
tetragraph, and one per project, so that a KAS which only sees the policy (not
the label assertion) has every fact the decision needs. An object held in joint
custody also names its originator, its id and every custodian nation
(:func:`custody_attributes`): a partner's KAS that holds a share but not the
object decides on those, bound to its share by the policy binding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, unquote

__all__ = [
    "DEFAULT_NAMESPACE",
    "attribute_fqn",
    "custody_attributes",
    "marking_attributes",
    "parse_attribute_fqn",
]

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


def custody_attributes(
    originator: str,
    object_id: str,
    custody: Iterable[str],
    namespace: str = DEFAULT_NAMESPACE,
) -> tuple[str, ...]:
    """The attribute FQNs of a jointly held object: its originating nation, its
    id, and each nation whose KAS holds a share of its key."""
    out = [
        attribute_fqn("originator", originator, namespace),
        attribute_fqn("object", object_id, namespace),
    ]
    out += [attribute_fqn("custody", n, namespace) for n in custody]
    return tuple(out)


def parse_attribute_fqn(fqn: str) -> tuple[str, str, str]:
    """``(namespace, name, value)`` of ``<namespace>/attr/<name>/value/<value>``
    (name and value unescaped); ``ValueError`` for anything else."""
    if not isinstance(fqn, str) or len(fqn) > 2048:
        raise ValueError("not an attribute value FQN")
    ns, sep, rest = fqn.partition("/attr/")
    name, sep2, value = rest.partition("/value/")
    if not (sep and sep2 and ns and name and value) or "/" in name or "/" in value:
        raise ValueError("not an attribute value FQN")
    return ns.rstrip("/"), unquote(name), unquote(value)
