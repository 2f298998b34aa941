"""Blobs in an S3-compatible object store (AWS S3, MinIO, SeaweedFS...; ADR 0161).

:class:`S3BlobStore` keeps the :class:`~relto.store.blobs.BlobStore` contract with
what S3 offers instead of a file system's renames and locks:

* **A blob is visible whole or not at all.** Small blobs are one ``PutObject``;
  larger ones a multipart upload that only becomes an object on
  ``CompleteMultipartUpload`` and is aborted on any failure. Parts carry a CRC32
  the server checks; up to ``concurrency`` of them are sent at once, so memory is
  bounded by ``concurrency * part_size``.
* **A published blob is never replaced.** :meth:`S3StagedBlob.publish` writes with
  ``If-None-Match: *``: a second writer of the same key is refused, and a document
  row can only ever point at the object its own writer completed.
* **Claims are objects**, ``<prefix>.claims/<key>``, created with ``If-None-Match: *``
  before the blob and deleted once its row committed (:meth:`S3StagedBlob.release`).
  A claim names its writer (host, boot, process and its start time): a claim whose
  writer on this host is gone, or any claim older than ``grace``, is stale; the
  sweeper takes it over with ``If-Match`` so two sweepers never resolve the same one.
* **Staged bytes are spooled on local disk** (ciphertext only, ``0600``, as in the
  local store): the key of an upload is only known once the label is decided, and
  the spool is uploaded then. Spools of dead writers go at start-up.
* **Reads are ranged**: :meth:`S3BlobStore.open` gives a seekable file whose reads
  are ``Range`` GETs bound to the object's ETag.
* **Failures are typed**: botocore retries transient errors with back-off and jitter
  (``max_attempts``); what still fails is :class:`~relto.errors.StorageUnavailable`
  (503) naming the operation, never the endpoint, a key id or a secret.
* **Orphans are swept** at start-up (:meth:`S3BlobStore.delete_unclaimed`): an object
  no row names, older than ``grace``; unfinished multipart uploads older than
  ``grace`` are aborted by :meth:`S3BlobStore.sweep_staging`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from relto.errors import ConfigError, NotFound, StorageError, StorageUnavailable
from relto.store.blobs import _KEY, check_key, spool, sweep_spools

__all__ = ["S3BlobStore", "S3Options", "S3StagedBlob"]

log = structlog.stdlib.get_logger("relto.store.s3")

_CLAIMS = ".claims/"
_HEALTH = ".healthz/"
#: The most bytes one ranged GET asks for.
_RANGE = 8 << 20
_MIN_PART = 5 << 20
_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
_CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class S3Options:
    """Where the blobs go and how to talk to the store. ``prefix`` is empty or ends
    in ``/``; ``grace`` is how old an unclaimed object, a claim or an unfinished
    upload must be before the start-up sweep removes it."""

    bucket: str
    prefix: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: str | None = None
    max_attempts: int = 5
    retry_mode: str = "standard"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    part_size: int = 8 << 20
    concurrency: int = 4
    grace: timedelta = timedelta(hours=1)
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if self.prefix and not self.prefix.endswith("/"):
            raise ValueError("prefix must be empty or end in '/'")
        if self.part_size < _MIN_PART:
            raise ValueError("part_size must be at least 5 MiB (S3's smallest part)")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 1 <= self.concurrency <= 32:
            raise ValueError("concurrency must be 1..32")


def _client(options: S3Options) -> Any:
    style = options.addressing_style or ("path" if options.endpoint_url else "virtual")
    config = Config(
        region_name=options.region,
        signature_version="s3v4",
        retries={"mode": options.retry_mode, "max_attempts": options.max_attempts},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=max(10, options.concurrency + 2),
        s3={"addressing_style": style},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        region_name=options.region,
    )
    return session.client(
        "s3",
        endpoint_url=options.endpoint_url,
        config=config,
        verify=options.ca_bundle if options.ca_bundle else True,
    )


def _code(exc: ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    return str(err.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)


def _failure(exc: Exception, what: str) -> StorageError:
    """The typed error for a failed call: what failed, never where or with what key."""
    if isinstance(exc, ClientError):
        code, status = _code(exc)
        log.warning("object_store_failed", operation=what, code=code, status=status)
        if code in _DENIED or status == 403:
            return StorageUnavailable(
                f"the object store refused to {what}: access denied "
                "(check the S3 credentials and the bucket's policy)"
            )
        if status >= 500 or status in (0, 408, 429) or code in ("SlowDown", "RequestTimeout"):
            return StorageUnavailable(f"the object store failed to {what} (HTTP {status})")
        return StorageError(f"the object store refused to {what} ({code[:40]})")
    log.warning("object_store_failed", operation=what, error=type(exc).__name__)
    return StorageUnavailable(f"the object store did not answer ({what})")


def _is(exc: ClientError, codes: Iterable[str], status: int) -> bool:
    code, got = _code(exc)
    return code in codes or got == status


# -- who writes: a claim names its writer, so a sweeper on the same host can tell a dead
# -- one at once (another host's only by age) ------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return ""


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), ``""`` if it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _writer() -> dict[str, object]:
    pid = os.getpid()
    boot = _read("/proc/sys/kernel/random/boot_id").strip()
    return {"host": socket.gethostname(), "boot": boot, "pid": pid, "started": _started(pid)}


def _writer_gone(writer: object) -> bool:
    """Whether ``writer`` (a claim's) was a process on this host, now gone."""
    me = _writer()
    if not isinstance(writer, dict) or not me["boot"] or not me["started"]:
        return False
    if writer.get("host") != me["host"] or writer.get("boot") != me["boot"]:
        return False
    pid = writer.get("pid")
    return not isinstance(pid, int) or _started(pid) != writer.get("started")


class S3BlobStore:
    """Blobs as objects ``<prefix><key>`` in one bucket (see the module docstring).

    ``staging``: the local folder staged uploads are spooled in. ``clock``: now, as
    an aware datetime (the sweep's ages are measured against it)."""

    def __init__(
        self,
        options: S3Options,
        staging: Path,
        *,
        client: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.options = options
        self.staging = Path(staging)
        self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._client = client if client is not None else _client(options)
        self._clock = clock

    @classmethod
    def connect(cls, options: S3Options, staging: Path) -> S3BlobStore:
        """A store whose bucket answers now, else :class:`ConfigError` (refuse to
        start: no node runs with its payloads out of reach)."""
        store = cls(options, staging)
        try:
            store._client.head_bucket(Bucket=options.bucket)
        except ClientError as exc:
            code, status = _code(exc)
            if status == 404 or code in ("NoSuchBucket", "NotFound", "404"):
                raise ConfigError(
                    f"RELTO_BLOB_STORE: bucket {options.bucket!r} does not exist"
                ) from None
            if status == 403 or code in _DENIED:
                raise ConfigError(
                    f"RELTO_BLOB_STORE: the object store refused the credentials for bucket "
                    f"{options.bucket!r} (RELTO_S3_ACCESS_KEY_ID / RELTO_S3_SECRET_ACCESS_KEY)"
                ) from None
            raise ConfigError(
                f"RELTO_BLOB_STORE: the object store failed at start (HTTP {status})"
            ) from None
        except BotoCoreError as exc:
            raise ConfigError(
                "RELTO_BLOB_STORE: the object store does not answer at start "
                f"({type(exc).__name__}; check RELTO_S3_ENDPOINT_URL)"
            ) from None
        return store

    # -- names ------------------------------------------------------------------------

    def _blob(self, key: str) -> str:
        return self.options.prefix + check_key(key)

    def _claim(self, key: str) -> str:
        return self.options.prefix + _CLAIMS + check_key(key)

    def _call(self, what: str, op: Callable[..., Any], *, conflict: str = "", **kwargs: Any) -> Any:
        """``op`` on the bucket; failures typed (:func:`_failure`), a failed condition
        (``If-None-Match``, ``If-Match``) a :class:`StorageError` saying ``conflict``."""
        try:
            return op(Bucket=self.options.bucket, **kwargs)
        except ClientError as exc:
            if conflict and _is(exc, _CONFLICT, 412):
                raise StorageError(conflict) from None
            raise _failure(exc, what) from None
        except BotoCoreError as exc:
            raise _failure(exc, what) from None

    # -- the protocol -----------------------------------------------------------------

    def put(self, key: str, data: bytes | Iterable[bytes] | BinaryIO) -> int:
        return self._upload(self._blob(key), data, exclusive=False)

    def open(self, key: str) -> BinaryIO:
        name = self._blob(key)
        try:
            head = self._client.head_object(Bucket=self.options.bucket, Key=name)
        except ClientError as exc:
            if _is(exc, ("404", "NoSuchKey", "NotFound"), 404):
                raise NotFound(f"no blob {key!r}") from None
            raise _failure(exc, "read a blob") from None
        except BotoCoreError as exc:
            raise _failure(exc, "read a blob") from None
        raw = _RangeReader(self, name, int(head["ContentLength"]), str(head["ETag"]))
        return io.BufferedReader(raw, buffer_size=1 << 20)

    def exists(self, key: str) -> bool:
        return self._head(self._blob(key)) is not None

    def delete(self, key: str) -> None:
        self._call("delete a blob", self._client.delete_object, Key=self._blob(key))

    def keys(self) -> Iterator[str]:
        prefix = self.options.prefix
        for obj in self._list(prefix, delimiter="/"):
            name = str(obj["Key"])[len(prefix) :]
            if _KEY.match(name) and ".." not in name:
                yield name

    def stage(self) -> S3StagedBlob:
        return S3StagedBlob(self)

    def sweep_staging(self) -> list[str]:
        """Spools of dead writers, and multipart uploads under the prefix begun more
        than ``grace`` ago (a writer that died mid-upload: never visible, but stored)."""
        swept = sweep_spools(self.staging)
        cutoff = self._clock() - self.options.grace
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.options.bucket, Prefix=self.options.prefix
        )
        try:
            uploads = [u for page in pages for u in page.get("Uploads", [])]
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, "list unfinished uploads") from None
        for upload in uploads:
            if upload["Initiated"] > cutoff:
                continue
            self._call(
                "abort an unfinished upload",
                self._client.abort_multipart_upload,
                Key=upload["Key"],
                UploadId=upload["UploadId"],
            )
            swept.append(f"upload:{upload['Key']}")
        return swept

    def stale_claims(self) -> Iterator[_S3StaleClaim]:
        """Claims whose writer on this host is gone, or older than ``grace``; each
        taken over (``If-Match``) by this process before it is yielded, so that
        another sweeper leaves it."""
        cutoff = self._clock() - self.options.grace
        for obj in list(self._list(self.options.prefix + _CLAIMS)):
            key = str(obj["Key"]).rpartition("/")[2]
            if not _KEY.match(key):
                continue
            try:
                got = self._client.get_object(Bucket=self.options.bucket, Key=obj["Key"])
                body = json.loads(got["Body"].read(1 << 20))
            except ClientError as exc:
                if _is(exc, ("NoSuchKey", "404"), 404):
                    continue  # resolved meanwhile
                raise _failure(exc, "read a claim") from None
            except BotoCoreError as exc:
                raise _failure(exc, "read a claim") from None
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            if not (got["LastModified"] < cutoff or _writer_gone(body.get("writer"))):
                continue
            intent = _b64(body.get("intent"))
            if not self._put_claim(key, intent, if_match=str(got["ETag"])):
                continue  # another sweeper took it, or its writer wrote it anew
            yield _S3StaleClaim(key, intent, self.exists(key), self)

    def delete_unclaimed(self, key: str, still_orphan: Callable[[], bool]) -> bool:
        """Delete ``key`` if no writer claims it, it is older than ``grace`` and
        ``still_orphan()`` (asked while this call claims the key) says so."""
        check_key(key)
        if not self._put_claim(key, b"sweep"):
            return False
        try:
            head = self._head(self._blob(key))
            if head is None or head["LastModified"] > self._clock() - self.options.grace:
                return False
            if not still_orphan():
                return False
            self.delete(key)
            return True
        finally:
            self._unclaim(key)

    def probe(self) -> str:
        name = f"{self.options.prefix}{_HEALTH}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self._call("write a probe", self._client.put_object, Key=name, Body=b"\0" * 64)
            self._call("delete a probe", self._client.delete_object, Key=name)
        except StorageUnavailable:
            return "down"
        except StorageError:
            return "unwritable"
        return "ok"

    # -- helpers ----------------------------------------------------------------------

    def _head(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._client.head_object(Bucket=self.options.bucket, Key=name))
        except ClientError as exc:
            if _is(exc, ("404", "NoSuchKey", "NotFound"), 404):
                return None
            raise _failure(exc, "look a blob up") from None
        except BotoCoreError as exc:
            raise _failure(exc, "look a blob up") from None

    def _list(self, prefix: str, delimiter: str = "") -> Iterator[dict[str, Any]]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.options.bucket,
            Prefix=prefix,
            **({"Delimiter": delimiter} if delimiter else {}),
            PaginationConfig={"PageSize": 1000},
        )
        try:
            for page in pages:
                yield from page.get("Contents", [])
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, "list blobs") from None

    def _put_claim(self, key: str, intent: bytes, *, if_match: str | None = None) -> bool:
        """Write the claim on ``key``: created (``If-None-Match``), or taken over from
        the version ``if_match``; whether it was."""
        body = json.dumps(
            {
                "writer": _writer(),
                "at": self._clock().isoformat(),
                "intent": base64.b64encode(intent).decode(),
            }
        ).encode()
        cond = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(
                Bucket=self.options.bucket, Key=self._claim(key), Body=body, **cond
            )
        except ClientError as exc:
            if _is(exc, _CONFLICT, 412) or _code(exc)[1] == 409:
                return False
            raise _failure(exc, "claim a blob") from None
        except BotoCoreError as exc:
            raise _failure(exc, "claim a blob") from None
        return True

    def _unclaim(self, key: str) -> bool:
        """Delete the claim on ``key``; whether that worked (a claim left behind is
        resolved by a later sweep, so a failure here is logged, not raised)."""
        try:
            self._call("drop a claim", self._client.delete_object, Key=self._claim(key))
        except StorageError:
            log.warning("claim_left_behind", blob=key)
            return False
        return True

    def _upload(
        self, name: str, data: bytes | Iterable[bytes] | BinaryIO, *, exclusive: bool
    ) -> int:
        """Write ``data`` to ``name``, visible whole or not at all: one PUT when it fits
        in a part, else a multipart upload (aborted on any failure). ``exclusive``:
        refuse (:class:`StorageError`) if ``name`` exists."""
        part_size = self.options.part_size
        cond: dict[str, str] = {}
        if exclusive:
            cond["IfNoneMatch"] = "*"
            cond["conflict"] = (
                f"blob {name.rpartition('/')[2]!r} already exists: published blobs are "
                "never replaced"
            )
        buf = bytearray()
        size = 0
        upload_id: str | None = None
        pool: ThreadPoolExecutor | None = None
        parts: list[Future[dict[str, Any]]] = []
        try:
            for chunk in _chunks(data, part_size):
                buf += chunk
                size += len(chunk)
                while len(buf) >= part_size:
                    if upload_id is None:
                        upload_id = self._call(
                            "start an upload",
                            self._client.create_multipart_upload,
                            Key=name,
                            ChecksumAlgorithm="CRC32",
                        )["UploadId"]
                        pool = ThreadPoolExecutor(self.options.concurrency, "relto-s3-part")
                    assert pool is not None
                    if len(parts) >= self.options.concurrency:
                        # At most ``concurrency`` parts in memory and in flight; a
                        # failed one stops the upload here.
                        parts[-self.options.concurrency].result()
                    number = len(parts) + 1
                    parts.append(pool.submit(self._part, name, upload_id, number, buf[:part_size]))
                    del buf[:part_size]
            if upload_id is None:
                self._call(
                    "write a blob",
                    self._client.put_object,
                    Key=name,
                    Body=bytes(buf),
                    ChecksumAlgorithm="CRC32",
                    **cond,
                )
                return size
            assert pool is not None
            if buf:
                parts.append(pool.submit(self._part, name, upload_id, len(parts) + 1, buf))
            self._call(
                "finish an upload",
                self._client.complete_multipart_upload,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": [part.result() for part in parts]},
                **cond,
            )
            upload_id = None
            return size
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if upload_id is not None:
                with contextlib.suppress(StorageError):
                    self._call(
                        "abort an upload",
                        self._client.abort_multipart_upload,
                        Key=name,
                        UploadId=upload_id,
                    )

    def _part(self, name: str, upload_id: str, number: int, data: bytearray) -> dict[str, Any]:
        got = self._call(
            "upload a part",
            self._client.upload_part,
            Key=name,
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes(data),
            ChecksumAlgorithm="CRC32",
        )
        part = {"ETag": got["ETag"], "PartNumber": number}
        if "ChecksumCRC32" in got:
            part["ChecksumCRC32"] = got["ChecksumCRC32"]
        return part


