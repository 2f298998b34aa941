"""The foreign side of federation: a node accepts only what it can verify.

One GBR node (a real app, over HTTP with TestClient) pins the USA and JPN nodes'
descriptors; their people come with an attestation from their home node and a
DPoP proof of the key it is bound to. A USA engineer lists what is releasable to
USA, fetches a GBR container and opens it client-side through the GBR KAS, byte
for byte. Every way an attestation can be wrong is refused with its own reason,
releases nothing, and leaves a record: the KAS's log line for a credential
refused before anyone is known (as for OIDC tokens, nothing an anonymous caller
sends fills the transparency log), a ``kas.rewrap`` entry in the transparency
log for an authentic person whose attestation is not in force.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey

from relto.audit.entries import decode_entry
from relto.config import Settings
from relto.federation import (
    AttestedClearance,
    AttestedPerson,
    StatusReference,
    TokenStatus,
    make_attestation,
)
from relto.federation.errors import FederationError
from relto.kas.wire import rewrap_request_body
from relto.node import Node
from relto.server import create_app
from relto.ztdf import hazmat
from relto.ztdf.container import open_container
from relto.ztdf.manifest import KeyAccess, parse_key_access

from .conftest import FakeNode

REWRAP = "http://testserver/kas.AccessService/Rewrap"
CONTENT = secrets.token_bytes(70_000)  # more than one segment


class FakeStatus:
    """The home nodes' status lists, in process: an index -> status, or down."""

    blocking = False

    def __init__(self) -> None:
        self.values: dict[tuple[str, int], TokenStatus] = {}
        self.down = False
        self.asked: list[tuple[str, int]] = []

    def status(
        self,
        ref: StatusReference,
        issuer_nation: str,
        now: datetime,
        *,
        issued_at: datetime | None = None,
    ) -> TokenStatus:
        self.asked.append((issuer_nation, ref.idx))
        if self.down:
            raise FederationError("the status list could not be fetched")
        return self.values.get((issuer_nation, ref.idx), TokenStatus.VALID)


@dataclass
class Person:
    """A person of a partner nation with their own DPoP key."""

    facts: AttestedPerson
    home: FakeNode
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))
    idx: int = field(default_factory=lambda: secrets.randbelow(2**20))

    def attestation(self, *, now: datetime | None = None, **kw: Any) -> str:
        args: dict[str, Any] = {
            "cnf_jkt": self.key.thumbprint(),
            "signer": self.home.signer,
            "issuer": self.home.base_url,
            "now": now or datetime.now(UTC),
            "status": StatusReference(self.idx, f"{self.home.base_url}/status/1"),
        }
        args.update(kw)
        facts = args.pop("facts", self.facts)
        return make_attestation(facts, **args)

    def proof(self, url: str, token: str, method: str = "POST", *, jti: str = "") -> str:
        ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=")
        claims = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "ath": ath.decode(),
        }
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": self.key.as_dict(private=False)}
        return jwt.encode(header, claims, self.key, default_type=None)

    def headers(self, url: str, token: str, method: str = "GET") -> dict[str, str]:
        return {"Authorization": f"DPoP {token}", "DPoP": self.proof(url, token, method)}


@dataclass
class World:
    client: TestClient
    node: Node
    status: FakeStatus
    usa: FakeNode
    jpn: FakeNode
    doc: str
    hidden: str

    def rewrap_entries(self) -> list[dict[str, Any]]:
        log = self.node.log
        entries = [decode_entry(e.body) for e in log.entries(0, log.size())]
        return [dict(e.payload) for e in entries if e.kind == "kas.rewrap"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app = create_app(Settings(demo=True, data_dir=tmp_path_factory.mktemp("gbr")))  # type: ignore[call-arg]
    node: Node = app.state.node
    status = FakeStatus()
    node.attestations.status = status
    now = datetime.now(UTC)
    officer = node.directory.principal("gbr-so-whitfield", via="node")
    harper = node.directory.principal("gbr-eng-harper", via="node")
    assert officer is not None and harper is not None
    usa, jpn = FakeNode("USA"), FakeNode("JPN")
    for partner in (usa, jpn):
        node.trust.pin(
            partner.descriptor(at=now - timedelta(minutes=1)),
            fingerprint=partner.node_key.fingerprint,
            actor=officer,
            now=now,
        )
    docs = {}
    for title, rel_to in (("Foreign shared", ["USA", "JPN"]), ("Foreign hidden", [])):
        docs[title] = node.documents.upload(
            harper, title=title, project_id="hypersonic", classification="SECRET",
            rel_to=rel_to, filename="f.bin", media_type="application/octet-stream",
            data=CONTENT, at=now,
        ).id  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, node, status, usa, jpn, docs["Foreign shared"], docs["Foreign hidden"])
    node.db.dispose()


