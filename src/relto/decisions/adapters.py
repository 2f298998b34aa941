"""Facts builders: relto.labels and relto.vetting objects in, engine facts out.

The engine's core never imports another capability. This module is the one place
that does, and it converts at the edge:

- :func:`default_mapper` / :func:`default_recognition`: the real services
  (``relto.labels`` equivalences, ``relto.vetting`` agreements) behind the
  engine's protocols, with table fallbacks where a capability offers nothing.
- :func:`subject_from_vetting`: a vetting ``Person`` and their ``Clearance``
  records -> :class:`Subject` at a time.
- :func:`resource_from_banner`: a banner marking -> :class:`Resource`.
- :func:`world_review_keeps_access`: vetting's per-nation "under review suspends".
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from relto.decisions._model import ClearanceFact, ExportFacts, Resource, Subject
from relto.decisions.protocols import COMMON_SCHEME, LevelMapper, Recognition, TableLevelMapper

__all__ = [
    "DEFAULT_CATEGORIES",
    "LabelsLevelMapper",
    "VettingRecognition",
    "default_mapper",
    "default_recognition",
    "resource_from_4774",
    "resource_from_banner",
    "subject_from_vetting",
    "vetting_grant",
    "world_review_keeps_access",
]

#: Restrictive categories the engine understands out of the box.
DEFAULT_CATEGORIES: frozenset[str] = frozenset(
    {"ATOMAL", "BOHEMIA", "CRYPTO", "HCS", "NNPI", "SAP", "SI", "TK", "UMBRA"}
    | {"IMCON", "PROPIN", "RSEN", "DSEN", "FISA"}
)
#: Dissemination controls (relto.labels names) that restrict like categories.
_RESTRICTIVE_CONTROLS = frozenset({"IMCON", "PROPIN", "RSEN", "DSEN", "FISA"})
#: Dissemination controls without effect on a decision.
_PERMISSIVE_CONTROLS = frozenset({"RELIDO", "FOUO", "REL", "DISPLAY ONLY"})
_ORCON = frozenset({"ORCON", "OC"})


#: The partnership's common scale (relto.partnership.CLASSIFICATIONS), lowest first.
_COMMON_LEVELS: tuple[str, ...] = (
    "UNCLASSIFIED",
    "RESTRICTED",
    "CONFIDENTIAL",
    "SECRET",
    "TOP SECRET",
)


#: Where a national level sits on the common scale when no equivalence in
#: relto.labels' partnership SPIF (and no level of the same name) places it: the
#: ranks of the engine's own table (:data:`relto.decisions.protocols.DEFAULT_SCHEMES`),
#: so that admission ceilings mean the same with either mapper (ADR 0085).
_UNSOURCED_COMMON: dict[tuple[str, str], str] = {
    ("GBR", "OFFICIAL"): "UNCLASSIFIED",
    ("AUS", "UNOFFICIAL"): "UNCLASSIFIED",
    ("AUS", "OFFICIAL"): "UNCLASSIFIED",
    ("AUS", "OFFICIAL: Sensitive"): "RESTRICTED",
    ("AUS", "PROTECTED"): "CONFIDENTIAL",
}


#: CAPCO portion abbreviations, read as the full names.
_ABBREVIATIONS = {"TS": "TOP SECRET", "S": "SECRET", "C": "CONFIDENTIAL", "R": "RESTRICTED"}
_ABBREVIATIONS["U"] = "UNCLASSIFIED"


def _vetting() -> Any:
    return importlib.import_module("relto.vetting")


class VettingRecognition:
    """:func:`relto.vetting.recognises` behind the engine's Recognition protocol."""

    def __init__(self, policy: Any = None) -> None:
        self._vetting = _vetting()
        self.policy = policy if policy is not None else self._vetting.default_policy()

    def recognises(self, issuer_nation: str, info_nation: str, at: datetime) -> bool:
        try:
            return bool(
                self._vetting.recognises(issuer_nation, info_nation, at, policy=self.policy)
            )
        except Exception:  # a malformed nation is not recognised (fail closed)
            return False


