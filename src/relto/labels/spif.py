"""Open XML SPIF 2.1: the policy model and its loader.

A :class:`Spif` is immutable once loaded. Loading checks the SPIF against its own
rules (duplicates, dangling references) and, in strict mode, against the Open XML
SPIF 2.1 schema; lenient mode (spiffing-compatible) turns schema findings into
``Spif.warnings`` but still refuses a SPIF that contradicts itself.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from lxml import etree

from relto.labels._xml import local_name, parse_xml
from relto.labels.errors import SpifError, SpifUnreadable, XmlRefused

__all__ = [
    "Category",
    "CategoryData",
    "CategoryGroup",
    "CategoryRef",
    "Classification",
    "EquivalentCategory",
    "EquivalentClassification",
    "EquivalentPolicy",
    "Lacv",
    "Loc",
    "Marking",
    "Markings",
    "Phrase",
    "Spif",
    "Tag",
    "TagSet",
    "TagType",
    "load_spif",
    "norm_lacv",
]

SPIF_NS = "http://www.xmlspif.org/spif"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: A local attribute category value: an integer where the text is decimal digits.
Lacv = int | str


def norm_lacv(text: str) -> Lacv:
    """Normalise a LACV: ``'036'`` and ``'36'`` are the same value."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    return t


class TagType(enum.Enum):
    RESTRICTIVE = "restrictive"
    PERMISSIVE = "permissive"
    ENUM_PERMISSIVE = "enumeratedPermissive"
    ENUM_RESTRICTIVE = "enumeratedRestrictive"
    INFORMATIVE = "informative"

    @property
    def is_permissive(self) -> bool:
        return self in (TagType.PERMISSIVE, TagType.ENUM_PERMISSIVE)

    @property
    def is_restrictive(self) -> bool:
        return self in (TagType.RESTRICTIVE, TagType.ENUM_RESTRICTIVE)

    @property
    def stanag(self) -> str:
        """The STANAG 4774 ``Category/@Type`` for this tag type."""
        if self.is_permissive:
            return "PERMISSIVE"
        if self.is_restrictive:
            return "RESTRICTIVE"
        return "INFORMATIVE"


class Loc(enum.IntFlag):
    """SPIF marking codes (where a phrase applies and how it is displayed)."""

    PAGE_TOP = 1
    PAGE_BOTTOM = 2
    DOCUMENT_END = 4
    NO_NAME_DISPLAY = 8
    NO_MARKING_DISPLAY = 16
    DOCUMENT_START = 32
    SUPPRESS_CLASS_NAME = 64
    REPLACE_POLICY = 128


_CODES: dict[str, tuple[Loc, bool]] = {
    # code -> (flags, whether it names a location)
    "noMarkingDisplay": (Loc.NO_MARKING_DISPLAY, True),
    "noNameDisplay": (Loc.NO_NAME_DISPLAY, False),
    "suppressClassName": (Loc.SUPPRESS_CLASS_NAME, False),
    "pageBottom": (Loc.PAGE_BOTTOM, True),
    "pageTop": (Loc.PAGE_TOP, True),
    "pageTopBottom": (Loc.PAGE_TOP | Loc.PAGE_BOTTOM, True),
    "replacePolicy": (Loc.REPLACE_POLICY, False),
    "documentStart": (Loc.DOCUMENT_START, True),
    "documentEnd": (Loc.DOCUMENT_END, True),
}


@dataclass(frozen=True)
class Phrase:
    codes: Loc
    text: str | None


@dataclass(frozen=True)
class Marking:
    """Marking data and qualifiers of one SPIF element in one language."""

    lang: str
    prefix: str = ""
    suffix: str = ""
    separator: str = ""
    phrases: tuple[Phrase, ...] = ()

    def _first(self, loc: Loc) -> Phrase | None:
        for p in self.phrases:
            if p.codes & loc:
                return p
        return None

    def phrase(self, loc: Loc, default: str) -> str:
        p = self._first(loc)
        if p is None:
            return default
        if p.codes & Loc.NO_NAME_DISPLAY:
            return ""
        if p.codes & Loc.REPLACE_POLICY or p.text is None:
            return default
        return p.text

    def policy_phrase(self, loc: Loc, default: str) -> str:
        p = self._first(loc | Loc.REPLACE_POLICY)
        if p is None or p.text is None:
            return default
        return p.text

    def suppress_class_name(self, loc: Loc) -> bool:
        p = self._first(loc)
        return p is not None and bool(p.codes & Loc.SUPPRESS_CLASS_NAME)

    def replace_policy(self, loc: Loc) -> bool:
        p = self._first(loc)
        return p is not None and bool(p.codes & Loc.REPLACE_POLICY)


