"""Raw cryptographic primitives of the ZTDF format.

.. danger::

    This module is DANGEROUS TO USE DIRECTLY. It performs no policy checks, no
    integrity bookkeeping and no error translation: a caller that forgets to
    verify a policy binding, reuses a key across containers or decrypts before
    verifying will leak data. Use :func:`relto.ztdf.protect` and
    :func:`relto.ztdf.open_container` instead. It exists for the container code
    and for the key access service (``relto.kas``), which must unwrap key shares
    and check policy bindings exactly as OpenTDF does.

What is here, each exactly as OpenTDF's Go SDK (``lib/ocrypto``, ``sdk/tdf.go``)
does it:

- AES-256-GCM segments laid out ``IV(12) || ciphertext || tag(16)``, random IVs,
  also written and read in place (:class:`SegmentCipher`) for the streaming path;
- RSA-OAEP with SHA-1 and MGF1-SHA-1 key wrapping (``wrapped``, ``rsa:2048``);
- EC key wrapping (``ec-wrapped``): ECDH between an ephemeral key on the
  recipient's curve and the recipient's key, HKDF-SHA256 with salt
  ``SHA256(b"TDF")`` and empty info to a 32-byte key, then AES-256-GCM as above;
  the ephemeral public key travels as an SPKI PEM;
- the policy binding: ``base64(hex(HMAC-SHA256(key share, base64 policy)))``;
  verification also accepts the raw (non-hex) form some writers produce;
- the key split: one random 32-byte share per split id, DEK = XOR of the shares;
- HS256 root signatures and segment hashes (GMAC = the GCM tag), hex before
  base64 in the legacy (pre-4.3.0) format.

And, for the key access service's key store (not part of the format): sealing
secrets at rest with AES-256-GCM under a passphrase-derived key
(:func:`scrypt_key`, :class:`SealingCipher`), the associated data binding each
sealed secret to what it is.

Errors: failures raise :class:`relto.ztdf.errors.CryptoError` with a message
that never contains key material; misuse (wrong sizes) raises ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from relto.ztdf.errors import CryptoError

__all__ = [
    "GCM_IV_SIZE",
    "GCM_TAG_SIZE",
    "KEY_SIZE",
    "SEGMENT_OVERHEAD",
    "TDF_SALT",
    "SealingCipher",
    "SegmentCipher",
    "compute_policy_binding",
    "decrypt_segment",
    "derive_ec_wrap_key",
    "ec_unwrap",
    "ec_wrap",
    "encrypt_segment",
    "gcm_decrypt",
    "gcm_encrypt",
    "hs256",
    "join_key_shares",
    "load_private_key",
    "load_public_key",
    "new_key_share",
    "public_key_pem",
    "resplit_key",
    "root_signature",
    "rsa_unwrap",
    "rsa_wrap",
    "scrypt_key",
    "segment_hash",
    "split_key",
    "tdf_wrap_key_from_shared",
    "verify_policy_binding",
    "verify_root_signature",
]

#: AES-256 key size in bytes (DEK and each key share).
KEY_SIZE: Final = 32
#: GCM nonce size used by every OpenTDF SDK.
GCM_IV_SIZE: Final = 12
#: GCM authentication tag size.
GCM_TAG_SIZE: Final = 16
#: Bytes an encrypted segment has beyond its plaintext.
SEGMENT_OVERHEAD: Final = GCM_IV_SIZE + GCM_TAG_SIZE
#: HKDF salt of the EC key wrap: SHA-256 of the ASCII bytes ``TDF``.
TDF_SALT: Final = hashlib.sha256(b"TDF").digest()

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_RSA_OAEP: Final = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303 - mandated by the format
    algorithm=hashes.SHA1(),  # noqa: S303 - mandated by the format
    label=None,
)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise ValueError("an AES-256 key must be 32 bytes")


# --------------------------------------------------------------------- AES-GCM


def gcm_encrypt(key: bytes, plaintext: bytes, *, iv: bytes | None = None) -> bytes:
    """AES-256-GCM encrypt to ``IV || ciphertext || tag`` with a random IV.

    ``iv`` exists for known-answer tests only; never pass it otherwise.
    """
    _check_key(key)
    nonce = os.urandom(GCM_IV_SIZE) if iv is None else iv
    if len(nonce) != GCM_IV_SIZE:
        raise ValueError("the GCM IV must be 12 bytes")
    return nonce + AESGCM(bytes(key)).encrypt(nonce, plaintext, None)


def gcm_decrypt(key: bytes, blob: bytes) -> bytes:
    """Decrypt ``IV || ciphertext || tag``; raises :class:`CryptoError` on any mismatch."""
    _check_key(key)
    if len(blob) < SEGMENT_OVERHEAD:
        raise CryptoError("ciphertext too short")
    try:
        return AESGCM(bytes(key)).decrypt(blob[:GCM_IV_SIZE], blob[GCM_IV_SIZE:], None)
    except InvalidTag:
        raise CryptoError("authentication tag mismatch") from None


class SegmentCipher:
    """AES-256-GCM over payload segments with one key (reuses the key schedule).

    Each call draws a fresh random IV: at most 2^32 segments per key, far more than
    a 64 GiB container with 16 KiB segments needs.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._aead = AESGCM(bytes(key))

    def encrypt(self, plaintext: bytes) -> bytes:
        """Return ``IV || ciphertext || tag``."""
        nonce = os.urandom(GCM_IV_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, blob: bytes | memoryview) -> bytes:
        """Verify the tag and return the plaintext; :class:`CryptoError` otherwise."""
        if len(blob) < SEGMENT_OVERHEAD:
            raise CryptoError("segment too short")
        view = memoryview(blob)
        try:
            return self._aead.decrypt(bytes(view[:GCM_IV_SIZE]), view[GCM_IV_SIZE:], None)
        except InvalidTag:
            raise CryptoError("segment authentication tag mismatch") from None

    def encrypt_into(self, plaintext: bytes | memoryview, out: memoryview) -> int:
        """Write ``IV || ciphertext || tag`` into ``out`` without copying; return its length.

        ``out`` must hold at least ``len(plaintext) + SEGMENT_OVERHEAD`` bytes; only
        that many are written. The IV is drawn here, never by the caller.
        """
        end = GCM_IV_SIZE + len(plaintext) + GCM_TAG_SIZE
        if len(out) < end:
            raise ValueError("the output buffer is too small for the encrypted segment")
        nonce = os.urandom(GCM_IV_SIZE)
        out[:GCM_IV_SIZE] = nonce
        self._aead.encrypt_into(nonce, plaintext, None, out[GCM_IV_SIZE:end])
        return end

    def decrypt_into(self, blob: bytes | memoryview, out: memoryview) -> int:
        """Verify ``IV || ciphertext || tag`` and write the plaintext into ``out``.

        Returns the plaintext length (``len(blob) - SEGMENT_OVERHEAD``); ``out`` must
        hold at least that many bytes. :class:`CryptoError` if the tag does not
        verify, in which case the bytes of ``out`` are unspecified and must not be
        used.
        """
        if len(blob) < SEGMENT_OVERHEAD:
            raise CryptoError("segment too short")
        size = len(blob) - SEGMENT_OVERHEAD
        if len(out) < size:
            raise ValueError("the output buffer is too small for the decrypted segment")
        view = memoryview(blob)
        try:
            self._aead.decrypt_into(bytes(view[:GCM_IV_SIZE]), view[GCM_IV_SIZE:], None, out[:size])
        except InvalidTag:
            raise CryptoError("segment authentication tag mismatch") from None
        return size