def default_recognition() -> Recognition:
    return VettingRecognition()


class LabelsLevelMapper:
    """``relto.labels.level_rank`` / ``map_level`` (the partnership SPIF equivalences).

    Forgiving about names, strict about meaning: a level a nation's SPIF does not
    have is read as the CAPCO (USA) level of that name mapped into the nation's
    scheme (``JPN SECRET`` is ``GOKUHI``). Anything else unknown is ``None`` and
    the engine denies.

    The partnership's common scale (:data:`COMMON_SCHEME`,
    ``relto.partnership.CLASSIFICATIONS``) is where admission ceilings are written.
    Each national level has a common equivalent (:meth:`common_level`): its own
    name when that is a common level, else its equivalence to the USA or NATO
    scheme, else the engine table's rank (:data:`_UNSOURCED_COMMON`, for GBR
    OFFICIAL and AUS's levels below SECRET). A ceiling maps to the *highest*
    national level whose common equivalent it dominates, so a ceiling admits an
    object exactly when the object's common equivalent is at or below it (a
    CONFIDENTIAL ceiling is GBR OFFICIAL and AUS PROTECTED; a RESTRICTED ceiling on
    a JPN object is nothing, JPN's lowest level being CONFIDENTIAL). ADR 0085.
    """

    def __init__(self) -> None:
        self._labels = _labels()
        self._alias: dict[tuple[str, str], str | None] = {}
        self._common: dict[tuple[str, str], str | None] = {}

    def _canonical(self, nation: str, level: str) -> str | None:
        key = (nation, level)
        if key in self._alias:
            return self._alias[key]
        out: str | None = None
        folded = " ".join(level.split()).upper()
        full = _ABBREVIATIONS.get(folded, folded)
        for name in dict.fromkeys((level, folded, full)):
            if self._known(nation, name):
                out = name
                break
        if out is None:
            for pivot in ("USA", "NATO"):
                try:
                    out = self._labels.map_level(pivot, full, nation)
                except Exception:
                    out = None
                if out is not None:
                    break
        self._alias[key] = out
        return out

    def _known(self, nation: str, level: str) -> bool:
        try:
            self._labels.level_rank(nation, level)
        except Exception:
            return False
        return True

    def rank(self, nation: str, level: str) -> int | None:
        if nation == COMMON_SCHEME:
            return _COMMON_LEVELS.index(level) if level in _COMMON_LEVELS else None
        name = self._canonical(nation, level)
        if name is None:
            return None
        try:
            return int(self._labels.level_rank(nation, name))
        except Exception:
            return None

    def map_level(self, from_nation: str, level: str, to_nation: str) -> str | None:
        if from_nation == COMMON_SCHEME:
            return self._from_common(level, to_nation)
        name = self._canonical(from_nation, level)
        if name is None:
            return None
        try:
            mapped = self._labels.map_level(from_nation, name, to_nation)
        except Exception:
            return None
        return None if mapped is None else str(mapped)

    def common_level(self, nation: str, level: str) -> str | None:
        """The common-scale level equivalent to ``level`` of ``nation`` (``None``: none)."""
        name = self._canonical(nation, level)
        if name is None:
            return None
        folded = " ".join(name.split()).upper()
        if folded in _COMMON_LEVELS:
            return folded
        for pivot in ("USA", "NATO"):
            try:
                mapped = self._labels.map_level(nation, name, pivot)
            except Exception:
                mapped = None
            if mapped is not None and str(mapped) in _COMMON_LEVELS:
                return str(mapped)
        return _UNSOURCED_COMMON.get((nation, name))

    def _from_common(self, level: str, to_nation: str) -> str | None:
        """The highest level of ``to_nation`` whose common equivalent ``level`` dominates."""
        key = (level, to_nation)
        if key in self._common:
            return self._common[key]
        out: str | None = None
        if level in _COMMON_LEVELS:
            ceiling = _COMMON_LEVELS.index(level)
            try:
                levels = sorted(
                    self._labels.builtin_policy(to_nation).classifications,
                    key=lambda c: c.hierarchy,
                )
            except Exception:  # no scheme for that nation: the ceiling admits nothing
                levels = []
            for cls in levels:
                common = self.common_level(to_nation, cls.name)
                if common is not None and _COMMON_LEVELS.index(common) <= ceiling:
                    out = cls.name
        self._common[key] = out
        return out


