"""The home side over HTTP: the node's descriptor, attestations of its own people
(facts from the directory, bound to the DPoP key, recorded), and the Token Status
List that revokes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from relto.authz import Authorizer, Principal
from relto.config import Settings
from relto.events import MemorySink
from relto.federation import (
    MemoryPinRepository,
    TokenStatus,
    TrustStore,
    verify_attestation,
    verify_descriptor,
)
from relto.federation._keys import split_compact
from relto.federation.errors import StatusUnavailable
from relto.federation.issuer import ATTESTATION_ISSUED
from relto.federation.status_client import StatusListCache
from relto.server import create_app
from relto.vetting import Person, Status

from .home_support import ENGINEER, SECRET, DpopKey, add_people, token, trust_issuers

ATTEST = "http://testserver/api/v1/federation/attestation"
Home = tuple[TestClient, MemorySink, str]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    sink = MemorySink()
    app = create_app(
        Settings(data_dir=tmp_path, secret_key=SECRET, keystore_passphrase=SECRET), sink=sink
    )
    trust_issuers(app)
    clearance = add_people(app.state.node)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, sink, clearance
    app.state.node.db.dispose()


def _pinned_by_usa(client: TestClient) -> TrustStore:
    """A USA node's trust store holding this GBR node, pinned by its fingerprint."""
    node = client.app.state.node  # type: ignore[attr-defined]
    descriptor = client.get("/.well-known/relto-node").text
    officer = Principal("usa-so", "USA officer", "USA", frozenset({"USA"}),
                        frozenset({("security_officer", "USA")}), "test")  # fmt: skip
    sink = MemorySink()
    store = TrustStore(MemoryPinRepository(), Authorizer(sink), sink, "USA")
    fingerprint = node.federation.descriptors.fingerprint
    store.pin(descriptor, fingerprint=fingerprint, actor=officer, now=datetime.now(UTC))
    return store


def _attest(
    client: TestClient, dpop: DpopKey, nation: str = "GBR", sub: str = ENGINEER, **claims: object
) -> httpx.Response:
    at = token(nation, sub, **claims)
    return client.post(ATTEST, headers=dpop.headers(ATTEST, at))


def test_descriptor_is_public_signed_jwt_pinnable_by_fingerprint(home: Home) -> None:
    client, _, _ = home
    r = client.get("/.well-known/relto-node")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/jwt"
    node = client.app.state.node  # type: ignore[attr-defined]
    d = verify_descriptor(
        r.text, None, datetime.now(UTC), fingerprint=node.federation.descriptors.fingerprint
    )
    assert d.nation == "GBR" and d.base_url == "http://127.0.0.1:8080"
    assert d.kas_keys and {k.algorithm for k in d.kas_keys} == {"rsa:2048", "ec:secp256r1"}
    assert client.get("/.well-known/relto-node").text == r.text  # cached, not re-signed


def test_attestation_facts_come_from_the_directory_never_from_the_token(home: Home) -> None:
    client, sink, _ = home
    dpop = DpopKey()
    forged_claims = {"relto_roles": ["security_officer"], "nationality": "USA",
                     "clearances": [{"level": "DV"}], "projects": ["undersea"]}  # fmt: skip
    r = _attest(client, dpop, **forged_claims)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    store = _pinned_by_usa(client)
    att = verify_attestation(
        body["attestation"], store.trusted(), dpop_jkt=dpop.thumbprint, now=datetime.now(UTC)
    )
    p = att.person
    assert (p.person_id, p.home_nation) == (ENGINEER, "GBR")
    assert p.nationalities == {"GBR", "AUS"} and p.roles == {"engineer"}
    assert p.projects == {"hypersonic"}
    [c] = p.clearances
    assert (c.issuer, c.level, c.status, c.caveats) == ("GBR", "SC", "granted", ("UK EYES ONLY",))
    assert att.expires_at - att.issued_at == timedelta(seconds=300)
    assert body["expires_at"] == att.expires_at.isoformat()
    assert att.status is not None
    assert att.status.uri == "http://127.0.0.1:8080/api/v1/federation/status/1"
    # The home node records that it vouched, before the token left it.
    [entry] = [e.payload for e in sink.events if e.kind == ATTESTATION_ISSUED]
    assert entry["person_id"] == ENGINEER and entry["jti"] == att.jti
    assert entry["status_idx"] == att.status.idx and entry["cnf_jkt"] == dpop.thumbprint


def test_stolen_attestation_is_bound_to_the_requesters_dpop_key(home: Home) -> None:
    client, _, _ = home
    dpop, thief = DpopKey(), DpopKey()
    body = _attest(client, dpop).json()
    claims = split_compact(
        body["attestation"], typ="relto-attestation+jwt", header_members=frozenset(
            {"alg", "typ", "kid"})
    ).unverified_claims  # fmt: skip
    assert claims["cnf"] == {"jkt": dpop.thumbprint} != {"jkt": thief.thumbprint}