def encrypt_segment(key: bytes, plaintext: bytes) -> bytes:
    """Encrypt one payload segment to ``IV || ciphertext || tag``."""
    return gcm_encrypt(key, plaintext)


def decrypt_segment(key: bytes, blob: bytes) -> bytes:
    """Decrypt one payload segment; :class:`CryptoError` if it does not verify."""
    return gcm_decrypt(key, blob)


# --------------------------------------------------------------- key handling


def load_public_key(pem: str | bytes) -> PublicKey:
    """Load an RSA or EC public key from PEM (SPKI) or an X.509 certificate PEM."""
    data = pem.encode() if isinstance(pem, str) else bytes(pem)
    try:
        key: object
        if b"BEGIN CERTIFICATE" in data:
            from cryptography import x509

            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise CryptoError("not a valid public key PEM") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CryptoError("unsupported public key type (RSA or EC expected)")
    return key


def load_private_key(pem: str | bytes, password: bytes | None = None) -> PrivateKey:
    """Load an RSA or EC private key from PEM (PKCS#8 or traditional)."""
    data = pem.encode() if isinstance(pem, str) else bytes(pem)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError):
        raise CryptoError("not a valid private key PEM") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CryptoError("unsupported private key type (RSA or EC expected)")
    return key


def public_key_pem(key: PublicKey | PrivateKey) -> str:
    """The SPKI PEM of a public key (of a private key's public half)."""
    pub = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _as_public(key: PublicKey | str | bytes) -> PublicKey:
    return (
        key
        if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        else load_public_key(key)
    )


