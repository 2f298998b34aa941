"""The product decider on the KAS's event loop: as fresh as the threaded path, and
the loop never waits on the database."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from relto.documents import ProductDecider
from relto.kas.decider import RewrapFacts

from .test_decision_cache import (
    NOW,
    PEOPLE,
    READER,
    Workers,
    _end_gbr_admission,
    workers,  # noqa: F401 - the fixture
)


def _facts(person: str, policy: str = "pol-hyp") -> RewrapFacts:
    return RewrapFacts(
        subject={"sub": person},
        policy_uuid=policy,
        attributes=(),
        dissem=(),
        at=NOW,
        nation=person.split("-")[0].upper(),
    )


def test_async_and_threaded_paths_decide_alike(workers: Workers) -> None:  # noqa: F811
    decider = ProductDecider(workers.b)

    async def both() -> list[tuple[Any, Any]]:
        out = []
        for person in (*PEOPLE, "mallory"):
            for policy in ("pol-hyp", "pol-ew", "pol-inn", "pol-unknown"):
                cold_or_warm = await decider.decide_async(_facts(person, policy))
                out.append((cold_or_warm, decider.decide(_facts(person, policy))))
                out.append((await decider.decide_async(_facts(person, policy)), out[-1][1]))
        return out

    for got, want in asyncio.run(both()):
        assert got == want


def test_change_in_another_worker_denies_the_next_async_decision(
    workers: Workers,  # noqa: F811
) -> None:
    """The counters are read for every call: a cached permit never outlives an
    ended admission."""
    decider = ProductDecider(workers.b)

    async def ask() -> bool:
        return bool((await decider.decide_async(_facts(READER))).allowed)

    assert asyncio.run(ask()) and asyncio.run(ask())  # cached now
    _end_gbr_admission(workers.db)
    assert not asyncio.run(ask())


def test_cache_miss_reads_the_database_off_the_event_loop(workers: Workers) -> None:  # noqa: F811
    service = workers.b
    threads: list[str] = []
    original = service._db.session

    @contextmanager
    def spy() -> Any:
        threads.append(threading.current_thread().name)
        with original() as s:
            yield s

    service._db.session = spy  # type: ignore[method-assign]
    decider = ProductDecider(service)

    async def main() -> str:
        await decider.decide_async(_facts(READER))  # cold: facts read on a worker thread
        await decider.decide_async(_facts(READER))  # warm: no session at all
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert len(threads) == 1 and threads[0] != loop_thread


def test_waiting_decisions_share_one_counter_read(
    workers: Workers,  # noqa: F811
    monkeypatch: Any,
) -> None:
    """Decisions that queue while a counter read is in flight share the next read
    (never the one in flight: it may predate them)."""
    import relto.store.facts as facts

    decider = ProductDecider(workers.b)
    asyncio.run(decider.decide_async(_facts(READER)))  # warm every cache
    gate = threading.Event()
    reads: list[int] = []
    original = facts.read_versions

    def slow_first(conn: Any) -> Any:
        reads.append(1)
        if len(reads) == 1:
            gate.wait(10)
        return original(conn)

    monkeypatch.setattr(facts, "read_versions", slow_first)

    async def burst() -> list[Any]:
        first = asyncio.create_task(decider.decide_async(_facts(READER)))
        while not reads:  # the first read is in flight, held at the gate
            await asyncio.sleep(0.001)
        people = [READER, "jpn-eng-sato"] * 20
        rest = [asyncio.create_task(decider.decide_async(_facts(p))) for p in people]
        await asyncio.sleep(0.05)  # all of them queued behind the held read
        gate.set()
        return [await first, *[await t for t in rest]]

    answers = asyncio.run(burst())
    assert [a.allowed for a in answers[:3]] == [True, True, False]
    assert len(reads) == 2  # the held read, then one read for the forty that waited


def test_decision_time_still_counts_on_the_async_path(workers: Workers) -> None:  # noqa: F811
    """Cached rows, but statuses at each call's own time: an expired clearance denies."""
    decider = ProductDecider(workers.b)
    later = RewrapFacts(
        subject={"sub": READER},
        policy_uuid="pol-hyp",
        attributes=(),
        dissem=(),
        at=NOW + timedelta(days=365 * 30),
        nation="GBR",
    )

    async def main() -> tuple[bool, bool]:
        now = (await decider.decide_async(_facts(READER))).allowed
        far = (await decider.decide_async(later)).allowed
        return bool(now), bool(far)

    assert asyncio.run(main()) == (True, False)
