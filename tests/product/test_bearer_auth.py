"""OIDC bearer tokens outside demo mode: only tokens signed by the configured
issuer's keys, for the right audience and still valid, map to a person and roles;
everything else is one 401."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from pydantic import SecretStr

from relto.config import Settings
from relto.events import MemorySink
from relto.kas.auth import AuthConfig, Authenticator, StaticJwks
from relto.server import create_app
from relto.server.auth import request_auth, roles_from_claims

ISSUER = "https://idp.gbr.example"
AUDIENCE = "relto"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})


def token(key: Any = KEY, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "gbr-so-1", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": "k1"}, body, key)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    secret = SecretStr("a-real-looking-secret-0123456789")
    app = create_app(
        Settings(data_dir=tmp_path, secret_key=secret, keystore_passphrase=secret),
        sink=MemorySink(),
    )
    auth = request_auth(app.state.ctx)
    auth.authenticator = Authenticator(
        AuthConfig(issuer=ISSUER, audience=AUDIENCE),
        StaticJwks({"keys": [KEY.as_dict(private=False)]}),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


OFFICER = {"relto_nation": "GBR", "relto_roles": ["security_officer:GBR"]}


def test_valid_token_maps_to_person_nation_and_roles(client: TestClient) -> None:
    body = {
        "id": "p2",
        "name": "Pillar 2",
        "members": ["AUS", "GBR", "USA"],
        "partners": ["JPN"],
    }
    r = client.post("/api/v1/partnerships", json=body, headers=_bearer(token(**OFFICER)))
    assert r.status_code == 201, r.text  # no CSRF needed for bearer calls
    listed = client.get("/api/v1/partnerships", headers=_bearer(token(**OFFICER)))
    assert [p["id"] for p in listed.json()["items"]] == ["p2"]
    # a KOR caller is not in that partnership: it does not exist for them
    kor = token(sub="kor-1", relto_nation="KOR")
    assert client.get("/api/v1/partnerships/p2", headers=_bearer(kor)).status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: token(key=OTHER, **OFFICER), id="signed-by-another-key"),
        pytest.param(lambda: token(iss="https://evil.example", **OFFICER), id="wrong-issuer"),
        pytest.param(lambda: token(aud="someone-else", **OFFICER), id="wrong-audience"),
        pytest.param(lambda: token(exp=int(time.time()) - 3600, **OFFICER), id="expired"),
        pytest.param(
            lambda: token(key=OctKey.import_key(b"k" * 32), alg="HS256", **OFFICER),
            id="hmac-with-guessable-key",
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
        pytest.param(lambda: token(sub="x"), id="no-nation"),
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


def test_unknown_roles_are_dropped() -> None:
    roles = roles_from_claims(
        {"relto_roles": ["security_officer:GBR", "engineer", "god", "auditor:gbr", 7]}, "GBR"
    )
    assert roles == frozenset({("security_officer", "GBR"), ("engineer", "GBR")})


def test_session_cookie_ignored_outside_demo(client: TestClient) -> None:
    from relto.server.auth import SESSION_COOKIE

    signer = request_auth(client.app.state.ctx).signer  # type: ignore[attr-defined]
    client.cookies.set(SESSION_COOKIE, signer.sign("gbr-so-1"))
    assert client.get("/api/v1/projects").status_code == 401
