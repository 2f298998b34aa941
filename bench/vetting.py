"""Vetting benchmarks: the cost of computing currency at decision time.

Baseline: ``is_current`` on a freshly granted clearance (4 events). Compared with
clearances carrying long histories (revalidations and reports), with ``recognises``,
and with loading a clearance from SQLite through the service.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from relto.events import NullSink
from relto.store import create_database
from relto.vetting import (
    Clearance,
    ObligationKind,
    Person,
    Status,
    default_policy,
    recognises,
)
from relto.vetting.service import VettingService

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 5, 9, tzinfo=UTC)
POLICY = default_policy()


def granted() -> Clearance:
    c = Clearance.sponsor_new(
        id="c-1",
        person_id="p-1",
        nation="GBR",
        level="SC",
        sponsor="MOD",
        at=T0,
        actor="vo",
        reason="r",
        policy=POLICY,
    )
    for i, s in enumerate((Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED), 1):
        c = c.transition(s, at=T0 + dt.timedelta(days=i), actor="vo", reason="r", policy=POLICY)
    return c


def with_reports(n: int) -> Clearance:
    c = granted()
    for i in range(n):
        at = T0 + dt.timedelta(days=10 + i)
        c = c.file_report(
            ObligationKind.FOREIGN_CONTACT,
            occurred_on=at.date(),
            at=at,
            actor="h",
            reason="contact",
            policy=POLICY,
        )
    return c


def per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    at = T0 + dt.timedelta(days=2000)
    base_c = granted()
    base = per_call(lambda: base_c.is_current(at, POLICY), 20_000)
    rows = [("is_current, 4 events (baseline)", base)]
    for n in (100, 1000):
        c = with_reports(n)
        rows.append(
            (f"is_current, {n + 4} events", per_call(lambda c=c: c.is_current(at, POLICY), 2000))
        )
    rows.append(("recognises JPN->GBR", per_call(lambda: recognises("JPN", "GBR", at), 20_000)))
    with tempfile.TemporaryDirectory() as tmp:
        db = create_database(f"sqlite:///{Path(tmp) / 'b.db'}")
        svc = VettingService(db, NullSink())
        svc.register_person(Person("p-1", "A", frozenset({"GBR"}), "O", "GBR"), at=T0, actor="vo")
        svc.sponsor_clearance(
            person_id="p-1",
            nation="GBR",
            level="SC",
            sponsor="MOD",
            at=T0,
            actor="vo",
            reason="r",
            clearance_id="c-1",
        )
        for i, s in enumerate((Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED), 1):
            svc.transition("c-1", s, at=T0 + dt.timedelta(days=i), actor="vo", reason="r")
        rows.append(
            (
                "service.get_clearance (SQLite) + is_current",
                per_call(lambda: svc.get_clearance("c-1").is_current(at, POLICY), 300),
            )
        )
        rows.append(("service.transition (SQLite, audited)", per_call(lambda: None, 1)))
        t = T0 + dt.timedelta(days=10)
        start = time.perf_counter()
        for i in range(50):
            svc.transition(
                "c-1",
                Status.GRANTED,
                at=t + dt.timedelta(days=i),
                actor="vo",
                reason="revalidation",
            )
        rows[-1] = ("service.transition, revalidation (SQLite)", (time.perf_counter() - start) / 50)
        db.dispose()
    print(f"{'operation':48} {'µs/call':>10} {'× baseline':>11}")
    for name, secs in rows:
        print(f"{name:48} {secs * 1e6:10.1f} {secs / base:11.1f}")


if __name__ == "__main__":
    main()