def _as_private(key: PrivateKey | str | bytes) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    return load_private_key(key)


# -------------------------------------------------------------------- RSA wrap


def rsa_wrap(public_key: rsa.RSAPublicKey | str | bytes, data: bytes) -> bytes:
    """RSA-OAEP (SHA-1, MGF1-SHA-1) encrypt ``data`` (a key share) to ``public_key``."""
    key = _as_public(public_key)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("rsa_wrap needs an RSA public key")
    if key.key_size < 2048:
        raise ValueError("RSA keys shorter than 2048 bits are refused")
    return key.encrypt(data, _RSA_OAEP)


def rsa_unwrap(private_key: rsa.RSAPrivateKey | str | bytes, wrapped: bytes) -> bytes:
    """RSA-OAEP (SHA-1, MGF1-SHA-1) decrypt; :class:`CryptoError` if it fails."""
    key = _as_private(private_key)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("rsa_unwrap needs an RSA private key")
    if len(wrapped) != (key.key_size + 7) // 8:
        raise CryptoError("wrapped key has the wrong length for this RSA key")
    try:
        return key.decrypt(wrapped, _RSA_OAEP)
    except ValueError:
        raise CryptoError("RSA-OAEP unwrap failed") from None


# --------------------------------------------------------------------- EC wrap


def derive_ec_wrap_key(
    private_key: ec.EllipticCurvePrivateKey, peer_public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """ECDH then HKDF-SHA256 (salt ``SHA256(b"TDF")``, empty info) to 32 bytes.

    This is the key both the ``ec-wrapped`` key access entries and the KAS rewrap
    response to an EC client key are encrypted with.
    """
    if private_key.curve.name != peer_public_key.curve.name:
        raise CryptoError("EC keys are on different curves")
    try:
        shared = private_key.exchange(ec.ECDH(), peer_public_key)
    except ValueError:
        raise CryptoError("ECDH failed") from None
    return tdf_wrap_key_from_shared(shared)


def tdf_wrap_key_from_shared(shared: bytes) -> bytes:
    """HKDF-SHA256 (salt ``SHA256(b"TDF")``, empty info) of an ECDH shared secret to 32 bytes.

    The second half of :func:`derive_ec_wrap_key`, for a caller whose private key
    lives elsewhere (the key access service's key store performs the ECDH).
    """
    if not isinstance(shared, bytes | bytearray) or not shared:
        raise ValueError("the ECDH shared secret must be non-empty bytes")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=TDF_SALT, info=b"").derive(
        bytes(shared)
    )