def usa_engineer(w: World) -> Person:
    return Person(
        AttestedPerson(
            "usa-eng-ramirez",
            "USA",
            frozenset({"USA"}),
            roles=frozenset({"engineer", "security_officer"}),
            projects=frozenset({"hypersonic"}),
            clearances=(AttestedClearance("USA", "TOP_SECRET", "granted"),),
        ),
        w.usa,
    )


def as_attested(w: World, person_id: str, home: FakeNode) -> Person:
    """A person of this node's demo directory, attested by their home node with
    exactly the facts the directory holds (to compare decisions)."""
    p = w.node.vetting.get_person(person_id)
    now = datetime.now(UTC)
    clearances = tuple(
        AttestedClearance(c.nation, c.classification, str(c.status_at(now).value))
        for c in w.node.vetting.list_clearances(limit=50, person_id=person_id).items
    )
    return Person(
        AttestedPerson(
            person_id, p.home_nation, frozenset(p.nationalities),
            projects=frozenset(m.project for m in p.projects), clearances=clearances,
        ),
        home,
    )  # fmt: skip


def fetch_container(w: World, person: Person, token: str, doc: str) -> bytes:
    url = f"http://testserver/api/v1/objects/{doc}/container"
    r = w.client.get(url, headers=person.headers(url, token))
    assert r.status_code == 200, r.text
    return r.content


@dataclass
class Rewrap:
    status: int
    body: dict[str, Any]
    share: bytes | None = None


def rewrap(
    w: World,
    person: Person,
    token: str,
    ka: KeyAccess,
    policy_b64: str,
    *,
    proof: str | None = None,
    key: ECKey | None = None,
) -> Rewrap:
    """One rewrap, as an OpenTDF client does it: an ephemeral EC key, a request
    token signed with the DPoP key, the attestation in ``Authorization``."""
    priv = ec.generate_private_key(ec.SECP256R1())
    body = rewrap_request_body(ka, policy_b64, hazmat.public_key_pem(priv))
    now = int(time.time())
    srt = jwt.encode(
        {"alg": "ES256"},
        {"requestBody": json.dumps(body), "iat": now, "exp": now + 60},
        key or person.key,
    )
    r = w.client.post(
        REWRAP,
        json={"signedRequestToken": srt},
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": proof or person.proof(REWRAP, token),
            "Connect-Protocol-Version": "1",
        },
    )
    data = r.json()
    share = None
    if r.status_code == 200:
        result = data["responses"][0]["results"][0]
        if result["status"] == "permit":
            wrapped = base64.b64decode(result["kasWrappedKey"])
            share = hazmat.ec_unwrap(priv, data["sessionPublicKey"], wrapped)
    return Rewrap(r.status_code, data, share)


def first_key_access(container: bytes) -> tuple[KeyAccess, str]:
    """The key access object and policy of a container, for a bare rewrap."""
    with zipfile.ZipFile(io.BytesIO(container)) as z:
        manifest = json.loads(z.read("0.manifest.json"))
    ka = manifest["encryptionInformation"]["keyAccess"][0]
    policy = manifest["encryptionInformation"]["policy"]
    return parse_key_access(ka), policy


def open_as(w: World, person: Person, token: str, container: bytes) -> bytes:
    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        got = rewrap(w, person, token, ka, policy_b64)
        assert got.share is not None, got.body
        return got.share

    out = io.BytesIO()
    open_container(io.BytesIO(container), out, unwrap=unwrap)
    return out.getvalue()


# ---------------------------------------------------------------- the good path


def test_usa_engineer_opens_gbr_object_through_gbr_kas_byte_for_byte(world: World) -> None:
    bob = usa_engineer(world)
    token = bob.attestation()
    container = fetch_container(world, bob, token, world.doc)
    assert open_as(world, bob, token, container) == CONTENT
    entry = world.rewrap_entries()[-1]
    assert entry["allowed"] is True
    assert entry["subject"] == "usa-eng-ramirez@USA"
    assert entry["nation"] == "USA" and entry["via"] == "attestation"
    assert entry["attestation"]["issuer_nation"] == "USA"
    assert entry["attestation"]["person_id"] == "usa-eng-ramirez"
    assert entry["attestation"]["jti"]
    assert ("USA", bob.idx) in world.status.asked


def test_foreign_person_lists_only_objects_releasable_to_their_nation(world: World) -> None:
    bob = usa_engineer(world)
    token = bob.attestation()
    url = "http://testserver/api/v1/objects"
    r = world.client.get(url, params={"limit": 200}, headers=bob.headers(url, token))
    assert r.status_code == 200, r.text
    titles = {o["title"] for o in r.json()["items"]}
    assert "Foreign shared" in titles and "Foreign hidden" not in titles
    for doc in (world.hidden,):
        for path in (f"/api/v1/objects/{doc}", f"/api/v1/objects/{doc}/container"):
            u = f"http://testserver{path}"
            assert world.client.get(u, headers=bob.headers(u, token)).status_code == 404


