"""relto.tracing.imagemark: the luminance watermark for images and figures, and the
invisible-watermark baseline it is measured against (issue 17).

Each test is named after the leak it must still trace, or the wrong accusation it must
not make. The degradations are a small local helper (``relto.tracing.degrade`` has the
fuller attack simulations for the benchmark).
"""

from __future__ import annotations

import hashlib
import io
import re

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from relto.errors import InvalidInput
from relto.tracing import TracingCode, code_parameters, unpack
from relto.tracing.baseline import bit_errors, embed_baseline, extract_baseline
from relto.tracing.embedding import Marking, Reading
from relto.tracing.imagemark import (
    ImageEmbedder,
    _layout,
    embed_image,
    extract_image,
    psnr,
)

U8 = npt.NDArray[np.uint8]
M = 840  # c = 3, n = 10,000, eps = 1e-3
KEY = hashlib.sha256(b"imagemark test key").digest()
MIN_BITS = 583  # below this, catching a coalition of 3 is no longer assured (docs/tracing.md)


# --- test images and degradations ---------------------------------------------------------


def _line_drawing(seed: int = 1, height: int = 600, width: int = 800) -> U8:
    """Black lines, circles, boxes and labels on pure white: a typical figure."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width), 255, np.uint8)
    for _ in range(25):
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(img, p1, p2, 0, int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(12):
        centre = (int(rng.integers(50, width - 50)), int(rng.integers(50, height - 50)))
        cv2.circle(img, centre, int(rng.integers(10, 80)), 0, 1, cv2.LINE_AA)
    for _ in range(6):
        x, y = int(rng.integers(0, width - 150)), int(rng.integers(0, height - 20))
        corner = (x + int(rng.integers(40, 150)), y + int(rng.integers(20, 100)))
        cv2.rectangle(img, (x, y), corner, 0, 1)
    for i in range(10):
        at = (int(rng.integers(10, width - 200)), int(rng.integers(20, height - 10)))
        label = f"R{i} Fig. {seed}-{i} valve"
        cv2.putText(img, label, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
    return img


def _photo(seed: int = 2, height: int = 600, width: int = 800) -> U8:
    """A natural-ish RGB image: smooth gradients, grain, coloured shapes, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [
            60 + 120 * xx / width + 30 * np.sin(yy / 40),
            80 + 100 * yy / height,
            150 - 80 * xx / width + 20 * np.cos(xx / 60),
        ],
        axis=2,
    )
    grain = rng.normal(0, 25, (height, width, 3)).astype(np.float32)
    img += cv2.GaussianBlur(grain, (0, 0), 1.5)
    out = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(15):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(out, centre, int(rng.integers(10, 90)), colour, -1, cv2.LINE_AA)
    noisy = out.astype(np.float32) + rng.normal(0, 4, out.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _jpeg(img: U8, quality: int) -> U8:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), dtype=np.uint8)


def _rotate(img: U8, degrees: float, scale: float = 1.0) -> U8:
    """Rotate and rescale about the centre, keeping the canvas (corners fill white)."""
    height, width = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    fill = (255, 255, 255) if img.ndim == 3 else 255
    out = cv2.warpAffine(img, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=fill)
    return np.asarray(out, dtype=np.uint8)


def _resize(img: U8, factor: float) -> U8:
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, None, fx=factor, fy=factor, interpolation=method), np.uint8)


def _blur(img: U8, sigma: float) -> U8:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma), dtype=np.uint8)


