"""Who may read the transparency log's entry bodies.

Everything a partner needs to check the log -- checkpoints, proofs, hash tiles -- is
public: sizes and hashes only. Entry bodies say who saw or changed what, so they are
for the node's auditors and security officers. One rule, used by the HTTP API and
the console alike.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ENTRY_READER_ROLES", "may_read_entries"]

#: Roles (of any nation) whose holders may read entry bodies.
ENTRY_READER_ROLES = frozenset({"auditor", "security_officer"})


def may_read_entries(roles: Iterable[tuple[str, str]]) -> bool:
    """``roles``: ``(role, nation)`` grants, as relto's principals carry them."""
    return any(role in ENTRY_READER_ROLES for role, _nation in roles)
