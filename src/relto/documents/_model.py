"""What the sharing capability hands out: document metadata and label choices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relto.config import MAX_DOCUMENT_BYTES

__all__ = ["MAX_DOCUMENT_BYTES", "DocumentView", "LabelChoice"]


@dataclass(frozen=True)
class DocumentView:
    """What a list or page shows about a document (never its content).

    ``rel_to`` is the banner's Releasable To; ``releasable`` adds the originator
    (a NOFORN document is releasable to its originator alone).
    """

    id: str
    title: str
    project_id: str
    originator: str
    banner: str
    top_marking: str
    bottom_marking: str
    classification: str
    rel_to: tuple[str, ...]
    owner: str
    filename: str
    media_type: str
    plaintext_size: int
    version: int
    created_at: datetime
    updated_at: datetime
    policy_uuid: str
    #: The classification on the partnership's common scale (for colour only).
    common_level: str = ""
    #: Nations whose key access services each hold a share of the key, the
    #: originator's included (empty: the originator's KAS alone). Opening needs
    #: every one of them to release its share.
    custody: tuple[str, ...] = ()

    @property
    def releasable(self) -> frozenset[str]:
        return frozenset(self.rel_to) | {self.originator}


@dataclass(frozen=True)
class LabelChoice:
    """What the upload form may offer a person: only values that make valid labels."""

    originator: str
    classifications: tuple[str, ...]
    nations: tuple[str, ...]
    projects: tuple[tuple[str, str], ...]
