"""The home side of federation: this node's descriptor, and attestations of its
own people (docs/federation.md, ADR 0118).

- :class:`DescriptorIssuer` keeps the node's signed descriptor, made from its keys
  and re-issued when less than a quarter of its validity is left or the KAS keys
  changed;
- :class:`AttestationIssuer` vouches for the signed-in person, for a person of this
  node's nation only, from the vetting records (never from the caller's token),
  bound to the key of their DPoP proof, with a status list reference; each
  issuance is recorded in the transparency log before the token leaves the node.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.errors import AccessDenied
from relto.events import AuditSink
from relto.federation._keys import SigningKey
from relto.federation.attestation import (
    MAX_ATTESTATION_LIFETIME,
    AttestationSigner,
    AttestedClearance,
    AttestedPerson,
    StatusReference,
    make_attestation,
)
from relto.federation.descriptor import AttestationKey, KasKey, make_descriptor
from relto.federation.errors import ProofRequired
from relto.federation.homekeys import HomeKeys
from relto.federation.publisher import StatusFacts
from relto.vetting import ACTIVE, Clearance, Person, Status, VettingPolicy

__all__ = [
    "ATTESTATION_ISSUED",
    "AttestationIssuer",
    "DescriptorIssuer",
    "IssuedAttestation",
    "PersonFacts",
    "attested_person",
]

#: The transparency-log entry of each attestation this node issues.
ATTESTATION_ISSUED = "federation.attestation.issued"
#: Statuses an attestation reports (the relying node decides on them; clearances
#: still being processed, or closed -- revoked, denied, lapsed -- are left out).
_ATTESTED_STATUSES = ACTIVE | {Status.SUSPENDED, Status.UNDER_REVIEW, Status.EXPIRED}
_MAX_CLEARANCES = 64


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


class DescriptorIssuer:
    """This node's current signed descriptor, made lazily and cached.

    Re-issued (a renewal, signed by the same node key, strictly later) when less
    than a quarter of its validity is left, or when the KAS's active keys differ
    from those it names (checked at most every ``recheck``).
    """

    def __init__(
        self,
        *,
        nation: str,
        base_url: str,
        keys: HomeKeys,
        kas_keys: Callable[[], Sequence[KasKey]],
        validity: timedelta = timedelta(days=90),
        recheck: timedelta = timedelta(seconds=60),
    ) -> None:
        self._nation = nation
        self._base_url = base_url
        self._keys = keys
        self._kas_keys = kas_keys
        self._validity = validity
        self._recheck = recheck
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at: datetime | None = None
        self._kas: tuple[KasKey, ...] = ()
        self._checked_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        return self._keys.node_key.fingerprint

    @property
    def node_key(self) -> SigningKey:
        """The node key (it signs descriptors, and the node's word on partnership
        changes: :mod:`relto.federation.ledger`)."""
        return self._keys.node_key

    def current(self, now: datetime) -> str:
        """The descriptor to serve at ``now``. ``ValueError`` on bad key material."""
        now = _aware(now)
        with self._lock:
            token, issued = self._token, self._issued_at
            if token is not None and issued is not None:
                renew_at = issued + self._validity * 3 / 4
                checked = self._checked_at or issued
                if now < renew_at and timedelta(0) <= now - checked < self._recheck:
                    return token
                kas = tuple(self._kas_keys())
                self._checked_at = now
                if now < renew_at and kas == self._kas:
                    return token
            else:
                kas = tuple(self._kas_keys())
            return self._issue(now, kas)

    def _issue(self, now: datetime, kas: tuple[KasKey, ...]) -> str:
        at = now.replace(microsecond=0)
        if self._issued_at is not None and at <= self._issued_at:
            at = self._issued_at + timedelta(seconds=1)  # an update is strictly later
        keys = self._keys
        token = make_descriptor(
            nation=self._nation,
            base_url=self._base_url,
            node_key=keys.node_key.public,
            kas_keys=kas,
            log_key=keys.log_key,
            witness_key=keys.witness_key,
            attestation_keys=[AttestationKey(keys.attestation.kid, keys.attestation.key.public)],
            issued_at=at,
            not_after=at + self._validity,
            signing_key=keys.node_key,
        )
        self._token, self._issued_at, self._kas, self._checked_at = token, at, kas, now
        return token


class PersonFacts(StatusFacts, Protocol):
    """The vetting records an attestation is made from."""

    def person(self, person_id: str) -> Person | None: ...


def _last_full_day(until: datetime | None) -> dt.date | None:
    """The last whole day (UTC) a clearance is valid: a relying node that reads
    ``valid_until`` as "through the end of that day" never overstates it."""
    if until is None:
        return None
    return _aware(until).date() - timedelta(days=1)


def attested_person(
    person: Person, clearances: Iterable[Clearance], at: datetime, policy: VettingPolicy
) -> AttestedPerson:
    """What this node vouches for about ``person`` at ``at``: nationalities, the
    roles held for their home nation, project memberships, and each clearance
    granted, interim, suspended, under review or expired, with its issuing nation,
    level, status (as computed now), last valid day and caveats."""
    shown: list[AttestedClearance] = []
    for c in clearances:
        status = c.status_at(at)
        if status not in _ATTESTED_STATUSES:
            continue
        shown.append(
            AttestedClearance(
                issuer=c.nation,
                level=c.level,
                status=status.value if status is not None else "",
                valid_until=_last_full_day(c.valid_until_at(at)),
                caveats=tuple(sorted(c.caveats)),
            )
        )
    shown.sort(key=lambda a: (a.issuer, a.level, a.status))
    return AttestedPerson(
        person_id=person.id,
        home_nation=person.home_nation,
        nationalities=frozenset(person.nationalities) | {person.home_nation},
        roles=frozenset(r.value for r in person.roles),
        projects=frozenset(m.project for m in person.projects),
        clearances=tuple(shown[:_MAX_CLEARANCES]),
    )


@dataclass(frozen=True)
class IssuedAttestation:
    """An attestation handed to the person it vouches for."""

    token: str
    jti: str
    expires_at: datetime
    status: StatusReference


class AttestationIssuer:
    """Issues attestations of this node's own people (``federation:attest``)."""

    def __init__(
        self,
        *,
        nation: str,
        base_url: str,
        signer: AttestationSigner,
        facts: PersonFacts,
        status: Callable[[str, datetime], StatusReference],
        authorizer: Authorizer,
        sink: AuditSink,
        ttl: int = int(MAX_ATTESTATION_LIFETIME.total_seconds()),
    ) -> None:
        if not 0 < ttl <= MAX_ATTESTATION_LIFETIME.total_seconds():
            raise ValueError("an attestation lives 1 to 300 seconds")
        self._nation = nation
        self._base_url = base_url
        self._signer = signer
        self._facts = facts
        self._status = status
        self._authorizer = authorizer
        self._sink = sink
        self._ttl = ttl

    def issue(self, who: Grantee, *, dpop_jkt: str | None, now: datetime) -> IssuedAttestation:
        """An attestation of ``who`` themself, bound to their DPoP key.

        :class:`~relto.errors.AccessDenied` for anyone but a person of this node's
        nation (decided and recorded by the authorisation point);
        :class:`~relto.federation.errors.ProofRequired` without a DPoP proof.
        """
        now = _aware(now)
        self._authorizer.require(
            who, Permission.FEDERATION_ATTEST, Scope.of([self._nation]), target=who.person_id
        )
        if dpop_jkt is None:
            raise ProofRequired(
                "an attestation is bound to your DPoP key: send the request with a DPoP proof"
            )
        person = self._facts.person(who.person_id)
        if person is None or person.home_nation != self._nation:
            raise AccessDenied("this node vouches only for its own nation's people")
        clearances = self._facts.clearances_of([person.id]).get(person.id, [])
        facts = attested_person(person, clearances, now, self._facts.policy)
        status = self._status(person.id, now)
        jti = secrets.token_urlsafe(16)
        iat = int(now.timestamp())
        token = make_attestation(
            facts,
            cnf_jkt=dpop_jkt,
            signer=self._signer,
            issuer=self._base_url,
            now=now,
            ttl=self._ttl,
            status=status,
            jti=jti,
        )
        expires_at = datetime.fromtimestamp(iat + self._ttl, UTC)
        # Recorded before the token leaves the node: no attestation goes out unlogged.
        self._sink.record(
            ATTESTATION_ISSUED,
            {
                "person_id": person.id,
                "nation": self._nation,
                "jti": jti,
                "cnf_jkt": dpop_jkt,
                "exp": expires_at.isoformat(),
                "status_list": status.uri,
                "status_idx": status.idx,
                "clearances": [
                    {"issuer": c.issuer, "level": c.level, "status": c.status}
                    for c in facts.clearances
                ],
                "at": now.isoformat(),
            },
        )
        return IssuedAttestation(token, jti, expires_at, status)
