"""Node descriptors: nothing trusted on first use, rotation only by the pinned key."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from relto.federation import (
    PinnedNode,
    SigningKey,
    verify_descriptor,
)
from relto.federation._keys import sign_compact
from relto.federation.errors import (
    DescriptorNotCurrent,
    InvalidDescriptor,
    NationChanged,
    UntrustedDescriptor,
)

from .conftest import NOW, FakeNode


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _pin(node: FakeNode, token: str) -> PinnedNode:
    d = verify_descriptor(token, None, NOW, fingerprint=node.node_key.fingerprint)
    return PinnedNode(d, token, NOW, "test")


def test_descriptor_pinned_by_out_of_band_fingerprint(gbr: FakeNode) -> None:
    d = verify_descriptor(gbr.descriptor(), None, NOW, fingerprint=gbr.node_key.fingerprint)
    assert d.nation == "GBR" and d.base_url == "https://relto.gbr.example"
    assert d.fingerprint == gbr.node_key.fingerprint and d.previous is None
    assert d.attestation_key("att-1") is not None and d.kas_keys[0].kid == "kas-ec-1"


def test_descriptor_with_another_fingerprint_not_trusted_on_first_use(
    gbr: FakeNode, usa: FakeNode
) -> None:
    with pytest.raises(UntrustedDescriptor, match="out of band"):
        verify_descriptor(gbr.descriptor(), None, NOW, fingerprint=usa.node_key.fingerprint)


def test_impostor_naming_the_pinned_key_but_signing_with_its_own_refused(gbr: FakeNode) -> None:
    impostor = SigningKey.generate()
    token = gbr.descriptor(signing_key=impostor)  # names gbr's key, signed by another
    with pytest.raises(UntrustedDescriptor):
        verify_descriptor(token, None, NOW, fingerprint=gbr.node_key.fingerprint)


def test_forged_signature_refused(gbr: FakeNode) -> None:
    token = gbr.descriptor()
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    with pytest.raises(UntrustedDescriptor):
        verify_descriptor(forged, None, NOW, fingerprint=gbr.node_key.fingerprint)


def test_tampered_claims_refused(gbr: FakeNode) -> None:
    token = gbr.descriptor()
    head, _, sig = token.split(".")
    claims = {**_claims(token), "iss": "https://evil.example"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(UntrustedDescriptor):
        verify_descriptor(
            f"{head}.{payload}.{sig}", None, NOW, fingerprint=gbr.node_key.fingerprint
        )


def test_renewal_signed_by_pinned_key_accepted(gbr: FakeNode) -> None:
    pinned = _pin(gbr, gbr.descriptor())
    later = NOW + timedelta(days=1)
    d = verify_descriptor(gbr.descriptor(at=later), pinned, later)
    assert d.issued_at == later and d.previous is None


def test_update_signed_by_old_key_rotates_node_key(gbr: FakeNode) -> None:
    pinned = _pin(gbr, gbr.descriptor())
    old_key, gbr.node_key = gbr.node_key, SigningKey.generate()
    later = NOW + timedelta(days=1)
    token = gbr.descriptor(at=later, signing_key=old_key)
    d = verify_descriptor(token, pinned, later)
    assert d.fingerprint == gbr.node_key.fingerprint
    assert d.previous == old_key.fingerprint


def test_update_signed_by_a_stranger_refused(gbr: FakeNode) -> None:
    pinned = _pin(gbr, gbr.descriptor())
    stranger = SigningKey.generate()
    gbr.node_key = stranger
    later = NOW + timedelta(days=1)
    with pytest.raises(UntrustedDescriptor, match="pinned GBR node"):
        verify_descriptor(gbr.descriptor(at=later), pinned, later)


def test_rotated_descriptor_is_no_initial_pin(gbr: FakeNode) -> None:
    old_key, gbr.node_key = gbr.node_key, SigningKey.generate()
    token = gbr.descriptor(signing_key=old_key)
    with pytest.raises(UntrustedDescriptor):
        verify_descriptor(token, None, NOW, fingerprint=gbr.node_key.fingerprint)


def test_update_changing_nation_refused(gbr: FakeNode) -> None:
    pinned = _pin(gbr, gbr.descriptor())
    later = NOW + timedelta(days=1)
    token = gbr.descriptor(at=later, nation="USA")
    with pytest.raises(NationChanged):
        verify_descriptor(token, pinned, later)


def test_rollback_to_an_older_descriptor_refused(gbr: FakeNode) -> None:
    older = gbr.descriptor(at=NOW - timedelta(days=1))
    pinned = _pin(gbr, gbr.descriptor())
    with pytest.raises(DescriptorNotCurrent, match="not after the pinned"):
        verify_descriptor(older, pinned, NOW)


def test_expired_descriptor_refused_beyond_clock_skew(gbr: FakeNode) -> None:
    token = gbr.descriptor(at=NOW - timedelta(days=31), valid=timedelta(days=30))
    fp = gbr.node_key.fingerprint
    with pytest.raises(DescriptorNotCurrent, match="clock skew"):
        verify_descriptor(token, None, NOW, fingerprint=fp)


def test_expiry_within_two_minutes_of_skew_tolerated(gbr: FakeNode) -> None:
    token = gbr.descriptor(at=NOW - timedelta(days=30), valid=timedelta(days=30))
    fp = gbr.node_key.fingerprint
    verify_descriptor(token, None, NOW + timedelta(seconds=119), fingerprint=fp)
    with pytest.raises(DescriptorNotCurrent, match="clock skew"):
        verify_descriptor(token, None, NOW + timedelta(seconds=121), fingerprint=fp)


def test_descriptor_from_the_future_refused_beyond_clock_skew(gbr: FakeNode) -> None:
    fp = gbr.node_key.fingerprint
    verify_descriptor(gbr.descriptor(at=NOW + timedelta(seconds=119)), None, NOW, fingerprint=fp)
    with pytest.raises(DescriptorNotCurrent, match="clock skew"):
        verify_descriptor(
            gbr.descriptor(at=NOW + timedelta(seconds=121)), None, NOW, fingerprint=fp
        )


def test_unknown_field_refused_even_when_signed(gbr: FakeNode) -> None:
    claims = {**_claims(gbr.descriptor()), "admin": True}
    header = {"typ": "relto-node+jwt", "kid": gbr.node_key.fingerprint}
    token = sign_compact(gbr.node_key, header, claims)
    with pytest.raises(InvalidDescriptor, match="does not know"):
        verify_descriptor(token, None, NOW, fingerprint=gbr.node_key.fingerprint)


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256"])
def test_disallowed_algorithms_refused(gbr: FakeNode, alg: str) -> None:
    token = gbr.descriptor()
    header = {"alg": alg, "typ": "relto-node+jwt", "kid": gbr.node_key.fingerprint}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    _, payload, sig = token.split(".")
    with pytest.raises(InvalidDescriptor, match="not allowed"):
        verify_descriptor(
            f"{head}.{payload}.{sig}", None, NOW, fingerprint=gbr.node_key.fingerprint
        )


def test_attestation_token_is_not_a_descriptor(gbr: FakeNode) -> None:
    header = {"typ": "relto-attestation+jwt", "kid": gbr.node_key.fingerprint}
    token = sign_compact(gbr.node_key, header, _claims(gbr.descriptor()))
    with pytest.raises(InvalidDescriptor, match="typ"):
        verify_descriptor(token, None, NOW, fingerprint=gbr.node_key.fingerprint)


@pytest.mark.parametrize(
    "url",
    ["http://relto.gbr.example", "https://user@relto.gbr.example", "https://x/?q=1", "ftp://x"],
)
def test_base_url_must_be_https_or_loopback_http(gbr: FakeNode, url: str) -> None:
    with pytest.raises(ValueError):
        gbr.descriptor(base_url=url)
    gbr.descriptor(base_url="http://127.0.0.1:8080")


def test_node_key_is_not_also_an_attestation_key(gbr: FakeNode) -> None:
    from relto.federation import AttestationKey

    with pytest.raises(ValueError, match="node key"):
        gbr.descriptor(attestation_keys=[AttestationKey("a", gbr.node_key.public)])


def test_misuse_without_pin_or_fingerprint_is_a_value_error(gbr: FakeNode) -> None:
    with pytest.raises(ValueError):
        verify_descriptor(gbr.descriptor(), None, NOW)
