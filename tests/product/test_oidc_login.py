"""Console sign-in at the node's own OpenID provider: a real ``oidc-provider``
process (npm, pinned in tools/federation-idp; ``npm ci`` here, failing loudly
without Node.js or npm) and a GBR node outside demo mode.

The browser is played by two clients: the provider's (with its cookies) and the
node's TestClient, addressed as the node's public URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import ECKey
from pydantic import SecretStr

from relto.config import OidcIssuer, Settings
from relto.demo import load_demo, read_demo
from relto.errors import ConfigError
from relto.events import MemorySink
from relto.launcher.idp import (
    IdpPerson,
    ProviderSpec,
    demo_sign_in,
    ensure_installed,
    start_provider,
    wait_ready,
)
from relto.launcher.processes import stop_all
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE

CLIENT_ID = "relto-gbr-console"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    node_url: str
    issuer: str
    client_secret: str
    app: object

    def browser(self) -> tuple[TestClient, httpx.Client]:
        relto = TestClient(self.app, base_url=self.node_url, follow_redirects=False)  # type: ignore[arg-type]
        return relto, httpx.Client(follow_redirects=False, timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = ensure_installed()  # npm ci of the pinned provider; fails loudly without npm
    folder: Path = tmp_path_factory.mktemp("oidc-login")
    node_url = f"http://127.0.0.1:{_free_port()}"
    issuer = f"http://127.0.0.1:{_free_port()}"
    client_secret = secrets.token_urlsafe(32)
    spec = ProviderSpec(
        issuer=issuer,
        audience=node_url,
        # a USA person too: the provider signs them in, the GBR node must refuse them
        people=[
            IdpPerson("gbr-eng-harper", "Olivia Harper", "GBR"),
            IdpPerson("usa-eng-ramirez", "Carlos Ramirez", "USA"),
        ],
        client_id=CLIENT_ID,
        client_secret=client_secret,
        redirect_uris=[node_url + "/login/oidc/callback"],
    )
    child = start_provider(spec, folder / "idp", node=node)
    try:
        wait_ready(issuer + "/.well-known/openid-configuration", child, timeout=30)
        settings = Settings(
            demo=False,
            nation="GBR",
            data_dir=folder / "node",
            secret_key=SecretStr(secrets.token_urlsafe(32)),
            keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
            public_url=node_url,
            oidc_issuers={
                issuer: OidcIssuer(nation="GBR", jwks_url=spec.jwks_url, audience=node_url)
            },
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=SecretStr(client_secret),
        )
        settings.check_startup()
        sink = MemorySink()
        app = create_app(settings, sink=sink)
        # the whole demo directory: GBR people, and a USA person the GBR node knows of
        load_demo(app.state.node.db, sink, read_demo(), at=datetime.now(UTC))
        yield World(node_url, issuer, client_secret, app)
        app.state.node.db.dispose()
    finally:
        stop_all([child])


def _start(relto: TestClient, next_url: str = "/console/documents") -> str:
    r = relto.get("/login/oidc", params={"next": next_url})
    assert r.status_code == 303, r.text[:300]
    return r.headers["location"]


def _callback(relto: TestClient, url: str) -> httpx.Response:
    parts = urlsplit(url)
    return relto.get(f"{parts.path}?{parts.query}")


def test_own_nation_person_signs_in_at_own_provider(world: World) -> None:
    relto, idp = world.browser()
    authorize = _start(relto)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(world.issuer + "/auth?")
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert query["state"][0] and query["nonce"][0]
    callback = demo_sign_in(idp, authorize, "gbr-eng-harper")
    assert callback.startswith(world.node_url + "/login/oidc/callback?")
    r = _callback(relto, callback)
    assert r.status_code == 303 and r.headers["location"] == "/console/documents"
    assert relto.cookies.get(SESSION_COOKIE)
    page = relto.get("/console/documents")
    assert page.status_code == 200 and "Olivia Harper" in page.text
    # the session is the node's, as a demo session is: signing out ends it
    csrf = relto.app.state.edge.auth.signer.csrf(relto.cookies.get(SESSION_COOKIE))  # type: ignore[attr-defined]
    assert relto.post("/logout", data={"csrf": csrf}).status_code == 303
    assert relto.get("/console/documents").status_code == 303  # back to sign in


def test_person_of_another_nation_refused_at_this_node(world: World) -> None:
    relto, idp = world.browser()
    callback = demo_sign_in(idp, _start(relto), "usa-eng-ramirez")
    r = _callback(relto, callback)
    assert r.status_code == 403
    assert "only people of GBR sign in here" in r.text
    assert not relto.cookies.get(SESSION_COOKIE)
    assert relto.get("/console").status_code == 303


def test_tampered_state_refused(world: World) -> None:
    relto, idp = world.browser()
    callback = demo_sign_in(idp, _start(relto), "gbr-eng-harper")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = "x" + query["state"][1:]
    r = _callback(relto, urlunsplit(parts._replace(query=urlencode(query))))
    assert r.status_code == 400 and "start again" in r.text
    assert not relto.cookies.get(SESSION_COOKIE)


def test_tampered_nonce_refused(world: World) -> None:
    relto, idp = world.browser()
    parts = urlsplit(_start(relto))
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["nonce"] = secrets.token_urlsafe(24)  # the provider signs what it was asked
    callback = demo_sign_in(
        idp, urlunsplit(parts._replace(query=urlencode(query))), "gbr-eng-harper"
    )
    r = _callback(relto, callback)
    assert r.status_code == 400
    assert not relto.cookies.get(SESSION_COOKIE)


def test_callback_in_another_browser_refused(world: World) -> None:
    """Login CSRF: a code obtained by someone else, replayed into a victim's browser."""
    attacker, idp = world.browser()
    callback = demo_sign_in(idp, _start(attacker), "gbr-eng-harper")
    victim, _ = world.browser()
    r = _callback(victim, callback)
    assert r.status_code == 400
    assert not victim.cookies.get(SESSION_COOKIE)


