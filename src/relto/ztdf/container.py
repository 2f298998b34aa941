"""Streaming ZTDF writer and reader: :func:`protect`, :func:`open_container`, :func:`inspect`.

Both run in constant memory (two segment buffers) for any size up to 64 GiB.

:func:`open_container` verifies before it decrypts and decrypts before it publishes:
the zip structure, the manifest (strictly parsed, still *unverified*), the policy
binding of every key share it recovers, the root signature over the segment hashes
and every assertion's JWS binding are checked before the first segment is read;
every segment's hash and GCM tag are checked as it is decrypted into a temporary
file next to the destination, which is renamed into place only when all of them
verified. A tampered container therefore never yields a byte. Any defect raises one
opaque :class:`InvalidContainer` (its ``reason`` attribute and the ``relto.ztdf`` log
say precisely what); no key share recovered for some split raises
:class:`KeyAccessDenied`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import struct
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from relto.errors import AccessDenied, InvalidInput, ReltoError
from relto.ztdf import hazmat
from relto.ztdf._zip import ZipEntry, ZipStreamWriter, read_zip_index
from relto.ztdf.errors import (
    CryptoError,
    FailureKind,
    InvalidContainer,
    KeyAccessDenied,
    KeyAccessFailure,
)
from relto.ztdf.manifest import (
    KEY_ACCESS_SCHEMA_VERSION,
    MAX_ENCRYPTED_SEGMENT,
    MAX_MANIFEST_BYTES,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
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
    parse_manifest,
    parse_policy,
    serialize_manifest,
    serialize_policy,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "INTEGRITY_ENCODINGS",
    "LABEL_ASSERTION_ID",
    "LABEL_SCHEMA",
    "KasTarget",
    "OpenResult",
    "ProtectResult",
    "Unwrap",
    "inspect",
    "open_container",
    "private_key_unwrapper",
    "protect",
]

log = logging.getLogger("relto.ztdf")

DEFAULT_SEGMENT_SIZE: Final = 2 * 1024 * 1024
MIN_SEGMENT_SIZE: Final = 16 * 1024
MAX_SEGMENT_SIZE: Final = 4 * 1024 * 1024
PAYLOAD_NAME: Final = "0.payload"
MANIFEST_NAME: Final = "0.manifest.json"
#: The assertion relto puts the STANAG 4774 confidentiality label in.
LABEL_ASSERTION_ID: Final = "relto-confidentiality-label"
LABEL_SCHEMA: Final = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
LABEL_FORMAT: Final = "xml"
#: How ``protect`` encodes segment hashes and signatures: ``raw`` bytes (schema 4.3.0)
#: or the legacy ``hex`` text.
INTEGRITY_ENCODINGS: Final = ("raw", "hex")
MAX_LABEL_BYTES: Final = 256 * 1024

#: ``unwrap(key_access, policy_b64) -> key share``: where an online KAS (rewrap) or an
#: offline private key plugs in. Raise :class:`relto.errors.AccessDenied` to refuse.
Unwrap = Callable[[KeyAccess, str], bytes]
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class KasTarget:
    """One KAS a key share is wrapped for. Targets with the same ``sid`` are
    alternatives (any one of them can release that share); different ``sid``\\ s are
    all required."""

    url: str
    public_key_pem: str
    kid: str = ""
    sid: str = ""


@dataclass(frozen=True, slots=True)
class ProtectResult:
    manifest: Manifest
    policy: Policy
    container_size: int
    plaintext_size: int


@dataclass(frozen=True, slots=True)
class OpenResult:
    """What a verified container said about itself (all of it verified)."""

    manifest: Manifest
    policy: Policy
    label_xml: bytes | None
    plaintext_size: int


# -------------------------------------------------------------------- helpers


def _check_at(at: datetime) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")


@contextlib.contextmanager
def _atomic_output(dst: Path, *, overwrite: bool) -> Iterator[BinaryIO]:
    """A temp file next to ``dst`` renamed onto it only if the block succeeds."""
    if dst.exists() and not overwrite:
        raise InvalidInput(f"output file already exists: {dst.name}")
    directory = dst.parent if str(dst.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb", buffering=1024 * 1024) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp, dst)
        else:
            try:
                os.link(tmp, dst)  # atomic, and never clobbers a file created meanwhile
            except FileExistsError:
                raise InvalidInput(f"output file already exists: {dst.name}") from None
            except OSError:  # no hard links on this filesystem: best effort
                if dst.exists():
                    raise InvalidInput(f"output file already exists: {dst.name}") from None
                os.replace(tmp, dst)
            else:
                tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class _Pipeline:
    """Hands filled buffers to worker threads while the caller fills the next.

    Each sink runs on its own single worker thread, in submission order: the CRC-32 of
    the zip entry on one, the file writes on the other. zlib, file I/O and AES-GCM all
    release the GIL, so crypto, checksum and I/O overlap. Buffers rotate through
    ``depth`` slots; a slot is reused only once every sink is done with it, so memory
    stays constant.
    """

    def __init__(
        self, sinks: tuple[Callable[..., None], ...], sizes: tuple[int, ...], depth: int = 3
    ) -> None:
        self._pools = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ztdf-io") for _ in sinks
        ]
        self._sinks = sinks
        self._slots = [tuple(memoryview(bytearray(n)) for n in sizes) for _ in range(depth)]
        self._pending: list[list[Future[None]]] = [[] for _ in range(depth)]

    def slot(self, k: int) -> tuple[memoryview, ...]:
        """The buffers of segment ``k``'s slot, once every sink is done with them
        (segment ``k`` and segment ``k + depth`` share a slot)."""
        i = k % len(self._slots)
        futures, self._pending[i] = self._pending[i], []
        for fut in futures:
            fut.result()
        return self._slots[i]

    def submit(self, k: int, *args: Any) -> None:
        """Hand segment ``k``'s slot to every sink."""
        self._pending[k % len(self._slots)] = [
            pool.submit(sink, *args) for pool, sink in zip(self._pools, self._sinks, strict=True)
        ]

    def drain(self) -> None:
        for i, futures in enumerate(self._pending):
            self._pending[i] = []
            for fut in futures:
                fut.result()

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _jws_hs256(key: bytes, claims: dict[str, Any]) -> str:
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact({"alg": "HS256"}, payload, OctKey.import_key(key))


