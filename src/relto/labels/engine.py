"""What a SPIF says about labels: validity, markings, access (ACDF), translation
into equivalent policies, and the dominant label of several.

The marking rules follow the Open XML SPIF marking data and qualifiers as the
spiffing reference implementation applies them (see docs/labels.md): policy name
(or its ``replacePolicy`` replacement), the classification (unless a category
``suppressClassName``), then each tag's categories with the tag's prefix,
separator and suffix, everything wrapped in the policy's own prefix and suffix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from relto.labels.errors import LabelError, PolicyMismatch, TranslationError
from relto.labels.label import (
    Clearance,
    Label,
    ResolvedLabel,
    label_from_refs,
    resolve_clearance,
    resolve_label,
)
from relto.labels.spif import (
    Category,
    CategoryGroup,
    CategoryRef,
    Loc,
    Marking,
    Spif,
)

__all__ = [
    "ValidationResult",
    "access_check",
    "clearance_marking",
    "dominant_label",
    "marking",
    "translate",
    "validate_label",
]


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.valid


def _group_matches(spif: Spif, group: CategoryGroup, present: frozenset[CategoryRef]) -> bool:
    found = 0
    for data in group.data:
        hit = any(c.ref in present for c in spif.resolve(data))
        if hit:
            if group.operation == "oneOrMore":
                return True
            found += 1
            if group.operation == "onlyOne" and found > 1:
                return False
        elif group.operation == "all":
            return False
    return found > 0


def _describe(group: CategoryGroup) -> str:
    parts = []
    for d in group.data:
        which = "any" if d.lacv is None else f"lacv {d.lacv}"
        parts.append(f"{d.tagset_name}/{d.tag_type.value} {which}")
    return f"{group.operation} of [" + ", ".join(parts) + "]"


def _check(resolved: ResolvedLabel) -> list[str]:
    spif, cls = resolved.spif, resolved.classification
    present = resolved.refs
    reasons: list[str] = []
    for g in cls.required:
        if not _group_matches(spif, g, present):
            reasons.append(f"classification {cls.name} requires {_describe(g)}")
    per_tag: dict[str, list[Category]] = {}
    for cat in resolved.categories:
        per_tag.setdefault(cat.tag_name, []).append(cat)
        if cls.lacv in cat.excluded_classes:
            reasons.append(
                f"category {cat.name} ({cat.tagset_name}) excludes classification {cls.name}"
            )
        for ex in cat.excluded:
            clash = [c for c in spif.resolve(ex) if c.ref in present and c.ref != cat.ref]
            if clash:
                names = ", ".join(c.name for c in clash)
                reasons.append(f"category {cat.name} ({cat.tagset_name}) excludes {names}")
        for g in cat.required:
            if not _group_matches(spif, g, present):
                reasons.append(f"category {cat.name} ({cat.tagset_name}) requires {_describe(g)}")
    for tag_name, cats in per_tag.items():
        tag = spif.tag(tag_name)
        if tag is not None and tag.single_selection and len(cats) > 1:
            names = ", ".join(c.name for c in cats)
            reasons.append(f"tag {tag_name} allows a single selection, not {names}")
    return reasons


def validate_label(label: Label, spif: Spif) -> ValidationResult:
    """Check ``label`` against ``spif``: every reason it is invalid, or valid."""
    try:
        resolved = resolve_label(label, spif)
    except LabelError as exc:
        return ValidationResult(False, (str(exc),))
    reasons = _check(resolved)
    return ValidationResult(not reasons, tuple(reasons))


# ---------------------------------------------------------------------------------------
# markings


def _category_markings(
    loc: Loc, lang: str | None, marking: str, cats: Sequence[Category], sep: str, spif: Spif
) -> str:
    tag_name: str | None = None
    tag_sep = ""
    tag_suffix = ""
    for cat in cats:
        tag = spif.tag(cat.tag_name)
        md: Marking | None = cat.markings.for_lang(lang)
        if md is None and tag is not None:
            md = tag.markings.for_lang(lang)
        phrase = md.phrase(loc, cat.name) if md is not None else cat.name
        if not phrase:
            continue
        if tag_name != cat.tag_name:
            tag_name = cat.tag_name
            marking += tag_suffix
            if marking:
                marking += sep
            tmd = tag.markings.for_lang(lang) if tag is not None else None
            if tmd is not None:
                tag_suffix = tmd.suffix
                tag_sep = tmd.separator or "/"
                marking += tmd.prefix
            else:
                tag_suffix = ""
                tag_sep = "/"
        else:
            marking += tag_sep
        marking += phrase
    return marking + tag_suffix


def marking(label: Label, spif: Spif, lang: str | None = None, loc: Loc = Loc.PAGE_BOTTOM) -> str:
    """The marking text of ``label`` by the SPIF's marking rules, in language ``lang``."""
    r = resolve_label(label, spif)
    cls = r.classification
    suppress = False
    for cat in r.categories:
        m = cat.markings.for_lang(lang)
        if m is not None and m.suppress_class_name(loc):
            suppress = True
            break
    root = spif.markings.for_lang(lang)
    sep = (root.separator if root is not None else "") or " "
    cls_md = cls.markings.for_lang(lang)
    text = ""
    if root is not None and root.replace_policy(loc):
        text += root.policy_phrase(loc, spif.name)
    elif cls_md is not None and cls_md.replace_policy(loc):
        text += cls_md.policy_phrase(loc, cls.name)
    else:
        for cat in r.categories:
            m = cat.markings.for_lang(lang)
            if m is not None and m.replace_policy(loc):
                text += m.policy_phrase(loc, cat.name)
                break
        else:
            text += spif.name
    if not suppress:
        if text:
            text += sep
        if cls_md is not None:
            text += cls_md.phrase(loc, cls.name)
        elif root is not None:
            text += root.phrase(loc, cls.name)
        else:
            text += cls.name
    text = _category_markings(loc, lang, text, r.categories, sep, spif)
    if root is not None:
        text = root.prefix + text + root.suffix
    return text


