"""The seam between the tracing service and the embedders. Pure data, no I/O.

An *embedder* turns an object's content into one recipient's copy carrying that
recipient's codeword, and reads the codeword back out of a leaked file. Two exist:
``relto.tracing.docmark`` (documents: per-recipient PDFs, visible marking, line- and
word-shift coding) and ``relto.tracing.imagemark`` (images and figures: a
luminance-domain watermark). Both are non-blind: the node holds the original, so
extraction registers the leak against the reference rendering of that original.

Conventions every embedder keeps:

- ``bits`` is the full codeword, a sequence of 0/1 of the code's length m; which
  code position goes to which place in the copy is decided by the embedder from
  ``key`` (a 32-byte key the service derives from the object's tracing secret), so
  the mapping is secret and the same on both sides.
- A reading has exactly m entries: 0, 1, or ``None`` (an erasure) where the bit was
  not seen or not read reliably. An embedder must turn doubtful bits into erasures,
  never guess: the accusation tolerates erasures, not errors.
- Leaked files arrive as page images (``Page``): 8-bit grayscale, row-major, as
  ``numpy`` arrays, whatever the file was (a PDF is rasterised first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Page = npt.NDArray[np.uint8]
else:
    Page = object

__all__ = ["Copy", "Embedder", "Marking", "Page", "Reading"]


@dataclass(frozen=True, slots=True)
class Marking:
    """What every page of a copy shows in plain sight (top and bottom)."""

    banner: str  # the object's classification banner, e.g. "SECRET//REL TO AUS, GBR, USA"
    recipient: str  # the recipient's display name
    nation: str  # the recipient's nation (trigraph)
    copy_number: int  # the copy's number within the object, from 1
    object_ref: str  # the object's id, printed small so that a finder can name it


@dataclass(frozen=True, slots=True)
class Copy:
    """One recipient's copy, ready to hand out."""

    data: bytes
    media_type: str  # e.g. "application/pdf", "image/png"
    suffix: str  # file name suffix including the dot, e.g. ".pdf"
    positions: int  # how many distinct code positions the copy carries at least once
    pages: int  # pages (documents) or 1 (images)


@dataclass(frozen=True, slots=True)
class Reading:
    """The codeword as read from a leaked file."""

    bits: tuple[int | None, ...]  # m entries; None = erasure
    match: float  # 0..1: how well the leak matched this object's reference
    notes: tuple[str, ...] = ()  # what the reader saw (pages found, rotation undone, ...)

    @property
    def read(self) -> int:
        return sum(b is not None for b in self.bits)


class Embedder(Protocol):
    """Makes per-recipient copies of one kind of content and reads them back."""

    def accepts(self, media_type: str, filename: str) -> bool:
        """Whether this embedder handles content of this type."""
        ...

    def embed(
        self,
        content: bytes,
        media_type: str,
        filename: str,
        bits: Sequence[int],
        key: bytes,
        marking: Marking,
    ) -> Copy:
        """The recipient's copy of ``content`` carrying ``bits``."""
        ...

    def locate(
        self, pages: Sequence[Page], content: bytes, media_type: str, filename: str
    ) -> float:
        """0..1: how likely the leaked pages are a copy of this content (cheap)."""
        ...

    def extract(
        self,
        pages: Sequence[Page],
        content: bytes,
        media_type: str,
        filename: str,
        key: bytes,
        length: int,
    ) -> Reading:
        """Read the codeword of length ``length`` from the leaked pages."""
        ...
