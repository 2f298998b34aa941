"""The pinned trust store: which partner nodes this node trusts, per nation.

Pinning, updating and unpinning are administrative actions
(``federation:trust:write``: a security officer of this node's nation), decided
by the authorisation point and recorded in the transparency log as
``federation.node.pinned``, ``federation.node.updated`` and
``federation.node.unpinned`` (nation, fingerprint, actor) before the change is
written. Storage is a :class:`PinRepository`: :class:`MemoryPinRepository` in
tests, ``relto.store.federation.SqlPinRepository`` on a node.

Verifiers on a hot path (the KAS, per rewrap) read the pins through a
:class:`PinSnapshot`: the pins as read at most ``max_age`` (1 s) ago, so that a
request needs no database read when the snapshot is fresh (ADR 0131). The bound
on an untrust: one made through this process's :class:`TrustStore` takes effect
with the next request (the store's change counter drops the snapshot); one made
elsewhere (another worker of the node, another host, the CLI) within ``max_age``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.events import AuditSink
from relto.federation._keys import b64url_decode
from relto.federation.descriptor import PinnedNode, verify_descriptor
from relto.federation.errors import AlreadyPinned, InvalidDescriptor, NotPinned

__all__ = [
    "PIN_SNAPSHOT_MAX_AGE",
    "MemoryPinRepository",
    "PinRepository",
    "PinSnapshot",
    "TrustStore",
]

#: How long a :class:`PinSnapshot` serves the pins it read (seconds): the longest an
#: untrust made outside this process takes to stop a partner's attestations here.
PIN_SNAPSHOT_MAX_AGE = 1.0


class PinRepository(Protocol):
    """Where pinned nodes are kept, one per nation."""

    def get(self, nation: str) -> PinnedNode | None: ...

    def all(self) -> list[PinnedNode]: ...

    def add(self, pin: PinnedNode) -> None:
        """Store a first pin; :class:`AlreadyPinned` if the nation has one."""

    def replace(self, old: PinnedNode, new: PinnedNode) -> None:
        """Replace ``old`` with ``new``; :class:`NotPinned` if ``old`` is no longer
        the nation's pin (a concurrent change)."""

    def remove(self, pin: PinnedNode) -> None:
        """Remove ``pin``; :class:`NotPinned` if it is no longer the nation's pin."""


class MemoryPinRepository:
    """Pins in memory (tests, tools)."""

    def __init__(self) -> None:
        self._pins: dict[str, PinnedNode] = {}
        self._lock = threading.Lock()

    def get(self, nation: str) -> PinnedNode | None:
        with self._lock:
            return self._pins.get(nation)

    def all(self) -> list[PinnedNode]:
        with self._lock:
            return [self._pins[n] for n in sorted(self._pins)]

    def add(self, pin: PinnedNode) -> None:
        with self._lock:
            if pin.nation in self._pins:
                raise AlreadyPinned(f"{pin.nation} already has a pinned node")
            self._pins[pin.nation] = pin

    def replace(self, old: PinnedNode, new: PinnedNode) -> None:
        with self._lock:
            if self._pins.get(old.nation) != old:
                raise NotPinned(f"the pinned node of {old.nation} changed meanwhile")
            self._pins[new.nation] = new

    def remove(self, pin: PinnedNode) -> None:
        with self._lock:
            if self._pins.get(pin.nation) != pin:
                raise NotPinned(f"the pinned node of {pin.nation} changed meanwhile")
            del self._pins[pin.nation]


def _unverified_nation(token: object) -> str:
    """The nation a descriptor claims, to find the pin it updates (not trusted)."""
    nation: object = None
    if isinstance(token, str) and token.count(".") == 2:
        try:
            payload = json.loads(b64url_decode(token.strip().split(".")[1]))
        except ValueError:
            payload = None
        nation = payload.get("nation") if isinstance(payload, dict) else None
    if not isinstance(nation, str) or len(nation) != 3:
        raise InvalidDescriptor("not a node descriptor: it names no nation")
    return nation


