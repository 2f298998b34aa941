"""Online mode: fetching a KAS public key, and the hook for online rewrap.

:func:`fetch_kas_public_key` calls ``POST <kas>/kas.AccessService/PublicKey``
(Connect protocol, JSON) as OpenTDF clients do. :func:`online_unwrapper` is where
opening through a KAS plugs in: the rewrap client itself (signed request token,
DPoP, session key) belongs to ``relto.kas.client``, owned by the KAS capability;
this function only adapts it to :data:`relto.ztdf.Unwrap`.
"""

from __future__ import annotations

import importlib
from typing import Any

import httpx

from relto.errors import InvalidInput, ReltoError
from relto.ztdf import hazmat
from relto.ztdf.container import Unwrap

__all__ = ["KasUnavailable", "fetch_kas_public_key", "online_unwrapper", "public_key_endpoints"]

MAX_RESPONSE_BYTES = 64 * 1024


class KasUnavailable(ReltoError):
    """The KAS could not be reached or answered something unusable."""

    code = "kas_unavailable"


def public_key_endpoints(kas_url: str) -> list[str]:
    """Where the PublicKey method may live for a KAS URL.

    OpenTDF KAS URLs usually end in ``/kas`` while the Connect service is mounted at
    the platform root; relto accepts both layouts.
    """
    base = kas_url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise InvalidInput("the KAS URL must be an http(s) URL")
    out = [f"{base}/kas.AccessService/PublicKey"]
    if base.endswith("/kas"):
        out.append(f"{base[: -len('/kas')]}/kas.AccessService/PublicKey")
    return out


def fetch_kas_public_key(
    kas_url: str,
    *,
    algorithm: str = "rsa:2048",
    kid: str = "",
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> tuple[str, str]:
    """Return ``(public key PEM, kid)`` served by the KAS at ``kas_url``."""
    body: dict[str, Any] = {"algorithm": algorithm}
    if kid:
        body["kid"] = kid
    last = "no endpoint tried"
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        for url in public_key_endpoints(kas_url):
            try:
                resp = client.post(url, json=body, headers={"Connect-Protocol-Version": "1"})
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                continue
            if resp.status_code == 404:
                last = "404"
                continue
            if resp.status_code != 200 or len(resp.content) > MAX_RESPONSE_BYTES:
                raise KasUnavailable(f"KAS public key request failed (HTTP {resp.status_code})")
            try:
                data = resp.json()
            except ValueError:
                raise KasUnavailable("KAS public key response is not JSON") from None
            pem = data.get("publicKey") if isinstance(data, dict) else None
            if not isinstance(pem, str):
                raise KasUnavailable("KAS public key response has no publicKey")
            try:
                hazmat.load_public_key(pem)
            except ReltoError:
                raise KasUnavailable("KAS public key response is not a usable public key") from None
            got_kid = data.get("kid", "")
            return pem, got_kid if isinstance(got_kid, str) else ""
    raise KasUnavailable(f"KAS public key endpoint not reachable ({last})")


def online_unwrapper(kas_url: str | None = None, *, token: str | None = None) -> Unwrap:
    """An :data:`Unwrap` that asks each entry's KAS to rewrap its key share.

    The rewrap protocol lives in ``relto.kas.client`` (owned by the KAS capability):
    ``rewrap_unwrapper(kas_url=..., token=...)`` when that module offers one, else
    ``KasClient(allowed_urls=[kas_url], token=token).rewrap`` -- or, without a URL,
    ``client_from_env()`` (``RELTO_KAS_URL``, ``RELTO_KAS_TOKEN``). The bearer token
    only ever goes to the allowed KAS URLs, whatever the container names.
    """
    try:
        client = importlib.import_module("relto.kas.client")
    except ImportError:
        raise KasUnavailable(
            "opening through a KAS is not available in this build; use --private-key"
        ) from None
    factory = getattr(client, "rewrap_unwrapper", None)
    if factory is not None:
        unwrap: Unwrap = factory(kas_url=kas_url, token=token)
        return unwrap
    if kas_url is not None:
        kas_client = client.KasClient(allowed_urls=[kas_url], token=token)
    else:
        kas_client = client.client_from_env()
    unwrap = kas_client.rewrap
    return unwrap
