"""A partner node verifies an attestation's signature once per process and then
repeats only what depends on the request -- yet a cached verification never
outlives the pin it was made against, the attestation's time, or its key binding."""

from __future__ import annotations

from datetime import timedelta

import pytest

import relto.federation.attestation as attestation_module
from relto.federation import AttestedClearance, AttestedPerson, make_attestation
from relto.federation.acceptance import AttestationAcceptor, AttestationRefused

from .conftest import NOW, FakeNode

BOB = AttestedPerson(
    "usa-eng-bob", "USA", frozenset({"USA"}), frozenset({"engineer"}), frozenset({"hypersonic"}),
    (AttestedClearance("USA", "SECRET", "granted"),),
)  # fmt: skip
DPOP = "A" * 43  # a thumbprint (RFC 7638): 43 base64url characters


def _token(usa: FakeNode, **kw: object) -> str:
    return make_attestation(
        BOB,
        cnf_jkt=DPOP,
        signer=usa.signer,
        issuer=usa.base_url,
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = attestation_module.verify_compact

    def counting(*args: object, **kw: object) -> bool:
        calls[0] += 1
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(attestation_module, "verify_compact", counting)
    return calls


def test_signature_checked_once_then_only_time_and_key(usa: FakeNode, counted: list[int]) -> None:
    pins = {"USA": usa.pinned()}
    acceptor = AttestationAcceptor(lambda: pins)
    token = _token(usa)
    for i in range(5):
        att = acceptor.accept(token, dpop_jkt=DPOP, now=NOW + timedelta(seconds=i))
        assert att.person.person_id == "usa-eng-bob"
    assert counted[0] == 1


def test_cached_attestation_with_another_dpop_key_is_refused(usa: FakeNode) -> None:
    pins = {"USA": usa.pinned()}
    acceptor = AttestationAcceptor(lambda: pins)
    token = _token(usa)
    acceptor.accept(token, dpop_jkt=DPOP, now=NOW)
    with pytest.raises(AttestationRefused) as refused:
        acceptor.accept(token, dpop_jkt="B" * 43, now=NOW)  # a thief's key
    assert refused.value.refusal.code == "attestation_wrong_key"


def test_cached_attestation_refused_once_expired(usa: FakeNode) -> None:
    pins = {"USA": usa.pinned()}
    acceptor = AttestationAcceptor(lambda: pins)
    token = _token(usa)
    acceptor.accept(token, dpop_jkt=DPOP, now=NOW)
    with pytest.raises(AttestationRefused) as refused:
        acceptor.accept(token, dpop_jkt=DPOP, now=NOW + timedelta(minutes=8))
    assert refused.value.refusal.code == "attestation_expired"


def test_cached_attestation_refused_after_its_node_is_untrusted(usa: FakeNode) -> None:
    pins = {"USA": usa.pinned()}
    acceptor = AttestationAcceptor(lambda: pins)
    token = _token(usa)
    acceptor.accept(token, dpop_jkt=DPOP, now=NOW)
    pins.clear()  # the security officer untrusts USA
    with pytest.raises(AttestationRefused) as refused:
        acceptor.accept(token, dpop_jkt=DPOP, now=NOW)
    assert refused.value.refusal.code == "attestation_unpinned"


def test_cached_attestation_verified_afresh_after_the_pin_changes(
    usa: FakeNode, counted: list[int]
) -> None:
    """A rotation of the attestation keys (a descriptor update) drops what was
    verified under the old descriptor: the old key's attestations are forged now."""
    pins = {"USA": usa.pinned()}
    acceptor = AttestationAcceptor(lambda: pins)
    token = _token(usa)
    acceptor.accept(token, dpop_jkt=DPOP, now=NOW)
    rotated = FakeNode("USA", node_key=usa.node_key)  # same node key, new attestation key
    pins["USA"] = rotated.pinned()
    with pytest.raises(AttestationRefused) as refused:
        acceptor.accept(token, dpop_jkt=DPOP, now=NOW)
    assert refused.value.refusal.code == "attestation_forged"
    assert counted[0] == 2
