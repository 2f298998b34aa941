"""Signing keys, RFC 7638 thumbprints, and compact JWS: the hazmat of federation.

Dangerous to use directly: nothing here decides *which* key to trust. The
descriptor and attestation modules do, and call :func:`verify_compact` only with
a key they have already chosen from a pin.

- Signing keys are Ed25519 (JWS ``alg`` ``Ed25519``, RFC 9864; ``EdDSA`` is
  accepted on verification) or P-256 (``ES256``). Nothing else: no ``none``, no
  HMAC, no RSA.
- A key's *fingerprint* is ``SHA256:`` followed by its RFC 7638 JWK thumbprint
  (base64url SHA-256 of the canonical required members), the same value a DPoP
  ``cnf.jkt`` holds (ADR 0098).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

__all__ = [
    "ALGORITHMS",
    "CompactParts",
    "PublicJwk",
    "SigningKey",
    "b64url_decode",
    "b64url_encode",
    "fingerprint_matches",
    "jwk_thumbprint",
    "sign_compact",
    "split_compact",
    "verify_compact",
]

#: JWS algorithms accepted, with the key type and curve each needs.
ALGORITHMS: dict[str, tuple[str, str]] = {
    "Ed25519": ("OKP", "Ed25519"),
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
}
_SIGN_ALG = {"OKP": "Ed25519", "EC": "ES256"}
_REQUIRED = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_COORD_BYTES = {"Ed25519": 32, "P-256": 32}
#: The largest compact JWS accepted (descriptors with many keys stay far below).
MAX_TOKEN_BYTES = 64 * 1024

KeyKind = Literal["Ed25519", "P-256"]


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; ``ValueError`` otherwise."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def jwk_thumbprint(members: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a public JWK (RSA, EC or OKP)."""
    kty = members.get("kty")
    if not isinstance(kty, str) or kty not in _REQUIRED:
        raise ValueError("a JWK thumbprint needs kty RSA, EC or OKP")
    required = {}
    for name in _REQUIRED[kty]:
        value = members.get(name)
        if not isinstance(value, str):
            raise ValueError(f"a {kty} JWK needs the member {name!r}")
        required[name] = value
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class PublicJwk:
    """A public signing key: Ed25519 (``OKP``) or P-256 (``EC``)."""

    kty: str
    crv: str
    x: str
    y: str | None = None

    @classmethod
    def from_dict(cls, members: object) -> PublicJwk:
        """Parse a public JWK; ``ValueError`` for anything else (private parts too)."""
        if not isinstance(members, dict):
            raise ValueError("a key must be a JSON object (a JWK)")
        kty, crv = members.get("kty"), members.get("crv")
        allowed = {"OKP": {"kty", "crv", "x"}, "EC": {"kty", "crv", "x", "y"}}.get(str(kty))
        if allowed is None or (kty, crv) not in {("OKP", "Ed25519"), ("EC", "P-256")}:
            raise ValueError("a key must be an Ed25519 (OKP) or P-256 (EC) JWK")
        if "d" in members:
            raise ValueError("a public key was expected, the JWK holds a private key")
        if set(members) != allowed:
            raise ValueError(f"a {kty} JWK has exactly the members {sorted(allowed)}")
        coords = [members["x"], *([members["y"]] if kty == "EC" else [])]
        for c in coords:
            if not isinstance(c, str) or len(b64url_decode(c)) != _COORD_BYTES[str(crv)]:
                raise ValueError("a key coordinate is not the right length")
        key = cls(str(kty), str(crv), coords[0], coords[1] if kty == "EC" else None)
        try:
            key.joserfc()  # the point must be on the curve
        except (JoseError, ValueError, TypeError):
            raise ValueError("the key is not a valid point of its curve") from None
        return key

    def as_dict(self) -> dict[str, str]:
        out = {"kty": self.kty, "crv": self.crv, "x": self.x}
        if self.y is not None:
            out["y"] = self.y
        return out

    @property
    def thumbprint(self) -> str:
        return jwk_thumbprint(self.as_dict())

    @property
    def fingerprint(self) -> str:
        """``SHA256:<RFC 7638 thumbprint>``: what a security officer compares."""
        return "SHA256:" + self.thumbprint

    def joserfc(self) -> OKPKey | ECKey:
        """The key for joserfc, imported once per process (a pinned attestation key
        verifies every attestation rewrap: ~0.1 ms saved each time)."""
        return _import_public(self.kty, self.crv, self.x, self.y)


