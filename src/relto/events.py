"""The audit hook: one place where every decision and change is reported.

Capabilities never write to the transparency log directly. Their service functions
call ``sink.record(kind, payload)`` and the server wires in the sink: the
transparency log in production, :class:`MemorySink` in tests, :class:`NullSink`
where nothing is recorded.

``record`` returns only once the event is durable (for the log: appended and
committed), so callers that must not act before an event is recorded -- a key
release, for example -- call it first and act after it returns.

Code on an event loop uses :func:`record_async`: it awaits the sink's own
``record_async`` when the sink has one (the transparency log does: group commit
without a thread per waiter), calls ``record`` directly for sinks that say
``blocking = False`` (the in-memory ones), and otherwise runs ``record`` on a
worker thread, so the loop never blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from relto.batching import call_without_blocking

__all__ = ["AuditSink", "MemorySink", "NullSink", "RecordedEvent", "record_async"]


@runtime_checkable
class AuditSink(Protocol):
    """Where events go. ``payload`` must be JSON-serialisable."""

    def record(self, kind: str, payload: Mapping[str, Any]) -> None: ...


class NullSink:
    """Records nothing. For tools and tests that do not audit."""

    blocking = False

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        return None


@dataclass(frozen=True)
class RecordedEvent:
    kind: str
    payload: Mapping[str, Any]


@dataclass
class MemorySink:
    """Keeps events in memory, in order; thread-safe."""

    events: list[RecordedEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: In memory: safe to call on an event loop.
    blocking: ClassVar[bool] = False

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        with self._lock:
            self.events.append(RecordedEvent(kind, dict(payload)))

    def kinds(self) -> list[str]:
        with self._lock:
            return [e.kind for e in self.events]


async def record_async(sink: AuditSink, kind: str, payload: Mapping[str, Any]) -> None:
    """``sink.record(kind, payload)`` from a coroutine, without blocking its loop;
    returns once the event is durable, raises what the sink raised."""
    await call_without_blocking(sink, "record", kind, payload)
