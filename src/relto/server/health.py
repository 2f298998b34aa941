"""What ``/healthz`` checks: that the node can still write, not only read.

Each part is probed with a real write (:mod:`relto.health`): ``database`` (``SELECT
1`` and a committed no-op write), ``storage`` (the data folder) and ``blobs`` (the
payload folder, or the object store: :meth:`relto.store.BlobStore.probe`). Each is
``"ok"``, or a word for what failed (``"down"``, ``"unwritable"``); never a path, a
driver message or a setting's value.
"""

from __future__ import annotations

from relto.health import probe_database, probe_folder
from relto.node import Node

__all__ = ["probe_node"]


def probe_node(node: Node) -> dict[str, str]:
    """Every part, by name: ``database``, ``storage``, ``blobs``."""
    settings = node.settings
    parts = {"database": probe_database(node.db), "storage": probe_folder(settings.data_dir)}
    parts["blobs"] = node.blobs.probe()
    return parts