class TrustStore:
    """Pin, update, unpin and list partner nodes of the node of ``nation``."""

    def __init__(
        self, repo: PinRepository, authorizer: Authorizer, sink: AuditSink, nation: str
    ) -> None:
        self._repo = repo
        self._authz = authorizer
        self._sink = sink
        self._nation = nation
        self._changes = 0
        self._changes_lock = threading.Lock()

    def _changed(self) -> None:
        with self._changes_lock:
            self._changes += 1

    @property
    def changes(self) -> int:
        """How many pins this process wrote through this store (a change counter,
        in memory: a :class:`PinSnapshot` drops what it read before a change)."""
        return self._changes

    def _require(self, actor: Grantee, target: str) -> None:
        self._authz.require(
            actor, Permission.FEDERATION_TRUST_WRITE, Scope.of([self._nation]), target=target
        )

    def _record(
        self, kind: str, pin: PinnedNode, actor: Grantee, now: datetime, **extra: str
    ) -> None:
        self._sink.record(
            f"federation.node.{kind}",
            {
                "nation": pin.nation,
                "fingerprint": pin.fingerprint,
                "base_url": pin.descriptor.base_url,
                "by": actor.person_id,
                "actor": actor.person_id,
                "at": now.astimezone(UTC).isoformat(),
                **extra,
            },
        )

    def pin(self, token: str, *, fingerprint: str, actor: Grantee, now: datetime) -> PinnedNode:
        """Trust a node for the first time: its descriptor must be signed by the key
        whose ``fingerprint`` a security officer received out of band."""
        self._require(actor, f"pin {fingerprint[:80]}")
        descriptor = verify_descriptor(token, None, now, fingerprint=fingerprint)
        if self._repo.get(descriptor.nation) is not None:
            raise AlreadyPinned(
                f"{descriptor.nation} already has a pinned node: update it, or untrust it first"
            )
        pin = PinnedNode(descriptor, token.strip(), now.astimezone(UTC), actor.person_id)
        self._record("pinned", pin, actor, now)
        self._repo.add(pin)
        self._changed()
        return pin

    def update(self, token: str, *, actor: Grantee, now: datetime) -> PinnedNode:
        """Replace a pinned descriptor by one signed with its node key."""
        nation = _unverified_nation(token)
        self._require(actor, f"update {nation}")
        old = self._repo.get(nation)
        if old is None:
            raise NotPinned(f"{nation} has no pinned node: trust it first, by its fingerprint")
        descriptor = verify_descriptor(token, old, now)
        pin = PinnedNode(descriptor, token.strip(), now.astimezone(UTC), actor.person_id)
        self._record("updated", pin, actor, now, previous_fingerprint=old.fingerprint)
        self._repo.replace(old, pin)
        self._changed()
        return pin

    def refresh(self, token: str, *, nation: str, now: datetime) -> PinnedNode | None:
        """Take a partner's newer descriptor fetched from its own address: accepted
        exactly as :meth:`update` accepts one (signed by the pinned node key, or a
        rotation signed by it naming it in ``previous``; same nation; issued later;
        current) and recorded as ``federation.node.updated`` by ``node`` with
        ``automatic: true``. No officer is asked: the officer decided to trust that
        key when pinning, and only that key can sign what is taken here. ``None``
        when the token is the pinned one (nothing to do); the descriptor must be for
        ``nation`` (the pin it was fetched for);
        :class:`~relto.federation.errors.InvalidDescriptor` otherwise."""
        if _unverified_nation(token) != nation:
            raise InvalidDescriptor(f"the node pinned for {nation[:3]} served another nation's")
        old = self._repo.get(nation)
        if old is None:
            raise NotPinned(f"{nation[:3]} has no pinned node")
        if token.strip() == old.token:
            return None
        descriptor = verify_descriptor(token, old, now)
        # who pinned the node and when stay as the officer made them: the refresh only
        # follows what the pinned key signed (the update itself is recorded below)
        pin = PinnedNode(descriptor, token.strip(), old.pinned_at, old.pinned_by)
        self._sink.record(
            "federation.node.updated",
            {
                "nation": pin.nation,
                "fingerprint": pin.fingerprint,
                "base_url": pin.descriptor.base_url,
                "by": "node",
                "actor": "node",
                "automatic": "true",
                "previous_fingerprint": old.fingerprint,
                "at": now.astimezone(UTC).isoformat(),
            },
        )
        self._repo.replace(old, pin)
        self._changed()
        return pin

    def unpin(self, nation: str, *, actor: Grantee, now: datetime) -> PinnedNode:
        """Stop trusting the node of ``nation``."""
        self._require(actor, f"unpin {nation[:3]}")
        old = self._repo.get(nation)
        if old is None:
            raise NotPinned(f"{nation[:3]!r} has no pinned node")
        self._record("unpinned", old, actor, now)
        self._repo.remove(old)
        self._changed()
        return old

    def pinned(self) -> list[PinnedNode]:
        return self._repo.all()

    def trusted(self) -> dict[str, PinnedNode]:
        """Pinned nodes by nation, for :func:`~relto.federation.verify_attestation`."""
        return {p.nation: p for p in self._repo.all()}


class PinSnapshot:
    """The pins of ``store`` as read at most ``max_age`` seconds ago.

    :meth:`trusted` reads them again once that has passed (or the store changed a
    pin in this process); :meth:`cached` never reads, and answers ``None`` when
    :meth:`trusted` would. The age is counted from when a read *started*, so a
    change committed before time T is seen by every answer after T + ``max_age``.
    ``clock`` (monotonic seconds) is injectable for tests. Thread-safe.
    """

    def __init__(
        self,
        store: TrustStore,
        *,
        max_age: float = PIN_SNAPSHOT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < max_age <= 60:
            raise ValueError("max_age is positive and at most 60 seconds")
        self._store = store
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        #: (when the read started, the store's change counter then, the pins)
        self._snap: tuple[float, int, Mapping[str, PinnedNode]] | None = None

    def cached(self) -> Mapping[str, PinnedNode] | None:
        """The pins by nation when the snapshot is fresh, else ``None``; no I/O."""
        snap = self._snap
        if snap is None:
            return None
        started, changes, pins = snap
        if changes != self._store.changes:
            return None
        age = self._clock() - started
        return pins if 0 <= age < self._max_age else None

    def trusted(self) -> Mapping[str, PinnedNode]:
        """The pins by nation; reads the store when the snapshot is not fresh (one
        reader at a time: the others then use what it read)."""
        pins = self.cached()
        if pins is not None:
            return pins
        with self._lock:
            pins = self.cached()
            if pins is not None:
                return pins
            changes = self._store.changes
            started = self._clock()
            pins = MappingProxyType(self._store.trusted())
            if self._store.changes == changes:  # else a change raced the read: keep none
                self._snap = (started, changes, pins)
            return pins
