"""The manifest parser is strict and total; the writer is Go's json.Marshal, field for field."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relto.ztdf import InvalidContainer
from relto.ztdf.manifest import (
    Assertion,
    AssertionBinding,
    EncryptionInformation,
    IntegrityInformation,
    KeyAccess,
    Manifest,
    Method,
    Payload,
    Policy,
    PolicyAttribute,
    PolicyBinding,
    RootSignature,
    Segment,
    Statement,
    assertion_hash,
    go_json,
    parse_key_access,
    parse_manifest,
    parse_policy,
    serialize_manifest,
    serialize_policy,
)

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
b64 = st.binary(min_size=1, max_size=64).map(lambda b: base64.b64encode(b).decode())


@st.composite
def key_access(draw: st.DrawFn) -> KeyAccess:
    ec = draw(st.booleans())
    return KeyAccess(
        type="ec-wrapped" if ec else "wrapped",
        url=draw(text),
        protocol="kas",
        wrapped_key=draw(b64),
        policy_binding=PolicyBinding(alg="HS256", hash=draw(b64)),
        encrypted_metadata=draw(st.sampled_from(["", "abc"])),
        kid=draw(text),
        sid=draw(text),
        schema_version=draw(st.sampled_from(["", "1.0"])),
        ephemeral_public_key="-----BEGIN PUBLIC KEY-----\n" if ec else "",
    )


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    sizes = draw(
        st.lists(st.integers(min_value=0, max_value=4 * 1024 * 1024), min_size=1, max_size=5)
    )
    segs = tuple(
        Segment(hash=draw(b64), segment_size=s, encrypted_segment_size=s + 28) for s in sizes
    )
    assertions = tuple(
        Assertion(
            id=f"a{i}",
            type=draw(st.sampled_from(["handling", "metadata", "other"])),
            scope=draw(st.sampled_from(["tdo", "payload"])),
            applies_to_state=draw(st.sampled_from(["", "encrypted", "unencrypted"])),
            statement=Statement(format=draw(text), schema=draw(text), value=draw(text)),
            binding=draw(st.one_of(st.none(), st.builds(AssertionBinding, st.just("jws"), b64))),
        )
        for i in range(draw(st.integers(0, 3)))
    )
    return Manifest(
        encryption_information=EncryptionInformation(
            type="split",
            policy=draw(b64),
            key_access=tuple(draw(st.lists(key_access(), min_size=1, max_size=4))),
            method=Method(algorithm="AES-256-GCM", iv="", is_streamable=draw(st.booleans())),
            integrity_information=IntegrityInformation(
                root_signature=RootSignature(alg="HS256", sig=draw(b64)),
                segment_hash_alg=draw(st.sampled_from(["GMAC", "HS256"])),
                segment_size_default=sizes[0],
                encrypted_segment_size_default=sizes[0] + 28,
                segments=segs,
            ),
        ),
        payload=Payload(mime_type=draw(text)),
        assertions=assertions,
        schema_version=draw(st.sampled_from(["", "4.3.0"])),
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_manifest_round_trips_through_the_codec(m: Manifest) -> None:
    raw = serialize_manifest(m)
    again = parse_manifest(raw)
    assert serialize_manifest(again) == raw
    # assertions hash identically after a round trip (their binding is not hashed)
    assert [assertion_hash(a) for a in again.assertions] == [
        assertion_hash(a) for a in m.assertions
    ]


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    with contextlib.suppress(InvalidContainer):
        parse_manifest(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.data())
def test_mutated_manifests_parse_or_fail_cleanly(m: Manifest, data: st.DataObject) -> None:
    """Replace one node of a valid manifest with arbitrary JSON: a clean result or
    InvalidContainer, never another exception."""
    doc = json.loads(serialize_manifest(m))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((node, i))
                walk(v)

    walk(doc)
    parent, key = data.draw(st.sampled_from(paths))
    parent[key] = data.draw(json_values)
    with contextlib.suppress(InvalidContainer):
        parse_manifest(json.dumps(doc).encode())


def _valid() -> dict[str, Any]:
    return json.loads(
        serialize_manifest(
            Manifest(
                encryption_information=EncryptionInformation(
                    type="split",
                    policy="e30=",
                    key_access=(
                        KeyAccess(
                            type="wrapped",
                            url="u",
                            protocol="kas",
                            wrapped_key="AA==",
                            policy_binding=PolicyBinding("HS256", "AA=="),
                        ),
                    ),
                    method=Method("AES-256-GCM"),
                    integrity_information=IntegrityInformation(
                        RootSignature("HS256", "AA=="), "GMAC", 10, 38, (Segment("AA==", 10, 38),)
                    ),
                ),
                payload=Payload(),
            )
        )
    )


def test_unknown_top_level_field_dropped_never_kept() -> None:
    """The manifest root is open (spec, Go SDK): an unknown field is dropped, so it can
    neither steer verification nor be written back out."""
    doc = _valid()
    doc["extra"] = 1
    m = parse_manifest(json.dumps(doc))
    assert b"extra" not in serialize_manifest(m)


def test_unknown_assertion_field_rejected() -> None:
    """The assertion hash only covers known fields: an unknown one would ride unsigned."""
    doc = _valid()
    doc["assertions"] = [
        {
            "id": "a",
            "type": "handling",
            "scope": "tdo",
            "statement": {"value": "x"},
            "note": "unsigned",
        }
    ]
    with pytest.raises(InvalidContainer):
        parse_manifest(json.dumps(doc))


def test_duplicate_keys_rejected() -> None:
    raw = json.dumps(_valid(), separators=(",", ":"))
    raw = raw.replace('"payload":', '"payload":{},"payload":', 1)
    with pytest.raises(InvalidContainer) as exc:
        parse_manifest(raw)
    assert "duplicate" in exc.value.reason


def test_case_folded_duplicate_rejected() -> None:
    doc = _valid()
    doc["encryptionInformation"]["method"]["IsStreamable"] = False
    with pytest.raises(InvalidContainer):
        parse_manifest(json.dumps(doc))


@pytest.mark.parametrize("value", [True, 1.5, "10", -1])
def test_segment_size_must_be_a_non_negative_integer(value: Any) -> None:
    doc = _valid()
    doc["encryptionInformation"]["integrityInformation"]["segments"][0]["segmentSize"] = value
    with pytest.raises(InvalidContainer):
        parse_manifest(json.dumps(doc))


def test_nan_and_infinity_rejected() -> None:
    raw = json.dumps(_valid(), separators=(",", ":"))
    raw = raw.replace('"segmentSizeDefault":10', '"segmentSizeDefault":NaN')
    assert "NaN" in raw
    with pytest.raises(InvalidContainer):
        parse_manifest(raw)


def test_unsupported_key_access_type_rejected() -> None:
    doc = _valid()
    doc["encryptionInformation"]["keyAccess"][0]["type"] = "remote"
    with pytest.raises(InvalidContainer):
        parse_manifest(json.dumps(doc))


def test_ec_wrapped_needs_ephemeral_key() -> None:
    ka = _valid()["encryptionInformation"]["keyAccess"][0]
    ka["type"] = "ec-wrapped"
    with pytest.raises(InvalidContainer):
        parse_key_access(ka)


def test_legacy_string_policy_binding_accepted() -> None:
    ka = _valid()["encryptionInformation"]["keyAccess"][0]
    ka["policyBinding"] = "ZmFrZQ=="
    parsed = parse_key_access(ka)
    assert parsed.policy_binding.hash == "ZmFrZQ=="


def test_go_json_escapes_html_characters() -> None:
    assert go_json({"a": "<&>\u2028"}) == '{"a":"\\u003c\\u0026\\u003e\\u2028"}'


def test_policy_codec_matches_go_field_names() -> None:
    p = Policy(uuid="u", data_attributes=(PolicyAttribute("https://a/attr/x/value/y"),), dissem=())
    raw = base64.b64decode(serialize_policy(p))
    assert raw == (
        b'{"uuid":"u","body":{"dataAttributes":[{"attribute":"https://a/attr/x/value/y",'
        b'"displayName":"","isDefault":false,"pubKey":"","kasURL":""}],"dissem":[]}}'
    )
    assert parse_policy(serialize_policy(p)) == p


def test_policy_with_unknown_field_rejected() -> None:
    bad = base64.b64encode(b'{"uuid":"u","body":{"dataAttributes":[],"dissem":[],"x":1}}').decode()
    with pytest.raises(InvalidContainer):
        parse_policy(bad)


@settings(max_examples=200)
@given(st.binary(max_size=512))
def test_policy_parser_total(data: bytes) -> None:
    with contextlib.suppress(InvalidContainer):
        parse_policy(base64.b64encode(data).decode())


def test_unknown_payload_field_dropped_never_kept() -> None:
    """``payload`` is open in the spec (the JavaScript client writes ``schemaVersion``
    there, the JSON schema names ``tdf_spec_version``): read, dropped, not written."""
    doc = _valid()
    doc["payload"]["schemaVersion"] = "3.0.0"
    doc["payload"]["tdf_spec_version"] = "4.3.0"
    m = parse_manifest(json.dumps(doc))
    assert m.payload == Payload()
    assert b"3.0.0" not in serialize_manifest(m)


def _at(doc: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = doc
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    assert isinstance(node, dict)
    return node


@pytest.mark.parametrize(
    "path",
    [
        "encryptionInformation",
        "encryptionInformation.method",
        "encryptionInformation.keyAccess.0",
        "encryptionInformation.keyAccess.0.policyBinding",
        "encryptionInformation.integrityInformation",
        "encryptionInformation.integrityInformation.rootSignature",
        "encryptionInformation.integrityInformation.segments.0",
    ],
)
def test_unknown_field_in_integrity_or_key_data_rejected(path: str) -> None:
    """Where a field could change how the container is verified or decrypted, one
    relto does not understand is refused (fail closed), never ignored."""
    doc = _valid()
    _at(doc, path)["alg2"] = "none"
    with pytest.raises(InvalidContainer) as exc:
        parse_manifest(json.dumps(doc))
    assert "unknown field" in exc.value.reason


def test_zipstream_payload_protocol_accepted() -> None:
    doc = _valid()
    doc["payload"]["protocol"] = "zipstream"
    assert parse_manifest(json.dumps(doc)).payload.protocol == "zipstream"


def test_payload_protocol_outside_the_spec_rejected() -> None:
    doc = _valid()
    doc["payload"]["protocol"] = "http"
    with pytest.raises(InvalidContainer):
        parse_manifest(json.dumps(doc))
