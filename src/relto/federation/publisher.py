"""Token Status List publishing: this node says, for each of its people, whether
the attestations it issued them still stand (draft-ietf-oauth-status-list-20).

Each person of the node's nation gets a stable index the first time they are
attested (:class:`StatusIndexRepository`); every attestation carries ``status:
{status_list: {idx, uri}}``. :class:`StatusListPublisher` serves the list as a
Status List Token: a compact JWS with header ``typ`` ``statuslist+jwt`` and
``kid`` (an attestation key of the node's descriptor), claims ``sub`` (the
list's URI, equal to the attestations' ``uri``), ``iat``, ``exp``, ``ttl`` and
``status_list: {bits: 1, lst}``.

Every person of the node's nation is given an index when the list is built, so
a list a partner cached before someone's first attestation already speaks for
them. A person's status is VALID (0) only when the vetting records hold at least one
clearance that is current now (:meth:`relto.vetting.Clearance.currency`, the
vetting service's own notion) and none that is suspended or under a review that
suspends access; otherwise INVALID (1). An index nobody holds is INVALID. The list
is rebuilt when the vetting facts change (the fact-version counters) or an index
is assigned, and at least every :data:`REBUILD_AFTER` (expiry and overdue reports
change statuses with time alone).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from relto.errors import NotFound
from relto.federation._keys import sign_compact
from relto.federation.attestation import AttestationSigner, StatusReference
from relto.federation.status import StatusList, TokenStatus
from relto.vetting import Clearance, NotCurrent, VettingPolicy

__all__ = [
    "LIST_ID",
    "REBUILD_AFTER",
    "STATUS_LIST_LIFETIME",
    "STATUS_LIST_TTL",
    "STATUS_LIST_TYP",
    "MemoryStatusIndexRepository",
    "StatusFacts",
    "StatusIndexRepository",
    "StatusListPublisher",
    "person_status",
    "status_list_uri",
]

STATUS_LIST_TYP = "statuslist+jwt"
#: The one list this node publishes (more lists, when one grows too large, later).
LIST_ID = "1"
#: How long a verifier may cache the token before fetching it again (``ttl``).
STATUS_LIST_TTL = 30
#: ``exp - iat``: a token older than this is never accepted, whatever it says.
STATUS_LIST_LIFETIME = timedelta(minutes=5)
#: The longest a built list is served without rebuilding it.
REBUILD_AFTER = timedelta(seconds=30)
#: Every list has at least this many entries, so its length tells little about how
#: many people the node has attested.
MIN_ENTRIES = 1024
_SUSPENDING = frozenset({NotCurrent.SUSPENDED, NotCurrent.UNDER_REVIEW})


def status_list_uri(base_url: str, list_id: str = LIST_ID) -> str:
    """The URI of a list, as attestations and the token's ``sub`` name it."""
    return f"{base_url.rstrip('/')}/api/v1/federation/status/{list_id}"


class StatusIndexRepository(Protocol):
    """Where each person's index in this node's status list is kept."""

    def index_for(self, person_id: str, list_id: str, at: datetime) -> tuple[str, int]:
        """The person's (list id, index), assigned now if they have none yet."""
        ...

    def assigned(self, list_id: str) -> list[tuple[str, int]]:
        """Every (person id, index) of the list."""
        ...

    def version(self) -> Hashable | None:
        """A value that changes whenever the list's facts may have changed (vetting
        records, index assignments); ``None`` when unknown (nothing is cached)."""
        ...


class MemoryStatusIndexRepository:
    """Indexes in memory (tests, tools); ``vetting_version`` is bumped by the test."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self.vetting_version = 0

    def index_for(self, person_id: str, list_id: str, at: datetime) -> tuple[str, int]:
        with self._lock:
            if person_id not in self._rows:
                used = [i for lid, i in self._rows.values() if lid == list_id]
                self._rows[person_id] = (list_id, max(used, default=-1) + 1)
            return self._rows[person_id]

    def assigned(self, list_id: str) -> list[tuple[str, int]]:
        with self._lock:
            return [(p, i) for p, (lid, i) in self._rows.items() if lid == list_id]

    def version(self) -> Hashable | None:
        with self._lock:
            return (self.vetting_version, len(self._rows))


class StatusFacts(Protocol):
    """The vetting records a list is built from: this node's people and clearances."""

    @property
    def policy(self) -> VettingPolicy: ...

    def clearances_of(self, person_ids: Iterable[str]) -> dict[str, list[Clearance]]:
        """Clearances per person (people of this node's nation only; others absent)."""
        ...

    def person_ids(self) -> list[str]:
        """Every person of this node's nation."""
        ...


