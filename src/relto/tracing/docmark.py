"""Documents: per-recipient PDFs with a visible marking and an invisible fingerprint
by line- and word-shift coding, and reading the codeword back from a leaked PDF,
scan or photo (issue 17). See ``docs/tracing.md``, "Documents: line- and word-shift
coding", and ADR 0158.

The copy is re-rendered from the document's text (plain text, Markdown, the text of
a PDF, the paragraphs of a .docx) in a fixed layout: A4, Helvetica 11/16 pt. The
fingerprint moves some lines up or down by ``LINE_SHIFT`` points and some words
left or right by ``WORD_SHIFT`` points, each between unmoved neighbours; the PDF
text stays ordinary selectable text. Reading is non-blind: the reader re-renders the
unmoved reference layout from the original content and measures the leak against it.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from relto.errors import InvalidInput
from relto.tracing._doc import read as _read
from relto.tracing._doc.layout import Layout, blocks_from_content, lay_out, source_kind
from relto.tracing._doc.pdf import write_pdf
from relto.tracing._doc.slots import Slot, assign, slots_of
from relto.tracing.embedding import Copy, Marking, Page, Reading

__all__ = [
    "LINE_SHIFT",
    "MAX_FILE_BYTES",
    "MAX_PAGES",
    "MAX_PAGE_PIXELS",
    "WORD_SHIFT",
    "DocumentEmbedder",
    "load_pages",
]

LINE_SHIFT = 0.8  # points a line slot moves up (bit 0) or down (bit 1)
WORD_SHIFT = 0.8  # points a word slot moves left (bit 0) or right (bit 1)
STRONG = 0.65  # a slot's soft value must reach this (in units of its shift) to count
AGREE = 0.3  # a repeat of the opposite sign this strong makes the position an erasure

MAX_FILE_BYTES = 200 * 1024 * 1024  # a leaked file
MAX_PAGES = 200  # pages read from a leaked file
MAX_PAGE_PIXELS = 60_000_000  # per page image (7,700 x 7,700)
LEAK_DPI = 200.0  # a leaked PDF is rasterised at this resolution
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class _Prepared:
    layout: Layout
    slots: list[list[Slot]]


def _shifts(
    assigned: Sequence[tuple[Slot, int]], bits: Sequence[int]
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int, int], float]]:
    line_dy: dict[tuple[int, int], float] = {}
    word_dx: dict[tuple[int, int, int], float] = {}
    for slot, pos in assigned:
        sign = 1.0 if bits[pos] else -1.0
        if slot.word is None:
            line_dy[(slot.page, slot.line)] = sign * LINE_SHIFT
        else:
            word_dx[(slot.page, slot.line, slot.word)] = sign * WORD_SHIFT
    return line_dy, word_dx


def _combine(values: list[float]) -> int | None:
    """Repeats of one position -> its bit, or None when weak or disagreeing."""
    if not values:
        return None
    mean = sum(values) / len(values)
    if abs(mean) < STRONG:
        return None
    if any(v * mean < 0 and abs(v) >= AGREE for v in values):
        return None
    return 1 if mean > 0 else 0


class DocumentEmbedder:
    """The document embedder (``relto.tracing.embedding.Embedder``)."""

    def __init__(self, cache_size: int = 4) -> None:
        self._cache: OrderedDict[bytes, tuple[_Prepared, _read.Reference | None]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- preparation (cached per content) -------------------------------------------

    def _prepared(self, content: bytes, media_type: str, filename: str) -> _Prepared:
        return self._get(content, media_type, filename, reference=False)[0]

    def _reference(
        self, content: bytes, media_type: str, filename: str
    ) -> tuple[_Prepared, _read.Reference]:
        prep, ref = self._get(content, media_type, filename, reference=True)
        assert ref is not None
        return prep, ref

    def _get(
        self, content: bytes, media_type: str, filename: str, reference: bool
    ) -> tuple[_Prepared, _read.Reference | None]:
        kind = source_kind(media_type, filename)
        if kind is None:
            raise InvalidInput(f"documents of type {media_type!r} are not rendered")
        digest = hashlib.sha256(kind.encode() + b"\0" + content).digest()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
        if hit is None:
            layout = lay_out(blocks_from_content(content, media_type, filename))
            hit = (_Prepared(layout, slots_of(layout)), None)
        if reference and hit[1] is None:
            hit = (hit[0], _read.reference(hit[0].layout))
        with self._lock:
            self._cache[digest] = hit
            self._cache.move_to_end(digest)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return hit

    # -- the Embedder protocol ----------------------------------------------------------

    def accepts(self, media_type: str, filename: str) -> bool:
        return source_kind(media_type, filename) is not None

    def capacity(self, content: bytes, media_type: str, filename: str) -> list[int]:
        """Slots (bits carried) on each page of this content's copies."""
        return [len(s) for s in self._prepared(content, media_type, filename).slots]

    def embed(
        self,
        content: bytes,
        media_type: str,
        filename: str,
        bits: Sequence[int],
        key: bytes,
        marking: Marking,
    ) -> Copy:
        _check_key(key)
        if not bits or any(b not in (0, 1) for b in bits):
            raise ValueError("bits must be a non-empty sequence of 0 and 1")
        prep = self._prepared(content, media_type, filename)
        assigned = assign(prep.slots, key, len(bits))
        line_dy, word_dx = _shifts(assigned, bits)
        data = write_pdf(prep.layout, line_dy, word_dx, marking, title=filename)
        carried = len({pos for _, pos in assigned})
        return Copy(data, "application/pdf", ".pdf", carried, len(prep.layout.pages))

    def locate(
        self, pages: Sequence[Page], content: bytes, media_type: str, filename: str
    ) -> float:
        """The best word-blob correlation of up to four leaked pages against this
        content's pages after a coarse (72 dpi) registration; 0 when none registers."""
        _, ref = self._reference(content, media_type, filename)
        best = 0.0
        for page in pages[:4]:
            _, score, h = _read.identify(ref, _gray(page))
            if h is not None:
                best = max(best, score)
        return min(1.0, best)

    def extract(
        self,
        pages: Sequence[Page],
        content: bytes,
        media_type: str,
        filename: str,
        key: bytes,
        length: int,
    ) -> Reading:
        _check_key(key)
        if length <= 0:
            raise ValueError("length must be positive")
        if len(pages) > MAX_PAGES:
            raise InvalidInput(f"at most {MAX_PAGES} leaked pages are read at once")
        prep, ref = self._reference(content, media_type, filename)
        assigned = assign(prep.slots, key, length)
        by_page: dict[int, list[tuple[Slot, int]]] = {}
        for slot, pos in assigned:
            by_page.setdefault(slot.page, []).append((slot, pos))
        values: list[list[float]] = [[] for _ in range(length)]
        notes: list[str] = []
        matched: list[float] = []
        for n, page in enumerate(pages):
            reg = _read.register(ref, _gray(page))
            if reg is None:
                notes.append(f"leaked page {n + 1}: not found in this document")
                continue
            matched.append(reg.agreement)
            here = by_page.get(reg.page, [])
            soft = _read.measure(ref, reg, [s for s, _ in here], LINE_SHIFT, WORD_SHIFT)
            read = 0
            for (_, pos), v in zip(here, soft, strict=True):
                if v is not None:
                    values[pos].append(max(-2.0, min(2.0, v)))
                    read += 1
            notes.append(
                f"leaked page {n + 1}: reference page {reg.page + 1}"
                f" (agreement {reg.agreement:.2f}),"
                f" rotation {reg.rotation:+.2f} deg, {reg.scale * 72:.0f} dpi,"
                f" {read} of {len(here)} slots read"
            )
        bits = tuple(_combine(v) for v in values)
        match = sum(matched) / len(pages) if pages else 0.0
        return Reading(bits, match, tuple(notes))


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key must be at least {MIN_KEY_BYTES} bytes")