def test_attestation_refused_without_a_dpop_proof(home: Home) -> None:
    client, sink, _ = home
    r = client.post(ATTEST, headers={"Authorization": f"Bearer {token('GBR', ENGINEER)}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("DPoP ")
    assert "attestation" not in r.json()
    assert ATTESTATION_ISSUED not in sink.kinds()


def test_foreign_person_gets_no_attestation_from_this_node(home: Home) -> None:
    client, sink, _ = home
    r = _attest(client, DpopKey(), nation="USA", sub="usa-eng-home")
    assert r.status_code == 404
    denied = [
        e.payload for e in sink.events if e.kind == "authz.decision" and not e.payload["allowed"]
    ]
    assert denied[-1]["permission"] == "federation:attest" and denied[-1]["by"] == "usa-eng-home"
    assert ATTESTATION_ISSUED not in sink.kinds()


def test_token_of_another_nations_issuer_cannot_get_an_attestation_for_a_gbr_person(
    home: Home,
) -> None:
    client, _, _ = home
    r = _attest(client, DpopKey(), nation="USA", sub=ENGINEER)
    assert r.status_code == 401


def test_suspension_at_home_turns_the_status_list_entry_invalid(home: Home) -> None:
    client, _, clearance = home
    node = client.app.state.node  # type: ignore[attr-defined]
    dpop = DpopKey()
    store = _pinned_by_usa(client)
    att = verify_attestation(
        _attest(client, dpop).json()["attestation"], store.trusted(),
        dpop_jkt=dpop.thumbprint, now=datetime.now(UTC),
    )  # fmt: skip
    assert att.status is not None
    fetched: list[str] = []

    def fetch(uri: str) -> bytes:
        fetched.append(uri)
        r = client.get(uri, headers={"Accept": "application/statuslist+jwt"})
        assert r.headers["content-type"] == "application/statuslist+jwt"
        return r.content

    cache = StatusListCache(store, fetch)
    now = datetime.now(UTC)
    assert cache.status(att.status, "GBR", now) is TokenStatus.VALID
    node.vetting.transition(
        clearance, Status.SUSPENDED, at=datetime.now(UTC), actor="gbr-vo", reason="incident"
    )
    # Within the verifier's cache lifetime the old answer stands; after it, the new one.
    assert cache.status(att.status, "GBR", now + timedelta(seconds=5)) is TokenStatus.VALID
    later = now + timedelta(seconds=31)
    assert cache.status(att.status, "GBR", later) is TokenStatus.INVALID
    assert fetched == [att.status.uri] * 2


def test_status_list_token_claims_follow_the_draft(home: Home) -> None:
    client, _, _ = home
    dpop = DpopKey()
    _attest(client, dpop)
    r = client.get("/api/v1/federation/status/1")
    assert r.status_code == 200
    parts = split_compact(
        r.text, typ="statuslist+jwt", header_members=frozenset({"alg", "typ", "kid"})
    )
    c = parts.unverified_claims
    assert c["sub"] == "http://127.0.0.1:8080/api/v1/federation/status/1"
    assert c["ttl"] == 30 and c["exp"] > c["iat"] and c["status_list"]["bits"] == 1
    assert set(c) == {"sub", "iat", "exp", "ttl", "status_list"}
    assert client.get("/api/v1/federation/status/2").status_code == 404


def test_person_without_a_current_clearance_is_invalid_from_the_start(home: Home) -> None:
    client, _, clearance = home
    node = client.app.state.node  # type: ignore[attr-defined]
    node.vetting.transition(
        clearance, Status.REVOKED, at=datetime.now(UTC), actor="gbr-vo", reason="revoked"
    )
    dpop = DpopKey()
    store = _pinned_by_usa(client)
    body = _attest(client, dpop).json()
    att = verify_attestation(
        body["attestation"], store.trusted(), dpop_jkt=dpop.thumbprint, now=datetime.now(UTC)
    )
    assert att.person.clearances == ()  # closed clearances are not attested
    assert att.status is not None
    cache = StatusListCache(store, lambda uri: client.get(uri).content)
    assert cache.status(att.status, "GBR", datetime.now(UTC)) is TokenStatus.INVALID


def test_attestation_ttl_setting_cannot_exceed_five_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from relto.federation.config import FederationSettings

    monkeypatch.setenv("RELTO_FEDERATION_ATTESTATION_TTL", "301")
    with pytest.raises(ValidationError):
        FederationSettings()  # type: ignore[call-arg]
    monkeypatch.setenv("RELTO_FEDERATION_ATTESTATION_TTL", "60")
    assert FederationSettings().attestation_ttl == 60  # type: ignore[call-arg]


def test_unreachable_status_list_fails_closed(home: Home) -> None:
    client, _, _ = home
    dpop = DpopKey()
    store = _pinned_by_usa(client)
    att = verify_attestation(
        _attest(client, dpop).json()["attestation"], store.trusted(),
        dpop_jkt=dpop.thumbprint, now=datetime.now(UTC),
    )  # fmt: skip
    assert att.status is not None

    def down(uri: str) -> bytes:
        raise ConnectionError("GBR node unreachable")

    with pytest.raises(StatusUnavailable):
        StatusListCache(store, down).status(att.status, "GBR", datetime.now(UTC))


def test_each_person_has_their_own_stable_entry_in_the_list(home: Home) -> None:
    client, _, _ = home
    node = client.app.state.node  # type: ignore[attr-defined]
    node.vetting.register_person(
        Person("gbr-eng-uncleared", "Uncleared", frozenset({"GBR"}), "MOD", "GBR"),
        at=datetime.now(UTC), actor="test-setup",
    )  # fmt: skip
    store = _pinned_by_usa(client)
    refs = {}
    for person in (ENGINEER, "gbr-eng-uncleared", ENGINEER):
        dpop = DpopKey()
        att = verify_attestation(
            _attest(client, dpop, sub=person).json()["attestation"], store.trusted(),
            dpop_jkt=dpop.thumbprint, now=datetime.now(UTC),
        )  # fmt: skip
        assert att.status is not None
        refs.setdefault(person, att.status)
        assert refs[person] == att.status  # the same index every time
    cache = StatusListCache(store, lambda uri: client.get(uri).content)
    now = datetime.now(UTC)
    assert cache.status(refs[ENGINEER], "GBR", now) is TokenStatus.VALID
    assert cache.status(refs["gbr-eng-uncleared"], "GBR", now) is TokenStatus.INVALID