@functools.lru_cache(maxsize=256)
def _import_public(kty: str, crv: str, x: str, y: str | None) -> OKPKey | ECKey:
    members: dict[str, str | list[str]] = {"kty": kty, "crv": crv, "x": x}
    if y is not None:
        members["y"] = y
    if kty == "OKP":
        return OKPKey.import_key(members)
    return ECKey.import_key(members)


def fingerprint_matches(expected: str, key: PublicJwk) -> bool:
    """Constant-time comparison of a fingerprint given out of band with a key's."""
    return hmac.compare_digest(expected.strip().encode(), key.fingerprint.encode())


class SigningKey:
    """A private signing key (Ed25519 or P-256). Never printed, never logged."""

    def __init__(self, key: OKPKey | ECKey) -> None:
        if not key.is_private:
            raise ValueError("a signing key needs its private part")
        self._key = key
        self.public = PublicJwk.from_dict(key.as_dict(private=False))

    @classmethod
    def generate(cls, kind: KeyKind = "Ed25519") -> SigningKey:
        if kind == "Ed25519":
            return cls(OKPKey.generate_key("Ed25519"))
        if kind == "P-256":
            return cls(ECKey.generate_key("P-256"))
        raise ValueError("signing keys are Ed25519 or P-256")

    @classmethod
    def from_private_jwk(cls, members: Mapping[str, Any]) -> SigningKey:
        kty = members.get("kty")
        try:
            if kty == "OKP" and members.get("crv") == "Ed25519":
                return cls(OKPKey.import_key(dict(members)))
            if kty == "EC" and members.get("crv") == "P-256":
                return cls(ECKey.import_key(dict(members)))
        except (JoseError, ValueError, TypeError):
            raise ValueError("not a valid private JWK") from None
        raise ValueError("signing keys are Ed25519 (OKP) or P-256 (EC) JWKs")

    def private_jwk(self) -> dict[str, Any]:
        """The private JWK, for the key file only."""
        return dict(self._key.as_dict(private=True))

    @property
    def alg(self) -> str:
        return _SIGN_ALG[self.public.kty]

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def sign(self, header: Mapping[str, Any], payload: bytes) -> str:
        protected = {"alg": self.alg, **header}
        return jws.serialize_compact(protected, payload, self._key, algorithms=[self.alg])

    def __repr__(self) -> str:
        return f"SigningKey({self.fingerprint})"


def sign_compact(key: SigningKey, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """A compact JWS of ``claims`` (canonical JSON) with ``header`` plus ``alg``."""
    payload = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return key.sign(header, payload.encode("utf-8"))


@dataclass(frozen=True)
class CompactParts:
    """A compact JWS split and decoded, signature NOT verified yet."""

    token: str
    header: dict[str, Any]
    unverified_claims: dict[str, Any]


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate member {k[:40]!r}")
        out[k] = v
    return out


def split_compact(token: object, *, typ: str, header_members: frozenset[str]) -> CompactParts:
    """Split a compact JWS, check its header (``typ``, an allowed ``alg``, no other
    members than ``header_members``) and decode its claims without verifying them.
    ``ValueError`` with a sentence for anything malformed."""
    if not isinstance(token, str):
        raise ValueError("the token is not text")
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError("the token is not a compact JWS (three dot-separated parts)")
    header = _json_object(b64url_decode(parts[0]))
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise ValueError(
            f"algorithm {str(alg)[:20]!r} is not allowed (only {', '.join(sorted(ALGORITHMS))})"
        )
    if header.get("typ") != typ:
        raise ValueError(f"the token's typ is {str(header.get('typ'))[:40]!r}, not {typ!r}")
    extra = set(header) - header_members
    if extra:
        raise ValueError(f"the token's header has members this node does not know: {sorted(extra)}")
    claims = _json_object(b64url_decode(parts[1]))
    b64url_decode(parts[2])
    return CompactParts(token, header, claims)


def verify_compact(parts: CompactParts, key: PublicJwk) -> bool:
    """True when ``key`` signed ``parts`` with an allowed algorithm that fits it."""
    alg = str(parts.header["alg"])
    if ALGORITHMS[alg] != (key.kty, key.crv):
        return False
    try:
        result = jws.deserialize_compact(parts.token, key.joserfc(), algorithms=[alg])
    except (JoseError, ValueError):
        return False
    expected = parts.token.split(".")[1]
    return hmac.compare_digest(b64url_encode(result.payload), expected)
