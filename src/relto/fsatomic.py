"""Create a file with its whole content at once, or not at all.

Several workers starting together on one fresh data folder each try to create the
same key files. Opening the final path with ``O_EXCL`` and then writing leaves a
window in which another worker finds the file empty. :func:`create_new` writes
the content to a private temporary file in the same folder, fsyncs it, and
hard-links it to the final path: the link either appears complete or fails
because the path exists.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["create_new", "replace_file"]


def _write_temp(folder: Path, data: bytes, mode: int) -> str:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _sync_folder(folder: Path) -> None:
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def create_new(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``data``; False (and nothing written) if it exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    _sync_folder(path.parent)
    return True


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` so that readers see the old content or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _sync_folder(path.parent)
