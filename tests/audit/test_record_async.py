"""``TransparencyLog.record_async``: events from an event loop join the group
commit through the committer thread, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from relto.audit import TransparencyLog
from relto.audit.entries import decode_entry
from relto.errors import StorageError
from relto.events import MemorySink, NullSink, record_async


def _indexes(log: TransparencyLog) -> list[int]:
    return sorted(decode_entry(e.body).index for e in log.entries(0, log.size()))


def test_awaited_events_are_committed_once_each_in_shared_batches(log: TransparencyLog) -> None:
    batches: list[int] = []
    original = log._append_locked

    def spy(events: Sequence[tuple[str, Mapping[str, Any], Any]]) -> list[int]:
        batches.append(len(events))
        return original(events)

    log._append_locked = spy  # type: ignore[method-assign]

    async def main() -> list[int]:
        return list(
            await asyncio.gather(*(log.record_async("decision", {"i": i}) for i in range(200)))
        )

    got = asyncio.run(main())
    assert sorted(got) == list(range(200))  # each coroutine learns its own index
    assert log.size() == 200 and sum(batches) == 200
    assert len(batches) < 200  # they shared transactions
    assert _indexes(log) == list(range(200))
    size, root = log.head()
    assert log.root_at(size) == root
    bodies = {decode_entry(e.body).index: decode_entry(e.body).payload for e in log.entries(0, 200)}
    assert all(bodies[i]["i"] == got.index(i) for i in range(200))


def test_bad_event_fails_only_its_own_coroutine(log: TransparencyLog) -> None:
    async def main() -> list[Any]:
        return list(
            await asyncio.gather(
                log.record_async("decision", {"ok": 1}),
                log.record_async("decision", {"bad": float("inf")}),
                log.record_async("decision", {"ok": 2}),
                return_exceptions=True,
            )
        )

    first, bad, last = asyncio.run(main())
    assert isinstance(bad, ValueError)
    assert sorted([first, last]) == [0, 1] and log.size() == 2


def test_bad_kind_is_refused_before_anything_queues(log: TransparencyLog) -> None:
    with pytest.raises(ValueError):
        asyncio.run(log.record_async("Not A Kind!", {}))
    assert log.size() == 0 and log._queue == []


def test_threads_and_coroutines_append_to_one_consistent_log(log: TransparencyLog) -> None:
    def worker(n: int) -> None:
        for i in range(25):
            log.record("decision", {"thread": n, "i": i})

    async def coroutines() -> None:
        await asyncio.gather(*(log.record_async("decision", {"task": i}) for i in range(100)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    asyncio.run(coroutines())
    for t in threads:
        t.join()
    assert log.size() == 200 and _indexes(log) == list(range(200))
    size, root = log.head()
    assert log.root_at(size) == root


def test_writer_lock_failure_reaches_every_waiter_and_the_log_recovers(
    log: TransparencyLog,
) -> None:
    """A failure outside any batch (the writer lock) must not leave a coroutine
    waiting forever, nor commit its event later behind its back."""
    original = log._writer

    @contextmanager
    def broken() -> Iterator[None]:
        raise StorageError("audit log writer lock unavailable: OSError")
        yield  # pragma: no cover

    log._writer = broken  # type: ignore[method-assign]

    async def attempt() -> list[Any]:
        calls = (log.record_async("decision", {"i": i}) for i in range(5))
        return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10))

    results = asyncio.run(attempt())
    assert all(isinstance(r, StorageError) for r in results)
    assert log._queue == [] and log.size() == 0

    log._writer = original  # type: ignore[method-assign]
    assert asyncio.run(log.record_async("decision", {"after": True})) == 0
    assert log.size() == 1


def test_loop_keeps_running_while_the_commit_waits(log: TransparencyLog) -> None:
    """The awaiting coroutine must not block its loop on the database."""
    gate = threading.Event()
    original = log._append_locked

    def slow(events: Sequence[tuple[str, Mapping[str, Any], Any]]) -> list[int]:
        gate.wait(10)
        return original(events)

    log._append_locked = slow  # type: ignore[method-assign]

    async def main() -> tuple[int, int]:
        task = asyncio.create_task(log.record_async("decision", {"slow": True}))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.005)
            ticks += 1
        assert not task.done()
        gate.set()
        return ticks, await task

    ticks, index = asyncio.run(main())
    assert ticks == 20 and index == 0


def test_helper_uses_native_inline_or_a_thread() -> None:
    memory = MemorySink()

    class Plain:
        def __init__(self) -> None:
            self.threads: list[str] = []

        def record(self, kind: str, payload: Mapping[str, Any]) -> None:
            self.threads.append(threading.current_thread().name)

    plain = Plain()

    async def main() -> str:
        await record_async(NullSink(), "decision", {})
        await record_async(memory, "decision", {"a": 1})
        await record_async(plain, "decision", {})
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert memory.kinds() == ["decision"]
    assert plain.threads and plain.threads[0] != loop_thread  # a blocking sink: off the loop