@dataclass(frozen=True)
class Markings:
    """The markings of one SPIF element, by language tag (``''`` = default)."""

    by_lang: tuple[Marking, ...] = ()

    def for_lang(self, lang: str | None) -> Marking | None:
        """Exact language, then its primary subtag, then the default."""
        table = {m.lang.lower(): m for m in self.by_lang}
        if lang:
            want = lang.lower().replace("_", "-")
            if want in table:
                return table[want]
            primary = want.split("-", 1)[0]
            if primary in table:
                return table[primary]
        return table.get("")

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(m.lang for m in self.by_lang)


@dataclass(frozen=True)
class CategoryRef:
    """Identifies a category within a policy: tag set OID, tag type and LACV."""

    tagset_id: str
    tag_type: TagType
    lacv: Lacv


@dataclass(frozen=True)
class CategoryData:
    """A reference to one category (``lacv``) or all of a tag type (``lacv=None``)."""

    tagset_name: str
    tag_type: TagType
    lacv: Lacv | None


@dataclass(frozen=True)
class CategoryGroup:
    operation: Literal["onlyOne", "oneOrMore", "all"]
    data: tuple[CategoryData, ...]


@dataclass(frozen=True)
class EquivalentClassification:
    policy_id: str
    lacv: int
    applied: Literal["encrypt", "decrypt", "both"]
    required: tuple[CategoryGroup, ...] = ()

    @property
    def for_encrypt(self) -> bool:
        return self.applied in ("encrypt", "both")


@dataclass(frozen=True)
class EquivalentCategory:
    policy_id: str
    tagset_id: str
    tag_type: TagType
    lacv: Lacv
    applied: Literal["encrypt", "decrypt", "both"]
    discard: bool = False

    @property
    def for_encrypt(self) -> bool:
        return self.applied in ("encrypt", "both")


@dataclass(frozen=True)
class EquivalentPolicy:
    name: str
    id: str
    required: tuple[CategoryGroup, ...] = ()


@dataclass(frozen=True)
class Classification:
    name: str
    lacv: int
    hierarchy: int
    color: str | None = None
    obsolete: bool = False
    required: tuple[CategoryGroup, ...] = ()
    equivalents: tuple[EquivalentClassification, ...] = ()
    markings: Markings = field(default_factory=Markings)


@dataclass(frozen=True)
class Category:
    name: str
    lacv: Lacv
    ordinal: int
    tag_name: str
    tag_type: TagType
    tagset_id: str
    tagset_name: str
    obsolete: bool = False
    excluded_classes: frozenset[int] = frozenset()
    excluded: tuple[CategoryData, ...] = ()
    required: tuple[CategoryGroup, ...] = ()
    equivalents: tuple[EquivalentCategory, ...] = ()
    markings: Markings = field(default_factory=Markings)

    @property
    def ref(self) -> CategoryRef:
        return CategoryRef(self.tagset_id, self.tag_type, self.lacv)


@dataclass(frozen=True)
class Tag:
    name: str
    tag_type: TagType
    tagset_id: str
    categories: tuple[Category, ...]
    markings: Markings = field(default_factory=Markings)
    single_selection: bool = False


@dataclass(frozen=True)
class TagSet:
    id: str
    name: str
    tags: tuple[Tag, ...]
    markings: Markings = field(default_factory=Markings)


