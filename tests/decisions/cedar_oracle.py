"""An independent Cedar model of the decision rules (the differential-test oracle).

Written from docs/decisions.md, not from relto.decisions.rules: Releasable To and
originator checks use Cedar's set operators; clearances, nationalities (for
admissions), categories and admissions are bounded slots in the entities and the
context, and the quantifiers over them are unrolled when the text is generated.
Service answers (ranks through the equivalences, recognition, the export hook) are
computed by the caller and passed in the context, as a Cedar PIP would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from decisions_testing import MAX_ADMISSIONS, MAX_CATEGORIES, MAX_CLEARANCES, MAX_NATIONALITIES

from relto.decisions import CLEARANCE_STATUSES, COMMON_SCHEME, Resource, Subject, World
from relto.decisions.protocols import ExportCheck, LevelMapper, Recognition

C = [f"c{i}" for i in range(MAX_CLEARANCES)]
A = [f"a{i}" for i in range(MAX_ADMISSIONS)]
N = [f"n{i}" for i in range(MAX_NATIONALITIES)]
K = [f"k{i}" for i in range(MAX_CATEGORIES)]
FOREVER = 2**53

_clr = {
    "type": "Record",
    "attributes": {
        "status": {"type": "String"},
        "issuer": {"type": "String"},
        "levelKnown": {"type": "Boolean"},
        "rank": {"type": "Long"},
        "recognised": {"type": "Boolean"},
    },
}
_adm = {
    "type": "Record",
    "attributes": {
        "nation": {"type": "String"},
        "project": {"type": "String"},
        "ceil": {"type": "Long"},
        "start": {"type": "Long"},
        "end": {"type": "Long"},
    },
}
_strset = {"type": "Set", "element": {"type": "String"}}
_opt_str = {"type": "String", "required": False}

SCHEMA: dict[str, Any] = {
    "": {
        "commonTypes": {"Clr": _clr, "Adm": _adm},
        "entityTypes": {
            "User": {
                "shape": {
                    "type": "Record",
                    "attributes": {
                        "uid": {"type": "String"},
                        "nationalities": _strset,
                        "projects": _strset,
                        "roles": _strset,
                        "caveats": _strset,
                        **{n: _opt_str for n in N},
                    },
                }
            },
            "Object": {
                "shape": {
                    "type": "Record",
                    "attributes": {
                        "originator": {"type": "String"},
                        "relTo": _strset,
                        "project": _opt_str,
                        "categories": _strset,
                        "orcon": {"type": "Boolean"},
                        "approved": _strset,
                        "exportFlagged": {"type": "Boolean"},
                        "rank": {"type": "Long"},
                        "relToWellformed": {"type": "Boolean"},
                        "origin": {"type": "Entity", "name": "Origin"},
                        **{k: _opt_str for k in K},
                    },
                }
            },
            "Grant": {
                "shape": {
                    "type": "Record",
                    "attributes": {c: {"type": "Clr", "required": False} for c in C},
                }
            },
            "Origin": {
                "shape": {
                    "type": "Record",
                    "attributes": {
                        "dualAll": {"type": "Boolean"},
                        "reviewKeeps": _strset,
                        "implicit": _strset,
                        "knownCats": _strset,
                        "statuses": _strset,
                        **{a_: {"type": "Adm", "required": False} for a_ in A},
                    },
                }
            },
        },
        "actions": {
            a: {
                "appliesTo": {
                    "principalTypes": ["User"],
                    "resourceTypes": ["Object"],
                    "context": {
                        "type": "Record",
                        "attributes": {
                            "now": {"type": "Long"},
                            "exportOk": {"type": "Boolean"},
                            "grant": {"type": "Entity", "name": "Grant"},
                        },
                    },
                }
            }
            for a in ("read", "download", "share", "relabel")
        },
    }
}


def _or(xs: list[str]) -> str:
    return "(" + " || ".join(xs) + ")" if xs else "false"


def _and(xs: list[str]) -> str:
    return "(" + " && ".join(xs) + ")" if xs else "true"


def policies() -> str:
    statuses = "resource.origin.statuses"

    def f(c: str, attr: str) -> str:
        return f"context.grant.{c}.{attr}"

    def present(c: str) -> str:
        return f"context.grant has {c}"

    def known(c: str) -> str:
        return f"({present(c)} && {statuses}.contains({f(c, 'status')}) && {f(c, 'levelKnown')})"

    def nc(c: str) -> str:
        return (
            f'!({f(c, "status")} == "granted" || {f(c, "status")} == "interim" || '
            f'({f(c, "status")} == "under_review" && '
            f"resource.origin.reviewKeeps.contains({f(c, 'issuer')})))"
        )

    def nr(c: str) -> str:
        return f"!{f(c, 'recognised')}"

    def tl(c: str) -> str:
        return f"(resource.rank >= 0 && {f(c, 'rank')} < resource.rank)"

    def score(c: str) -> str:
        return (
            f"((if {nc(c)} then 9 else 0) + (if {tl(c)} then 10 else 0) + "
            f"(if {nr(c)} then 12 else 0))"
        )

    passes = _or([f"({known(c)} && !{nc(c)} && !{nr(c)} && !{tl(c)})" for c in C])

    def nearest(c: str) -> str:
        """No other candidate scores lower than ``c`` (score ties share one failure set)."""
        others = [f"(if {known(d)} then {score(c)} <= {score(d)} else true)" for d in C if d != c]
        return _and(others)

    unknown_clr = _or([f"({present(c)} && !{known(c)})" for c in C])
    missing = f"!{_or([known(c) for c in C])} && !{unknown_clr}"

    def clr_code(check: Any) -> str:
        return f"!{passes} && {_or([f'({known(c)} && {check(c)} && {nearest(c)})' for c in C])}"

    def admitted(n: str) -> str:
        def row(a: str) -> str:
            return (
                f"resource.origin has {a} && resource.origin.{a}.nation == {n} && "
                "resource has project && "
                f"resource.origin.{a}.project == resource.project"
            )

        explicit = _or([f"({row(a)})" for a in A])
        covered = _or(
            [
                f"({row(a)} && resource.origin.{a}.start <= context.now && "
                f"context.now < resource.origin.{a}.end "
                f"&& (resource.rank < 0 || resource.rank <= resource.origin.{a}.ceil))"
                for a in A
            ]
        )
        return f"({covered} || (resource.origin.implicit.contains({n}) && !{explicit}))"

    adm_any = _or([f"(principal has {n} && {admitted('principal.' + n)})" for n in N])
    adm_all = _and(
        ["!principal.nationalities.isEmpty()"]
        + [f"(if principal has {n} then {admitted('principal.' + n)} else true)" for n in N]
    )
    unknown_cat = _or(
        [f"(resource has {k} && !resource.origin.knownCats.contains(resource.{k}))" for k in K]
    )
    caveat = _or(
        [
            f"(resource has {k} && resource.origin.knownCats.contains(resource.{k}) && "
            f"!principal.caveats.contains(resource.{k}))"
            for k in K
        ]
    )
    out = {
        "CLEARANCE_MISSING": missing,
        "CLEARANCE_NOT_CURRENT": clr_code(nc),
        "CLEARANCE_NOT_RECOGNISED": clr_code(nr),
        "CLEARANCE_TOO_LOW": clr_code(tl),
        "CAVEAT_NOT_HELD": caveat,
        "NOT_RELEASABLE": (
            "if resource.origin.dualAll then (principal.nationalities.isEmpty() || "
            "!resource.relTo.containsAll(principal.nationalities)) "
            "else !resource.relTo.containsAny(principal.nationalities)"
        ),
        "NO_NEED_TO_KNOW": (
            "(if resource has project then !principal.projects.contains(resource.project) "
            "else true) || "
            '(action == Action::"relabel" && !principal.roles.contains("security_officer"))'
        ),
        "NATION_NOT_ADMITTED": f"if resource.origin.dualAll then !{adm_all} else !{adm_any}",
        "ORIGINATOR_CONTROLLED": (
            "(resource.orcon && !resource.approved.contains(principal.uid)) || "
            '(resource.orcon && action == Action::"share") || '
            '(action == Action::"relabel" && '
            "!principal.nationalities.contains(resource.originator))"
        ),
        "EXPORT_CONTROLLED": "resource.exportFlagged && !context.exportOk",
        "UNKNOWN_ATTRIBUTE": (
            f"{unknown_clr} || resource.rank < 0 || !resource.relToWellformed || {unknown_cat}"
        ),
    }
    text = ['@id("PERMIT")\npermit(principal, action, resource);']
    for code, cond in out.items():
        text.append(f'@id("{code}")\nforbid(principal, action, resource) when {{ {cond} }};')
    return "\n\n".join(text)


def user_entity(s: Subject) -> dict[str, Any]:
    nats = sorted(s.nationalities)
    assert len(nats) <= len(N)
    attrs: dict[str, Any] = {
        "uid": s.id,
        "nationalities": nats,
        "projects": sorted(s.projects),
        "roles": sorted(s.roles),
        "caveats": sorted(s.caveats),
    }
    for slot, n in zip(N, nats, strict=False):
        attrs[slot] = n
    return {"uid": {"type": "User", "id": s.id}, "attrs": attrs, "parents": []}


def _epoch(t: datetime | None) -> int:
    return FOREVER if t is None else int(t.timestamp())


def _rank_in(mapper: LevelMapper, nation: str, level: str, orig: str) -> int:
    mapped = mapper.map_level(nation, level, orig)
    r = None if mapped is None else mapper.rank(orig, mapped)
    return -1 if r is None else r


def object_entity(o: Resource, mapper: LevelMapper) -> dict[str, Any]:
    """The object, with service answers: its rank in its originator's scheme."""
    cats = sorted(o.categories)
    assert len(cats) <= len(K)
    rank = mapper.rank(o.originator, o.classification)
    attrs: dict[str, Any] = {
        "originator": o.originator,
        "relTo": sorted(o.rel_to),
        "categories": cats,
        "orcon": o.orcon,
        "approved": sorted(o.orcon_approved),
        "exportFlagged": o.export is not None,
        "rank": -1 if rank is None else rank,
        "relToWellformed": all(len(c) == 3 and c.isalpha() and c.isupper() for c in o.rel_to),
        "origin": {"__entity": {"type": "Origin", "id": o.originator}},
    }
    if o.project is not None:
        attrs["project"] = o.project
    for slot, k in zip(K, cats, strict=False):
        attrs[slot] = k
    return {"uid": {"type": "Object", "id": o.id}, "attrs": attrs, "parents": []}


