"""The node re-derives its own stored log, so that an edit made by hand is found.

Witnesses see only signed checkpoints (:mod:`relto.audit.witnessing`): a row of
``audit_entry`` edited in the database, with the stored tree left as it was,
moves no checkpoint and no witness can see it. :class:`LogSelfCheck` re-derives
every stored row from its canonical body (:func:`relto.audit.verify.verify_log`:
body, index, leaf hash, stored nodes) against the node's latest checkpoint that
partners cosigned -- or, before the first cosignature, the latest it signed -- and
records the first mismatch once as :data:`SELF_CHECK_KIND`. The caller tells the
partners (:mod:`relto.federation.integrity`) so the alarm shows on their consoles.

A full pass reads the whole log: run it every ``RELTO_AUDIT_SELF_CHECK_SECONDS``
(docs/audit.md gives its cost per million entries).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relto.audit.checkpoint import Checkpoint
from relto.audit.service import TransparencyLog
from relto.audit.sources import DatabaseSource
from relto.audit.verify import Finding, verify_log
from relto.events import AuditSink

__all__ = ["SELF_CHECK_KIND", "LogSelfCheck", "SelfCheckResult"]

#: What the log records when the node finds its own stored log altered.
SELF_CHECK_KIND = "audit.self_check.failed"


@dataclass(frozen=True)
class SelfCheckResult:
    """One pass: the checkpoint size checked against, the entries re-derived, and
    the first mismatch (``None``: the stored log matches)."""

    checkpoint_size: int
    checked: int
    finding: Finding | None
    new: bool = False  # the finding was not recorded before
    origin: str = ""  # the log's origin, as the checkpoint checked against names it


class LogSelfCheck:
    """Re-derives ``log`` against ``anchors()`` (this node's trusted checkpoints)."""

    def __init__(
        self,
        log: TransparencyLog,
        anchors: Callable[[], Sequence[Checkpoint]],
        sink: AuditSink,
    ) -> None:
        self._log = log
        self._anchors = anchors
        self._sink = sink
        self._recorded: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self.last: SelfCheckResult | None = None

    def run(self) -> SelfCheckResult | None:
        """One full pass; ``None`` before the node signed any checkpoint."""
        anchors = list(self._anchors())
        if not anchors:
            return None
        report = verify_log(DatabaseSource(self._log), anchors)
        finding = report.finding
        new = False
        if finding is not None:
            with self._lock:
                key = (finding.index, finding.kind)
                new = key not in self._recorded
                self._recorded.add(key)
            if new:
                self._sink.record(
                    SELF_CHECK_KIND,
                    {
                        "index": finding.index,
                        "kind": finding.kind,
                        "detail": finding.detail[:500],
                        "checkpoint_size": report.checkpoint_size,
                    },
                )
        result = SelfCheckResult(
            report.checkpoint_size, report.checked, finding, new, anchors[-1].origin
        )
        self.last = result
        return result
