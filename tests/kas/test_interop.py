"""Interop with OpenTDF's Python SDK (otdf-python 0.11.0) against a running relto KAS.

A relto server (uvicorn, loopback) serves the KAS; a tiny OIDC provider on
loopback issues client-credentials tokens signed by a test key, and relto's JWKS
setting points at it. The SDK discovers the token endpoint through relto's
``/.well-known/opentdf-configuration``.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kas_testing import AUDIENCE, ServerThread, TestIssuer, free_port, issuer_app
from otdf_python import sdk_builder
from otdf_python.config import KASInfo, TDFConfig
from otdf_python.sdk_builder import SDKBuilder
from otdf_python.tdf import TDFReaderConfig

from relto.config import Settings
from relto.events import MemorySink
from relto.kas import KasDecision, RewrapFacts
from relto.kas.client import KasClient
from relto.kas.runtime import KasRuntime
from relto.server import create_app
from relto.ztdf.container import KasTarget, open_container, protect
from relto.ztdf.errors import KeyAccessDenied

CLIENTS = {"opentdf-sdk": "s3cret-sdk-client-pw", "relto-cli": "s3cret-relto-cli-pw"}


class AllowDecider:
    def __init__(self) -> None:
        self.allowed = True
        self.calls: list[RewrapFacts] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        self.calls.append(facts)
        return KasDecision(self.allowed)


@dataclass
class Live:
    url: str
    kas_url: str
    rt: KasRuntime
    sink: MemorySink
    decider: AllowDecider
    issuer: TestIssuer

    def rsa(self) -> tuple[str, str]:
        info = self.rt.service.store.active("rsa:2048")
        return info.kid, info.public_key_pem

    def sdk(self) -> Any:
        return (
            SDKBuilder()
            .set_platform_endpoint(self.url)
            .use_insecure_plaintext_connection(True)
            .client_secret("opentdf-sdk", CLIENTS["opentdf-sdk"])
            .build()
        )

    def events(self) -> list[Any]:
        return [e for e in self.sink.events if e.kind == "kas.rewrap"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    logging.getLogger("otdf_python").setLevel(logging.CRITICAL)
    issuer_port = free_port()
    issuer = TestIssuer(issuer=f"http://127.0.0.1:{issuer_port}")
    idp = ServerThread(issuer_app(issuer, CLIENTS), port=issuer_port)
    data = tmp_path_factory.mktemp("live-kas")
    settings = Settings(
        data_dir=data,
        secret_key="live-kas-secret-key-0123456789",
        keystore_passphrase="live-kas-keystore-passphrase",
        oidc_issuer=issuer.issuer,
        oidc_jwks_url=f"{issuer.issuer}/jwks",
        oidc_audience=AUDIENCE,
    )
    sink = MemorySink()
    with pytest.MonkeyPatch.context() as mp:
        # otdf-python 0.11.0 sends no DPoP proof: the KAS must be told to accept that.
        mp.setenv("RELTO_KAS_REQUIRE_DPOP", "false")
        app = create_app(settings, sink=sink)
    # The SDK discovers the token endpoint and fetches tokens with httpx's 5 s
    # default timeout; a loaded 2-core CI machine has missed it (the servers are
    # in-process threads). A longer timeout changes nothing the tests check.
    slow = pytest.MonkeyPatch()
    slow.setattr(sdk_builder.httpx, "get", functools.partial(httpx.get, timeout=60.0))
    slow.setattr(sdk_builder.httpx, "post", functools.partial(httpx.post, timeout=60.0))
    rt: KasRuntime = app.state.node.kas
    assert rt.authenticator is not None and rt.authenticator.config.require_dpop is False
    decider = AllowDecider()
    rt.decider = decider
    try:
        with idp, ServerThread(app) as server:
            yield Live(server.url, f"{server.url}/kas", rt, sink, decider, issuer)
    finally:
        slow.undo()


def test_otdf_python_offline_container_opens_through_relto_kas(live: Live) -> None:
    kid, pem = live.rsa()
    sdk = live.sdk()
    config = TDFConfig(
        kas_info_list=[KASInfo(url=live.kas_url, public_key=pem, kid=kid)],
        attributes=["https://relto.example/attr/rel/value/gbr"],
    )
    out = io.BytesIO()
    sdk.create_tdf(b"written offline by otdf-python", config, output_stream=out)
    reader = sdk.load_tdf(out.getvalue(), TDFReaderConfig())
    assert reader.payload == b"written offline by otdf-python"
    facts = live.decider.calls[-1]
    assert facts.subject["sub"] == "opentdf-sdk"
    assert facts.attributes == ("https://relto.example/attr/rel/value/gbr",)
    assert live.events()[-1].payload["allowed"] is True


def test_otdf_python_fetches_relto_public_key_online(live: Live) -> None:
    sdk = live.sdk()
    out = io.BytesIO()
    config = TDFConfig(kas_info_list=[KASInfo(url=live.kas_url)])
    sdk.create_tdf(b"online protect", config, output_stream=out)
    assert sdk.load_tdf(out.getvalue(), TDFReaderConfig()).payload == b"online protect"


def test_relto_container_opens_in_otdf_python(live: Live, tmp_path: Path) -> None:
    kid, pem = live.rsa()
    src = tmp_path / "plain.txt"
    src.write_bytes(b"relto wrote this" * 1000)
    protect(
        src,
        tmp_path / "c.tdf",
        kas=[KasTarget(live.kas_url, pem, kid)],
        at=datetime.now(UTC),
        attributes=["https://relto.example/attr/rel/value/usa"],
    )
    reader = live.sdk().load_tdf((tmp_path / "c.tdf").read_bytes(), TDFReaderConfig())
    assert reader.payload == b"relto wrote this" * 1000


def test_otdf_python_container_opens_with_relto_client(live: Live, tmp_path: Path) -> None:
    kid, pem = live.rsa()
    out = io.BytesIO()
    config = TDFConfig(kas_info_list=[KASInfo(url=live.kas_url, public_key=pem, kid=kid)])
    live.sdk().create_tdf(b"opened by relto", config, output_stream=out)
    (tmp_path / "c.tdf").write_bytes(out.getvalue())
    token = live.issuer.token("relto-cli", email="relto-cli@example.org")
    with KasClient(allowed_urls=[live.kas_url], token=token) as client:
        open_container(tmp_path / "c.tdf", tmp_path / "out", unwrap=client.rewrap)
    assert (tmp_path / "out").read_bytes() == b"opened by relto"
    assert live.events()[-1].payload["dpop"] is True
    assert live.events()[-1].payload["request_token_verified"] is True


def test_relto_client_protects_online_with_ec_key(live: Live, tmp_path: Path) -> None:
    token = live.issuer.token("relto-cli")
    src = tmp_path / "p"
    src.write_bytes(b"ec wrapped share")
    with KasClient(allowed_urls=[live.kas_url], token=token, client_key="rsa") as client:
        key = client.public_key(live.kas_url, "ec:secp256r1")
        protect(
            src,
            tmp_path / "c.tdf",
            kas=[KasTarget(live.kas_url, key.public_key_pem, key.kid)],
            at=datetime.now(UTC),
        )
        open_container(tmp_path / "c.tdf", tmp_path / "out", unwrap=client.rewrap)
    assert (tmp_path / "out").read_bytes() == b"ec wrapped share"


def test_denied_caller_gets_nothing_from_relto_or_the_sdk(live: Live, tmp_path: Path) -> None:
    kid, pem = live.rsa()
    src = tmp_path / "p"
    src.write_bytes(b"secret")
    protect(src, tmp_path / "c.tdf", kas=[KasTarget(live.kas_url, pem, kid)], at=datetime.now(UTC))
    live.decider.allowed = False
    try:
        with pytest.raises(Exception):
            live.sdk().load_tdf((tmp_path / "c.tdf").read_bytes(), TDFReaderConfig())
        token = live.issuer.token("relto-cli")
        with (
            KasClient(allowed_urls=[live.kas_url], token=token) as client,
            pytest.raises(KeyAccessDenied),
        ):
            open_container(tmp_path / "c.tdf", tmp_path / "out", unwrap=client.rewrap)
        assert not (tmp_path / "out").exists()
        assert live.events()[-1].payload["allowed"] is False
    finally:
        live.decider.allowed = True


def test_client_refuses_to_send_token_to_unlisted_kas(live: Live, tmp_path: Path) -> None:
    kid, pem = live.rsa()
    src = tmp_path / "p"
    src.write_bytes(b"x")
    evil = f"http://127.0.0.1:{free_port()}/kas"
    protect(src, tmp_path / "c.tdf", kas=[KasTarget(evil, pem, kid)], at=datetime.now(UTC))
    with (
        KasClient(allowed_urls=[live.kas_url], token="tok") as client,
        pytest.raises(KeyAccessDenied),
    ):
        open_container(tmp_path / "c.tdf", tmp_path / "out", unwrap=client.rewrap)
