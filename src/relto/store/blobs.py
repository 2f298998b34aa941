"""Blob storage: where encrypted payloads live.

One interface, :class:`BlobStore`; the embedded default is a local folder
(:class:`LocalBlobStore`), an S3-compatible store is :class:`relto.store.s3.S3BlobStore`
(ADR 0161). Writes are atomic: a reader sees the whole blob or none of it.

Staged writes (:meth:`BlobStore.stage`) are for blobs whose bytes arrive over time
(an upload, encrypted as it streams in) and whose key only counts once a database
row names it. The staged file is created ``0600`` in the store's own folder and
held under an exclusive ``flock`` while its writer lives. Publishing it under a key
first *claims* the key: a ``.claim-<key>`` file, locked by the same process, that
says what the writer meant to record. The claim goes when the writer says the
blob is committed (:meth:`StagedBlob.release`). A process that dies leaves its
locks behind, released by the kernel, so at start-up :meth:`sweep_staging`
removes every staged file and :meth:`stale_claims` yields every claim whose writer
is gone -- never one a live writer (another worker) still holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from relto.errors import InvalidInput, NotFound, StorageError

__all__ = ["BlobStore", "LocalBlobStore", "LocalStagedBlob", "StagedBlob", "StaleClaim"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_CHUNK = 1 << 20
_TMP = ".tmp-"
_CLAIM = ".claim-"


def check_key(key: str) -> str:
    """Blob keys are short, flat names: no paths, no dots at the start."""
    if not isinstance(key, str) or not _KEY.match(key) or ".." in key:
        raise InvalidInput("blob key must be 1-200 characters of letters, digits, '.', '_' or '-'")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Stores immutable blobs by key."""

    def put(self, key: str, data: bytes | Iterable[bytes] | BinaryIO) -> int:
        """Store a blob atomically; returns its size. Replaces an existing blob."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open a blob for reading. Raises :class:`NotFound`."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]: ...

    def stage(self) -> StagedBlob:
        """A private (``0600``) file to write a blob into before it has a key."""
        ...

    def sweep_staging(self) -> list[str]:
        """Remove staged files no live writer holds; their names."""
        ...

    def stale_claims(self) -> Iterator[StaleClaim]:
        """Claims whose writer is gone, each held by the caller until it resolves it."""
        ...

    def delete_unclaimed(self, key: str, still_orphan: Callable[[], bool]) -> bool:
        """Delete ``key`` if no writer claims it and ``still_orphan()`` (asked while
        the key is claimed by this call) says so."""
        ...

    def probe(self) -> str:
        """A real write and delete: ``"ok"``, or a word for what failed
        (``"unwritable"``, ``"down"``), never a path or a driver message."""
        ...


@runtime_checkable
class StagedBlob(Protocol):
    """A blob being written (:meth:`BlobStore.stage`): ``file`` takes the bytes,
    :meth:`publish` claims a key and makes the blob visible there whole,
    :meth:`release` ends the claim once the blob is committed elsewhere (a database
    row names it), :meth:`discard` removes whatever was written. Leaving the
    ``with`` block without :meth:`release` discards."""

    file: BinaryIO
    key: str | None

    def publish(self, key: str, intent: bytes = b"") -> None: ...

    def release(self) -> None: ...

    def discard(self) -> None: ...

    def __enter__(self) -> StagedBlob: ...

    def __exit__(self, *exc: object) -> None: ...


class StaleClaim(Protocol):
    """A claim left by a writer that is gone: ``intent`` is what it meant to record,
    ``published`` whether its blob is in place. Held by the sweeper until
    :meth:`resolve`."""

    @property
    def key(self) -> str: ...

    @property
    def intent(self) -> bytes: ...

    @property
    def published(self) -> bool: ...

    def resolve(self, *, delete_blob: bool) -> None: ...


def _lock(fd: int) -> bool:
    """An exclusive, non-blocking ``flock`` on ``fd``: whether it was granted."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _claim(root: Path, key: str, intent: bytes) -> int | None:
    """Claim ``key``: a locked ``.claim-<key>`` file holding ``intent``; its fd, or
    ``None`` when another writer holds the claim. The file appears already locked
    (written and locked under a temporary name, then hard-linked into place)."""
    fd, tmp = tempfile.mkstemp(prefix=_TMP + "claim-", dir=root)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, intent)
        os.fsync(fd)
        try:
            os.link(tmp, root / (_CLAIM + key))
        except FileExistsError:
            os.close(fd)
            return None
        _fsync_dir(root)
        return fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _unclaim(root: Path, key: str, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(root / (_CLAIM + key))
    os.close(fd)


def spool(root: Path) -> tuple[BinaryIO, Path]:
    """A private (``0600``, ``O_EXCL``) staged file in ``root``, held under an
    exclusive ``flock`` while it is open, so that :func:`sweep_spools` leaves it."""
    fd, name = tempfile.mkstemp(prefix=_TMP, dir=root)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return os.fdopen(fd, "w+b", buffering=1 << 20), Path(name)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise


def sweep_spools(root: Path) -> list[str]:
    """Remove the staged files in ``root`` that no live writer holds; their names."""
    swept = []
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(_TMP):
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if _lock(fd) and _same_file(entry, fd):
                entry.unlink()
                swept.append(entry.name)
        finally:
            os.close(fd)
    if swept:
        _fsync_dir(root)
    return swept


def probe_folder(root: Path) -> str:
    """A small file written, ``fsync``-ed and deleted in ``root``."""
    path = root / f".healthz-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * 4096)  # a block's worth: a full file system refuses it
            os.fsync(fd)
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)
    except OSError:
        return "unwritable"
    return "ok"


