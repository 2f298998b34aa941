"""The holes an outside probe found, tried again from outside: a real relto server
on loopback (outside demo mode), three nations' identity providers serving their
JWKS over HTTP, forged and cross-nation tokens sent with httpx. None may remain.

The node holds the demo partnership's people and documents (loaded through the
services, as an operator would import them); every identity provider signs only
for its own nation's people.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import SecretStr

from relto.config import Settings
from relto.demo import load_demo, load_demo_documents, read_demo
from relto.server import create_app
from relto.vetting import Person, Role

AUDIENCE = "relto-gbr"
SECRET = SecretStr("outside-probe-secret-0123456789")


class Server:
    """An ASGI app on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Idp:
    nation: str
    key: RSAKey
    url: str = ""

    def token(self, sub: str, key: RSAKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300}
        body.update(claims)
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, body, key or self.key)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        return app


@dataclass
class Probe:
    base: str
    idps: dict[str, Idp]

    def as_(self, nation: str, sub: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.idps[nation].token(sub, **claims)}"}

    def get(self, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, params=params, timeout=30)

    def send(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    idps = {
        n: Idp(n, RSAKey.generate_key(2048, parameters={"kid": f"{n}-1", "alg": "RS256"}))
        for n in ("GBR", "USA", "JPN")
    }
    servers = [Server(idp.app()) for idp in idps.values()]
    urls = [s.__enter__() for s in servers]
    try:
        for idp, url in zip(idps.values(), urls, strict=True):
            idp.url = url
        issuers = {
            idp.url: {"nation": n, "jwks_url": f"{idp.url}/jwks", "audience": AUDIENCE}
            for n, idp in idps.items()
        }
        data: Path = tmp_path_factory.mktemp("outside")
        settings = Settings(
            data_dir=data,
            secret_key=SECRET,
            keystore_passphrase=SECRET,
            oidc_issuers=json.loads(json.dumps(issuers)),
            attribute_namespace="https://attributes.gbr.example",
        )
        app = create_app(settings)
        node = app.state.node
        demo, at = read_demo(), datetime.now(UTC)
        report = load_demo(node.db, node.sink, demo, at=at)
        load_demo_documents(node.documents, node.directory, demo, report, at=at)
        node.vetting.register_person(
            Person("usa-aud-probe", "USA Auditor", frozenset({"USA"}), "DoD", "USA",
                   frozenset({Role.AUDITOR})),
            at=at, actor="probe",
        )  # fmt: skip
        with Server(app) as base:
            yield Probe(base, idps)
        node.db.dispose()
    finally:
        for s in servers:
            s.__exit__()


DOC = "hyp-thermal-protection"  # GBR, SECRET, REL TO USA, AUS, GBR; hypersonics


def test_partner_does_not_learn_that_a_document_exists(probe: Probe) -> None:
    sato = probe.as_("JPN", "jpn-eng-sato")
    for path in (f"/api/v1/objects/{DOC}", f"/api/v1/objects/{DOC}/content",
                 f"/api/v1/objects/{DOC}/decision", f"/console/documents/{DOC}"):  # fmt: skip
        r = probe.get(path, sato)
        nothing = probe.get(path.replace(DOC, "no-such-document"), sato)
        assert r.status_code == nothing.status_code == 404, path
        assert "Thermal protection" not in r.text and "ablation" not in r.text
    listed = probe.get("/api/v1/objects", sato, limit=200).json()
    assert DOC not in {o["id"] for o in listed["items"]}
    assert listed["total"] == len(listed["items"])  # the count leaks nothing either
    assert "Thermal protection" not in probe.get("/console/documents", sato).text
    assert "Thermal protection" not in probe.get("/console/decisions", sato).text


def test_an_issuer_vouches_only_for_its_own_nation(probe: Probe) -> None:
    """JPN's identity provider cannot sign in a GBR security officer, nor GBR's a
    JPN engineer; a key the issuer does not publish opens nothing."""
    assert probe.get("/api/v1/projects", probe.as_("JPN", "gbr-so-whitfield")).status_code == 401
    assert probe.get("/api/v1/projects", probe.as_("GBR", "jpn-eng-sato")).status_code == 401
    rogue = RSAKey.generate_key(2048, parameters={"kid": "GBR-1", "alg": "RS256"})
    forged = {"Authorization": f"Bearer {probe.idps['GBR'].token('gbr-so-whitfield', rogue)}"}
    assert probe.get("/api/v1/projects", forged).status_code == 401
    other_aud = probe.as_("GBR", "gbr-so-whitfield", aud="another-service")
    assert probe.get("/api/v1/projects", other_aud).status_code == 401
    assert probe.get("/api/v1/projects", probe.as_("GBR", "gbr-so-whitfield")).status_code == 200


def test_token_claims_grant_no_role_and_move_no_nation(probe: Probe) -> None:
    forged = probe.as_(
        "GBR",
        "gbr-eng-harper",
        relto_roles=["security_officer:GBR", "vetting_officer:USA"],
        relto_nation="USA",
    )
    admit = probe.send(
        "POST", "/api/v1/admissions", forged,
        json={"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET",
              "justification": "forged claims say so"},
    )  # fmt: skip
    assert admit.status_code == 404
    relabel = probe.send(
        "PUT", f"/api/v1/objects/{DOC}/rel-to", forged,
        json={"rel_to": ["USA", "JPN"], "justification": "forged claims say so"},
    )  # fmt: skip
    assert relabel.status_code == 404
    usa_clearance = probe.send(
        "POST", "/api/v1/clearances", forged,
        json={"person_id": "usa-eng-ramirez", "nation": "USA", "level": "TOP_SECRET",
              "sponsor": "x", "reason": "forged"},
    )  # fmt: skip
    assert usa_clearance.status_code == 404
    up = probe.send(
        "POST", "/api/v1/objects", forged,
        data={"title": "Upload", "project_id": "hypersonic", "classification": "SECRET",
              "rel_to": ["USA"]},
        files={"file": ("u.txt", b"upload", "text/plain")},
    )  # fmt: skip
    assert up.status_code == 201, up.text
    assert up.json()["originator"] == "GBR"  # the directory's nation, not the token's


def test_officer_of_another_nation_cannot_widen_releasable_to(probe: Probe) -> None:
    bennett = probe.as_("USA", "usa-so-bennett")
    assert probe.get(f"/api/v1/objects/{DOC}", bennett).status_code == 200  # releasable to USA
    r = probe.send(
        "PUT", f"/api/v1/objects/{DOC}/rel-to", bennett,
        json={"rel_to": ["JPN"], "justification": "USA wants JPN to see it"},
    )  # fmt: skip
    assert r.status_code == 404
    gbr = probe.as_("GBR", "gbr-so-whitfield")
    assert "JPN" not in probe.get(f"/api/v1/objects/{DOC}", gbr).json()["rel_to"]


def test_what_if_names_only_the_officers_own_people(probe: Probe) -> None:
    r = probe.send(
        "POST", "/api/v1/what-if", probe.as_("GBR", "gbr-so-whitfield"),
        json={"changes": ["admit:JPN:undersea:SECRET"]},
    )  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert body["gained_elsewhere"].get("JPN", 0) >= 1
    assert "jpn-" not in json.dumps(body["gained"]) and "Yamamoto" not in r.text
    engineer = probe.send(
        "POST", "/api/v1/what-if", probe.as_("GBR", "gbr-eng-harper"),
        json={"changes": ["admit:JPN:undersea:SECRET"]},
    )  # fmt: skip
    assert engineer.status_code == 404


def test_auditor_reads_only_their_own_nations_entries(probe: Probe) -> None:
    bennett = probe.as_("USA", "usa-so-bennett")
    probe.send(
        "PUT", f"/api/v1/objects/{DOC}/rel-to", bennett,
        json={"rel_to": ["KOR"], "justification": "USA wants KOR to see it"},
    )  # fmt: skip
    usa = probe.as_("USA", "usa-aud-probe")
    items = probe.get("/api/v1/audit/entries", usa, start=0, end=1000).json()["entries"]
    shown = [e["entry"] for e in items if e["entry"] is not None]
    assert shown and any(e["entry"] is None for e in items)
    # a GBR engineer's vetting records and GBR's own protections are GBR's business
    assert "gbr-eng-harper" not in json.dumps([e["payload"] for e in shown])
    assert not [
        e for e in shown
        if e["kind"] == "document.protected" and e["payload"]["originator"] == "GBR"
    ]  # fmt: skip
    # ... while a USA officer's refused relabel of a GBR document concerns USA too
    assert any(
        e["kind"] == "decision" and e["payload"]["subject"] == "usa-so-bennett" for e in shown
    )


def test_kas_refuses_a_stolen_bearer_token_without_dpop(probe: Probe) -> None:
    r = httpx.post(
        probe.base + "/kas.AccessService/Rewrap",
        json={"signedRequestToken": "x.y.z"},
        headers=probe.as_("USA", "usa-eng-ramirez"),
        timeout=30,
    )
    assert r.status_code == 401
