"""Joint custody: an object's key split between the GBR and USA key access services.

Two real nodes under uvicorn on loopback, outside demo mode, each holding its own
nation's share of the demo partnership and pinned to the other. The GBR officer
sets joint custody of hypersonics to GBR and USA; an object a GBR engineer uploads
there has one key share wrapped for the GBR KAS and one for the key of the USA
node's pinned descriptor. A USA engineer opens it client-side only when both
KASes release: the GBR KAS on their USA attestation, the USA KAS -- which does
not hold the object -- on its policy and its own records. Every refusal keeps it
closed, whichever custodian refuses.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pydantic import SecretStr
from typer.testing import CliRunner

from relto.audit.entries import decode_entry
from relto.authz import Principal
from relto.cli.main import app as cli
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.documents import CustodyUnavailable
from relto.documents._custody import CustodyPolicyError, read_custody_policy
from relto.errors import AccessDenied, InvalidInput
from relto.kas.auth import AuthConfig, Authenticator, StaticJwks, TrustedIssuer, access_token_hash
from relto.kas.client import KasClient
from relto.launcher.federation import nation_share
from relto.node import Node
from relto.partnership import NotPermitted
from relto.server import create_app
from relto.ztdf import KasTarget, KeyAccessDenied, hazmat, open_container, protect
from relto.ztdf.attributes import custody_attributes, marking_attributes
from relto.ztdf.manifest import KeyAccess, parse_key_access

from .live_server import Server, free_port

CONTENT = secrets.token_bytes(70_000)  # more than one segment
AUDIENCE = "relto"
USA_ISSUER = "https://idp.usa.example"
GBR_ISSUER = "https://idp.gbr.example"
USA_IDP = RSAKey.generate_key(2048, parameters={"kid": "usa-1", "alg": "RS256"})
GBR_IDP = RSAKey.generate_key(2048, parameters={"kid": "gbr-1", "alg": "RS256"})
ENGINEER, HARPER = "usa-eng-ramirez", "gbr-eng-harper"
WHY = "hypersonics is developed jointly with the USA"


@dataclass
class Nation:
    node: Node
    app: Any
    url: str

    @property
    def kas(self) -> str:
        return f"{self.url}/kas"

    def principal(self, person_id: str) -> Principal:
        who = self.node.directory.principal(person_id, via="node")
        assert who is not None
        return who

    def entries(self, kind: str) -> list[dict[str, Any]]:
        log = self.node.log
        decoded = [decode_entry(e.body) for e in log.entries(0, log.size())]
        return [dict(e.payload) for e in decoded if e.kind == kind]


@dataclass
class World:
    gbr: Nation
    usa: Nation
    doc: str


def _nation(nation: str, folder: Path) -> Nation:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings(
            nation=nation, data_dir=folder, port=port, public_url=url,
            secret_key=SecretStr(secrets.token_urlsafe(32)),
            keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
        )  # type: ignore[call-arg]
    )  # fmt: skip
    node: Node = app.state.node
    load_demo(node.db, node.sink, nation_share(read_demo(), nation), at=datetime.now(UTC))
    return Nation(node, app, url)


def _pin(on: Nation, officer: str, other: Nation) -> None:
    assert other.node.federation is not None
    on.node.trust.pin(
        httpx.get(f"{other.url}/.well-known/relto-node", timeout=10).text,
        fingerprint=other.node.federation.descriptors.fingerprint,
        actor=on.principal(officer),
        now=datetime.now(UTC),
    )


def _issuer(issuer: str, key: RSAKey, nation: str) -> Authenticator:
    jwks = StaticJwks({"keys": [key.as_dict(private=False)]})
    return Authenticator(
        AuthConfig(require_dpop=True), issuers=[TrustedIssuer(issuer, jwks, AUDIENCE, nation)]
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("joint-custody")
    gbr, usa = _nation("GBR", folder / "gbr"), _nation("USA", folder / "usa")
    # Each node's own people sign in at their own identity provider.
    usa.node.kas.authenticator = _issuer(USA_ISSUER, USA_IDP, "USA")
    gbr.app.state.edge.auth.authenticator = Authenticator(
        AuthConfig(),
        issuers=[
            TrustedIssuer(
                GBR_ISSUER, StaticJwks({"keys": [GBR_IDP.as_dict(private=False)]}), AUDIENCE, "GBR"
            )
        ],
    )
    with (
        Server(gbr.app, int(gbr.url.rsplit(":", 1)[1])),
        Server(usa.app, int(usa.url.rsplit(":", 1)[1])),
    ):
        _pin(gbr, "gbr-so-whitfield", usa)
        _pin(usa, "usa-so-bennett", gbr)
        at = datetime.now(UTC)
        gbr.node.partnerships.set_joint_custody(
            gbr.principal("gbr-so-whitfield"), "hypersonic", ["USA", "GBR"], at, justification=WHY
        )
        doc = gbr.node.documents.upload(
            gbr.principal(HARPER), title="Scramjet inlet", project_id="hypersonic",
            classification="SECRET", rel_to=["USA"], filename="inlet.bin",
            media_type="application/octet-stream", data=CONTENT, at=at,
        ).id  # fmt: skip
        yield World(gbr, usa, doc)
    for n in (gbr, usa):
        n.node.db.dispose()


# ---------------------------------------------------------------- the USA engineer


def _token(issuer: str, key: RSAKey, sub: str, dpop: ECKey) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300,
        "cnf": {"jkt": dpop.thumbprint()},
    }  # fmt: skip
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def _proof(key: ECKey, method: str, url: str, token: str) -> str:
    claims = {
        "jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time()),
        "ath": access_token_hash(token),
    }  # fmt: skip
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, default_type=None)


@dataclass
class Engineer:
    """The USA engineer: one DPoP key, their USA attestation for the GBR node and
    their USA access token for the USA KAS, both bound to it."""

    key: ECKey
    attestation: str
    token: str


def usa_engineer(w: World) -> Engineer:
    key = ECKey.generate_key("P-256")
    assert w.usa.node.federation is not None
    issued = w.usa.node.federation.attest(
        w.usa.principal(ENGINEER), dpop_jkt=key.thumbprint(), now=datetime.now(UTC)
    )
    return Engineer(key, issued.token, _token(USA_ISSUER, USA_IDP, ENGINEER, key))


def fetch_container(w: World, e: Engineer, doc: str) -> bytes:
    url = f"{w.gbr.url}/api/v1/objects/{doc}/container"
    headers = {
        "Authorization": f"DPoP {e.attestation}",
        "DPoP": _proof(e.key, "GET", url, e.attestation),
    }
    r = httpx.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.content


def both_kases(w: World, e: Engineer) -> Any:
    """An unwrap that routes each key access entry by its URL: the GBR KAS with the
    attestation, the USA KAS with the access token; any other URL gets nothing."""
    clients = {
        w.gbr.kas: KasClient(allowed_urls=[w.gbr.kas], token=e.attestation, dpop_key=e.key),
        w.usa.kas: KasClient(allowed_urls=[w.usa.kas], token=e.token, dpop_key=e.key),
    }

    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        client = clients.get(ka.url)
        if client is None:
            raise KeyAccessDenied(f"no KAS of a custodian at {ka.url}")
        return client.rewrap(ka, policy_b64)

    return unwrap


def manifest_of(container: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(container)) as z:
        data: dict[str, Any] = json.loads(z.read("0.manifest.json"))
    return data


def key_access(container: bytes, sid: str) -> tuple[KeyAccess, str]:
    info = manifest_of(container)["encryptionInformation"]
    ka = next(k for k in info["keyAccess"] if k["sid"] == sid)
    return parse_key_access(ka), info["policy"]


# ---------------------------------------------------------------- the custody itself


def test_no_single_kas_holds_the_whole_key_of_a_jointly_held_object(world: World) -> None:
    doc = world.gbr.node.documents.visible(world.gbr.principal(HARPER), world.doc)
    assert doc.custody == ("GBR", "USA")
    e = usa_engineer(world)
    entries = manifest_of(fetch_container(world, e, world.doc))["encryptionInformation"]
    assert sorted((k["sid"], k["url"]) for k in entries["keyAccess"]) == [
        ("gbr", world.gbr.kas),
        ("usa", world.usa.kas),
    ]
    policy = json.loads(base64.b64decode(entries["policy"]))
    attributes = policy["body"]["dataAttributes"]
    fqns = {a["attribute"] if isinstance(a, dict) else a for a in attributes}
    assert set(custody_attributes("GBR", world.doc, ["GBR", "USA"])) <= fqns
    set_entry = world.gbr.entries("partnership.joint_custody_set")[-1]
    assert set_entry["joint_custody"] == ["GBR", "USA"] and set_entry["justification"] == WHY
    protected = world.gbr.entries("document.protected")[-1]
    assert protected["document"] == world.doc and protected["custody"] == ["GBR", "USA"]


def test_usa_engineer_opens_only_when_both_kases_release(world: World) -> None:
    e = usa_engineer(world)
    container = fetch_container(world, e, world.doc)
    out = io.BytesIO()
    open_container(io.BytesIO(container), out, unwrap=both_kases(world, e))
    assert out.getvalue() == CONTENT
    at_gbr = world.gbr.entries("kas.rewrap")[-1]
    assert at_gbr["allowed"] is True and at_gbr["subject"] == f"{ENGINEER}@USA"
    at_usa = world.usa.entries("kas.rewrap")[-1]
    assert at_usa["allowed"] is True and at_usa["subject"] == ENGINEER
    assert at_usa["custody"] is True
    assert at_usa["object"] == world.doc and at_usa["originator"] == "GBR"


def test_usa_kas_refusal_keeps_the_object_closed_though_gbr_released(world: World) -> None:
    """The USA engineer's attestation still names the project; the USA node's own
    records no longer do: GBR releases its share, USA does not, nothing opens."""
    e = usa_engineer(world)
    container = fetch_container(world, e, world.doc)
    vetting = world.usa.node.vetting
    person = vetting.get_person(ENGINEER)
    vetting.update_person(replace(person, projects=()), at=datetime.now(UTC), actor="usa-vo")
    try:
        with pytest.raises(KeyAccessDenied):
            open_container(io.BytesIO(container), io.BytesIO(), unwrap=both_kases(world, e))
    finally:
        vetting.update_person(person, at=datetime.now(UTC), actor="usa-vo")
    at_gbr = world.gbr.entries("kas.rewrap")[-1]
    assert at_gbr["allowed"] is True and at_gbr["subject"] == f"{ENGINEER}@USA"
    at_usa = world.usa.entries("kas.rewrap")[-1]
    assert at_usa["allowed"] is False and at_usa["custody"] is True
    assert "NO_NEED_TO_KNOW" in {r["code"] for r in at_usa["reasons"]}
    assert [k["result"] for k in at_usa["key_access"]] == ["fail"]


def test_tampered_policy_breaks_the_binding_at_the_custodian_kas(world: World) -> None:
    """Widening Releasable To in the policy: the USA KAS's share no longer binds."""
    e = usa_engineer(world)
    ka, policy_b64 = key_access(fetch_container(world, e, world.doc), "usa")
    policy = json.loads(base64.b64decode(policy_b64))
    policy["body"]["dataAttributes"].append({"attribute": marking_attributes("SECRET", ["JPN"])[1]})
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    client = KasClient(allowed_urls=[world.usa.kas], token=e.token, dpop_key=e.key)
    with pytest.raises(KeyAccessDenied):
        client.rewrap(ka, forged)
    entry = world.usa.entries("kas.rewrap")[-1]
    assert entry["allowed"] is False
    assert entry["key_access"][0]["reason"] == "policy binding does not match"
    assert entry["policy_uuid"] == ""  # never parsed, never decided


