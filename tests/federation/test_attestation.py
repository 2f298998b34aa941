"""Attestations: only a person's own nation vouches, briefly, bound to their DPoP key."""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta

import pytest

from relto.federation import (
    AttestationSigner,
    AttestedClearance,
    AttestedPerson,
    SigningKey,
    StatusReference,
    make_attestation,
    verify_attestation,
)
from relto.federation._keys import sign_compact
from relto.federation.errors import (
    AttestationNotCurrent,
    InvalidAttestation,
    ProofKeyMismatch,
    UntrustedAttestation,
)

from .conftest import NOW, FakeNode

DPOP = SigningKey.generate("P-256").public.thumbprint
ALICE = AttestedPerson(
    person_id="gbr-eng-alice",
    home_nation="GBR",
    nationalities=frozenset({"GBR", "AUS"}),
    roles=frozenset({"engineer"}),
    projects=frozenset({"hypersonic"}),
    clearances=(
        AttestedClearance("GBR", "SECRET", "granted", date(2028, 1, 31), ("UK EYES ONLY",)),
    ),
)


def _attest(node: FakeNode, person: AttestedPerson = ALICE, **kw: object) -> str:
    args: dict[str, object] = {
        "cnf_jkt": DPOP,
        "signer": node.signer,
        "issuer": node.base_url,
        "now": NOW,
    }
    args.update(kw)
    return make_attestation(person, **args)  # type: ignore[arg-type]


def _claims(token: str) -> dict[str, object]:
    p = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))))


def test_attestation_of_own_national_accepted(gbr: FakeNode, usa: FakeNode) -> None:
    status = StatusReference(7, "https://relto.gbr.example/status/1")
    token = _attest(gbr, status=status)
    att = verify_attestation(
        token, {"GBR": gbr.pinned(), "USA": usa.pinned()}, dpop_jkt=DPOP, now=NOW
    )
    assert att.person == ALICE and att.issuer == gbr.base_url
    assert att.expires_at - att.issued_at == timedelta(minutes=5)
    assert att.cnf_jkt == DPOP and att.status == status
    claims = _claims(token)
    assert claims["cnf"] == {"jkt": DPOP}
    assert claims["status"] == {"status_list": {"idx": 7, "uri": status.uri}}


def test_forged_attestation_signature_refused(gbr: FakeNode) -> None:
    head, payload, sig = _attest(gbr).split(".")
    with pytest.raises(UntrustedAttestation):
        verify_attestation(
            f"{head}.{payload}.{sig[:-4]}AAAA", {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW
        )


def test_attestation_signed_by_unlisted_key_refused(gbr: FakeNode) -> None:
    rogue = AttestationSigner("att-1", SigningKey.generate("P-256"))
    with pytest.raises(UntrustedAttestation):
        verify_attestation(
            _attest(gbr, signer=rogue), {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW
        )


def test_node_vouching_for_another_nations_national_refused(gbr: FakeNode, usa: FakeNode) -> None:
    bob = AttestedPerson("usa-eng-bob", "USA", frozenset({"USA"}))
    trusted = {"GBR": gbr.pinned(), "USA": usa.pinned()}
    with pytest.raises(UntrustedAttestation, match="only for its own nation"):
        verify_attestation(_attest(gbr, bob), trusted, dpop_jkt=DPOP, now=NOW)
    # naming the other nation's node as issuer does not help: its keys did not sign
    with pytest.raises(UntrustedAttestation, match="pinned USA node"):
        verify_attestation(_attest(gbr, bob, issuer=usa.base_url), trusted, dpop_jkt=DPOP, now=NOW)


def test_attestation_from_unpinned_node_refused(gbr: FakeNode, usa: FakeNode) -> None:
    with pytest.raises(UntrustedAttestation, match="not a pinned node"):
        verify_attestation(_attest(gbr), {"USA": usa.pinned()}, dpop_jkt=DPOP, now=NOW)


def test_expired_attestation_refused(gbr: FakeNode) -> None:
    token = _attest(gbr)
    trusted = {"GBR": gbr.pinned()}
    verify_attestation(token, trusted, dpop_jkt=DPOP, now=NOW + timedelta(minutes=6, seconds=59))
    with pytest.raises(AttestationNotCurrent, match="clock skew"):
        verify_attestation(token, trusted, dpop_jkt=DPOP, now=NOW + timedelta(minutes=7, seconds=1))


def test_attestation_from_the_future_refused(gbr: FakeNode) -> None:
    token = _attest(gbr, now=NOW + timedelta(minutes=3))
    with pytest.raises(AttestationNotCurrent, match="clock skew"):
        verify_attestation(token, {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW)


def test_attestation_living_longer_than_five_minutes_refused(gbr: FakeNode) -> None:
    with pytest.raises(ValueError):
        _attest(gbr, ttl=301)
    claims = {**_claims(_attest(gbr)), "exp": int(NOW.timestamp()) + 301}
    token = sign_compact(gbr.attestation, {"typ": "relto-attestation+jwt", "kid": "att-1"}, claims)
    with pytest.raises(InvalidAttestation, match="longer than 5 minutes"):
        verify_attestation(token, {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW)


def test_attestation_bound_to_another_dpop_key_refused(gbr: FakeNode) -> None:
    other = SigningKey.generate().public.thumbprint
    with pytest.raises(ProofKeyMismatch):
        verify_attestation(_attest(gbr), {"GBR": gbr.pinned()}, dpop_jkt=other, now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_none_and_hmac_refused(gbr: FakeNode, alg: str) -> None:
    header = {"alg": alg, "typ": "relto-attestation+jwt", "kid": "att-1"}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    _, payload, sig = _attest(gbr).split(".")
    for token in (f"{head}.{payload}.{sig}", f"{head}.{payload}."):
        with pytest.raises(InvalidAttestation, match=r"not allowed|compact JWS"):
            verify_attestation(token, {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW)


def test_descriptor_typ_is_not_an_attestation(gbr: FakeNode) -> None:
    claims = _claims(_attest(gbr))
    token = sign_compact(gbr.attestation, {"typ": "relto-node+jwt", "kid": "att-1"}, claims)
    with pytest.raises(InvalidAttestation, match="typ"):
        verify_attestation(token, {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW)


def test_unknown_claim_refused(gbr: FakeNode) -> None:
    claims = {**_claims(_attest(gbr)), "relto_roles": ["security_officer"]}
    token = sign_compact(gbr.attestation, {"typ": "relto-attestation+jwt", "kid": "att-1"}, claims)
    with pytest.raises(InvalidAttestation, match="does not know"):
        verify_attestation(token, {"GBR": gbr.pinned()}, dpop_jkt=DPOP, now=NOW)


def test_attestation_under_expired_pin_refused(gbr: FakeNode) -> None:
    pinned = gbr.pinned(at=NOW - timedelta(days=31))  # valid 30 days
    with pytest.raises(UntrustedAttestation, match="must publish an update"):
        verify_attestation(_attest(gbr), {"GBR": pinned}, dpop_jkt=DPOP, now=NOW)


def test_home_nation_must_be_a_nationality() -> None:
    with pytest.raises(ValueError):
        make_attestation(
            AttestedPerson("x", "GBR", frozenset({"USA"})),
            cnf_jkt=DPOP,
            signer=AttestationSigner("a", SigningKey.generate()),
            issuer="https://relto.gbr.example",
            now=NOW,
        )
