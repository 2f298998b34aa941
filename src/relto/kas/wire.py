"""The KAS wire format: ``kas.AccessService`` messages over Connect, as JSON or protobuf.

OpenTDF's SDKs speak the Connect protocol with either codec (the Python SDK sends
binary protobuf, ``otdfctl`` and browsers JSON), so both are served. The few
messages involved are coded here by hand, field numbers exactly as
``service/kas/kas.proto``; unknown fields are skipped, as protobuf requires.
The signed request token's ``requestBody`` is proto-JSON of
``UnsignedRewrapRequest`` (camelCase or snake_case names, bytes in base64);
unknown members are ignored there, as OpenTDF's KAS does.

Everything is bounded: message size, string sizes, counts of policies and key
access objects, nesting depth. A malformed message raises
:class:`~relto.kas.errors.KasInvalidRequest`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from relto.kas.errors import KasInvalidRequest
from relto.ztdf.manifest import KeyAccess

__all__ = [
    "MAX_KAOS",
    "MAX_MESSAGE_BYTES",
    "MAX_POLICIES",
    "KaoRequest",
    "KaoResult",
    "KeyAccessIn",
    "PolicyRequest",
    "PolicyResult",
    "PublicKeyRequest",
    "PublicKeyResponse",
    "RewrapResponse",
    "UnsignedRewrap",
    "decode_public_key_request",
    "decode_rewrap_request",
    "encode_public_key_response",
    "encode_rewrap_response",
    "parse_request_body",
    "rewrap_request_body",
]

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_POLICIES = 64
#: Key access objects per request, all policies together (each costs a private-key operation).
MAX_KAOS = 64
MAX_FIELD = 256 * 1024


def _bad(reason: str) -> KasInvalidRequest:
    exc = KasInvalidRequest("invalid request")
    exc.reason = reason  # type: ignore[attr-defined]
    return exc


# ----------------------------------------------------------------- protobuf


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _bad("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) for each field; skips nothing itself."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _bad("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length > len(data) - pos:
                raise _bad("truncated length-delimited field")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            if pos + 8 > len(data):
                raise _bad("truncated fixed64")
            pos += 8
        elif wire == 5:
            if pos + 4 > len(data):
                raise _bad("truncated fixed32")
            pos += 4
        else:
            raise _bad("unsupported wire type")


def _text(value: bytes | int) -> str:
    if not isinstance(value, bytes) or len(value) > MAX_FIELD:
        raise _bad("bad string field")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("string field is not UTF-8") from None


def _strings(data: bytes, names: Mapping[int, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, wire, value in _fields(data):
        if number in names:
            if wire != 2:
                raise _bad("wrong wire type")
            out[names[number]] = _text(value)
    return out


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_bytes(number: int, value: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(value)) + value


def _enc_str(number: int, value: str) -> bytes:
    return _enc_bytes(number, value.encode("utf-8")) if value else b""


# ------------------------------------------------------------------ messages


@dataclass(frozen=True)
class PublicKeyRequest:
    algorithm: str = ""
    fmt: str = ""
    v: str = ""
    kid: str = ""


@dataclass(frozen=True)
class PublicKeyResponse:
    public_key: str
    kid: str = ""


@dataclass(frozen=True)
class KeyAccessIn:
    """A key access object as the client sent it (untrusted until checked)."""

    key_type: str = ""
    url: str = ""
    protocol: str = ""
    wrapped_key: bytes = b""
    binding_alg: str = ""
    binding_hash: str = ""
    has_binding: bool = False
    kid: str = ""
    sid: str = ""
    ephemeral_public_key: str = ""
    encrypted_metadata: str = ""


@dataclass(frozen=True)
class KaoRequest:
    kao_id: str
    kao: KeyAccessIn | None


@dataclass(frozen=True)
class PolicyRequest:
    policy_id: str
    policy_body: str
    algorithm: str
    kaos: tuple[KaoRequest, ...]


@dataclass(frozen=True)
class UnsignedRewrap:
    client_public_key: str
    requests: tuple[PolicyRequest, ...]
    #: True for the v1 body (one ``keyAccess`` + ``policy``): answer ``entityWrappedKey`` too.
    legacy: bool = False


@dataclass(frozen=True)
class KaoResult:
    kao_id: str
    status: str  # "permit" | "fail"
    kas_wrapped_key: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class PolicyResult:
    policy_id: str
    results: tuple[KaoResult, ...]


@dataclass(frozen=True)
class RewrapResponse:
    responses: tuple[PolicyResult, ...]
    session_public_key: str = ""
    entity_wrapped_key: bytes = b""
    schema_version: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------ codec: requests


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad("body is not JSON") from None
    except RecursionError:
        # The C decoder gives up on deep nesting cleanly; nothing here needs
        # more than three levels.
        raise _bad("body is nested too deeply") from None
    if not isinstance(value, dict):
        raise _bad("body is not a JSON object")
    return value


def _member(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _json_str(obj: Mapping[str, Any], *names: str) -> str:
    value = _member(obj, *names)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise _bad(f"{names[0]} must be a string")
    return value


def _json_bytes(obj: Mapping[str, Any], *names: str) -> bytes:
    text = _json_str(obj, *names)
    if not text:
        return b""
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{names[0]} is not base64") from None


def decode_public_key_request(body: bytes, codec: str) -> PublicKeyRequest:
    if codec == "json":
        obj = _json_object(body) if body.strip() else {}
        return PublicKeyRequest(
            algorithm=_json_str(obj, "algorithm"),
            fmt=_json_str(obj, "fmt"),
            v=_json_str(obj, "v"),
            kid=_json_str(obj, "kid"),
        )
    got = _strings(body, {1: "algorithm", 2: "fmt", 3: "v"})
    return PublicKeyRequest(**got)


def decode_rewrap_request(body: bytes, codec: str) -> str:
    """The ``signed_request_token`` of a ``RewrapRequest``."""
    if codec == "json":
        srt = _json_str(_json_object(body), "signedRequestToken", "signed_request_token")
    else:
        srt = _strings(body, {1: "srt"}).get("srt", "")
    if not srt:
        raise _bad("signed_request_token is missing")
    return srt


def _key_access(obj: Any, where: str) -> KeyAccessIn:
    if not isinstance(obj, Mapping):
        raise _bad(f"{where} must be an object")
    binding = _member(obj, "policyBinding", "policy_binding")
    alg, hash_, has = "", "", binding is not None
    if isinstance(binding, str):
        hash_ = binding
    elif isinstance(binding, Mapping):
        alg = _json_str(binding, "alg", "algorithm")
        hash_ = _json_str(binding, "hash")
    elif binding is not None:
        raise _bad(f"{where}.policyBinding must be an object")
    return KeyAccessIn(
        key_type=_json_str(obj, "type", "keyType", "key_type"),
        url=_json_str(obj, "url", "kasUrl", "kas_url"),
        protocol=_json_str(obj, "protocol"),
        wrapped_key=_json_bytes(obj, "wrappedKey", "wrapped_key"),
        binding_alg=alg,
        binding_hash=hash_,
        has_binding=has,
        kid=_json_str(obj, "kid"),
        sid=_json_str(obj, "sid", "splitId", "split_id"),
        ephemeral_public_key=_json_str(obj, "ephemeralPublicKey", "ephemeral_public_key"),
        encrypted_metadata=_json_str(obj, "encryptedMetadata", "encrypted_metadata"),
    )


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(f"{where} must be a list")
    if len(value) > limit:
        raise _bad(f"{where} has too many entries")
    return value


def rewrap_request_body(ka: KeyAccess, policy_b64: str, client_public_pem: str) -> dict[str, Any]:
    """The ``requestBody`` of a Rewrap for one key access object of a container
    (OpenTDF's v2 form: one policy, one key access object)."""
    kao: dict[str, Any] = {
        "type": ka.type,
        "url": ka.url,
        "protocol": ka.protocol,
        "wrappedKey": ka.wrapped_key,
        "policyBinding": {"alg": ka.policy_binding.alg, "hash": ka.policy_binding.hash},
    }
    for name, value in (
        ("kid", ka.kid),
        ("sid", ka.sid),
        ("encryptedMetadata", ka.encrypted_metadata),
        ("ephemeralPublicKey", ka.ephemeral_public_key),
    ):
        if value:
            kao[name] = value
    return {
        "clientPublicKey": client_public_pem,
        "requests": [
            {
                "policy": {"id": "policy", "body": policy_b64},
                "keyAccessObjects": [{"keyAccessObjectId": "kao-0", "keyAccessObject": kao}],
            }
        ],
    }


def parse_request_body(text: str) -> UnsignedRewrap:
    """Parse the ``requestBody`` (proto-JSON ``UnsignedRewrapRequest``, or the v1 body)."""
    obj = _json_object(text.encode("utf-8"))
    client_key = _json_str(obj, "clientPublicKey", "client_public_key")
    requests: list[PolicyRequest] = []
    total = 0
    for i, raw in enumerate(_list(obj.get("requests"), "requests", MAX_POLICIES)):
        if not isinstance(raw, Mapping):
            raise _bad(f"requests[{i}] must be an object")
        policy = raw.get("policy") or {}
        if not isinstance(policy, Mapping):
            raise _bad(f"requests[{i}].policy must be an object")
        kaos: list[KaoRequest] = []
        raw_kaos = _member(raw, "keyAccessObjects", "key_access_objects")
        for j, item in enumerate(_list(raw_kaos, f"requests[{i}].keyAccessObjects", MAX_KAOS)):
            total += 1
            if total > MAX_KAOS:
                raise _bad("too many key access objects in one request")
            if not isinstance(item, Mapping):
                raise _bad(f"requests[{i}].keyAccessObjects[{j}] must be an object")
            inner = _member(item, "keyAccessObject", "key_access_object")
            kaos.append(
                KaoRequest(
                    kao_id=_json_str(item, "keyAccessObjectId", "key_access_object_id"),
                    kao=None if inner is None else _key_access(inner, f"kao[{j}]"),
                )
            )
        requests.append(
            PolicyRequest(
                policy_id=_json_str(policy, "id"),
                policy_body=_json_str(policy, "body"),
                algorithm=_json_str(raw, "algorithm"),
                kaos=tuple(kaos),
            )
        )
    if requests:
        return UnsignedRewrap(client_public_key=client_key, requests=tuple(requests))
    # v1: a single keyAccess and the policy beside it.
    legacy_kao = _member(obj, "keyAccess", "key_access")
    if legacy_kao is None:
        raise _bad("request body has no requests")
    return UnsignedRewrap(
        client_public_key=client_key,
        requests=(
            PolicyRequest(
                policy_id="policy-1",
                policy_body=_json_str(obj, "policy"),
                algorithm=_json_str(obj, "algorithm"),
                kaos=(KaoRequest("kao-0", _key_access(legacy_kao, "keyAccess")),),
            ),
        ),
        legacy=True,
    )


# ----------------------------------------------------------- codec: responses


def encode_public_key_response(resp: PublicKeyResponse, codec: str) -> bytes:
    if codec == "json":
        obj = {"publicKey": resp.public_key}
        if resp.kid:
            obj["kid"] = resp.kid
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return _enc_str(1, resp.public_key) + _enc_str(2, resp.kid)


def _kao_result_proto(r: KaoResult) -> bytes:
    out = _enc_str(2, r.kao_id) + _enc_str(3, r.status)
    if r.status == "permit":
        out += _enc_bytes(4, r.kas_wrapped_key)
    else:
        out += _enc_bytes(5, r.error.encode("utf-8"))
    return out


def encode_rewrap_response(resp: RewrapResponse, codec: str) -> bytes:
    if codec == "json":
        obj: dict[str, Any] = {}
        if resp.entity_wrapped_key:
            obj["entityWrappedKey"] = base64.b64encode(resp.entity_wrapped_key).decode("ascii")
        if resp.session_public_key:
            obj["sessionPublicKey"] = resp.session_public_key
        if resp.schema_version:
            obj["schemaVersion"] = resp.schema_version
        obj["responses"] = [
            {
                "policyId": p.policy_id,
                "results": [
                    {"keyAccessObjectId": r.kao_id, "status": r.status}
                    | (
                        {"kasWrappedKey": base64.b64encode(r.kas_wrapped_key).decode("ascii")}
                        if r.status == "permit"
                        else {"error": r.error}
                    )
                    for r in p.results
                ],
            }
            for p in resp.responses
        ]
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")
    out = b""
    if resp.entity_wrapped_key:
        out += _enc_bytes(2, resp.entity_wrapped_key)
    out += _enc_str(3, resp.session_public_key) + _enc_str(4, resp.schema_version)
    for p in resp.responses:
        inner = _enc_str(1, p.policy_id)
        for r in p.results:
            inner += _enc_bytes(2, _kao_result_proto(r))
        out += _enc_bytes(5, inner)
    return out
