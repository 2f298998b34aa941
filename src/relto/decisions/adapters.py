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

import importlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from relto.decisions._model import ClearanceFact, ExportFacts, Resource, Subject
from relto.decisions.protocols import LevelMapper, Recognition, TableLevelMapper

__all__ = [
    "DEFAULT_CATEGORIES",
    "VettingRecognition",
    "default_mapper",
    "default_recognition",
    "parse_banner",
    "resource_from_banner",
    "subject_from_vetting",
    "vetting_grant",
    "world_review_keeps_access",
]

#: Restrictive categories the engine understands out of the box.
DEFAULT_CATEGORIES: frozenset[str] = frozenset(
    {"ATOMAL", "BOHEMIA", "CRYPTO", "HCS", "NNPI", "PROPIN", "SAP", "SI", "TK", "UMBRA"}
)
#: Dissemination controls that are not restrictive categories.
_PERMISSIVE_CONTROLS = frozenset({"RELIDO", "REL", "DISPLAY ONLY"})
_ORCON = frozenset({"ORCON", "OC"})


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


def default_mapper() -> LevelMapper:
    return TableLevelMapper()


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
    held are those of the person's clearances.
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
        caveats.update(c.caveats)
    return Subject(
        id=person.id,
        nationalities=frozenset(person.nationalities),
        clearances=tuple(facts),
        caveats=frozenset(caveats),
        projects=frozenset(m.project for m in person.projects),
        roles=frozenset(str(getattr(r, "value", r)) for r in person.roles),
    )


def parse_banner(text: str, originator: str | None = None) -> Any:
    """``relto.labels.parse_banner`` when it exists, else the temporary fallback."""
    try:
        labels = importlib.import_module("relto.labels")
        fn = labels.parse_banner
    except (ImportError, AttributeError):
        from relto.decisions._fallback_banner import parse_banner as fn
    return fn(text, originator=originator)


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
    """A banner marking as engine facts.

    NOFORN, or no REL TO at all, makes the object releasable to its originator
    only; ORCON sets originator control; every other control (SCI compartments,
    ATOMAL, ...) becomes a restrictive category.
    """
    b = parse_banner(banner, originator)
    orig = b.originator or originator
    if not orig:
        raise ValueError("the banner names no originator and none was given")
    controls = [str(c) for c in getattr(b, "controls", ())]
    orcon = any(c in _ORCON for c in controls)
    cats = {c for c in controls if c not in _ORCON and c not in _PERMISSIVE_CONTROLS}
    cats.update(categories)
    rel = frozenset(b.rel_to)
    if b.noforn or not rel:
        rel = frozenset({orig})
    return Resource(
        id=id,
        originator=orig,
        classification=b.classification,
        rel_to=rel,
        project=project,
        categories=frozenset(cats),
        orcon=orcon,
        orcon_approved=frozenset(orcon_approved),
        export=export,
    )


def _expand(codes: Iterable[str]) -> frozenset[str]:
    try:
        fn = importlib.import_module("relto.labels").expand_rel_to
    except (ImportError, AttributeError):
        from relto.decisions._fallback_banner import _TETRAGRAPHS

        out: set[str] = set()
        for c in codes:
            out.update(_TETRAGRAPHS.get(c, (c,)))
        return frozenset(out)
    return frozenset(fn(tuple(codes)))


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
    labels = importlib.import_module("relto.labels")
    label = labels.read_label(xml, lenient=True)
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
        elif cat.type.upper() != "PERMISSIVE" or True:
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