@dataclass(frozen=True, eq=False)
class Spif:
    """A loaded security policy (immutable)."""

    policy_id: str
    name: str
    classifications: tuple[Classification, ...]
    tagsets: tuple[TagSet, ...] = ()
    equivalent_policies: tuple[EquivalentPolicy, ...] = ()
    markings: Markings = field(default_factory=Markings)
    warnings: tuple[str, ...] = ()

    # -- lookups (built lazily, cached on the instance) --------------------------------
    @functools.cached_property
    def _by_lacv(self) -> dict[int, Classification]:
        return {c.lacv: c for c in self.classifications}

    @functools.cached_property
    def _tags(self) -> dict[str, Tag]:
        return {t.name: t for ts in self.tagsets for t in ts.tags}

    @functools.cached_property
    def _cats(self) -> dict[CategoryRef, Category]:
        return {c.ref: c for ts in self.tagsets for t in ts.tags for c in t.categories}

    @functools.cached_property
    def _tagset_by_id(self) -> dict[str, TagSet]:
        return {ts.id: ts for ts in self.tagsets}

    @functools.cached_property
    def _tagset_by_name(self) -> dict[str, TagSet]:
        return {ts.name: ts for ts in self.tagsets}

    def classification(self, lacv: int) -> Classification | None:
        return self._by_lacv.get(lacv)

    def classification_by_name(self, name: str) -> Classification | None:
        for c in self.classifications:
            if c.name == name:
                return c
        folded = " ".join(name.split()).casefold()
        for c in self.classifications:
            if c.name.casefold() == folded:
                return c
        return None

    def tagset(self, tagset_id: str) -> TagSet | None:
        return self._tagset_by_id.get(tagset_id)

    def tagset_by_name(self, name: str) -> TagSet | None:
        return self._tagset_by_name.get(name)

    def tag(self, name: str) -> Tag | None:
        return self._tags.get(name)

    def category(self, ref: CategoryRef) -> Category | None:
        return self._cats.get(ref)

    def categories_of(self, tagset_name: str, tag_type: TagType) -> tuple[Category, ...]:
        ts = self.tagset_by_name(tagset_name)
        if ts is None:
            return ()
        return tuple(c for t in ts.tags if t.tag_type is tag_type for c in t.categories)

    def category_by_name(self, tagset_name: str, stanag_type: str, value: str) -> Category | None:
        """A category named ``value`` in tag set ``tagset_name`` of a STANAG 4774 type."""
        ts = self.tagset_by_name(tagset_name)
        if ts is None:
            return None
        for t in ts.tags:
            if t.tag_type.stanag != stanag_type:
                continue
            for c in t.categories:
                if c.name == value:
                    return c
        return None

    def resolve(self, data: CategoryData) -> tuple[Category, ...]:
        """Categories that a category reference in this SPIF stands for."""
        if data.lacv is None:
            return self.categories_of(data.tagset_name, data.tag_type)
        ts = self.tagset_by_name(data.tagset_name)
        if ts is None:
            return ()
        cat = self.category(CategoryRef(ts.id, data.tag_type, data.lacv))
        return (cat,) if cat is not None else ()

    def equivalent_policy(self, policy_id: str) -> EquivalentPolicy | None:
        for p in self.equivalent_policies:
            if p.id == policy_id:
                return p
        return None

    def __repr__(self) -> str:
        return f"Spif(policy_id={self.policy_id!r}, name={self.name!r})"


# ---------------------------------------------------------------------------------------
# loading


@functools.lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    data = resources.files("relto.labels").joinpath("data")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    with resources.as_file(data.joinpath("spif-21.xsd")) as xsd_path:
        doc = etree.parse(str(xsd_path), parser)
        return etree.XMLSchema(doc)


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if local_name(c) == name]


def _child(el: etree._Element, name: str) -> etree._Element | None:
    for c in el:
        if local_name(c) == name:
            return c
    return None


def _where(el: etree._Element) -> str:
    name = el.get("name")
    line = el.sourceline
    label = f"<{local_name(el)}"
    if name is not None:
        label += f' name="{name}"'
    label += ">"
    return f"{label} (line {line})" if line else label


def _attr(el: etree._Element, name: str) -> str:
    value = el.get(name)
    if value is None:
        raise SpifError(f"{_where(el)} has no {name} attribute")
    return str(value)


def _int_attr(el: etree._Element, name: str) -> int:
    value = _attr(el, name).strip()
    if not value.isdigit():
        raise SpifError(f"{_where(el)}: {name}={value!r} is not a non-negative integer")
    return int(value)


