"""Node descriptors: the signed statement a node makes about itself.

A descriptor is a compact JWS (``typ`` ``relto-node+jwt``) whose claims name the
node's nation, base URL, KAS public keys, transparency-log verifier key, witness
key, attestation keys and node key, with a validity window. It is signed by the
node key (a dedicated Ed25519 or P-256 key, not an attestation key; ADR 0098).

Nothing is trusted on first use. :func:`verify_descriptor` accepts a descriptor
only when

- *initial pin*: it is signed by its own node key, and that key's fingerprint
  (``SHA256:<RFC 7638 thumbprint>``) equals the one a security officer received
  out of band; or
- *update*: it is signed by the node key of the descriptor pinned now, names the
  same nation, and was issued later than the pinned one. An update that names a
  new node key (a rotation) carries the old key's fingerprint in ``previous``.

Times are checked with 2 minutes of clock skew tolerated either way; beyond it
the error says so. Unknown claims and header members are refused, never kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from relto.audit.errors import InvalidNote
from relto.audit.note import CosignatureVerifier, NoteVerifier, parse_verifier
from relto.config import is_loopback
from relto.federation._keys import (
    CompactParts,
    PublicJwk,
    SigningKey,
    fingerprint_matches,
    sign_compact,
    split_compact,
    verify_compact,
)
from relto.federation.errors import (
    DescriptorNotCurrent,
    InvalidDescriptor,
    NationChanged,
    UntrustedDescriptor,
)

__all__ = [
    "CLOCK_SKEW",
    "DESCRIPTOR_TYP",
    "MAX_DESCRIPTOR_VALIDITY",
    "AttestationKey",
    "KasKey",
    "NodeDescriptor",
    "PinnedNode",
    "check_base_url",
    "make_descriptor",
    "read_pinned_descriptor",
    "verify_descriptor",
]

DESCRIPTOR_TYP = "relto-node+jwt"
#: Clock difference tolerated between two nodes, either way.
CLOCK_SKEW = timedelta(minutes=2)
#: The longest a descriptor may be valid: a node renews it at least yearly.
MAX_DESCRIPTOR_VALIDITY = timedelta(days=400)
_MAX_KEYS = 16
_MAX_PEM = 4096
_MAX_URL = 512
_NATION = re.compile(r"[A-Z]{3}")
_KID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER = frozenset({"alg", "typ", "kid"})
_REQUIRED = frozenset(
    {"iss", "nation", "node_key", "kas_keys", "log_key", "witness_key", "attestation_keys",
     "iat", "exp", "previous"}
)  # fmt: skip
_KAS_ALGORITHMS = frozenset({"rsa:2048", "ec:secp256r1"})


@dataclass(frozen=True)
class KasKey:
    """One public key of the node's key access service."""

    kid: str
    algorithm: str
    public_key_pem: str


@dataclass(frozen=True)
class AttestationKey:
    """A key the node signs attestations of its own people with."""

    kid: str
    key: PublicJwk


@dataclass(frozen=True)
class NodeDescriptor:
    """What a node says about itself, once verified."""

    nation: str
    base_url: str
    node_key: PublicJwk
    kas_keys: tuple[KasKey, ...]
    log_key: str
    witness_key: str
    attestation_keys: tuple[AttestationKey, ...]
    issued_at: datetime
    not_after: datetime
    #: Fingerprint of the node key this descriptor replaces (a rotation), else None.
    previous: str | None = None

    @property
    def fingerprint(self) -> str:
        """The node key's fingerprint: what security officers compare out of band."""
        return self.node_key.fingerprint

    def attestation_key(self, kid: str) -> AttestationKey | None:
        return next((k for k in self.attestation_keys if k.kid == kid), None)


@dataclass(frozen=True)
class PinnedNode:
    """A partner node this node trusts: its verified descriptor, who pinned it, when."""

    descriptor: NodeDescriptor
    token: str
    pinned_at: datetime
    pinned_by: str

    @property
    def nation(self) -> str:
        return self.descriptor.nation

    @property
    def fingerprint(self) -> str:
        return self.descriptor.fingerprint


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _epoch(value: datetime) -> int:
    return int(_aware(value).timestamp())


