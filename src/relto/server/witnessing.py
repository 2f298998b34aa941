"""The server's scheduled push of this node's checkpoints to the pinned partners'
witnesses (:mod:`relto.audit.witnessing`), every ``RELTO_AUDIT_WITNESS_PUSH_SECONDS``.

Each worker process runs its own loop; a round holds the node's ``witness-push``
lock (across the workers of the node), so workers take turns and a later one
finds the partners' cosignatures of the current checkpoint already kept.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import structlog

from relto.audit.config import AuditSettings
from relto.audit.witnessing import Pushed
from relto.node import Node

__all__ = ["push_once", "start_witness_push"]

log = structlog.stdlib.get_logger("relto.audit")

#: The first push comes this long after start at most (then every interval).
FIRST_AFTER_SECONDS = 10.0


def push_once(node: Node) -> list[Pushed]:
    """One round, under the node's lock (``[]`` on a node that pushes nothing):
    the pushes, then the silence alarm for partners the rounds keep missing
    (:mod:`relto.federation.reachability`)."""
    pusher = node.witnessing
    if pusher is None:
        return []
    with node.log.db.exclusive("witness-push"):
        pushed = pusher.push(datetime.now(UTC))
        if node.reachability is not None:
            node.reachability.check()
        return pushed


def start_witness_push(node: Node, every: float | None = None) -> asyncio.Task[None] | None:
    """Start pushing on the running loop; ``None`` when switched off or when the
    node takes part in no federation."""
    if every is None:
        every = float(AuditSettings().witness_push_seconds)
    if every <= 0 or node.witnessing is None:
        return None
    interval = every

    async def run() -> None:
        delay = min(FIRST_AFTER_SECONDS, interval)
        while True:
            # a little jitter, so the workers of a node do not ask all at once
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
            delay = interval
            try:
                results = await asyncio.to_thread(push_once, node)
            except Exception as exc:  # never let the loop die: log and try next time
                log.error("witness_push_failed", error=type(exc).__name__)
                continue
            for r in results:
                if r.outcome not in ("cosigned", "current"):
                    log.info("witness_push", nation=r.nation, outcome=r.outcome, size=r.size,
                             reason=r.reason, detail=r.detail)  # fmt: skip

    return asyncio.create_task(run(), name="witness-push")
