"""The server's background refresh of pinned descriptors
(:mod:`relto.federation.refresh`), every ``RELTO_FEDERATION_REFRESH_SECONDS``.

Each worker process runs its own; a newer descriptor is taken once (the store
refuses a second update of the same token as not later) and every worker sees it
through the pins it reads.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import structlog

from relto.federation.config import FederationSettings
from relto.federation.refresh import DescriptorRefresher
from relto.node import Node

__all__ = ["start_descriptor_refresh"]

log = structlog.stdlib.get_logger("relto.federation")

#: The first refresh comes this long after start at most (then every interval).
FIRST_AFTER_SECONDS = 60.0


def start_descriptor_refresh(node: Node) -> asyncio.Task[None] | None:
    """Start refreshing on the running loop; ``None`` when switched off or when the
    node takes part in no federation (no federation address)."""
    every = FederationSettings().refresh_seconds  # type: ignore[call-arg]
    if every <= 0 or node.federation is None:
        return None
    refresher = DescriptorRefresher(node.trust)

    async def run() -> None:
        delay = min(FIRST_AFTER_SECONDS, float(every))
        while True:
            # a little jitter, so the workers of a node do not ask all at once
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
            delay = float(every)
            try:
                results = await asyncio.to_thread(refresher.refresh, datetime.now(UTC))
            except Exception as exc:  # never let the loop die: log and try next time
                log.error("descriptor_refresh_failed", error=type(exc).__name__)
                continue
            updated = [r.nation for r in results if r.outcome == "updated"]
            if updated:
                log.info("descriptor_refresh_done", updated=updated)

    return asyncio.create_task(run(), name="descriptor-refresh")
