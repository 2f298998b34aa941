"""The home node reaching its pinned partners for one of its own people.

A person signed in at their home node's console works on partner nodes as the
client SDK would (:mod:`relto.client`): the home node holds a DPoP key for the
console session -- derived from the node's secret and the session id, so every
worker process holds the same key without storing it -- has its own attestation
issuer vouch for the person with that key bound (``cnf.jkt``; the issuance is
recorded in the home log), and presents the attestation at the partner, whose
decision engine decides and whose log records the release. The partner sees the
person exactly as it sees one using the SDK.

Only pinned partners are reached, at the base URL their verified descriptor
names; a container naming any other KAS gets nothing (:func:`relto.client.open_with`).
A partner that cannot be reached makes only its own documents unavailable (and
is not asked again for listings for 20 s, so pages do not wait on it). For
an object in joint custody whose key has a share at this node's own KAS, that
share comes from the KAS in-process, decided and recorded here like any other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from relto.authz import Principal
from relto.client import (
    Attestation,
    ClientError,
    Decision,
    DpopKey,
    NodeClient,
    NodeUnreachable,
    ObjectInfo,
    open_with,
)
from relto.client.session import AttestationCache
from relto.documents import KeyAccessPort
from relto.errors import NotFound
from relto.federation.descriptor import PinnedNode
from relto.federation.home import HomeFederation

__all__ = ["PartnerListing", "PartnerReach"]

#: Console sessions whose keys and attestations are kept (least recently used dropped).
MAX_SESSIONS = 2048
#: How long a partner may take to answer a console request.
TIMEOUT_SECONDS = 5.0
#: Objects listed per partner on the documents page.
LIST_LIMIT = 200
#: A partner that did not answer a listing is not asked again for this long.
DOWN_FOR = timedelta(seconds=20)


@dataclass(frozen=True)
class PartnerListing:
    """What one partner node releases to the person, or why it could not say."""

    nation: str
    base_url: str
    objects: tuple[ObjectInfo, ...] = ()
    error: str | None = None


@dataclass
class _Held:
    dpop: DpopKey
    attestation: AttestationCache


class PartnerReach:
    """Partner nodes, reached for the console's signed-in people."""

    def __init__(
        self,
        *,
        pins: Callable[[], Mapping[str, PinnedNode]],
        home: HomeFederation,
        secret: bytes,
        clock: Callable[[], datetime],
        own_kas: KeyAccessPort | None = None,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._pins = pins
        self._own_kas = own_kas
        self._home = home
        self._secret = secret
        self._clock = clock
        self._timeout = timeout
        self._transport = transport
        self._held: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._lock = threading.Lock()
        #: Partners that did not answer a listing, and when: not asked again for
        #: :data:`DOWN_SECONDS`, so a page does not wait on a dead node each time.
        self._down: dict[str, tuple[datetime, str]] = {}

    def partners(self) -> list[PinnedNode]:
        """The pinned partners, by nation."""
        return sorted(self._pins().values(), key=lambda p: p.nation)

    def _hold(self, who: Principal, session_key: str) -> _Held:
        key = (who.person_id, session_key)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held.move_to_end(key)
                return held
        dpop = DpopKey.derived(self._secret, f"console-session\0{who.person_id}\0{session_key}")

        def attest() -> Attestation:
            issued = self._home.attest(who, dpop_jkt=dpop.thumbprint, now=self._clock())
            return Attestation(issued.token, issued.expires_at)

        held = _Held(dpop, AttestationCache(attest, self._clock))
        with self._lock:
            held = self._held.setdefault(key, held)
            while len(self._held) > MAX_SESSIONS:
                self._held.popitem(last=False)
        return held

    def forget(self, who: Principal, session_key: str) -> None:
        """Drop a session's key and attestation (signing out)."""
        with self._lock:
            self._held.pop((who.person_id, session_key), None)

    def client(self, who: Principal, session_key: str, nation: str) -> NodeClient:
        """The client of ``nation``'s pinned node for ``who``; :class:`NotFound` when
        no node of that nation is pinned."""
        pin = next((p for p in self.partners() if p.nation == nation), None)
        if pin is None:
            raise NotFound(f"no partner node of {nation[:3]} is pinned")
        held = self._hold(who, session_key)
        return NodeClient(
            pin.descriptor.base_url,
            credential=held.attestation,
            dpop=held.dpop,
            nation=pin.nation,
            timeout=self._timeout,
            transport=self._transport,
        )

    def listings(self, who: Principal, session_key: str) -> list[PartnerListing]:
        """Every pinned partner's documents released to the person (in parallel)."""
        partners = self.partners()
        if not partners:
            return []

        def one(pin: PinnedNode) -> PartnerListing:
            base = pin.descriptor.base_url
            now = self._clock()
            with self._lock:
                down = self._down.get(pin.nation)
            if down is not None and timedelta(0) <= now - down[0] < DOWN_FOR:
                return PartnerListing(pin.nation, base, error=down[1])
            try:
                with self.client(who, session_key, pin.nation) as node:
                    found: list[ObjectInfo] = []
                    for obj in node.objects():
                        found.append(obj)
                        if len(found) >= LIST_LIMIT:
                            break
                with self._lock:
                    self._down.pop(pin.nation, None)
                return PartnerListing(pin.nation, base, tuple(found))
            except NodeUnreachable as exc:
                with self._lock:
                    self._down[pin.nation] = (now, str(exc)[:300])
                return PartnerListing(pin.nation, base, error=str(exc)[:300])
            except ClientError as exc:
                return PartnerListing(pin.nation, base, error=str(exc)[:300])

        with ThreadPoolExecutor(min(8, len(partners))) as pool:
            return list(pool.map(one, partners))

    def object(self, who: Principal, session_key: str, nation: str, object_id: str) -> ObjectInfo:
        with self.client(who, session_key, nation) as node:
            return node.object(object_id)

    def decision(
        self, who: Principal, session_key: str, nation: str, object_id: str, action: str = "read"
    ) -> Decision:
        with self.client(who, session_key, nation) as node:
            return node.decision(object_id, action)

    def open(self, who: Principal, session_key: str, nation: str, object_id: str) -> bytes:
        """The plaintext, each key share from the pinned node whose KAS it names."""
        clients = [self.client(who, session_key, p.nation) for p in self.partners()]
        holder = next((c for c in clients if c.nation == nation), None)
        try:
            if holder is None:
                raise NotFound(f"no partner node of {nation[:3]} is pinned")
            local = {}
            if self._own_kas is not None:  # a share this node holds (joint custody)
                own = self._own_kas
                local[own.target().url] = own.unwrap_for(who.person_id, who.home_nation, "read")
            return open_with(holder, object_id, clients, local)
        finally:
            for c in clients:
                c.close()