def _assertion_sig(aggregate: bytes, hash_hex: str, *, legacy: bool) -> str:
    tail = hash_hex.encode("ascii") if legacy else bytes.fromhex(hash_hex)
    return _b64(aggregate + tail)


# ------------------------------------------------------------------- protect


def _wrap(target: KasTarget, share: bytes) -> tuple[str, str, str]:
    """(type, wrappedKey b64, ephemeralPublicKey) for one target."""
    key = hazmat.load_public_key(target.public_key_pem)
    if isinstance(key, rsa.RSAPublicKey):
        return "wrapped", _b64(hazmat.rsa_wrap(key, share)), ""
    if isinstance(key, ec.EllipticCurvePublicKey):
        eph, wrapped = hazmat.ec_wrap(key, share)
        return "ec-wrapped", _b64(wrapped), eph
    raise InvalidInput("unsupported KAS public key type")


def _check_protect_args(
    kas: Sequence[KasTarget], segment_size: int, label_xml: bytes | None
) -> list[str]:
    """Check the arguments as ``protect()`` does; the split ids in the order the Go
    SDK groups them."""
    if not kas:
        raise ValueError("at least one KAS target is needed")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError("segment size must be between 16 KiB and 4 MiB")
    if label_xml is not None and (
        not isinstance(label_xml, bytes) or len(label_xml) > MAX_LABEL_BYTES
    ):
        raise ValueError("label_xml must be bytes of at most 256 KiB")
    order: list[str] = []
    for t in kas:
        if t.sid not in order:
            order.append(t.sid)
    return order


