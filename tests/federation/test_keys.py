"""Key fingerprints (RFC 7638) and the compact JWS splitter."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey

from relto.federation import PublicJwk, SigningKey, jwk_thumbprint
from relto.federation._keys import split_compact

#: RFC 7638 section 3.1: the example RSA key and its thumbprint.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2"
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
    "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_rfc7638_thumbprint_known_answer() -> None:
    assert jwk_thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_fingerprint_is_sha256_prefix_and_the_jose_thumbprint() -> None:
    key = SigningKey.generate()
    joserfc_thumbprint = OKPKey.import_key(key.public.as_dict()).thumbprint()
    assert key.fingerprint == "SHA256:" + joserfc_thumbprint
    p256 = SigningKey.generate("P-256")
    assert p256.public.kty == "EC" and p256.fingerprint.startswith("SHA256:")


def test_private_key_where_a_public_one_is_due_refused() -> None:
    with pytest.raises(ValueError, match="private"):
        PublicJwk.from_dict(SigningKey.generate().private_jwk())


def test_point_off_the_curve_refused() -> None:
    good = SigningKey.generate("P-256").public.as_dict()
    with pytest.raises(ValueError):
        PublicJwk.from_dict({**good, "y": good["x"]})


def test_signing_key_repr_shows_no_secret() -> None:
    key = SigningKey.generate()
    assert key.private_jwk()["d"] not in repr(key)


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.hex())))
def test_splitter_refuses_garbage_with_value_error_only(text: str) -> None:
    with pytest.raises(ValueError):
        split_compact(text, typ="relto-node+jwt", header_members=frozenset({"alg", "typ"}))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "jwk", "x"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20)),
    ),
    st.dictionaries(st.text(max_size=10), st.integers(), max_size=5),
)
def test_splitter_accepts_only_allowed_headers(
    header: dict[str, object], claims: dict[str, int]
) -> None:
    token = f"{_b64(header)}.{_b64(claims)}.AAAA"
    allowed = frozenset({"alg", "typ", "kid"})
    try:
        parts = split_compact(token, typ="t+jwt", header_members=allowed)
    except ValueError:
        return
    assert parts.header["alg"] in {"Ed25519", "EdDSA", "ES256"}
    assert parts.header["typ"] == "t+jwt" and set(parts.header) <= allowed