def test_code_replayed_refused(world: World) -> None:
    relto, idp = world.browser()
    flow_cookies = None
    callback = demo_sign_in(idp, _start(relto), "gbr-eng-harper")
    flow_cookies = dict(relto.cookies)
    assert _callback(relto, callback).status_code == 303
    again, _ = world.browser()
    for name, value in flow_cookies.items():
        again.cookies.set(name, value)
    r = _callback(again, callback)  # same code, same flow cookie
    assert r.status_code == 400
    assert not again.cookies.get(SESSION_COOKIE)


def test_weak_client_secret_refuses_start(world: World, tmp_path: Path) -> None:
    settings = Settings(
        nation="GBR",
        data_dir=tmp_path,
        secret_key=SecretStr(secrets.token_urlsafe(32)),
        keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
        public_url=world.node_url,
        oidc_issuers={
            world.issuer: OidcIssuer(
                nation="GBR", jwks_url=world.issuer + "/jwks", audience=world.node_url
            )
        },
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=SecretStr("changeme-changeme"),
    )
    with pytest.raises(ConfigError, match="RELTO_OIDC_CLIENT_SECRET is too weak"):
        settings.check_startup()


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_stolen_access_token_bound_to_dpop_key(world: World) -> None:
    """The provider binds access tokens to the caller's DPoP key (cnf.jkt) and
    issues them for the node (aud): a token copied without the key is useless."""
    _relto, idp = world.browser()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "scope": "openid",
        "redirect_uri": world.node_url + "/login/oidc/callback",
        "state": "s",
        "nonce": "n",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    callback = demo_sign_in(idp, f"{world.issuer}/auth?{urlencode(query)}", "gbr-eng-harper")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    key = ECKey.generate_key("P-256")
    proof = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)},
        json.dumps(
            {
                "htm": "POST",
                "htu": world.issuer + "/token",
                "iat": int(time.time()),
                "jti": secrets.token_urlsafe(16),
            }
        ),
        key,
    )
    r = httpx.post(
        world.issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": query["redirect_uri"],
        },
        auth=(CLIENT_ID, world.client_secret),
        headers={"DPoP": proof},
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    access = r.json()["access_token"]
    header = json.loads(base64.urlsafe_b64decode(access.split(".")[0] + "=="))
    claims = _claims(access)
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == world.node_url and claims["sub"] == "gbr-eng-harper"
    assert claims["cnf"] == {"jkt": key.thumbprint()}

    # the node: the token without a proof of its key is refused; with one it works
    relto = TestClient(world.app, base_url=world.node_url)  # type: ignore[arg-type]
    stolen = relto.get("/api/v1/objects", headers={"Authorization": f"Bearer {access}"})
    assert stolen.status_code == 401, stolen.text
    url = world.node_url + "/api/v1/objects"
    own = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)},
        json.dumps(
            {
                "htm": "GET",
                "htu": url,
                "iat": int(time.time()),
                "jti": secrets.token_urlsafe(16),
                "ath": base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest())
                .rstrip(b"=")
                .decode(),
            }
        ),
        key,
    )
    held = relto.get(url, headers={"Authorization": f"DPoP {access}", "DPoP": own})
    assert held.status_code == 200, held.text
