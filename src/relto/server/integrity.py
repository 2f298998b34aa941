"""A node's own log, re-derived on a schedule, and its partners' integrity reports.

- Every ``RELTO_AUDIT_SELF_CHECK_SECONDS`` (600; 0 never) a federated node
  re-derives its whole stored log (:class:`relto.audit.selfcheck.LogSelfCheck`)
  against its latest checkpoint that partners cosigned (or, before any, the latest
  it signed). On a mismatch it records ``audit.self_check.failed`` once and sends
  every pinned partner a report signed with its node key
  (:mod:`relto.federation.integrity`), every round while the mismatch stays.
  Workers take turns on the node's ``self-check`` lock.
- ``POST /api/v1/audit/integrity/report``: a partner's report, kept as a
  witnessing alarm (reason ``altered``, on the dashboard of this node's people)
  only when it verifies against the node key this node pinned for that nation.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from relto.audit.checkpoint import Checkpoint, open_checkpoint
from relto.audit.config import AuditSettings, node_signer
from relto.audit.selfcheck import LogSelfCheck, SelfCheckResult
from relto.authz import Permission
from relto.federation.integrity import (
    MAX_REPORT,
    REPORT_PATH,
    IntegrityReport,
    InvalidReport,
    send_report,
    take_report,
)
from relto.node import Node
from relto.server.edge import Edge, needs
from relto.server.errors import error_body

__all__ = ["mount", "self_check_once", "start_self_check"]

log = structlog.stdlib.get_logger("relto.audit")

#: The first pass comes this long after start at most (then every interval).
FIRST_AFTER_SECONDS = 20.0


class ReportIn(BaseModel):
    report: Annotated[str, Field(min_length=1, max_length=MAX_REPORT)]


def _anchors(node: Node) -> list[Checkpoint]:
    note = node.witnessing.cosigned() if node.witnessing is not None else None
    note = note or node.log.latest_checkpoint()
    if note is None:
        return []
    return [open_checkpoint(note, node_signer(node.settings).verifier()).checkpoint]


def self_check_once(node: Node, checker: LogSelfCheck | None = None) -> SelfCheckResult | None:
    """One pass under the node's lock; reports a mismatch to every pinned partner."""
    checker = checker or LogSelfCheck(node.log, lambda: _anchors(node), node.sink)
    with node.log.db.exclusive("self-check"):
        result = checker.run()
    if result is None or result.finding is None or node.federation is None:
        return result
    f = result.finding
    report = IntegrityReport(
        nation=node.settings.nation,
        origin=result.origin,
        index=f.index,
        kind=f.kind,
        detail=f.detail[:500] or f.kind,
        size=node.log.size(),
        at=datetime.now(UTC),
    )
    partners = {
        n: pin.descriptor.base_url
        for n, pin in node.trust.trusted().items()
        if n != node.settings.nation
    }
    answers = send_report(report, node.federation.descriptors.node_key, partners)
    log.error("log_self_check_failed", index=f.index, kind=f.kind, reported_to=answers)
    return result


def start_self_check(node: Node, every: float | None = None) -> asyncio.Task[None] | None:
    """Start re-deriving the log on the running loop; ``None`` when switched off or
    the node takes part in no federation."""
    if every is None:
        every = float(AuditSettings().self_check_seconds)
    if every <= 0 or node.federation is None:
        return None
    interval = every
    checker = LogSelfCheck(node.log, lambda: _anchors(node), node.sink)

    async def run() -> None:
        delay = min(FIRST_AFTER_SECONDS, interval)
        while True:
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
            delay = interval
            try:
                await asyncio.to_thread(self_check_once, node, checker)
            except Exception as exc:  # never let the loop die: log and try next time
                log.error("log_self_check_error", error=type(exc).__name__)

    return asyncio.create_task(run(), name="log-self-check")


def mount(app: FastAPI, edge: Edge) -> None:
    node = edge.node

    @app.post(REPORT_PATH, tags=["audit"],
              summary="A pinned partner reports, signed, that its own stored log was altered",
              **needs(Permission.AUDIT_INTEGRITY_REPORT))  # fmt: skip
    def integrity_report(request: Request, body: Annotated[ReportIn, Body()]) -> JSONResponse:
        witness = node.witness
        if witness is None:
            said = error_body("not_witnessing", "this node witnesses no partner", request)
            return JSONResponse(said, status_code=404)
        keys = {n: pin.descriptor.node_key for n, pin in node.trust.trusted().items()}
        keys.pop(node.settings.nation, None)
        try:
            report, new = take_report(
                body.report, keys, alarms=witness.alarms, sink=node.sink, now=datetime.now(UTC)
            )
        except InvalidReport as exc:
            said = error_body("invalid_report", str(exc)[:300], request)
            return JSONResponse(said, status_code=400)
        log.warning("partner_log_altered", nation=report.nation, index=report.index, new=new)
        return JSONResponse({"status": "kept" if new else "known", "nation": report.nation})
