"""Hazmat: sealing per-object tracing secrets for this node's KAS key, and opening
this node's own containers with its key store. Use it only through
:mod:`relto.tracing.service`, which records every use.

A tracing secret is sealed exactly as a container's key share is wrapped for a KAS:
RSA-OAEP (SHA-1, MGF1-SHA-1) for an RSA key, ECDH + HKDF-SHA256 + AES-256-GCM for an
EC key (:func:`relto.ztdf.hazmat.rsa_wrap`, :func:`~relto.ztdf.hazmat.ec_wrap`).
Only the key store holding the private key -- a sealed file or an HSM through
PKCS#11 -- can unseal it, and only through its private-key operation: the secret
is never stored in clear. A sealed secret handed to the KAS's rewrap as if it
were a key share is refused there, since nobody without the secret can compute
the policy binding it would need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from relto.kas.errors import KeyStoreError, UnknownKey
from relto.kas.keys import KeyStore
from relto.ztdf import KeyAccess, KeyAccessDenied, Unwrap, hazmat
from relto.ztdf.errors import CryptoError

__all__ = ["SECRET_BYTES", "SealedSecret", "SealingFailed", "reference_unwrap", "seal", "unseal"]

#: Length of a per-object tracing secret.
SECRET_BYTES = 32


class SealingFailed(Exception):
    """The secret could not be sealed or unsealed (no usable key, a key retired,
    a seal that does not open)."""


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A tracing secret wrapped for one KAS key: what is stored."""

    kid: str
    method: str  # "wrapped" (RSA-OAEP) | "ec-wrapped"
    wrapped: bytes
    ephemeral: str = ""  # the ephemeral public key (PEM) of an ec-wrapped seal


def _active(store: KeyStore) -> tuple[str, str]:
    for algorithm in ("rsa:2048", "ec:secp256r1"):
        try:
            info = store.active(algorithm)
        except UnknownKey:
            continue
        return info.kid, info.public_key_pem
    raise SealingFailed("the key access service has no active key to seal for")


def seal(store: KeyStore, secret: bytes) -> SealedSecret:
    """``secret`` wrapped for the store's active key (RSA preferred, else EC)."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a tracing secret is {SECRET_BYTES} bytes")
    kid, pem = _active(store)
    key = hazmat.load_public_key(pem)
    if isinstance(key, rsa.RSAPublicKey):
        return SealedSecret(kid, "wrapped", hazmat.rsa_wrap(key, secret))
    if isinstance(key, ec.EllipticCurvePublicKey):
        ephemeral, wrapped = hazmat.ec_wrap(key, secret)
        return SealedSecret(kid, "ec-wrapped", wrapped, ephemeral)
    raise SealingFailed("the active key is neither RSA nor EC")


def sealed_for_active(store: KeyStore, sealed: SealedSecret) -> bool:
    """Whether ``sealed`` is wrapped for the key new seals would use."""
    try:
        return sealed.kid == _active(store)[0]
    except SealingFailed:
        return True


def _open(store: KeyStore, kid: str, method: str, wrapped: bytes, ephemeral: str) -> bytes:
    try:
        if method == "wrapped":
            return store.rsa_decrypt(kid, wrapped)
        if method == "ec-wrapped":
            peer = hazmat.load_public_key(ephemeral)
            if not isinstance(peer, ec.EllipticCurvePublicKey):
                raise CryptoError("the ephemeral key is not an EC key")
            wrap_key = hazmat.tdf_wrap_key_from_shared(store.ecdh(kid, peer))
            return hazmat.gcm_decrypt(wrap_key, wrapped)
    except (KeyStoreError, CryptoError, ValueError) as exc:
        raise SealingFailed(f"the seal does not open: {type(exc).__name__}") from None
    raise SealingFailed(f"unknown seal method {method[:16]!r}")


def unseal(store: KeyStore, sealed: SealedSecret) -> bytes:
    """The secret, through the store's private-key operation; :class:`SealingFailed`
    if the key is gone (retired) or the seal does not open."""
    secret = _open(store, sealed.kid, sealed.method, sealed.wrapped, sealed.ephemeral)
    if len(secret) != SECRET_BYTES:
        raise SealingFailed("the sealed secret has the wrong length")
    return secret


def reference_unwrap(store: KeyStore, kas_url_is_own: Callable[[str], bool]) -> Unwrap:
    """An :data:`~relto.ztdf.Unwrap` for this node opening *its own* container for
    comparison with a leaked file (never for a person: nothing it opens is shown).
    Only key access entries of this node's KAS are unwrapped, and each share must
    match its policy binding; an object whose key is split with a partner's KAS
    cannot be opened this way (:class:`KeyAccessDenied`)."""

    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        if not kas_url_is_own(ka.url):
            raise KeyAccessDenied("a share held by another nation's key access service")
        try:
            wrapped = ka.wrapped_key_bytes()
            share = _open(store, ka.kid, ka.type, wrapped, ka.ephemeral_public_key)
        except (SealingFailed, ValueError):
            raise KeyAccessDenied("this node's key store did not open the share") from None
        if not hazmat.verify_policy_binding(share, policy_b64, ka.policy_binding.hash):
            raise KeyAccessDenied("policy binding does not match")
        return share

    return unwrap
