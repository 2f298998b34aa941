"""STANAG 4774 confidentiality labels and clearances: the model and its XML codecs.

The model (:class:`Label`, :class:`Clearance`) follows ADatP-4774: a policy, a
classification and categories named by tag set name, type and value names. It does
not need a SPIF; :func:`resolve_label` binds it to one. Two XML forms are read:
STANAG 4774 (``urn:nato:stanag:4774:confidentialitymetadatalabel:1:0``) and the
small form used by the spiffing test data (``http://surevine.com/xmlns/spiffy``),
which names everything by OID and LACV and therefore needs the SPIFs to read.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from relto.labels._xml import local_name, namespace, parse_xml
from relto.labels.errors import LabelError, PolicyMismatch, UnknownPolicy
from relto.labels.spif import (
    Category,
    CategoryRef,
    Classification,
    Spif,
    TagType,
    norm_lacv,
)

__all__ = [
    "SLAB_NS",
    "SPIFFY_NS",
    "Clearance",
    "Label",
    "LabelCategory",
    "LabelKind",
    "ResolvedClearance",
    "ResolvedLabel",
    "label_from_refs",
    "read_clearance",
    "read_label",
    "read_label_any",
    "resolve_clearance",
    "resolve_label",
    "write_clearance",
    "write_label",
]

log = logging.getLogger(__name__)

SLAB_NS = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
CLEARANCE_NS = "urn:nato:stanag:4774:confidentialityclearance:1:0"
SPIFFY_NS = "http://surevine.com/xmlns/spiffy"

_STANAG_TYPES = ("PERMISSIVE", "RESTRICTIVE", "INFORMATIVE")


class LabelKind(enum.Enum):
    """Which ADatP-4774 label element this is."""

    ORIGINATOR = "originatorConfidentialityLabel"
    ALTERNATIVE = "alternativeConfidentialityLabel"
    METADATA = "metadataConfidentialityLabel"
    PLAIN = "ConfidentialityLabel"


_KIND_BY_LOWER = {k.value.lower(): k for k in LabelKind}


@dataclass(frozen=True)
class LabelCategory:
    """One ``Category`` of a label: tag set name, 4774 type and value names."""

    tag_name: str
    type: str
    values: tuple[str, ...]
    uri: str | None = None


@dataclass(frozen=True)
class Label:
    """A STANAG 4774 confidentiality label (independent of any SPIF)."""

    policy: str
    classification: str | None
    categories: tuple[LabelCategory, ...] = ()
    policy_id: str | None = None
    privacy_mark: str | None = None
    creation_time: datetime | None = None
    review_time: datetime | None = None
    originator_id: str | None = None
    originator_id_type: str | None = None
    kind: LabelKind = LabelKind.ORIGINATOR

    def without_times(self) -> Label:
        return Label(
            self.policy,
            self.classification,
            self.categories,
            self.policy_id,
            self.privacy_mark,
            kind=self.kind,
            originator_id=self.originator_id,
            originator_id_type=self.originator_id_type,
        )


@dataclass(frozen=True)
class Clearance:
    """A confidentiality clearance: classifications held and categories held."""

    policy: str
    classifications: tuple[str, ...]
    categories: tuple[LabelCategory, ...] = ()
    policy_id: str | None = None


@dataclass(frozen=True)
class ResolvedLabel:
    spif: Spif
    classification: Classification
    categories: tuple[Category, ...]  # in SPIF (ordinal) order

    @property
    def refs(self) -> frozenset[CategoryRef]:
        return frozenset(c.ref for c in self.categories)


@dataclass(frozen=True)
class ResolvedClearance:
    spif: Spif
    classifications: tuple[Classification, ...]
    categories: tuple[Category, ...]

    @property
    def refs(self) -> frozenset[CategoryRef]:
        return frozenset(c.ref for c in self.categories)


# ---------------------------------------------------------------------------------------
# resolution against a SPIF


def _check_policy(policy: str, policy_id: str | None, spif: Spif, what: str) -> None:
    if policy_id:
        if policy_id != spif.policy_id:
            raise PolicyMismatch(
                f"{what} is for policy {policy_id}, not {spif.policy_id} ({spif.name})"
            )
    elif policy.casefold() != spif.name.casefold():
        raise PolicyMismatch(f"{what} is for policy {policy!r}, not {spif.name!r}")


def _resolve_categories(cats: Iterable[LabelCategory], spif: Spif, what: str) -> list[Category]:
    out: dict[CategoryRef, Category] = {}
    for lc in cats:
        if lc.type not in _STANAG_TYPES:
            raise LabelError(f"{what}: category type {lc.type!r} is not one of {_STANAG_TYPES}")
        if spif.tagset_by_name(lc.tag_name) is None:
            raise LabelError(f"{what}: policy {spif.name} has no tag set {lc.tag_name!r}")
        for value in lc.values:
            cat = spif.category_by_name(lc.tag_name, lc.type, value)
            if cat is None:
                raise LabelError(
                    f"{what}: tag set {lc.tag_name!r} has no {lc.type} category {value!r}"
                )
            out[cat.ref] = cat
    return sorted(out.values(), key=lambda c: c.ordinal)


def resolve_label(label: Label, spif: Spif) -> ResolvedLabel:
    """Bind a label to its SPIF; raise :class:`LabelError` for anything unknown."""
    _check_policy(label.policy, label.policy_id, spif, "label")
    if label.classification is None:
        cls = spif.classification(0)
        if cls is None:
            raise LabelError("label has no classification")
    else:
        found = spif.classification_by_name(label.classification)
        if found is None:
            raise LabelError(
                f"label: policy {spif.name} has no classification {label.classification!r}"
            )
        cls = found
    return ResolvedLabel(spif, cls, tuple(_resolve_categories(label.categories, spif, "label")))


def resolve_clearance(clearance: Clearance, spif: Spif) -> ResolvedClearance:
    _check_policy(clearance.policy, clearance.policy_id, spif, "clearance")
    classes = []
    for name in clearance.classifications:
        c = spif.classification_by_name(name)
        if c is None:
            raise LabelError(f"clearance: policy {spif.name} has no classification {name!r}")
        classes.append(c)
    classes.sort(key=lambda c: (c.hierarchy, c.lacv))
    cats = _resolve_categories(clearance.categories, spif, "clearance")
    return ResolvedClearance(spif, tuple(classes), tuple(cats))


def _group(spif: Spif, cats: Iterable[Category]) -> tuple[LabelCategory, ...]:
    groups: list[LabelCategory] = []
    for cat in sorted(cats, key=lambda c: c.ordinal):
        stanag = cat.tag_type.stanag
        uri = f"urn:oid:{cat.tagset_id}"
        if groups and groups[-1].tag_name == cat.tagset_name and groups[-1].type == stanag:
            last = groups[-1]
            groups[-1] = LabelCategory(last.tag_name, stanag, (*last.values, cat.name), uri)
        else:
            groups.append(LabelCategory(cat.tagset_name, stanag, (cat.name,), uri))
    return tuple(groups)


def label_from_refs(
    spif: Spif, classification_lacv: int, refs: Iterable[CategoryRef], **extra: object
) -> Label:
    """Build a label in ``spif`` from a classification LACV and category references."""
    cls = spif.classification(classification_lacv)
    if cls is None:
        raise LabelError(
            f"policy {spif.name} has no classification with lacv {classification_lacv}"
        )
    cats = []
    for ref in refs:
        cat = spif.category(ref)
        if cat is None:
            raise LabelError(
                f"policy {spif.name} has no {ref.tag_type.value} category with lacv "
                f"{ref.lacv!r} in tag set {ref.tagset_id}"
            )
        cats.append(cat)
    return Label(
        policy=spif.name,
        policy_id=spif.policy_id,
        classification=cls.name,
        categories=_group(spif, cats),
        **extra,  # type: ignore[arg-type]
    )


def clearance_from_refs(spif: Spif, lacvs: Iterable[int], refs: Iterable[CategoryRef]) -> Clearance:
    names = []
    for lacv in lacvs:
        cls = spif.classification(lacv)
        if cls is None:
            raise LabelError(f"clearance: policy {spif.name} has no classification lacv {lacv}")
        names.append(cls.name)
    cats = []
    for ref in refs:
        cat = spif.category(ref)
        if cat is None:
            raise LabelError(
                f"clearance: policy {spif.name} has no {ref.tag_type.value} category "
                f"with lacv {ref.lacv!r} in tag set {ref.tagset_id}"
            )
        cats.append(cat)
    return Clearance(spif.name, tuple(names), _group(spif, cats), spif.policy_id)


# ---------------------------------------------------------------------------------------
# STANAG 4774 XML


def _parse_time(text: str | None, what: str) -> datetime | None:
    if text is None or not text.strip():
        return None
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    # ADatP-4774 examples carry 7 fractional digits; Python takes at most 6
    if "." in t:
        head, _, rest = t.partition(".")
        n = 0
        while n < len(rest) and rest[n].isdigit():
            n += 1
        digits, tz = rest[:n], rest[n:]
        t = f"{head}.{digits[:6]}{tz}"
    try:
        value = datetime.fromisoformat(t)
    except ValueError:
        raise LabelError(f"{what}: {text.strip()!r} is not an xs:dateTime") from None
    if value.tzinfo is None:
        raise LabelError(f"{what}: {text.strip()!r} has no time zone")
    return value.astimezone(UTC)


def _fmt_time(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _policy_from(el: etree._Element) -> tuple[str, str | None]:
    name = (el.text or "").strip()
    uri = el.get("URI") or el.get("URL")
    policy_id = None
    if uri and uri.startswith("urn:oid:"):
        policy_id = uri[len("urn:oid:") :].strip() or None
    if not name and not policy_id:
        raise LabelError("PolicyIdentifier is empty")
    return name, policy_id


def _categories_from(info: etree._Element) -> tuple[LabelCategory, ...]:
    out = []
    for cat in info:
        if local_name(cat) != "Category":
            continue
        tag_name = cat.get("TagName")
        ctype = cat.get("Type")
        if not tag_name:
            raise LabelError(f"Category (line {cat.sourceline}) has no TagName")
        if ctype not in _STANAG_TYPES:
            raise LabelError(
                f"Category {tag_name!r} (line {cat.sourceline}): Type {ctype!r} is not "
                "PERMISSIVE, RESTRICTIVE or INFORMATIVE"
            )
        values = tuple((v.text or "").strip() for v in cat if local_name(v) == "GenericValue")
        if not values:
            raise LabelError(f"Category {tag_name!r} (line {cat.sourceline}) has no GenericValue")
        out.append(LabelCategory(tag_name, ctype, values, cat.get("URI")))
    return tuple(out)


def _label_from_4774(root: etree._Element, *, lenient: bool) -> Label:
    kind = _KIND_BY_LOWER.get(local_name(root).lower())
    if kind is None or namespace(root) != SLAB_NS:
        raise LabelError(
            f"not a STANAG 4774 confidentiality label: root element <{local_name(root)}> "
            f"in namespace {namespace(root)!r}"
        )
    info = next((c for c in root if local_name(c) == "ConfidentialityInformation"), None)
    if info is None:
        raise LabelError("label has no ConfidentialityInformation")
    pol = next((c for c in info if local_name(c) == "PolicyIdentifier"), None)
    if pol is None:
        raise LabelError("label has no PolicyIdentifier")
    policy, policy_id = _policy_from(pol)
    cls_el = next((c for c in info if local_name(c) == "Classification"), None)
    classification = (cls_el.text or "").strip() if cls_el is not None else None
    pm = next((c for c in info if local_name(c) == "PrivacyMark"), None)
    creation = review = None
    originator = originator_type = None
    for child in root:
        name = local_name(child)
        if name == "CreationDateTime":
            creation = _parse_time(child.text, "CreationDateTime")
        elif name == "ReviewDateTime":
            review = _parse_time(child.text, "ReviewDateTime")
        elif name == "OriginatorID":
            originator = (child.text or "").strip() or None
            originator_type = child.get("IDType")
    if review is None and root.get("ReviewDateTime"):
        review = _parse_time(root.get("ReviewDateTime"), "ReviewDateTime")
    if creation is None:
        if not lenient:
            raise LabelError("label has no CreationDateTime (required by ADatP-4774)")
        log.warning("reading a STANAG 4774 label without CreationDateTime (lenient mode)")
    return Label(
        policy=policy,
        policy_id=policy_id,
        classification=classification,
        categories=_categories_from(info),
        privacy_mark=(pm.text or "").strip() if pm is not None else None,
        creation_time=creation,
        review_time=review,
        originator_id=originator,
        originator_id_type=originator_type,
        kind=kind,
    )


def read_label(data: bytes, *, lenient: bool = False) -> Label:
    """Read a STANAG 4774 label. ``lenient`` accepts one without ``CreationDateTime``."""
    root = parse_xml(data, what="label").root
    return _label_from_4774(root, lenient=lenient)


def write_label(label: Label, at: datetime, *, review: datetime | None = None) -> bytes:
    """Write ``label`` as STANAG 4774 XML.

    ``CreationDateTime`` is the label's own when it has one, else ``at``;
    ``ReviewDateTime`` is ``review``, the label's own, or ``at`` (review at once).
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    ns = SLAB_NS
    root = etree.Element(f"{{{ns}}}{label.kind.value}", nsmap={None: ns})
    info = etree.SubElement(root, f"{{{ns}}}ConfidentialityInformation")
    pol = etree.SubElement(info, f"{{{ns}}}PolicyIdentifier")
    pol.text = label.policy
    if label.policy_id:
        pol.set("URI", f"urn:oid:{label.policy_id}")
    if label.classification is not None:
        etree.SubElement(info, f"{{{ns}}}Classification").text = label.classification
    if label.privacy_mark:
        etree.SubElement(info, f"{{{ns}}}PrivacyMark").text = label.privacy_mark
    for cat in label.categories:
        el = etree.SubElement(info, f"{{{ns}}}Category", TagName=cat.tag_name, Type=cat.type)
        if cat.uri:
            el.set("URI", cat.uri)
        for v in cat.values:
            etree.SubElement(el, f"{{{ns}}}GenericValue").text = v
    if label.originator_id:
        oid = etree.SubElement(root, f"{{{ns}}}OriginatorID")
        oid.text = label.originator_id
        if label.originator_id_type:
            oid.set("IDType", label.originator_id_type)
    created = label.creation_time or at
    reviewed = review or label.review_time or at
    etree.SubElement(root, f"{{{ns}}}CreationDateTime").text = _fmt_time(created)
    etree.SubElement(root, f"{{{ns}}}ReviewDateTime").text = _fmt_time(reviewed)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def write_clearance(clearance: Clearance) -> bytes:
    root = etree.Element(f"{{{CLEARANCE_NS}}}ConfidentialityClearance", nsmap={None: CLEARANCE_NS})
    pol = etree.SubElement(root, f"{{{SLAB_NS}}}PolicyIdentifier")
    pol.text = clearance.policy
    if clearance.policy_id:
        pol.set("URI", f"urn:oid:{clearance.policy_id}")
    cl = etree.SubElement(root, f"{{{CLEARANCE_NS}}}ClassificationList")
    for c in clearance.classifications:
        etree.SubElement(cl, f"{{{SLAB_NS}}}Classification").text = c
    for cat in clearance.categories:
        el = etree.SubElement(root, f"{{{SLAB_NS}}}Category", TagName=cat.tag_name, Type=cat.type)
        for v in cat.values:
            etree.SubElement(el, f"{{{SLAB_NS}}}GenericValue").text = v
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _clearance_from_4774(root: etree._Element) -> Clearance:
    pol = next((c for c in root if local_name(c) == "PolicyIdentifier"), None)
    if pol is None:
        raise LabelError("clearance has no PolicyIdentifier")
    policy, policy_id = _policy_from(pol)
    classes: list[str] = []
    for child in root:
        if local_name(child) == "ClassificationList":
            classes.extend(
                (c.text or "").strip() for c in child if local_name(c) == "Classification"
            )
    return Clearance(policy, tuple(classes), _categories_from(root), policy_id)


