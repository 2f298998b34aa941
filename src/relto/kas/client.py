"""The online KAS client ``relto protect`` and ``relto open`` use.

:meth:`KasClient.public_key` fetches a KAS public key (``PublicKey``) to wrap a
new container's key share to; :meth:`KasClient.rewrap` asks a KAS to rewrap one
key access entry for this client (``Rewrap``) and returns the share -- its
signature fits :data:`relto.ztdf.container.Unwrap`, so
``open_container(..., unwrap=client.rewrap)`` opens a container online.

Each rewrap uses a fresh ephemeral client key (EC P-256 by default, or RSA), a
DPoP proof (RFC 9449) and a request token signed with the same DPoP key, and the
bearer token from ``token`` (a string or a callable returning one). The bearer
token is only ever sent to KAS URLs in ``allowed_urls`` (compared by origin and
path): a container names its KAS, and a hostile container must not be able to
collect tokens.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey

from relto.kas.auth import access_token_hash
from relto.kas.errors import KasError
from relto.kas.wire import rewrap_request_body
from relto.ztdf import hazmat
from relto.ztdf.errors import CryptoError, FailureKind, KeyAccessDenied
from relto.ztdf.manifest import KeyAccess

__all__ = [
    "KasClient",
    "KasPublicKey",
    "KasUnreachable",
    "client_from_env",
    "rewrap_unwrapper",
]


class KasUnreachable(KasError):
    """The KAS could not be reached or answered something that is not a KAS answer."""

    code = "kas_unreachable"


@dataclass(frozen=True)
class KasPublicKey:
    url: str
    kid: str
    public_key_pem: str
    algorithm: str


def _origin_path(url: str) -> tuple[str, str, int | None, str]:
    p = urlsplit(url)
    port = p.port or (443 if p.scheme == "https" else 80 if p.scheme == "http" else None)
    return (p.scheme.lower(), (p.hostname or "").lower(), port, p.path.rstrip("/"))


def _service_base(kas_url: str) -> str:
    return kas_url.rstrip("/").removesuffix("/kas")


class KasClient:
    """Talks to OpenTDF-compatible KAS endpoints (relto's or OpenTDF's)."""

    def __init__(
        self,
        *,
        allowed_urls: Sequence[str],
        token: str | Callable[[], str] | None = None,
        client_key: str = "ec",
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        dpop_key: ECKey | None = None,
    ) -> None:
        if client_key not in ("ec", "rsa"):
            raise ValueError("client_key must be 'ec' or 'rsa'")
        self._allowed = {_origin_path(u) for u in allowed_urls}
        self._token = token
        self._client_key = client_key
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        #: The DPoP key: the caller's own when their token is bound to it (``cnf.jkt``).
        self._dpop = dpop_key or ECKey.generate_key("P-256")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KasClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------

    def _check_allowed(self, kas_url: str) -> None:
        if _origin_path(kas_url) not in self._allowed:
            raise KeyAccessDenied(
                f"the container names a KAS that is not allowed: {kas_url[:200]}",
                kind=FailureKind.KAS_NOT_ALLOWED,
            )

    def _bearer(self) -> str | None:
        if self._token is None:
            return None
        return self._token() if callable(self._token) else self._token

    def _proof(self, url: str, token: str) -> str:
        claims = {
            "jti": secrets.token_urlsafe(24),
            "htm": "POST",
            "htu": url,
            "iat": int(time.time()),
            "ath": access_token_hash(token),
        }
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": self._dpop.as_dict(private=False)}
        return jwt.encode(header, claims, self._dpop, default_type=None)

    def _post(self, url: str, body: dict[str, Any], *, auth: bool) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
        if auth:
            token = self._bearer()
            if token:
                headers["Authorization"] = f"DPoP {token}"
                headers["DPoP"] = self._proof(url, token)
        try:
            resp = self._http.post(url, content=json.dumps(body), headers=headers)
        except httpx.HTTPError as exc:
            raise KasUnreachable(f"KAS at {url[:200]} unreachable: {type(exc).__name__}") from None
        try:
            data = resp.json()
        except ValueError:
            if resp.status_code in (401, 403):
                raise _refusal(resp.status_code, {}) from None
            raise KasUnreachable(
                f"KAS at {url[:200]} did not answer JSON (HTTP {resp.status_code})"
            ) from None
        if resp.status_code != 200:
            error = data if isinstance(data, dict) else {}
            code = error.get("code", "")
            if resp.status_code in (401, 403) or code in ("permission_denied", "unauthenticated"):
                raise _refusal(resp.status_code, error)
            if code == "not_found":
                raise KeyAccessDenied(
                    f"the KAS refused: {code}",
                    kind=FailureKind.KAS_FAILED,
                    detail=f"HTTP {resp.status_code} {_said(error)}",
                )
            raise KasUnreachable(f"KAS error HTTP {resp.status_code} {_said(error)}")
        if not isinstance(data, dict):
            raise KasUnreachable("KAS answered something that is not an object")
        return data

    # -- PublicKey ----------------------------------------------------------------

    def public_key(self, kas_url: str, algorithm: str = "rsa:2048") -> KasPublicKey:
        """The KAS's current public key for ``algorithm`` (and its key id)."""
        self._check_allowed(kas_url)
        url = f"{_service_base(kas_url)}/kas.AccessService/PublicKey"
        data = self._post(url, {"algorithm": algorithm}, auth=False)
        pem, kid = data.get("publicKey"), data.get("kid", "")
        if not isinstance(pem, str) or not isinstance(kid, str):
            raise KasUnreachable("KAS public key answer is malformed")
        try:
            hazmat.load_public_key(pem)
        except CryptoError:
            raise KasUnreachable("KAS public key does not parse") from None
        return KasPublicKey(url=kas_url, kid=kid, public_key_pem=pem, algorithm=algorithm)

    # -- Rewrap -------------------------------------------------------------------

    def rewrap(self, ka: KeyAccess, policy_b64: str) -> bytes:
        """The key share of ``ka``, rewrapped by its KAS for this client."""
        self._check_allowed(ka.url)
        url = f"{_service_base(ka.url)}/kas.AccessService/Rewrap"
        priv: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if self._client_key == "ec"
            else rsa.generate_private_key(65537, 2048)
        )
        body = rewrap_request_body(ka, policy_b64, hazmat.public_key_pem(priv))
        now = int(time.time())
        srt = jwt.encode(
            {"alg": "ES256"},
            {"requestBody": json.dumps(body), "iat": now, "exp": now + 60},
            self._dpop,
        )
        data = self._post(url, {"signedRequestToken": srt}, auth=True)
        try:
            result = data["responses"][0]["results"][0]
        except (KeyError, IndexError, TypeError):
            raise KasUnreachable("KAS rewrap answer is malformed") from None
        if not isinstance(result, dict):
            raise KasUnreachable("KAS rewrap answer is malformed")
        if result.get("status") != "permit" or "kasWrappedKey" not in result:
            error = _clean(result.get("error", ""))
            if error.lower() in ("forbidden", "permission_denied", "permission denied"):
                raise KeyAccessDenied(
                    "the KAS did not release the key",
                    kind=FailureKind.DENIED,
                    detail=f"the KAS answered {error!r}",
                )
            raise KeyAccessDenied(
                "the KAS did not release the key",
                kind=FailureKind.KAS_FAILED,
                detail=(
                    f"the KAS could not unwrap the key share ({error or 'no reason given'}): "
                    "the container is wrapped for a key this KAS does not hold, or was altered"
                ),
            )
        try:
            wrapped = base64.b64decode(result["kasWrappedKey"], validate=True)
            if isinstance(priv, rsa.RSAPrivateKey):
                return hazmat.rsa_unwrap(priv, wrapped)
            return hazmat.ec_unwrap(priv, str(data.get("sessionPublicKey", "")), wrapped)
        except (ValueError, CryptoError):
            raise KeyAccessDenied(
                "the KAS answer does not decrypt",
                kind=FailureKind.WRONG_KEY,
                detail="this client's session key cannot decrypt the key the KAS rewrapped",
            ) from None


