"""Constants and helpers shared by the KAS tests (imported by name: tests/kas is on sys.path)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from relto.ztdf import hazmat

PASSPHRASE = "correct horse battery staple kas"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

ISSUER = "https://idp.test.relto"
AUDIENCE = "relto-kas"


class TestIssuer:
    """An OIDC issuer in a test: signs access tokens with its own RSA key."""

    __test__ = False

    def __init__(self, issuer: str = ISSUER, kid: str = "test-key-1") -> None:
        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256"})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def token(
        self, sub: str = "alice", *, ttl: int = 300, now: float | None = None, **claims: Any
    ) -> str:
        t = int(now if now is not None else time.time())
        body = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": t,
            "exp": t + ttl,
            "client_id": "relto-cli",
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, body, self.key)


class DpopKey:
    """A client's DPoP key: makes proofs and signs request tokens."""

    def __init__(self, kind: str = "EC") -> None:
        self.key: ECKey | RSAKey = (
            ECKey.generate_key("P-256") if kind == "EC" else RSAKey.generate_key(2048)
        )
        self.alg = "ES256" if kind == "EC" else "RS256"

    def thumbprint(self) -> str:
        return self.key.thumbprint()

    def proof(
        self,
        url: str,
        token: str,
        *,
        method: str = "POST",
        iat: float | None = None,
        jti: str | None = None,
    ) -> str:
        ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=")
        claims = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(iat if iat is not None else time.time()),
            "ath": ath.decode(),
        }
        header = {"alg": self.alg, "typ": "dpop+jwt", "jwk": self.key.as_dict(private=False)}
        return jwt.encode(header, claims, self.key, default_type=None)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": self.alg}, claims, self.key)


def policy_b64(dissem: list[str] | None = None, attrs: list[str] | None = None) -> str:
    policy = {
        "uuid": "6f0f7d32-0000-4000-8000-000000000001",
        "body": {
            "dataAttributes": [{"attribute": a} for a in (attrs or [])] or None,
            "dissem": dissem or None,
        },
    }
    return base64.b64encode(json.dumps(policy).encode()).decode()


def make_kao(
    public_pem: str, kid: str, policy: str, *, ec_key: bool = False, share: bytes | None = None
) -> tuple[dict[str, Any], bytes]:
    """A key access object for ``share`` wrapped to the KAS key, bound to ``policy``."""
    share = share or hazmat.new_key_share()
    kao: dict[str, Any] = {
        "url": "http://kas.test/kas",
        "protocol": "kas",
        "kid": kid,
        "sid": "",
        "schemaVersion": "1.0",
    }
    if ec_key:
        eph, wrapped = hazmat.ec_wrap(public_pem, share)
        kao.update(type="ec-wrapped", ephemeralPublicKey=eph)
    else:
        wrapped = hazmat.rsa_wrap(public_pem, share)
        kao["type"] = "wrapped"
    kao["wrappedKey"] = base64.b64encode(wrapped).decode()
    kao["policyBinding"] = {"alg": "HS256", "hash": hazmat.compute_policy_binding(share, policy)}
    return kao, share


def request_body(client_pem: str, policy: str, kaos: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "clientPublicKey": client_pem,
            "requests": [
                {
                    "policy": {"id": "policy-1", "body": policy},
                    "keyAccessObjects": [
                        {"keyAccessObjectId": f"kao-{i}", "keyAccessObject": k}
                        for i, k in enumerate(kaos)
                    ],
                }
            ],
        }
    )


def client_keys(kind: str = "rsa") -> tuple[Any, str]:
    priv: Any = (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return priv, hazmat.public_key_pem(priv)


def open_result(priv: Any, wrapped_b64: str, session_pem: str = "") -> bytes:
    data = base64.b64decode(wrapped_b64)
    if isinstance(priv, rsa.RSAPrivateKey):
        return hazmat.rsa_unwrap(priv, data)
    return hazmat.ec_unwrap(priv, session_pem, data)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def issuer_app(issuer: TestIssuer, clients: dict[str, str]) -> Any:
    """A tiny OIDC provider: discovery, JWKS and a client-credentials token endpoint."""
    from fastapi import FastAPI, Form, HTTPException

    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer.issuer,
            "jwks_uri": f"{issuer.issuer}/jwks",
            "token_endpoint": f"{issuer.issuer}/token",
            "grant_types_supported": ["client_credentials"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return issuer.jwks()

    @app.post("/token")
    def token(
        grant_type: str = Form(...), client_id: str = Form(...), client_secret: str = Form(...)
    ) -> dict[str, Any]:
        if grant_type != "client_credentials" or clients.get(client_id) != client_secret:
            raise HTTPException(401, "invalid_client")
        return {
            "access_token": issuer.token(
                client_id, client_id=client_id, email=f"{client_id}@example.org"
            ),
            "token_type": "Bearer",
            "expires_in": 300,
        }

    return app
