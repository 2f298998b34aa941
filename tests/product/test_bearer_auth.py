"""OIDC bearer tokens outside demo mode: a token proves only who is calling, and only
for the nation its issuer is bound to. Roles and nation come from the node's
directory; everything else is one 401."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from pydantic import SecretStr

from relto.config import Settings
from relto.errors import ConfigError
from relto.events import MemorySink
from relto.kas.auth import AuthConfig, Authenticator, StaticJwks, TrustedIssuer
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE
from relto.vetting import Person, Role

GBR_ISSUER = "https://idp.gbr.example"
USA_ISSUER = "https://idp.usa.example"
AUDIENCE = "relto"
GBR_KEY = RSAKey.generate_key(2048, parameters={"kid": "gbr-1", "alg": "RS256"})
USA_KEY = RSAKey.generate_key(2048, parameters={"kid": "usa-1", "alg": "RS256"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "gbr-1", "alg": "RS256"})
SECRET = SecretStr("a-real-looking-secret-0123456789")

PEOPLE = (
    Person("gbr-so-1", "GBR Officer", frozenset({"GBR"}), "MOD", "GBR",
           frozenset({Role.SECURITY_OFFICER})),
    Person("gbr-eng-1", "GBR Engineer", frozenset({"GBR"}), "Dstl", "GBR",
           frozenset({Role.ENGINEER})),
    Person("usa-so-1", "USA Officer", frozenset({"USA"}), "DoD", "USA",
           frozenset({Role.SECURITY_OFFICER})),
)  # fmt: skip


def token(key: Any = GBR_KEY, alg: str = "RS256", kid: str = "gbr-1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": GBR_ISSUER, "aud": AUDIENCE, "sub": "gbr-so-1", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": kid}, body, key)


def usa_token(**claims: Any) -> str:
    return token(USA_KEY, kid="usa-1", iss=USA_ISSUER, **claims)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        Settings(data_dir=tmp_path, secret_key=SECRET, keystore_passphrase=SECRET),
        sink=MemorySink(),
    )
    node = app.state.node
    for p in PEOPLE:
        node.vetting.register_person(p, at=datetime.now(UTC), actor="test-setup")
    app.state.edge.auth.authenticator = Authenticator(
        AuthConfig(),
        issuers=[
            TrustedIssuer(
                GBR_ISSUER, StaticJwks({"keys": [GBR_KEY.as_dict(private=False)]}), AUDIENCE, "GBR"
            ),
            TrustedIssuer(
                USA_ISSUER, StaticJwks({"keys": [USA_KEY.as_dict(private=False)]}), AUDIENCE, "USA"
            ),
        ],
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    node.db.dispose()


def _bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


PARTNERSHIP = {"id": "p2", "name": "Pillar 2", "members": ["AUS", "GBR", "USA"], "partners": []}


def test_valid_token_maps_to_the_directorys_person_and_roles(client: TestClient) -> None:
    r = client.post("/api/v1/partnerships", json=PARTNERSHIP, headers=_bearer(token()))
    assert r.status_code == 201, r.text  # no CSRF needed for bearer calls
    listed = client.get("/api/v1/partnerships", headers=_bearer(token()))
    assert [p["id"] for p in listed.json()["items"]] == ["p2"]


def test_token_role_claims_grant_nothing(client: TestClient) -> None:
    """An engineer's token claiming officer roles in any nation changes nothing."""
    forged = token(
        sub="gbr-eng-1",
        relto_roles=["security_officer:GBR", "security_officer", "vetting_officer:USA"],
        roles=["security_officer"],
    )
    r = client.post("/api/v1/partnerships", json=PARTNERSHIP, headers=_bearer(forged))
    assert r.status_code == 404
    assert client.get("/api/v1/partnerships", headers=_bearer(token())).json()["items"] == []


def test_token_nation_claim_does_not_move_a_person(client: TestClient) -> None:
    """``relto_nation`` in a token is ignored: the GBR officer stays GBR (and a KOR
    claim does not hide GBR's partnership from them, nor show KOR's)."""
    client.post("/api/v1/partnerships", json=PARTNERSHIP, headers=_bearer(token()))
    claimed = token(relto_nation="KOR")
    listed = client.get("/api/v1/partnerships", headers=_bearer(claimed)).json()["items"]
    assert [p["id"] for p in listed] == ["p2"]
    me = client.get("/api/v1/people/gbr-so-1", headers=_bearer(claimed)).json()
    assert me["home_nation"] == "GBR"


def test_issuer_of_one_nation_cannot_vouch_for_another_nations_person(
    client: TestClient,
) -> None:
    """The USA identity provider signing a token for a GBR officer gets a 401."""
    r = client.get("/api/v1/partnerships", headers=_bearer(usa_token(sub="gbr-so-1")))
    assert r.status_code == 401
    assert client.get("/api/v1/projects", headers=_bearer(usa_token(sub="usa-so-1"))).is_success


def test_person_unknown_to_the_directory_is_refused(client: TestClient) -> None:
    assert client.get("/api/v1/projects", headers=_bearer(token(sub="x"))).status_code == 401


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: token(key=OTHER), id="signed-by-another-key"),
        pytest.param(lambda: token(key=USA_KEY), id="signed-by-another-issuers-key"),
        pytest.param(lambda: token(iss="https://evil.example"), id="untrusted-issuer"),
        pytest.param(lambda: token(aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda: token(exp=int(time.time()) - 3600), id="expired"),
        pytest.param(
            lambda: token(key=OctKey.import_key(b"k" * 32), alg="HS256"),
            id="hmac-with-guessable-key",
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
def test_bad_token_is_one_401(client: TestClient, bad: Any) -> None:
    r = client.get("/api/v1/projects", headers=_bearer(bad()))
    assert r.status_code == 401
    assert r.json()["error"] == {
        "code": "unauthenticated",
        "message": "authentication required",
        "request_id": r.headers["x-request-id"],
    }


def test_session_cookie_ignored_outside_demo(client: TestClient) -> None:
    signer = client.app.state.edge.auth.signer  # type: ignore[attr-defined]
    client.cookies.set(SESSION_COOKIE, signer.sign("gbr-so-1"))
    assert client.get("/api/v1/projects").status_code == 401


def test_issuer_without_audience_refused_outside_demo(tmp_path: Path) -> None:
    """Tokens the issuer minted for another service must not open this one."""
    with pytest.raises(ConfigError, match="RELTO_OIDC_AUDIENCE"):
        create_app(
            Settings(
                data_dir=tmp_path,
                secret_key=SECRET,
                keystore_passphrase=SECRET,
                oidc_issuer=GBR_ISSUER,
                oidc_jwks_url=f"{GBR_ISSUER}/jwks",
            ),
            sink=MemorySink(),
        )