def _forged_share(
    w: World, tmp: Path, originator: str, custody: list[str]
) -> tuple[KeyAccess, str]:
    """A container anyone could make with the USA KAS's public key, its policy naming
    ``originator``: the USA KAS may only decide it as a custodian of a pinned node."""
    info = w.usa.node.kas.service.store.active("rsa:2048")
    target = KasTarget(w.usa.kas, info.public_key_pem, info.kid, sid="usa")
    src, dst = tmp / "plain.bin", tmp / f"{originator}.tdf"
    src.write_bytes(b"not the partner's object")
    attributes = (
        *marking_attributes("SECRET", ["USA", originator], ["hypersonic"]),
        *custody_attributes(originator, "forged-1", custody),
    )
    protect(src, dst, kas=[target], attributes=attributes, at=datetime.now(UTC))
    return key_access(dst.read_bytes(), "usa")


def test_custodian_refuses_an_object_of_an_unpinned_originator(
    world: World, tmp_path: Path
) -> None:
    e = usa_engineer(world)
    client = KasClient(allowed_urls=[world.usa.kas], token=e.token, dpop_key=e.key)
    ka, policy = _forged_share(world, tmp_path, "AUS", ["AUS", "USA"])
    with pytest.raises(KeyAccessDenied):
        client.rewrap(ka, policy)
    entry = world.usa.entries("kas.rewrap")[-1]
    assert entry["allowed"] is False and entry["custody"] is True
    assert [r["code"] for r in entry["reasons"]] == ["custody_originator_unpinned"]
    assert entry["originator"] == "AUS" and entry["object"] == "forged-1"


