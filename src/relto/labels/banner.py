"""CAPCO-style banner and portion markings used across the partnership.

``SECRET//REL TO USA, AUS, GBR``, ``TOP SECRET//NOFORN``, ``(S//REL TO USA, GBR)``.
Parsing is forgiving about case, spacing and the order of controls, and refuses
contradictions; :class:`Banner` is always canonical, so rendering is canonical and
``parse_banner(b.render()) == b``.

REL TO order: the originating nation first, then the other trigraphs alphabetically,
then tetragraphs alphabetically (for USA this is the IC-ISM CVEnumISMRelTo rule).
Without an originator, USA goes first when present (the IC-ISM rule).

:func:`parse_banner` reads canonical-able markings for people and labels;
:func:`read_marking` reads the same grammar with the same meaning for the decision
engine, which also needs the restrictive categories (``SI``, ``TK``, ``ATOMAL``)
outside the dissemination register and reads ``REL TO`` of the originator alone
as the NOFORN it stands for. One parser serves both, so a marking cannot mean one
thing to the labels and another to a decision.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from relto.labels._builtin import NATIONS, builtin_policy
from relto.labels.errors import MarkingError

__all__ = [
    "CLASSIFICATION_ABBREVIATIONS",
    "DISSEMINATION_CONTROLS",
    "TETRAGRAPHS",
    "Banner",
    "Marking",
    "expand_rel_to",
    "is_country_code",
    "parse_banner",
    "read_marking",
    "rel_to_order",
]

#: CAPCO classification names and their portion abbreviations.
CLASSIFICATION_ABBREVIATIONS: dict[str, str] = {
    "TOP SECRET": "TS",
    "SECRET": "S",
    "CONFIDENTIAL": "C",
    "RESTRICTED": "R",
    "UNCLASSIFIED": "U",
}

#: Dissemination controls in canonical (CAPCO register / IC-ISM CVEnumISMDissem) order:
#: banner form -> portion form. ``REL TO`` takes a country list.
DISSEMINATION_CONTROLS: dict[str, str] = {
    "RSEN": "RS",
    "FOUO": "FOUO",
    "ORCON": "OC",
    "IMCON": "IMC",
    "NOFORN": "NF",
    "PROPIN": "PR",
    "REL TO": "REL TO",
    "RELIDO": "RELIDO",
    "DSEN": "DSEN",
    "FISA": "FISA",
}
_CONTROL_ORDER = {name: i for i, name in enumerate(DISSEMINATION_CONTROLS)}
_CONTROL_ALIASES: dict[str, str] = {}
for _banner, _portion in DISSEMINATION_CONTROLS.items():
    _CONTROL_ALIASES[_banner] = _banner
    _CONTROL_ALIASES[_portion] = _banner
_CONTROL_ALIASES["NF"] = "NOFORN"

#: Coalition tetragraphs relto can expand, with their member trigraphs.
#: Sources: FVEY and ACGU and TEYE — CAPCO Register coalition tetragraph table as
#: summarised in the public IC markings manual (FIVE EYES: AUS CAN GBR NZL USA; FOUR
#: EYES: AUS CAN GBR USA; THREE EYES: AUS GBR USA); names match IC-ISM CVEnumISMRelTo
#: descriptions. NATO — member states per nato.int "NATO member countries" (32 since
#: Sweden joined on 7 March 2024).
TETRAGRAPHS: dict[str, frozenset[str]] = {
    "ACGU": frozenset({"AUS", "CAN", "GBR", "USA"}),
    "FVEY": frozenset({"AUS", "CAN", "GBR", "NZL", "USA"}),
    "NATO": frozenset(
        {
            "ALB", "BEL", "BGR", "CAN", "CZE", "DEU", "DNK", "ESP", "EST", "FIN", "FRA",
            "GBR", "GRC", "HRV", "HUN", "ISL", "ITA", "LTU", "LUX", "LVA", "MKD", "MNE",
            "NLD", "NOR", "POL", "PRT", "ROU", "SVK", "SVN", "SWE", "TUR", "USA",
        }
    ),
    "TEYE": frozenset({"AUS", "GBR", "USA"}),
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def _trigraphs() -> frozenset[str]:
    raw = resources.files("relto.labels").joinpath("data", "rel_to_codes.json").read_text("utf-8")
    data = json.loads(raw)
    # ISO 3166-1 alpha-3 only: GENC's own X-codes (the ISO user-assigned range X..,
    # e.g. XXX "No Man's Land", XKS) and its numbered entities are left out
    return frozenset(
        c for c in data["trigraphs"] if len(c) == 3 and c.isalpha() and not c.startswith("X")
    )


def is_country_code(code: str) -> bool:
    """A valid REL TO trigraph (ISM / ISO 3166 alpha-3) or a known tetragraph."""
    return code in _trigraphs() or code in TETRAGRAPHS


def rel_to_order(codes: Iterable[str], originator: str | None = None) -> tuple[str, ...]:
    """Canonical REL TO order (duplicates removed)."""
    unique = set(codes)
    first = originator if originator in unique else ("USA" if "USA" in unique else None)
    tri = sorted(c for c in unique if len(c) == 3 and c != first)
    tetra = sorted(c for c in unique if len(c) != 3 and c != first)
    return ((first,) if first else ()) + tuple(tri) + tuple(tetra)


def expand_rel_to(codes: Iterable[str]) -> frozenset[str]:
    """The trigraphs a REL TO list stands for (tetragraphs expanded)."""
    out: set[str] = set()
    for code in codes:
        c = code.strip().upper()
        if c in TETRAGRAPHS:
            out |= TETRAGRAPHS[c]
        elif c in _trigraphs():
            out.add(c)
        else:
            raise MarkingError(f"unknown country code {code!r}")
    return frozenset(out)


def _national_levels(originator: str) -> dict[str, str]:
    """Classification names of the originator's built-in scheme, folded -> canonical."""
    if originator not in NATIONS:
        return {}
    return {
        " ".join(c.name.split()).upper(): c.name for c in builtin_policy(originator).classifications
    }


