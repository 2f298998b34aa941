"""Several trusted OIDC issuers, each bound to one nation.

A node believes an issuer only about its own nation's people: a token is verified
with the keys of the issuer it names and no other, the caller carries the nation
that issuer is bound to, and the decider is told that nation (never one the token
claims) and the action the key is for.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kas_testing import AUDIENCE, DpopKey, TestIssuer, client_keys, make_kao, request_body
from structlog.testing import capture_logs

from relto.config import Settings
from relto.events import MemorySink
from relto.kas import AuthConfig, Authenticator, KasDecision, RewrapFacts, StaticJwks
from relto.kas.auth import Caller, JwksSource, TrustedIssuer, build_authenticator
from relto.kas.config import KasSettings
from relto.kas.errors import Unauthenticated
from relto.kas.filestore import FileKeyStore
from relto.kas.runtime import build_runtime
from relto.kas.service import KasService
from relto.kas.wire import parse_request_body

GBR_IDP = "https://idp.gbr.test"
USA_IDP = "https://idp.usa.test"
URL = "http://kas.test/kas.AccessService/Rewrap"


def _authenticate(auth: Authenticator, token: str, **kwargs: Any) -> Caller:
    return auth.authenticate(
        authorization=f"Bearer {token}",
        dpop=None,
        method="POST",
        urls=[URL],
        at=datetime.now(UTC),
        **kwargs,
    )


def _reason(auth: Authenticator, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        _authenticate(auth, token)
    assert str(caught.value) == "unauthenticated"  # one opaque error outward
    return str(caught.value.reason)  # type: ignore[attr-defined]


@pytest.fixture
def idps() -> tuple[TestIssuer, TestIssuer]:
    # The same key id at both: only the issuer, never the kid, may pick the key set.
    return TestIssuer(GBR_IDP, kid="k1"), TestIssuer(USA_IDP, kid="k1")


@pytest.fixture
def auth(idps: tuple[TestIssuer, TestIssuer]) -> Authenticator:
    gbr, usa = idps
    return Authenticator(
        AuthConfig(require_dpop=False),
        issuers=[
            TrustedIssuer(GBR_IDP, StaticJwks(gbr.jwks()), AUDIENCE, "GBR"),
            TrustedIssuer(USA_IDP, StaticJwks(usa.jwks()), "relto-usa", "USA"),
        ],
    )


def test_caller_carries_the_nation_of_the_issuer_that_verified_it(
    auth: Authenticator, idps: tuple[TestIssuer, TestIssuer]
) -> None:
    gbr, usa = idps
    caller = _authenticate(auth, gbr.token("gbr-alice", relto_nation="USA", nation="USA"))
    assert (caller.issuer, caller.nation) == (GBR_IDP, "GBR")
    caller = _authenticate(auth, usa.token("usa-bob", aud="relto-usa"))
    assert (caller.issuer, caller.nation) == (USA_IDP, "USA")


def test_issuer_cannot_mint_tokens_in_another_issuers_name(
    auth: Authenticator, idps: tuple[TestIssuer, TestIssuer]
) -> None:
    """USA's keys never verify a token that says it comes from GBR's issuer."""
    gbr, usa = idps
    forged = usa.token("gbr-alice", iss=GBR_IDP)
    assert "signature" in _reason(auth, forged)
    # ... and a token of the USA issuer is checked against the USA audience only.
    assert "aud" in _reason(auth, usa.token("usa-bob"))  # minted for GBR's audience
    assert _authenticate(auth, gbr.token("gbr-alice")).nation == "GBR"


def test_untrusted_issuer_refused_before_any_key_is_fetched(
    idps: tuple[TestIssuer, TestIssuer],
) -> None:
    class Counting:
        def __init__(self, jwks: dict[str, Any]) -> None:
            self.inner, self.calls = StaticJwks(jwks), 0

        def keys(self, *, refresh: bool = False) -> Any:
            self.calls += 1
            return self.inner.keys()

    gbr, _ = idps
    source = Counting(gbr.jwks())
    auth = Authenticator(AuthConfig(GBR_IDP, AUDIENCE, nation="GBR"), source)
    rogue = TestIssuer("https://idp.rogue.test", kid="k1")
    assert "not trusted" in _reason(auth, rogue.token("gbr-alice"))
    assert "no issuer" in _reason(auth, gbr.token("gbr-alice", iss=None))
    assert source.calls == 0


def test_a_cached_token_is_still_bound_to_its_issuer(
    auth: Authenticator, idps: tuple[TestIssuer, TestIssuer]
) -> None:
    _, usa = idps
    token = usa.token("usa-bob", aud="relto-usa")
    first = _authenticate(auth, token)
    again = _authenticate(auth, token)  # from the verified-token cache
    assert (again.issuer, again.nation) == (first.issuer, first.nation) == (USA_IDP, "USA")


def test_identities_are_the_subject_and_a_verified_email_only(
    auth: Authenticator, idps: tuple[TestIssuer, TestIssuer]
) -> None:
    gbr, _ = idps
    claims = {
        "email": "alice@gbr.test",
        "preferred_username": "admin",
        "client_id": "ops",
        "azp": "ops",
        "upn": "root",
    }
    assert _authenticate(auth, gbr.token("a", **claims)).identities == {"a"}
    verified = _authenticate(auth, gbr.token("a", email_verified=True, **claims))
    assert verified.identities == {"a", "alice@gbr.test"}


def test_single_issuer_form_is_bound_to_its_nation(idps: tuple[TestIssuer, TestIssuer]) -> None:
    gbr, _ = idps
    auth = Authenticator(AuthConfig(GBR_IDP, AUDIENCE, nation="GBR"), StaticJwks(gbr.jwks()))
    assert _authenticate(auth, gbr.token("a")).nation == "GBR"
    with pytest.raises(ValueError):
        Authenticator(AuthConfig(GBR_IDP, AUDIENCE))  # an issuer without keys
    with pytest.raises(ValueError):
        Authenticator(
            AuthConfig(GBR_IDP, AUDIENCE),
            StaticJwks(gbr.jwks()),
            issuers=[TrustedIssuer(GBR_IDP, StaticJwks(gbr.jwks()), AUDIENCE, "USA")],
        )


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        keystore_passphrase="issuers-test-keystore-passphrase",
        oidc_issuer=GBR_IDP,
        oidc_jwks_url=f"{GBR_IDP}/jwks",
        oidc_audience=AUDIENCE,
        oidc_issuers={
            USA_IDP: {"nation": "USA", "jwks_url": f"{USA_IDP}/jwks", "audience": "relto-usa"}
        },
        **extra,
    )


def test_build_authenticator_binds_each_configured_issuer_to_its_nation(
    tmp_path: Path, idps: tuple[TestIssuer, TestIssuer]
) -> None:
    gbr, usa = idps
    keys = {f"{GBR_IDP}/jwks": gbr.jwks(), f"{USA_IDP}/jwks": usa.jwks()}

    def jwks(url: str) -> JwksSource:
        return StaticJwks(keys[url])

    auth = build_authenticator(_settings(tmp_path), require_dpop=True, jwks=jwks)
    assert auth is not None and auth.config.require_dpop is True
    bound = {url: (i.nation, i.audience) for url, i in auth.issuers.items()}
    assert bound == {GBR_IDP: ("GBR", AUDIENCE), USA_IDP: ("USA", "relto-usa")}
    api = build_authenticator(_settings(tmp_path), require_dpop=False, jwks=jwks)
    assert api is not None
    caller = _authenticate(api, usa.token("usa-bob", aud="relto-usa"))
    assert caller.nation == "USA"
    assert build_authenticator(Settings(data_dir=tmp_path), require_dpop=False) is None


def test_kas_requires_dpop_unless_relaxed_and_warns_when_relaxed(
    tmp_path: Path, file_store: FileKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELTO_KAS_REQUIRE_DPOP", raising=False)
    with capture_logs() as logs:
        rt = build_runtime(_settings(tmp_path), MemorySink(), store=file_store)
    assert rt.authenticator is not None and rt.authenticator.config.require_dpop is True
    assert rt.well_known("http://kas.test")["kas"]["dpop_required"] is True
    assert rt.issuer == GBR_IDP  # the node's own nation's issuer is advertised
    assert not any(e["event"] == "kas_dpop_not_required" for e in logs)

    monkeypatch.setenv("RELTO_KAS_REQUIRE_DPOP", "false")
    with capture_logs() as logs:
        rt = build_runtime(_settings(tmp_path), MemorySink(), store=file_store)
    assert rt.authenticator is not None and rt.authenticator.config.require_dpop is False
    assert rt.well_known("http://kas.test")["kas"]["dpop_required"] is False
    (warning,) = [e for e in logs if e["event"] == "kas_dpop_not_required"]
    assert warning["log_level"] == "warning"


class Recording:
    blocking = False

    def __init__(self) -> None:
        self.calls: list[RewrapFacts] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        self.calls.append(facts)
        return KasDecision(True)


def test_in_process_action_reaches_the_decider_and_the_record(file_store: FileKeyStore) -> None:
    """A relabel asks for the key as a relabel, on both paths; nothing calls it a read."""
    at = datetime.now(UTC)
    info = file_store.rotate("ec:secp256r1", at=at)
    decider, sink = Recording(), MemorySink()
    service = KasService(store=file_store, sink=sink, decider=decider)
    caller = Caller(subject="gbr-alice", claims={"sub": "gbr-alice"}, nation="GBR")

    def body() -> Any:
        from kas_testing import policy_b64

        policy = policy_b64()
        kao, _ = make_kao(info.public_key_pem, info.kid, policy, ec_key=True)
        return parse_request_body(request_body(client_keys("ec")[1], policy, [kao]))

    service.rewrap(body(), caller, at=at, request_verified=False, action="relabel")
    asyncio.run(
        service.rewrap_async(body(), caller, at=at, request_verified=False, action="relabel")
    )
    service.rewrap(body(), caller, at=at, request_verified=False)
    assert [(f.action, f.nation) for f in decider.calls] == [
        ("relabel", "GBR"),
        ("relabel", "GBR"),
        ("read", "GBR"),
    ]
    assert [e.payload["action"] for e in sink.events] == ["relabel", "relabel", "read"]
    with pytest.raises(ValueError):
        service.rewrap(body(), caller, at=at, request_verified=False, action="")


def test_dpop_bound_token_of_a_second_issuer_works_on_the_kas(
    idps: tuple[TestIssuer, TestIssuer],
) -> None:
    """DPoP checks are the same whichever trusted issuer signed the token."""
    gbr, usa = idps
    auth = Authenticator(
        AuthConfig(require_dpop=True),
        issuers=[
            TrustedIssuer(GBR_IDP, StaticJwks(gbr.jwks()), AUDIENCE, "GBR"),
            TrustedIssuer(USA_IDP, StaticJwks(usa.jwks()), AUDIENCE, "USA"),
        ],
    )
    key = DpopKey()
    token = usa.token("usa-bob", cnf={"jkt": key.thumbprint()})
    caller = auth.authenticate(
        authorization=f"DPoP {token}",
        dpop=key.proof(URL, token, iat=time.time()),
        method="POST",
        urls=[URL],
        at=datetime.now(UTC),
    )
    assert caller.nation == "USA" and caller.dpop_key is not None
    with pytest.raises(Unauthenticated):
        _authenticate(auth, usa.token("usa-bob"))  # bearer only: DPoP is required


def test_kas_settings_default_requires_dpop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELTO_KAS_REQUIRE_DPOP", raising=False)
    assert KasSettings().require_dpop is True