@functools.cache
def _level_reader() -> LabelsLevelMapper:
    """How relto.labels reads a level name in a nation's scheme (for markings)."""
    return LabelsLevelMapper()


def default_mapper() -> LevelMapper:
    """The relto.labels equivalences when available, else the built-in table."""
    try:
        labels = _labels()
        if not (hasattr(labels, "level_rank") and hasattr(labels, "map_level")):
            return TableLevelMapper()
    except ImportError:
        return TableLevelMapper()
    return LabelsLevelMapper()


def world_review_keeps_access(nations: Iterable[str], policy: Any = None) -> frozenset[str]:
    """Nations (among ``nations``) whose policy keeps access during review."""
    policy = policy if policy is not None else _vetting().default_policy()
    return frozenset(n for n in nations if not policy.under_review_suspends(n))


def vetting_grant(nation: str, level: str, policy: Any = None) -> str | None:
    """The classification a vetting level (``SC``, ``NV1``...) grants, or ``None``."""
    policy = policy if policy is not None else _vetting().default_policy()
    try:
        return str(policy.level(nation, level).grants)
    except Exception:
        return None


def subject_from_vetting(
    person: Any,
    clearances: Iterable[Any],
    at: datetime,
    policy: Any = None,
) -> Subject:
    """A vetting ``Person`` and their ``Clearance`` records as engine facts at ``at``.

    A clearance that did not exist yet at ``at`` is left out; the rest carry the
    status at ``at`` (expiry applied) and vetting's sentence as the cause. Caveats
    held are those of the person's clearances that are current at ``at``
    (vetting's ``is_current``: granted or interim, not expired, under review only
    where the issuing nation keeps access): access a clearance granted ends with it.
    """
    policy = policy if policy is not None else _vetting().default_policy()
    facts = []
    caveats: set[str] = set()
    for c in clearances:
        status = c.status_at(at)
        if status is None:
            continue
        cause = c.not_current_reason(at, policy) or ""
        facts.append(ClearanceFact(c.id, c.nation, c.classification, str(status.value), cause))
        if c.is_current(at, policy):
            caveats.update(c.caveats)
    return Subject(
        id=person.id,
        nationalities=frozenset(person.nationalities),
        clearances=tuple(facts),
        caveats=frozenset(caveats),
        projects=frozenset(m.project for m in person.projects),
        roles=frozenset(str(getattr(r, "value", r)) for r in person.roles),
    )


def _labels() -> Any:
    return importlib.import_module("relto.labels")