def _gray(page: Page) -> _read.Gray:
    import cv2
    import numpy as np

    arr = np.asarray(page)
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype == np.uint8:
        code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        arr = np.asarray(cv2.cvtColor(arr, code), dtype=np.uint8)
    if arr.ndim != 2 or arr.dtype != np.uint8 or min(arr.shape) < 32:
        raise InvalidInput("a page must be an 8-bit grayscale image of at least 32 x 32 pixels")
    if arr.size > MAX_PAGE_PIXELS:
        raise InvalidInput("a page image is too large")
    return np.ascontiguousarray(arr)


# -- leaked files -----------------------------------------------------------------------


def load_pages(data: bytes) -> list[Page]:
    """A leaked file as 8-bit grayscale page images: a PDF rasterised at 200 dpi, or a
    PNG, JPEG or TIFF image (every frame of a TIFF), EXIF orientation applied."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput("the leaked file is too large")
    if data.startswith(b"%PDF-") or data[:1024].find(b"%PDF-") >= 0:
        return _pdf_pages(data)
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")):
        return _image_pages(data)
    raise InvalidInput("the leaked file is not a PDF, PNG, JPEG or TIFF file")


def _pdf_pages(data: bytes) -> list[Page]:
    import numpy as np
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InvalidInput("the leaked PDF could not be read") from exc
    try:
        if len(doc) == 0:
            raise InvalidInput("the leaked PDF has no pages")
        if len(doc) > MAX_PAGES:
            raise InvalidInput(f"the leaked PDF has more than {MAX_PAGES} pages")
        out: list[Page] = []
        for i in range(len(doc)):
            page = doc[i]
            w, h = page.get_size()
            if (w * LEAK_DPI / 72) * (h * LEAK_DPI / 72) > MAX_PAGE_PIXELS or min(w, h) <= 0:
                raise InvalidInput("a page of the leaked PDF is too large")
            bitmap = page.render(scale=LEAK_DPI / 72.0, grayscale=True)
            arr = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
            bitmap.close()
            page.close()
            out.append(arr.reshape(arr.shape[0], arr.shape[1], -1)[:, :, 0].copy())
        return out
    finally:
        doc.close()


def _image_pages(data: bytes) -> list[Page]:
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("PNG", "JPEG", "TIFF", "MPO"):
                raise InvalidInput("the leaked file is not a PNG, JPEG or TIFF image")
            frames = getattr(img, "n_frames", 1)
            if frames > MAX_PAGES:
                raise InvalidInput(f"the leaked image has more than {MAX_PAGES} pages")
            out: list[Page] = []
            for i in range(frames if img.format == "TIFF" else 1):
                img.seek(i)
                if img.width * img.height > MAX_PAGE_PIXELS:
                    raise InvalidInput("the leaked image is too large")
                frame = ImageOps.exif_transpose(img.copy()) or img.copy()
                out.append(np.array(frame.convert("L"), dtype=np.uint8))
            return out
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        Image.DecompressionBombError,
        EOFError,
    ) as exc:
        raise InvalidInput("the leaked image could not be read") from exc
