"""The caller's proof-of-possession key (RFC 9449 DPoP).

One key per person per session: its thumbprint is the ``cnf.jkt`` of their
access token and of every attestation their home node issues them, so a token
copied without the key is useless. :meth:`DpopKey.proof` makes the proof JWT for
one request.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import ECKey

__all__ = ["DpopKey", "htu"]

# the order of the P-256 group
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def htu(url: str) -> str:
    """The ``htu`` of a request to ``url``: the URL without query and fragment."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, p.path, "", ""))


def _ath(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class DpopKey:
    """An EC P-256 key that signs DPoP proofs (ES256)."""

    def __init__(self, key: ECKey) -> None:
        if not key.is_private:
            raise ValueError("a DPoP key needs its private half")
        self.key = key

    @classmethod
    def generate(cls) -> DpopKey:
        return cls(ECKey.generate_key("P-256", private=True))

    @classmethod
    def derived(cls, secret: bytes, label: str) -> DpopKey:
        """A key derived (HKDF-SHA256) from ``secret`` and ``label``: the same
        key in every process that holds the secret, a different one per label.

        A node uses it to hold one key per console session without storing it.
        """
        if len(secret) < 16:
            raise ValueError("the secret to derive a DPoP key from is too short")
        okm = HKDF(hashes.SHA256(), 48, salt=b"relto-dpop-key", info=label.encode()).derive(secret)
        scalar = int.from_bytes(okm, "big") % (_N - 1) + 1
        private = ec.derive_private_key(scalar, ec.SECP256R1())
        return cls(ECKey.import_key(private))

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint (``jkt``) tokens bound to this key name."""
        return str(self.key.thumbprint())

    def public_jwk(self) -> dict[str, object]:
        return dict(self.key.as_dict(private=False))

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        """A fresh proof for one request (``jti`` random, ``iat`` now)."""
        claims: dict[str, object] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = _ath(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": self.public_jwk()}
        return jwt.encode(header, claims, self.key, default_type=None)