def ec_wrap(public_key: ec.EllipticCurvePublicKey | str | bytes, data: bytes) -> tuple[str, bytes]:
    """Wrap ``data`` for an EC recipient; returns ``(ephemeral public key PEM, wrapped)``.

    ``wrapped`` is ``IV || ciphertext || tag`` under the derived key.
    """
    key = _as_public(public_key)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("ec_wrap needs an EC public key")
    ephemeral = ec.generate_private_key(key.curve)
    wrap_key = derive_ec_wrap_key(ephemeral, key)
    return public_key_pem(ephemeral), gcm_encrypt(wrap_key, data)


def ec_unwrap(
    private_key: ec.EllipticCurvePrivateKey | str | bytes,
    ephemeral_public_key: ec.EllipticCurvePublicKey | str | bytes,
    wrapped: bytes,
) -> bytes:
    """Undo :func:`ec_wrap`; :class:`CryptoError` if anything does not verify."""
    key = _as_private(private_key)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("ec_unwrap needs an EC private key")
    peer = _as_public(ephemeral_public_key)
    if not isinstance(peer, ec.EllipticCurvePublicKey):
        raise CryptoError("ephemeral public key is not an EC key")
    return gcm_decrypt(derive_ec_wrap_key(key, peer), wrapped)


# -------------------------------------------------------------- policy binding