def clearance_marking(clearance: Clearance, spif: Spif, lang: str | None = None) -> str:
    """The marking of a clearance: ``{CLASS|CLASS} categories`` by the SPIF's rules."""
    r = resolve_clearance(clearance, spif)
    root = spif.markings.for_lang(lang)
    sep = (root.separator if root is not None else "") or " "
    text = root.prefix if root is not None else ""
    names = [c.name for c in r.classifications]
    if not names:
        zero = spif.classification(0)
        names = [zero.name if zero is not None else "unclassified (auto)"]
    text += "{" + "|".join(names) + "}"
    text = _category_markings(Loc.PAGE_BOTTOM, lang, text, r.categories, sep, spif)
    if root is not None:
        text += root.suffix
    return text


# ---------------------------------------------------------------------------------------
# access control decision function


def access_check(
    clearance: Clearance,
    label: Label,
    spif: Spif,
    *,
    policies: Mapping[str, Spif] | None = None,
) -> bool:
    """Does ``clearance`` dominate ``label`` under ``spif`` (the label's policy)?

    The clearance must hold the label's classification, every restrictive category,
    and for each permissive tag at least one of the label's categories. When the
    clearance is in another policy found in ``policies``, the label is first
    translated into it through ``spif``'s equivalences (no equivalence: denied).
    """
    target = spif
    if clearance.policy_id and clearance.policy_id != spif.policy_id:
        other = (policies or {}).get(clearance.policy_id)
        if other is None:
            raise PolicyMismatch(
                f"clearance is for policy {clearance.policy_id}, label for {spif.policy_id}"
            )
        try:
            label = translate(label, spif, other.policy_id, policies={other.policy_id: other})
        except TranslationError:
            return False
        target = other
    rl = resolve_label(label, target)
    rc = resolve_clearance(clearance, target)
    held = rc.refs
    if rl.classification.lacv not in {c.lacv for c in rc.classifications}:
        return False
    pending: list[Category] = []
    pending_tag: str | None = None
    for cat in rl.categories:
        if pending_tag is not None and pending_tag != cat.tag_name:
            if not any(c.ref in held for c in pending):
                return False
            pending, pending_tag = [], None
        if cat.tag_type.is_restrictive:
            if cat.ref not in held:
                return False
        elif cat.tag_type.is_permissive:
            pending.append(cat)
            pending_tag = cat.tag_name
    return not pending or any(c.ref in held for c in pending)