def _canonical_classification(text: str, originator: str | None) -> str | None:
    folded = " ".join(text.split()).upper()
    for name, abbr in CLASSIFICATION_ABBREVIATIONS.items():
        if folded in (name, abbr):
            return name
    if originator is not None:
        return _national_levels(originator).get(folded)
    return None


@dataclass(frozen=True)
class Banner:
    """A parsed banner marking, always in canonical form."""

    classification: str
    rel_to: tuple[str, ...] = ()
    noforn: bool = False
    originator: str | None = None
    dissem: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        originator = self.originator.strip().upper() if self.originator else None
        if originator is not None and originator not in _trigraphs():
            raise MarkingError(f"unknown originator country code {self.originator!r}")
        cls = _canonical_classification(self.classification, originator)
        if cls is None:
            raise MarkingError(f"unknown classification {self.classification!r}")
        rel = [c.strip().upper() for c in self.rel_to]
        for c in rel:
            if not is_country_code(c):
                raise MarkingError(f"unknown country code {c!r} in REL TO")
        dissem: set[str] = set()
        for d in self.dissem:
            name = _CONTROL_ALIASES.get(" ".join(d.split()).upper())
            if name is None or name == "REL TO":
                raise MarkingError(f"unknown dissemination control {d!r}")
            if name == "NOFORN":
                object.__setattr__(self, "noforn", True)
                continue
            dissem.add(name)
        ordered = rel_to_order(rel, originator)
        if self.noforn and ordered:
            raise MarkingError("NOFORN contradicts REL TO: a marking cannot be both")
        if self.noforn and "RELIDO" in dissem:
            raise MarkingError("RELIDO contradicts NOFORN")
        if ordered:
            refusal = _rel_to_refusal(cls, ordered, dissem, originator)
            if refusal is not None:
                raise refusal
        object.__setattr__(self, "classification", cls)
        object.__setattr__(self, "originator", originator)
        object.__setattr__(self, "rel_to", ordered)
        object.__setattr__(self, "dissem", tuple(sorted(dissem, key=_CONTROL_ORDER.__getitem__)))

    @property
    def controls(self) -> tuple[str, ...]:
        """The dissemination controls other than NOFORN and REL TO (same as ``dissem``)."""
        return self.dissem

    def _controls(self, portion: bool) -> list[str]:
        out: list[str] = []
        present = set(self.dissem)
        if self.noforn:
            present.add("NOFORN")
        if self.rel_to:
            present.add("REL TO")
        for name, short in DISSEMINATION_CONTROLS.items():
            if name not in present:
                continue
            if name == "REL TO":
                out.append("REL TO " + ", ".join(self.rel_to))
            else:
                out.append(short if portion else name)
        return out

    def render(self) -> str:
        """The canonical banner line, e.g. ``SECRET//REL TO USA, AUS, GBR``."""
        controls = self._controls(portion=False)
        return self.classification + ("//" + "/".join(controls) if controls else "")

    def render_portion(self) -> str:
        """The canonical portion marking, e.g. ``(S//REL TO USA, GBR)``."""
        abbr = CLASSIFICATION_ABBREVIATIONS.get(self.classification, self.classification)
        controls = self._controls(portion=True)
        return "(" + abbr + ("//" + "/".join(controls) if controls else "") + ")"

    def releasable_to(self) -> frozenset[str]:
        """The nations this marking releases to (tetragraphs expanded; NOFORN: none)."""
        return expand_rel_to(self.rel_to)