def test_foreign_roles_grant_nothing_administrative(world: World) -> None:
    """The attestation says security officer at home: on this node, nothing."""
    bob = usa_engineer(world)
    token = bob.attestation()
    url = "http://testserver/api/v1/people/gbr-eng-harper"
    assert world.client.get(url, headers=bob.headers(url, token)).status_code == 404
    url = "http://testserver/api/v1/audit/entries"
    r = world.client.get(url, params={"start": 0, "end": 1}, headers=bob.headers(url, token))
    assert r.status_code == 404
    # Writing with an attestation is refused outright, whatever it would change.
    url = "http://testserver/api/v1/admissions"
    r = world.client.post(
        url,
        json={"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET",
              "justification": "foreign officer"},
        headers=bob.headers(url, token, "POST"),
    )  # fmt: skip
    assert r.status_code == 401 and "reading only" in r.json()["error"]["message"]


def test_attested_person_named_like_a_local_person_is_never_taken_for_them(
    world: World,
) -> None:
    """The USA node attests a person whose id at home is a GBR person's id here."""
    impostor = Person(AttestedPerson("gbr-eng-harper", "USA", frozenset({"USA"})), world.usa)
    token = impostor.attestation()
    url = f"http://testserver/api/v1/objects/{world.doc}/content"
    r = world.client.get(url, headers=impostor.headers(url, token))
    assert r.status_code in (403, 404) and CONTENT not in r.content
    container = fetch_container(world, impostor, token, world.doc)
    ka, policy = first_key_access(container)
    got = rewrap(world, impostor, token, ka, policy)
    assert got.share is None
    assert world.rewrap_entries()[-1]["subject"] == "gbr-eng-harper@USA"


def test_jpn_engineer_denied_with_the_same_reasons_as_on_one_node(world: World) -> None:
    sato = as_attested(world, "jpn-eng-sato", world.jpn)
    token = sato.attestation()
    container = fetch_container(world, sato, token, world.doc)
    ka, policy = first_key_access(container)
    got = rewrap(world, sato, token, ka, policy)
    assert got.status == 200 and got.share is None
    assert got.body["responses"][0]["results"][0]["error"] == "forbidden"
    attested = [r["code"] for r in world.rewrap_entries()[-1]["reasons"]]
    doc = world.node.documents.visible(
        world.node.directory.principal("gbr-so-whitfield", via="node"),  # type: ignore[arg-type]
        world.doc,
    )
    local = world.node.facts.decide("jpn-eng-sato", "read", doc, datetime.now(UTC))
    assert not local.allowed
    assert attested == [r.code for r in local.reasons] and attested


# ------------------------------------------------------------------- refusals


_CONTAINER: dict[str, bytes] = {}


def refused_with(
    w: World, person: Person, token: str, code: str, kas_log: pytest.CaptureFixture[str], **kw: Any
) -> None:
    """The rewrap is refused (401) saying ``code``; no key; the KAS logs why; the
    transparency log is not written by a caller nobody could authenticate."""
    ka, policy = first_key_access(_CONTAINER["doc"])
    before = len(w.rewrap_entries())
    kas_log.readouterr()
    got = rewrap(w, person, token, ka, policy, **kw)
    assert got.status == 401, got.body
    assert got.share is None and "responses" not in got.body
    assert got.body["code"] == "unauthenticated" and got.body["message"].startswith(code)
    said = kas_log.readouterr().out
    assert "kas_request_failed" in said and code in said, said
    assert len(w.rewrap_entries()) == before


@pytest.fixture
def container(world: World) -> bytes:
    bob = usa_engineer(world)
    data = fetch_container(world, bob, bob.attestation(), world.doc)
    _CONTAINER["doc"] = data
    return data


def test_forged_attestation_refused(world: World, container: bytes, capfd: Any) -> None:
    bob = usa_engineer(world)
    forged = FakeNode("USA")  # a key the pinned USA node never published
    token = bob.attestation(signer=forged.signer)
    refused_with(world, bob, token, "attestation_forged", capfd)


def test_expired_attestation_refused(world: World, container: bytes, capfd: Any) -> None:
    bob = usa_engineer(world)
    token = bob.attestation(now=datetime.now(UTC) - timedelta(minutes=10))
    refused_with(world, bob, token, "attestation_expired", capfd)


