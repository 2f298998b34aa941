"""The KAS over HTTP: Connect JSON and protobuf, authentication, binding, decision, audit.

The module's app is built from default settings, so its KAS requires DPoP: the
``kas`` helper sends a proof with every rewrap unless a test says
``bearer_only=True`` (and relaxes the requirement where it needs to pass)."""

from __future__ import annotations

import base64
import gzip
import json
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kas_testing import (
    AUDIENCE,
    ISSUER,
    DpopKey,
    TestIssuer,
    client_keys,
    make_kao,
    open_result,
    policy_b64,
    request_body,
)

from relto.config import Settings
from relto.events import MemorySink
from relto.kas import (
    AuthConfig,
    Authenticator,
    DenyAllDecider,
    KasDecision,
    RewrapFacts,
    StaticJwks,
    UnsafeAllowAllDecider,
)
from relto.kas.auth import MemoryReplayCache, TrustedIssuer
from relto.kas.runtime import KasRuntime
from relto.server import create_app

REWRAP = "/kas.AccessService/Rewrap"
PUBKEY = "/kas.AccessService/PublicKey"
URL = "http://testserver" + REWRAP


class RecordingDecider:
    def __init__(self, allowed: bool = True) -> None:
        self.allowed = allowed
        self.calls: list[RewrapFacts] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        self.calls.append(facts)
        return KasDecision(self.allowed)


class Kas:
    def __init__(
        self,
        client: TestClient,
        rt: KasRuntime,
        sink: MemorySink,
        issuer: TestIssuer,
        config: AuthConfig | None = None,
    ) -> None:
        self.client, self.rt, self.sink, self.issuer = client, rt, sink, issuer
        self.decider = RecordingDecider()
        rt.decider = self.decider
        # The checks the app was built with (DPoP required by default); only the
        # issuer's keys are swapped for the test issuer's.
        self.config = config or AuthConfig(require_dpop=True)
        self.trust()

    def trust(self, *, require_dpop: bool | None = None) -> None:
        """Trust the test issuer (bound to GBR); ``require_dpop=False`` relaxes DPoP
        as ``RELTO_KAS_REQUIRE_DPOP=false`` does."""
        config = self.config
        if require_dpop is not None:
            config = AuthConfig(
                leeway_seconds=config.leeway_seconds,
                dpop_window_seconds=config.dpop_window_seconds,
                require_dpop=require_dpop,
            )
        self.rt.authenticator = Authenticator(
            config,
            replay=MemoryReplayCache(),
            issuers=[TrustedIssuer(ISSUER, StaticJwks(self.issuer.jwks()), AUDIENCE, "GBR")],
        )

    def events(self) -> list[Any]:
        return [e for e in self.sink.events if e.kind == "kas.rewrap"]

    def key(self, alg: str = "rsa:2048") -> tuple[str, str]:
        info = self.rt.service.store.active(alg)  # type: ignore[arg-type]
        return info.kid, info.public_key_pem

    def rewrap(
        self,
        body: str,
        *,
        token: str | None = None,
        dpop: DpopKey | None = None,
        proof: str | None = None,
        srt_signer: DpopKey | None = None,
        bearer_only: bool = False,
    ) -> Any:
        """A rewrap with a fresh DPoP proof (``dpop``'s, or a new key's), or with the
        bearer token alone (``bearer_only``)."""
        token = token if token is not None else self.issuer.token()
        if dpop is None and not bearer_only:
            dpop = DpopKey()
        signer = srt_signer or dpop or DpopKey()
        now = int(time.time())
        srt = signer.sign({"requestBody": body, "iat": now, "exp": now + 60})
        headers = {"Authorization": f"Bearer {token}"}
        if dpop is not None:
            headers["DPoP"] = proof or dpop.proof(URL, token)
        return self.client.post(REWRAP, json={"signedRequestToken": srt}, headers=headers)


