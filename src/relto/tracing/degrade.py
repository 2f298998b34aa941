"""Attacks on page and figure images, for tests and benchmarks. Pure numpy/OpenCV, no I/O.

What a leaker does to a marked copy before it surfaces: prints and scans it,
photographs the screen or the paper, crops it, takes a screenshot, or combines the
copies of several recipients (collusion). Every function takes 8-bit grayscale
images (2-D ``numpy.uint8`` arrays, as ``relto.tracing.embedding.Page``) and a
``numpy.random.Generator``, never changes its input, and returns a new image. All
randomness comes from the generator, so a seeded generator repeats an attack exactly.
Colour images (HxWx3, OpenCV's BGR order) are accepted too, for the benchmark's
baseline watermark whose mark lives in chroma; JPEG then subsamples chroma (4:2:0)
as cameras and scanners do. :func:`majority` and :func:`text_bands` are grey only.

Each channel draws its parameters from the ranges stated on its parameter class
(:class:`PrintScan`, :class:`PhonePhoto`, :class:`Screenshot`); ``draw`` exposes the
drawn values so that tests and benchmarks can say what was done. The ranges follow
issue 17: print-and-scan at 150–300 dpi, ±2° rotation, ±3 % scale, blur, noise,
JPEG quality 50; a phone photo with perspective and uneven light; half a page;
collusion of 2 and 3 copies by averaging, majority vote, interleaving pages or
text lines.

:data:`ATTACKS_ON_PAGES` names the pipelines the benchmark runs (``bench/tracing.py``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "ATTACKS_ON_PAGES",
    "CROP_REGIONS",
    "PhonePhoto",
    "Pipeline",
    "PrintScan",
    "Screenshot",
    "average",
    "crop",
    "interleave_lines",
    "interleave_pages",
    "jpeg",
    "majority",
    "median",
    "phone_photo",
    "print_scan",
    "screenshot",
    "text_bands",
]

Image = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]  # pixel planes
Matrix = npt.NDArray[np.float64]  # geometric transforms
Region = Literal["top", "bottom", "left", "right", "centre"]

#: The regions :func:`crop` chooses from.
CROP_REGIONS: tuple[Region, ...] = ("top", "bottom", "left", "right", "centre")

WHITE = 255


def _check(img: Image, *, colour: bool = True) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise TypeError("an image is a numpy.uint8 array")
    if not (img.ndim == 2 or (colour and img.ndim == 3 and img.shape[2] == 3)):
        expected = "HxW (grey) or HxWx3 (BGR)" if colour else "HxW (grey)"
        raise TypeError(f"an image here is {expected}")
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError("an image is at least 8x8 pixels")


def _planes(img: Image, height: int, width: int) -> tuple[int, ...]:
    """The shape of a (height, width) image with ``img``'s channels."""
    return (height, width, *img.shape[2:])


def _spread(field: Floats, img: Image) -> Floats:
    """A (height, width) field shaped to multiply or add to ``img``'s channels."""
    return field if img.ndim == 2 else field[:, :, None]


def _border(level: float) -> tuple[float, float, float, float]:
    return (level, level, level, 0.0)


def _grey(img: Image) -> Image:
    if img.ndim == 2:
        return img
    return cast(Image, cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))