def hs256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under ``key`` (raw 32 bytes)."""
    return hmac.new(bytes(key), data, hashlib.sha256).digest()


def compute_policy_binding(key_share: bytes, policy_b64: str | bytes) -> str:
    """``policyBinding.hash`` as the Go SDK writes it: base64 of the hex HMAC."""
    policy = policy_b64.encode("ascii") if isinstance(policy_b64, str) else bytes(policy_b64)
    mac_hex = hs256(key_share, policy).hex().encode("ascii")
    return base64.b64encode(mac_hex).decode("ascii")


def verify_policy_binding(key_share: bytes, policy_b64: str | bytes, binding_hash: str) -> bool:
    """Check ``policyBinding.hash`` against the share; constant-time comparison.

    Accepts the hex-then-base64 form every current SDK writes and the raw
    base64(HMAC) form. Anything that does not decode simply does not verify.
    """
    policy = policy_b64.encode("ascii") if isinstance(policy_b64, str) else bytes(policy_b64)
    expected = hs256(key_share, policy)
    try:
        given = base64.b64decode(binding_hash.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    if len(given) == 2 * len(expected):
        return hmac.compare_digest(given.lower(), expected.hex().encode("ascii"))
    return hmac.compare_digest(given, expected)


# ------------------------------------------------------------------- key split


def new_key_share() -> bytes:
    """A fresh random 32-byte key share."""
    return os.urandom(KEY_SIZE)


def join_key_shares(shares: Iterable[bytes]) -> bytes:
    """The DEK: XOR of all key shares (one per split id)."""
    acc = 0
    count = 0
    for share in shares:
        if len(share) != KEY_SIZE:
            raise CryptoError("a key share is not 32 bytes")
        acc ^= int.from_bytes(share, "big")
        count += 1
    if count == 0:
        raise ValueError("at least one key share is needed")
    return acc.to_bytes(KEY_SIZE, "big")


def split_key(split_ids: Sequence[str]) -> tuple[bytes, dict[str, bytes]]:
    """Draw one share per distinct split id; returns ``(DEK, {sid: share})``."""
    shares: dict[str, bytes] = {}
    for sid in split_ids:
        if sid not in shares:
            shares[sid] = new_key_share()
    return join_key_shares(shares.values()), shares


def resplit_key(dek: bytes, split_ids: Sequence[str]) -> dict[str, bytes]:
    """Split an existing ``dek`` into one share per distinct split id (``{sid:
    share}``, XOR = ``dek``): every share but the last fresh and random, the last
    ``dek`` XOR the others. For a writer that learns its key access servers only
    after the payload is encrypted (a streamed upload whose form names them)."""
    if len(dek) != KEY_SIZE:
        raise CryptoError("the DEK is not 32 bytes")
    order = list(dict.fromkeys(split_ids))
    if not order:
        raise ValueError("at least one split id is needed")
    shares = {sid: new_key_share() for sid in order[:-1]}
    rest = join_key_shares([dek, *shares.values()]) if shares else dek
    shares[order[-1]] = rest
    return shares


# --------------------------------------------------------- integrity (HS256/GMAC)


def segment_hash(
    key: bytes, encrypted_segment: bytes | memoryview, alg: str, *, legacy: bool
) -> bytes:
    """The bytes a segment's ``hash`` is the base64 of.

    ``GMAC``: the segment's GCM tag; ``HS256``: HMAC-SHA256 of the whole encrypted
    segment. In the legacy format (no ``schemaVersion``) the hex text of either.
    """
    if alg.upper() == "GMAC":
        if len(encrypted_segment) < GCM_TAG_SIZE:
            raise CryptoError("segment too short")
        raw = bytes(encrypted_segment[-GCM_TAG_SIZE:])
    elif alg.upper() == "HS256":
        raw = hs256(key, bytes(encrypted_segment))
    else:
        raise CryptoError("unsupported segment hash algorithm")
    return raw.hex().encode("ascii") if legacy else raw


def root_signature(key: bytes, aggregate: bytes, alg: str, *, legacy: bool) -> str:
    """``rootSignature.sig``: base64(HS256(DEK, concatenated segment hashes)).

    With ``GMAC`` the Go SDK uses the last 16 bytes of the aggregate instead.
    """
    if alg.upper() == "HS256":
        raw = hs256(key, aggregate)
    elif alg.upper() == "GMAC":
        if len(aggregate) < GCM_TAG_SIZE:
            raise CryptoError("aggregate too short for GMAC")
        raw = aggregate[-GCM_TAG_SIZE:]
    else:
        raise CryptoError("unsupported root signature algorithm")
    out = raw.hex().encode("ascii") if legacy else raw
    return base64.b64encode(out).decode("ascii")


def verify_root_signature(
    key: bytes, aggregate: bytes, alg: str, sig: str, *, legacy: bool
) -> bool:
    """Constant-time check of ``rootSignature.sig``."""
    expected = root_signature(key, aggregate, alg, legacy=legacy)
    return hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii", "replace"))


# ------------------------------------------------------------ sealing at rest


def scrypt_key(passphrase: bytes, salt: bytes, *, n: int, r: int, p: int) -> bytes:
    """scrypt (RFC 7914) of ``passphrase`` to a 32-byte AES-256 key.

    The cost parameters travel with what was sealed (the key store file records
    them), so they are arguments; invalid ones (``n`` not a power of two above 1,
    non-positive ``r`` or ``p``) raise ``ValueError``.
    """
    if not salt:
        raise ValueError("scrypt needs a salt")
    return Scrypt(salt=bytes(salt), length=KEY_SIZE, n=n, r=r, p=p).derive(bytes(passphrase))


class SealingCipher:
    """AES-256-GCM with one key and mandatory associated data, for secrets at rest.

    A sealed blob is ``IV(12) || ciphertext || tag(16)`` with a random IV; the
    associated data (what the secret is, e.g. a key id and algorithm) is not
    stored, so a blob moved to another record does not open.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._aead = AESGCM(bytes(key))

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` bound to ``associated_data``."""
        nonce = os.urandom(GCM_IV_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def unseal(self, blob: bytes, associated_data: bytes) -> bytes:
        """Undo :meth:`seal`; :class:`CryptoError` if the blob or the data do not match."""
        if len(blob) < SEGMENT_OVERHEAD:
            raise CryptoError("sealed data too short")
        try:
            return self._aead.decrypt(blob[:GCM_IV_SIZE], blob[GCM_IV_SIZE:], associated_data)
        except InvalidTag:
            raise CryptoError("sealed data does not open") from None
