"""Two real nodes for the client: USA (its own oidc-provider, the engineer's home)
and GBR (holding the objects), each under uvicorn on loopback, outside demo mode,
each with its own nation's share of the demo partnership, pinned to each other.

The USA engineer's access token comes from the USA provider by the authorization
code flow with PKCE, redeemed with a DPoP proof of the engineer's key: the token
is bound to that key (``cnf.jkt``), as a real sign-in hand-off gives it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from federation.live_server import Server, free_port
from relto.client import DpopKey
from relto.config import OidcIssuer, Settings
from relto.demo import load_demo, load_demo_documents, read_demo
from relto.launcher.federation import nation_share
from relto.launcher.idp import (
    IdpPerson,
    ProviderSpec,
    demo_sign_in,
    ensure_installed,
    start_provider,
    wait_ready,
)
from relto.launcher.processes import stop_all
from relto.node import Node
from relto.server import create_app

CLI_CLIENT = "relto-usa-cli"
CLI_REDIRECT = "http://127.0.0.1/callback"


@dataclass
class NationNode:
    nation: str
    url: str
    node: Node
    server: Server


@dataclass
class Federation:
    usa: NationNode
    gbr: NationNode
    usa_issuer: str

    def token(self, person: str, key: DpopKey) -> str:
        """An access token of the USA provider for ``person``, bound to ``key``."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = {
            "response_type": "code",
            "client_id": CLI_CLIENT,
            "scope": "openid",
            "redirect_uri": CLI_REDIRECT,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            back = demo_sign_in(browser, f"{self.usa_issuer}/auth?{urlencode(query)}", person)
        code = parse_qs(urlsplit(back).query)["code"][0]
        token_url = self.usa_issuer + "/token"
        r = httpx.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": CLI_REDIRECT,
                "client_id": CLI_CLIENT,
            },
            headers={"DPoP": key.proof("POST", token_url)},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def _settings(nation: str, folder: Path, url: str, **extra: Any) -> Settings:
    return Settings(
        nation=nation,
        data_dir=folder,
        port=int(url.rsplit(":", 1)[1]),
        public_url=url,
        secret_key=SecretStr(secrets.token_urlsafe(32)),
        keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
        **extra,
    )


def _node(settings: Settings) -> tuple[Node, Any]:
    app = create_app(settings)
    node: Node = app.state.node
    share = nation_share(read_demo(), settings.nation)
    at = datetime.now(UTC)
    report = load_demo(node.db, node.sink, share, at=at)
    load_demo_documents(node.documents, node.directory, share, report, at=at)
    return node, app


def _pin(on: Node, other: NationNode) -> None:
    officer = next(
        p for p in on.directory.people() if "security_officer" in {r.value for r in p.roles}
    )
    who = on.directory.principal(officer.id, via="node")
    assert who is not None and other.node.federation is not None
    descriptor = httpx.get(other.url + "/.well-known/relto-node", timeout=10).text
    on.trust.pin(
        descriptor,
        fingerprint=other.node.federation.descriptors.fingerprint,
        actor=who,
        now=datetime.now(UTC),
    )


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    node_binary = ensure_installed()  # npm ci of the pinned provider; loud without npm
    folder = tmp_path_factory.mktemp("client-federation")
    usa_url, gbr_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    issuer = f"http://127.0.0.1:{free_port()}"
    usa_people = nation_share(read_demo(), "USA").people
    spec = ProviderSpec(
        issuer=issuer,
        audience=usa_url,
        people=[IdpPerson(p.id, p.name, p.nationality) for p in usa_people],
        client_id="relto-usa-console",
        client_secret=secrets.token_urlsafe(32),
        redirect_uris=[usa_url + "/login/oidc/callback"],
        extra_clients=[
            {
                "client_id": CLI_CLIENT,
                "application_type": "native",  # a loopback redirect on any port (RFC 8252)
                "redirect_uris": [CLI_REDIRECT],
                "token_endpoint_auth_method": "none",
            }
        ],
    )
    idp = start_provider(spec, folder / "usa-idp", node=node_binary)
    servers: list[Server] = []
    try:
        wait_ready(issuer + "/.well-known/openid-configuration", idp, timeout=30)
        usa_issuer = {issuer: OidcIssuer(nation="USA", jwks_url=spec.jwks_url, audience=usa_url)}
        usa_node, usa_app = _node(
            _settings("USA", folder / "usa", usa_url, oidc_issuers=usa_issuer)
        )
        gbr_node, gbr_app = _node(_settings("GBR", folder / "gbr", gbr_url))
        usa = NationNode("USA", usa_url, usa_node, Server(usa_app, int(usa_url.rsplit(":", 1)[1])))
        gbr = NationNode("GBR", gbr_url, gbr_node, Server(gbr_app, int(gbr_url.rsplit(":", 1)[1])))
        for n in (usa, gbr):
            n.server.start()
            servers.append(n.server)
        _pin(gbr_node, usa)
        _pin(usa_node, gbr)
        yield Federation(usa, gbr, issuer)
    finally:
        for s in servers:
            s.stop()
        stop_all([idp])
