"""A GBR node with an OIDC issuer per nation, people with clearances, and DPoP keys:
what the home-side tests (test_home_*.py) share."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pydantic import SecretStr

from relto.kas.auth import AuthConfig, Authenticator, StaticJwks, TrustedIssuer
from relto.node import Node
from relto.vetting import Person, ProjectMembership, Role, Status

GBR_ISSUER = "https://idp.gbr.example"
USA_ISSUER = "https://idp.usa.example"
AUDIENCE = "relto"
SECRET = SecretStr("home-side-test-secret-0123456789")
KEYS = {
    "GBR": RSAKey.generate_key(2048, parameters={"kid": "gbr-1", "alg": "RS256"}),
    "USA": RSAKey.generate_key(2048, parameters={"kid": "usa-1", "alg": "RS256"}),
}
ISSUERS = {"GBR": GBR_ISSUER, "USA": USA_ISSUER}
ENGINEER = "gbr-eng-home"


def token(nation: str, sub: str, **claims: Any) -> str:
    """An access token of ``nation``'s identity provider."""
    now = int(time.time())
    body = {"iss": ISSUERS[nation], "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300}
    body.update(claims)
    key = KEYS[nation]
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


class DpopKey:
    """A person's DPoP key (RFC 9449): makes proofs for one request each."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")

    @property
    def thumbprint(self) -> str:
        return self.key.thumbprint()

    def proof(self, url: str, access_token: str, method: str = "POST") -> str:
        ath = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest())
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "ath": ath.rstrip(b"=").decode(),
        }
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": self.key.as_dict(private=False)}
        return jwt.encode(header, claims, self.key, default_type=None)

    def headers(self, url: str, access_token: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {access_token}", "DPoP": self.proof(url, access_token)}


def trust_issuers(app: Any) -> None:
    """The app believes the GBR and USA identity providers, each for its own nation."""
    app.state.edge.auth.authenticator = Authenticator(
        AuthConfig(),
        issuers=[
            TrustedIssuer(ISSUERS[n], StaticJwks({"keys": [k.as_dict(private=False)]}), AUDIENCE, n)
            for n, k in KEYS.items()
        ],
    )


def add_people(node: Node) -> str:
    """A GBR engineer with a granted SC clearance (its id returned), a USA engineer."""
    at = datetime.now(UTC)
    node.vetting.register_person(
        Person(ENGINEER, "GBR Engineer", frozenset({"GBR", "AUS"}), "Dstl", "GBR",
               frozenset({Role.ENGINEER}), (ProjectMembership("hypersonic"),)),
        at=at, actor="test-setup",
    )  # fmt: skip
    node.vetting.register_person(
        Person("usa-eng-home", "USA Engineer", frozenset({"USA"}), "DoD", "USA",
               frozenset({Role.ENGINEER})),
        at=at, actor="test-setup",
    )  # fmt: skip
    c = node.vetting.sponsor_clearance(
        person_id=ENGINEER, nation="GBR", level="SC", sponsor="MOD", at=at,
        actor="test-setup", reason="test", caveats=frozenset({"UK EYES ONLY"}),
    )  # fmt: skip
    for to in (Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED):
        node.vetting.transition(c.id, to, at=at, actor="test-setup", reason="test")
    return c.id