def _clean(value: object, limit: int = 300) -> str:
    """A KAS-supplied string fit to print: no control characters, bounded."""
    text = value if isinstance(value, str) else ""
    return "".join(ch if ch.isprintable() else " " for ch in text[:limit]).strip()


def _said(error: dict[str, Any]) -> str:
    """What a Connect error body says: ``code: message`` and any detail texts."""
    code, message = _clean(error.get("code", ""), 60), _clean(error.get("message", ""))
    parts = [": ".join(p for p in (code, message) if p)]
    details = error.get("details")
    if isinstance(details, list):
        for d in details[:5]:
            if isinstance(d, dict):
                text = d.get("debug", d.get("value", ""))
                parts.append(_clean(text if isinstance(text, str) else json.dumps(text)))
    return "; ".join(p for p in parts if p) or "no message"


def _refusal(status: int, error: dict[str, Any]) -> KeyAccessDenied:
    """A 401 (not authenticated) or 403 (refused by policy), with what the KAS said."""
    said = _said(error)
    if status == 401 or error.get("code") == "unauthenticated":
        return KeyAccessDenied(
            "the KAS did not authenticate this caller",
            kind=FailureKind.UNAUTHENTICATED,
            detail=f"HTTP {status} {said}",
        )
    return KeyAccessDenied(
        "the KAS refused by policy",
        kind=FailureKind.DENIED,
        detail=f"HTTP {status} {said}",
    )


def client_from_env(allowed_urls: Sequence[str] = (), *, token: str | None = None) -> KasClient:
    """A client configured from ``RELTO_KAS_URL`` (comma-separated allow-list) and
    ``RELTO_KAS_TOKEN`` or ``RELTO_KAS_TOKEN_FILE`` (bearer token); an explicit
    ``token`` wins over the environment."""
    urls = [u.strip() for u in os.environ.get("RELTO_KAS_URL", "").split(",") if u.strip()]
    source: str | Callable[[], str] | None = token or os.environ.get("RELTO_KAS_TOKEN") or None
    token_file = os.environ.get("RELTO_KAS_TOKEN_FILE")
    if source is None and token_file:

        def from_file() -> str:
            with open(token_file, encoding="utf-8") as f:
                return f.read().strip()

        source = from_file
    return KasClient(allowed_urls=[*urls, *allowed_urls], token=source)


def rewrap_unwrapper(
    *, kas_url: str | None = None, token: str | None = None
) -> Callable[[KeyAccess, str], bytes]:
    """An ``Unwrap`` for :func:`relto.ztdf.open_container`: rewrap through the KAS.

    Allowed KAS URLs: ``kas_url`` plus ``RELTO_KAS_URL``; the token: ``token`` or
    the environment (see :func:`client_from_env`).
    """
    client = client_from_env([kas_url] if kas_url else [], token=token)
    return client.rewrap