# ---------------------------------------------------------------------------------------
# spiffing's own small XML form (OIDs and LACVs; needs the SPIFs)

_SPIFFY_TYPES = {t.value: t for t in TagType}


def _spiffy_policy(root: etree._Element, spifs: Mapping[str, Spif], what: str) -> Spif:
    pol = next((c for c in root if local_name(c) == "policy"), None)
    if pol is None:
        raise LabelError(f"No policy in {what}")
    pid = (pol.get("id") or "").strip()
    spif = spifs.get(pid)
    if spif is None:
        raise UnknownPolicy(f"Unknown policy id: {pid}")
    return spif


def _spiffy_refs(root: etree._Element, spif: Spif, what: str) -> list[CategoryRef]:
    refs = []
    for tag in root:
        if local_name(tag) != "tag":
            continue
        ttype = tag.get("type")
        if ttype not in _SPIFFY_TYPES:
            raise LabelError(f"{what}: unsupported tag type {ttype!r} (line {tag.sourceline})")
        tid, lacv = tag.get("id"), tag.get("lacv")
        if tid is None or lacv is None:
            raise LabelError(f"{what}: tag without id or lacv (line {tag.sourceline})")
        ref = CategoryRef(tid.strip(), _SPIFFY_TYPES[ttype], norm_lacv(lacv))
        if spif.tagset(ref.tagset_id) is None:
            raise LabelError(f"{what}: Unknown tagset id: {ref.tagset_id}")
        if spif.category(ref) is None:
            raise LabelError(
                f"{what}: Cannot find the tagType/LACV {ttype}/{lacv} in tag set {tid} "
                f"(line {tag.sourceline})"
            )
        refs.append(ref)
    return refs


