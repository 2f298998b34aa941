"""The pinned trust store: which partner nodes this node trusts, per nation.

Pinning, updating and unpinning are administrative actions
(``federation:trust:write``: a security officer of this node's nation), decided
by the authorisation point and recorded in the transparency log as
``federation.node.pinned``, ``federation.node.updated`` and
``federation.node.unpinned`` (nation, fingerprint, actor) before the change is
written. Storage is a :class:`PinRepository`: :class:`MemoryPinRepository` in
tests, ``relto.store.federation.SqlPinRepository`` on a node.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Protocol

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.events import AuditSink
from relto.federation._keys import b64url_decode
from relto.federation.descriptor import PinnedNode, verify_descriptor
from relto.federation.errors import AlreadyPinned, InvalidDescriptor, NotPinned

__all__ = ["MemoryPinRepository", "PinRepository", "TrustStore"]


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
        return pin

    def unpin(self, nation: str, *, actor: Grantee, now: datetime) -> PinnedNode:
        """Stop trusting the node of ``nation``."""
        self._require(actor, f"unpin {nation[:3]}")
        old = self._repo.get(nation)
        if old is None:
            raise NotPinned(f"{nation[:3]!r} has no pinned node")
        self._record("unpinned", old, actor, now)
        self._repo.remove(old)
        return old

    def pinned(self) -> list[PinnedNode]:
        return self._repo.all()

    def trusted(self) -> dict[str, PinnedNode]:
        """Pinned nodes by nation, for :func:`~relto.federation.verify_attestation`."""
        return {p.nation: p for p in self._repo.all()}
