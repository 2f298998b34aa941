"""The vetting data files: schemes and levels, reporting deadlines, agreements.

The shipped files live in ``relto/vetting/data/``; a deployment may load its own with
the same format (``load_policy(schemes=..., obligations=..., agreements=...)``).
Every value carries its public source and a ``verified`` flag (see the files).
Files are parsed with ``yaml.safe_load`` and checked strictly: unknown keys are
rejected rather than silently kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from relto.vetting._people import check_nation
from relto.vetting.errors import UnknownLevel, VettingDataError

__all__ = [
    "Agreement",
    "LevelInfo",
    "ObligationRule",
    "Scheme",
    "Sourced",
    "VettingPolicy",
    "default_policy",
    "load_policy",
]

_MAX_FILE = 1 << 20
OBLIGATION_KINDS = ("foreign_travel", "foreign_contact", "change_of_circumstances")
AGREEMENT_SCOPES = ("government", "military")


@dataclass(frozen=True)
class Sourced:
    """Where a value comes from and whether relto could confirm it."""

    source: str
    verified: bool
    note: str = ""


@dataclass(frozen=True)
class LevelInfo:
    """One level of a nation's vetting scheme."""

    nation: str
    code: str
    name: str
    grants: str  # classification name in the nation's own SPIF scheme
    grants_source: Sourced
    validity_years: int | None
    continuous_vetting: bool
    validity_source: Sourced

    @property
    def needs_explicit_expiry(self) -> bool:
        """No public period and no continuous vetting: the grant must say until when."""
        return self.validity_years is None and not self.continuous_vetting


@dataclass(frozen=True)
class Scheme:
    nation: str
    authority: str
    under_review_suspends_access: bool
    suspends_source: Sourced
    levels: Mapping[str, LevelInfo]


@dataclass(frozen=True)
class ObligationRule:
    nation: str
    kind: str
    business_days: int
    source: Sourced


@dataclass(frozen=True)
class Agreement:
    """A bilateral security-of-information agreement."""

    id: str
    parties: frozenset[str]
    title: str
    signed: dt.date | None
    in_force: dt.date | None
    terminated: dt.date | None
    scope: str
    verified: bool
    sources: tuple[str, ...]
    note: str

    def in_force_at(self, at: dt.datetime) -> bool:
        """In force from the start of ``in_force`` (UTC) until the start of ``terminated``."""
        if self.in_force is None:
            return False
        start = dt.datetime.combine(self.in_force, dt.time(), tzinfo=dt.UTC)
        if at < start:
            return False
        if self.terminated is not None:
            end = dt.datetime.combine(self.terminated, dt.time(), tzinfo=dt.UTC)
            if at >= end:
                return False
        return True


@dataclass(frozen=True)
class VettingPolicy:
    """All vetting data in one immutable object, passed to the pure core."""

    schemes: Mapping[str, Scheme]
    obligations: Mapping[tuple[str, str], ObligationRule]
    agreements: tuple[Agreement, ...]

    def scheme(self, nation: str) -> Scheme:
        try:
            return self.schemes[nation]
        except KeyError:
            raise UnknownLevel(f"relto has no vetting scheme for {nation}") from None

    def level(self, nation: str, code: str) -> LevelInfo:
        scheme = self.scheme(nation)
        try:
            return scheme.levels[code]
        except KeyError:
            known = ", ".join(sorted(scheme.levels))
            raise UnknownLevel(f"{code!r} is not a {nation} vetting level ({known})") from None

    def under_review_suspends(self, nation: str) -> bool:
        """Fail closed: a nation without a scheme is treated as suspending."""
        scheme = self.schemes.get(nation)
        return True if scheme is None else scheme.under_review_suspends_access

    def obligation(self, nation: str, kind: str) -> ObligationRule:
        try:
            return self.obligations[(nation, kind)]
        except KeyError:
            raise UnknownLevel(f"no {kind} reporting rule for {nation}") from None

    def level_mapping(self) -> dict[str, dict[str, str]]:
        """nation -> vetting level -> classification name in that nation's SPIF."""
        return {
            n: {code: info.grants for code, info in s.levels.items()}
            for n, s in self.schemes.items()
        }


# -- parsing ------------------------------------------------------------------------


def _fail(where: str, msg: str) -> VettingDataError:
    return VettingDataError(f"vetting data {where}: {msg}")


