"""Accepting a partner's attestation: a node accepts only what it can verify.

A person of another nation works on this node with an attestation from their
home node (:mod:`relto.federation.attestation`) and a DPoP proof of the key it is
bound to. :class:`AttestationAcceptor` says whether this node believes it, and if
not, why, with one stable code per failure:

==============================  ============================================
code                            the attestation ...
==============================  ============================================
``attestation_malformed``       is not a well-formed attestation
``attestation_unpinned``        names an issuer that is no pinned node
``attestation_foreign_issued``  is about a person of another nation than the
                                issuing node's (a node vouches only for its own)
``attestation_node_expired``    comes from a node whose pinned descriptor expired
``attestation_forged``          is not signed by an attestation key of the pin
``attestation_expired``         is expired, or issued in the future (clock skew)
``attestation_wrong_key``       is bound (``cnf.jkt``) to another key than the
                                caller's DPoP proof key
==============================  ============================================

Those are failures of authentication (:meth:`AttestationAcceptor.accept` raises
:class:`AttestationRefused`). The status (IETF Token Status List) of an
authentic attestation is a fact about the person, like a revoked clearance:
:meth:`AttestationAcceptor.status_refusal` returns ``attestation_revoked``,
``attestation_suspended``, ``attestation_status_unavailable`` (no valid list
could be had: fail closed) or ``attestation_no_status`` (an attestation that
cannot be revoked is not accepted), or ``None`` when the status is VALID.

The status comes from a :class:`StatusChecker` (the home side's
``relto.federation.status_client.StatusListCache`` on a node);
:class:`UnavailableStatus` is the fail-closed default when none is wired.

On an event loop (the KAS), :meth:`AttestationAcceptor.accept` and
:meth:`~AttestationAcceptor.status_refusal` are called with ``blocking=False``:
they then run only on what is in memory (the pins of a fresh
:class:`~relto.federation.trust.PinSnapshot`, a status list fetched less than its
refresh time ago) and raise :class:`WouldBlock` where they would wait on I/O; the
caller runs the same call with ``blocking=True`` on a worker thread. Same checks,
same answers either way (ADR 0131).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from relto.federation._keys import b64url_decode
from relto.federation.attestation import (
    Attestation,
    StatusReference,
    check_current,
    verify_attestation,
)
from relto.federation.descriptor import CLOCK_SKEW, PinnedNode
from relto.federation.errors import (
    AttestationNotCurrent,
    FederationError,
    InvalidAttestation,
    ProofKeyMismatch,
    UntrustedAttestation,
)
from relto.federation.status import TokenStatus

__all__ = [
    "ATTESTATION_REFUSALS",
    "STATUS_REFUSALS",
    "AttestationAcceptor",
    "AttestationRefused",
    "Refusal",
    "StatusChecker",
    "UnavailableStatus",
    "WouldBlock",
]


#: Verified attestations kept per process (least recently used dropped): about 1 KiB
#: each, and an attestation lives 5 minutes.
VERIFIED_CACHE = 4096


@dataclass(frozen=True)
class Refusal:
    """Why an attestation is not accepted: a stable code and a sentence the caller
    may see (nothing secret: it is about the caller's own attestation)."""

    code: str
    message: str


#: Codes of :class:`AttestationRefused` (authentication failures).
ATTESTATION_REFUSALS: tuple[str, ...] = (
    "attestation_expired",
    "attestation_forged",
    "attestation_foreign_issued",
    "attestation_malformed",
    "attestation_node_expired",
    "attestation_unpinned",
    "attestation_wrong_key",
)
#: Codes :meth:`AttestationAcceptor.status_refusal` returns (decision reasons).
STATUS_REFUSALS: tuple[str, ...] = (
    "attestation_no_status",
    "attestation_revoked",
    "attestation_status_unavailable",
    "attestation_suspended",
)


class AttestationRefused(FederationError):
    """An attestation this node does not accept; ``refusal`` says why."""

    code = "attestation_refused"

    def __init__(self, refusal: Refusal, detail: str = "") -> None:
        super().__init__(refusal.message)
        self.refusal = refusal
        #: The verifier's own sentence, for the operator's log.
        self.detail = detail or refusal.message


class WouldBlock(Exception):
    """A ``blocking=False`` call that would have to wait on I/O (a pin reload, a
    status list fetch): nothing was decided; make the call again, blocking, off the
    event loop."""


class StatusChecker(Protocol):
    """Where an attestation's status is read (Token Status List). Raises a
    :class:`~relto.federation.errors.FederationError` when no valid list can be had.

    ``issued_at``: when the attestation was issued -- a list older than that which
    does not say VALID may not know the person yet, and a checker may look again.
    A checker that says ``blocking = False`` is called on an event loop as it is.
    A blocking one may offer ``cached_status(ref, issuer_nation, now, issued_at=)``:
    the same answer (or exception) as :meth:`status` when it needs no I/O, else
    ``None``."""

    def status(
        self,
        ref: StatusReference,
        issuer_nation: str,
        now: datetime,
        *,
        issued_at: datetime | None = None,
    ) -> TokenStatus: ...


class UnavailableStatus:
    """No status source is wired: every status is unavailable (fail closed)."""

    blocking = False

    def status(
        self,
        ref: StatusReference,
        issuer_nation: str,
        now: datetime,
        *,
        issued_at: datetime | None = None,
    ) -> TokenStatus:
        raise FederationError("no status list source is configured on this node")


def _unverified(token: object) -> tuple[object, object]:
    """(iss, home_nation) as the token claims them: only to name the refusal."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None, None
    try:
        claims = json.loads(b64url_decode(token.strip().split(".")[1]))
    except ValueError:
        return None, None
    if not isinstance(claims, dict):
        return None, None
    return claims.get("iss"), claims.get("home_nation")


class AttestationAcceptor:
    """Verifies attestations against the pinned nodes (``trusted()``, called at
    every verification: on a node a :class:`~relto.federation.trust.PinSnapshot`,
    so an untrust takes effect within its bound) and reads their status.

    ``cached``: the pins when they can be had without I/O, else ``None`` (a
    snapshot's ``cached``); without it, a ``blocking=False`` call always raises
    :class:`WouldBlock`."""

    def __init__(
        self,
        trusted: Callable[[], Mapping[str, PinnedNode]],
        status: StatusChecker | None = None,
        *,
        cached: Callable[[], Mapping[str, PinnedNode] | None] | None = None,
    ) -> None:
        self._trusted = trusted
        self._cached = cached
        #: Attestations whose signature verified, by token: (attestation, the pinned
        #: descriptor it verified against). A repeat checks only the pin is unchanged,
        #: the time and the key binding (:func:`check_current`).
        self._verified: OrderedDict[str, tuple[Attestation, str]] = OrderedDict()
        self._lock = threading.Lock()
        #: Replaceable (tests, the composition root once a status source exists).
        self.status: StatusChecker = status or UnavailableStatus()

    def _pins(self, blocking: bool) -> Mapping[str, PinnedNode]:
        if blocking:
            return self._trusted()
        pins = self._cached() if self._cached is not None else None
        if pins is None:
            raise WouldBlock("the pins are not in memory")
        return pins

    def accept(
        self, token: object, *, dpop_jkt: str, now: datetime, blocking: bool = True
    ) -> Attestation:
        """The verified attestation of a caller whose DPoP proof key has thumbprint
        ``dpop_jkt``; :class:`AttestationRefused` otherwise. ``blocking=False``:
        :class:`WouldBlock` (before any check) when the pins are not in memory."""
        trusted = self._pins(blocking)
        try:
            seen = self._seen(token, trusted, now)
            if seen is not None:
                return check_current(seen, dpop_jkt=dpop_jkt, now=now)
            att = verify_attestation(token, trusted, dpop_jkt=dpop_jkt, now=now)
            self._remember(token, att, trusted)
            return att
        except ProofKeyMismatch as exc:
            raise _refused(
                "attestation_wrong_key",
                "the attestation is bound to another key than the one that signed the DPoP proof",
                exc,
            ) from None
        except AttestationNotCurrent as exc:
            raise _refused(
                "attestation_expired",
                "the attestation is expired or not yet valid: ask your home node for a fresh "
                "one (and check the clocks)",
                exc,
            ) from None
        except UntrustedAttestation as exc:
            raise self._untrusted(token, trusted, now, exc) from None
        except InvalidAttestation as exc:
            raise _refused(
                "attestation_malformed", "the credential is not a well-formed attestation", exc
            ) from None

    def _seen(
        self, token: object, trusted: Mapping[str, PinnedNode], now: datetime
    ) -> Attestation | None:
        """A verified attestation of this token, if its node's pin is unchanged and
        current (an untrust, an update or an expiry makes it verify afresh)."""
        if not isinstance(token, str):
            return None
        with self._lock:
            found = self._verified.get(token)
            if found is not None:
                self._verified.move_to_end(token)
        if found is None:
            return None
        att, pin_token = found
        pin = trusted.get(att.person.home_nation)
        if pin is None or pin.token != pin_token or pin.descriptor.not_after < now - CLOCK_SKEW:
            return None
        return att

    def _remember(self, token: object, att: Attestation, trusted: Mapping[str, PinnedNode]) -> None:
        pin = trusted.get(att.person.home_nation)
        if not isinstance(token, str) or pin is None:
            return
        with self._lock:
            self._verified[token] = (att, pin.token)
            while len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)

    def _untrusted(
        self,
        token: object,
        trusted: Mapping[str, PinnedNode],
        now: datetime,
        exc: Exception,
    ) -> AttestationRefused:
        iss, home = _unverified(token)
        node = next((p for p in trusted.values() if p.descriptor.base_url == iss), None)
        if node is None:
            return _refused(
                "attestation_unpinned",
                "the attestation's issuer is not a node this node trusts (no pinned node)",
                exc,
            )
        if home != node.nation:
            return _refused(
                "attestation_foreign_issued",
                f"the node of {node.nation} may vouch only for its own nation's people",
                exc,
            )
        if node.descriptor.not_after < now - CLOCK_SKEW:
            return _refused(
                "attestation_node_expired",
                f"the pinned descriptor of the {node.nation} node has expired",
                exc,
            )
        return _refused(
            "attestation_forged",
            f"the attestation is not signed by an attestation key of the pinned {node.nation} node",
            exc,
        )

    def status_refusal(
        self, attestation: Attestation, now: datetime, *, blocking: bool = True
    ) -> Refusal | None:
        """``None`` when the attestation's status is VALID now; else why not. Fails
        closed: no reference, an unavailable list or an unknown value refuse.
        ``blocking=False``: :class:`WouldBlock` when the status needs I/O."""
        ref = attestation.status
        if ref is None:
            return Refusal(
                "attestation_no_status",
                "the attestation names no status list, so it could not be revoked: not accepted",
            )
        nation = attestation.person.home_nation
        try:
            if blocking or not getattr(self.status, "blocking", True):
                status = self.status.status(ref, nation, now, issued_at=attestation.issued_at)
            else:
                status = self._cached_status(ref, nation, now, attestation.issued_at)
        except WouldBlock:
            raise
        except Exception as exc:  # any failure to learn the status refuses
            return Refusal(
                "attestation_status_unavailable",
                f"the status of the attestation could not be confirmed with the {nation} node's "
                f"status list ({type(exc).__name__}): refused until it can",
            )
        if status == TokenStatus.VALID:
            return None
        if status == TokenStatus.SUSPENDED:
            return Refusal(
                "attestation_suspended", f"the {nation} node has suspended this attestation"
            )
        return Refusal("attestation_revoked", f"the {nation} node has revoked this attestation")

    def _cached_status(
        self, ref: StatusReference, nation: str, now: datetime, issued_at: datetime
    ) -> TokenStatus:
        peek = getattr(self.status, "cached_status", None)
        status = peek(ref, nation, now, issued_at=issued_at) if peek is not None else None
        if status is None:
            raise WouldBlock("the status list is not in memory, or due for a refresh")
        return TokenStatus(status)

    @property
    def blocking(self) -> bool:
        """Whether a status read may wait on I/O (then not on an event loop)."""
        return bool(getattr(self.status, "blocking", True))


def _refused(code: str, message: str, exc: Exception) -> AttestationRefused:
    return AttestationRefused(Refusal(code, message), str(exc))