def resource_from_banner(
    id: str,
    banner: str,
    *,
    originator: str | None = None,
    project: str | None = None,
    orcon_approved: Iterable[str] = (),
    categories: Iterable[str] = (),
    export: ExportFacts | None = None,
) -> Resource:
    """A banner or portion marking as engine facts, read by ``relto.labels.read_marking``.

    Every marking ``relto.labels.parse_banner`` reads means the same here: the
    ``//GBR SECRET//...`` form names the originator, portion marks (``(S//NF)``)
    read like banners, and controls mean the same in any order or separator.
    NOFORN, REL TO of the originator alone, or no REL TO at all make the object
    releasable to its originator only; ORCON sets originator control; restrictive
    categories (compartments, ATOMAL, ...) and the restrictive dissemination
    controls (IMCON, PROPIN, RSEN, DSEN, FISA) must be held as caveats. A marking
    relto.labels refuses, or one that names no originator, gives an object every
    request on which is denied with UNKNOWN_ATTRIBUTE and the marking error.
    """
    labels = _labels()
    orig = originator.strip().upper() if originator else None
    try:
        m = labels.read_marking(banner, originator=orig)
    except labels.MarkingError as exc:
        return Resource(
            id=id,
            originator=orig or "",
            classification="",
            rel_to=frozenset(),
            project=project,
            orcon_approved=frozenset(orcon_approved),
            export=export,
            marking_error=str(exc)[:200] or type(exc).__name__,
        )
    b = m.banner
    orig = b.originator or orig
    if not orig:
        return Resource(
            id=id,
            originator="",
            classification=b.classification,
            rel_to=frozenset(),
            project=project,
            export=export,
            marking_error="the banner names no originator and none was given",
        )
    if _level_reader().rank(orig, b.classification) is None:
        return Resource(
            id=id,
            originator=orig,
            classification=b.classification,
            rel_to=frozenset(),
            project=project,
            export=export,
            marking_error=(
                f"{b.classification} is not a level of {orig}'s classification scheme "
                "and no equivalence gives one"
            ),
        )
    dissem = {str(d) for d in b.dissem}
    cats_all = set(m.categories) | set(categories) | (dissem & _RESTRICTIVE_CONTROLS)
    rel = frozenset(b.releasable_to())
    if b.noforn or not rel:
        rel = frozenset({orig})
    return Resource(
        id=id,
        originator=orig,
        classification=b.classification,
        rel_to=rel,
        project=project,
        categories=frozenset(cats_all),
        orcon="ORCON" in dissem,
        orcon_approved=frozenset(orcon_approved),
        export=export,
    )


def _expand(codes: Iterable[str]) -> frozenset[str]:
    """Tetragraphs expanded by relto.labels; an unknown code is kept as is, so the
    engine sees a malformed Releasable To and denies with UNKNOWN_ATTRIBUTE."""
    out: set[str] = set()
    for code in codes:
        try:
            out |= _labels().expand_rel_to([code])
        except Exception:
            out.add(code)
    return frozenset(out)


def resource_from_4774(
    id: str,
    xml: bytes,
    *,
    originator: str | None = None,
    project: str | None = None,
    orcon_approved: Iterable[str] = (),
    categories: Iterable[str] = (),
    export: ExportFacts | None = None,
) -> Resource:
    """A STANAG 4774 label (read with ``relto.labels.read_label``) as engine facts.

    A category whose tag set is named "Releasable To" gives Releasable To
    (tetragraphs expanded); other restrictive and informative values are
    restrictive categories (ORCON sets originator control). The originator is
    ``originator`` or the label's OriginatorID when that is a nation trigraph.
    """
    label = _labels().read_label(xml, lenient=True)
    orig = originator
    if orig is None and label.originator_id and len(label.originator_id) == 3:
        orig = label.originator_id.upper()
    if not orig:
        raise ValueError("the label names no originator and none was given")
    rel: list[str] = []
    cats = set(categories)
    for cat in label.categories:
        name = " ".join(cat.tag_name.lower().replace("_", " ").split())
        if name in ("releasable to", "rel to", "releasableto"):
            rel.extend(v.strip().upper() for v in cat.values)
        else:
            cats.update(v.strip() for v in cat.values)
    orcon = bool(cats & _ORCON)
    cats -= _ORCON
    cats -= _PERMISSIVE_CONTROLS
    relto = _expand(rel) if rel else frozenset({orig})
    return Resource(
        id=id,
        originator=orig,
        classification=(label.classification or "").strip(),
        rel_to=relto,
        project=project,
        categories=frozenset(cats),
        orcon=orcon,
        orcon_approved=frozenset(orcon_approved),
        export=export,
    )