KasApp = tuple[TestClient, MemorySink, AuthConfig]


@pytest.fixture(scope="module")
def kas_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KasApp]:
    """One relto app for the module (building one costs seconds), from default KAS
    settings; state reset per test."""
    sink = MemorySink()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("kas-app"),
        secret_key="kas-test-secret-key-0123456789",
        keystore_passphrase="kas-test-keystore-passphrase",
        oidc_issuer=ISSUER,
        oidc_jwks_url="http://127.0.0.1:9/unused",
        oidc_audience=AUDIENCE,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RELTO_KAS_REQUIRE_DPOP", raising=False)
        app = create_app(settings, sink=sink)
    rt: KasRuntime = app.state.node.kas
    assert rt.authenticator is not None
    with TestClient(app) as client:
        yield client, sink, rt.authenticator.config


@pytest.fixture
def kas(kas_app: KasApp) -> Kas:
    client, sink, config = kas_app
    rt: KasRuntime = client.app.state.node.kas  # type: ignore[attr-defined]
    sink.events.clear()
    rt.service.sink = sink
    rt.settings = rt.settings.model_copy(update={"public_url": None})
    return Kas(client, rt, sink, TestIssuer(), config)


def _single(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["responses"][0]["results"][0]
    return result


def test_rewrap_releases_share_to_rsa_client(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64(attrs=["https://relto.example/attr/rel/value/gbr"])
    kao, share = make_kao(pem, kid, policy)
    priv, client_pem = client_keys("rsa")
    resp = kas.rewrap(request_body(client_pem, policy, [kao]))
    result = _single(resp)
    assert result["status"] == "permit"
    assert open_result(priv, result["kasWrappedKey"]) == share
    assert kas.decider.calls[0].attributes == ("https://relto.example/attr/rel/value/gbr",)
    assert kas.decider.calls[0].subject["sub"] == "alice"


def test_rewrap_ec_kao_to_ec_client(kas: Kas) -> None:
    kid, pem = kas.key("ec:secp256r1")
    policy = policy_b64()
    kao, share = make_kao(pem, kid, policy, ec_key=True)
    priv, client_pem = client_keys("ec")
    resp = kas.rewrap(request_body(client_pem, policy, [kao]))
    result = _single(resp)
    session = resp.json()["sessionPublicKey"]
    assert "BEGIN PUBLIC KEY" in session
    assert open_result(priv, result["kasWrappedKey"], session) == share


def test_protobuf_gzip_request_as_the_python_sdk_sends_it(kas: Kas) -> None:
    """otdf-python 0.11.0 sends no DPoP proof: it needs RELTO_KAS_REQUIRE_DPOP=false."""
    from otdf_python_proto.kas import kas_pb2

    kas.trust(require_dpop=False)
    kid, pem = kas.key()
    policy = policy_b64()
    kao, share = make_kao(pem, kid, policy)
    priv, client_pem = client_keys("rsa")
    token = kas.issuer.token()
    now = int(time.time())
    srt = DpopKey("RSA").sign(
        {"requestBody": request_body(client_pem, policy, [kao]), "iat": now, "exp": now + 60}
    )
    msg = kas_pb2.RewrapRequest(signed_request_token=srt).SerializeToString()
    resp = kas.client.post(
        REWRAP,
        content=gzip.compress(msg),
        headers={
            "Content-Type": "application/proto",
            "Content-Encoding": "gzip",
            "Connect-Protocol-Version": "1",
            "Authorization": f"Bearer {token}",
        },
    )
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/proto"
    out = kas_pb2.RewrapResponse.FromString(resp.content)
    res = out.responses[0].results[0]
    assert out.responses[0].policy_id == "policy-1" and res.status == "permit"
    assert open_result(priv, base64.b64encode(res.kas_wrapped_key).decode()) == share


def test_public_key_json_proto_and_jwk(kas: Kas) -> None:
    from otdf_python_proto.kas import kas_pb2

    kid, pem = kas.key()
    r = kas.client.post(PUBKEY, json={})
    assert r.status_code == 200 and r.json() == {"publicKey": pem, "kid": kid}
    ekid, epem = kas.key("ec:secp256r1")
    msg = kas_pb2.PublicKeyRequest(algorithm="ec:secp256r1").SerializeToString()
    r = kas.client.post(PUBKEY, content=msg, headers={"Content-Type": "application/proto"})
    out = kas_pb2.PublicKeyResponse.FromString(r.content)
    assert (out.public_key, out.kid) == (epem, ekid)
    r = kas.client.post(PUBKEY, json={"fmt": "jwk"})
    assert json.loads(r.json()["publicKey"])["kty"] == "RSA"
    r = kas.client.post(PUBKEY, json={"algorithm": "dsa:1024"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"


def test_tampered_policy_binding_rejected(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    tampered = policy_b64(dissem=["mallory@example.org"])  # a different policy, old binding
    _, client_pem = client_keys("rsa")
    result = _single(kas.rewrap(request_body(client_pem, tampered, [kao])))
    assert result["status"] == "fail" and "kasWrappedKey" not in result
    assert result["error"] == "bad request"
    assert kas.decider.calls == []  # stopped before the decision
    (event,) = kas.events()
    assert event.payload["allowed"] is False
    assert event.payload["key_access"][0]["reason"] == "policy binding does not match"


def test_retired_key_cannot_unwrap(kas: Kas) -> None:
    store = kas.rt.service.store
    kid, pem = kas.key()
    policy = policy_b64()
    kao, share = make_kao(pem, kid, policy)
    priv, client_pem = client_keys("rsa")
    now = datetime.now(UTC)
    store.rotate("rsa:2048", at=now)
    # Rotation: the old container still opens.
    result = _single(kas.rewrap(request_body(client_pem, policy, [kao])))
    assert open_result(priv, result["kasWrappedKey"]) == share
    store.retire(kid, at=now + timedelta(seconds=1))
    result = _single(kas.rewrap(request_body(client_pem, policy, [kao])))
    assert result["status"] == "fail"
    assert "KeyRetired" in kas.events()[-1].payload["key_access"][0]["reason"]


def test_dpop_replay_rejected(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    _, client_pem = client_keys("rsa")
    body = request_body(client_pem, policy, [kao])
    dpop = DpopKey()
    token = kas.issuer.token(cnf={"jkt": dpop.thumbprint()})
    proof = dpop.proof(URL, token)
    assert kas.rewrap(body, token=token, dpop=dpop, proof=proof).status_code == 200
    again = kas.rewrap(body, token=token, dpop=dpop, proof=proof)
    assert again.status_code == 401 and again.json() == {
        "code": "unauthenticated",
        "message": "unauthenticated",
    }


def test_dpop_proof_checks_method_url_time_and_token(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    body = request_body(client_keys("rsa")[1], policy, [kao])
    dpop = DpopKey()
    token = kas.issuer.token(cnf={"jkt": dpop.thumbprint()})
    other = kas.issuer.token(sub="bob")
    bad_proofs = [
        dpop.proof(URL, token, method="GET"),
        dpop.proof("http://testserver/kas.AccessService/PublicKey", token),
        dpop.proof(URL, token, iat=time.time() - 600),
        dpop.proof(URL, other),  # ath of another token
        DpopKey().proof(URL, token),  # key not the one cnf.jkt names
    ]
    for proof in bad_proofs:
        assert kas.rewrap(body, token=token, dpop=dpop, proof=proof).status_code == 401
    # A DPoP-bound token without a proof is refused, even where DPoP is relaxed.
    kas.trust(require_dpop=False)
    assert kas.rewrap(body, token=token, bearer_only=True).status_code == 401
    assert kas.events() == []


def test_request_token_must_be_signed_by_the_dpop_key(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    body = request_body(client_keys("rsa")[1], policy, [kao])
    dpop = DpopKey()
    resp = kas.rewrap(body, dpop=dpop, srt_signer=DpopKey())
    assert resp.status_code == 401


def test_bearer_only_rewrap_refused_by_default(kas: Kas) -> None:
    """A stolen bearer token alone takes no key from a KAS with default settings."""
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    body = request_body(client_keys("rsa")[1], policy, [kao])
    refused = kas.rewrap(body, bearer_only=True)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert kas.events() == [] and kas.decider.calls == []
    conf = kas.client.get("/.well-known/opentdf-configuration").json()["configuration"]
    assert conf["kas"]["dpop_required"] is True
    assert kas.rewrap(body, dpop=DpopKey()).status_code == 200


def test_bearer_only_rewrap_accepted_when_relaxed(kas: Kas) -> None:
    kas.trust(require_dpop=False)
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    body = request_body(client_keys("rsa")[1], policy, [kao])
    assert _single(kas.rewrap(body, bearer_only=True))["status"] == "permit"
    (event,) = kas.events()
    assert event.payload["dpop"] is False and event.payload["request_token_verified"] is False


def test_token_from_wrong_issuer_rejected(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    body = request_body(client_keys("rsa")[1], policy, [kao])
    impostor = TestIssuer(issuer="https://evil.example", kid=kas.issuer.key.kid)
    forged_claims = TestIssuer(issuer=ISSUER, kid=kas.issuer.key.kid)  # right iss, wrong key
    for token in (
        impostor.token(),
        forged_claims.token(),
        kas.issuer.token(iss="https://evil.example"),
        kas.issuer.token(aud="someone-else"),
        kas.issuer.token(now=time.time() - 3600),  # expired
        kas.issuer.token(cnf={"x5t#S256": "bound-to-a-certificate"}),
        kas.issuer.token()[:-4] + "AAAA",
        "not-a-jwt",
    ):
        assert kas.rewrap(body, token=token).status_code == 401
    resp = kas.client.post(REWRAP, json={"signedRequestToken": "x.y.z"})
    assert resp.status_code == 401
    assert kas.events() == [] and kas.decider.calls == []


def test_denied_rewrap_is_audited(kas: Kas) -> None:
    kas.rt.decider = DenyAllDecider()
    kid, pem = kas.key()
    policy = policy_b64(attrs=["https://relto.example/attr/classification/value/secret"])
    kao, _ = make_kao(pem, kid, policy)
    result = _single(kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao])))
    assert result == {"keyAccessObjectId": "kao-0", "status": "fail", "error": "forbidden"}
    (event,) = kas.events()
    assert event.kind == "kas.rewrap"
    assert event.payload["allowed"] is False and event.payload["subject"] == "alice"
    assert event.payload["reasons"][0]["code"] == "no_decider"
    assert event.payload["attributes"] == ["https://relto.example/attr/classification/value/secret"]


def test_dissem_enforced_even_when_decider_allows(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64(dissem=["bob@example.org"])
    kao, share = make_kao(pem, kid, policy)
    priv, client_pem = client_keys("rsa")
    body = request_body(client_pem, policy, [kao])
    alice = kas.issuer.token(email="alice@example.org", email_verified=True)
    result = _single(kas.rewrap(body, token=alice))
    assert result["status"] == "fail"
    assert kas.events()[-1].payload["reasons"][0]["code"] == "not_in_dissem"
    bob = kas.issuer.token("bob", email="Bob@Example.org", email_verified=True)
    result = _single(kas.rewrap(body, token=bob))
    assert open_result(priv, result["kasWrappedKey"]) == share


def _dissem_outcome(kas: Kas, entity: str, token: str) -> tuple[str, str]:
    kid, pem = kas.key()
    policy = policy_b64(dissem=[entity])
    kao, _ = make_kao(pem, kid, policy)
    result = _single(kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao]), token=token))
    reasons = kas.events()[-1].payload["reasons"]
    return result["status"], reasons[0]["code"] if reasons else ""


def test_dissem_unverified_email_refused(kas: Kas) -> None:
    """An issuer that did not verify an address does not make its holder its owner."""
    entity = "bob@example.org"
    for token in (
        kas.issuer.token("mallory", email=entity),
        kas.issuer.token("mallory", email=entity, email_verified=False),
        kas.issuer.token("mallory", email=entity, email_verified="true"),  # not JSON true
        kas.issuer.token("mallory", email=entity, email_verified=1),
    ):
        assert _dissem_outcome(kas, entity, token) == ("fail", "not_in_dissem")
    verified = kas.issuer.token("bob", email=entity, email_verified=True)
    assert _dissem_outcome(kas, entity, verified)[0] == "permit"


def test_dissem_client_id_not_an_identity(kas: Kas) -> None:
    """Names a client or user picks (client id, azp, username, upn) match no dissem."""
    entity = "bob"
    for claim in ("client_id", "azp", "preferred_username", "upn"):
        token = kas.issuer.token("mallory", **{claim: entity})
        assert _dissem_outcome(kas, entity, token) == ("fail", "not_in_dissem"), claim
    assert _dissem_outcome(kas, entity, kas.issuer.token("bob"))[0] == "permit"


def test_decider_told_the_vouching_nation_and_the_action(kas: Kas) -> None:
    """The decider learns which nation the verifying issuer vouches for (not one the
    token claims), and that an HTTP rewrap is a read; the audit record says both."""
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    token = kas.issuer.token(relto_nation="USA", nation="USA")
    _single(kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao]), token=token))
    (facts,) = kas.decider.calls
    assert (facts.nation, facts.action) == ("GBR", "read")
    payload = kas.events()[-1].payload
    assert (payload["nation"], payload["action"], payload["issuer"]) == ("GBR", "read", ISSUER)


def test_audit_failure_releases_nothing(kas: Kas) -> None:
    class BrokenSink:
        def record(self, kind: str, payload: Any) -> None:
            raise OSError("log disk full")

    kas.rt.service.sink = BrokenSink()
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    resp = kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao]))
    assert resp.status_code == 503
    assert "kasWrappedKey" not in resp.text and resp.json()["code"] == "unavailable"