def _to_uint8(values: npt.NDArray[np.floating[Any]]) -> Image:
    return cast(Image, np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _blur(values: Floats, sigma: float) -> Floats:
    if sigma <= 0.0:
        return values
    return cast(Floats, cv2.GaussianBlur(values, (0, 0), sigmaX=sigma, sigmaY=sigma))


def _resize(img: Image, width: int, height: int) -> Image:
    shrinking = width * height < img.shape[0] * img.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cast(Image, cv2.resize(img, (width, height), interpolation=interpolation))


def jpeg(img: Image, quality: int) -> Image:
    """``img`` encoded as a baseline JPEG at ``quality`` (1–100) and decoded again."""
    _check(img)
    if not 1 <= quality <= 100:
        raise ValueError("JPEG quality is 1..100")
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any 2-D uint8 array
        raise RuntimeError("JPEG encoding failed")
    flag = cv2.IMREAD_GRAYSCALE if img.ndim == 2 else cv2.IMREAD_COLOR
    return cast(Image, cv2.imdecode(data, flag))


def _png(img: Image) -> Image:
    ok, data = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    flag = cv2.IMREAD_GRAYSCALE if img.ndim == 2 else cv2.IMREAD_COLOR
    return cast(Image, cv2.imdecode(data, flag))


def _low_frequency(rng: np.random.Generator, height: int, width: int, cell: int) -> Floats:
    """Smooth noise with unit-ish amplitude and features about ``cell`` pixels wide."""
    small = rng.standard_normal(
        (max(2, height // cell + 2), max(2, width // cell + 2)), dtype=np.float32
    )
    return cast(Floats, cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC))


# -- print and scan ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrintScan:
    """One print-and-scan pass; :meth:`draw` takes each field from the range beside it.

    The page is printed at its rendering resolution (``source_dpi``) and scanned at
    ``scan_dpi``. The printer scales the content by ``scale`` and the sheet lies on the
    bed rotated by ``angle`` degrees and shifted by ``shift_x``/``shift_y`` (fractions
    of the page); the scanner sees a page-sized window at ``scan_dpi``, white where the
    sheet does not cover it (the lid).
    """

    source_dpi: float
    scan_dpi: float  # 150..300
    angle: float  # -2..2 degrees, counter-clockwise
    scale: float  # 0.97..1.03
    shift_x: float  # -0.01..0.01 of the page width
    shift_y: float  # -0.01..0.01 of the page height
    dot_gain_mm: float  # 0.02..0.06 mm gaussian sigma: toner spread (at print resolution)
    toner_noise: float  # 0.05..0.2: relative variation of ink density per printed pixel
    optics_px: float  # 0.3..0.8 scan pixels gaussian sigma: the scanner's optics
    paper_noise: float  # 1..4 grey levels of smooth paper texture (features ~1 mm)
    sensor_noise: float  # 1.5..4 grey levels of white sensor noise
    gamma: float  # 0.8..1.25
    black: float  # 0..30: the darkest level the scan shows
    white: float  # 225..255: the paper's level in the scan
    quality: int = 50  # JPEG quality of the scan file (issue 17: 50)

    @classmethod
    def draw(cls, rng: np.random.Generator, source_dpi: float) -> PrintScan:
        if not source_dpi > 0:
            raise ValueError("source_dpi must be positive")
        return cls(
            source_dpi=float(source_dpi),
            scan_dpi=float(rng.uniform(150.0, 300.0)),
            angle=float(rng.uniform(-2.0, 2.0)),
            scale=float(rng.uniform(0.97, 1.03)),
            shift_x=float(rng.uniform(-0.01, 0.01)),
            shift_y=float(rng.uniform(-0.01, 0.01)),
            dot_gain_mm=float(rng.uniform(0.02, 0.06)),
            toner_noise=float(rng.uniform(0.05, 0.2)),
            optics_px=float(rng.uniform(0.3, 0.8)),
            paper_noise=float(rng.uniform(1.0, 4.0)),
            sensor_noise=float(rng.uniform(1.5, 4.0)),
            gamma=float(rng.uniform(0.8, 1.25)),
            black=float(rng.uniform(0.0, 30.0)),
            white=float(rng.uniform(225.0, 255.0)),
        )

    def output_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """The scan's (height, width) for a page of ``shape`` pixels at ``source_dpi``."""
        ratio = self.scan_dpi / self.source_dpi
        return max(8, round(shape[0] * ratio)), max(8, round(shape[1] * ratio))

    def matrix(self, shape: tuple[int, int]) -> Matrix:
        """The 2x3 affine map from source pixels to scan pixels."""
        height, width = self.output_shape(shape)
        ratio = self.scan_dpi / self.source_dpi * self.scale
        centre = (shape[1] / 2.0, shape[0] / 2.0)
        rotation = cv2.getRotationMatrix2D(centre, self.angle, ratio)
        # move the page centre to the scan window's centre, plus the placement shift
        rotation[0, 2] += width / 2.0 - centre[0] + self.shift_x * width
        rotation[1, 2] += height / 2.0 - centre[1] + self.shift_y * height
        return cast(Matrix, rotation)

    def apply(self, img: Image, rng: np.random.Generator) -> Image:
        _check(img)
        shape = (int(img.shape[0]), int(img.shape[1]))
        height, width = self.output_shape(shape)
        # print: toner spread at the print resolution
        printed = _blur(img.astype(np.float32), self.dot_gain_mm * self.source_dpi / 25.4)
        density = 1.0 + self.toner_noise * rng.standard_normal(img.shape, dtype=np.float32)
        printed = WHITE - (WHITE - printed) * np.clip(density, 0.0, None)
        # anti-aliasing before the scanner samples more coarsely than the print
        ratio = self.scan_dpi / self.source_dpi * self.scale
        if ratio < 1.0:
            printed = _blur(printed, 0.5 * math.sqrt(1.0 / ratio**2 - 1.0))
        scanned = cast(
            Floats,
            cv2.warpAffine(
                printed,
                self.matrix(shape),
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=_border(WHITE),
            ),
        )
        scanned = _blur(scanned, self.optics_px)
        cell = max(2, round(self.scan_dpi / 25.4))  # paper fibres ~1 mm
        paper = self.paper_noise * _low_frequency(rng, height, width, cell)
        scanned = scanned + _spread(paper, img)
        scanned = scanned + self.sensor_noise * rng.standard_normal(
            _planes(img, height, width), dtype=np.float32
        )
        levels = np.clip(scanned, 0.0, 255.0) / 255.0
        toned = self.black + (self.white - self.black) * levels**self.gamma
        return jpeg(_to_uint8(toned), self.quality)


def print_scan(img: Image, rng: np.random.Generator, *, source_dpi: float) -> Image:
    """Print ``img`` (rendered at ``source_dpi``) and scan it back (:class:`PrintScan`)."""
    return PrintScan.draw(rng, source_dpi).apply(img, rng)


# -- phone photo ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhonePhoto:
    """A phone photo of the page; :meth:`draw` takes each field from the range beside it.

    The page spans ``page_width`` photo pixels (a 12 MP camera with the page filling
    a third to four fifths of the frame, or a photo downsized by a messenger), lies on
    a desk of grey level ``background`` with margins ``margin`` (fraction of the page)
    around it, and is seen in perspective: each page corner moves by up to 4 % of the
    page's width and height (``corners``, fractions, clockwise from top left).
    """

    page_width: int  # 1000..2400 photo pixels across the page
    margin: float  # 0.03..0.10 of the page on every side
    corners: tuple[tuple[float, float], ...]  # 4 x (dx, dy), each -0.04..0.04
    background: float  # 40..160: the desk's grey level
    light_gradient: float  # 0.1..0.4: light falls by this much across the frame
    light_direction: float  # 0..2pi: the direction the light falls off in
    vignette: float  # 0.1..0.35: the corners are this much darker than the centre
    exposure: float  # 0.85..1.05
    blur_px: float  # 0.6..1.6 photo pixels gaussian sigma (focus, shake)
    noise: float  # 2..6 grey levels of sensor noise
    quality: int  # 60..90 JPEG quality (camera or messenger)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> PhonePhoto:
        corners = tuple(
            (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04))) for _ in range(4)
        )
        return cls(
            page_width=int(rng.integers(1000, 2401)),
            margin=float(rng.uniform(0.03, 0.10)),
            corners=corners,
            background=float(rng.uniform(40.0, 160.0)),
            light_gradient=float(rng.uniform(0.1, 0.4)),
            light_direction=float(rng.uniform(0.0, 2.0 * math.pi)),
            vignette=float(rng.uniform(0.1, 0.35)),
            exposure=float(rng.uniform(0.85, 1.05)),
            blur_px=float(rng.uniform(0.6, 1.6)),
            noise=float(rng.uniform(2.0, 6.0)),
            quality=int(rng.integers(60, 91)),
        )

    def geometry(self, shape: tuple[int, int]) -> tuple[tuple[int, int], Matrix]:
        """The photo's (height, width) and the homography from page to photo pixels."""
        height, width = shape
        page_w = float(self.page_width)
        page_h = height * page_w / width
        out_w = round(page_w * (1.0 + 2.0 * self.margin))
        out_h = round(page_h * (1.0 + 2.0 * self.margin))
        x0, y0 = self.margin * page_w, self.margin * page_h
        ideal = [(x0, y0), (x0 + page_w, y0), (x0 + page_w, y0 + page_h), (x0, y0 + page_h)]
        moved = [
            (x + dx * page_w, y + dy * page_h)
            for (x, y), (dx, dy) in zip(ideal, self.corners, strict=True)
        ]
        src = np.array([(0, 0), (width, 0), (width, height), (0, height)], np.float32)
        dst = np.array(moved, np.float32)
        homography = cv2.getPerspectiveTransform(src, dst)
        return (out_h, out_w), cast(Matrix, homography)

    def light(self, shape: tuple[int, int]) -> Floats:
        """The illumination over a photo of ``shape``: a linear fall-off times a vignette."""
        out_h, out_w = shape
        # smooth, so computed on a coarse grid (every 8th pixel) and interpolated
        rows, cols = max(2, out_h // 8), max(2, out_w // 8)
        v, u = np.meshgrid(
            np.linspace(-0.5, 0.5, rows), np.linspace(-0.5, 0.5, cols), indexing="ij"
        )
        along = u * math.cos(self.light_direction) + v * math.sin(self.light_direction)
        light = self.exposure * (1.0 - self.light_gradient * (along + 0.5))
        light = light * (1.0 - self.vignette * 2.0 * (u * u + v * v))
        coarse = light.astype(np.float32)
        return cast(Floats, cv2.resize(coarse, (out_w, out_h), interpolation=cv2.INTER_LINEAR))

    def apply(self, img: Image, rng: np.random.Generator) -> Image:
        _check(img)
        shape = (int(img.shape[0]), int(img.shape[1]))
        (out_h, out_w), homography = self.geometry(shape)
        source = img.astype(np.float32)
        shrink = self.page_width / shape[1]
        if shrink < 1.0:  # anti-aliasing before the camera samples more coarsely
            source = _blur(source, 0.5 * math.sqrt(1.0 / shrink**2 - 1.0))
        photo = cast(
            Floats,
            cv2.warpPerspective(
                source,
                homography,
                (out_w, out_h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=_border(self.background),
            ),
        )
        photo = _blur(photo * _spread(self.light((out_h, out_w)), img), self.blur_px)
        noise = rng.standard_normal(_planes(img, out_h, out_w), dtype=np.float32)
        photo = photo + self.noise * noise
        return jpeg(_to_uint8(photo), self.quality)


def phone_photo(img: Image, rng: np.random.Generator) -> Image:
    """A phone photo of ``img`` (:class:`PhonePhoto`)."""
    return PhonePhoto.draw(rng).apply(img, rng)


# -- crop, screenshot -------------------------------------------------------------------


def crop(
    img: Image,
    rng: np.random.Generator,
    keep: float = 0.5,
    *,
    region: Region | None = None,
) -> Image:
    """``keep`` of the page's area: its top, bottom, left or right part, or a centred window.

    The region is drawn uniformly from :data:`CROP_REGIONS` unless given. A centred
    window keeps ``sqrt(keep)`` of the height and of the width.
    """
    _check(img)
    if not 0.0 < keep <= 1.0:
        raise ValueError("keep must be in (0, 1]")
    chosen = region if region is not None else CROP_REGIONS[int(rng.integers(len(CROP_REGIONS)))]
    height, width = int(img.shape[0]), int(img.shape[1])
    rows, cols = max(1, round(height * keep)), max(1, round(width * keep))
    if chosen == "top":
        out = img[:rows, :]
    elif chosen == "bottom":
        out = img[height - rows :, :]
    elif chosen == "left":
        out = img[:, :cols]
    elif chosen == "right":
        out = img[:, width - cols :]
    elif chosen == "centre":
        side = math.sqrt(keep)
        rows, cols = max(1, round(height * side)), max(1, round(width * side))
        top, left = (height - rows) // 2, (width - cols) // 2
        out = img[top : top + rows, left : left + cols]
    else:
        raise ValueError(f"unknown crop region {chosen!r}")
    return out.copy()


@dataclass(frozen=True, slots=True)
class Screenshot:
    """A screenshot of the page in a viewer; :meth:`draw` takes each field from its range.

    The page spans ``page_width`` screen pixels (A4 at 100 % zoom on a 96 dpi screen is
    794 pixels; 1600 is a 4K screen or a zoomed view), is smoothed slightly by the
    viewer's resampling, and is saved losslessly as PNG.
    """

    page_width: int  # 700..1600 screen pixels across the page
    blur_px: float  # 0.2..0.6 screen pixels gaussian sigma

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Screenshot:
        return cls(
            page_width=int(rng.integers(700, 1601)),
            blur_px=float(rng.uniform(0.2, 0.6)),
        )

    def output_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return max(8, round(shape[0] * self.page_width / shape[1])), self.page_width

    def apply(self, img: Image, rng: np.random.Generator) -> Image:
        _check(img)
        height, width = self.output_shape((int(img.shape[0]), int(img.shape[1])))
        shown = _resize(img, width, height).astype(np.float32)
        return _png(_to_uint8(_blur(shown, self.blur_px)))


def screenshot(img: Image, rng: np.random.Generator) -> Image:
    """A screenshot of ``img`` shown in a viewer (:class:`Screenshot`)."""
    return Screenshot.draw(rng).apply(img, rng)


# -- collusion --------------------------------------------------------------------------


def _same_shape(imgs: Sequence[Image]) -> tuple[int, int]:
    if not imgs:
        raise ValueError("collusion needs at least one copy")
    for img in imgs:
        _check(img)
    shape = (int(imgs[0].shape[0]), int(imgs[0].shape[1]))
    if any(img.shape != imgs[0].shape for img in imgs):
        raise ValueError("colluders' copies of a page must have the same size")
    return shape


def average(imgs: Sequence[Image]) -> Image:
    """The pixel-wise mean of the copies of one page."""
    _same_shape(imgs)
    return _to_uint8(np.mean(np.stack(imgs).astype(np.float64), axis=0))


def median(imgs: Sequence[Image]) -> Image:
    """The pixel-wise median of the copies' grey levels (for 3 copies: the middle one).

    The grey-level majority vote, for figures, where binarising would destroy the image.
    """
    _same_shape(imgs)
    return _to_uint8(np.median(np.stack(imgs), axis=0))


def _binarise(img: Image) -> Image:
    _check(img, colour=False)
    if int(img.min()) == int(img.max()):
        return np.full_like(img, WHITE if int(img[0, 0]) >= 128 else 0)
    _, out = cv2.threshold(img, 0, WHITE, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cast(Image, out)


def majority(imgs: Sequence[Image]) -> Image:
    """The pixel-wise majority of the binarised copies (Otsu threshold per copy).

    Ink (0) where more than half the copies have ink, paper (255) where more than half
    have none; for an even number of copies a tie is the median of 0 and 255, mid-grey
    (128).
    """
    _same_shape(imgs)
    votes = np.zeros(imgs[0].shape, np.int32)
    for img in imgs:
        votes += _binarise(img) == 0
    out = np.full(imgs[0].shape, 128, np.uint8)
    out[2 * votes > len(imgs)] = 0
    out[2 * votes < len(imgs)] = WHITE
    return out


def interleave_pages(
    copies_pages: Sequence[Sequence[Image]], rng: np.random.Generator
) -> list[Image]:
    """Page k of the result is page k of a copy chosen at random (copies: lists of pages)."""
    if not copies_pages:
        raise ValueError("collusion needs at least one copy")
    count = len(copies_pages[0])
    if any(len(pages) != count for pages in copies_pages):
        raise ValueError("colluders' copies differ in page count")
    out: list[Image] = []
    for k in range(count):
        page = copies_pages[int(rng.integers(len(copies_pages)))][k]
        _check(page)
        out.append(page.copy())
    return out


def text_bands(img: Image, *, ink: int = 160, min_ink: int = 2) -> list[tuple[int, int]]:
    """The text-line bands of a page as [start, stop) row ranges, from its row projection.

    A row is inked when at least ``min_ink`` of its pixels are darker than ``ink``;
    a band is a maximal run of inked rows.
    """
    _check(img, colour=False)
    profile = (img < ink).sum(axis=1) >= min_ink
    bands: list[tuple[int, int]] = []
    start: int | None = None
    for row, inked in enumerate(profile.tolist()):
        if inked and start is None:
            start = row
        elif not inked and start is not None:
            bands.append((start, row))
            start = None
    if start is not None:
        bands.append((start, len(profile)))
    return bands


def interleave_lines(imgs: Sequence[Image], rng: np.random.Generator) -> Image:
    """Each text line of the page from a copy chosen at random.

    The bands come from the row projection of the copies' mean (so that a line shifted
    by a pixel or two in one copy is still one band); the page is cut in the middle of
    each gap between bands and every strip is taken from a random copy.
    """
    height, _ = _same_shape(imgs)
    bands = text_bands(_grey(average(imgs)))
    cuts = [0]
    for (_, stop), (start, _) in itertools.pairwise(bands):
        cuts.append((stop + start) // 2)
    cuts.append(height)
    out = np.empty_like(imgs[0])
    for top, bottom in itertools.pairwise(cuts):
        source = imgs[int(rng.integers(len(imgs)))]
        out[top:bottom] = source[top:bottom]
    return out


# -- pipelines for the benchmark --------------------------------------------------------

#: A step applied to every page: (page, rng, the page's rendering dpi) -> page.
PageStep = Callable[[Image, np.random.Generator, float], Image]
#: Combines the colluders' copies (each a list of pages) into one list of pages.
Collusion = Callable[[Sequence[Sequence[Image]], np.random.Generator], list[Image]]


def _single(copies: Sequence[Sequence[Image]], rng: np.random.Generator) -> list[Image]:
    return [page.copy() for page in copies[0]]


def _pagewise(
    combine: Callable[[Sequence[Image], np.random.Generator], Image],
) -> Collusion:
    def collude(copies: Sequence[Sequence[Image]], rng: np.random.Generator) -> list[Image]:
        count = len(copies[0])
        if any(len(pages) != count for pages in copies):
            raise ValueError("colluders' copies differ in page count")
        return [combine([pages[k] for pages in copies], rng) for k in range(count)]

    return collude


def _print_scan_step(img: Image, rng: np.random.Generator, dpi: float) -> Image:
    return print_scan(img, rng, source_dpi=dpi)


def _phone_step(img: Image, rng: np.random.Generator, dpi: float) -> Image:
    return phone_photo(img, rng)


def _crop_step(img: Image, rng: np.random.Generator, dpi: float) -> Image:
    return crop(img, rng, 0.5)


def _screenshot_step(img: Image, rng: np.random.Generator, dpi: float) -> Image:
    return screenshot(img, rng)


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A named attack: combine ``colluders`` copies, then degrade every page in turn."""

    name: str
    colluders: int
    collude: Collusion
    steps: tuple[PageStep, ...] = ()

    def __call__(
        self,
        copies: Sequence[Sequence[Image]],
        rng: np.random.Generator,
        *,
        source_dpi: float,
    ) -> list[Image]:
        """The leaked pages from the colluders' copies (each a list of page images)."""
        if len(copies) != self.colluders:
            raise ValueError(f"{self.name} combines {self.colluders} copies, got {len(copies)}")
        pages = self.collude(copies, rng)
        for step in self.steps:
            pages = [step(page, rng, source_dpi) for page in pages]
        return pages


def _registry() -> dict[str, Pipeline]:
    single = {
        "none": (),
        "print-scan": (_print_scan_step,),
        "phone-photo": (_phone_step,),
        "crop-half": (_crop_step,),
        "screenshot": (_screenshot_step,),
        "crop-half+print-scan": (_crop_step, _print_scan_step),
    }
    pipelines = [Pipeline(name, 1, _single, steps) for name, steps in single.items()]
    collusions: dict[str, Collusion] = {
        "average": _pagewise(lambda imgs, rng: average(imgs)),
        "majority": _pagewise(lambda imgs, rng: majority(imgs)),
        "median": _pagewise(lambda imgs, rng: median(imgs)),
        "interleave-pages": interleave_pages,
        "interleave-lines": _pagewise(interleave_lines),
    }
    for name, collude in collusions.items():
        for k in (2, 3):
            pipelines.append(Pipeline(f"{name}-{k}", k, collude))
            pipelines.append(Pipeline(f"{name}-{k}+print-scan", k, collude, (_print_scan_step,)))
    return {p.name: p for p in pipelines}


#: The attacks by name, in the order the benchmark reports them: single copies through
#: each channel, then each collusion of 2 and 3 copies, clean and then printed and scanned.
ATTACKS_ON_PAGES: dict[str, Pipeline] = _registry()
