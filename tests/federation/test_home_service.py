"""The home side's services without HTTP: the descriptor kept current, the status
of a person from their clearances, and the list rebuilt when vetting changes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from relto.audit.note import NoteSigner
from relto.errors import NotFound
from relto.federation import (
    AttestationSigner,
    KasKey,
    SigningKey,
    StatusList,
    TokenStatus,
    verify_descriptor,
)
from relto.federation._keys import split_compact
from relto.federation.homekeys import HomeKeys
from relto.federation.issuer import DescriptorIssuer, attested_person
from relto.federation.publisher import (
    MemoryStatusIndexRepository,
    StatusListPublisher,
    person_status,
)
from relto.vetting import Clearance, Person, Status, VettingPolicy
from relto.vetting._data import default_policy

from .conftest import NOW, _kas_pem

POLICY = default_policy()


def keys() -> HomeKeys:
    att = SigningKey.generate("P-256")
    return HomeKeys(
        node_key=SigningKey.generate(),
        attestation=AttestationSigner(att.public.thumbprint, att),
        log_key=NoteSigner.generate("relto/gbr/audit").verifier().vkey,
        witness_key=NoteSigner.generate("relto/gbr/witness").cosignature_verifier().vkey,
    )


LEVEL = {"GBR": "SC", "AUS": "NV1"}


def clearance(
    *path: Status, nation: str = "GBR", at: datetime = NOW, valid_until: datetime | None = None
) -> Clearance:
    c = Clearance.sponsor_new(
        id=f"c-{len(path)}-{nation}", person_id="gbr-eng", nation=nation, level=LEVEL[nation],
        sponsor="MOD", at=at - timedelta(days=10), actor="t", reason="t", policy=POLICY,
    )  # fmt: skip
    for i, to in enumerate(path):
        until = valid_until if to is Status.GRANTED else None
        c = c.transition(
            to, at=at - timedelta(days=9 - i), actor="t", reason="t", policy=POLICY,
            valid_until=until,
        )  # fmt: skip
    return c


GRANTED = (Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED)


def test_descriptor_reissued_when_a_quarter_of_its_validity_is_left() -> None:
    k = keys()
    kas = [KasKey("e1", "ec:secp256r1", _kas_pem())]
    issuer = DescriptorIssuer(
        nation="GBR", base_url="https://relto.gbr.example", keys=k, kas_keys=lambda: kas,
        validity=timedelta(days=40),
    )  # fmt: skip
    first = issuer.current(NOW)
    assert issuer.current(NOW + timedelta(days=29)) == first
    renewed = issuer.current(NOW + timedelta(days=30, seconds=1))
    assert renewed != first
    pinned = verify_descriptor(first, None, NOW, fingerprint=k.node_key.fingerprint)
    from relto.federation import PinnedNode

    pin = PinnedNode(pinned, first, NOW, "t")
    update = verify_descriptor(renewed, pin, NOW + timedelta(days=30, seconds=1))
    assert update.issued_at > pinned.issued_at  # a partner can apply it as an update


def test_descriptor_names_the_kas_keys_after_a_rotation() -> None:
    kas = [KasKey("e1", "ec:secp256r1", _kas_pem())]
    issuer = DescriptorIssuer(
        nation="GBR", base_url="https://relto.gbr.example", keys=keys(),
        kas_keys=lambda: list(kas),
    )  # fmt: skip
    first = issuer.current(NOW)
    kas.append(KasKey("e2", "ec:secp256r1", _kas_pem()))
    assert issuer.current(NOW + timedelta(seconds=10)) == first  # checked once a minute
    rotated = issuer.current(NOW + timedelta(seconds=61))
    kids = [k["kid"] for k in split_compact(
        rotated, typ="relto-node+jwt", header_members=frozenset({"alg", "typ", "kid"})
    ).unverified_claims["kas_keys"]]  # fmt: skip
    assert kids == ["e1", "e2"]


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        ((), TokenStatus.INVALID),
        ((GRANTED,), TokenStatus.VALID),
        (((*GRANTED, Status.SUSPENDED),), TokenStatus.INVALID),
        (((*GRANTED, Status.UNDER_REVIEW),), TokenStatus.INVALID),  # GBR review suspends
        (((*GRANTED, Status.REVOKED),), TokenStatus.INVALID),
        ((GRANTED[:2],), TokenStatus.INVALID),  # still adjudicating
        ((GRANTED, (*GRANTED, Status.SUSPENDED)), TokenStatus.INVALID),  # one suspended
        ((GRANTED, (*GRANTED, Status.REVOKED)), TokenStatus.VALID),  # an old one revoked
    ],
)
def test_status_of_a_person_from_their_clearances(
    held: tuple[tuple[Status, ...], ...], expected: TokenStatus
) -> None:
    cs = [clearance(*path, nation=("GBR", "AUS")[i % 2]) for i, path in enumerate(held)]
    assert person_status(cs, NOW, POLICY) == expected


def test_expired_clearance_is_invalid_without_any_change_recorded() -> None:
    c = clearance(*GRANTED, valid_until=NOW + timedelta(days=1))
    assert person_status([c], NOW, POLICY) == TokenStatus.VALID
    assert person_status([c], NOW + timedelta(days=2), POLICY) == TokenStatus.INVALID


def test_attested_valid_until_never_overstates_the_clearance() -> None:
    until = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
    c = clearance(*GRANTED, valid_until=until)
    person = Person("gbr-eng", "E", frozenset({"GBR"}), "MOD", "GBR")
    [att] = attested_person(person, [c], NOW, POLICY).clearances
    assert att.valid_until is not None and att.valid_until < until.date()


class Facts:
    def __init__(self) -> None:
        self.held: dict[str, list[Clearance]] = {}

    @property
    def policy(self) -> VettingPolicy:
        return POLICY

    def clearances_of(self, person_ids: Iterable[str]) -> dict[str, list[Clearance]]:
        return {p: self.held[p] for p in person_ids if p in self.held}

    def person_ids(self) -> list[str]:
        return list(self.held)


def publisher() -> tuple[StatusListPublisher, MemoryStatusIndexRepository, Facts]:
    indexes, facts = MemoryStatusIndexRepository(), Facts()
    k = keys()
    pub = StatusListPublisher(
        base_url="https://relto.gbr.example", signer=k.attestation, indexes=indexes, facts=facts
    )
    return pub, indexes, facts


def test_indexes_are_stable_and_unassigned_ones_invalid() -> None:
    pub, _, facts = publisher()
    facts.held = {"a": [clearance(*GRANTED)], "b": [clearance(*GRANTED)]}
    a, b = pub.reference("a", NOW), pub.reference("b", NOW)
    assert (a.idx, b.idx) == (0, 1) and pub.reference("a", NOW) == a
    assert a.uri == "https://relto.gbr.example/api/v1/federation/status/1"
    lst = pub.statuses("1", NOW)
    assert len(lst) >= 1024  # a list's length tells little about the people behind it
    assert [lst.status(i) for i in (0, 1, 2, 1023)] == [0, 0, 1, 1]


def test_status_list_rebuilt_when_vetting_changes_and_cached_otherwise() -> None:
    pub, indexes, facts = publisher()
    facts.held = {"a": [clearance(*GRANTED)]}
    ref = pub.reference("a", NOW)
    first = pub.statuses("1", NOW)
    facts.held = {"a": [clearance(*GRANTED, Status.SUSPENDED)]}
    assert pub.statuses("1", NOW + timedelta(seconds=1)) is first  # nothing bumped yet
    indexes.vetting_version += 1  # the suspension's transaction bumps the counter
    assert pub.statuses("1", NOW + timedelta(seconds=1)).status(ref.idx) == TokenStatus.INVALID


def test_status_list_rebuilt_at_least_every_30_seconds_for_expiries() -> None:
    pub, _, facts = publisher()
    facts.held = {"a": [clearance(*GRANTED, valid_until=NOW + timedelta(seconds=10))]}
    ref = pub.reference("a", NOW)
    assert pub.statuses("1", NOW).status(ref.idx) == TokenStatus.VALID
    assert pub.statuses("1", NOW + timedelta(seconds=30)).status(ref.idx) == TokenStatus.INVALID


def test_status_list_token_is_signed_by_the_attestation_key() -> None:
    pub, _, _ = publisher()
    token = pub.token("1", NOW)
    parts = split_compact(
        token, typ="statuslist+jwt", header_members=frozenset({"alg", "typ", "kid"})
    )
    assert parts.header["kid"] == pub._signer.kid
    lst = parts.unverified_claims["status_list"]
    assert StatusList.decode(lst["lst"], lst["bits"]).status(0) == TokenStatus.INVALID
    with pytest.raises(NotFound):
        pub.token("2", NOW)
