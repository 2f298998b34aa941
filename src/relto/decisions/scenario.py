"""Scenario files: people, clearances, objects, admissions and requests in YAML.

The format is documented in ``docs/decisions.md``; a full example ships as
``relto/decisions/data/example-scenario.yaml``. :func:`load_scenario` validates
and converts a file into facts; :func:`decide_scenario` answers its requests.
Bounded: at most :data:`MAX_BYTES` of YAML and :data:`MAX_ITEMS` entries per list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from relto.decisions._model import (
    Admission,
    ClearanceFact,
    Decision,
    ExportFacts,
    Resource,
    Subject,
    World,
)
from relto.decisions.adapters import (
    DEFAULT_CATEGORIES,
    default_mapper,
    default_recognition,
    resource_from_banner,
    vetting_grant,
    world_review_keeps_access,
)
from relto.decisions.engine import Engine
from relto.decisions.errors import InvalidScenario
from relto.decisions.export_hook import ExportControlCheck
from relto.decisions.protocols import (
    COMMON_SCHEME,
    Agreement,
    LevelMapper,
    Recognition,
    TableRecognition,
)
from relto.decisions.rules import CURRENT_STATUSES, UNDER_REVIEW
from relto.decisions.whatif import Population
from relto.export_control import ExportFactsError, load_facts
from relto.export_control._parties import ITEM_KEYS, ObjectExport, load_item, load_parties

__all__ = [
    "MAX_BYTES",
    "MAX_ITEMS",
    "Request",
    "Scenario",
    "decide_scenario",
    "load_scenario",
]

MAX_BYTES = 8 * 1024 * 1024
MAX_ITEMS = 200_000
DEFAULT_MEMBERS = ("AUS", "GBR", "USA")
_NATION = re.compile(r"^[A-Z]{3}$")
_ACTIVE = frozenset({"granted", "interim", "under_review", "suspended"})
_KNOWN_KEYS = {
    "format",
    "at",
    "policy_version",
    "members",
    "nations",
    "categories",
    "people",
    "clearances",
    "objects",
    "admissions",
    "agreements",
    "requests",
    "partnership",
    "dual_national_rule",
    "export",
    "export_parties",
}


@dataclass(frozen=True)
class _Event:
    at: datetime
    status: str
    cause: str


@dataclass(frozen=True)
class _ClearanceRecord:
    id: str
    person: str
    nation: str
    level: str
    events: tuple[_Event, ...]
    expires: datetime | None
    caveats: frozenset[str]

    def fact_at(self, at: datetime) -> ClearanceFact | None:
        current: _Event | None = None
        for e in self.events:
            if e.at <= at:
                current = e
        if current is None:
            return None
        status, cause = current.status, current.cause
        if self.expires is not None and at >= self.expires and status in _ACTIVE:
            status, cause = "expired", f"expired on {self.expires.date().isoformat()}"
        return ClearanceFact(self.id, self.nation, self.level, status, cause)


@dataclass(frozen=True)
class _Person:
    id: str
    nationalities: frozenset[str]
    projects: frozenset[str]
    roles: frozenset[str]
    caveats: frozenset[str]


@dataclass(frozen=True)
class Request:
    id: str
    person: str
    action: str
    object: str
    at: datetime | None
    #: For a ``share``: the party the subject re-transfers the object to.
    to: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: facts, services and requests."""

    at: datetime | None
    world: World
    mapper: LevelMapper
    recognition: Recognition
    people: Mapping[str, _Person]
    clearances: tuple[_ClearanceRecord, ...]
    objects: Mapping[str, Resource]
    requests: tuple[Request, ...]
    #: Set when the scenario carries export data (``export``, ``export_parties`` or
    #: an object's full classification); otherwise export-controlled objects are
    #: denied as having no export-control check.
    export_check: ExportControlCheck | None = None

    def subject_at(self, person_id: str, at: datetime) -> Subject:
        p = self.people[person_id]
        facts = []
        caveats = set(p.caveats)
        for c in self.clearances:
            if c.person != person_id:
                continue
            f = c.fact_at(at)
            if f is not None:
                facts.append(f)
                if f.status in CURRENT_STATUSES or (
                    f.status == UNDER_REVIEW and f.nation in self.world.review_keeps_access
                ):  # a caveat is held only through a current clearance
                    caveats.update(c.caveats)
        return Subject(p.id, p.nationalities, tuple(facts), frozenset(caveats), p.projects, p.roles)

    def engine(self, export_check: ExportControlCheck | None = None) -> Engine:
        return Engine(self.world, self.mapper, self.recognition, export_check or self.export_check)

    def population(self, at: datetime) -> Population:
        return Population(
            tuple(self.subject_at(pid, at) for pid in self.people),
            tuple(self.objects.values()),
            self.world,
            self.mapper,
            self.recognition,
            at,
            self.export_check,
        )