def _parse_markings(holder: etree._Element) -> Markings:
    quals = [q for mq in _children(holder, "markingQualifier") for q in _children(mq, "qualifier")]
    datas = _children(holder, "markingData")
    langs: list[str] = []
    for el in [*quals, *datas]:
        lang = el.get(XML_LANG, "")
        if lang not in langs:
            langs.append(lang)
    out: list[Marking] = []
    for lang in langs:
        fields = {"prefix": "", "suffix": "", "separator": ""}
        mine = [q for q in quals if q.get(XML_LANG, "") == lang]
        for q in mine:
            code, text = q.get("qualifierCode"), q.get("markingQualifier")
            if text is None or code is None:
                continue
            key = {"prefix": "prefix", "suffix": "suffix", "separator": "separator"}.get(code)
            if key is not None:
                fields[key] = text
        if lang and mine:
            # a language's qualifiers fall back to the default language's ones
            for q in quals:
                if q.get(XML_LANG) is not None:
                    continue
                code, text = q.get("qualifierCode"), q.get("markingQualifier")
                if text is None or code is None:
                    continue
                key = {"prefix": "prefix", "suffix": "suffix", "separator": "separator"}.get(code)
                if key is not None and not fields[key]:
                    fields[key] = text
        phrases: list[Phrase] = []
        for d in datas:
            if d.get(XML_LANG, "") != lang:
                continue
            flags = Loc(0)
            located = False
            for code_el in _children(d, "code"):
                code = (code_el.text or "").strip()
                if code not in _CODES:
                    raise SpifError(f"Unknown marking code {code!r} in {_where(holder)}")
                bits, is_loc = _CODES[code]
                flags |= bits
                located = located or is_loc
            if not located:
                flags |= Loc.PAGE_BOTTOM
            phrases.append(Phrase(codes=flags, text=d.get("phrase")))
        out.append(Marking(lang=lang, phrases=tuple(phrases), **fields))
    return Markings(tuple(out))


def _parse_tag_type(el: etree._Element) -> TagType:
    name = el.get("tagType")
    if name is None:
        raise SpifError(f"{_where(el)} has no tagType")
    if name == "permissive":
        return TagType.PERMISSIVE
    if name == "restrictive":
        return TagType.RESTRICTIVE
    if name == "enumerated":
        enum_type = el.get("enumType")
        if enum_type is None:
            raise SpifError(f"{_where(el)} has tagType enumerated but no enumType")
        if enum_type == "permissive":
            return TagType.ENUM_PERMISSIVE
        if enum_type == "restrictive":
            return TagType.ENUM_RESTRICTIVE
        raise SpifError(f"{_where(el)}: unknown enumType {enum_type!r}")
    if name == "tagType7":
        return TagType.INFORMATIVE
    raise SpifError(f"{_where(el)}: unknown tagType {name!r}")


def _parse_category_data(el: etree._Element) -> CategoryData:
    tagset = el.get("tagSetRef")
    if not tagset:
        raise SpifError(f"{_where(el)} has no tagSetRef")
    lacv = el.get("lacv")
    return CategoryData(tagset, _parse_tag_type(el), None if lacv is None else norm_lacv(lacv))


def _parse_group(el: etree._Element) -> CategoryGroup:
    op = el.get("operation")
    if op not in ("onlyOne", "oneOrMore", "all"):
        raise SpifError(f"{_where(el)}: operation must be onlyOne, oneOrMore or all, not {op!r}")
    data = tuple(_parse_category_data(c) for c in _children(el, "categoryGroup"))
    return CategoryGroup(op, data)


def _applied(el: etree._Element) -> Literal["encrypt", "decrypt", "both"]:
    value = el.get("applied")
    if value == "encrypt":
        return "encrypt"
    if value == "decrypt":
        return "decrypt"
    if value == "both":
        return "both"
    raise SpifError(f"{_where(el)}: applied must be encrypt, decrypt or both, not {value!r}")