def test_superseded_own_object_not_opened_under_a_policy_it_names(
    world: World, tmp_path: Path
) -> None:
    """A policy naming this node as originator of an object it does not hold (one
    relabelled since, or never its own) is not opened under the policy's label."""
    e = usa_engineer(world)
    client = KasClient(allowed_urls=[world.usa.kas], token=e.token, dpop_key=e.key)
    ka, policy = _forged_share(world, tmp_path, "USA", ["GBR", "USA"])
    with pytest.raises(KeyAccessDenied):
        client.rewrap(ka, policy)
    entry = world.usa.entries("kas.rewrap")[-1]
    assert [r["code"] for r in entry["reasons"]] == ["unknown_object"]
    assert "custody" not in entry


# ---------------------------------------------------------------- upload refusals


def test_custody_nation_not_pinned_refused_at_upload_with_nothing_stored(world: World) -> None:
    node = world.gbr.node
    harper = world.gbr.principal(HARPER)
    before = (set(node.blobs.keys()), node.documents.count(harper), node.log.size())
    with pytest.raises(CustodyUnavailable, match="has not pinned the AUS node"):
        node.documents.upload(
            harper, title="Not pinned", project_id="hypersonic", classification="SECRET",
            rel_to=["USA"], filename="x.bin", media_type="application/octet-stream",
            data=b"x", at=datetime.now(UTC), custody=["GBR", "AUS"],
        )  # fmt: skip
    assert (set(node.blobs.keys()), node.documents.count(harper), node.log.size()) == before


