"""Blocking work for coroutines, batched on one thread.

Several places let code on an event loop wait for something only a blocking call
can do -- a DPoP replay-cache write, a read of the fact counters -- without the
loop ever waiting: the coroutine queues its item, one daemon thread takes
everything queued when it comes round (never joining a batch already running),
runs one call for the lot, and settles each coroutine's future on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["BatchWorker", "call_without_blocking", "settle_futures"]

T = TypeVar("T")
R = TypeVar("R")

#: A future and what it should get: a result, or an exception to raise.
Outcome = tuple["asyncio.Future[Any]", Any]


def _settle(outcomes: list[Outcome]) -> None:
    for fut, outcome in outcomes:
        if fut.done():  # its waiter has gone (cancelled)
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def settle_futures(outcomes: Iterable[Outcome]) -> None:
    """From any thread: give each future its outcome, one call per event loop. A
    loop that has closed is skipped (nobody waits there any more)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for fut, outcome in outcomes:
        by_loop.setdefault(fut.get_loop(), []).append((fut, outcome))
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, batch)
        except RuntimeError:
            continue


class BatchWorker(Generic[T, R]):
    """``await worker.submit(item)`` returns ``run(batch)[i]`` for that item.

    ``run`` gets every item queued since the thread's last turn, in order, and
    returns one result per item. If it raises, every item of that batch gets the
    exception.
    """

    def __init__(self, run: Callable[[list[T]], Sequence[R]], name: str) -> None:
        self._run = run
        self._name = name
        self._cv = threading.Condition()
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._thread: threading.Thread | None = None

    async def submit(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        with self._cv:
            self._queue.append((item, fut))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify()
        return await fut

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                batch, self._queue = self._queue, []
            outcomes: Sequence[Any]
            try:
                outcomes = self._run([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError("a batch call returned the wrong number of results")
            except Exception as exc:
                outcomes = [exc] * len(batch)
            settle_futures(zip((fut for _, fut in batch), outcomes, strict=True))


async def call_without_blocking(obj: Any, name: str, *args: Any) -> Any:
    """``obj.<name>(*args)`` from a coroutine, never blocking its loop: awaits
    ``obj.<name>_async`` when ``obj`` has one, calls ``obj.<name>`` right here when
    ``obj`` says ``blocking = False``, and otherwise runs it on a worker thread."""
    native = getattr(obj, f"{name}_async", None)
    if native is not None:
        return await native(*args)
    method = getattr(obj, name)
    if not getattr(obj, "blocking", True):
        return method(*args)
    return await asyncio.to_thread(method, *args)