def _from_xml(root: etree._Element, warnings: list[str]) -> Spif:
    if local_name(root) != "SPIF":
        raise SpifError(f"Not a SPIF: the root element is <{local_name(root)}>")
    pid_el = _child(root, "securityPolicyId")
    if pid_el is None:
        raise SpifError("SPIF has no securityPolicyId")
    policy_id = _attr(pid_el, "id").strip()
    policy_name = _attr(pid_el, "name")

    equiv_policies: list[EquivalentPolicy] = []
    by_name: dict[str, str] = {}
    eps = _child(root, "equivalentPolicies")
    for ep in _children(eps, "equivalentPolicy") if eps is not None else []:
        name, pid = _attr(ep, "name"), _attr(ep, "id").strip()
        if name in by_name:
            raise SpifError(f"Duplicate equivalent policy name {name!r}")
        by_name[name] = pid
        reqs = tuple(_parse_group(r) for r in _children(ep, "requiredCategory"))
        equiv_policies.append(EquivalentPolicy(name, pid, reqs))
    # the policy may refer to itself by name too
    by_name.setdefault(policy_name, policy_id)

    def policy_ref(el: etree._Element) -> str:
        ref = _attr(el, "policyRef")
        if ref not in by_name:
            raise SpifError(f"{_where(el)}: PolicyRef not found: {ref!r}")
        return by_name[ref]

    scs = _child(root, "securityClassifications")
    if scs is None or not _children(scs, "securityClassification"):
        raise SpifError("SPIF has no securityClassifications")
    classes: list[Classification] = []
    seen_lacv: set[int] = set()
    seen_cname: set[str] = set()
    for c in _children(scs, "securityClassification"):
        name, lacv, hier = _attr(c, "name"), _int_attr(c, "lacv"), _int_attr(c, "hierarchy")
        if lacv in seen_lacv:
            raise SpifError(f"Duplicate classification lacv {lacv} ({name!r})")
        if name in seen_cname:
            raise SpifError(f"Duplicate classification name {name!r}")
        seen_lacv.add(lacv)
        seen_cname.add(name)
        equivs = []
        for e in _children(c, "equivalentClassification"):
            equivs.append(
                EquivalentClassification(
                    policy_ref(e),
                    _int_attr(e, "lacv"),
                    _applied(e),
                    tuple(_parse_group(r) for r in _children(e, "requiredCategory")),
                )
            )
        classes.append(
            Classification(
                name=name,
                lacv=lacv,
                hierarchy=hier,
                color=c.get("color"),
                obsolete=c.get("obsolete", "false") == "true",
                required=tuple(_parse_group(r) for r in _children(c, "requiredCategory")),
                equivalents=tuple(equivs),
                markings=_parse_markings(c),
            )
        )
    class_by_name = {c.name: c.lacv for c in classes}

    tagsets: list[TagSet] = []
    ordinal = 0
    sets_el = _child(root, "securityCategoryTagSets")
    seen_ts_id: set[str] = set()
    seen_ts_name: set[str] = set()
    for ts in _children(sets_el, "securityCategoryTagSet") if sets_el is not None else []:
        ts_id, ts_name = _attr(ts, "id").strip(), _attr(ts, "name")
        if ts_id in seen_ts_id:
            raise SpifError(f"Duplicate TagSet id {ts_id}")
        if ts_name in seen_ts_name:
            raise SpifError(f"Duplicate TagSet name {ts_name!r}")
        seen_ts_id.add(ts_id)
        seen_ts_name.add(ts_name)
        tags: list[Tag] = []
        seen_keys: set[tuple[TagType, Lacv]] = set()
        for tag in _children(ts, "securityCategoryTag"):
            tag_name = _attr(tag, "name")
            tag_type = _parse_tag_type(tag)
            cats: list[Category] = []
            for cat in _children(tag, "tagCategory"):
                cname = _attr(cat, "name")
                cat_lacv = norm_lacv(_attr(cat, "lacv"))
                if (tag_type, cat_lacv) in seen_keys:
                    raise SpifError(
                        f"Duplicate category lacv {cat_lacv!r} of type {tag_type.value} "
                        f"in tag set {ts_name!r} ({_where(cat)})"
                    )
                seen_keys.add((tag_type, cat_lacv))
                excluded_classes: set[int] = set()
                for ex in _children(cat, "excludedClass"):
                    cls_name = (ex.text or "").strip()
                    if not cls_name:
                        raise SpifError(f"Empty excludedClass element in {_where(cat)}")
                    if cls_name not in class_by_name:
                        raise SpifError(
                            f"Unknown classification in exclusion: {cls_name!r} in {_where(cat)}"
                        )
                    if class_by_name[cls_name] in excluded_classes:
                        raise SpifError(
                            f"Duplicate excluded classification in category {cname!r} "
                            f"(tag {tag_name!r}): {cls_name!r} listed twice ({_where(cat)})"
                        )
                    excluded_classes.add(class_by_name[cls_name])
                equivs_c: list[EquivalentCategory] = []
                for e in _children(cat, "equivalentSecCategoryTag"):
                    target = policy_ref(e)
                    discard = e.get("action") == "discard"
                    equivs_c.append(
                        EquivalentCategory(
                            policy_id=target,
                            tagset_id=_attr(e, "tagSetId").strip(),
                            tag_type=_parse_tag_type(e),
                            lacv=norm_lacv(e.get("lacv", "")),
                            applied=_applied(e),
                            discard=discard,
                        )
                    )
                cats.append(
                    Category(
                        name=cname,
                        lacv=cat_lacv,
                        ordinal=ordinal,
                        tag_name=tag_name,
                        tag_type=tag_type,
                        tagset_id=ts_id,
                        tagset_name=ts_name,
                        obsolete=cat.get("obsolete", "false") == "true",
                        excluded_classes=frozenset(excluded_classes),
                        excluded=tuple(
                            _parse_category_data(x) for x in _children(cat, "excludedCategory")
                        ),
                        required=tuple(_parse_group(r) for r in _children(cat, "requiredCategory")),
                        equivalents=tuple(equivs_c),
                        markings=_parse_markings(cat),
                    )
                )
                ordinal += 1
            tags.append(
                Tag(
                    name=tag_name,
                    tag_type=tag_type,
                    tagset_id=ts_id,
                    categories=tuple(cats),
                    markings=_parse_markings(tag),
                    single_selection=tag.get("singleSelection", "false") == "true",
                )
            )
        tagsets.append(TagSet(ts_id, ts_name, tuple(tags), _parse_markings(ts)))

    spif = Spif(
        policy_id=policy_id,
        name=policy_name,
        classifications=tuple(classes),
        tagsets=tuple(tagsets),
        equivalent_policies=tuple(equiv_policies),
        markings=_parse_markings(root),
        warnings=tuple(warnings),
    )
    _check_references(spif)
    return spif