@dataclass(frozen=True)
class Marking:
    """A marking as the decision engine reads it (see :func:`read_marking`).

    ``banner`` is the canonical :class:`Banner` (its meaning is the one
    :func:`parse_banner` gives); ``categories`` are the restrictive categories and
    compartments outside the dissemination register (``SI``, ``TK``, ``ATOMAL``),
    upper-cased; whether each is known is for the reader to decide.
    """

    banner: Banner
    categories: frozenset[str] = frozenset()


_SEGMENT_SPLIT = re.compile(r"//")
_WORD = re.compile(r"[^\s,]+")
#: A category or compartment token (the shape relto.vetting accepts for a caveat).
_CATEGORY = re.compile(r"[A-Z0-9][A-Z0-9 _-]{0,31}")


def _fail(what: str, offset: int) -> MarkingError:
    return MarkingError(f"{what} at offset {offset}")


def _suggest(
    cls: str,
    rel_to: Iterable[str],
    noforn: bool,
    dissem: Iterable[str],
    originator: str,
    style: tuple[bool, bool] = (False, False),
) -> str | None:
    """A valid marking of the same classification and controls (``None``: none).

    ``style`` is (portion, foreign): a portion input gets a portion, and a marking
    that named its originator in the ``//GBR ...`` form keeps naming it."""
    kept = [d for d in dissem if not (noforn and d == "RELIDO")]
    try:
        b = Banner(
            cls, rel_to=tuple(rel_to), noforn=noforn, originator=originator, dissem=tuple(kept)
        )
    except MarkingError:
        return None
    portion, foreign = style
    text = b.render_portion()[1:-1] if portion else b.render()
    if foreign:
        text = f"//{originator} {text}"
    return f"({text})" if portion else text