def test_custody_by_a_nation_outside_the_partnership_refused_at_upload(world: World) -> None:
    with pytest.raises(InvalidInput, match="outside the partnership"):
        world.gbr.node.documents.upload(
            world.gbr.principal(HARPER), title="Outside", project_id="hypersonic",
            classification="SECRET", rel_to=["USA"], filename="x.bin",
            media_type="application/octet-stream", data=b"x", at=datetime.now(UTC),
            custody=["FRA"],
        )  # fmt: skip


def test_api_upload_to_an_unpinned_custodian_refused_and_custody_shown(world: World) -> None:
    key = ECKey.generate_key("P-256")
    token = _token(GBR_ISSUER, GBR_IDP, HARPER, key)  # Harper at home, bound to her key
    base = f"{world.gbr.url}/api/v1"

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        h = {"Authorization": f"DPoP {token}", "DPoP": _proof(key, method, base + path, token)}
        return httpx.request(method, base + path, headers=h, timeout=10, **kw)

    got = call("GET", f"/objects/{world.doc}")
    assert got.status_code == 200, got.text
    assert got.json()["custody"] == ["GBR", "USA"]
    assert call("GET", "/projects/hypersonic").json()["joint_custody"] == ["GBR", "USA"]
    form = {"title": "Own custody", "project_id": "hypersonic", "classification": "SECRET"}
    files = {"file": ("a.txt", b"alone", "text/plain")}
    alone = call("POST", "/objects", data={**form, "custody": "none"}, files=files)
    assert alone.status_code == 201, alone.text
    assert alone.json()["custody"] == []
    refused = call("POST", "/objects", data={**form, "custody": ["GBR", "AUS"]}, files=files)
    assert refused.status_code == 422
    assert "AUS" in refused.json()["error"]["message"]


# ---------------------------------------------------------------- the setting


def test_engineer_cannot_drop_the_joint_custody_of_a_project(world: World) -> None:
    registry = world.gbr.node.partnerships
    at = datetime.now(UTC)
    with pytest.raises(NotPermitted):
        registry.set_joint_custody(
            world.gbr.principal(HARPER), "hypersonic", [], at, justification="engineer tries"
        )
    refusal = world.gbr.entries("authz.decision")[-1]
    assert refusal["allowed"] is False and refusal["by"] == HARPER
    assert registry.project(world.gbr.principal(HARPER), "hypersonic").joint_custody == (
        "GBR",
        "USA",
    )