def _check_references(spif: Spif) -> None:
    """Every in-policy category reference must name an existing tag set and category."""

    def check(data: Iterable[CategoryData], where: str) -> None:
        for d in data:
            if spif.tagset_by_name(d.tagset_name) is None:
                raise SpifError(f"{where}: unknown tag set name {d.tagset_name!r}")
            if d.lacv is not None and not spif.resolve(d):
                raise SpifError(
                    f"{where}: tag set {d.tagset_name!r} has no {d.tag_type.value} "
                    f"category with lacv {d.lacv!r}"
                )

    for c in spif.classifications:
        for g in c.required:
            check(g.data, f"classification {c.name!r} requiredCategory")
    for ts in spif.tagsets:
        for t in ts.tags:
            for cat in t.categories:
                check(cat.excluded, f"category {cat.name!r} excludedCategory")
                for g in cat.required:
                    check(g.data, f"category {cat.name!r} requiredCategory")


def load_spif(source: Path | str | bytes, *, strict: bool = True) -> Spif:
    """Load a SPIF from a path or bytes.

    ``strict`` (the default) also validates against the Open XML SPIF 2.1 schema and
    refuses malformed XML. ``strict=False`` is spiffing-compatible: documents outside
    the SPIF namespace, schema findings and recoverable well-formedness errors become
    ``Spif.warnings``; a SPIF that breaks its own rules is refused either way.
    """
    if isinstance(source, bytes):
        data, what = source, "SPIF"
    else:
        path = Path(source)
        what = f"SPIF {path.name}"
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SpifUnreadable(f"{what}: cannot read ({exc.strerror})") from None
    try:
        parsed = parse_xml(data, what=what, recover=False)
        warnings: list[str] = []
    except XmlRefused as exc:
        if strict or "DTD" in str(exc) or "limit" in str(exc) or "empty" in str(exc):
            raise SpifUnreadable(str(exc)) from None
        try:
            parsed = parse_xml(data, what=what, recover=True)
        except XmlRefused as again:
            raise SpifUnreadable(str(again)) from None
        warnings = list(parsed.warnings) or [str(exc)]
    root = parsed.root
    schema = _schema()
    if not schema.validate(root.getroottree()):
        findings = [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5]]
        if strict:
            raise SpifError(f"{what} is not valid Open XML SPIF 2.1: " + "; ".join(findings))
        warnings.extend(f"{what}: schema: {f}" for f in findings)
    return _from_xml(root, warnings)


def registry_from(spifs: Iterable[Spif]) -> Mapping[str, Spif]:
    """Index SPIFs by policy id (later ones do not replace earlier ones)."""
    out: dict[str, Spif] = {}
    for s in spifs:
        out.setdefault(s.policy_id, s)
    return out