def _when(value: object, name: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**40:
        raise InvalidDescriptor(f"the descriptor's {name} is not a time in seconds")
    return datetime.fromtimestamp(value, UTC)


def check_base_url(url: object) -> str:
    """An https URL, or http on a loopback host; no user, query or fragment."""
    if not isinstance(url, str) or not url or len(url) > _MAX_URL:
        raise ValueError("the base URL is missing or too long")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{url[:80]!r} is not a URL") from None
    host = parts.hostname or ""
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(f"{url[:80]!r}: http is allowed only on a loopback address; use https")
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{url[:80]!r} is not an https URL")
    if parts.username is not None or parts.query or parts.fragment or url != url.strip():
        raise ValueError(f"{url[:80]!r}: a base URL has no user, query or fragment")
    return url


def _check_nation(value: object) -> str:
    if not isinstance(value, str) or not _NATION.fullmatch(value):
        raise ValueError(f"{str(value)[:10]!r} is not an ISO 3166 alpha-3 code (e.g. GBR)")
    return value


def _check_kid(value: object) -> str:
    if not isinstance(value, str) or not _KID.fullmatch(value):
        raise ValueError("a key id is 1 to 128 letters, digits or . _ : -")
    return value


def _check_kas_key(key: KasKey) -> KasKey:
    _check_kid(key.kid)
    if key.algorithm not in _KAS_ALGORITHMS:
        raise ValueError(f"KAS key {key.kid}: algorithm is rsa:2048 or ec:secp256r1")
    if not isinstance(key.public_key_pem, str) or len(key.public_key_pem) > _MAX_PEM:
        raise ValueError(f"KAS key {key.kid}: not a PEM public key")
    try:
        public = load_pem_public_key(key.public_key_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        raise ValueError(f"KAS key {key.kid}: not a PEM public key") from None
    if key.algorithm == "rsa:2048":
        ok = isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048
    else:
        ok = isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    if not ok:
        raise ValueError(f"KAS key {key.kid}: the key is not {key.algorithm}")
    return key


def _check_verifier(vkey: object, kind: type[NoteVerifier] | type[CosignatureVerifier]) -> str:
    what = "transparency-log verifier" if kind is NoteVerifier else "witness (cosignature)"
    if not isinstance(vkey, str) or len(vkey) > 512:
        raise ValueError(f"the {what} key is not a note verifier key")
    try:
        parsed = parse_verifier(vkey)
    except InvalidNote as exc:
        raise ValueError(f"the {what} key is not a note verifier key: {exc}") from None
    if type(parsed) is not kind:
        raise ValueError(f"the {what} key has the wrong key type")
    return vkey


def _check(d: NodeDescriptor) -> NodeDescriptor:
    """Every rule a descriptor's content follows; ``ValueError`` with a sentence."""
    _check_nation(d.nation)
    check_base_url(d.base_url)
    if not isinstance(d.node_key, PublicJwk):
        raise ValueError("the node key must be a public JWK")
    for name, keys in (("KAS", d.kas_keys), ("attestation", d.attestation_keys)):
        if len(keys) > _MAX_KEYS:
            raise ValueError(f"more than {_MAX_KEYS} {name} keys")
        if len({k.kid for k in keys}) != len(keys):
            raise ValueError(f"two {name} keys share a key id")
    for kas in d.kas_keys:
        _check_kas_key(kas)
    if not d.attestation_keys:
        raise ValueError("a descriptor names at least one attestation key")
    for att in d.attestation_keys:
        _check_kid(att.kid)
        if att.key == d.node_key:
            raise ValueError("the node key is not an attestation key too (ADR 0098)")
    _check_verifier(d.log_key, NoteVerifier)
    _check_verifier(d.witness_key, CosignatureVerifier)
    if d.not_after <= d.issued_at:
        raise ValueError("a descriptor's not_after is after its issued_at")
    if d.not_after - d.issued_at > MAX_DESCRIPTOR_VALIDITY:
        raise ValueError(f"a descriptor is valid for {MAX_DESCRIPTOR_VALIDITY.days} days at most")
    if d.previous is not None and not d.previous.startswith("SHA256:"):
        raise ValueError("previous is a key fingerprint (SHA256:...)")
    return d


def _to_claims(d: NodeDescriptor) -> dict[str, Any]:
    return {
        "iss": d.base_url,
        "nation": d.nation,
        "node_key": d.node_key.as_dict(),
        "kas_keys": [
            {"kid": k.kid, "alg": k.algorithm, "pem": k.public_key_pem} for k in d.kas_keys
        ],
        "log_key": d.log_key,
        "witness_key": d.witness_key,
        "attestation_keys": [{"kid": k.kid, "jwk": k.key.as_dict()} for k in d.attestation_keys],
        "iat": _epoch(d.issued_at),
        "exp": _epoch(d.not_after),
        "previous": d.previous,
    }


def _object(value: object, members: set[str], what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) or set(value) != members:
        raise ValueError(f"each {what} has exactly the members {sorted(members)}")
    return value


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list) or len(value) > _MAX_KEYS:
        raise ValueError(f"{what} is a list of at most {_MAX_KEYS} keys")
    return value


def _from_claims(claims: Mapping[str, Any]) -> NodeDescriptor:
    """The descriptor in verified claims; InvalidDescriptor for anything off."""
    unknown = set(claims) - _REQUIRED
    if unknown:
        raise InvalidDescriptor(
            "the descriptor has fields this node does not know: "
            f"{[u[:40] for u in sorted(unknown)[:5]]}"
        )
    missing = _REQUIRED - set(claims)
    if missing:
        raise InvalidDescriptor(f"the descriptor lacks the fields {sorted(missing)}")
    try:
        kas = [
            _object(k, {"kid", "alg", "pem"}, "KAS key")
            for k in _list(claims["kas_keys"], "kas_keys")
        ]
        att = [
            _object(k, {"kid", "jwk"}, "attestation key")
            for k in _list(claims["attestation_keys"], "attestation_keys")
        ]
        previous = claims["previous"]
        if previous is not None and not isinstance(previous, str):
            raise ValueError("previous is a key fingerprint or null")
        descriptor = NodeDescriptor(
            nation=_check_nation(claims["nation"]),
            base_url=check_base_url(claims["iss"]),
            node_key=PublicJwk.from_dict(claims["node_key"]),
            kas_keys=tuple(KasKey(_check_kid(k["kid"]), str(k["alg"]), k["pem"]) for k in kas),
            log_key=claims["log_key"],
            witness_key=claims["witness_key"],
            attestation_keys=tuple(
                AttestationKey(_check_kid(k["kid"]), PublicJwk.from_dict(k["jwk"])) for k in att
            ),
            issued_at=_when(claims["iat"], "iat"),
            not_after=_when(claims["exp"], "exp"),
            previous=previous,
        )
        return _check(descriptor)
    except ValueError as exc:  # InvalidDescriptor is not a ValueError
        raise InvalidDescriptor(f"the descriptor is malformed: {exc}") from None


def make_descriptor(
    *,
    nation: str,
    base_url: str,
    node_key: PublicJwk,
    kas_keys: Sequence[KasKey],
    log_key: str,
    witness_key: str,
    attestation_keys: Sequence[AttestationKey],
    issued_at: datetime,
    not_after: datetime,
    signing_key: SigningKey,
) -> str:
    """Sign a descriptor. ``signing_key`` is the node key itself (a self-signed
    descriptor, for initial pins and renewals) or, for a rotation, the *old* node
    key, whose fingerprint then goes into ``previous``. ``ValueError`` on bad
    content."""
    descriptor = _check(
        NodeDescriptor(
            nation=nation,
            base_url=base_url,
            node_key=node_key,
            kas_keys=tuple(kas_keys),
            log_key=log_key,
            witness_key=witness_key,
            attestation_keys=tuple(attestation_keys),
            issued_at=_aware(issued_at).replace(microsecond=0),
            not_after=_aware(not_after).replace(microsecond=0),
            previous=None if signing_key.public == node_key else signing_key.fingerprint,
        )
    )
    header = {"typ": DESCRIPTOR_TYP, "kid": signing_key.fingerprint}
    return sign_compact(signing_key, header, _to_claims(descriptor))


def _split(token: object) -> CompactParts:
    try:
        return split_compact(token, typ=DESCRIPTOR_TYP, header_members=_HEADER)
    except ValueError as exc:
        raise InvalidDescriptor(f"not a node descriptor: {exc}") from None


def _check_time(d: NodeDescriptor, now: datetime) -> None:
    if d.issued_at > now + CLOCK_SKEW:
        raise DescriptorNotCurrent(
            f"the descriptor of {d.nation} is issued at {d.issued_at.isoformat()}, more than "
            f"{CLOCK_SKEW.seconds // 60} minutes ahead of this node's clock "
            f"({now.isoformat()}): check the clocks (clock skew)"
        )
    if d.not_after < now - CLOCK_SKEW:
        raise DescriptorNotCurrent(
            f"the descriptor of {d.nation} expired at {d.not_after.isoformat()}, more than "
            f"the {CLOCK_SKEW.seconds // 60} minutes of clock skew tolerated before "
            f"{now.isoformat()}: ask its node for a fresh one"
        )


def verify_descriptor(
    token: object,
    pinned: PinnedNode | None,
    now: datetime,
    *,
    fingerprint: str | None = None,
) -> NodeDescriptor:
    """Verify a descriptor as an initial pin (``pinned`` None, ``fingerprint`` the
    node key's fingerprint received out of band) or as an update of ``pinned``.

    Raises :class:`~relto.federation.errors.InvalidDescriptor` (or a subclass)
    with a sentence; ``ValueError`` when called with both or neither of
    ``pinned`` and ``fingerprint``.
    """
    now = _aware(now)
    if (pinned is None) == (fingerprint is None):
        raise ValueError("give the out-of-band fingerprint (initial pin) or the pinned node")
    parts = _split(token)
    if pinned is None:
        assert fingerprint is not None
        try:
            signer = PublicJwk.from_dict(parts.unverified_claims.get("node_key"))
        except ValueError as exc:
            raise InvalidDescriptor(f"the descriptor's node key is malformed: {exc}") from None
        if not fingerprint_matches(fingerprint, signer):
            raise UntrustedDescriptor(
                f"the descriptor's node key is {signer.fingerprint}, not the fingerprint "
                f"given out of band ({fingerprint.strip()[:60]}); nothing was trusted"
            )
    else:
        signer = pinned.descriptor.node_key
    if parts.header.get("kid") != signer.fingerprint or not verify_compact(parts, signer):
        whose = "the fingerprint given" if pinned is None else f"the pinned {pinned.nation} node"
        raise UntrustedDescriptor(
            f"the descriptor is not signed by the node key of {whose} ({signer.fingerprint})"
        )
    descriptor = _from_claims(parts.unverified_claims)
    _check_time(descriptor, now)
    if pinned is None:
        if descriptor.previous is not None:
            raise InvalidDescriptor(
                "an initial pin needs the node's self-signed descriptor, not a key rotation "
                "(previous is set)"
            )
        return descriptor
    old = pinned.descriptor
    if descriptor.nation != old.nation:
        raise NationChanged(
            f"the update names {descriptor.nation}, the pinned node is {old.nation}'s; "
            "a node never changes nation"
        )
    if descriptor.issued_at <= old.issued_at:
        raise DescriptorNotCurrent(
            f"the update is issued at {descriptor.issued_at.isoformat()}, not after the pinned "
            f"descriptor ({old.issued_at.isoformat()}): an old descriptor is not replayed"
        )
    rotated = descriptor.node_key != old.node_key
    if (descriptor.previous is not None or rotated) and descriptor.previous != old.fingerprint:
        raise InvalidDescriptor(
            "a descriptor that rotates the node key names the replaced key in previous "
            f"({old.fingerprint})"
        )
    return descriptor


def read_pinned_descriptor(token: str) -> NodeDescriptor:
    """The content of a descriptor this node verified when it was pinned (read back
    from its own store; the signature was checked then, possibly with an older key)."""
    return _from_claims(_split(token).unverified_claims)
