"""The federation home side as one service: what :class:`relto.node.Node` holds
and the HTTP adapter calls.

:class:`HomeFederation` serves this node's descriptor, issues attestations of its
people and publishes their Token Status List. :class:`VettingFacts` reads the
vetting records those are made from (the node asks itself: no caller).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from relto.authz import Authorizer, Grantee
from relto.config import Settings
from relto.errors import ReltoError
from relto.events import AuditSink
from relto.federation.config import FederationSettings
from relto.federation.homekeys import active_kas_keys, home_base_url, load_home_keys
from relto.federation.issuer import AttestationIssuer, DescriptorIssuer, IssuedAttestation
from relto.federation.publisher import StatusListPublisher
from relto.kas.keys import KeyStore
from relto.store.db import Database
from relto.store.federation import SqlStatusIndexRepository
from relto.vetting import Clearance, Person, VettingPolicy
from relto.vetting.service import MAX_PAGE, VettingService

__all__ = ["HomeFederation", "VettingFacts", "build_home_federation"]

log = structlog.stdlib.get_logger("relto.federation")


class VettingFacts:
    """People and clearances of this node's nation, from the vetting service."""

    def __init__(self, vetting: VettingService, nation: str) -> None:
        self._vetting = vetting
        self._nation = nation

    @property
    def policy(self) -> VettingPolicy:
        return self._vetting.policy

    def person(self, person_id: str) -> Person | None:
        for p in self._people([person_id]).values():
            return p
        return None

    def _people(self, person_ids: Iterable[str]) -> dict[str, Person]:
        wanted = set(person_ids)
        if len(wanted) == 1:
            (only,) = wanted
            try:
                p = self._vetting.get_person(only[:64])
            except ReltoError:  # not found, or an id the vetting rules refuse
                return {}
            return {p.id: p} if p.home_nation == self._nation else {}
        found: dict[str, Person] = {}
        after: str | None = None
        while True:  # every page: no cap, a person left out would read as revoked
            page = self._vetting.list_people(limit=MAX_PAGE, after=after)
            for p in page.items:
                if p.id in wanted and p.home_nation == self._nation:
                    found[p.id] = p
            after = page.next_after
            if after is None:
                return found

    def person_ids(self) -> list[str]:
        found: list[str] = []
        after: str | None = None
        while True:  # every page
            page = self._vetting.list_people(limit=MAX_PAGE, after=after)
            found.extend(p.id for p in page.items if p.home_nation == self._nation)
            after = page.next_after
            if after is None:
                return found

    def clearances_of(self, person_ids: Iterable[str]) -> dict[str, list[Clearance]]:
        people = self._people(person_ids)
        out: dict[str, list[Clearance]] = {pid: [] for pid in people}
        if len(people) == 1:
            (only,) = people
            pages = [self._vetting.list_clearances(limit=MAX_PAGE, person_id=only)]
            after = pages[0].next_after
            while after is not None:
                page = self._vetting.list_clearances(limit=MAX_PAGE, person_id=only, after=after)
                pages.append(page)
                after = page.next_after
        else:
            pages = []
            after = None
            while True:
                page = self._vetting.list_clearances(limit=MAX_PAGE, after=after)
                pages.append(page)
                after = page.next_after
                if after is None:
                    break
        for page in pages:
            for c in page.items:
                if c.person_id in out:
                    out[c.person_id].append(c)
        return out


@dataclass(frozen=True)
class HomeFederation:
    """This node vouching for its own people: descriptor, attestations, status."""

    nation: str
    base_url: str
    descriptors: DescriptorIssuer
    attestations: AttestationIssuer
    status: StatusListPublisher

    def descriptor(self, now: datetime) -> str:
        return self.descriptors.current(now)

    def attest(self, who: Grantee, *, dpop_jkt: str | None, now: datetime) -> IssuedAttestation:
        return self.attestations.issue(who, dpop_jkt=dpop_jkt, now=now)

    def status_list(self, list_id: str, now: datetime) -> str:
        return self.status.token(list_id, now)


def build_home_federation(
    settings: Settings,
    *,
    vetting: VettingService,
    authorizer: Authorizer,
    sink: AuditSink,
    kas_keys: KeyStore,
    db: Database,
    federation: FederationSettings | None = None,
) -> HomeFederation | None:
    """The home side of this node, its keys loaded (created on first use) from the
    data folder; ``None`` (and a warning) when the node has no address partners can
    use: set ``RELTO_PUBLIC_URL``, or listen on loopback. ``ConfigError`` for
    unsafe key files."""
    federation = federation or FederationSettings()  # type: ignore[call-arg]
    base_url = home_base_url(settings)
    if base_url is None:
        log.warning(
            "federation_home_disabled",
            detail="set RELTO_PUBLIC_URL (https) so partners can reach this node; "
            "/.well-known/relto-node, attestations and the status list are off",
        )
        return None
    keys = load_home_keys(settings)
    facts = VettingFacts(vetting, settings.nation)
    status = StatusListPublisher(
        base_url=base_url,
        signer=keys.attestation,
        indexes=SqlStatusIndexRepository(db),
        facts=facts,
    )
    return HomeFederation(
        nation=settings.nation,
        base_url=base_url,
        descriptors=DescriptorIssuer(
            nation=settings.nation,
            base_url=base_url,
            keys=keys,
            kas_keys=active_kas_keys(kas_keys),
            validity=timedelta(days=federation.descriptor_valid_days),
        ),
        attestations=AttestationIssuer(
            nation=settings.nation,
            base_url=base_url,
            signer=keys.attestation,
            facts=facts,
            status=status.reference,
            authorizer=authorizer,
            sink=sink,
            ttl=federation.attestation_ttl,
        ),
        status=status,
    )