# ---------------------------------------------------------------------------------------
# translation into an equivalent policy


def _fixup(target: Spif, groups: Iterable[CategoryGroup], refs: set[CategoryRef]) -> None:
    for g in groups:
        for data in g.data:
            found = target.resolve(data)
            if not found:
                raise TranslationError(
                    f"policy {target.name} has no category {data.tagset_name}/"
                    f"{data.tag_type.value} {data.lacv!r} that the equivalence requires"
                )
            refs.update(c.ref for c in found)


def translate(
    label: Label,
    spif: Spif,
    to_policy_id: str,
    *,
    policies: Mapping[str, Spif] | None = None,
) -> Label:
    """Translate ``label`` (in ``spif``) into the equivalent policy ``to_policy_id``.

    Uses the SPIF's encrypt-direction equivalences: the classification's, each
    category's, then the equivalent policy's required categories. ``policies``
    supplies the target SPIF (default: the built-in policies).
    """
    if to_policy_id == spif.policy_id:
        resolve_label(label, spif)
        return label
    if policies is None:
        from relto.labels.national import builtin_registry

        policies = builtin_registry()
    target = policies.get(to_policy_id)
    if target is None:
        raise TranslationError(f"no SPIF loaded for policy {to_policy_id}")
    r = resolve_label(label, spif)
    equiv = next(
        (e for e in r.classification.equivalents if e.policy_id == to_policy_id and e.for_encrypt),
        None,
    )
    if equiv is None:
        raise TranslationError(
            f"No equivalent classification for {r.classification.name} in policy {target.name}"
        )
    if target.classification(equiv.lacv) is None:
        raise TranslationError(f"policy {target.name} has no classification lacv {equiv.lacv}")
    refs: set[CategoryRef] = set()
    _fixup(target, equiv.required, refs)
    for cat in r.categories:
        mine = [e for e in cat.equivalents if e.policy_id == to_policy_id and e.for_encrypt]
        if not mine:
            raise TranslationError(f"No equivalence to {cat.name} in policy {target.name}")
        for e in mine:
            if e.discard:
                continue
            ref = CategoryRef(e.tagset_id, e.tag_type, e.lacv)
            if target.category(ref) is None:
                raise TranslationError(
                    f"policy {target.name} has no category {e.tagset_id}/{e.tag_type.value} "
                    f"{e.lacv!r} (equivalent of {cat.name})"
                )
            refs.add(ref)
    ep = spif.equivalent_policy(to_policy_id)
    if ep is not None:
        _fixup(target, ep.required, refs)
    return label_from_refs(target, equiv.lacv, refs)


# ---------------------------------------------------------------------------------------
# combination (ADatP-4774.1)


def dominant_label(labels: Sequence[Label], spif: Spif) -> Label:
    """The label that dominates all of ``labels`` (all in ``spif``).

    Highest classification by hierarchy; permissive categories intersected (only
    what every label releases to stays releasable); restrictive and informative
    categories unioned.
    """
    if not labels:
        raise ValueError("dominant_label needs at least one label")
    resolved = [resolve_label(lbl, spif) for lbl in labels]
    top = max(resolved, key=lambda r: (r.classification.hierarchy, r.classification.lacv))
    permissive: set[CategoryRef] | None = None
    others: set[CategoryRef] = set()
    for r in resolved:
        perm = {c.ref for c in r.categories if c.tag_type.is_permissive}
        permissive = perm if permissive is None else permissive & perm
        others |= {c.ref for c in r.categories if not c.tag_type.is_permissive}
    return label_from_refs(spif, top.classification.lacv, (permissive or set()) | others)
