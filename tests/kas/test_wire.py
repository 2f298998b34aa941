"""The hand-written protobuf/JSON codec agrees with OpenTDF's generated messages."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from otdf_python_proto.kas import kas_pb2

from relto.kas import wire
from relto.kas.errors import KasInvalidRequest

text = st.text(max_size=200)


@given(alg=text, fmt=text, v=text)
def test_public_key_request_decodes_like_protobuf(alg: str, fmt: str, v: str) -> None:
    msg = kas_pb2.PublicKeyRequest(algorithm=alg, fmt=fmt, v=v).SerializeToString()
    assert wire.decode_public_key_request(msg, "proto") == wire.PublicKeyRequest(alg, fmt, v)


@given(pem=text, kid=text)
def test_public_key_response_encodes_like_protobuf(pem: str, kid: str) -> None:
    out = wire.encode_public_key_response(wire.PublicKeyResponse(pem, kid), "proto")
    parsed = kas_pb2.PublicKeyResponse.FromString(out)
    assert (parsed.public_key, parsed.kid) == (pem, kid)


@given(
    session=text,
    policies=st.lists(
        st.tuples(
            text,
            st.lists(st.tuples(text, st.booleans(), st.binary(max_size=300), text), max_size=4),
        ),
        max_size=4,
    ),
)
def test_rewrap_response_encodes_like_protobuf(
    session: str, policies: list[tuple[str, list[tuple[str, bool, bytes, str]]]]
) -> None:
    resp = wire.RewrapResponse(
        session_public_key=session,
        responses=tuple(
            wire.PolicyResult(
                pid,
                tuple(
                    wire.KaoResult(kid, "permit" if ok else "fail", key if ok else b"", err)
                    for kid, ok, key, err in results
                ),
            )
            for pid, results in policies
        ),
    )
    parsed = kas_pb2.RewrapResponse.FromString(wire.encode_rewrap_response(resp, "proto"))
    assert parsed.session_public_key == session
    as_json = json.loads(wire.encode_rewrap_response(resp, "json"))
    for (pid, results), got, got_json in zip(
        policies, parsed.responses, as_json["responses"], strict=True
    ):
        assert got.policy_id == pid == got_json["policyId"]
        for (kid, ok, key, err), r in zip(results, got.results, strict=True):
            assert r.key_access_object_id == kid
            assert r.status == ("permit" if ok else "fail")
            if ok:
                assert r.WhichOneof("result") == "kas_wrapped_key" and r.kas_wrapped_key == key
            else:
                assert r.error == err


@given(st.binary(max_size=500))
@settings(max_examples=300)
def test_garbage_protobuf_is_an_invalid_request_or_decodes(data: bytes) -> None:
    with contextlib.suppress(KasInvalidRequest):
        wire.decode_rewrap_request(data, "proto")
    with contextlib.suppress(KasInvalidRequest):
        wire.decode_public_key_request(data, "proto")


@given(st.text(max_size=300))
def test_garbage_request_body_is_an_invalid_request_or_parses(text_body: str) -> None:
    with contextlib.suppress(KasInvalidRequest):
        wire.parse_request_body(text_body)


def test_request_body_accepts_proto_json_names_and_v1() -> None:
    v2 = {
        "client_public_key": "PEM",
        "requests": [
            {
                "policy": {"id": "p1", "body": "cG9saWN5"},
                "algorithm": "rsa:2048",
                "key_access_objects": [
                    {
                        "key_access_object_id": "k1",
                        "key_access_object": {
                            "key_type": "wrapped",
                            "kas_url": "https://kas/kas",
                            "wrapped_key": "AAEC",
                            "policy_binding": {"algorithm": "HS256", "hash": "aGFzaA=="},
                            "split_id": "s1",
                            "unknownField": 1,
                        },
                    }
                ],
            }
        ],
    }
    body = wire.parse_request_body(json.dumps(v2))
    kao = body.requests[0].kaos[0].kao
    assert kao is not None and kao.wrapped_key == b"\x00\x01\x02" and kao.sid == "s1"
    assert kao.binding_hash == "aGFzaA==" and kao.key_type == "wrapped"
    v1 = {
        "clientPublicKey": "PEM",
        "policy": "cG9s",
        "keyAccess": {"type": "wrapped", "wrappedKey": "AAEC", "policyBinding": "aGFzaA=="},
    }
    body = wire.parse_request_body(json.dumps(v1))
    assert body.legacy and body.requests[0].kaos[0].kao is not None
    assert body.requests[0].kaos[0].kao.binding_hash == "aGFzaA=="


@pytest.mark.parametrize(
    "bad",
    [
        "[]",
        '{"requests": 1}',
        '{"requests": [{"keyAccessObjects": [{"keyAccessObject": {"wrappedKey": "!!"}}]}]}',
        '{"requests": [' + ",".join(['{"policy": {}}'] * 65) + "]}",
        '{"clientPublicKey": 5, "requests": [{}]}',
        "{}",
    ],
)
def test_malformed_request_bodies_rejected(bad: str) -> None:
    with pytest.raises(KasInvalidRequest):
        wire.parse_request_body(bad)


def test_private_key_work_per_request_is_bounded() -> None:
    kao = {"keyAccessObjectId": "k", "keyAccessObject": {"type": "wrapped"}}
    body = {
        "requests": [{"policy": {"id": str(i)}, "keyAccessObjects": [kao] * 8} for i in range(9)]
    }
    with pytest.raises(KasInvalidRequest):
        wire.parse_request_body(json.dumps(body))
