"""Hostile KAS messages: whatever the bytes, the codec raises its one domain error
(never RecursionError, never a 500), and the HTTP edge answers 4xx."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from relto.config import Settings
from relto.kas import wire
from relto.kas.errors import KasInvalidRequest
from relto.server import create_app

DECODERS: dict[str, Callable[[bytes], object]] = {
    "rewrap-json": lambda b: wire.decode_rewrap_request(b, "json"),
    "rewrap-proto": lambda b: wire.decode_rewrap_request(b, "proto"),
    "public-key-json": lambda b: wire.decode_public_key_request(b, "json"),
    "public-key-proto": lambda b: wire.decode_public_key_request(b, "proto"),
    "request-body": lambda b: wire.parse_request_body(b.decode("utf-8", "replace")),
}


def _nested(depth: int, opener: str, closer: str, inner: str = "1") -> bytes:
    return (opener * depth + inner + closer * depth).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=30,
)


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("depth", [10, 1_000, 100_000])
def test_deeply_nested_json_is_an_invalid_request_not_a_crash(name: str, depth: int) -> None:
    for body in (
        _nested(depth, "[", "]"),
        _nested(depth, '{"a":', "}"),
        b'{"signedRequestToken":' + _nested(depth, "[", "]") + b"}",
        b'{"requests":' + _nested(depth, "[", "]") + b"}",
    ):
        with contextlib.suppress(KasInvalidRequest):
            DECODERS[name](body)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), name=st.sampled_from(sorted(DECODERS)))
def test_arbitrary_bytes_only_raise_the_codec_error(data: bytes, name: str) -> None:
    with contextlib.suppress(KasInvalidRequest):
        DECODERS[name](data)


@settings(max_examples=300, deadline=None)
@given(value=json_values, name=st.sampled_from(["rewrap-json", "public-key-json", "request-body"]))
def test_arbitrary_json_only_raises_the_codec_error(value: object, name: str) -> None:
    for body in (
        json.dumps(value).encode(),
        json.dumps({"requests": [value], "keyAccess": value, "signedRequestToken": value}).encode(),
        json.dumps({"requests": [{"policy": value, "keyAccessObjects": [value]}]}).encode(),
    ):
        with contextlib.suppress(KasInvalidRequest):
            DECODERS[name](body)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    secret = SecretStr("wire-bounds-secret-Vq7#xP2m!Lr9")
    app = create_app(
        Settings(
            data_dir=tmp_path_factory.mktemp("wire"),
            secret_key=secret,
            keystore_passphrase=secret,
        )
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/kas.AccessService/Rewrap", "/kas.AccessService/PublicKey"])
def test_deeply_nested_kas_request_is_400_not_500(client: TestClient, path: str) -> None:
    for body in (_nested(100_000, "[", "]"), _nested(50_000, '{"a":', "}")):
        r = client.post(
            path,
            content=body,
            headers={"content-type": "application/json", "authorization": "Bearer x"},
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_argument"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_deeply_nested_token_header_is_refused_not_500(client: TestClient) -> None:
    """A bearer token or signed request token whose JOSE header nests 100,000 deep."""
    deep = _b64(_nested(100_000, '{"a":', "}"))
    token = f"{deep}.{_b64(b'{}')}.{_b64(b'sig')}"
    r = client.post(
        "/kas.AccessService/Rewrap",
        content=json.dumps({"signedRequestToken": token}),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    assert 400 <= r.status_code < 500, r.text
    r = client.get("/api/v1/objects", headers={"authorization": f"Bearer {token}"})
    assert 400 <= r.status_code < 500, r.text


def test_deeply_nested_rest_body_is_400(client: TestClient, tmp_path: Path) -> None:
    r = client.post(
        "/api/v1/what-if",
        content=_nested(100_000, "[", "]"),
        headers={"content-type": "application/json", "authorization": "Bearer x"},
    )
    assert r.status_code in (400, 401, 422), r.text
