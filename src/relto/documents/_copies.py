"""The port through which sharing releases a copy that must be fingerprinted.

A decision that carries the ``fingerprint`` obligation (downloads and shares) never
releases the object's plaintext as it is: :class:`DocumentService` hands it, with
the recipient, to a :class:`CopyMaker` (``relto.tracing.copies.CopyIssuer`` on a
node), which records the copy and returns the recipient's own copy. A node without
one refuses such releases (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from relto.authz import Principal
from relto.documents._model import DocumentView

__all__ = ["CopyMaker", "Release", "ReleasedCopy"]


@dataclass(frozen=True)
class Release:
    """What one release is of: the object, its label and policy attributes (for a
    re-protected copy), and its plaintext (in memory only)."""

    doc: DocumentView
    label_xml: bytes
    attributes: tuple[str, ...]
    content: bytes
    action: str


@dataclass(frozen=True)
class ReleasedCopy:
    """The recipient's own copy, as it leaves the node."""

    data: bytes
    media_type: str
    filename: str
    copy_number: int
    #: ``embedded`` (the codeword is in the content) or ``container`` (a
    #: re-protected container whose assertion names the copy).
    method: str


class CopyMaker(Protocol):
    """Makes and records the recipient's copy before anything leaves the node."""

    def copy_for(self, who: Principal, release: Release, at: datetime) -> ReleasedCopy:
        """The copy of ``release`` for ``who``, recorded (ledger row and log entry)."""
        ...
