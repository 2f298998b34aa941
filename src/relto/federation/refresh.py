"""Keeping pinned descriptors current: each node fetches its partners' descriptors
from their own addresses and takes a newer one when the pinned node key signed it.

A node re-issues its descriptor when a quarter of its validity is left or its KAS
keys changed (ADR 0118); partners that never hear of it would refuse its new
attestation keys and wrap joint-custody shares for retired KAS keys. So every
``RELTO_FEDERATION_REFRESH_SECONDS`` (default 600; 0: never) the server asks each
pinned node for ``/.well-known/relto-node`` and hands what it gets to
:meth:`relto.federation.trust.TrustStore.refresh`, which accepts only what
:meth:`~relto.federation.trust.TrustStore.update` would -- signed by the pinned
node key (or a rotation signed by it), same nation, issued later, current. A
descriptor that fails is refused and logged (``descriptor_refresh_refused``): the
pin stays as it was. An unreachable partner changes nothing.
``relto federation refresh`` does the same once, by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog

from relto.federation.errors import FederationError
from relto.federation.trust import TrustStore

__all__ = ["MAX_DESCRIPTOR_BYTES", "DescriptorRefresher", "Refreshed", "fetch_descriptor"]

log = structlog.stdlib.get_logger("relto.federation")

#: Largest descriptor read from a partner.
MAX_DESCRIPTOR_BYTES = 64 * 1024
_TIMEOUT = 5.0


@dataclass(frozen=True)
class Refreshed:
    """What became of one pin: ``updated``, ``unchanged``, ``refused`` (the detail
    says why) or ``unreachable``."""

    nation: str
    outcome: str
    detail: str = ""


def fetch_descriptor(base_url: str) -> str:
    """The descriptor a node serves at its own address (at most 64 KiB)."""
    url = base_url.rstrip("/") + "/.well-known/relto-node"
    with (
        httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as http,
        http.stream("GET", url, headers={"Accept": "application/jwt"}) as resp,
    ):
        if resp.status_code != 200:
            raise httpx.HTTPStatusError(
                f"HTTP {resp.status_code}", request=resp.request, response=resp
            )
        body = b""
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > MAX_DESCRIPTOR_BYTES:
                raise ValueError("the descriptor is larger than 64 KiB")
    return body.decode("ascii").strip()


class DescriptorRefresher:
    """Asks every pinned node for its descriptor and takes newer ones it may."""

    def __init__(
        self, trust: TrustStore, *, fetch: Callable[[str], str] = fetch_descriptor
    ) -> None:
        self._trust = trust
        self._fetch = fetch

    def refresh(self, now: datetime) -> list[Refreshed]:
        results = []
        for pin in sorted(self._trust.pinned(), key=lambda p: p.nation):
            try:
                token = self._fetch(pin.descriptor.base_url)
            except (httpx.HTTPError, ValueError, UnicodeDecodeError) as exc:
                results.append(Refreshed(pin.nation, "unreachable", type(exc).__name__))
                continue
            try:
                taken = self._trust.refresh(token, nation=pin.nation, now=now)
            except (FederationError, ValueError) as exc:
                log.warning("descriptor_refresh_refused", nation=pin.nation, reason=str(exc)[:300])
                results.append(Refreshed(pin.nation, "refused", str(exc)[:300]))
                continue
            if taken is None:
                results.append(Refreshed(pin.nation, "unchanged"))
            else:
                log.info(
                    "descriptor_refreshed",
                    nation=pin.nation,
                    fingerprint=taken.fingerprint,
                    previous=pin.fingerprint,
                )
                results.append(Refreshed(pin.nation, "updated", taken.fingerprint))
        return results
