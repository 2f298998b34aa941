"""Whether the node's storage works: failures told apart from bugs, and probes that
write (a node whose disk is full answers reads and then fails every change).

- :func:`is_storage_failure`: an exception (or what caused it) is storage failing --
  a full disk (``ENOSPC``), a read-only or broken file system, "database or disk is
  full", a database that refuses or does not answer.
- :func:`probe_database`: ``SELECT 1``, then a committed no-op write (``UPDATE`` of
  the migration version row onto itself).
- :func:`probe_folder`: a small file written, ``fsync``-ed and deleted.

Probes answer ``"ok"`` or a word for what failed (``"down"``, ``"unwritable"``),
never a path, a driver message or a setting's value; details go to the log.
"""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from relto.errors import StorageError
from relto.store import Database

__all__ = ["STORAGE_EXCEPTIONS", "is_storage_failure", "probe_database", "probe_folder"]

log = structlog.stdlib.get_logger("relto.health")

#: OS errors that mean the storage itself failed (not a bug, not a missing file).
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})

#: The exception types a storage failure arrives as (to install handlers for).
STORAGE_EXCEPTIONS: tuple[type[Exception], ...] = (
    OperationalError,
    sqlite3.OperationalError,
    OSError,
)

#: A block's worth, so that a full file system refuses it (an empty file may fit).
_PROBE = b"\0" * 4096


def is_storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, five links deep) is storage failing."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, StorageError | OperationalError | sqlite3.OperationalError):
            return True
        if isinstance(seen, OSError) and seen.errno in _STORAGE_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def probe_folder(folder: Path) -> str:
    """Write, fsync and delete a small file in ``folder``."""
    path = folder / f".healthz-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _PROBE)
            os.fsync(fd)
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("health_probe_failed", part="folder", errno=exc.errno, error=exc.strerror)
        return "unwritable"
    return "ok"


def probe_database(db: Database) -> str:
    """``SELECT 1`` and a committed no-op write."""
    if not db.ping():
        return "down"
    try:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as exc:
        log.warning("health_probe_failed", part="database", error=type(exc).__name__)
        return "unwritable"
    return "ok"