def _rel_to_refusal(
    cls: str,
    rel_to: Iterable[str],
    dissem: Iterable[str],
    originator: str | None,
    offset: int | None = None,
    style: tuple[bool, bool] = (False, False),
) -> MarkingError | None:
    """Why a REL TO list is not a release, with advice that keeps its readers.

    A REL TO without the originating nation was meant for the nations it names
    and the originator: the advice adds the originator. A REL TO naming the
    originator alone releases to nobody else: the advice is NOFORN. Without a known
    originator a single nation could be either, and the advice says so. NOFORN is
    never advised for a list that names another nation: it would withhold the
    object from that nation.
    """
    codes = tuple(rel_to)
    where = "" if offset is None else f" (at offset {offset})"
    if originator is not None and originator not in expand_rel_to(codes):
        fixed = _suggest(cls, (originator, *codes), False, dissem, originator, style)
        advice = f"mark it {fixed}" if fixed else f"add {originator} to the list"
        return MarkingError(
            f"REL TO must include the originating nation {originator}{where}: {advice}",
            suggestion=fixed,
        )
    if len(codes) == 1 and len(codes[0]) == 3:
        only = codes[0]
        if originator is not None:  # the originator itself, by the check above
            fixed = _suggest(cls, (), True, dissem, originator, style)
            return MarkingError(
                f"REL TO lists only {only}, the originating nation{where}: a list of one "
                f"is not a release; mark it {fixed or 'NOFORN'}",
                suggestion=fixed,
            )
        return MarkingError(
            f"REL TO lists only {only}{where}: a list of one is not a release; if {only} "
            f"originated it, mark it NOFORN, otherwise name the originating nation too "
            f"(REL TO <originator>, {only})"
        )
    return None


def parse_banner(text: str, originator: str | None = None) -> Banner:
    """Parse a banner or portion marking into its canonical :class:`Banner`.

    Raises :class:`MarkingError` saying what is wrong and at which character offset
    (and, for a REL TO that is not a release, a ``suggestion`` with the same readers).
    """
    if not isinstance(text, str):
        raise TypeError("parse_banner expects a str")
    return _parse(text, originator, lenient=False).banner


def read_marking(text: str, originator: str | None = None) -> Marking:
    """Read a banner or portion marking for a decision: :func:`parse_banner`'s
    grammar and meaning, plus two readings it refuses as not canonical.

    - A token outside the dissemination register that has the shape of a category
      (``SI``, ``TK``, ``ATOMAL``) is a restrictive category, in any position.
    - ``REL TO`` naming only the originating nation (from ``originator`` or the
      ``//GBR ...`` form) is NOFORN, in any position: who may read is the same.

    Anything else :func:`parse_banner` refuses is refused here too.
    """
    if not isinstance(text, str):
        raise TypeError("read_marking expects a str")
    return _parse(text, originator, lenient=True)


