"""Per-recipient PDF copies with a visible marking and a line-/word-shift fingerprint,
read back from rasterised, scanned, photographed, cropped and colluded copies."""

from __future__ import annotations

import hashlib
import hmac
import io
import random
import re
from collections import defaultdict
from collections.abc import Iterator

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from PIL import Image

from relto.errors import InvalidInput
from relto.tracing._doc.slots import Slot, assign
from relto.tracing.docmark import DocumentEmbedder, load_pages
from relto.tracing.embedding import Marking

LENGTH = 840
KEY = bytes(range(32))
MARKING = Marking("SECRET//REL TO AUS, GBR, USA", "Jane Doe", "GBR", 3, "obj-7f3a")
MD = "text/markdown"

_VOCAB = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "this",
    "are",
    "or",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "were",
    "there",
    "been",
    "one",
    "all",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "can",
    "more",
    "other",
    "its",
    "into",
    "time",
    "only",
    "could",
    "new",
    "them",
    "some",
    "these",
    "then",
    "two",
    "first",
    "may",
    "any",
    "like",
    "now",
    "such",
    "make",
    "over",
    "even",
    "most",
    "state",
    "after",
    "also",
    "made",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "little",
    "report",
    "border",
    "convoy",
    "signal",
    "station",
    "liaison",
    "forward",
    "sector",
    "supply",
    "bridge",
    "northern",
    "command",
]


def _document(paragraphs: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = ["# Operational summary", ""]
    for i in range(paragraphs):
        if i == 3:
            out += ["## Movements", ""]
        words = [rng.choice(_VOCAB) for _ in range(rng.randint(45, 90))]
        out += [" ".join(words).capitalize() + ".", ""]
    out += ["- first item of a short list", "- second item of it", ""]
    return "\n".join(out).encode()


DOC = _document(16, 1)  # two pages
SHORT = _document(4, 2)  # one page


@pytest.fixture(scope="module")
def embedder() -> DocumentEmbedder:
    return DocumentEmbedder()


def _bits(seed: int, n: int = LENGTH) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(0, 1) for _ in range(n)]


def _raster(pdf: bytes, dpi: float) -> list[np.ndarray]:
    doc = pdfium.PdfDocument(pdf)
    pages = []
    for i in range(len(doc)):
        bitmap = doc[i].render(scale=dpi / 72, grayscale=True)
        arr = bitmap.to_numpy()
        pages.append(np.array(arr.reshape(arr.shape[0], arr.shape[1], -1)[:, :, 0]))
    return pages