def _key_access(
    kas: Sequence[KasTarget], order: Sequence[str], shares: dict[str, bytes], policy_b64: str
) -> tuple[KeyAccess, ...]:
    """Each share wrapped for every target of its split id and bound to the policy."""
    key_access: list[KeyAccess] = []
    for sid in order:
        binding = PolicyBinding(
            alg="HS256", hash=hazmat.compute_policy_binding(shares[sid], policy_b64)
        )
        for t in (t for t in kas if t.sid == sid):
            try:
                ka_type, wrapped, eph = _wrap(t, shares[sid])
            except CryptoError as exc:
                raise InvalidInput(f"KAS public key for {t.url}: {exc}") from None
            key_access.append(
                KeyAccess(
                    type=ka_type,
                    url=t.url,
                    protocol="kas",
                    wrapped_key=wrapped,
                    policy_binding=binding,
                    kid=t.kid,
                    sid=sid,
                    schema_version=KEY_ACCESS_SCHEMA_VERSION,
                    ephemeral_public_key=eph,
                )
            )
    return tuple(key_access)


def _write_manifest(
    zw: ZipStreamWriter,
    *,
    dek: bytes,
    policy_b64: str,
    key_access: tuple[KeyAccess, ...],
    segments: Sequence[Segment],
    tags: Sequence[bytes],
    segment_size: int,
    label_xml: bytes | None,
    mime_type: str,
    legacy: bool = False,
    extra: Sequence[Assertion] = (),
) -> tuple[Manifest, int]:
    """Sign the segments, bind the label assertion (and each ``extra`` assertion,
    given unbound), write the manifest entry and the zip directory; (manifest,
    container size). ``legacy``: the hex integrity form (no ``schemaVersion``)."""
    aggregate = b"".join(tags)
    root_sig = hazmat.root_signature(dek, aggregate, "HS256", legacy=legacy)
    assertions: tuple[Assertion, ...] = ()
    if label_xml is not None:
        try:
            label_text = label_xml.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the label is not UTF-8 XML") from None
        unsigned = Assertion(
            id=LABEL_ASSERTION_ID,
            type="handling",
            scope="tdo",
            applies_to_state="unencrypted",
            statement=Statement(format=LABEL_FORMAT, schema=LABEL_SCHEMA, value=label_text),
        )
        a_hash = assertion_hash(unsigned)
        token = _jws_hs256(
            dek,
            {
                "assertionHash": a_hash,
                "assertionSig": _assertion_sig(aggregate, a_hash, legacy=legacy),
            },
        )
        assertions = (
            Assertion(
                id=unsigned.id,
                type=unsigned.type,
                scope=unsigned.scope,
                applies_to_state=unsigned.applies_to_state,
                statement=unsigned.statement,
                binding=AssertionBinding(method="jws", signature=token),
            ),
        )
    for unsigned in extra:
        if unsigned.binding is not None or unsigned.id == LABEL_ASSERTION_ID:
            raise ValueError("extra assertions come unbound and never as the label")
        a_hash = assertion_hash(unsigned)
        token = _jws_hs256(
            dek,
            {
                "assertionHash": a_hash,
                "assertionSig": _assertion_sig(aggregate, a_hash, legacy=legacy),
            },
        )
        assertions += (replace(unsigned, binding=AssertionBinding(method="jws", signature=token)),)
    manifest = Manifest(
        encryption_information=EncryptionInformation(
            type="split",
            policy=policy_b64,
            key_access=key_access,
            method=Method(algorithm="AES-256-GCM", iv="", is_streamable=True),
            integrity_information=IntegrityInformation(
                root_signature=RootSignature(alg="HS256", sig=root_sig),
                segment_hash_alg="GMAC",
                segment_size_default=segment_size,
                encrypted_segment_size_default=segment_size + hazmat.SEGMENT_OVERHEAD,
                segments=tuple(segments),
            ),
        ),
        payload=Payload(mime_type=mime_type),
        assertions=assertions,
        schema_version="" if legacy else SCHEMA_VERSION,
    )
    manifest_bytes = serialize_manifest(manifest)
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise InvalidInput("too many segments for one manifest; use a larger segment size")
    zw.begin(MANIFEST_NAME, len(manifest_bytes))
    zw.write(manifest_bytes)
    zw.end()
    return manifest, zw.finish()