class S3StagedBlob:
    """A :class:`~relto.store.blobs.StagedBlob` of :meth:`S3BlobStore.stage`: the
    bytes are spooled locally; :meth:`publish` claims the key and uploads them."""

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self.file: BinaryIO
        self.file, tmp = spool(store.staging)
        self._tmp: Path | None = tmp
        self.key: str | None = None
        self._claimed: str | None = None

    def publish(self, key: str, intent: bytes = b"") -> None:
        """Claim ``key`` (with ``intent``) and upload the spooled bytes there, never
        over an existing object (:class:`StorageError`, the claim dropped)."""
        check_key(key)
        if self._tmp is None or self.key is not None:
            raise ValueError("already published or discarded")
        self.file.flush()
        self.file.seek(0)
        if not self._store._put_claim(key, intent):
            raise StorageError(f"blob {key!r} is being written by another writer")
        self._claimed = key
        try:
            self._store._upload(self._store._blob(key), self.file, exclusive=True)
        except BaseException:
            if self._store._unclaim(key):
                self._claimed = None
            raise
        self.key = key

    def release(self) -> None:
        """The blob is committed: drop the claim, keep the blob."""
        if self._claimed is not None and self.key is not None:
            self._store._unclaim(self.key)
            self._claimed = None
        self.key = None
        self._drop_spool()

    def discard(self) -> None:
        """Remove the spool, the published object and the claim. If the store does
        not answer, the claim stays and the start-up sweep deletes the object."""
        self._drop_spool()
        if self.key is not None:
            try:
                self._store.delete(self.key)
            except StorageError:
                log.warning("discarded_blob_left_behind", blob=self.key)
                self.key = None
                return
        if self._claimed is not None:
            self._store._unclaim(self._claimed)
            self._claimed = None
        self.key = None

    def _drop_spool(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> S3StagedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None or self._claimed is not None:
            self.discard()


@dataclass
class _S3StaleClaim:
    """A :class:`~relto.store.blobs.StaleClaim` in the bucket, taken over by this
    process until resolved."""

    key: str
    intent: bytes
    published: bool
    _store: S3BlobStore

    def resolve(self, *, delete_blob: bool) -> None:
        if delete_blob:
            self._store.delete(self.key)
        self._store._call(
            "drop a claim", self._store._client.delete_object, Key=self._store._claim(self.key)
        )


class _RangeReader(io.RawIOBase):
    """One object, read by ``Range`` GETs bound to its ETag (``If-Match``): a
    replaced object is a :class:`StorageError`, never a mix of two versions."""

    def __init__(self, store: S3BlobStore, name: str, size: int, etag: str) -> None:
        self._store = store
        self._name = name
        self._size = size
        self._etag = etag
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos, _RANGE)
        if want <= 0:
            return 0
        data = self._fetch(self._pos, want)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def readall(self) -> bytes:
        out = bytearray()
        while self._pos < self._size:
            data = self._fetch(self._pos, min(_RANGE, self._size - self._pos))
            out += data
            self._pos += len(data)
        return bytes(out)

    def _fetch(self, start: int, length: int) -> bytes:
        """Bytes ``start`` .. ``start + length - 1``; a body cut off midway is asked
        for again (botocore retries the request, not the reading of its body)."""
        attempts = self._store.options.max_attempts
        for attempt in range(attempts):
            got = self._store._call(
                "read a blob",
                self._store._client.get_object,
                Key=self._name,
                Range=f"bytes={start}-{start + length - 1}",
                IfMatch=self._etag,
            )
            try:
                data: bytes = got["Body"].read()
            except (BotoCoreError, OSError) as exc:
                if attempt + 1 == attempts:
                    raise _failure(exc, "read a blob") from None
                time.sleep(min(2.0**attempt, 20.0) * random.random())  # noqa: S311 -- jitter
                continue
            if len(data) != length:
                raise StorageUnavailable("the object store returned a short read")
            return data
        raise StorageUnavailable("the object store did not answer (read a blob)")


def _chunks(data: bytes | Iterable[bytes] | BinaryIO, size: int) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif hasattr(data, "read"):
        while chunk := data.read(size):
            yield chunk
    else:
        yield from data


def _b64(value: object) -> bytes:
    try:
        return base64.b64decode(str(value or ""), validate=True)
    except ValueError:
        return b""