def person_status(clearances: Sequence[Clearance], at: datetime, policy: VettingPolicy) -> int:
    """VALID when one clearance is current at ``at`` and none is suspended or under
    a review that suspends access; INVALID otherwise (no clearance, all expired,
    revoked, denied, lapsed or still being processed)."""
    currencies = [c.currency(at, policy) for c in clearances]
    if any(cur.code in _SUSPENDING for cur in currencies):
        return TokenStatus.INVALID
    return TokenStatus.VALID if any(cur.current for cur in currencies) else TokenStatus.INVALID


@dataclass(frozen=True)
class _Built:
    version: Hashable
    built_at: datetime
    statuses: StatusList


class StatusListPublisher:
    """Assigns status indexes and serves this node's Status List Token."""

    def __init__(
        self,
        *,
        base_url: str,
        signer: AttestationSigner,
        indexes: StatusIndexRepository,
        facts: StatusFacts,
        ttl: int = STATUS_LIST_TTL,
        lifetime: timedelta = STATUS_LIST_LIFETIME,
        rebuild_after: timedelta = REBUILD_AFTER,
    ) -> None:
        if not 0 < ttl <= lifetime.total_seconds():
            raise ValueError("a status list's ttl is positive and within its lifetime")
        self._base_url = base_url
        self._signer = signer
        self._indexes = indexes
        self._facts = facts
        self._ttl = ttl
        self._lifetime = lifetime
        self._rebuild_after = rebuild_after
        self._built: dict[str, _Built] = {}
        self._lock = threading.Lock()

    def reference(self, person_id: str, at: datetime) -> StatusReference:
        """Where an attestation of ``person_id`` finds its status (assigned once)."""
        list_id, idx = self._indexes.index_for(person_id, LIST_ID, at)
        return StatusReference(idx, status_list_uri(self._base_url, list_id))

    def statuses(self, list_id: str, at: datetime) -> StatusList:
        """The list as of ``at`` (cached while the facts are unchanged, at most
        :data:`REBUILD_AFTER`). :class:`~relto.errors.NotFound` for an unknown list."""
        if list_id != LIST_ID:
            raise NotFound("no such status list")
        version = self._indexes.version()
        with self._lock:
            built = self._built.get(list_id)
        if (
            built is not None
            and version is not None
            and built.version == version
            and timedelta(0) <= at - built.built_at < self._rebuild_after
        ):
            return built.statuses
        # Everyone of the nation holds an index before the list is built: a partner
        # caches a list for up to its ttl, and a person first attested after that
        # would otherwise read as INVALID there (an index nobody held yet).
        for person_id in self._facts.person_ids():
            self._indexes.index_for(person_id, list_id, at)
        version = self._indexes.version()
        statuses = self._build(list_id, at)
        if version is not None:
            with self._lock:
                self._built[list_id] = _Built(version, at, statuses)
        return statuses

    def _build(self, list_id: str, at: datetime) -> StatusList:
        assigned = self._indexes.assigned(list_id)
        size = max(MIN_ENTRIES, max((i for _, i in assigned), default=-1) + 1)
        size = -(-size // 8) * 8
        values = [int(TokenStatus.INVALID)] * size
        clearances = self._facts.clearances_of(p for p, _ in assigned)
        policy = self._facts.policy
        for person_id, idx in assigned:
            held = clearances.get(person_id)
            if held is not None:
                values[idx] = int(person_status(held, at, policy))
        return StatusList.of(values, bits=1)

    def token(self, list_id: str, at: datetime) -> str:
        """The Status List Token of ``list_id``, signed now."""
        at = at.astimezone(UTC)
        statuses = self.statuses(list_id, at)
        iat = int(at.timestamp())
        claims = {
            "sub": status_list_uri(self._base_url, list_id),
            "iat": iat,
            "exp": iat + int(self._lifetime.total_seconds()),
            "ttl": self._ttl,
            "status_list": {"bits": statuses.bits, "lst": statuses.encode()},
        }
        header = {"typ": STATUS_LIST_TYP, "kid": self._signer.kid}
        return sign_compact(self._signer.key, header, claims)