def test_usa_node_attesting_a_gbr_national_refused(
    world: World, container: bytes, capfd: Any
) -> None:
    gbr = AttestedPerson("gbr-eng-harper", "GBR", frozenset({"GBR"}),
                         projects=frozenset({"hypersonic"}),
                         clearances=(AttestedClearance("GBR", "SC", "granted"),))  # fmt: skip
    person = Person(gbr, world.usa)
    token = person.attestation()
    refused_with(world, person, token, "attestation_foreign_issued", capfd)


def test_attestation_with_another_dpop_key_refused(
    world: World, container: bytes, capfd: Any
) -> None:
    bob = usa_engineer(world)
    token = bob.attestation()
    thief = Person(bob.facts, world.usa)  # holds the token, not bob's key
    refused_with(world, thief, token, "attestation_wrong_key", capfd)


def test_replayed_dpop_proof_refused(world: World, container: bytes, capfd: Any) -> None:
    bob = usa_engineer(world)
    token = bob.attestation()
    proof = bob.proof(REWRAP, token)
    ka, policy = first_key_access(container)
    first = rewrap(world, bob, token, ka, policy, proof=proof)
    assert first.share is not None
    refused_with(world, bob, token, "dpop_replayed", capfd, proof=proof)


def test_unpinned_nation_refused(world: World, container: bytes, capfd: Any) -> None:
    kor = FakeNode("KOR")  # a real node, but nobody here pinned it
    person = Person(AttestedPerson("kor-eng-lee", "KOR", frozenset({"KOR"})), kor)
    refused_with(world, person, person.attestation(), "attestation_unpinned", capfd)


def test_attestation_without_dpop_proof_refused(world: World, container: bytes) -> None:
    bob = usa_engineer(world)
    token = bob.attestation()
    ka, policy = first_key_access(container)
    priv = ec.generate_private_key(ec.SECP256R1())
    body = rewrap_request_body(ka, policy, hazmat.public_key_pem(priv))
    srt = jwt.encode({"alg": "ES256"}, {"requestBody": json.dumps(body)}, bob.key)
    r = world.client.post(
        REWRAP, json={"signedRequestToken": srt}, headers={"Authorization": f"DPoP {token}"}
    )
    assert r.status_code == 401 and r.json()["message"].startswith("dpop_required")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (TokenStatus.INVALID, "attestation_revoked"),
        (TokenStatus.SUSPENDED, "attestation_suspended"),
        (None, "attestation_status_unavailable"),
    ],
)
def test_attestation_not_in_force_refused_and_recorded(
    world: World, container: bytes, status: TokenStatus | None, code: str
) -> None:
    bob = usa_engineer(world)
    token = bob.attestation()
    if status is None:
        world.status.down = True
    else:
        world.status.values[("USA", bob.idx)] = status
    try:
        ka, policy = first_key_access(container)
        got = rewrap(world, bob, token, ka, policy)
        url = f"http://testserver/api/v1/objects/{world.doc}/container"
        api = world.client.get(url, headers=bob.headers(url, token))
    finally:
        world.status.down = False
    assert got.status == 200 and got.share is None
    result = got.body["responses"][0]["results"][0]
    assert result["status"] == "fail" and result["error"] == "forbidden"
    entry = world.rewrap_entries()[-1]
    assert entry["allowed"] is False
    assert [r["code"] for r in entry["reasons"]] == [code]
    assert entry["attestation"]["status"] == code
    assert entry["key_access"][0]["result"] == "fail"
    assert api.status_code == 403 and api.json()["error"]["message"].startswith(code)


def test_attestation_without_status_reference_refused(world: World, container: bytes) -> None:
    bob = usa_engineer(world)
    token = bob.attestation(status=None)
    ka, policy = first_key_access(container)
    got = rewrap(world, bob, token, ka, policy)
    assert got.share is None
    assert [r["code"] for r in world.rewrap_entries()[-1]["reasons"]] == ["attestation_no_status"]


def test_untrusting_a_node_stops_its_attestations_at_once(world: World) -> None:
    """An unpin takes effect with the next request (the pins are read each time)."""
    officer = world.node.directory.principal("gbr-so-whitfield", via="node")
    assert officer is not None
    bob = usa_engineer(world)
    token = bob.attestation()
    url = "http://testserver/api/v1/objects"
    assert world.client.get(url, headers=bob.headers(url, token)).status_code == 200
    now = datetime.now(UTC)
    world.node.trust.unpin("USA", actor=officer, now=now)
    try:
        r = world.client.get(url, headers=bob.headers(url, token))
        assert r.status_code == 401
        assert "attestation_unpinned" in r.json()["error"]["message"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    finally:
        world.node.trust.pin(
            world.usa.descriptor(at=now - timedelta(minutes=1)),
            fingerprint=world.usa.node_key.fingerprint,
            actor=officer,
            now=now,
        )