class LocalStagedBlob:
    """A :class:`StagedBlob` of :meth:`LocalBlobStore.stage`: :meth:`publish` claims
    the key and moves the file there."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.file: BinaryIO
        self.file, tmp = spool(root)
        self._tmp: Path | None = tmp
        self.key: str | None = None
        self._claim: int | None = None

    def publish(self, key: str, intent: bytes = b"") -> None:
        """Sync the bytes, claim ``key`` (with ``intent``: what the writer will
        record once committed, for the start-up sweep) and move the file there."""
        check_key(key)
        if self._tmp is None or self.key is not None:
            raise ValueError("already published or discarded")
        self.file.flush()
        os.fsync(self.file.fileno())
        claim = _claim(self._root, key, intent)
        if claim is None:
            raise StorageError(f"blob {key!r} is being written by another writer")
        self._claim = claim
        try:
            os.replace(self._tmp, self._root / key)
            _fsync_dir(self._root)
        except OSError as exc:
            raise StorageError(f"cannot write blob {key!r}: {exc.strerror}") from None
        self._tmp, self.key = None, key

    def release(self) -> None:
        """The blob is committed: drop the claim, keep the blob."""
        if self._claim is not None and self.key is not None:
            _unclaim(self._root, self.key, self._claim)
            self._claim = None
        self.key = None  # committed: a later discard() leaves the blob alone
        self._close()

    def discard(self) -> None:
        """Remove the staged file or the published blob, and the claim."""
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None
        if self.key is not None:
            with contextlib.suppress(FileNotFoundError):
                (self._root / self.key).unlink()
            _fsync_dir(self._root)
            if self._claim is not None:
                _unclaim(self._root, self.key, self._claim)
                self._claim = None
            self.key = None
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()

    def __enter__(self) -> LocalStagedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None or self._claim is not None:
            self.discard()


@dataclass
class _LocalStaleClaim:
    """A :class:`StaleClaim` in a local folder, held (locked) until resolved."""

    key: str
    intent: bytes
    published: bool
    _root: Path
    _fd: int

    def resolve(self, *, delete_blob: bool) -> None:
        if delete_blob:
            with contextlib.suppress(FileNotFoundError):
                (self._root / self.key).unlink()
        _unclaim(self._root, self.key, self._fd)
        _fsync_dir(self._root)


class LocalBlobStore:
    """Blobs as files in one folder; each write is temp file + fsync + rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | Iterable[bytes] | BinaryIO) -> int:
        target = self._path(key)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP, dir=self.root)
        size = 0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a live write: the start-up sweep leaves it
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(data):
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
            _fsync_dir(self.root)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write blob {key!r}: {exc.strerror}") from None
            raise
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no blob {key!r}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
        _fsync_dir(self.root)

    def keys(self) -> Iterator[str]:
        for entry in sorted(self.root.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                yield entry.name

    def stage(self) -> LocalStagedBlob:
        return LocalStagedBlob(self.root)

    def sweep_staging(self) -> list[str]:
        return sweep_spools(self.root)

    def probe(self) -> str:
        return probe_folder(self.root) if self.root.is_dir() else "unwritable"

    def stale_claims(self) -> Iterator[StaleClaim]:
        for entry in sorted(self.root.iterdir()):
            if not entry.name.startswith(_CLAIM):
                continue
            try:
                fd = os.open(entry, os.O_RDONLY)
            except FileNotFoundError:
                continue
            if not (_lock(fd) and _same_file(entry, fd)):
                os.close(fd)
                continue
            with os.fdopen(os.dup(fd), "rb") as f:
                intent = f.read(1 << 20)
            key = entry.name.removeprefix(_CLAIM)
            yield _LocalStaleClaim(key, intent, (self.root / key).is_file(), self.root, fd)

    def delete_unclaimed(self, key: str, still_orphan: Callable[[], bool]) -> bool:
        fd = _claim(self.root, check_key(key), b"sweep")
        if fd is None:
            return False
        try:
            if not still_orphan():
                return False
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()
            return True
        finally:
            _unclaim(self.root, key, fd)
            _fsync_dir(self.root)


def _chunks(data: bytes | Iterable[bytes] | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif hasattr(data, "read"):
        while chunk := data.read(_CHUNK):
            yield chunk
    else:
        yield from data


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed and
    replaced since it was opened)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