def _degrade(
    img: np.ndarray,
    *,
    rotate: float = 0.0,
    scale: float = 1.0,
    blur: float = 0.0,
    noise: float = 0.0,
    jpeg: int | None = None,
    perspective: float = 0.0,
    background: int = 0,
    crop: tuple[float, float] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A scan or photo of a page: geometry, optics, sensor noise, JPEG."""
    if background:  # a photo shows the table around the sheet
        img = cv2.copyMakeBorder(
            img, background, background, background, background, cv2.BORDER_CONSTANT, value=80
        )
    h, w = img.shape
    m = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), rotate, scale), [0, 0, 1]])
    if perspective:
        d = perspective * w
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = np.float32([[d, 0], [w - d / 2, 0.7 * d], [w, h], [0, h - d]])
        m = cv2.getPerspectiveTransform(src, dst) @ m
    out = cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise:
        rng = np.random.default_rng(seed)
        out = np.clip(out + rng.normal(0, noise, out.shape), 0, 255).astype(np.uint8)
    if crop:
        out = out[int(h * crop[0]) : int(h * crop[1])]
    if jpeg:
        _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def _wrong(truth: list[int], read: tuple[int | None, ...]) -> int:
    return sum(1 for t, r in zip(truth, read, strict=True) if r is not None and r != t)


def _positions_by_page(embedder: DocumentEmbedder, content: bytes) -> dict[int, set[int]]:
    prep = embedder._prepared(content, MD, "d.md")
    out: dict[int, set[int]] = defaultdict(set)
    for slot, pos in assign(prep.slots, KEY, LENGTH):
        out[slot.page].add(pos)
    return out


# -- the visible copy ------------------------------------------------------------------


def test_every_page_shows_banner_recipient_nation_copy(embedder: DocumentEmbedder) -> None:
    copy = embedder.embed(DOC, MD, "d.md", _bits(1), KEY, MARKING)
    doc = pdfium.PdfDocument(copy.data)
    assert copy.pages == len(doc) == 2
    assert copy.media_type == "application/pdf" and copy.suffix == ".pdf"
    for i in range(len(doc)):
        text = doc[i].get_textpage().get_text_range()
        assert text.count(MARKING.banner) == 2  # top and bottom
        assert text.count("Copy 3 \u2014 issued to Jane Doe (GBR)") == 2
        assert f"obj-7f3a \u00b7 page {i + 1} of 2" in text


def test_copy_paste_text_is_ordinary_text(embedder: DocumentEmbedder) -> None:
    a = embedder.embed(DOC, MD, "d.md", _bits(1), KEY, MARKING)
    b = embedder.embed(DOC, MD, "d.md", _bits(2), KEY, MARKING)
    texts = []
    for copy in (a, b):
        doc = pdfium.PdfDocument(copy.data)
        text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
        assert not re.search(r"[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]", text)  # no hidden marks
        texts.append(text)
    assert texts[0] == texts[1]  # the fingerprint is in positions, never in the text
    body = " ".join(texts[0].split())
    source = " ".join(DOC.decode().replace("#", "").replace("- ", "\u2022 ").split())
    for sentence in source.split(". ")[:20]:
        assert sentence in body


def test_same_content_gives_same_layout_and_bytes(embedder: DocumentEmbedder) -> None:
    one = embedder.embed(DOC, MD, "d.md", _bits(1), KEY, MARKING)
    again = DocumentEmbedder().embed(DOC, MD, "d.md", _bits(1), KEY, MARKING)
    assert one.data == again.data


def test_sources_plain_markdown_pdf_docx_are_rendered(embedder: DocumentEmbedder) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Liaison report", level=1)
    d.add_paragraph("The convoy crossed the northern bridge before dawn. " * 8)
    buf = io.BytesIO()
    d.save(buf)
    plain = b"Line one of the note\n\nLine two after a gap\n"
    source_pdf = embedder.embed(plain, "text/plain", "n.txt", _bits(3), KEY, MARKING).data
    cases = [
        (plain, "text/plain", "n.txt", "Line two after a gap"),
        (buf.getvalue(), "application/octet-stream", "r.docx", "Liaison report"),
        (source_pdf, "application/pdf", "n.pdf", "Line one of the note"),
        (DOC, MD, "d.md", "Operational summary"),
    ]
    for content, media, name, expect in cases:
        assert embedder.accepts(media, name)
        copy = embedder.embed(content, media, name, _bits(4), KEY, MARKING)
        text = pdfium.PdfDocument(copy.data)[0].get_textpage().get_text_range()
        assert expect in text
    assert not embedder.accepts("image/png", "x.png")
    with pytest.raises(InvalidInput):
        embedder.embed(b"\x89PNG", "image/png", "x.png", _bits(4), KEY, MARKING)


def test_misuse_is_refused(embedder: DocumentEmbedder) -> None:
    with pytest.raises(ValueError):
        embedder.embed(DOC, MD, "d.md", [0, 2, 1], KEY, MARKING)
    with pytest.raises(ValueError):
        embedder.embed(DOC, MD, "d.md", _bits(1), b"short", MARKING)


# -- the slot plan ---------------------------------------------------------------------


def test_repeats_of_a_position_sit_on_different_pages(embedder: DocumentEmbedder) -> None:
    content = _document(60, 3)
    prep = embedder._prepared(content, MD, "d.md")
    assert len(prep.slots) >= 6
    pages: dict[int, list[int]] = defaultdict(list)
    for slot, pos in assign(prep.slots, KEY, LENGTH):
        pages[pos].append(slot.page)
    assert len(pages) == LENGTH
    assert all(len(set(p)) == len(p) for p in pages.values())
    other = assign(prep.slots, bytes(32), LENGTH)
    assert [pos for _, pos in other] != [pos for _, pos in assign(prep.slots, KEY, LENGTH)]


def test_positions_beyond_capacity_read_as_erasures(embedder: DocumentEmbedder) -> None:
    bits = _bits(5)
    copy = embedder.embed(SHORT, MD, "s.md", bits, KEY, MARKING)
    assert copy.pages == 1 and 0 < copy.positions < LENGTH
    carried = {pos for _, pos in assign(embedder._prepared(SHORT, MD, "s.md").slots, KEY, LENGTH)}
    reading = embedder.extract(load_pages(copy.data), SHORT, MD, "s.md", KEY, LENGTH)
    assert _wrong(bits, reading.bits) == 0
    read = {i for i, b in enumerate(reading.bits) if b is not None}
    assert read <= carried and len(read) >= 0.9 * len(carried)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:  # RFC 5869, one block
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _numbers(key: bytes, block: int) -> Iterator[int]:
    """AES-256-CTR keystream by hand: AES-ECB on explicit counter blocks."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    counter = block << 64
    while True:
        chunk = ecb.update(counter.to_bytes(16, "big"))
        yield int.from_bytes(chunk[:8], "big")
        yield int.from_bytes(chunk[8:], "big")
        counter += 1


def _shuffled(n: int, numbers: Iterator[int]) -> list[int]:
    items = list(range(n))
    for i in range(n - 1, 0, -1):
        j = next(numbers) % (i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def test_slot_map_matches_an_independent_derivation() -> None:
    """The documented derivation, re-implemented with hmac and AES-ECB."""
    pages = [
        [Slot(0, line, None, line - 1, line + 1) for line in range(1, 10, 2)],
        [Slot(1, 3, word, word - 1, word + 1) for word in range(1, 8, 2)],
    ]
    length = 6
    k = _hkdf(KEY, b"relto.tracing.docmark.v1", b"slots")
    perm = _shuffled(length, _numbers(k, 0))
    expected = []
    for p, slots in enumerate(pages):
        for idx in _shuffled(len(slots), _numbers(k, p + 1)):
            expected.append((slots[idx], perm[len(expected) % length]))
    assert assign(pages, KEY, length) == expected


# -- reading leaks -----------------------------------------------------------------------


SCANS = {
    "scan150": (150, {"rotate": 1.5, "scale": 0.97, "blur": 0.8, "noise": 6, "jpeg": 50}),
    "scan300": (300, {"rotate": -2.5, "scale": 1.04, "blur": 1.4, "noise": 6, "jpeg": 50}),
    "photo": (
        150,
        {
            "rotate": 3.0,
            "scale": 0.95,
            "blur": 1.0,
            "noise": 8,
            "jpeg": 50,
            "perspective": 0.03,
            "background": 60,
        },
    ),
}


@pytest.mark.parametrize("name", list(SCANS))
def test_scan_at_150dpi_reads_codeword_without_errors(
    embedder: DocumentEmbedder, name: str
) -> None:
    """Known answer: random bits in, a degraded raster out, no wrong bit read."""
    dpi, attack = SCANS[name]
    bits = _bits(10)
    copy = embedder.embed(DOC, MD, "d.md", bits, KEY, MARKING)
    leak = [_degrade(p, seed=i, **attack) for i, p in enumerate(_raster(copy.data, dpi))]
    reading = embedder.extract(leak, DOC, MD, "d.md", KEY, LENGTH)
    assert _wrong(bits, reading.bits) == 0
    assert reading.read >= 0.85 * copy.positions
    assert reading.match >= 0.7


def test_half_page_crop_reads_remaining_lines(embedder: DocumentEmbedder) -> None:
    bits = _bits(11)
    copy = embedder.embed(DOC, MD, "d.md", bits, KEY, MARKING)
    page = _raster(copy.data, 150)[0]
    leak = _degrade(page, rotate=0.8, blur=0.8, noise=6, jpeg=50, crop=(0.5, 1.0))
    reading = embedder.extract([leak], DOC, MD, "d.md", KEY, LENGTH)
    assert _wrong(bits, reading.bits) == 0
    on_page = _positions_by_page(embedder, DOC)[0]
    read = {i for i, b in enumerate(reading.bits) if b is not None}
    assert read <= on_page  # nothing is read from the page that was not leaked
    assert 0.3 * len(on_page) <= len(read) <= 0.6 * len(on_page)  # about the lower half


def test_subset_of_pages_reordered_is_found(embedder: DocumentEmbedder) -> None:
    bits = _bits(12)
    copy = embedder.embed(DOC, MD, "d.md", bits, KEY, MARKING)
    pages = load_pages(copy.data)
    reading = embedder.extract([pages[1]], DOC, MD, "d.md", KEY, LENGTH)
    assert _wrong(bits, reading.bits) == 0
    assert {i for i, b in enumerate(reading.bits) if b is not None} <= _positions_by_page(
        embedder, DOC
    )[1]
    assert "reference page 2" in reading.notes[0]


def test_averaged_copies_read_as_erasures_not_errors(embedder: DocumentEmbedder) -> None:
    a, b = _bits(20), _bits(21)
    pa = load_pages(embedder.embed(DOC, MD, "d.md", a, KEY, MARKING).data)
    pb = load_pages(embedder.embed(DOC, MD, "d.md", b, KEY, MARKING).data)
    averaged = [
        ((x.astype(np.uint16) + y) // 2).astype(np.uint8) for x, y in zip(pa, pb, strict=True)
    ]
    leak = [
        _degrade(p, rotate=0.5, blur=0.7, noise=4, jpeg=75, seed=i) for i, p in enumerate(averaged)
    ]
    reading = embedder.extract(leak, DOC, MD, "d.md", KEY, LENGTH)
    same = [i for i in range(LENGTH) if a[i] == b[i]]
    differ = [i for i in range(LENGTH) if a[i] != b[i]]
    assert all(reading.bits[i] in (None, a[i]) for i in same)
    assert sum(reading.bits[i] is not None for i in same) >= 0.5 * len(same)
    assert all(reading.bits[i] is None for i in differ)


def test_pages_from_different_copies_read_each_part(embedder: DocumentEmbedder) -> None:
    a, b = _bits(30), _bits(31)
    pa = load_pages(embedder.embed(DOC, MD, "d.md", a, KEY, MARKING).data)
    pb = load_pages(embedder.embed(DOC, MD, "d.md", b, KEY, MARKING).data)
    reading = embedder.extract([pb[1], pa[0]], DOC, MD, "d.md", KEY, LENGTH)
    by_page = _positions_by_page(embedder, DOC)
    for i, bit in enumerate(reading.bits):
        if bit is None:
            continue
        if i in by_page[0] and i in by_page[1]:
            assert bit == a[i] == b[i]
        elif i in by_page[0]:
            assert bit == a[i]
        else:
            assert bit == b[i]
    assert reading.read >= 0.8 * len(by_page[0] ^ by_page[1])


def test_locate_scores_this_document_above_another(embedder: DocumentEmbedder) -> None:
    copy = embedder.embed(DOC, MD, "d.md", _bits(40), KEY, MARKING)
    leak = [_degrade(_raster(copy.data, 150)[0], rotate=1.0, blur=0.8, noise=6, jpeg=50)]
    assert embedder.locate(leak, DOC, MD, "d.md") >= 0.8
    assert embedder.locate(leak, SHORT, MD, "s.md") <= 0.3
    other = embedder.extract(leak, SHORT, MD, "s.md", KEY, LENGTH)
    assert other.read == 0 and other.match == 0.0


# -- leaked files ------------------------------------------------------------------------


def test_bad_leak_file_gives_clear_error() -> None:
    for data in (
        b"",
        b"hello world",
        b"GIF89a" + bytes(100),
        b"%PDF-1.7\n garbage",
        b"\x89PNG\r\n\x1a\n",
    ):
        with pytest.raises(InvalidInput):
            load_pages(data)
    huge = io.BytesIO()
    Image.new("1", (9000, 9000)).save(huge, format="PNG")  # 81 Mpx, small file
    with pytest.raises(InvalidInput, match="too large"):
        load_pages(huge.getvalue())


def test_leaked_photo_is_turned_upright_by_exif() -> None:
    img = Image.new("L", (300, 200), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    (page,) = load_pages(buf.getvalue())
    assert page.shape == (300, 200) and page.dtype == np.uint8