def _keys(
    obj: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(where, "must be a mapping")
    keys = set(obj)
    missing = required - keys
    extra = keys - required - set(optional)
    if missing:
        raise _fail(where, f"missing {', '.join(sorted(missing))}")
    if extra:
        raise _fail(where, f"unknown keys {', '.join(sorted(map(str, extra)))}")
    return obj


def _str(obj: Any, where: str) -> str:
    if not isinstance(obj, str) or not obj.strip():
        raise _fail(where, "must be non-empty text")
    return obj


def _bool(obj: Any, where: str) -> bool:
    if not isinstance(obj, bool):
        raise _fail(where, "must be true or false")
    return obj


def _date(obj: Any, where: str) -> dt.date | None:
    if obj is None:
        return None
    if isinstance(obj, dt.datetime):
        raise _fail(where, "must be a date, not a date-time")
    if isinstance(obj, dt.date):
        return obj
    if isinstance(obj, str):
        try:
            return dt.date.fromisoformat(obj)
        except ValueError:
            pass
    raise _fail(where, "must be an ISO date (YYYY-MM-DD) or null")


def _nation(obj: Any, where: str) -> str:
    try:
        return check_nation(obj)
    except Exception:
        raise _fail(where, "must be an ISO 3166-1 alpha-3 code") from None


def _sourced(obj: dict[str, Any], where: str) -> Sourced:
    return Sourced(
        source=_str(obj["source"], f"{where}.source"),
        verified=_bool(obj["verified"], f"{where}.verified"),
        note=_str(obj["note"], f"{where}.note") if "note" in obj else "",
    )


def _load_yaml(text: str, where: str, fmt: str) -> dict[str, Any]:
    if len(text) > _MAX_FILE:
        raise _fail(where, "file too large")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise _fail(where, "not valid YAML") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise _fail(where, f"format must be {fmt}")
    return doc


def parse_schemes(text: str, where: str = "schemes") -> dict[str, Scheme]:
    doc = _load_yaml(text, where, "relto-vetting-schemes/1")
    _keys(doc, where, {"format", "schemes"})
    out: dict[str, Scheme] = {}
    if not isinstance(doc["schemes"], dict):
        raise _fail(where, "schemes must be a mapping")
    for nation, body in doc["schemes"].items():
        w = f"{where}.{nation}"
        nation = _nation(nation, w)
        _keys(body, w, {"authority", "under_review_suspends_access", "levels"})
        sus = _keys(
            body["under_review_suspends_access"],
            f"{w}.under_review_suspends_access",
            {"value", "verified", "source"},
            {"note"},
        )
        levels: dict[str, LevelInfo] = {}
        if not isinstance(body["levels"], dict) or not body["levels"]:
            raise _fail(w, "levels must be a non-empty mapping")
        for code, lv in body["levels"].items():
            lw = f"{w}.{code}"
            code = _str(code, lw)
            _keys(lv, lw, {"name", "grants", "validity"})
            g = _keys(lv["grants"], f"{lw}.grants", {"value", "verified", "source"}, {"note"})
            v = _keys(
                lv["validity"],
                f"{lw}.validity",
                {"years", "continuous_vetting", "verified", "source"},
                {"note"},
            )
            years = v["years"]
            if years is not None and (
                not isinstance(years, int) or isinstance(years, bool) or not 1 <= years <= 50
            ):
                raise _fail(f"{lw}.validity.years", "must be 1-50 or null")
            cv = _bool(v["continuous_vetting"], f"{lw}.validity.continuous_vetting")
            if cv and years is not None:
                raise _fail(f"{lw}.validity", "continuous vetting has no fixed period")
            levels[code] = LevelInfo(
                nation=nation,
                code=code,
                name=_str(lv["name"], f"{lw}.name"),
                grants=_str(g["value"], f"{lw}.grants.value"),
                grants_source=_sourced(g, f"{lw}.grants"),
                validity_years=years,
                continuous_vetting=cv,
                validity_source=_sourced(v, f"{lw}.validity"),
            )
        out[nation] = Scheme(
            nation=nation,
            authority=_str(body["authority"], f"{w}.authority"),
            under_review_suspends_access=_bool(sus["value"], f"{w}.under_review_suspends_access"),
            suspends_source=_sourced(sus, f"{w}.under_review_suspends_access"),
            levels=levels,
        )
    return out


def parse_obligations(
    text: str, where: str = "obligations"
) -> dict[tuple[str, str], ObligationRule]:
    doc = _load_yaml(text, where, "relto-vetting-obligations/1")
    _keys(doc, where, {"format", "kinds", "obligations"})
    if doc["kinds"] != list(OBLIGATION_KINDS):
        raise _fail(f"{where}.kinds", f"must be {list(OBLIGATION_KINDS)}")
    out: dict[tuple[str, str], ObligationRule] = {}
    if not isinstance(doc["obligations"], dict):
        raise _fail(where, "obligations must be a mapping")
    for nation, rules in doc["obligations"].items():
        w = f"{where}.{nation}"
        nation = _nation(nation, w)
        _keys(rules, w, set(OBLIGATION_KINDS))
        for kind in OBLIGATION_KINDS:
            r = _keys(rules[kind], f"{w}.{kind}", {"business_days", "verified", "source"}, {"note"})
            days = r["business_days"]
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 60:
                raise _fail(f"{w}.{kind}.business_days", "must be 0-60")
            out[(nation, kind)] = ObligationRule(nation, kind, days, _sourced(r, f"{w}.{kind}"))
    return out


def parse_agreements(text: str, where: str = "agreements") -> tuple[Agreement, ...]:
    doc = _load_yaml(text, where, "relto-vetting-agreements/1")
    _keys(doc, where, {"format", "agreements"})
    if not isinstance(doc["agreements"], list):
        raise _fail(where, "agreements must be a list")
    out: list[Agreement] = []
    ids: set[str] = set()
    for i, a in enumerate(doc["agreements"]):
        w = f"{where}[{i}]"
        _keys(
            a,
            w,
            {
                "id",
                "parties",
                "title",
                "signed",
                "in_force",
                "terminated",
                "scope",
                "verified",
                "sources",
                "note",
            },
        )
        aid = _str(a["id"], f"{w}.id")
        if aid in ids:
            raise _fail(w, f"duplicate id {aid}")
        ids.add(aid)
        parties = a["parties"]
        if not isinstance(parties, list) or len(parties) != 2:
            raise _fail(f"{w}.parties", "must list exactly two nations")
        ps = frozenset(_nation(p, f"{w}.parties") for p in parties)
        if len(ps) != 2:
            raise _fail(f"{w}.parties", "must be two different nations")
        signed = _date(a["signed"], f"{w}.signed")
        in_force = _date(a["in_force"], f"{w}.in_force")
        terminated = _date(a["terminated"], f"{w}.terminated")
        if in_force and signed and in_force < signed:
            raise _fail(w, "in force before signature")
        if terminated and (in_force is None or terminated <= in_force):
            raise _fail(w, "terminated before entering into force")
        if a["scope"] not in AGREEMENT_SCOPES:
            raise _fail(f"{w}.scope", f"must be one of {', '.join(AGREEMENT_SCOPES)}")
        srcs = a["sources"]
        if not isinstance(srcs, list) or not srcs:
            raise _fail(f"{w}.sources", "must list at least one source")
        out.append(
            Agreement(
                id=aid,
                parties=ps,
                title=_str(a["title"], f"{w}.title"),
                signed=signed,
                in_force=in_force,
                terminated=terminated,
                scope=a["scope"],
                verified=_bool(a["verified"], f"{w}.verified"),
                sources=tuple(_str(s, f"{w}.sources") for s in srcs),
                note=_str(a["note"], f"{w}.note"),
            )
        )
    return tuple(out)


def _read(name: str) -> str:
    return resources.files("relto.vetting").joinpath("data", name).read_text(encoding="utf-8")


def load_policy(
    *,
    schemes: str | Path | None = None,
    obligations: str | Path | None = None,
    agreements: str | Path | None = None,
    suspends_override: Mapping[str, bool] | None = None,
) -> VettingPolicy:
    """Load vetting data: shipped files unless a path or YAML text is given.

    ``suspends_override`` lets a deployment set, per nation, whether a clearance under
    review still counts (``False``) or not (``True``).
    """

    def text(src: str | Path | None, name: str) -> str:
        if src is None:
            return _read(name)
        if isinstance(src, Path):
            if src.stat().st_size > _MAX_FILE:
                raise _fail(str(src), "file too large")
            return src.read_text(encoding="utf-8")
        return src

    sch = parse_schemes(text(schemes, "schemes.yaml"))
    if suspends_override:
        for nation, value in suspends_override.items():
            s = sch.get(nation)
            if s is None:
                raise _fail("override", f"no scheme for {nation}")
            sch[nation] = Scheme(
                s.nation,
                s.authority,
                bool(value),
                Sourced("deployment override", False, ""),
                s.levels,
            )
    obl = parse_obligations(text(obligations, "obligations.yaml"))
    agr = parse_agreements(text(agreements, "agreements.yaml"))
    return VettingPolicy(schemes=sch, obligations=obl, agreements=agr)


@lru_cache(maxsize=1)
def default_policy() -> VettingPolicy:
    """The shipped data (cached; immutable)."""
    return load_policy()