def _noise(img: U8, sigma: float, seed: int = 0) -> U8:
    noisy = img + np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _gray(img: U8) -> U8:
    """What a leaked page arrives as: 8-bit grey."""
    if img.ndim == 2:
        return img
    return np.asarray(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def _bits(seed: int) -> list[int]:
    return [int(b) for b in np.random.default_rng(seed).integers(0, 2, M)]


def _errors(reading: Reading, bits: list[int]) -> int:
    return sum(r is not None and r != b for r, b in zip(reading.bits, bits, strict=True))


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drawing() -> U8:
    return _line_drawing()


@pytest.fixture(scope="module")
def photo() -> U8:
    return _photo()


@pytest.fixture(scope="module")
def word() -> list[int]:
    return _bits(5)


@pytest.fixture(scope="module")
def marked_drawing(drawing: U8, word: list[int]) -> U8:
    return embed_image(drawing, word, KEY)


@pytest.fixture(scope="module")
def marked_photo(photo: U8, word: list[int]) -> U8:
    return embed_image(photo, word, KEY)


@pytest.fixture(scope="module")
def drawing_rotated_jpeg50(drawing: U8, marked_drawing: U8) -> Reading:
    """Our reading of the marked line drawing rotated by 3 degrees and saved at JPEG 50."""
    return extract_image(_jpeg(_rotate(marked_drawing, 3.0), 50), drawing, KEY, M)


# --- the mark itself -----------------------------------------------------------------------


def test_clean_copy_reads_full_codeword_at_low_visibility(
    drawing: U8, photo: U8, marked_drawing: U8, marked_photo: U8, word: list[int]
) -> None:
    # The line drawing's PSNR includes pulling white to 252; the photo has no such shift.
    assert psnr(drawing, marked_drawing) > 35.0
    assert psnr(photo, marked_photo) > 38.0
    for original, marked in ((drawing, marked_drawing), (photo, marked_photo)):
        reading = extract_image(_gray(marked), original, KEY, M)
        assert reading.bits == tuple(word)
        assert reading.match > 0.9


def test_only_luminance_changes_colour_is_kept(photo: U8, marked_photo: U8) -> None:
    def chroma(img: U8) -> npt.NDArray[np.float32]:
        ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
        return ycc[..., 1:]

    # Rounding to 8 bits is the only chroma change (a level at most, on average far less).
    assert float(np.abs(chroma(photo) - chroma(marked_photo)).mean()) < 0.5


def test_unmarked_original_reads_nothing(drawing: U8) -> None:
    # A leak of the node's own original (or an unmarked print) names nobody.
    reading = extract_image(_jpeg(drawing, 75), drawing, KEY, M)
    assert reading.read == 0


def test_wrong_key_reads_only_erasures(marked_photo: U8, photo: U8) -> None:
    # Another object's layout finds no evidence: no guessed bits to accuse with.
    other = hashlib.sha256(b"another object").digest()
    reading = extract_image(_gray(_jpeg(marked_photo, 50)), photo, other, M)
    assert reading.read == 0


# --- attacks -------------------------------------------------------------------------------


def test_jpeg50_copy_reads_codeword_without_errors(
    drawing: U8, photo: U8, marked_drawing: U8, marked_photo: U8, word: list[int]
) -> None:
    for original, marked in ((drawing, marked_drawing), (photo, marked_photo)):
        reading = extract_image(_gray(_jpeg(marked, 50)), original, KEY, M)
        assert _errors(reading, word) == 0
        assert reading.read >= 750


def test_rotated_3deg_and_rescaled_copy_resynchronises(
    drawing: U8, photo: U8, marked_drawing: U8, marked_photo: U8, word: list[int]
) -> None:
    for original, marked in ((drawing, marked_drawing), (photo, marked_photo)):
        leak = _jpeg(_rotate(marked, 3.0, 0.8), 75)
        reading = extract_image(_gray(leak), original, KEY, M)
        assert _errors(reading, word) == 0
        assert reading.read >= 750
        found = [re.search(r"scale ([\d.]+), rotation (-?[\d.]+) deg", n) for n in reading.notes]
        scale, degrees = next(map(float, m.groups()) for m in found if m)
        assert abs(scale - 0.8) < 0.01 and abs(degrees - 3.0) < 0.1


def test_half_size_and_enlarged_copies_resynchronise(
    drawing: U8, marked_drawing: U8, word: list[int]
) -> None:
    for factor in (0.5, 1.5):
        reading = extract_image(_resize(marked_drawing, factor), drawing, KEY, M)
        assert _errors(reading, word) == 0
        assert reading.read >= 750


def test_half_cropped_figure_reads_kept_bits_erases_rest(
    drawing: U8, marked_drawing: U8, word: list[int]
) -> None:
    layout = _layout(KEY, *drawing.shape, M)
    for keep_cols in (layout.cols // 2, layout.cols // 4):
        width = keep_cols * layout.block
        reading = extract_image(marked_drawing[:, :width], drawing, KEY, M)
        assert _errors(reading, word) == 0
        kept = set(layout.position[:, : keep_cols - 1].ravel().tolist())
        lost = set(range(M)) - set(layout.position[:, :keep_cols].ravel().tolist())
        # A position none of whose blocks survived is an erasure, never a guess.
        assert all(reading.bits[i] is None for i in lost)
        assert reading.read <= len(kept) + layout.rows
    half = extract_image(marked_drawing[:, : drawing.shape[1] // 2], drawing, KEY, M)
    assert half.read >= 750  # each position is spread over the whole figure


def test_white_background_line_drawing_carries_codeword(
    drawing: U8, marked_drawing: U8, word: list[int], drawing_rotated_jpeg50: Reading
) -> None:
    # Pure white cannot go up: the background is pulled to 252 and modulated around it.
    background = cv2.erode((drawing == 255).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    levels = marked_drawing[background]
    assert levels.min() >= 248 and 250.0 < float(levels.mean()) < 254.0
    assert float(levels.std()) > 1.0  # the mark is there, not clipped away
    assert _errors(drawing_rotated_jpeg50, word) == 0
    assert drawing_rotated_jpeg50.read >= 750


def test_blurred_and_noisy_copy_reads_without_errors(
    photo: U8, marked_photo: U8, word: list[int]
) -> None:
    leak = _noise(_blur(marked_photo, 1.0), 5.0)
    reading = extract_image(_gray(leak), photo, KEY, M)
    assert _errors(reading, word) == 0
    assert reading.read >= 750


def test_heavily_degraded_copy_erases_rather_than_guesses(
    drawing: U8, marked_drawing: U8, word: list[int]
) -> None:
    leak = _jpeg(_noise(_blur(_rotate(marked_drawing, 2.0, 0.6), 1.5), 8.0), 30)
    reading = extract_image(leak, drawing, KEY, M)
    assert _errors(reading, word) == 0
    assert reading.read < M  # damage shows as erasures


def test_averaged_copies_read_as_erasures_not_errors(drawing: U8, word: list[int]) -> None:
    words = [word, _bits(9), _bits(10)]
    copies = [embed_image(drawing, w, KEY).astype(np.float32) for w in words]
    stack = np.asarray(words)
    for n in (2, 3):
        average = np.rint(sum(copies[:n]) / n).astype(np.uint8)
        reading = extract_image(_jpeg(average, 75), drawing, KEY, M)
        agree = np.all(stack[:n] == stack[0], axis=0)
        majority = (stack[:n].sum(axis=0) * 2 > n).astype(int)
        read = np.array([b is not None for b in reading.bits])
        values = np.array([-1 if b is None else b for b in reading.bits])
        # Where the colluders agree the copy must show their bit (marking assumption).
        assert np.all(values[agree & read] == stack[0][agree & read])
        assert read[agree].mean() > 0.9
        # Where they differ, a 2-copy average has no evidence either way: erasures.
        # 3 copies leave a third of the mark for the majority: majority or erasure.
        if n == 2:
            assert read[~agree].sum() <= 2
        assert np.all(values[~agree & read] == majority[~agree & read])


def test_jpeg50_rotated_leak_accuses_its_recipient(drawing: U8) -> None:
    params = code_parameters(c=3, n=10_000, epsilon=1e-3)
    code = TracingCode(hashlib.sha256(b"object secret").digest(), params)
    bits = unpack(code.codeword(7), params.length)
    leak = _jpeg(_rotate(embed_image(drawing, bits, KEY), 2.0, 0.9), 50)
    reading = extract_image(leak, drawing, KEY, params.length)
    result = code.accuse(list(reading.bits), recipients=range(200))
    assert [j for j, _ in result.accused] == [7]


def test_unrelated_image_matches_nothing(drawing: U8, photo: U8, marked_drawing: U8) -> None:
    other = _line_drawing(seed=42)
    reading = extract_image(other, drawing, KEY, M)
    assert reading.read == 0
    embedder = ImageEmbedder()
    content = _png(drawing)
    assert embedder.locate([other, _gray(photo)], content, "image/png", "fig.png") < 0.3
    assert embedder.locate([marked_drawing], content, "image/png", "fig.png") > 0.8


# --- the Embedder ----------------------------------------------------------------------------


def _png(img: U8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


MARKING = Marking("SECRET//REL TO AUS, GBR, USA", "J. Smith", "GBR", 3, "obj-17")


@pytest.mark.parametrize(
    ("media_type", "filename", "pil_format"),
    [
        ("image/png", "figure.png", "PNG"),
        ("image/jpeg", "photo.jpg", "JPEG"),
        ("image/tiff", "scan.tif", "TIFF"),
    ],
)
def test_embedder_copy_keeps_format_and_colour_and_traces(
    photo: U8, word: list[int], media_type: str, filename: str, pil_format: str
) -> None:
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format=pil_format)
    content = buf.getvalue()
    embedder = ImageEmbedder()
    assert embedder.accepts(media_type, filename)
    copy = embedder.embed(content, media_type, filename, word, KEY, MARKING)
    assert copy.media_type == media_type and copy.pages == 1 and copy.positions == M
    opened = Image.open(io.BytesIO(copy.data))
    assert opened.format == pil_format and opened.mode == "RGB"
    leaked = _jpeg(np.asarray(opened.convert("RGB")), 50)
    reading = embedder.extract([_gray(leaked)], content, media_type, filename, KEY, M)
    assert _errors(reading, word) == 0
    assert reading.read >= 750


def test_embedder_keeps_transparency_untouched(drawing: U8, word: list[int]) -> None:
    rgba = np.dstack([np.repeat(drawing[:, :, None], 3, axis=2), drawing // 2 + 100])
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    copy = ImageEmbedder().embed(buf.getvalue(), "image/png", "f.png", word, KEY, MARKING)
    opened = Image.open(io.BytesIO(copy.data))
    assert opened.mode == "RGBA"
    assert "J. Smith" in opened.info["Description"]
    assert np.array_equal(np.asarray(opened)[..., 3], rgba[..., 3])


def test_embedder_refuses_what_is_not_an_image() -> None:
    embedder = ImageEmbedder()
    assert not embedder.accepts("application/pdf", "report.pdf")
    with pytest.raises(InvalidInput):
        embedder.embed(b"%PDF-1.7 not an image", "image/png", "x.png", [0] * M, KEY, MARKING)


# --- the off-the-shelf baseline --------------------------------------------------------------


def test_baseline_harness_reads_its_own_unattacked_mark(photo: U8, word: list[int]) -> None:
    # The harness drives the package correctly: on a photo it reads its own clean mark.
    marked = embed_baseline(photo, word, "dwtDctSvd")
    assert bit_errors(extract_baseline(marked, M, "dwtDctSvd"), word) == (0, M)


@pytest.mark.parametrize("method", ["dwtDct", "dwtDctSvd"])
def test_baseline_loses_bits_on_line_drawing_after_jpeg50_and_rotation(
    drawing: U8, word: list[int], drawing_rotated_jpeg50: Reading, method: str
) -> None:
    marked = embed_baseline(drawing, word, method)
    errors, read = bit_errors(extract_baseline(_jpeg(_rotate(marked, 3.0), 50), M, method), word)
    assert read == M  # it never erases: every damaged bit is a guess
    assert errors > 0.3 * M  # about as good as coin tosses
    # Ours, same figure, same attack: no wrong bit and enough bits to accuse.
    assert _errors(drawing_rotated_jpeg50, word) == 0
    assert drawing_rotated_jpeg50.read >= MIN_BITS