def _parse(text: str, originator: str | None, *, lenient: bool) -> Marking:
    if len(text) > 4096:
        raise MarkingError("marking is longer than 4096 characters")
    start = len(text) - len(text.lstrip())
    body = text.strip()
    if not body:
        raise MarkingError("empty marking")
    portion = body.startswith("(")
    if portion:
        if not body.endswith(")"):
            raise _fail("unbalanced '(': the portion marking has no closing ')'", start)
        body = body[1:-1]
        start += 1
    elif body.endswith(")"):
        raise _fail("unbalanced ')': the portion marking has no opening '('", start + len(body) - 1)
    for ch in "()":
        if ch in body:
            raise _fail(f"unexpected {ch!r}", start + body.index(ch))
    # split into '//' segments with their offsets
    segments: list[tuple[int, str]] = []
    pos = 0
    for m in _SEGMENT_SPLIT.finditer(body):
        segments.append((start + pos, body[pos : m.start()]))
        pos = m.end()
    segments.append((start + pos, body[pos:]))
    orig = originator.strip().upper() if originator else None
    if orig is not None and orig not in _trigraphs():
        raise MarkingError(f"unknown originator country code {originator!r}")
    foreign = False
    if len(segments) > 1 and not segments[0][1].strip():
        # CAPCO foreign-government form: //GBR SECRET//REL TO ...
        segments = segments[1:]
        f_off, f_text = segments[0]
        lead = len(f_text) - len(f_text.lstrip())
        nat, _, rest = f_text.strip().partition(" ")
        nat = nat.upper()
        if nat not in _trigraphs():
            raise _fail(
                f"unknown originating country {nat!r} in '//COUNTRY LEVEL' form", f_off + lead
            )
        if orig is not None and orig != nat:
            raise _fail(f"the marking names originator {nat} but {orig} was given", f_off + lead)
        orig = nat
        foreign = True
        segments[0] = (f_off + lead + len(nat) + 1, rest)
    off0, cls_text = segments[0]
    if not cls_text.strip():
        raise _fail("missing classification", off0)
    if "/" in cls_text:
        raise _fail("a single '/' after the classification (use '//')", off0 + cls_text.index("/"))
    cls = _canonical_classification(cls_text, orig)
    if cls is None:
        lead = len(cls_text) - len(cls_text.lstrip())
        raise _fail(f"unknown classification {cls_text.strip()!r}", off0 + lead)
    rel_to: list[str] = []
    rel_at: int | None = None
    noforn_at: int | None = None
    relido_at: int | None = None
    dissem: list[str] = []
    categories: set[str] = set()
    for seg_off, seg in segments[1:]:
        if not seg.strip():
            raise _fail("empty control between '//' separators", seg_off)
        tpos = 0
        for token in seg.split("/"):
            t_off = seg_off + tpos
            tpos += len(token) + 1
            lead = len(token) - len(token.lstrip())
            word = " ".join(token.split()).upper()
            at = t_off + lead
            if not word:
                raise _fail("empty control between '/' separators", t_off)
            if word == "REL" or word.startswith(("REL TO", "REL ")):
                if rel_at is not None:
                    raise _fail(f"REL TO appears twice (first at offset {rel_at})", at)
                rel_at = at
                rm = re.match(r"\s*REL(\s+TO)?", token, re.IGNORECASE)
                head = rm.end() if rm is not None else len(token)
                rest_off = t_off + head
                codes = list(_WORD.finditer(token[head:]))
                if not codes:
                    raise _fail("REL TO without any country", at)
                for cm in codes:
                    code = cm.group(0).upper()
                    if not is_country_code(code):
                        raise _fail(
                            f"unknown country code {cm.group(0)!r} in REL TO", rest_off + cm.start()
                        )
                    if code not in rel_to:
                        rel_to.append(code)
                continue
            name = _CONTROL_ALIASES.get(word)
            if name is None and lenient and _CATEGORY.fullmatch(word):
                categories.add(word)
                continue
            if name is None:
                raise _fail(f"unknown dissemination control {token.strip()!r}", at)
            if name == "NOFORN":
                noforn_at = at if noforn_at is None else noforn_at
            else:
                if name == "RELIDO":
                    relido_at = at
                if name not in dissem:
                    dissem.append(name)
    if lenient and orig is not None and rel_at is not None and expand_rel_to(rel_to) == {orig}:
        # REL TO the originator alone releases to nobody else: the NOFORN it stands for
        rel_to = []
        noforn_at = rel_at if noforn_at is None else noforn_at
        rel_at = None
    if noforn_at is not None and rel_at is not None:
        raise MarkingError(
            f"NOFORN at offset {noforn_at} contradicts REL TO at offset {rel_at}: "
            "a marking cannot be both"
        )
    if noforn_at is not None and relido_at is not None:
        raise _fail("RELIDO contradicts NOFORN", relido_at)
    if rel_at is not None:
        refusal = _rel_to_refusal(cls, rel_to, dissem, orig, rel_at, (portion, foreign))
        if refusal is not None:
            raise refusal
    banner = Banner(
        classification=cls,
        rel_to=tuple(rel_to),
        noforn=noforn_at is not None,
        originator=orig,
        dissem=tuple(dissem),
    )
    return Marking(banner, frozenset(categories))