def test_cli_custody_change_needs_an_officer_and_a_justification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_DEMO", "true")
    runner = CliRunner()
    assert runner.invoke(cli, ["partnership", "load-demo"]).exit_code == 0
    args = ["partnership", "custody", "hypersonic", "gbr", "usa", "--actor", "gbr-so-whitfield"]
    assert runner.invoke(cli, args).exit_code != 0  # no justification, no change
    r = runner.invoke(cli, [*args, "--justification", WHY])
    assert r.exit_code == 0, r.output
    assert "joint custody of hypersonic: GBR, USA" in r.output
    shown = runner.invoke(cli, ["partnership", "show"])
    assert "joint custody of hypersonic: GBR, USA" in shown.output
    r = runner.invoke(
        cli,
        ["partnership", "custody", "hypersonic", "--actor", "gbr-eng-harper",
         "--justification", "an engineer may not"],
    )  # fmt: skip
    assert r.exit_code != 0


# ---------------------------------------------------------------- opening on the node


def test_gbr_engineer_opens_on_their_node_only_with_usa_consent(world: World) -> None:
    """The GBR node asks the USA KAS for its share with an attestation of Harper."""
    harper = world.gbr.principal(HARPER)
    _, decision, plain = world.gbr.node.documents.open(harper, world.doc, datetime.now(UTC))
    assert decision.allowed and plain == CONTENT
    at_usa = world.usa.entries("kas.rewrap")[-1]
    assert at_usa["allowed"] is True and at_usa["custody"] is True
    assert at_usa["subject"] == f"{HARPER}@GBR" and at_usa["via"] == "attestation"
    issued = world.gbr.entries("federation.attestation.issued")[-1]
    assert issued["person_id"] == HARPER


def test_usa_refusal_keeps_the_object_closed_on_the_gbr_node(world: World) -> None:
    """GBR's admission to hypersonics ends in the USA node's records (as a
    quorum-approved change that has reached USA but not yet GBR would end it): the
    USA KAS refuses GBR's people, and the GBR node cannot open the object although
    it allows them."""
    usa = world.usa
    officer = usa.principal("usa-so-bennett")
    admitted = usa.node.partnerships.admissions(
        officer, project_id="hypersonic", nation="GBR", offset=0, limit=10
    ).items
    at = datetime.now(UTC)
    for a in admitted:
        usa.node.partnerships.end(
            officer, a.id, at, justification="USA withdraws consent", by_quorum=True
        )
    harper = world.gbr.principal(HARPER)
    with pytest.raises(AccessDenied):
        world.gbr.node.documents.open(harper, world.doc, datetime.now(UTC))
    at_usa = usa.entries("kas.rewrap")[-1]
    assert at_usa["allowed"] is False and at_usa["custody"] is True
    assert at_usa["subject"] == f"{HARPER}@GBR"
    assert "NATION_NOT_ADMITTED" in {r["code"] for r in at_usa["reasons"]}
    decided = world.gbr.entries("decision")[-1]
    assert decided["allowed"] is True and decided["object"] == world.doc


# ---------------------------------------------------------------- the pieces


def test_resplit_shares_still_join_to_the_key_only_all_together() -> None:
    dek = hazmat.new_key_share()
    shares = hazmat.resplit_key(dek, ["gbr", "usa", "gbr", "aus"])
    assert list(shares) == ["gbr", "usa", "aus"]
    assert hazmat.join_key_shares(shares.values()) == dek
    assert hazmat.join_key_shares([shares["gbr"], shares["usa"]]) != dek


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["https://relto.example/attr/caveat/value/x"], "unknown attribute"),
        (["https://other.example/attr/relto/value/jpn"], "another namespace"),
        (["https://relto.example/attr/originator/value/usa"], "exactly one originator"),
        (["not an fqn"], "not an attribute value FQN"),
    ],
)
def test_policy_a_custodian_does_not_understand_is_refused(extra: list[str], why: str) -> None:
    """Anything unknown in a joint custody policy denies (fail closed), never ignored."""
    good = [
        *marking_attributes("SECRET", ["GBR", "USA"], ["hypersonic"]),
        *custody_attributes("GBR", "obj-1", ["GBR", "USA"]),
    ]
    policy = read_custody_policy(good, "https://relto.example")
    assert policy is not None and policy.custody == ("GBR", "USA")
    with pytest.raises(CustodyPolicyError, match=why):
        read_custody_policy([*good, *extra], "https://relto.example")
    assert read_custody_policy(marking_attributes("SECRET"), "https://relto.example") is None