def origin_entity(orig: str, world: World, mapper: LevelMapper) -> dict[str, Any]:
    """World facts seen from one originator (admission ceilings mapped into its scheme)."""
    assert len(world.admissions) <= len(A)
    attrs: dict[str, Any] = {
        "dualAll": world.dual_national_rule.get(orig, "any") == "all",
        "reviewKeeps": sorted(world.review_keeps_access),
        "implicit": sorted(world.implicit_members),
        "knownCats": sorted(world.known_categories),
        "statuses": sorted(CLEARANCE_STATUSES),
    }
    for slot, a in zip(A, world.admissions, strict=False):
        attrs[slot] = {
            "nation": a.nation,
            "project": a.project,
            "ceil": _rank_in(mapper, COMMON_SCHEME, a.ceiling, orig),
            "start": _epoch(a.start),
            "end": _epoch(a.end),
        }
    return {"uid": {"type": "Origin", "id": orig}, "attrs": attrs, "parents": []}


def grant_id(s: Subject, orig: str) -> str:
    return f"{s.id}|{orig}"


def grant_entity(
    s: Subject, orig: str, at: datetime, mapper: LevelMapper, recognition: Recognition
) -> dict[str, Any]:
    """A subject's clearances seen from one originator (the PIP's service answers)."""
    assert len(s.clearances) <= len(C)
    attrs: dict[str, Any] = {}
    for slot, c in zip(C, s.clearances, strict=False):
        attrs[slot] = {
            "status": c.status,
            "issuer": c.nation,
            "levelKnown": mapper.rank(c.nation, c.level) is not None,
            "rank": _rank_in(mapper, c.nation, c.level, orig),
            "recognised": recognition.recognises(c.nation, orig, at),
        }
    return {"uid": {"type": "Grant", "id": grant_id(s, orig)}, "attrs": attrs, "parents": []}


def context(
    s: Subject, action: str, o: Resource, at: datetime, export: ExportCheck | None
) -> dict[str, Any]:
    return {
        "now": _epoch(at),
        "exportOk": o.export is None
        or (export is not None and export.check(s, action, o, at) is None),
        "grant": {"__entity": {"type": "Grant", "id": grant_id(s, o.originator)}},
    }
