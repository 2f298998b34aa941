"""Generators and helpers shared by the decision tests (tests/decisions is on sys.path)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relto.decisions import (
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
from relto.decisions.protocols import DEFAULT_SCHEMES

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NATIONS = ("AUS", "GBR", "USA", "JPN", "KOR", "CAN", "NZL")
ORIGINATORS = ("USA", "GBR", "AUS", "JPN")
PROJECTS = ("undersea", "hypersonics")
CATEGORIES = ("ATOMAL", "SI")
UNKNOWN_CATEGORY = "ZEBRA"
STATUSES = (*sorted(CLEARANCE_STATUSES), "bogus")
MAX_CLEARANCES = 3
MAX_NATIONALITIES = 2
MAX_CATEGORIES = 2
MAX_ADMISSIONS = 4
_TRIGRAPH = re.compile(r"^[A-Z]{3}$")


class HashExport:
    """Export hook for tests: allows subjects whose id ends in an even digit."""

    def check(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None:
        return None if subject.id[-1] in "02468" else "no licence covers this person"


def levels(nation: str) -> list[str]:
    return [name for name, _ in DEFAULT_SCHEMES[nation]]


@dataclass
class Universe:
    world: World
    recognition: TableRecognition
    subjects: list[Subject]
    objects: list[Resource]
    at: datetime


def random_subject(rng: random.Random, i: int) -> Subject:
    k = rng.choices((0, 1, 2), (1, 12, 4))[0]
    pool = rng.choice((NATIONS, ("AUS", "GBR", "USA")))
    nats = frozenset(rng.sample(pool, min(k, len(pool))))
    clearances = []
    for j in range(rng.choices(range(MAX_CLEARANCES + 1), (2, 10, 5, 2))[0]):
        issuer = rng.choice(sorted(nats)) if nats and rng.random() < 0.7 else rng.choice(NATIONS)
        if rng.random() < 0.05:
            level = "COSMIC PURPLE"
        else:
            level = rng.choice(levels(issuer)[-2:] if rng.random() < 0.6 else levels(issuer))
        status = rng.choice(("granted",) * 8 + ("interim",) + STATUSES)
        clearances.append(ClearanceFact(f"u{i}c{j}", issuer, level, status, ""))
    return Subject(
        id=f"user{i}",
        nationalities=nats,
        clearances=tuple(clearances),
        caveats=frozenset(c for c in CATEGORIES if rng.random() < 0.7),
        projects=frozenset(p for p in PROJECTS if rng.random() < 0.85),
        roles=frozenset({"security_officer"}) if rng.random() < 0.3 else frozenset(),
    )


def random_object(rng: random.Random, i: int, user_ids: list[str]) -> Resource:
    orig = rng.choice(ORIGINATORS)
    level = rng.choice(levels(orig)) if rng.random() > 0.05 else "ULTRA"
    relto = set(rng.sample(NATIONS, rng.randint(0, 6)))
    if rng.random() < 0.5:
        relto.update(("AUS", "GBR", "USA"))
    if rng.random() < 0.5:
        relto.add(orig)
    if rng.random() < 0.03:
        relto.add("FVEY")
    cats = set(rng.sample(CATEGORIES, rng.choices((0, 1, 2), (12, 3, 1))[0]))
    if rng.random() < 0.04 and len(cats) < MAX_CATEGORIES:
        cats.add(UNKNOWN_CATEGORY)
    orcon = rng.random() < 0.1
    return Resource(
        id=f"obj{i}",
        originator=orig,
        classification=level,
        rel_to=frozenset(relto),
        project=rng.choice((*PROJECTS, None)) if rng.random() > 0.05 else None,
        categories=frozenset(cats),
        orcon=orcon,
        orcon_approved=frozenset(rng.sample(user_ids, min(len(user_ids), 5)))
        if orcon
        else frozenset(),
        export=ExportFacts("ITAR", "XI(a)") if rng.random() < 0.05 else None,
    )


def random_world(rng: random.Random) -> tuple[World, TableRecognition, datetime]:
    at = AT + timedelta(days=rng.randint(-400, 400))
    common = levels(COMMON_SCHEME)
    admissions = []
    for _ in range(rng.randint(0, MAX_ADMISSIONS)):
        start = at + timedelta(days=rng.randint(-300, 100))
        end = start + timedelta(days=rng.randint(1, 400)) if rng.random() < 0.5 else None
        admissions.append(
            Admission(rng.choice(NATIONS), rng.choice(PROJECTS), rng.choice(common), start, end)
        )
    pairs = set()
    for _ in range(rng.randint(0, 12)):
        a, b = rng.sample(NATIONS, 2)
        pairs.add(frozenset((a, b)))
    agreements = [
        Agreement(p, at - timedelta(days=rng.randint(-50, 300)) if rng.random() < 0.5 else None)
        for p in pairs
    ]
    world = World(
        admissions=tuple(admissions),
        implicit_members=frozenset(n for n in ("AUS", "GBR", "USA") if rng.random() < 0.9),
        dual_national_rule={
            o: rng.choice(("any", "all")) for o in ORIGINATORS if rng.random() < 0.7
        },
        review_keeps_access=frozenset(n for n in NATIONS if rng.random() < 0.4),
        known_categories=frozenset(CATEGORIES),
        policy_version="gen",
    )
    return world, TableRecognition(agreements), at


def random_universe(rng: random.Random, n_subjects: int, n_objects: int) -> Universe:
    world, recognition, at = random_world(rng)
    subjects = [random_subject(rng, i) for i in range(n_subjects)]
    ids = [s.id for s in subjects]
    objects = [random_object(rng, i, ids) for i in range(n_objects)]
    return Universe(world, recognition, subjects, objects, at)


def engine_for(u: Universe) -> Engine:
    return Engine(u.world, TableLevelMapper(), u.recognition, HashExport())


def wellformed(relto: frozenset[str]) -> bool:
    return all(_TRIGRAPH.match(c) is not None for c in relto)
