"""The ZTDF manifest (``0.manifest.json``): typed model, strict parser, Go-exact writer.

The model is plain frozen dataclasses that know nothing of JSON; :func:`parse_manifest`
and :func:`serialize_manifest` are the codec. Serialisation reproduces OpenTDF's Go
SDK byte for byte in field names, order, ``omitempty`` rules and string escaping
(``json.Marshal``: compact, ``<``, ``>``, ``&`` escaped as ``\\u003c`` ...).

Parsing is strict, because a manifest is untrusted input read before anything is
verified:

- size bounded (:data:`MAX_MANIFEST_BYTES`, as the Go SDK's default), entry counts and
  string lengths bounded, JSON nesting bounded;
- duplicate keys are refused; keys match case-insensitively, as Go's
  ``encoding/json`` does (old Java SDKs wrote ``IsStreamable``);
- unknown fields: the two descriptive objects the spec leaves open, the manifest
  root and ``payload`` (the JavaScript client writes ``payload.schemaVersion``, the
  spec's JSON schema names ``payload.tdf_spec_version``), may carry fields relto
  does not know; they are dropped, never kept or acted on (:data:`OPEN_OBJECTS`).
  Everything that says how to verify or decrypt -- ``encryptionInformation``,
  ``method``, ``keyAccess`` and its ``policyBinding``, ``integrityInformation``, its
  ``rootSignature`` and ``segments``, the policy, the assertions (whose hash only
  covers known fields) -- refuses an unknown field: a field relto does not
  understand there could change what a signature means, so it fails closed;
- ``segments`` may be empty: an empty payload (the JavaScript client and
  otdf-python write ``[]``; the Go SDK writes one segment of 0 plaintext bytes). The
  root signature over zero segment hashes is still required and checked;
- types are checked (a size is a non-negative integer, never a bool or float).

Every failure raises :class:`relto.ztdf.errors.InvalidContainer` whose ``reason``
holds the precise cause (for the log, not for the caller).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import rfc8785

from relto.ztdf.errors import InvalidContainer

__all__ = [
    "MAX_MANIFEST_BYTES",
    "OPEN_OBJECTS",
    "SCHEMA_VERSION",
    "Assertion",
    "AssertionBinding",
    "EncryptionInformation",
    "IntegrityInformation",
    "KeyAccess",
    "Manifest",
    "Method",
    "Payload",
    "Policy",
    "PolicyAttribute",
    "PolicyBinding",
    "RootSignature",
    "Segment",
    "Statement",
    "assertion_hash",
    "go_json",
    "key_access_to_dict",
    "manifest_to_dict",
    "parse_key_access",
    "parse_manifest",
    "parse_policy",
    "serialize_manifest",
    "serialize_policy",
]

#: TDF spec version written in ``schemaVersion``.
SCHEMA_VERSION: Final = "4.3.0"
#: Key access object schema version the Go SDK writes.
KEY_ACCESS_SCHEMA_VERSION: Final = "1.0"
#: Largest manifest accepted (the Go SDK's default limit).
MAX_MANIFEST_BYTES: Final = 10 * 1024 * 1024
MAX_KEY_ACCESS: Final = 64
MAX_ASSERTIONS: Final = 64
MAX_SEGMENTS: Final = 4 * 1024 * 1024
MAX_ATTRIBUTES: Final = 256
MAX_DISSEM: Final = 1024
MAX_POLICY_BYTES: Final = 1024 * 1024
MAX_STRING: Final = 1024 * 1024
MAX_SHORT_STRING: Final = 8 * 1024
MAX_DEPTH: Final = 32
#: Largest encrypted segment a reader will buffer (the Go SDK writes at most 4 MiB).
MAX_ENCRYPTED_SEGMENT: Final = 16 * 1024 * 1024 + 28
#: Largest plaintext (the Go SDK's limit, 64 GiB).
MAX_PAYLOAD_BYTES: Final = 64 * 1024**3
#: The manifest objects whose unknown fields are dropped instead of refused: the
#: spec leaves them open and nothing in them is signed or steers verification.
OPEN_OBJECTS: Final = frozenset({"manifest", "manifest.payload"})
#: Payload protocols: the spec names ``zip`` and ``zipstream`` (older JavaScript
#: clients); both are the same stored zip archive to a reader.
PAYLOAD_PROTOCOLS: Final = frozenset({"zip", "zipstream"})

log = logging.getLogger("relto.ztdf")


# ----------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class PolicyBinding:
    """``policyBinding``: ``alg`` (``HS256``) and ``hash`` (base64 of the hex HMAC)."""

    alg: str
    hash: str
    #: True if the manifest carried the pre-object form (a bare string).
    legacy_string: bool = False


@dataclass(frozen=True, slots=True)
class KeyAccess:
    """One key access entry: how one KAS can recover one key share."""

    type: str  # "wrapped" | "ec-wrapped"
    url: str
    protocol: str
    wrapped_key: str  # base64
    policy_binding: PolicyBinding
    encrypted_metadata: str = ""
    kid: str = ""
    sid: str = ""
    schema_version: str = ""
    ephemeral_public_key: str = ""

    def wrapped_key_bytes(self) -> bytes:
        """The wrapped key share, decoded; :class:`InvalidContainer` if not base64."""
        return _b64(self.wrapped_key, "keyAccess.wrappedKey")


@dataclass(frozen=True, slots=True)
class Method:
    algorithm: str
    iv: str = ""
    is_streamable: bool = True


@dataclass(frozen=True, slots=True)
class RootSignature:
    alg: str
    sig: str


@dataclass(frozen=True, slots=True)
class Segment:
    hash: str
    segment_size: int
    encrypted_segment_size: int


@dataclass(frozen=True, slots=True)
class IntegrityInformation:
    root_signature: RootSignature
    segment_hash_alg: str
    segment_size_default: int
    encrypted_segment_size_default: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class EncryptionInformation:
    type: str
    policy: str  # base64 of the policy JSON, exactly as bound
    key_access: tuple[KeyAccess, ...]
    method: Method
    integrity_information: IntegrityInformation


@dataclass(frozen=True, slots=True)
class Payload:
    type: str = "reference"
    url: str = "0.payload"
    protocol: str = "zip"
    mime_type: str = "application/octet-stream"
    is_encrypted: bool = True


@dataclass(frozen=True, slots=True)
class Statement:
    format: str
    schema: str
    #: Always text: an object value is re-encoded as the Go SDK does before hashing.
    value: str


@dataclass(frozen=True, slots=True)
class AssertionBinding:
    method: str
    signature: str


@dataclass(frozen=True, slots=True)
class Assertion:
    id: str
    type: str  # handling | metadata | other
    scope: str  # tdo | payload
    applies_to_state: str  # encrypted | unencrypted | ""
    statement: Statement
    binding: AssertionBinding | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    encryption_information: EncryptionInformation
    payload: Payload
    assertions: tuple[Assertion, ...] = ()
    #: ``"4.3.0"``; empty for the legacy (hex) format.
    schema_version: str = SCHEMA_VERSION

    @property
    def legacy(self) -> bool:
        """True for the older format (no ``schemaVersion``): hex before base64."""
        return self.schema_version == ""


@dataclass(frozen=True, slots=True)
class PolicyAttribute:
    attribute: str
    display_name: str = ""
    is_default: bool = False
    pub_key: str = ""
    kas_url: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    """The decoded policy object: a uuid, attribute value FQNs and ``dissem``."""

    uuid: str
    data_attributes: tuple[PolicyAttribute, ...] = ()
    dissem: tuple[str, ...] = ()
    #: Go SDK writes ``null`` for empty lists; Java and relto write ``[]``.
    null_when_empty: bool = field(default=False, compare=False)

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(a.attribute for a in self.data_attributes)


# ------------------------------------------------------------ Go-compatible JSON

_GO_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_RE: Final = re.compile("[<>&\u2028\u2029]")


def go_json(obj: Any, *, sort_keys: bool = False) -> str:
    """``json.Marshal`` output of Go for ``obj`` (compact, HTML-safe escapes).

    The characters Go escapes can only occur inside JSON strings, so escaping the
    serialised text is exact.
    """
    text = json.dumps(
        obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False
    )
    return _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group(0)], text)


# --------------------------------------------------------------------- parsing


def _fail(reason: str) -> InvalidContainer:
    return InvalidContainer(reason)


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _fail(f"{where} is not base64") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _fail(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise _fail(f"non-standard JSON constant {name}")


_STRING_RE: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS_RE: Final = re.compile(r"[\[\]{}]")


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` before ``json`` recurses into it."""
    depth = 0
    for ch in _BRACKETS_RE.findall(_STRING_RE.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _fail("JSON nested too deeply")
        else:
            depth -= 1


def _loads(data: bytes | str, limit: int, what: str) -> Any:
    if len(data) > limit:
        raise _fail(f"{what} larger than {limit} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(f"{what} is not UTF-8") from None
    else:
        text = data
    _check_depth(text)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except InvalidContainer:
        raise
    except (ValueError, RecursionError):
        raise _fail(f"{what} is not valid JSON") from None


class _Obj:
    """Case-insensitive, duplicate-refusing view of one JSON object (Go semantics)."""

    __slots__ = ("_items", "_where")

    def __init__(self, raw: Any, where: str, known: tuple[str, ...]) -> None:
        if not isinstance(raw, dict):
            raise _fail(f"{where} is not an object")
        canon = {k.lower(): k for k in known}
        items: dict[str, Any] = {}
        for key, value in raw.items():
            name = canon.get(key.lower())
            if name is None:
                if where in OPEN_OBJECTS:  # dropped: never kept, never acted on
                    log.debug("ztdf manifest: ignoring unknown field %s.%.64s", where, key)
                    continue
                raise _fail(f"unknown field {where}.{key}")
            if name in items:
                raise _fail(f"duplicate field {where}.{name}")
            items[name] = value
        self._items = items
        self._where = where

    def has(self, name: str) -> bool:
        return name in self._items and self._items[name] is not None

    def raw(self, name: str) -> Any:
        return self._items.get(name)

    def text(self, name: str, *, required: bool = False, limit: int = MAX_SHORT_STRING) -> str:
        value = self._items.get(name)
        if value is None:
            if required:
                raise _fail(f"missing field {self._where}.{name}")
            return ""
        if not isinstance(value, str):
            raise _fail(f"{self._where}.{name} is not a string")
        if len(value) > limit:
            raise _fail(f"{self._where}.{name} is too long")
        return value

    def integer(
        self, name: str, *, required: bool = False, maximum: int = MAX_PAYLOAD_BYTES
    ) -> int:
        value = self._items.get(name)
        if value is None:
            if required:
                raise _fail(f"missing field {self._where}.{name}")
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"{self._where}.{name} is not an integer")
        if value < 0 or value > maximum:
            raise _fail(f"{self._where}.{name} is out of range")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._items.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _fail(f"{self._where}.{name} is not a boolean")
        return value

    def array(self, name: str, *, required: bool = False, limit: int) -> list[Any]:
        value = self._items.get(name)
        if value is None:
            if required:
                raise _fail(f"missing field {self._where}.{name}")
            return []
        if not isinstance(value, list):
            raise _fail(f"{self._where}.{name} is not a list")
        if len(value) > limit:
            raise _fail(f"{self._where}.{name} has too many entries")
        return value

    def child(self, name: str, known: tuple[str, ...], *, required: bool = True) -> _Obj | None:
        value = self._items.get(name)
        if value is None:
            if required:
                raise _fail(f"missing field {self._where}.{name}")
            return None
        return _Obj(value, f"{self._where}.{name}", known)


_KA_FIELDS: Final = (
    "type",
    "url",
    "protocol",
    "wrappedKey",
    "policyBinding",
    "encryptedMetadata",
    "kid",
    "sid",
    "schemaVersion",
    "ephemeralPublicKey",
)


def _parse_key_access(raw: Any, where: str) -> KeyAccess:
    o = _Obj(raw, where, _KA_FIELDS)
    ka_type = o.text("type", required=True)
    if ka_type not in ("wrapped", "ec-wrapped"):
        raise _fail(f"{where}.type {ka_type!r} is not supported")
    pb_raw = o.raw("policyBinding")
    if isinstance(pb_raw, str):
        if len(pb_raw) > MAX_SHORT_STRING:
            raise _fail(f"{where}.policyBinding is too long")
        binding = PolicyBinding(alg="HS256", hash=pb_raw, legacy_string=True)
    else:
        pb = _Obj(pb_raw, f"{where}.policyBinding", ("alg", "hash"))
        alg = pb.text("alg") or "HS256"
        if alg != "HS256":
            raise _fail(f"{where}.policyBinding.alg {alg!r} is not supported")
        binding = PolicyBinding(alg=alg, hash=pb.text("hash", required=True))
    ka = KeyAccess(
        type=ka_type,
        url=o.text("url", required=True),
        protocol=o.text("protocol") or "kas",
        wrapped_key=o.text("wrappedKey", required=True),
        policy_binding=binding,
        encrypted_metadata=o.text("encryptedMetadata", limit=MAX_STRING),
        kid=o.text("kid"),
        sid=o.text("sid"),
        schema_version=o.text("schemaVersion"),
        ephemeral_public_key=o.text("ephemeralPublicKey"),
    )
    if ka.protocol != "kas":
        raise _fail(f"{where}.protocol {ka.protocol!r} is not supported")
    if ka.type == "ec-wrapped" and not ka.ephemeral_public_key:
        raise _fail(f"{where} is ec-wrapped without an ephemeralPublicKey")
    return ka


def parse_key_access(raw: Mapping[str, Any]) -> KeyAccess:
    """Parse one key access object (a decoded JSON object), strictly.

    For the KAS, which receives these in rewrap requests.
    """
    return _parse_key_access(dict(raw), "keyAccess")


_ASSERTION_FIELDS: Final = ("id", "type", "scope", "appliesToState", "statement", "binding")


def _parse_assertion(raw: Any, where: str) -> Assertion:
    o = _Obj(raw, where, _ASSERTION_FIELDS)
    st = o.child("statement", ("format", "schema", "value"))
    assert st is not None
    value_raw = st.raw("value")
    if value_raw is None:
        value = ""
    elif isinstance(value_raw, str):
        if len(value_raw) > MAX_STRING:
            raise _fail(f"{where}.statement.value is too long")
        value = value_raw
    elif isinstance(value_raw, dict):
        # The Go SDK re-encodes an object value as compact JSON text with sorted keys.
        value = go_json(value_raw, sort_keys=True)
        if len(value) > MAX_STRING:
            raise _fail(f"{where}.statement.value is too long")
    else:
        raise _fail(f"{where}.statement.value is neither text nor an object")
    binding = None
    b = o.child("binding", ("method", "signature"), required=False)
    if b is not None:
        binding = AssertionBinding(
            method=b.text("method"), signature=b.text("signature", limit=MAX_STRING)
        )
        if not binding.method and not binding.signature:
            binding = None
    a_type = o.text("type", required=True)
    scope = o.text("scope", required=True)
    state = o.text("appliesToState")
    if a_type not in ("handling", "metadata", "other"):
        raise _fail(f"{where}.type {a_type!r} is not supported")
    if scope not in ("tdo", "payload"):
        raise _fail(f"{where}.scope {scope!r} is not supported")
    if state not in ("", "encrypted", "unencrypted"):
        raise _fail(f"{where}.appliesToState {state!r} is not supported")
    return Assertion(
        id=o.text("id", required=True),
        type=a_type,
        scope=scope,
        applies_to_state=state,
        statement=Statement(format=st.text("format"), schema=st.text("schema"), value=value),
        binding=binding,
    )


def parse_manifest(data: bytes | str) -> Manifest:
    """Parse ``0.manifest.json`` strictly; :class:`InvalidContainer` on any defect.

    Nothing here is verified yet: callers name the result ``unverified_manifest``
    until the root signature, the policy binding and the assertions check out.
    """
    root = _Obj(
        _loads(data, MAX_MANIFEST_BYTES, "manifest"),
        "manifest",
        ("encryptionInformation", "payload", "assertions", "schemaVersion"),
    )
    ei = root.child(
        "encryptionInformation", ("type", "policy", "keyAccess", "method", "integrityInformation")
    )
    assert ei is not None
    ei_type = ei.text("type") or "split"
    if ei_type != "split":
        raise _fail(f"encryptionInformation.type {ei_type!r} is not supported")
    key_access = tuple(
        _parse_key_access(item, f"keyAccess[{i}]")
        for i, item in enumerate(ei.array("keyAccess", required=True, limit=MAX_KEY_ACCESS))
    )
    if not key_access:
        raise _fail("no key access entries")
    m = ei.child("method", ("algorithm", "iv", "isStreamable"))
    assert m is not None
    method = Method(
        algorithm=m.text("algorithm", required=True),
        iv=m.text("iv"),
        is_streamable=m.flag("isStreamable"),
    )
    if method.algorithm != "AES-256-GCM":
        raise _fail(f"method.algorithm {method.algorithm!r} is not supported")
    ii = ei.child(
        "integrityInformation",
        (
            "rootSignature",
            "segmentHashAlg",
            "segmentSizeDefault",
            "encryptedSegmentSizeDefault",
            "segments",
        ),
    )
    assert ii is not None
    rs = ii.child("rootSignature", ("alg", "sig"))
    assert rs is not None
    root_sig = RootSignature(alg=rs.text("alg") or "HS256", sig=rs.text("sig", required=True))
    if not root_sig.sig:
        raise _fail("rootSignature.sig is empty")
    if root_sig.alg.upper() not in ("HS256", "GMAC"):
        raise _fail(f"rootSignature.alg {root_sig.alg!r} is not supported")
    seg_alg = ii.text("segmentHashAlg") or "GMAC"
    if seg_alg.upper() not in ("GMAC", "HS256"):
        raise _fail(f"segmentHashAlg {seg_alg!r} is not supported")
    default_size = ii.integer("segmentSizeDefault", maximum=MAX_ENCRYPTED_SEGMENT)
    default_enc = ii.integer("encryptedSegmentSizeDefault", maximum=MAX_ENCRYPTED_SEGMENT)
    segments: list[Segment] = []
    total = 0
    for i, raw in enumerate(ii.array("segments", required=True, limit=MAX_SEGMENTS)):
        so = _Obj(raw, f"segments[{i}]", ("hash", "segmentSize", "encryptedSegmentSize"))
        size = so.integer("segmentSize", maximum=MAX_ENCRYPTED_SEGMENT)
        enc = so.integer("encryptedSegmentSize", maximum=MAX_ENCRYPTED_SEGMENT)
        # Omitted sizes default as the Go SDK resolves them (web-sdk omits defaults).
        if enc == 0:
            enc = default_enc
        if size == 0 and enc == default_enc:
            size = default_size
        if enc < 28 or enc - 28 != size:
            raise _fail(f"segments[{i}] sizes are inconsistent")
        total += size
        if total > MAX_PAYLOAD_BYTES:
            raise _fail("payload larger than 64 GiB")
        segments.append(
            Segment(
                hash=so.text("hash", required=True), segment_size=size, encrypted_segment_size=enc
            )
        )
    # Zero segments is an empty payload: still bound, by the root signature over zero
    # segment hashes (HMAC of the empty string), which open_container checks.
    integrity = IntegrityInformation(
        root_signature=root_sig,
        segment_hash_alg=seg_alg,
        segment_size_default=default_size,
        encrypted_segment_size_default=default_enc,
        segments=tuple(segments),
    )
    policy = ei.text("policy", required=True, limit=MAX_POLICY_BYTES * 2)
    p = root.child("payload", ("type", "url", "protocol", "mimeType", "isEncrypted"))
    assert p is not None
    payload = Payload(
        type=p.text("type", required=True),
        url=p.text("url", required=True),
        protocol=p.text("protocol", required=True),
        mime_type=p.text("mimeType"),
        is_encrypted=p.flag("isEncrypted"),
    )
    if (
        payload.type != "reference"
        or payload.protocol not in PAYLOAD_PROTOCOLS
        or not payload.is_encrypted
    ):
        raise _fail("payload is not an encrypted zip reference")
    assertions = tuple(
        _parse_assertion(item, f"assertions[{i}]")
        for i, item in enumerate(root.array("assertions", limit=MAX_ASSERTIONS))
    )
    ids = [a.id for a in assertions]
    if len(set(ids)) != len(ids):
        raise _fail("duplicate assertion ids")
    return Manifest(
        encryption_information=EncryptionInformation(
            type=ei_type,
            policy=policy,
            key_access=key_access,
            method=method,
            integrity_information=integrity,
        ),
        payload=payload,
        assertions=assertions,
        schema_version=root.text("schemaVersion"),
    )


def parse_policy(policy_b64: str) -> Policy:
    """Decode and parse the base64 policy object, strictly."""
    raw = _b64(policy_b64, "policy")
    o = _Obj(_loads(raw, MAX_POLICY_BYTES, "policy"), "policy", ("uuid", "body"))
    body = o.child("body", ("dataAttributes", "dissem", "kid"))
    assert body is not None
    nulls = body.raw("dataAttributes") is None and body.raw("dissem") is None
    attrs = []
    for i, item in enumerate(body.array("dataAttributes", limit=MAX_ATTRIBUTES)):
        a = _Obj(
            item,
            f"policy.dataAttributes[{i}]",
            ("attribute", "displayName", "isDefault", "pubKey", "kasURL"),
        )
        attrs.append(
            PolicyAttribute(
                attribute=a.text("attribute", required=True),
                display_name=a.text("displayName"),
                is_default=a.flag("isDefault"),
                pub_key=a.text("pubKey"),
                kas_url=a.text("kasURL"),
            )
        )
    dissem = []
    for item in body.array("dissem", limit=MAX_DISSEM):
        if not isinstance(item, str) or len(item) > MAX_SHORT_STRING:
            raise _fail("policy.dissem entries must be strings")
        dissem.append(item)
    return Policy(
        uuid=o.text("uuid", required=True),
        data_attributes=tuple(attrs),
        dissem=tuple(dissem),
        null_when_empty=nulls,
    )


# --------------------------------------------------------------- serialisation


def serialize_policy(policy: Policy) -> str:
    """The base64 policy string, as the Go SDK builds it."""
    attrs: list[dict[str, Any]] | None = [
        {
            "attribute": a.attribute,
            "displayName": a.display_name,
            "isDefault": a.is_default,
            "pubKey": a.pub_key,
            "kasURL": a.kas_url,
        }
        for a in policy.data_attributes
    ]
    dissem: list[str] | None = list(policy.dissem)
    if policy.null_when_empty:
        attrs = attrs or None
        dissem = dissem or None
    obj = {"uuid": policy.uuid, "body": {"dataAttributes": attrs, "dissem": dissem}}
    return base64.b64encode(go_json(obj).encode("utf-8")).decode("ascii")


def key_access_to_dict(ka: KeyAccess) -> dict[str, Any]:
    """A key access entry as the Go SDK's ``KeyAccess`` struct marshals it."""
    out: dict[str, Any] = {
        "type": ka.type,
        "url": ka.url,
        "protocol": ka.protocol,
        "wrappedKey": ka.wrapped_key,
        "policyBinding": ka.policy_binding.hash
        if ka.policy_binding.legacy_string
        else {"alg": ka.policy_binding.alg, "hash": ka.policy_binding.hash},
    }
    for key, value in (
        ("encryptedMetadata", ka.encrypted_metadata),
        ("kid", ka.kid),
        ("sid", ka.sid),
        ("schemaVersion", ka.schema_version),
        ("ephemeralPublicKey", ka.ephemeral_public_key),
    ):
        if value:
            out[key] = value
    return out


def _assertion_dict(a: Assertion, *, with_binding: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": a.id, "type": a.type, "scope": a.scope}
    if a.applies_to_state:
        out["appliesToState"] = a.applies_to_state
    st: dict[str, Any] = {}
    for key, value in (
        ("format", a.statement.format),
        ("schema", a.statement.schema),
        ("value", a.statement.value),
    ):
        if value:
            st[key] = value
    out["statement"] = st
    if with_binding and a.binding is not None and (a.binding.method or a.binding.signature):
        b: dict[str, Any] = {}
        if a.binding.method:
            b["method"] = a.binding.method
        if a.binding.signature:
            b["signature"] = a.binding.signature
        out["binding"] = b
    return out


def assertion_hash(a: Assertion) -> str:
    """``assertionHash``: hex SHA-256 of the JCS form of the assertion without binding."""
    return hashlib.sha256(rfc8785.dumps(_assertion_dict(a, with_binding=False))).hexdigest()


def manifest_to_dict(m: Manifest) -> dict[str, Any]:
    """The manifest as an ordered dict, field for field the Go SDK's ``Manifest``."""
    ei = m.encryption_information
    ii = ei.integrity_information
    out: dict[str, Any] = {
        "encryptionInformation": {
            "type": ei.type,
            "policy": ei.policy,
            "keyAccess": [key_access_to_dict(ka) for ka in ei.key_access],
            "method": {
                "algorithm": ei.method.algorithm,
                "iv": ei.method.iv,
                "isStreamable": ei.method.is_streamable,
            },
            "integrityInformation": {
                "rootSignature": {"alg": ii.root_signature.alg, "sig": ii.root_signature.sig},
                "segmentHashAlg": ii.segment_hash_alg,
                "segmentSizeDefault": ii.segment_size_default,
                "encryptedSegmentSizeDefault": ii.encrypted_segment_size_default,
                "segments": [
                    {
                        "hash": s.hash,
                        "segmentSize": s.segment_size,
                        "encryptedSegmentSize": s.encrypted_segment_size,
                    }
                    for s in ii.segments
                ],
            },
        },
        "payload": {
            "type": m.payload.type,
            "url": m.payload.url,
            "protocol": m.payload.protocol,
            "mimeType": m.payload.mime_type,
            "isEncrypted": m.payload.is_encrypted,
        },
    }
    if m.assertions:
        out["assertions"] = [_assertion_dict(a, with_binding=True) for a in m.assertions]
    if m.schema_version:
        out["schemaVersion"] = m.schema_version
    return out


def serialize_manifest(m: Manifest) -> bytes:
    """``0.manifest.json`` bytes exactly as the Go SDK's ``json.Marshal`` writes them."""
    return go_json(manifest_to_dict(m)).encode("utf-8")
