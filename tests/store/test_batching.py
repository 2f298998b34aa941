"""relto.batching: coroutines wait for blocking work done in batches on one thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from relto.batching import BatchWorker


def test_every_waiter_gets_its_own_result_and_the_loop_never_runs_the_work() -> None:
    threads: list[str] = []

    def run(items: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        return [i * i for i in items]

    worker: BatchWorker[int, int] = BatchWorker(run, "test-batch")

    async def main() -> tuple[list[int], str]:
        got = await asyncio.gather(*(worker.submit(i) for i in range(100)))
        return list(got), threading.current_thread().name

    got, loop_thread = asyncio.run(main())
    assert got == [i * i for i in range(100)]
    assert threads and loop_thread not in threads and len(threads) <= 100


def test_a_failed_batch_fails_each_of_its_waiters_and_the_worker_goes_on() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        if -1 in items:
            raise OSError("store down")
        if -2 in items:
            return []  # a wrong number of results is a failure too
        return items

    worker: BatchWorker[int, int] = BatchWorker(run, "test-batch")
    with pytest.raises(OSError, match="store down"):
        asyncio.run(worker.submit(-1))
    with pytest.raises(RuntimeError, match="wrong number"):
        asyncio.run(worker.submit(-2))
    assert asyncio.run(worker.submit(7)) == 7


def test_an_item_never_joins_a_batch_already_running() -> None:
    """What a waiter gets is computed after it asked (the fact counters rely on it)."""
    gate = threading.Event()
    seen: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        seen.append(items)
        if len(seen) == 1:
            gate.wait(10)
        return items

    worker: BatchWorker[str, str] = BatchWorker(run, "test-batch")

    async def main() -> None:
        first = asyncio.create_task(worker.submit("early"))
        while not seen:
            await asyncio.sleep(0.001)
        late = [asyncio.create_task(worker.submit(f"late-{i}")) for i in range(5)]
        await asyncio.sleep(0.02)
        gate.set()
        await asyncio.gather(first, *late)

    asyncio.run(main())
    assert seen[0] == ["early"] and seen[1] == [f"late-{i}" for i in range(5)]