def test_decider_failure_fails_closed(kas: Kas) -> None:
    class Exploding:
        def decide(self, facts: RewrapFacts) -> KasDecision:
            raise RuntimeError("engine down")

    kas.rt.decider = Exploding()
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    result = _single(kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao])))
    assert result["status"] == "fail"
    assert kas.events()[-1].payload["reasons"][0]["code"] == "decider_error"


def test_unsafe_allow_all_warns(kas: Kas) -> None:
    with pytest.warns(RuntimeWarning):
        kas.rt.decider = UnsafeAllowAllDecider()
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _single(kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao])))
    assert any("UnsafeAllowAllDecider" in str(w.message) for w in caught)


def test_malformed_requests_are_invalid_not_errors(kas: Kas) -> None:
    token = kas.issuer.token()
    hdr = {"Authorization": f"Bearer {token}"}
    assert (
        kas.client.post(
            REWRAP, content=b"{", headers={**hdr, "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        kas.client.post(
            REWRAP, content=b"\xff\xff", headers={**hdr, "Content-Type": "application/proto"}
        ).status_code
        == 400
    )
    assert (
        kas.client.post(
            REWRAP, content=b"x", headers={**hdr, "Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))
    assert (
        kas.client.post(
            REWRAP,
            content=bomb,
            headers={**hdr, "Content-Type": "application/proto", "Content-Encoding": "gzip"},
        ).status_code
        == 400
    )
    now = int(time.time())
    key = DpopKey()
    srt = key.sign(
        {
            "requestBody": json.dumps(
                {
                    "clientPublicKey": "nope",
                    "requests": [{"policy": {"id": "p", "body": "x"}, "keyAccessObjects": []}],
                }
            ),
            "exp": now + 60,
        }
    )
    proof = key.proof(URL, token)
    r = kas.client.post(REWRAP, json={"signedRequestToken": srt}, headers={**hdr, "DPoP": proof})
    assert r.status_code == 400 and r.json()["message"] == "invalid request"


def test_no_oidc_configured_refuses_every_rewrap(kas: Kas) -> None:
    kas.rt.authenticator = None
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    assert kas.rewrap(request_body(client_keys("rsa")[1], policy, [kao])).status_code == 401


def test_well_known_configuration(kas: Kas) -> None:
    r = kas.client.get("/.well-known/opentdf-configuration")
    conf = r.json()["configuration"]
    assert conf["platform_issuer"] == ISSUER
    assert conf["base_key"]["public_key"]["kid"] == kas.key()[0]


def test_rewrap_through_hsm_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, softhsm_token: tuple[str, str, str]
) -> None:
    lib, label, pin = softhsm_token
    monkeypatch.setenv("RELTO_KAS_KEYSTORE", "pkcs11")
    monkeypatch.setenv("RELTO_KAS_PKCS11_LIBRARY", lib)
    monkeypatch.setenv("RELTO_KAS_PKCS11_TOKEN", label)
    monkeypatch.setenv("RELTO_KAS_PKCS11_PIN", pin)
    settings = Settings(
        data_dir=tmp_path,
        secret_key="kas-test-secret-key-0123456789",
        keystore_passphrase="kas-test-keystore-passphrase",
        oidc_issuer=ISSUER,
        oidc_jwks_url="http://127.0.0.1:9/unused",
        oidc_audience=AUDIENCE,
    )
    app = create_app(settings, sink=MemorySink())
    rt: KasRuntime = app.state.node.kas
    from relto.kas.pkcs11store import Pkcs11KeyStore

    assert isinstance(rt.service.store, Pkcs11KeyStore)
    issuer = TestIssuer()
    with TestClient(app) as client:
        kas = Kas(client, rt, MemorySink(), issuer)
        for alg, ec_key in (("rsa:2048", False), ("ec:secp256r1", True)):
            kid, pem = kas.key(alg)
            policy = policy_b64()
            kao, share = make_kao(pem, kid, policy, ec_key=ec_key)
            priv, client_pem = client_keys("ec")
            resp = kas.rewrap(request_body(client_pem, policy, [kao]))
            result = _single(resp)
            assert (
                open_result(priv, result["kasWrappedKey"], resp.json()["sessionPublicKey"]) == share
            )


def test_dpop_replay_to_another_worker_rejected(tmp_path: Path) -> None:
    """Two server processes share the replay cache through the data folder."""
    from relto.kas.replay import SqliteReplayCache

    issuer = TestIssuer()
    workers = [
        Authenticator(
            AuthConfig(ISSUER, AUDIENCE, require_dpop=True),
            StaticJwks(issuer.jwks()),
            SqliteReplayCache(tmp_path / "replay.sqlite"),
        )
        for _ in range(2)
    ]
    dpop = DpopKey()
    token = issuer.token(cnf={"jkt": dpop.thumbprint()})
    proof = dpop.proof(URL, token)
    at = datetime.now(UTC)
    kwargs: dict[str, Any] = {
        "authorization": f"DPoP {token}",
        "dpop": proof,
        "method": "POST",
        "urls": [URL],
        "at": at,
    }
    assert workers[0].authenticate(**kwargs).dpop_key is not None
    with pytest.raises(Exception, match="unauthenticated"):
        workers[1].authenticate(**kwargs)
    fresh = dpop.proof(URL, token)
    assert workers[1].authenticate(**{**kwargs, "dpop": fresh}).subject == "alice"


def test_expired_token_rejected_even_after_it_was_accepted() -> None:
    issuer = TestIssuer()
    auth = Authenticator(
        AuthConfig(ISSUER, AUDIENCE, require_dpop=False),  # bearer tokens, as the API takes
        StaticJwks(issuer.jwks()),
    )
    token = issuer.token(ttl=120)
    now = datetime.now(UTC)
    kwargs: dict[str, Any] = {
        "authorization": f"Bearer {token}",
        "dpop": None,
        "method": "POST",
        "urls": [URL],
    }
    assert auth.authenticate(**kwargs, at=now).subject == "alice"
    assert auth.authenticate(**kwargs, at=now).subject == "alice"  # from the cache
    with pytest.raises(Exception, match="unauthenticated"):
        auth.authenticate(**kwargs, at=now + timedelta(hours=1))


def test_dpop_htu_must_be_the_public_url_when_configured(kas: Kas) -> None:
    kas.rt.settings = kas.rt.settings.model_copy(
        update={"public_url": "https://kas.gbr.example/kas"}
    )
    kid, pem = kas.key()
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy)
    body = request_body(client_keys("rsa")[1], policy, [kao])
    dpop = DpopKey()
    token = kas.issuer.token(cnf={"jkt": dpop.thumbprint()})
    # A proof for the address the request happened to arrive at is not enough.
    assert kas.rewrap(body, token=token, dpop=dpop, proof=dpop.proof(URL, token)).status_code == 401
    public = "https://kas.gbr.example/kas.AccessService/Rewrap"
    ok = kas.rewrap(body, token=token, dpop=dpop, proof=dpop.proof(public, token))
    assert ok.status_code == 200


def test_several_policies_and_objects_each_get_their_own_result(kas: Kas) -> None:
    rkid, rpem = kas.key()
    ekid, epem = kas.key("ec:secp256r1")
    p1, p2 = policy_b64(attrs=["https://a/attr/x/value/1"]), policy_b64(dissem=["bob"])
    good_rsa, share1 = make_kao(rpem, rkid, p1)
    good_ec, share2 = make_kao(epem, ekid, p1, ec_key=True)
    tampered, _ = make_kao(rpem, rkid, p2)  # bound to p2, sent under p1
    not_for_alice, _ = make_kao(epem, ekid, p2, ec_key=True)
    priv, client_pem = client_keys("ec")
    body = json.dumps(
        {
            "clientPublicKey": client_pem,
            "requests": [
                {
                    "policy": {"id": "one", "body": p1},
                    "keyAccessObjects": [
                        {"keyAccessObjectId": "a", "keyAccessObject": good_rsa},
                        {"keyAccessObjectId": "b", "keyAccessObject": good_ec},
                        {"keyAccessObjectId": "c", "keyAccessObject": tampered},
                    ],
                },
                {
                    "policy": {"id": "two", "body": p2},
                    "keyAccessObjects": [
                        {"keyAccessObjectId": "d", "keyAccessObject": not_for_alice},
                    ],
                },
            ],
        }
    )
    resp = kas.rewrap(body)
    assert resp.status_code == 200
    data = resp.json()
    by_id = {r["keyAccessObjectId"]: r for p in data["responses"] for r in p["results"]}
    session = data["sessionPublicKey"]
    assert open_result(priv, by_id["a"]["kasWrappedKey"], session) == share1
    assert open_result(priv, by_id["b"]["kasWrappedKey"], session) == share2
    assert by_id["c"] == {"keyAccessObjectId": "c", "status": "fail", "error": "bad request"}
    assert by_id["d"] == {"keyAccessObjectId": "d", "status": "fail", "error": "forbidden"}
    events = {e.payload["policy_id"]: e.payload for e in kas.events()}
    assert events["one"]["allowed"] is True and events["two"]["allowed"] is False


def test_legacy_v1_request_body(kas: Kas) -> None:
    kid, pem = kas.key()
    policy = policy_b64()
    kao, share = make_kao(pem, kid, policy)
    priv, client_pem = client_keys("rsa")
    body = json.dumps({"clientPublicKey": client_pem, "policy": policy, "keyAccess": kao})
    resp = kas.rewrap(body)
    assert resp.status_code == 200
    assert open_result(priv, resp.json()["entityWrappedKey"]) == share
    kas.rt.decider = DenyAllDecider()
    assert kas.rewrap(body).status_code == 403


def test_public_key_of_a_retired_key_is_not_served(kas: Kas) -> None:
    store = kas.rt.service.store
    old, _ = kas.key("ec:secp256r1")
    now = datetime.now(UTC)
    store.rotate("ec:secp256r1", at=now)
    r = kas.client.post(PUBKEY, json={"algorithm": "ec:secp256r1", "kid": old})
    assert r.status_code == 200 and r.json()["kid"] == old  # rotated: still known
    store.retire(old, at=now)
    r = kas.client.post(PUBKEY, json={"algorithm": "ec:secp256r1", "kid": old})
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_connect_fast_path_keeps_the_edge_contract(kas: Kas) -> None:
    """The lean Connect path must not lose request ids, metrics, 405s or the API document."""
    kid, pem = kas.key("ec:secp256r1")
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy, ec_key=True)
    resp = kas.rewrap(request_body(client_keys("ec")[1], policy, [kao]))
    assert resp.status_code == 200
    assert resp.headers["x-request-id"]
    unauth = kas.client.post(REWRAP, json={"signedRequestToken": "x"})
    assert unauth.status_code == 401
    assert unauth.json() == {"code": "unauthenticated", "message": "unauthenticated"}
    assert kas.client.get(REWRAP).status_code == 405
    assert kas.client.get(PUBKEY).status_code == 405
    metrics = TestClient(kas.client.app, client=("127.0.0.1", 50000)).get("/metrics").text
    assert 'route="/kas.AccessService/Rewrap",status="200"' in metrics
    assert 'route="/kas.AccessService/Rewrap",status="401"' in metrics
    paths = kas.client.get("/openapi.json").json()["paths"]
    assert REWRAP in paths and PUBKEY in paths


def test_front_door_crash_gives_the_uniform_500_and_no_trace(
    kas: Kas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug behind the Connect front door must not leak a traceback or hang."""

    async def crash(**kwargs: Any) -> Any:
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(kas.rt, "handle_rewrap_async", crash)
    resp = kas.client.post(
        REWRAP,
        json={"signedRequestToken": "x.y.z"},
        # A credential, or the request bounds answer 401 before the handler runs.
        headers={"x-request-id": "front-door-1", "authorization": "Bearer x"},
    )
    assert resp.status_code == 500
    assert resp.headers["x-request-id"] == "front-door-1"
    assert resp.json()["error"]["request_id"] == "front-door-1"
    assert "secret-internal-detail" not in resp.text and "Traceback" not in resp.text


def test_failed_replay_cache_answers_unavailable(kas: Kas) -> None:
    class Broken:
        def check_and_add(self, jti: str, expires_at: float) -> bool:
            raise OSError("replay store down")

    kas.rt.authenticator = Authenticator(
        AuthConfig(ISSUER, AUDIENCE, require_dpop=True), StaticJwks(kas.issuer.jwks()), Broken()
    )
    dpop = DpopKey()
    kid, pem = kas.key("ec:secp256r1")
    policy = policy_b64()
    kao, _ = make_kao(pem, kid, policy, ec_key=True)
    token = kas.issuer.token(cnf={"jkt": dpop.thumbprint()})
    resp = kas.rewrap(request_body(client_keys("ec")[1], policy, [kao]), token=token, dpop=dpop)
    assert resp.status_code == 503 and resp.json() == {
        "code": "unavailable",
        "message": "unavailable",
    }
    assert "kasWrappedKey" not in resp.text and kas.events() == []
