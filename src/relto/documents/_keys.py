"""Keys of protected documents: where new containers are wrapped to, and how an
existing container's key is obtained -- always through this node's key access
service, which decides and records every release (never the raw key store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from relto.kas.auth import Caller
from relto.kas.service import KasService
from relto.kas.wire import parse_request_body, rewrap_request_body
from relto.ztdf import KasTarget, KeyAccess, KeyAccessDenied, Unwrap, hazmat

__all__ = ["InProcessKas", "KeyAccessPort"]


class KeyAccessPort(Protocol):
    """What the sharing capability needs from a key access service."""

    def target(self) -> KasTarget:
        """The KAS (URL, public key, key id) new containers are wrapped for."""
        ...

    def unwrap_for(self, person_id: str, nation: str, action: str) -> Unwrap:
        """An :data:`~relto.ztdf.Unwrap` that asks the KAS for ``person_id`` (vouched
        for by ``nation``) to do ``action``; the KAS decides and records."""
        ...


class InProcessKas:
    """This node's KAS, called in-process exactly as a remote client calls it over
    HTTP: a fresh ephemeral key per unwrap, a Rewrap request, the share unwrapped
    from the response. The KAS's decider and audit record apply unchanged."""

    def __init__(self, service: KasService, default_url: str) -> None:
        self._service = service
        self._default_url = default_url

    def target(self) -> KasTarget:
        info = self._service.store.active("rsa:2048")
        url = self._service.kas_url or self._default_url
        return KasTarget(url=url, public_key_pem=info.public_key_pem, kid=info.kid)

    def unwrap_for(self, person_id: str, nation: str, action: str) -> Unwrap:
        caller = Caller(
            subject=person_id,
            claims={"sub": person_id},
            identities=frozenset({person_id}),
            nation=nation,
        )
        service = self._service

        def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
            priv = ec.generate_private_key(ec.SECP256R1())
            request = rewrap_request_body(ka, policy_b64, hazmat.public_key_pem(priv))
            body = parse_request_body(json.dumps(request))
            response = service.rewrap(
                body, caller, at=datetime.now(UTC), request_verified=False, action=action
            )
            result = response.responses[0].results[0]
            if result.status != "permit":
                raise KeyAccessDenied("the key access service did not release the key")
            return bytes(
                hazmat.ec_unwrap(priv, response.session_public_key, result.kas_wrapped_key)
            )

        return unwrap
