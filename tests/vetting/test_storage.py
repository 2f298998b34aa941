"""Storage on SQLite and PostgreSQL: round trips, append-only history, audit before
commit, and failures that leave nothing behind."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from relto.errors import NotFound
from relto.events import MemorySink
from relto.store import Database
from relto.vetting import (
    IllegalTransition,
    IncidentKind,
    ObligationKind,
    Person,
    ProjectMembership,
    Role,
    Status,
    VettingInputError,
)
from relto.vetting.service import ConcurrentChange, VettingService

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def person(pid: str = "p-1", nats: frozenset[str] = frozenset({"AUS", "JPN"})) -> Person:
    return Person(
        id=pid,
        name="Aiko Smith",
        nationalities=nats,
        organisation="ANU",
        home_nation="AUS",
        roles=frozenset({Role.ENGINEER, Role.AUDITOR}),
        projects=(ProjectMembership("quantum-x", "lead"), ProjectMembership("hyper-1")),
    )


def t(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


@pytest.fixture
def svc(database: Database) -> VettingService:
    return VettingService(database, MemorySink())


def granted(svc: VettingService, cid: str = "c-1") -> None:
    svc.register_person(person(), at=T0, actor="vo-1")
    svc.sponsor_clearance(
        person_id="p-1",
        nation="AUS",
        level="NV1",
        sponsor="Defence",
        at=t(1),
        actor="vo-1",
        reason="role needs SECRET",
        clearance_id=cid,
        caveats=frozenset({"AUSTEO"}),
    )
    for i, s in enumerate((Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED), 2):
        svc.transition(cid, s, at=t(i), actor="vo-1", reason=f"to {s.value}")


def test_tables_exist(database: Database) -> None:
    names = set(inspect(database.engine).get_table_names())
    assert {"vetting_person", "vetting_clearance", "vetting_clearance_event"} <= names


def test_person_round_trip_keeps_dual_nationality(svc: VettingService) -> None:
    p = person()
    svc.register_person(p, at=T0, actor="vo-1")
    assert svc.get_person("p-1") == p
    with pytest.raises(VettingInputError):
        svc.register_person(p, at=T0, actor="vo-1")
    changed = person(nats=frozenset({"AUS"}))
    svc.update_person(changed, at=t(1), actor="vo-1")
    assert svc.get_person("p-1").nationalities == {"AUS"}
    with pytest.raises(NotFound):
        svc.get_person("nobody")


def test_clearance_round_trip_and_history(svc: VettingService) -> None:
    granted(svc)
    c = svc.get_clearance("c-1")
    assert c.caveats == {"AUSTEO"} and c.classification == "SECRET"
    assert [e.to_status for e in svc.history("c-1")] == [
        Status.SPONSORED,
        Status.INVESTIGATING,
        Status.ADJUDICATING,
        Status.GRANTED,
    ]
    assert c.events[-1].valid_until == dt.datetime(2036, 1, 9, tzinfo=dt.UTC)
    assert c.events[-1].at.tzinfo is not None
    assert c.is_current(t(10), svc.policy)


def test_every_change_is_audited(database: Database) -> None:
    sink = MemorySink()
    svc = VettingService(database, sink)
    granted(svc)
    svc.record_incident("c-1", IncidentKind.BREACH, at=t(9), actor="so-1", reason="unlocked safe")
    assert sink.kinds() == [
        "vetting.person.registered",
        "vetting.clearance.sponsored",
        "vetting.clearance.transition",
        "vetting.clearance.transition",
        "vetting.clearance.transition",
        "vetting.clearance.incident",
        "vetting.clearance.transition",
    ]
    last = sink.events[-1].payload
    assert (last["from_status"], last["to_status"], last["actor"]) == (
        "granted",
        "under_review",
        "relto",
    )


class RefusingSink:
    def __init__(self) -> None:
        self.calls = 0

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        self.calls += 1
        raise RuntimeError("log unavailable")


def test_unaudited_change_is_not_stored(database: Database) -> None:
    svc = VettingService(database, MemorySink())
    granted(svc)
    refusing = VettingService(database, RefusingSink())
    with pytest.raises(RuntimeError):
        refusing.transition("c-1", Status.SUSPENDED, at=t(9), actor="so", reason="x")
    assert svc.get_clearance("c-1").status_at(t(9)) is Status.GRANTED
    assert len(svc.history("c-1")) == 4


def test_illegal_transition_changes_nothing(svc: VettingService) -> None:
    granted(svc)
    with pytest.raises(IllegalTransition):
        svc.transition("c-1", Status.INVESTIGATING, at=t(9), actor="vo", reason="x")
    assert len(svc.history("c-1")) == 4


def test_stored_history_cannot_be_rewritten(svc: VettingService, database: Database) -> None:
    granted(svc)
    with pytest.raises(Exception, match="append-only"), database.engine.begin() as conn:
        conn.execute(text("UPDATE vetting_clearance_event SET to_status = 'granted' WHERE seq = 1"))
    with pytest.raises(Exception, match="append-only"), database.engine.begin() as conn:
        conn.execute(text("DELETE FROM vetting_clearance_event"))
    assert len(svc.history("c-1")) == 4


def test_concurrent_append_detected(svc: VettingService) -> None:
    granted(svc)
    stale = svc.get_clearance("c-1")
    svc.transition("c-1", Status.SUSPENDED, at=t(9), actor="so", reason="first")
    # A second writer that read the clearance before the first wrote:
    racing = stale.transition(
        Status.REVOKED, at=t(9), actor="so", reason="second", policy=svc.policy
    )
    from relto.store.vetting import SqlVettingRepository

    with pytest.raises(IntegrityError), svc.db.session() as s:
        SqlVettingRepository(s).append_events("c-1", racing.events[-1:])
    assert svc.get_clearance("c-1").status_at(t(9)) is Status.SUSPENDED
    assert ConcurrentChange.code == "concurrent_change"


def test_reports_and_expectations_persist(svc: VettingService) -> None:
    granted(svc)
    svc.expect_report(
        "c-1",
        ObligationKind.FOREIGN_TRAVEL,
        occurred_on=dt.date(2026, 1, 20),
        at=t(10),
        actor="so-1",
        reason="travel to Tokyo approved",
    )
    c = svc.get_clearance("c-1")
    assert c.status_at(dt.datetime(2026, 2, 1, tzinfo=dt.UTC)) is Status.UNDER_REVIEW
    ref = c.events[-1].seq
    svc.file_report(
        "c-1",
        ObligationKind.FOREIGN_TRAVEL,
        occurred_on=dt.date(2026, 1, 20),
        at=dt.datetime(2026, 1, 21, tzinfo=dt.UTC),
        actor="p-1",
        reason="back",
        ref=ref,
    )
    c = svc.get_clearance("c-1")
    assert c.is_current(dt.datetime(2026, 2, 1, tzinfo=dt.UTC), svc.policy)


def test_pagination_is_bounded(svc: VettingService) -> None:
    for i in range(5):
        svc.register_person(person(f"p-{i}"), at=T0, actor="vo")
    page = svc.list_people(limit=2)
    assert [p.id for p in page.items] == ["p-0", "p-1"] and page.next_after == "p-1"
    page = svc.list_people(limit=2, after=page.next_after)
    assert [p.id for p in page.items] == ["p-2", "p-3"]
    with pytest.raises(VettingInputError):
        svc.list_people(limit=10_000)


def test_sponsoring_for_unknown_person_or_level_fails(svc: VettingService) -> None:
    with pytest.raises(NotFound):
        svc.sponsor_clearance(
            person_id="ghost",
            nation="AUS",
            level="NV1",
            sponsor="D",
            at=T0,
            actor="vo",
            reason="x",
        )
    svc.register_person(person(), at=T0, actor="vo")
    with pytest.raises(VettingInputError, match="not a GBR vetting level"):
        svc.sponsor_clearance(
            person_id="p-1",
            nation="GBR",
            level="NV1",
            sponsor="D",
            at=T0,
            actor="vo",
            reason="x",
        )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reason=st.text(max_size=60), name=st.text(max_size=40))
def test_any_text_is_stored_exactly_or_rejected_cleanly(
    database: Database, reason: str, name: str
) -> None:
    svc = VettingService(database, MemorySink())
    pid = f"p-{uuid.uuid4().hex[:12]}"
    try:
        p = Person(pid, name, frozenset({"GBR"}), "org", "GBR")
        svc.register_person(p, at=T0, actor="vo")
        assert svc.get_person(pid).name == name
    except VettingInputError:
        with pytest.raises(NotFound):
            svc.get_person(pid)
        return
    try:
        svc.sponsor_clearance(
            person_id=pid,
            nation="GBR",
            level="SC",
            sponsor="MOD",
            at=T0,
            actor="vo",
            reason=reason,
            clearance_id=f"c-{pid}",
        )
    except VettingInputError:
        with pytest.raises(NotFound):
            svc.get_clearance(f"c-{pid}")
        return
    assert svc.history(f"c-{pid}")[0].reason == reason


@pytest.mark.parametrize(
    "at",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))),
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-14))),
        dt.datetime(9999, 12, 31, tzinfo=dt.UTC),
    ],
)
def test_out_of_range_time_is_a_domain_error(svc: VettingService, at: dt.datetime) -> None:
    granted(svc)
    with pytest.raises(VettingInputError):
        svc.transition("c-1", Status.SUSPENDED, at=at, actor="so", reason="x")
    with pytest.raises(VettingInputError):
        svc.get_clearance("c-1").status_at(at)
    assert len(svc.history("c-1")) == 4


def test_officer_cannot_take_over_another_nations_person(svc: VettingService) -> None:
    from relto.errors import AccessDenied
    from relto.vetting import Caller

    aus = Person("p-aus", "A", frozenset({"AUS"}), "org", "AUS")
    svc.register_person(aus, at=T0, actor="vo")
    gbr_officer = Caller("gbr-vo", frozenset({("vetting_officer", "GBR")}))
    hijack = Person("p-aus", "A", frozenset({"AUS"}), "org", "GBR")
    with pytest.raises(AccessDenied):
        svc.update_person(hijack, at=t(1), actor="x", caller=gbr_officer)
    with pytest.raises(AccessDenied):
        svc.get_person("p-aus", caller=gbr_officer)
    assert svc.get_person("p-aus").home_nation == "AUS"
    aus_officer = Caller("aus-vo", frozenset({("vetting_officer", "AUS")}))
    with pytest.raises(AccessDenied):  # no vetting oneself, even as an officer
        svc.sponsor_clearance(
            person_id="aus-vo",
            nation="AUS",
            level="NV1",
            sponsor="D",
            at=t(1),
            actor="x",
            reason="self",
            caller=aus_officer,
        )


def test_changes_land_in_the_transparency_log(database: Database, tmp_path: Path) -> None:
    """With the real log as sink (on its own database, as relto.audit configures it
    for SQLite), every vetting change is appended and nothing deadlocks."""
    from relto.audit.service import TransparencyLog
    from relto.store import create_database

    log_db = create_database(f"sqlite:///{tmp_path / 'audit.db'}")
    log = TransparencyLog(log_db)
    try:
        svc = VettingService(database, log)
        granted(svc)
        svc.record_incident("c-1", IncidentKind.BREACH, at=t(9), actor="so", reason="x")
        assert log.size() == 7
        bodies = [e.body for e in log.entries(0, 7)]
        assert b"vetting.person.registered" in bodies[0]
        assert b"vetting.clearance.incident" in bodies[5]
    finally:
        log_db.dispose()


def test_clearance_page_costs_the_same_queries_at_any_size(
    database: Database, svc: VettingService
) -> None:
    """A page of clearances (with the caller's read check) must not cost queries per
    row: a large page would otherwise hold the database for every row."""
    from sqlalchemy import event

    from relto.vetting import Caller

    def fill(n: int, start: int) -> None:
        for i in range(start, start + n):
            svc.register_person(person(f"p-{i:03d}"), at=T0, actor="vo")
            svc.sponsor_clearance(
                person_id=f"p-{i:03d}",
                nation="AUS",
                level="NV1",
                sponsor="D",
                at=t(1),
                actor="vo",
                reason="x",
                clearance_id=f"c-{i:03d}",
            )
            svc.transition(f"c-{i:03d}", Status.INVESTIGATING, at=t(2), actor="vo", reason="y")

    officer = Caller("aus-vo", frozenset({("vetting_officer", "AUS")}))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def queries_for_page() -> tuple[int, int]:
        statements.clear()
        event.listen(database.engine, "before_cursor_execute", count)
        try:
            page = svc.list_clearances(limit=100, caller=officer)
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
        assert all(len(c.events) == 2 for c in page.items)
        return len(page.items), len(statements)

    fill(3, 0)
    small = queries_for_page()
    fill(30, 3)
    large = queries_for_page()
    assert small[0] == 3 and large[0] == 33
    assert large[1] == small[1] <= 5
