"""The built-in national schemes and the partnership policy.

SPIFs for USA, GBR, AUS, CAN, NZL, JPN, KOR and NATO plus the PARTNERSHIP policy
ship under ``relto/labels/data`` (loaded by :mod:`relto.labels._builtin`, whose
names this module publishes); each level and each equivalence in them cites its
public source. :func:`level_rank` and :func:`map_level` are what the decision engine
calls per request, so they are cached.
"""

from __future__ import annotations

import functools

from relto.labels._builtin import NATIONS, POLICIES, builtin_policy, builtin_registry
from relto.labels.banner import Banner, rel_to_order
from relto.labels.errors import LabelError, MarkingError
from relto.labels.label import Label, label_from_refs, resolve_label
from relto.labels.spif import CategoryRef, Spif, TagType

__all__ = [
    "NATIONS",
    "POLICIES",
    "banner_to_label",
    "builtin_policy",
    "builtin_registry",
    "label_to_banner",
    "level_rank",
    "map_level",
]

RELEASABLE_TO = "Releasable To"
DISSEMINATION = "Dissemination Controls"


def _nation_policy(nation: str) -> Spif:
    key = nation.strip().upper()
    if key not in NATIONS:
        raise LabelError(f"unknown nation {nation!r}: relto has schemes for {', '.join(NATIONS)}")
    return builtin_policy(key)


@functools.lru_cache(maxsize=4096)
def level_rank(nation: str, level: str) -> int:
    """The hierarchy of ``level`` in ``nation``'s scheme (higher is more sensitive)."""
    spif = _nation_policy(nation)
    cls = spif.classification_by_name(level)
    if cls is None:
        names = ", ".join(c.name for c in spif.classifications)
        raise LabelError(f"{nation} has no classification {level!r} (it has {names})")
    return cls.hierarchy


@functools.lru_cache(maxsize=1)
def _equivalence_index() -> dict[tuple[str, int], dict[str, int]]:
    """(policy id, lacv) -> {other policy id: lacv}, from the partnership classes."""
    partnership = builtin_policy("PARTNERSHIP")
    index: dict[tuple[str, int], dict[str, int]] = {}
    for cls in partnership.classifications:
        members = [(e.policy_id, e.lacv) for e in cls.equivalents]
        for pid, lacv in members:
            row = index.setdefault((pid, lacv), {})
            for other_pid, other_lacv in members:
                if other_pid != pid:
                    row.setdefault(other_pid, other_lacv)
    return index


@functools.lru_cache(maxsize=4096)
def map_level(from_nation: str, level: str, to_nation: str) -> str | None:
    """The level in ``to_nation``'s scheme equivalent to ``level`` of ``from_nation``.

    Same nation: ``level`` itself (canonical spelling). ``None`` when no public source
    gives an equivalence (see docs/labels.md). Unknown nations or levels raise.
    """
    src = _nation_policy(from_nation)
    dst = _nation_policy(to_nation)
    cls = src.classification_by_name(level)
    if cls is None:
        raise LabelError(f"{from_nation} has no classification {level!r}")
    if src.policy_id == dst.policy_id:
        return cls.name
    target = _equivalence_index().get((src.policy_id, cls.lacv), {}).get(dst.policy_id)
    if target is None:
        return None
    found = dst.classification(target)
    return found.name if found is not None else None


def _nation_of(spif: Spif) -> str | None:
    return spif.name if spif.name in NATIONS and spif.name != "NATO" else None


def banner_to_label(banner: Banner, spif: Spif) -> Label:
    """The STANAG 4774 label of ``banner`` in a built-in national ``spif``."""
    cls = spif.classification_by_name(banner.classification)
    if cls is None:
        raise MarkingError(f"policy {spif.name} has no classification {banner.classification}")
    rel = spif.tagset_by_name(RELEASABLE_TO)
    dis = spif.tagset_by_name(DISSEMINATION)
    refs: list[CategoryRef] = []
    for code in banner.rel_to:
        cat = spif.category_by_name(RELEASABLE_TO, "PERMISSIVE", code) if rel else None
        if cat is None:
            raise MarkingError(f"{code} is not a Releasable To value of policy {spif.name}")
        refs.append(cat.ref)
    controls = (["NOFORN"] if banner.noforn else []) + list(banner.dissem)
    for name in controls:
        stanag = "RESTRICTIVE" if name == "NOFORN" else "INFORMATIVE"
        cat = spif.category_by_name(DISSEMINATION, stanag, name) if dis else None
        if cat is None:
            raise MarkingError(f"{name} is not a dissemination control of policy {spif.name}")
        refs.append(cat.ref)
    return label_from_refs(spif, cls.lacv, refs)


def label_to_banner(label: Label, spif: Spif) -> Banner:
    """The canonical banner of ``label`` (a label in a built-in national ``spif``)."""
    r = resolve_label(label, spif)
    rel: list[str] = []
    noforn = False
    dissem: list[str] = []
    for cat in r.categories:
        if cat.tagset_name == RELEASABLE_TO:
            rel.append(cat.name)
        elif cat.tagset_name == DISSEMINATION and cat.tag_type is TagType.RESTRICTIVE:
            noforn = noforn or cat.name == "NOFORN"
        elif cat.tagset_name == DISSEMINATION:
            dissem.append(cat.name)
        else:
            raise MarkingError(f"category {cat.name} ({cat.tagset_name}) has no banner form")
    originator = _nation_of(spif)
    return Banner(
        classification=r.classification.name,
        rel_to=rel_to_order(rel, originator),
        noforn=noforn,
        originator=originator,
        dissem=tuple(dissem),
    )