def _new_policy(
    attributes: Sequence[str], dissem: Sequence[str], policy_uuid: str | None = None
) -> tuple[Policy, str]:
    policy = Policy(
        uuid=policy_uuid or str(uuid.uuid4()),
        data_attributes=tuple(PolicyAttribute(attribute=a) for a in attributes),
        dissem=tuple(dissem),
    )
    return policy, serialize_policy(policy)


def protect(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    kas: Sequence[KasTarget],
    at: datetime,
    attributes: Sequence[str] = (),
    dissem: Sequence[str] = (),
    label_xml: bytes | None = None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    mime_type: str = "application/octet-stream",
    overwrite: bool = False,
    progress: Progress | None = None,
    force_zip64: bool = False,
    integrity_encoding: str = "raw",
) -> ProtectResult:
    """Encrypt ``src`` into the ZTDF container ``dst`` (written atomically).

    The DEK is the XOR of one random share per distinct ``sid`` among ``kas``; each
    share is wrapped for every target with that ``sid`` (RSA-OAEP for RSA keys,
    ``ec-wrapped`` for EC keys) and bound to the policy. ``label_xml`` (the object's
    STANAG 4774 label) goes into a ``handling`` assertion bound with the DEK.

    ``integrity_encoding`` is ``"raw"`` (schema 4.3.0, what current SDKs write) or
    ``"hex"``: the legacy form (no ``schemaVersion``; segment hashes, root signature
    and assertion signature over hex text) for readers that know only that one.
    """
    _check_at(at)
    if integrity_encoding not in INTEGRITY_ENCODINGS:
        raise ValueError(f"integrity_encoding must be one of {', '.join(INTEGRITY_ENCODINGS)}")
    legacy = integrity_encoding == "hex"
    order = _check_protect_args(kas, segment_size, label_xml)
    src_path, dst_path = Path(src), Path(dst)
    size = src_path.stat().st_size
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInput("input larger than 64 GiB")

    # Key split and wrapping, grouped by split id as the Go SDK orders them.
    dek, shares = hazmat.split_key(order)
    policy, policy_b64 = _new_policy(attributes, dissem)
    key_access = _key_access(kas, order, shares, policy_b64)

    n_segments = max(1, -(-size // segment_size))
    payload_size = size + n_segments * hazmat.SEGMENT_OVERHEAD
    cipher = hazmat.SegmentCipher(dek)
    # Two input buffers: the next segment is read on a worker thread while this
    # one is encrypted (file reads and AES-GCM both release the GIL).
    inviews = (memoryview(bytearray(segment_size)), memoryview(bytearray(segment_size)))
    wants = [min(segment_size, size - i * segment_size) for i in range(n_segments)]
    segments: list[Segment] = []
    tags: list[bytes] = []
    with (
        _atomic_output(dst_path, overwrite=overwrite) as out,
        src_path.open("rb", buffering=0) as f,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ztdf-read") as reader,
    ):
        zw = ZipStreamWriter(out, at=at, force_zip64=force_zip64)
        zw.begin(PAYLOAD_NAME, payload_size)

        def fill(view: memoryview, want: int) -> None:
            got = 0
            while got < want:
                n = f.readinto(view[got:want])
                if not n:
                    raise InvalidInput("input changed size while it was being protected")
                got += n

        def write(view: memoryview) -> None:
            zw.write(view, crc_done=True)

        sinks = (zw.update_crc, write)
        with _Pipeline(sinks, (segment_size + hazmat.SEGMENT_OVERHEAD,)) as pipe:
            ahead = reader.submit(fill, inviews[0], wants[0])
            for i, want in enumerate(wants):
                ahead.result()
                inview = inviews[i % 2]
                if i + 1 < n_segments:
                    ahead = reader.submit(fill, inviews[(i + 1) % 2], wants[i + 1])
                (outview,) = pipe.slot(i)
                end = cipher.encrypt_into(inview[:want], outview)
                tag = bytes(outview[end - hazmat.GCM_TAG_SIZE : end])
                pipe.submit(i, outview[:end])
                if legacy:  # the legacy form hashes and signs the hex text of each tag
                    tag = tag.hex().encode("ascii")
                tags.append(tag)
                segments.append(
                    Segment(hash=_b64(tag), segment_size=want, encrypted_segment_size=end)
                )
                if progress is not None:
                    progress(want)
            pipe.drain()
        if f.read(1):
            raise InvalidInput("input changed size while it was being protected")
        zw.end()

        manifest, container_size = _write_manifest(
            zw,
            dek=dek,
            policy_b64=policy_b64,
            key_access=key_access,
            segments=segments,
            tags=tags,
            segment_size=segment_size,
            label_xml=label_xml,
            mime_type=mime_type,
            legacy=legacy,
        )
    log.info(
        "ztdf protect: %d bytes, %d segments, %d key access entries",
        size,
        n_segments,
        len(key_access),
    )
    return ProtectResult(
        manifest=manifest, policy=policy, container_size=container_size, plaintext_size=size
    )


# ----------------------------------------------------------------------- open


def private_key_unwrapper(*private_keys: str | bytes | hazmat.PrivateKey) -> Unwrap:
    """An :data:`Unwrap` for offline recovery with the KAS private key(s) themselves.

    RSA keys unwrap ``wrapped`` entries, EC keys ``ec-wrapped`` ones; each key of the
    right type is tried. Raises :class:`KeyAccessDenied` when none fits.
    """
    keys = [
        k if not isinstance(k, str | bytes) else hazmat.load_private_key(k) for k in private_keys
    ]
    if not keys:
        raise ValueError("at least one private key is needed")

    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        wrapped = ka.wrapped_key_bytes()
        for key in keys:
            try:
                if ka.type == "wrapped" and isinstance(key, rsa.RSAPrivateKey):
                    return hazmat.rsa_unwrap(key, wrapped)
                if ka.type == "ec-wrapped" and isinstance(key, ec.EllipticCurvePrivateKey):
                    return hazmat.ec_unwrap(key, ka.ephemeral_public_key, wrapped)
            except CryptoError:
                continue
        kinds = "RSA" if ka.type == "wrapped" else "EC"
        raise KeyAccessDenied(
            kind=FailureKind.WRONG_KEY,
            detail=(
                f"no {kinds} private key given unwraps this key share"
                + (f" (it is wrapped for key id {ka.kid!r})" if ka.kid else "")
            ),
        )

    return unwrap


def _failure_of(ka: KeyAccess, exc: Exception) -> KeyAccessFailure:
    """Classify why ``unwrap`` gave nothing for ``ka`` (for the person opening)."""
    if isinstance(exc, KeyAccessDenied):
        return KeyAccessFailure(ka.url, exc.kind, exc.detail)
    if isinstance(exc, AccessDenied):
        return KeyAccessFailure(ka.url, FailureKind.DENIED, str(exc))
    if isinstance(exc, CryptoError):
        return KeyAccessFailure(ka.url, FailureKind.WRONG_KEY, str(exc))
    if isinstance(exc, ReltoError):
        unreachable = exc.code in ("kas_unreachable", "kas_unavailable")
        kind = FailureKind.UNREACHABLE if unreachable else FailureKind.KAS_FAILED
        return KeyAccessFailure(ka.url, kind, str(exc))
    if isinstance(exc, OSError):
        return KeyAccessFailure(ka.url, FailureKind.UNREACHABLE, type(exc).__name__)
    return KeyAccessFailure(ka.url, FailureKind.ERROR, type(exc).__name__)


def _recover_dek(m: Manifest, unwrap: Unwrap) -> bytes:
    ei = m.encryption_information
    groups: dict[str, list[KeyAccess]] = {}
    for ka in ei.key_access:
        groups.setdefault(ka.sid, []).append(ka)
    shares: list[bytes] = []
    for sid, entries in groups.items():
        share: bytes | None = None
        tampered = False
        failures: list[KeyAccessFailure] = []
        for ka in entries:
            try:
                candidate = unwrap(ka, ei.policy)
            except InvalidContainer as exc:
                log.warning("ztdf open: KAS %s reported a bad container: %s", ka.url, exc.reason)
                tampered = True
                continue
            except Exception as exc:  # an unreachable KAS is just one failed alternative
                failure = _failure_of(ka, exc)
                failures.append(failure)
                log.info(
                    "ztdf open: key access via %s (sid %r) gave nothing: %s: %s",
                    ka.url,
                    sid,
                    failure.kind,
                    failure.detail[:300],
                )
                continue
            if not isinstance(candidate, bytes) or len(candidate) != hazmat.KEY_SIZE:
                log.warning("ztdf open: key access via %s returned a malformed share", ka.url)
                tampered = True
                continue
            if not hazmat.verify_policy_binding(candidate, ei.policy, ka.policy_binding.hash):
                log.warning(
                    "ztdf open: policy binding mismatch for key access via %s (sid %r)", ka.url, sid
                )
                tampered = True
                continue
            share = candidate
            break
        if share is None:
            if tampered:
                raise InvalidContainer("policy binding does not verify")
            raise KeyAccessDenied(failures=tuple(failures))
        shares.append(share)
    return hazmat.join_key_shares(shares)


def _aggregate(m: Manifest) -> bytes:
    parts = []
    for i, seg in enumerate(m.encryption_information.integrity_information.segments):
        try:
            parts.append(base64.b64decode(seg.hash.encode("ascii"), validate=True))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise InvalidContainer(f"segment {i} hash is not base64") from None
    return b"".join(parts)


def _verify_assertions(m: Manifest, dek: bytes, aggregate: bytes) -> None:
    key = OctKey.import_key(dek)
    root_sig = m.encryption_information.integrity_information.root_signature.sig
    for a in m.assertions:
        if a.binding is None or a.binding.method.lower() != "jws" or not a.binding.signature:
            raise InvalidContainer(f"assertion {a.id!r} is not bound")
        try:
            token = jws.deserialize_compact(a.binding.signature, key, algorithms=["HS256"])
            claims = json.loads(token.payload)
        except (JoseError, ValueError, TypeError):
            raise InvalidContainer(
                f"assertion {a.id!r} binding does not verify with the DEK"
            ) from None
        if not isinstance(claims, dict):
            raise InvalidContainer(f"assertion {a.id!r} claims are not an object")
        claimed_hash, claimed_sig = claims.get("assertionHash"), claims.get("assertionSig")
        if not isinstance(claimed_hash, str) or not isinstance(claimed_sig, str):
            raise InvalidContainer(f"assertion {a.id!r} lacks its hash or signature claim")
        actual = assertion_hash(a)
        if not hmac.compare_digest(actual.encode(), claimed_hash.encode("utf-8", "replace")):
            raise InvalidContainer(f"assertion {a.id!r} hash mismatch (assertion altered)")
        expected = _assertion_sig(aggregate, actual, legacy=m.legacy).encode()
        given = claimed_sig.encode("utf-8", "replace")
        # Some Go SDK releases sign the root signature instead; it binds the payload too.
        if not (
            hmac.compare_digest(expected, given) or hmac.compare_digest(root_sig.encode(), given)
        ):
            raise InvalidContainer(f"assertion {a.id!r} is not bound to this payload")
        schema = claims.get("assertionSchema")
        if schema is not None and schema != a.statement.schema:
            raise InvalidContainer(f"assertion {a.id!r} schema claim mismatch")


def _label_of(m: Manifest) -> bytes | None:
    for a in m.assertions:
        if (
            a.id == LABEL_ASSERTION_ID
            and a.type == "handling"
            and a.statement.schema == LABEL_SCHEMA
        ):
            return a.statement.value.encode("utf-8")
    return None


def _read_manifest(f: BinaryIO) -> tuple[Manifest, dict[str, ZipEntry]]:
    index = read_zip_index(
        f,
        expected=frozenset({PAYLOAD_NAME, MANIFEST_NAME}),
        max_sizes={PAYLOAD_NAME: MAX_PAYLOAD_BYTES * 2, MANIFEST_NAME: MAX_MANIFEST_BYTES},
    )
    entry = index[MANIFEST_NAME]
    f.seek(entry.data_offset)
    raw = f.read(entry.size)
    if len(raw) != entry.size:
        raise InvalidContainer("manifest truncated")
    if zlib.crc32(raw) != entry.crc:
        raise InvalidContainer("manifest CRC mismatch")
    return parse_manifest(raw), index


@contextlib.contextmanager
def _source(src: str | os.PathLike[str] | BinaryIO) -> Iterator[BinaryIO]:
    if isinstance(src, str | os.PathLike):
        with Path(src).open("rb") as f:
            yield f
    else:
        yield src


def open_container(
    src: str | os.PathLike[str] | BinaryIO,
    dst: str | os.PathLike[str] | BinaryIO,
    *,
    unwrap: Unwrap,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> OpenResult:
    """Verify and decrypt the container ``src`` into ``dst`` (nothing written unless valid).

    ``unwrap`` recovers a key share from one key access entry (online KAS rewrap or
    :func:`private_key_unwrapper`); entries sharing a ``sid`` are tried in order.
    ``src`` may be an open, seekable file and ``dst`` a writable file object: an
    ``io.BytesIO`` decrypts into memory, nothing on disk (it receives each segment
    once verified; on an error the caller discards it).
    """
    src_path = Path(src if isinstance(src, str | os.PathLike) else getattr(src, "name", "-"))
    dst_path = Path(dst) if isinstance(dst, str | os.PathLike) else dst
    try:
        with _source(src) as f:
            unverified_manifest, index = _read_manifest(f)
            m = unverified_manifest
            ei = m.encryption_information
            ii = ei.integrity_information
            policy = parse_policy(ei.policy)
            if m.payload.url != PAYLOAD_NAME:
                raise InvalidContainer("payload reference is not 0.payload")
            payload = index[PAYLOAD_NAME]
            if sum(s.encrypted_segment_size for s in ii.segments) != payload.size:
                raise InvalidContainer("segment sizes do not add up to the payload size")
            if ii.root_signature.alg.upper() != "HS256":
                raise InvalidContainer("root signature algorithm is not HS256")
            dek = _recover_dek(m, unwrap)
            aggregate = _aggregate(m)
            if not hazmat.verify_root_signature(
                dek, aggregate, "HS256", ii.root_signature.sig, legacy=m.legacy
            ):
                raise InvalidContainer("root signature does not verify")
            _verify_assertions(m, dek, aggregate)
            verified = m
            label = _label_of(verified)
            total = _decrypt_payload(
                f, payload.data_offset, payload.crc, verified, dek, dst_path, overwrite, progress
            )
    except InvalidContainer as exc:
        log.warning("ztdf open refused %s: %s", src_path.name, exc.reason)
        raise
    except (struct.error, OverflowError, UnicodeError, RecursionError) as exc:
        log.warning("ztdf open refused %s: malformed (%s)", src_path.name, type(exc).__name__)
        raise InvalidContainer(f"malformed: {type(exc).__name__}") from None
    log.info("ztdf open: %s verified, %d bytes", src_path.name, total)
    return OpenResult(manifest=verified, policy=policy, label_xml=label, plaintext_size=total)


def _decrypt_payload(
    f: BinaryIO,
    offset: int,
    crc_expected: int,
    m: Manifest,
    dek: bytes,
    dst: Path | BinaryIO,
    overwrite: bool,
    progress: Progress | None,
) -> int:
    ii = m.encryption_information.integrity_information
    # Zero segments (an empty payload; its root signature over zero segment hashes was
    # verified before we got here) runs the loop below zero times: an empty output.
    largest = max((s.encrypted_segment_size for s in ii.segments), default=hazmat.SEGMENT_OVERHEAD)
    if largest > MAX_ENCRYPTED_SEGMENT:
        raise InvalidContainer("segment too large")
    cipher = hazmat.SegmentCipher(dek)
    alg = ii.segment_hash_alg
    legacy = m.legacy
    crc = 0
    total = 0

    def checksum(enc_view: memoryview, _plain: memoryview) -> None:
        nonlocal crc
        crc = zlib.crc32(enc_view, crc)

    def write(_enc: memoryview, plain_view: memoryview) -> None:
        out.write(plain_view)

    def fetch(view: memoryview, n: int) -> None:
        if f.readinto(view[:n]) != n:  # type: ignore[attr-defined]
            raise InvalidContainer("payload truncated")

    f.seek(offset)
    segs = ii.segments
    sizes = (largest, max(largest - hazmat.SEGMENT_OVERHEAD, 1))
    output = (
        _atomic_output(dst, overwrite=overwrite)
        if isinstance(dst, Path)
        else contextlib.nullcontext(dst)
    )
    with (
        output as out,
        _Pipeline((checksum, write), sizes, depth=4) as pipe,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ztdf-read") as reader,
    ):
        # Segment i + 1 is read on a worker thread while segment i is checked and
        # decrypted; the checksum and the write of earlier segments run meanwhile.
        bufs = pipe.slot(0)
        ahead = reader.submit(fetch, bufs[0], segs[0].encrypted_segment_size) if segs else None
        for i, seg in enumerate(segs):
            enc = seg.encrypted_segment_size
            inview, outview = bufs
            assert ahead is not None
            ahead.result()
            if i + 1 < len(segs):
                bufs = pipe.slot(i + 1)
                ahead = reader.submit(fetch, bufs[0], segs[i + 1].encrypted_segment_size)
            expected = base64.b64decode(seg.hash)
            try:
                actual = hazmat.segment_hash(dek, inview[:enc], alg, legacy=legacy)
            except CryptoError as exc:
                raise InvalidContainer(f"segment {i}: {exc}") from None
            if not hmac.compare_digest(actual, expected):
                raise InvalidContainer(f"segment {i} hash mismatch")
            try:
                size = cipher.decrypt_into(inview[:enc], outview)
            except CryptoError:
                raise InvalidContainer(f"segment {i} authentication tag mismatch") from None
            pipe.submit(i, inview[:enc], outview[:size])
            total += size
            if progress is not None:
                progress(size)
        pipe.drain()
        if crc != crc_expected:
            raise InvalidContainer("payload CRC mismatch")
    return total


# -------------------------------------------------------------------- inspect


def inspect(src: str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise a container without decrypting or verifying anything.

    Everything returned is *unverified* (anyone can write a manifest); keys say so.
    The zip structure and the manifest are still checked strictly.
    """
    src_path = Path(src)
    try:
        with src_path.open("rb") as f:
            unverified_manifest, _index = _read_manifest(f)
        unverified_policy = parse_policy(unverified_manifest.encryption_information.policy)
    except InvalidContainer as exc:
        log.warning("ztdf inspect refused %s: %s", src_path.name, exc.reason)
        raise
    except (struct.error, OverflowError, UnicodeError, RecursionError) as exc:
        raise InvalidContainer(f"malformed: {type(exc).__name__}") from None
    m = unverified_manifest
    ei = m.encryption_information
    ii = ei.integrity_information
    label = _label_of(m)
    return {
        "verified": False,
        "format": "legacy" if m.legacy else m.schema_version,
        "mimeType": m.payload.mime_type,
        "plaintextSize": sum(s.segment_size for s in ii.segments),
        "segments": len(ii.segments),
        "segmentSize": ii.segment_size_default,
        "unverified_policy": {
            "uuid": unverified_policy.uuid,
            "attributes": list(unverified_policy.attributes),
            "dissem": list(unverified_policy.dissem),
        },
        "keyAccess": [
            {"type": ka.type, "url": ka.url, "kid": ka.kid, "sid": ka.sid, "protocol": ka.protocol}
            for ka in ei.key_access
        ],
        "assertions": [
            {
                "id": a.id,
                "type": a.type,
                "scope": a.scope,
                "appliesToState": a.applies_to_state,
                "format": a.statement.format,
                "schema": a.statement.schema,
                "bound": a.binding is not None,
            }
            for a in m.assertions
        ],
        "unverified_label_xml": label.decode("utf-8") if label is not None else None,
    }