# -- reading ------------------------------------------------------------------


def _fail(where: str, msg: str) -> InvalidScenario:
    return InvalidScenario(f"scenario {where}: {msg}")


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            raise _fail(where, f"{value[:40]!r} is not an ISO 8601 time") from None
        return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    raise _fail(where, "expected a date or an ISO 8601 time")


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or time (UTC when no offset is given)."""
    return _time(value, "--at")


def _str(value: Any, where: str, *, limit: int = 200) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(where, "expected a string")
    text = str(value)
    if not text or len(text) > limit:
        raise _fail(where, f"must be 1-{limit} characters")
    return text


def _nation(value: Any, where: str) -> str:
    text = _str(value, where, limit=3)
    if not _NATION.match(text):
        raise _fail(where, f"{text!r} is not a nation trigraph")
    return text


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, "expected a list")
    if len(value) > MAX_ITEMS:
        raise _fail(where, f"more than {MAX_ITEMS} entries")
    return value


def _strs(value: Any, where: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return frozenset(_str(v, where) for v in _list(value, where))


#: Keys accepted (and ignored) anywhere: prose and expectations kept next to the data.
_IGNORED = frozenset(
    {"description", "note", "notes", "comment", "comments", "title", "expect", "expected"}
)


def _map(
    value: Any,
    where: str,
    allowed: set[str],
    required: frozenset[str] | set[str] = frozenset(),
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "expected a mapping")
    out: dict[str, Any] = {
        str(k): v for k, v in value.items() if str(k) not in _IGNORED or str(k) in allowed
    }
    for alias, canonical in (aliases or {}).items():
        if alias in out:
            if canonical in out:
                raise _fail(where, f"give {canonical} or {alias}, not both")
            out[canonical] = out.pop(alias)
    unknown = set(out) - allowed
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(out)
    if missing:
        raise _fail(where, f"missing key(s) {', '.join(sorted(missing))}")
    return out


def _entries(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, item in enumerate(_list(value, where)):
        yield f"{where}[{i}]", item


def load_scenario(
    source: str | Path | bytes,
    *,
    mapper: LevelMapper | None = None,
    recognition: Recognition | None = None,
) -> Scenario:
    """Read and validate a scenario (a path, or the YAML text/bytes itself)."""
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise InvalidScenario(f"cannot read scenario {source.name}: {exc.strerror}") from None
    else:
        data = source.encode() if isinstance(source, str) else source
    if len(data) > MAX_BYTES:
        raise InvalidScenario(f"scenario is larger than {MAX_BYTES} bytes")
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidScenario(f"scenario is not valid YAML{where}") from None
    doc = _map(doc, "", _KNOWN_KEYS | {"name"}, aliases={"now": "at", "time": "at"})
    mapper = mapper or default_mapper()
    at = _time(doc["at"], "at") if doc.get("at") is not None else None

    if isinstance(doc.get("partnership"), dict) and "members" not in doc:
        part = _map(doc["partnership"], "partnership", {"members", "partners", "id", "name"})
        if "members" in part:
            doc["members"] = part["members"]
    members = (
        frozenset(_nation(n, "members") for n in _list(doc["members"], "members"))
        if "members" in doc
        else frozenset(DEFAULT_MEMBERS)
    )
    dual: dict[str, str] = {}
    keeps: set[str] = set()
    nations_cfg = dict(doc.get("nations") or {})
    if not isinstance(doc.get("nations") or {}, dict):
        raise _fail("nations", "expected a mapping of nation -> settings")
    top_rules = doc.get("dual_national_rule") or {}
    if not isinstance(top_rules, dict):
        raise _fail("dual_national_rule", "expected a mapping of nation -> any|all")
    for nat, rule in top_rules.items():
        nations_cfg[nat] = {**(nations_cfg.get(nat) or {}), "dual_national": rule}
    configured: dict[str, bool] = {}
    for nat, cfg in nations_cfg.items():
        where = f"nations.{nat}"
        nat = _nation(nat, where)
        cfg = _map(
            cfg or {},
            where,
            {"dual_national", "review_suspends"},
            aliases={
                "dual_national_rule": "dual_national",
                "dual_nationals": "dual_national",
                "under_review_suspends": "review_suspends",
                "under_review_suspends_access": "review_suspends",
            },
        )
        if "dual_national" in cfg:
            rule = cfg["dual_national"]
            if rule not in ("any", "all"):
                raise _fail(where, "dual_national must be 'any' or 'all'")
            dual[nat] = rule
        if "review_suspends" in cfg:
            if not isinstance(cfg["review_suspends"], bool):
                raise _fail(where, "review_suspends must be true or false")
            configured[nat] = cfg["review_suspends"]

    people: dict[str, _Person] = {}
    inline_clearances: list[tuple[str, Any]] = []
    for where, p in _entries(doc.get("people"), "people"):
        p = _map(
            p,
            where,
            {"id", "nationalities", "projects", "memberships", "roles", "caveats", "name"}
            | {"clearances"},
            {"id", "nationalities"},
            aliases={"nationality": "nationalities", "citizenships": "nationalities"},
        )
        for i, c in enumerate(_list(p.get("clearances"), f"{where}.clearances")):
            if isinstance(c, dict):
                c = {**c, "person": c.get("person", p.get("id"))}
            inline_clearances.append((f"{where}.clearances[{i}]", c))
        pid = _str(p["id"], f"{where}.id")
        if pid in people:
            raise _fail(where, f"person {pid!r} is listed twice")
        nats = frozenset(
            _nation(n, f"{where}.nationalities") for n in _strs(p["nationalities"], where)
        )
        people[pid] = _Person(
            pid,
            nats,
            _strs(p.get("projects"), where) | _strs(p.get("memberships"), where),
            _strs(p.get("roles"), where),
            _strs(p.get("caveats"), where),
        )

    clearances: list[_ClearanceRecord] = []
    seen_cl: set[str] = set()
    for where, c in [*_entries(doc.get("clearances"), "clearances"), *inline_clearances]:
        c = _map(
            c,
            where,
            {
                "id",
                "person",
                "nation",
                "level",
                "status",
                "from",
                "expires",
                "events",
                "caveats",
                "cause",
            },
            {"person", "nation", "level"},
            aliases={
                "issuer": "nation",
                "issuing_nation": "nation",
                "valid_until": "expires",
                "until": "expires",
                "expiry": "expires",
                "valid_from": "from",
                "history": "events",
                "lifecycle": "events",
            },
        )
        person = _str(c["person"], f"{where}.person")
        if person not in people:
            raise _fail(where, f"unknown person {person!r}")
        cid = _str(c.get("id", f"{person}-{len(clearances) + 1}"), f"{where}.id")
        if cid in seen_cl:
            raise _fail(where, f"clearance {cid!r} is listed twice")
        seen_cl.add(cid)
        nation = _nation(c["nation"], f"{where}.nation")
        level = _str(c["level"], f"{where}.level")
        if mapper.rank(nation, level) is None:
            granted = vetting_grant(nation, level)
            if granted is not None:
                level = granted
        events: list[_Event] = []
        if "events" in c:
            if "status" in c:
                raise _fail(where, "give either status or events, not both")
            for ewhere, e in _entries(c["events"], f"{where}.events"):
                e = _map(
                    e, ewhere, {"at", "status", "cause"}, {"at", "status"}, {"reason": "cause"}
                )
                events.append(
                    _Event(
                        _time(e["at"], f"{ewhere}.at"),
                        _status(e["status"], f"{ewhere}.status"),
                        _str(e.get("cause") or "", f"{ewhere}.cause", limit=500)
                        if e.get("cause")
                        else "",
                    )
                )
            events.sort(key=lambda e: e.at)
        else:
            start = (
                _time(c["from"], f"{where}.from")
                if c.get("from") is not None
                else datetime.min.replace(tzinfo=UTC)
            )
            status = _status(c.get("status", "granted"), f"{where}.status")
            cause = str(c.get("cause") or "")[:500]
            events.append(_Event(start, status, cause))
        expires = _time(c["expires"], f"{where}.expires") if c.get("expires") is not None else None
        clearances.append(
            _ClearanceRecord(
                cid, person, nation, level, tuple(events), expires, _strs(c.get("caveats"), where)
            )
        )

    objects: dict[str, Resource] = {}
    items: dict[str, ObjectExport] = {}
    for where, o in _entries(doc.get("objects"), "objects"):
        o = _map(
            o,
            where,
            {
                "id",
                "banner",
                "label",
                "originator",
                "project",
                "orcon_approved",
                "approved",
                "categories",
                "export",
                "export_controlled",
                "classification",
                "rel_to",
                "noforn",
                "orcon",
            },
            {"id"},
            aliases={
                "marking": "banner",
                "xml": "label",
                "stanag4774": "label",
                "releasable_to": "rel_to",
                "caveats": "categories",
                "originator_approved": "orcon_approved",
            },
        )
        oid = _str(o["id"], f"{where}.id")
        if oid in objects:
            raise _fail(where, f"object {oid!r} is listed twice")
        export = None
        if o.get("export"):
            ex = _map(o["export"], f"{where}.export", {"regime", "classification"} | ITEM_KEYS)
            if set(ex) & ITEM_KEYS:
                try:
                    items[oid] = load_item(ex, f"{where}.export")
                except ExportFactsError as exc:
                    raise InvalidScenario(f"scenario {exc}") from None
            export = ExportFacts(
                str(ex.get("regime", "unspecified")),
                str(ex.get("classification", _designator(items.get(oid)))),
            )
        elif o.get("export_controlled"):
            export = ExportFacts("unspecified", "unspecified")
        originator = (
            _nation(o["originator"], f"{where}.originator") if o.get("originator") else None
        )
        approved = _strs(o.get("orcon_approved"), where) | _strs(o.get("approved"), where)
        project = _str(o["project"], f"{where}.project") if o.get("project") else None
        extra = _strs(o.get("categories"), where)
        given = [k for k in ("banner", "label", "classification") if k in o]
        if len(given) != 1:
            raise _fail(where, "give exactly one of banner, label or classification")
        try:
            if "classification" in o:
                res = _resource_from_fields(
                    oid, o, originator, project, approved, extra, export, where
                )
            elif "banner" in o:
                res = resource_from_banner(
                    oid,
                    _str(o["banner"], f"{where}.banner", limit=1000),
                    originator=originator,
                    project=project,
                    orcon_approved=approved,
                    categories=extra,
                    export=export,
                )
            else:
                res = _resource_from_label(
                    oid,
                    _str(o["label"], f"{where}.label", limit=200_000),
                    originator,
                    project,
                    approved,
                    extra,
                    export,
                )
        except InvalidScenario:
            raise
        except Exception as exc:
            raise _fail(where, f"cannot read the marking: {str(exc)[:200]}") from None
        objects[oid] = res

    admissions: list[Admission] = []
    for where, a in _entries(doc.get("admissions"), "admissions"):
        a = _map(
            a,
            where,
            {"nation", "project", "level", "ceiling", "from", "until"},
            {"nation", "project"},
            aliases={"valid_from": "from", "valid_until": "until"},
        )
        ceiling = _str(a.get("level", a.get("ceiling")), f"{where}.level")
        if mapper.rank(COMMON_SCHEME, ceiling) is None:
            raise _fail(where, f"{ceiling!r} is not a level of the partnership's common scale")
        admissions.append(
            Admission(
                _nation(a["nation"], f"{where}.nation"),
                _str(a["project"], f"{where}.project"),
                ceiling,
                _time(a["from"], f"{where}.from")
                if a.get("from") is not None
                else datetime.min.replace(tzinfo=UTC),
                _time(a["until"], f"{where}.until") if a.get("until") is not None else None,
            )
        )

    if recognition is None:
        if "agreements" in doc:
            agreements = []
            for where, g in _entries(doc["agreements"], "agreements"):
                g = _map(
                    g,
                    where,
                    {"parties", "from", "until", "id"},
                    {"parties"},
                    aliases={"nations": "parties", "in_force": "from", "terminated": "until"},
                )
                parties = frozenset(
                    _nation(n, f"{where}.parties") for n in _strs(g["parties"], where)
                )
                if len(parties) != 2:
                    raise _fail(where, "an agreement has exactly two parties")
                agreements.append(
                    Agreement(
                        parties,
                        _time(g["from"], f"{where}.from") if g.get("from") is not None else None,
                        _time(g["until"], f"{where}.until") if g.get("until") is not None else None,
                    )
                )
            recognition = TableRecognition(agreements)
        else:
            recognition = default_recognition()

    all_nations = set(configured) | {c.nation for c in clearances}
    keeps = set(world_review_keeps_access(all_nations - set(configured)))
    keeps |= {n for n, suspends in configured.items() if not suspends}

    world = World(
        admissions=tuple(admissions),
        implicit_members=members,
        dual_national_rule=dual,
        review_keeps_access=frozenset(keeps),
        known_categories=DEFAULT_CATEGORIES | _strs(doc.get("categories"), "categories"),
        policy_version=str(doc.get("policy_version") or "scenario")[:100],
    )

    requests: list[Request] = []
    seen_rq: set[str] = set()
    for where, r in _entries(doc.get("requests"), "requests"):
        r = _map(
            r,
            where,
            {"id", "person", "action", "object", "at", "to"},
            {"person", "object"},
            aliases={
                "subject": "person",
                "resource": "object",
                "document": "object",
                "time": "at",
                "recipient": "to",
            },
        )
        rid = _str(r.get("id", f"r{len(requests) + 1}"), f"{where}.id")
        if rid in seen_rq:
            raise _fail(where, f"request {rid!r} is listed twice")
        seen_rq.add(rid)
        requests.append(
            Request(
                rid,
                _str(r["person"], f"{where}.person"),
                _str(r.get("action", "read"), f"{where}.action", limit=40),
                _str(r["object"], f"{where}.object"),
                _time(r["at"], f"{where}.at") if r.get("at") is not None else None,
                _str(r["to"], f"{where}.to") if r.get("to") is not None else None,
            )
        )
    return Scenario(
        at,
        world,
        mapper,
        recognition,
        people,
        tuple(clearances),
        objects,
        tuple(requests),
        _export_check(doc, items, people),
    )


def _designator(data: ObjectExport | None) -> str:
    d = None if data is None or data.item is None else data.item.designator
    return d or "unspecified"


def _export_check(
    doc: Mapping[str, Any], items: Mapping[str, ObjectExport], people: Mapping[str, _Person]
) -> ExportControlCheck | None:
    """The export hook, when the scenario carries export data (else ``None``)."""
    if "export" not in doc and "export_parties" not in doc and not items:
        return None
    try:
        facts = load_facts(doc.get("export") or {})
    except ExportFactsError as exc:
        msg = str(exc).removeprefix("facts")
        raise InvalidScenario(f"scenario export{'' if msg[:1] in '.:' else '.'}{msg}") from None
    try:
        parties = load_parties(doc.get("export_parties") or [])
    except ExportFactsError as exc:
        raise InvalidScenario(f"scenario {exc}") from None
    return ExportControlCheck(
        facts, parties, dict(items), {pid: p.nationalities for pid, p in people.items()}
    )


def _status(value: Any, where: str) -> str:
    """Vetting status spelling: ``Under Review`` and ``under-review`` are ``under_review``."""
    return "_".join(_str(value, where, limit=40).strip().lower().replace("-", " ").split())


def _resource_from_fields(
    oid: str,
    o: dict[str, Any],
    originator: str | None,
    project: str | None,
    approved: frozenset[str],
    extra: frozenset[str],
    export: ExportFacts | None,
    where: str,
) -> Resource:
    """An object given as fields instead of a marking."""
    from relto.decisions.adapters import _expand

    if originator is None:
        raise _fail(where, "an object given by classification needs an originator")
    rel = _strs(o.get("rel_to"), f"{where}.rel_to")
    relto = _expand(c.strip().upper() for c in rel) if rel else frozenset()
    relto = frozenset({originator}) if o.get("noforn") or not relto else relto | {originator}
    return Resource(
        id=oid,
        originator=originator,
        classification=_str(o["classification"], f"{where}.classification"),
        rel_to=relto,
        project=project,
        categories=extra,
        orcon=bool(o.get("orcon")),
        orcon_approved=approved,
        export=export,
    )


def _resource_from_label(
    oid: str,
    xml: str,
    originator: str | None,
    project: str | None,
    approved: frozenset[str],
    extra: frozenset[str],
    export: ExportFacts | None,
) -> Resource:
    from relto.decisions.adapters import resource_from_4774

    return resource_from_4774(
        oid,
        xml.encode(),
        originator=originator,
        project=project,
        orcon_approved=approved,
        categories=extra,
        export=export,
    )


_UNKNOWN_REQUEST = "UNKNOWN_ATTRIBUTE"


def decide_scenario(
    scenario: Scenario, *, at: datetime | None = None
) -> list[tuple[Request, Decision | None]]:
    """Decide every request. Time: the request's ``at``, else ``at``, else the
    scenario's ``at``, else now. A request naming an unknown person or object is
    returned with ``None`` (callers report it as a denial with UNKNOWN_ATTRIBUTE)."""
    engine = scenario.engine()
    retransfer: dict[str, Engine] = {}
    default_at = at or scenario.at or datetime.now(UTC)
    subjects: dict[tuple[str, datetime], Subject] = {}
    out: list[tuple[Request, Decision | None]] = []
    for req in scenario.requests:
        t = req.at or default_at
        if req.person not in scenario.people or req.object not in scenario.objects:
            out.append((req, None))
            continue
        key = (req.person, t)
        subject = subjects.get(key)
        if subject is None:
            subject = subjects[key] = scenario.subject_at(req.person, t)
        eng = engine
        if req.to is not None and scenario.export_check is not None:
            eng = retransfer.get(req.to) or retransfer.setdefault(
                req.to, scenario.engine(scenario.export_check.retransfer_to(req.to))
            )
        out.append((req, eng.evaluate(subject, req.action, scenario.objects[req.object], at=t)))
    return out
