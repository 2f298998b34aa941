"""Who may have a key: the :class:`Decider` the KAS asks before every release.

The decision engine (``relto.decisions``) provides the real decider. What ships
here is fail-closed: :class:`DenyAllDecider` denies everything with a reason, and
:class:`UnsafeAllowAllDecider` (tests only) allows everything and warns each
time it is built and used.

Whatever the decider says, the KAS also enforces the policy's ``dissem`` list
itself (:func:`dissem_reason`): when a policy names entities, the caller must be
one of them -- one of the identities its issuer verified
(:attr:`relto.kas.auth.Caller.identities`: the subject, and a verified e-mail).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from relto.export_control.records import TransferRecord
from relto.federation.attestation import AttestedPerson

__all__ = [
    "Decider",
    "DenyAllDecider",
    "KasDecision",
    "Reason",
    "RewrapFacts",
    "TransferRecorder",
    "UnsafeAllowAllDecider",
    "dissem_reason",
]


@dataclass(frozen=True)
class Reason:
    """Why a release was denied (or allowed): a stable code and a sentence."""

    code: str
    message: str


@dataclass(frozen=True)
class KasDecision:
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    obligations: tuple[str, ...] = ()
    #: The object decided on, when the decider names it (recorded as ``object``).
    object_id: str = ""
    #: Decided as a custodian of an object another nation's node holds (joint
    #: custody, on the facts its policy names): recorded as ``custody: true``
    #: with the ``originator`` the policy names.
    custody: bool = False
    originator: str = ""
    #: The legal basis of an allowed release of an export-controlled object.
    legal_basis: str = ""
    #: An allowed release of a controlled item: the transfer to record before the
    #: key is released (:class:`TransferRecorder`).
    transfer: TransferRecord | None = None


@runtime_checkable
class TransferRecorder(Protocol):
    """Records allowed transfers of controlled items (each with the object's
    originator) before the KAS releases their keys; raises
    :class:`relto.export_control.errors.TransferRefused` when one cannot be
    recorded (nothing is then recorded), anything else on failure."""

    def record_transfers(self, records: Sequence[tuple[TransferRecord, str]]) -> None: ...


@dataclass(frozen=True)
class RewrapFacts:
    """What the decider is told about one policy of one rewrap request."""

    subject: Mapping[str, Any]
    policy_uuid: str
    attributes: tuple[str, ...]
    dissem: tuple[str, ...]
    at: datetime
    key_ids: tuple[str, ...] = field(default=())
    #: The nation the issuer that verified the caller is bound to (``None``: no
    #: issuer vouched for a nation). A decider that knows the person's home nation
    #: denies when they differ: an issuer vouches for its own nation's people only.
    nation: str | None = None
    #: What the key is for: ``"read"`` over HTTP, always; in-process callers name
    #: their action (``"relabel"``, ...) and the decider decides that action.
    action: str = "read"
    #: A person of another nation, as their home node attested them (verified
    #: against its pinned node, bound to the caller's DPoP key, status valid). The
    #: decider decides on these facts and never looks the person up here.
    attested: AttestedPerson | None = None


@runtime_checkable
class Decider(Protocol):
    """Decides one policy of one rewrap.

    A decider whose ``decide`` only computes (no database, no network) says so with
    a class attribute ``blocking = False``; the KAS then calls it on the event loop.
    A decider that must read something may offer ``async def decide_async(facts)``
    that never blocks its loop (the product decider reads its change counters off
    the loop and decides from its caches); the KAS awaits it. Any other decider is
    called on a worker thread. Errors and malformed answers deny either way.
    """

    def decide(self, facts: RewrapFacts) -> KasDecision: ...


class DenyAllDecider:
    """The default: no decision engine is wired in, so nothing is released."""

    blocking = False

    def decide(self, facts: RewrapFacts) -> KasDecision:
        return KasDecision(
            False,
            (Reason("no_decider", "no decision engine is configured for this key access service"),),
        )


class UnsafeAllowAllDecider:
    """Allows every rewrap. For tests only: it warns when built and on every use."""

    blocking = False

    def __init__(self) -> None:
        warnings.warn(
            "UnsafeAllowAllDecider releases every key to every authenticated caller",
            RuntimeWarning,
            stacklevel=2,
        )

    def decide(self, facts: RewrapFacts) -> KasDecision:
        warnings.warn("UnsafeAllowAllDecider allowed a rewrap", RuntimeWarning, stacklevel=2)
        return KasDecision(True, (Reason("unsafe_allow_all", "allowed without a decision"),))


def dissem_reason(dissem: tuple[str, ...], identities: frozenset[str]) -> Reason | None:
    """``None`` if ``dissem`` is empty or names the caller; else the denial reason.

    Entities are compared exactly, except that e-mail addresses compare without
    regard to case.
    """
    if not dissem:
        return None
    mine = {i.lower() if "@" in i else i for i in identities}
    for entity in dissem:
        if (entity.lower() if "@" in entity else entity) in mine:
            return None
    return Reason(
        "not_in_dissem", "the caller is not among the entities this object is disseminated to"
    )
