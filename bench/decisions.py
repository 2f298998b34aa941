"""Decision engine benchmark: explained decisions per second, one core, one run.

Three deciders over the same generated world and the same requests:

- relto: ``Engine.evaluate`` (explained Decision: codes and sentences) and the
  ``Engine.readable`` list-page path;
- plain Python: a hand-written check of the same rules with the same service
  answers (cached like the engine's), no rule memoisation: the in-process limit
  for straightforward code;
- cedarpy: the independent Cedar policy set of the differential test
  (tests/decisions/cedar_oracle.py), policies and entities pre-parsed, dict ids,
  one ``is_authorized_batch`` call; reasons are the determining policy ids.

Targets (issue 5): relto >= 0.5x plain Python and >= 20x cedarpy.
Run: ``.venv/bin/python bench/decisions.py``.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "decisions"))

import cedarpy  # noqa: E402
from cedar_oracle import (  # noqa: E402
    SCHEMA,
    context,
    grant_entity,
    object_entity,
    origin_entity,
    policies,
    user_entity,
)
from decisions_testing import (  # noqa: E402
    ORIGINATORS,
    HashExport,
    Universe,
    random_universe,
    random_world,
)

from relto.decisions import (  # noqa: E402
    CLEARANCE_STATUSES,
    COMMON_SCHEME,
    Admission,
    Agreement,
    ClearanceFact,
    Engine,
    ExportFacts,
    Resource,
    Subject,
    TableLevelMapper,
    TableRecognition,
    World,
)

OBJECTS = 3000
REQUESTS = 120_000
CEDAR_REQUESTS = 10_000
ROUNDS = 5
ACTIONS = ("read", "read", "read", "download", "share", "relabel")
CURRENT = ("granted", "interim")
WEIGHTS = {"CLEARANCE_NOT_CURRENT": 9, "CLEARANCE_TOO_LOW": 10, "CLEARANCE_NOT_RECOGNISED": 12}


class PlainChecker:
    """The rules written out by hand (docs/decisions.md), service answers cached."""

    def __init__(self, world: World, mapper: Any, recognition: Any, export: Any) -> None:
        self.w = world
        self.export = export
        self.rank = functools.cache(mapper.rank)
        self.map = functools.cache(mapper.map_level)
        self.recog = functools.cache(recognition.recognises)

    def mapped_rank(self, nation: str, level: str, orig: str) -> int:
        m = self.map(nation, level, orig)
        r = None if m is None else self.rank(orig, m)
        return -1 if r is None else r

    def admitted(self, n: str, o: Resource, orank: int, at: datetime) -> bool:
        explicit = False
        for a in self.w.admissions:
            if a.nation == n and a.project == o.project:
                explicit = True
                active = a.start <= at and (a.end is None or at < a.end)
                ceiling = self.mapped_rank(COMMON_SCHEME, a.ceiling, o.originator)
                if active and (orank < 0 or orank <= ceiling):
                    return True
        return n in self.w.implicit_members and not explicit

    def decide(
        self, s: Subject, action: str, o: Resource, at: datetime
    ) -> tuple[bool, list[tuple[str, str]]]:
        out: list[tuple[str, str]] = []
        orig = o.originator
        orank = self.rank(orig, o.classification)
        orank = -1 if orank is None else orank
        unknown = []
        if orank < 0:
            unknown.append(f"classification {o.classification} unknown")
        # clearances
        best = None
        best_fails: list[str] = []
        passes = False
        n_known = 0
        for c in s.clearances:
            if c.status not in CLEARANCE_STATUSES or self.rank(c.nation, c.level) is None:
                unknown.append(f"clearance {c.id} unreadable")
                continue
            n_known += 1
            fails = []
            cur = c.status in CURRENT or (
                c.status == "under_review" and c.nation in self.w.review_keeps_access
            )
            if not cur:
                fails.append("CLEARANCE_NOT_CURRENT")
            if not self.recog(c.nation, orig, at):
                fails.append("CLEARANCE_NOT_RECOGNISED")
            if orank >= 0 and self.mapped_rank(c.nation, c.level, orig) < orank:
                fails.append("CLEARANCE_TOO_LOW")
            if not fails:
                passes = True
                continue
            score = sum(WEIGHTS[f] for f in fails)
            if best is None or score < best:
                best, best_fails = score, fails
        if passes:
            best_fails = []
        if not passes:
            if n_known == 0 and not any("clearance" in u for u in unknown):
                out.append(("CLEARANCE_MISSING", f"{s.id} holds no security clearance."))
            for f in best_fails:
                out.append((f, f"The nearest clearance fails {f}."))
        nats = s.nationalities
        dual_all = self.w.dual_national_rule.get(orig, "any") == "all"
        rel_ok = (bool(nats) and nats <= o.rel_to) if dual_all else not nats.isdisjoint(o.rel_to)
        if not rel_ok:
            out.append(("NOT_RELEASABLE", f"No nationality of {s.id} is in Releasable To."))
        if not all(len(c) == 3 and c.isalpha() and c.isupper() for c in o.rel_to):
            unknown.append("Releasable To malformed")
        if dual_all:
            adm_ok = bool(nats) and all(self.admitted(n, o, orank, at) for n in nats)
        else:
            adm_ok = any(self.admitted(n, o, orank, at) for n in nats)
        if not adm_ok:
            out.append(("NATION_NOT_ADMITTED", f"Not admitted to {o.project}."))
        if o.project not in s.projects or (
            action == "relabel" and "security_officer" not in s.roles
        ):
            out.append(("NO_NEED_TO_KNOW", f"{s.id} has no need to know."))
        if action not in ("read", "download", "share", "relabel"):
            unknown.append(f"action {action}")
        known = self.w.known_categories
        lacking = [k for k in o.categories if k in known and k not in s.caveats]
        if lacking:
            out.append(("CAVEAT_NOT_HELD", f"{s.id} does not hold {', '.join(sorted(lacking))}."))
        unknown += [k for k in o.categories if k not in known]
        if (o.orcon and (s.id not in o.orcon_approved or action == "share")) or (
            action == "relabel" and orig not in nats
        ):
            out.append(("ORIGINATOR_CONTROLLED", "Originator controlled."))
        if o.export is not None:
            msg = None if self.export is None else self.export.check(s, action, o, at)
            if self.export is None or msg is not None:
                out.append(("EXPORT_CONTROLLED", msg or "Export controlled."))
        if unknown:
            out.append(("UNKNOWN_ATTRIBUTE", "; ".join(unknown)))
        out.sort()
        return not out, out


def _machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = f", load average {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} cpus{load}; Python {platform.python_version()}"


PROJECTS = ("undersea", "hypersonics", "quantum", "autonomy", "cyber", "ew")
RELEASES = (
    ("USA", "GBR", "AUS"),
    ("USA", "GBR", "AUS"),
    ("USA", "GBR", "AUS", "JPN"),
    ("USA", "GBR", "AUS", "CAN", "NZL"),
    ("USA", "GBR"),
    ("USA", "GBR", "AUS", "KOR"),
)


def partnership_universe(rng: random.Random, n_subjects: int, n_objects: int) -> Universe:
    """A production-like partnership: few REL TO lists, mostly members, granted clearances."""
    world, recognition, at = random_world(rng)
    world = World(
        admissions=(
            Admission("JPN", "undersea", "SECRET", at - timedelta(days=200)),
            Admission("JPN", "autonomy", "SECRET", at - timedelta(days=30)),
            Admission("KOR", "cyber", "CONFIDENTIAL", at - timedelta(days=100)),
            Admission("CAN", "quantum", "TOP SECRET", at - timedelta(days=400)),
        ),
        implicit_members=frozenset({"AUS", "GBR", "USA"}),
        dual_national_rule={"USA": "all"},
        review_keeps_access=frozenset({"GBR"}),
        known_categories=frozenset({"ATOMAL", "SI"}),
        policy_version="bench",
    )
    recognition = TableRecognition(
        [
            Agreement(frozenset(p))
            for p in (
                ("GBR", "USA"),
                ("AUS", "USA"),
                ("JPN", "USA"),
                ("CAN", "USA"),
                ("KOR", "USA"),
                ("AUS", "GBR"),
            )
        ]
    )
    subjects = []
    for i in range(n_subjects):
        nat = rng.choices(("USA", "GBR", "AUS", "JPN", "KOR", "CAN"), (5, 3, 3, 1, 1, 1))[0]
        nats = {nat} | ({"GBR"} if rng.random() < 0.03 else set())
        level = rng.choices(("SECRET", "TOP SECRET", "CONFIDENTIAL"), (6, 3, 1))[0]
        status = rng.choices(("granted", "interim", "expired", "suspended"), (90, 4, 4, 2))[0]
        clearances = [
            ClearanceFact(f"u{i}c0", nat, level if nat not in ("JPN", "KOR") else "SECRET", status)
        ]
        subjects.append(
            Subject(
                f"user{i}",
                frozenset(nats),
                tuple(clearances),
                frozenset({"SI"}) if rng.random() < 0.2 else frozenset(),
                frozenset(rng.sample(PROJECTS, rng.randint(1, 3))),
                frozenset({"security_officer"}) if rng.random() < 0.05 else frozenset(),
            )
        )
    ids = [s.id for s in subjects]
    objects = []
    for i in range(n_objects):
        orig = rng.choices(("USA", "GBR", "AUS"), (6, 2, 2))[0]
        level = rng.choices(("SECRET", "TOP SECRET", "CONFIDENTIAL", "UNCLASSIFIED"), (5, 1, 2, 2))[
            0
        ]
        if orig != "USA" and level in ("CONFIDENTIAL", "UNCLASSIFIED"):
            level = "OFFICIAL"
        orcon = rng.random() < 0.03
        objects.append(
            Resource(
                f"obj{i}",
                orig,
                level,
                frozenset(rng.choice(RELEASES)) | {orig},
                rng.choice(PROJECTS),
                frozenset({"SI"}) if rng.random() < 0.05 else frozenset(),
                orcon,
                frozenset(rng.sample(ids, 3)) if orcon else frozenset(),
                ExportFacts("ITAR", "XI(a)") if rng.random() < 0.02 else None,
            )
        )
    return Universe(world, recognition, subjects, objects, at)


def workload(name: str, subjects: int, seed: int, realistic: bool) -> dict[str, float]:
    """Interleaved rounds, fresh deciders (cold caches) each round, best round kept."""
    rng = random.Random(seed)
    make = partnership_universe if realistic else random_universe
    u = make(rng, subjects, OBJECTS)
    mapper = TableLevelMapper()
    export = HashExport()
    requests = [
        (rng.choice(u.subjects), rng.choice(ACTIONS), rng.choice(u.objects))
        for _ in range(REQUESTS)
    ]
    at = u.at
    best: dict[str, float] = {}

    def keep(key: str, n: int, seconds: float) -> None:
        best[key] = max(best.get(key, 0.0), n / seconds)

    policy_set = cedarpy.PolicySet.from_str(policies())
    schema = cedarpy.Schema.from_json_str(json.dumps(SCHEMA))
    ents = [user_entity(s) for s in u.subjects] + [object_entity(o, mapper) for o in u.objects]
    ents += [origin_entity(n, u.world, mapper) for n in ORIGINATORS]
    ents += [grant_entity(s, n, at, mapper, u.recognition) for s in u.subjects for n in ORIGINATORS]
    entities = cedarpy.Entities.from_json_str(json.dumps(ents), schema)
    cedar_requests = [
        {
            "principal": {"type": "User", "id": s.id},
            "action": {"type": "Action", "id": a},
            "resource": {"type": "Object", "id": o.id},
            "context": context(s, a, o, at, export),
        }
        for s, a, o in requests[:CEDAR_REQUESTS]
    ]
    relto: list[Any] = []
    plain_out: list[Any] = []
    cedar_codes: list[list[str]] = []
    for _ in range(ROUNDS):
        engine = Engine(u.world, mapper, u.recognition, export)
        t0 = time.perf_counter()
        relto = [engine.evaluate(s, a, o, at=at) for s, a, o in requests]
        keep("relto", REQUESTS, time.perf_counter() - t0)

        plain = PlainChecker(u.world, mapper, u.recognition, export)
        t0 = time.perf_counter()
        plain_out = [plain.decide(s, a, o, at) for s, a, o in requests]
        keep("plain", REQUESTS, time.perf_counter() - t0)

        t0 = time.perf_counter()
        results = cedarpy.is_authorized_batch(cedar_requests, policy_set, entities, schema)
        cedar_codes = [
            sorted(
                {r.diagnostics.id_annotations_by_reason[p] for p in r.diagnostics.reasons}
                - {"PERMIT"}
            )
            for r in results
        ]
        keep("cedar", CEDAR_REQUESTS, time.perf_counter() - t0)

        t0 = time.perf_counter()
        for s, a, o in requests:
            engine.evaluate(s, a, o, at=at)
        keep("warm", REQUESTS, time.perf_counter() - t0)

        engine2 = Engine(u.world, mapper, u.recognition, export)
        t0 = time.perf_counter()
        page = sum(len(engine2.readable(s, u.objects, at=at)) for s in u.subjects)
        keep("page", subjects * OBJECTS, time.perf_counter() - t0)

    mismatch = sum(
        1
        for d, (ok, reasons) in zip(relto, plain_out, strict=True)
        if d.allowed != ok or list(d.codes) != [c for c, _ in reasons]
    )
    cedar_mismatch = sum(
        1 for d, codes in zip(relto, cedar_codes, strict=False) if list(d.codes) != codes
    )
    allowed = sum(d.allowed for d in relto)
    print(
        f"\n### {name}: {subjects} subjects x {OBJECTS} objects, {REQUESTS} random requests "
        f"({REQUESTS // subjects} per subject, {allowed} allowed); cedarpy on the first "
        f"{CEDAR_REQUESTS}; list page readable total {page}"
    )
    print(f"agreement: relto vs plain {mismatch} mismatches, relto vs cedarpy {cedar_mismatch}")
    print("| decider | decisions/s | x plain Python | x cedarpy |")
    print("| --- | ---: | ---: | ---: |")
    rows = [
        ("relto evaluate, cold caches (explained: codes + sentences)", best["relto"]),
        ("relto evaluate, warm (same requests again, same engine)", best["warm"]),
        ("relto readable (list page, allow/deny)", best["page"]),
        ("plain Python (explained) [baseline]", best["plain"]),
        ("cedarpy batch (determining policy ids)", best["cedar"]),
    ]
    for label, r in rows:
        print(f"| {label} | {r:,.0f} | {r / best['plain']:.2f} | {r / best['cedar']:.1f} |")
    print(
        f"targets: relto >= 0.5x plain: {best['relto'] >= 0.5 * best['plain']}; "
        f"relto >= 20x cedarpy: {best['relto'] >= 20 * best['cedar']}"
    )
    return best


def main() -> None:
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        pinned = "pinned to one core"
    except (AttributeError, OSError):
        pinned = "not pinned"
    print(f"machine: {_machine()}; {pinned}; best of {ROUNDS} interleaved rounds, cold caches")
    workload("partnership (production-like)", 100, 5, realistic=True)
    workload("adversarial (the differential test's generator)", 100, 6, realistic=False)


if __name__ == "__main__":
    main()
