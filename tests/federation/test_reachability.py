"""Partner reachability, the core (:mod:`relto.federation.reachability`), on the
in-memory store and the SQL one: a partner missed for more than a few push rounds
is silent, recorded once; it clears, recorded once, when it is heard from again; a
node that was itself down accuses nobody it has not tried to reach."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relto.authz import Authorizer, Principal
from relto.errors import AccessDenied
from relto.events import MemorySink
from relto.federation.reachability import (
    RETURNED_KIND,
    SILENT_KIND,
    ContactStore,
    MemoryContactStore,
    Reachability,
)
from relto.store import create_database
from relto.store.witnessing import SqlContactStore

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=60)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta = INTERVAL) -> None:
        self.now += by


@pytest.fixture(params=["memory", "sql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ContactStore:
    if request.param == "memory":
        return MemoryContactStore()
    return SqlContactStore(create_database(f"sqlite:///{tmp_path / 'log.db'}"))


def _reach(store: ContactStore, clock: Clock, sink: MemorySink) -> Reachability:
    return Reachability(
        store, lambda: ["GBR", "USA", "AUS"], sink=sink, authorizer=Authorizer(sink),
        nation="GBR", interval=INTERVAL, rounds=3, clock=clock,
    )  # fmt: skip


def _kinds(sink: MemorySink, kind: str) -> list[dict[str, object]]:
    return [dict(e.payload) for e in sink.events if e.kind == kind]


def _round(reach: Reachability, clock: Clock, heard: set[str]) -> None:
    """One witness push round: the partners in ``heard`` cosign, the others miss."""
    clock.advance()
    for n in reach.partners():
        if n in heard:
            reach.heard(n, "cosigned")
        else:
            reach.missed(n, "unreachable: ConnectError")
    reach.check()


def _state(reach: Reachability) -> dict[str, str]:
    return {s.nation: s.state for s in reach.statuses()}


def test_silent_partner_alarm_raised_once_and_cleared_once(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    _round(reach, clock, {"AUS", "USA"})
    assert _state(reach) == {"AUS": "reachable", "USA": "reachable"}
    for _ in range(3):  # three rounds miss USA: not yet more than 3 intervals
        _round(reach, clock, {"AUS"})
    assert _state(reach)["USA"] == "reachable"
    _round(reach, clock, {"AUS"})  # the fourth: 4 intervals without news
    assert _state(reach) == {"AUS": "reachable", "USA": "silent"}
    for _ in range(20):  # an hour more of missed rounds: recorded once
        _round(reach, clock, {"AUS"})
    (silent,) = _kinds(sink, SILENT_KIND)
    assert silent["nation"] == "USA" and silent["missed_rounds"] == 4
    assert silent["last_heard"] == (T0 + INTERVAL).isoformat()
    (usa,) = [s for s in reach.statuses() if s.nation == "USA"]
    assert usa.silent_since == T0 + 5 * INTERVAL and usa.last_miss.startswith("unreachable")
    _round(reach, clock, {"AUS", "USA"})  # back
    assert _state(reach)["USA"] == "reachable"
    (returned,) = _kinds(sink, RETURNED_KIND)
    assert returned["nation"] == "USA" and returned["how"] == "cosigned"
    for _ in range(3):
        _round(reach, clock, {"AUS", "USA"})
    assert len(_kinds(sink, SILENT_KIND)) == len(_kinds(sink, RETURNED_KIND)) == 1


def test_node_that_was_down_itself_accuses_nobody(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    _round(reach, clock, {"AUS", "USA"})
    clock.advance(timedelta(hours=1))  # this node was down: it tried nobody
    assert reach.check() and _state(reach) == {"AUS": "reachable", "USA": "reachable"}
    _round(reach, clock, {"AUS", "USA"})  # its first round back reaches both
    assert _kinds(sink, SILENT_KIND) == []


def test_partner_answering_changes_is_not_silent(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    for _ in range(6):  # its witness never cosigns, but it takes our changes
        clock.advance()
        reach.missed("USA", "failed: HTTP 500")
        reach.heard("USA", "changes")
        reach.heard("AUS", "cosigned")
        reach.check()
    assert _state(reach)["USA"] == "reachable" and _kinds(sink, SILENT_KIND) == []


def test_partner_never_heard_from_goes_silent_after_the_rounds(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    assert _state(reach) == {"AUS": "unknown", "USA": "unknown"}
    for _ in range(5):
        _round(reach, clock, {"AUS"})
    assert _state(reach)["USA"] == "silent"
    (silent,) = _kinds(sink, SILENT_KIND)
    assert silent["last_heard"] is None


def test_quiet_partner_is_asked_again_each_round(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    assert reach.due("USA")  # never heard
    reach.heard("USA", "cosigned")
    assert not reach.due("USA")
    clock.advance(INTERVAL / 2)
    assert reach.due("USA")


def test_own_nation_is_never_a_partner(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    reach.heard("GBR", "cosigned")
    for _ in range(6):
        reach.missed("GBR", "x")
        clock.advance()
    assert "GBR" not in _state(reach) and store.get("GBR") is None


def test_partner_status_read_only_by_people_of_the_nation(store: ContactStore) -> None:
    clock, sink = Clock(), MemorySink()
    reach = _reach(store, clock, sink)
    usa_person = Principal("usa-x", "X", "USA", frozenset({"USA"}), frozenset(), "test")
    gbr_person = Principal("gbr-x", "X", "GBR", frozenset({"GBR"}), frozenset(), "test")
    assert [s.nation for s in reach.read_status(gbr_person)] == ["AUS", "USA"]
    with pytest.raises(AccessDenied):
        reach.read_status(usa_person)


def test_two_workers_record_each_transition_once(tmp_path: Path) -> None:
    """Two workers of one node (two Reachability objects over one database): the
    silence and the return are each recorded by one of them."""
    db = create_database(f"sqlite:///{tmp_path / 'log.db'}")
    clock, sink = Clock(), MemorySink()
    workers: list[Callable[[], Reachability]] = [
        lambda: _reach(SqlContactStore(db), clock, sink) for _ in range(2)
    ]
    a, b = (w() for w in workers)
    a.heard("USA", "cosigned")
    for _ in range(4):
        clock.advance()
        a.missed("USA", "unreachable")
    a.check()
    b.check()
    assert len(_kinds(sink, SILENT_KIND)) == 1
    a.heard("USA", "checkpoint")
    b.heard("USA", "cosigned")
    assert len(_kinds(sink, RETURNED_KIND)) == 1
