"""What ``/healthz`` checks: that the node can still write, not only read.

A node whose disk is full answers reads and then fails every change; a probe that
only runs ``SELECT 1`` calls it healthy. Each part is probed with a real write:

- ``database``: ``SELECT 1``, then a committed no-op write (``UPDATE`` of the
  migration version row onto itself), so a full disk, a read-only file or a
  database that refuses writes shows;
- ``storage`` (the data folder) and ``blobs`` (the payload folder): a small file
  written, ``fsync``-ed and deleted.

Each part is ``"ok"``, or a word for what failed (``"down"``, ``"unwritable"``);
never a path, a driver message or a setting's value. Details go to the log.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from relto.node import Node

__all__ = ["probe_database", "probe_folder", "probe_node"]

log = structlog.stdlib.get_logger("relto.server")

#: A block's worth, so that a full file system refuses it (an empty file may fit).
_PROBE = b"\0" * 4096


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


def probe_database(node: Node) -> str:
    """``SELECT 1`` and a committed no-op write."""
    if not node.db.ping():
        return "down"
    try:
        with node.db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as exc:
        log.warning("health_probe_failed", part="database", error=type(exc).__name__)
        return "unwritable"
    return "ok"


def probe_node(node: Node) -> dict[str, str]:
    """Every part, by name: ``database``, ``storage``, ``blobs``."""
    settings = node.settings
    parts = {"database": probe_database(node), "storage": probe_folder(settings.data_dir)}
    blob_dir = settings.blob_dir
    parts["blobs"] = probe_folder(blob_dir) if blob_dir.is_dir() else "unwritable"
    return parts
