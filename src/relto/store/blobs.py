"""Blob storage: where encrypted payloads live.

One interface, :class:`BlobStore`; the embedded default is a local folder
(:class:`LocalBlobStore`), an S3-compatible store comes later behind the same
interface. Writes are atomic: a reader sees the whole blob or none of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from relto.errors import InvalidInput, NotFound, StorageError

__all__ = ["BlobStore", "LocalBlobStore"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_CHUNK = 1 << 20


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


class LocalBlobStore:
    """Blobs as files in one folder; each write is temp file + fsync + rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | Iterable[bytes] | BinaryIO) -> int:
        target = self._path(key)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
        size = 0
        try:
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
            if entry.is_file() and not entry.name.startswith(".tmp-"):
                yield entry.name


def _chunks(data: bytes | Iterable[bytes] | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif hasattr(data, "read"):
        while chunk := data.read(_CHUNK):
            yield chunk
    else:
        yield from data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