def _lacv_of(el: etree._Element, what: str) -> int:
    raw = (el.get("lacv") or "").strip()
    if not raw.isdigit():
        raise LabelError(f"{what}: classification lacv {raw!r} is not an integer")
    return int(raw)


def _spiffy_label(root: etree._Element, spifs: Mapping[str, Spif]) -> Label:
    spif = _spiffy_policy(root, spifs, "label")
    cls_el = next((c for c in root if local_name(c) == "classification"), None)
    if cls_el is None:
        raise LabelError("label has no classification")
    lacv = _lacv_of(cls_el, "label")
    if spif.classification(lacv) is None:
        raise LabelError(f"label: Unknown classification lacv {lacv} in policy {spif.name}")
    return label_from_refs(spif, lacv, _spiffy_refs(root, spif, "label"))


def _spiffy_clearance(root: etree._Element, spifs: Mapping[str, Spif]) -> Clearance:
    spif = _spiffy_policy(root, spifs, "clearance")
    lacvs = [_lacv_of(c, "clearance") for c in root if local_name(c) == "classification"]
    return clearance_from_refs(spif, lacvs, _spiffy_refs(root, spif, "clearance"))


def read_label_any(data: bytes, spifs: Mapping[str, Spif], *, lenient: bool = True) -> Label:
    """Read a label in STANAG 4774 XML or spiffing's small XML form."""
    root = parse_xml(data, what="label").root
    if namespace(root) == SPIFFY_NS and local_name(root) == "label":
        return _spiffy_label(root, spifs)
    return _label_from_4774(root, lenient=lenient)


def read_clearance(data: bytes, spifs: Mapping[str, Spif] | None = None) -> Clearance:
    """Read a clearance in STANAG 4774 clearance XML or spiffing's small XML form."""
    root = parse_xml(data, what="clearance").root
    ns, name = namespace(root), local_name(root)
    if ns == SPIFFY_NS and name == "clearance":
        return _spiffy_clearance(root, spifs or {})
    if ns == CLEARANCE_NS and name == "ConfidentialityClearance":
        return _clearance_from_4774(root)
    raise LabelError(f"not a clearance: root element <{name}> in namespace {ns!r}")
