"""The server's scheduled replication of partnership changes
(:mod:`relto.federation.replication`), every ``RELTO_FEDERATION_CHANGES_PUSH_SECONDS``.

Each worker runs its own loop; offering a change twice changes nothing at the
receiver (the first word of each nation stands), so workers need not take turns.
"""

from __future__ import annotations

import asyncio
import random

import structlog

from relto.federation.config import FederationSettings
from relto.federation.ledger import ChangeLedger
from relto.federation.replication import ChangePusher
from relto.node import Node
from relto.server.routes.changes import node_ledger

__all__ = ["start_change_push"]

log = structlog.stdlib.get_logger("relto.federation")

#: The first round comes this long after start at most (then every interval).
FIRST_AFTER_SECONDS = 5.0


def start_change_push(
    node: Node, held: dict[str, ChangeLedger], every: float | None = None
) -> asyncio.Task[None] | None:
    """Start offering changes on the running loop; ``None`` when switched off or the
    node takes part in no federation."""
    if every is None:
        every = float(FederationSettings().changes_push_seconds)  # type: ignore[call-arg]
    if every <= 0 or node.federation is None:
        return None
    interval = every
    pushers: dict[int, ChangePusher] = {}

    def round_once() -> None:
        ledger = node_ledger(node, held)
        if ledger is None:
            return  # no partnership yet
        pusher = pushers.get(id(ledger))
        if pusher is None:
            pusher = pushers[id(ledger)] = ChangePusher(
                ledger, node.trust.trusted, contacts=node.reachability
            )
        pusher.push()

    async def run() -> None:
        delay = min(FIRST_AFTER_SECONDS, interval)
        while True:
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
            delay = interval
            try:
                await asyncio.to_thread(round_once)
            except Exception as exc:  # never let the loop die: log and try next round
                log.error("change_push_failed", error=type(exc).__name__)

    return asyncio.create_task(run(), name="change-push")
