from __future__ import annotations

import pytest
from decisions_testing import AT

from relto.decisions import (
    Admission,
    Agreement,
    ClearanceFact,
    Engine,
    Resource,
    Subject,
    TableLevelMapper,
    TableRecognition,
    World,
)


@pytest.fixture
def world() -> World:
    return World(
        admissions=(Admission("JPN", "undersea", "SECRET", AT.replace(year=2026, month=1)),),
        implicit_members=frozenset({"AUS", "GBR", "USA"}),
        known_categories=frozenset({"ATOMAL", "SI"}),
        review_keeps_access=frozenset({"GBR"}),
        policy_version="test-1",
    )


@pytest.fixture
def engine(world: World) -> Engine:
    recognition = TableRecognition(
        [Agreement(frozenset({"GBR", "USA"})), Agreement(frozenset({"JPN", "USA"}))]
    )
    return Engine(world, TableLevelMapper(), recognition)


def person(
    pid: str = "alice",
    nats: tuple[str, ...] = ("USA",),
    clearances: tuple[tuple[str, str, str], ...] = (("USA", "TOP SECRET", "granted"),),
    projects: tuple[str, ...] = ("undersea",),
    roles: tuple[str, ...] = (),
    caveats: tuple[str, ...] = (),
) -> Subject:
    return Subject(
        pid,
        frozenset(nats),
        tuple(
            ClearanceFact(f"{pid}-c{i}", n, lvl, st, "")
            for i, (n, lvl, st) in enumerate(clearances)
        ),
        frozenset(caveats),
        frozenset(projects),
        frozenset(roles),
    )


def doc(
    oid: str = "doc",
    orig: str = "USA",
    level: str = "SECRET",
    rel: tuple[str, ...] = ("USA", "GBR", "AUS"),
    project: str | None = "undersea",
    cats: tuple[str, ...] = (),
    orcon: bool = False,
    approved: tuple[str, ...] = (),
) -> Resource:
    return Resource(
        oid, orig, level, frozenset(rel), project, frozenset(cats), orcon, frozenset(approved)
    )
