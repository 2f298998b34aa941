"""The reader: find which reference page a leaked page is, register it, measure.

Registration is two-stage. SIFT keypoints on a 72 dpi rendering, ratio-tested
matches and a RANSAC homography say which reference page a leaked page shows and
roughly where (any rotation, scale, translation, perspective, partial pages). ECC
(OpenCV ``findTransformECC``, homography model) then refines that to a fraction of
a pixel at 100 dpi. Measurements are made at 200 dpi in the reference frame, as ink
centroids inside each line's and word's reference box, and always against the
unmoved neighbours, so a registration error that varies smoothly across the page
cancels.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from relto.tracing._doc.layout import BODY_BOTTOM, BODY_TOP, PAGE_H, PAGE_W, Layout, Line
from relto.tracing._doc.pdf import write_pdf
from relto.tracing._doc.slots import Slot

if TYPE_CHECKING:
    import numpy.typing as npt

    Gray = npt.NDArray[np.uint8]
    Floats = npt.NDArray[np.float64]
    Matrix = npt.NDArray[np.float64]

__all__ = ["Reference", "Registered", "measure", "reference", "register"]

MEASURE_DPI = 200.0
REF_DPI = 400.0
INK_FLOOR = 24.0  # grey levels of ink ignored (paper texture, noise)
ID_DPI = 72.0
ECC_DPI = 100.0
PX = MEASURE_DPI / 72.0  # measurement pixels per point

MIN_INLIERS = 20  # RANSAC inliers for a reference page to be a candidate
MIN_AGREEMENT = 0.3  # word-blob correlation for a leaked page to be this reference page
GOOD_AGREEMENT = 0.5  # ... at which no other scale guess is tried
ASCENT = 0.78  # of the font size, above the baseline, plus slack
DESCENT = 0.24
BOX_SLACK = 1.2  # points around a line's glyph band
MASS_LO, MASS_HI = 0.55, 1.8  # a box's ink against the page's typical ratio


def render_gray(pdf: bytes, dpi: float, only: int | None = None) -> list[Gray]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        out = []
        for i in range(len(doc)) if only is None else [only]:
            page = doc[i]
            bitmap = page.render(scale=dpi / 72.0, grayscale=True)
            arr = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
            bitmap.close()
            page.close()
            out.append(arr.reshape(arr.shape[0], arr.shape[1], -1)[:, :, 0].copy())
        return out
    finally:
        doc.close()


def _ink(gray: Gray) -> npt.NDArray[np.float32]:
    """Ink per pixel: how much darker than the local paper, with a small floor cut."""
    img = gray.astype(np.float32)
    smooth = cv2.GaussianBlur(img, (0, 0), 1.2)
    paper = cv2.dilate(smooth, np.ones((31, 31), np.uint8))
    paper = cv2.GaussianBlur(paper, (0, 0), 8.0)
    ink = paper - img - INK_FLOOR
    np.maximum(ink, 0.0, out=ink)
    return ink


@dataclass(frozen=True)
class _Box:
    mass: float  # ink per square point
    cx: float  # centroid, points
    cy: float
    ok: bool  # wholly inside the leaked area, with ink


_NO_BOX = _Box(0.0, 0.0, 0.0, False)


class _Ink:
    """Ink of one page image at ``dpi``, measured in boxes given in points."""

    def __init__(self, ink: npt.NDArray[np.float32], valid: Gray | None, dpi: float) -> None:
        self.ink = ink
        self.valid = valid
        self.k = dpi / 72.0

    def box(self, x0: float, y0: float, x1: float, y1: float) -> _Box:
        k = self.k
        h, w = self.ink.shape
        a, b = int(np.floor(x0 * k)), int(np.ceil(x1 * k))
        c, d = int(np.floor(y0 * k)), int(np.ceil(y1 * k))
        if a < 0 or c < 0 or b > w or d > h or b <= a or d <= c:
            return _NO_BOX
        sub = self.ink[c:d, a:b].astype(np.float64)
        mass = float(sub.sum())
        if mass <= 1e-6:
            return _NO_BOX
        cx = float(sub.sum(axis=0) @ (np.arange(a, b) + 0.5)) / mass / k
        cy = float(sub.sum(axis=1) @ (np.arange(c, d) + 0.5)) / mass / k
        ok = self.valid is None or bool(self.valid[c:d, a:b].all())
        return _Box(mass / (k * k), cx, cy, ok)


def _boxes(layout: Layout, page: int) -> list[tuple[tuple[int, int | None], tuple[float, ...]]]:
    """Every line's and word's measuring box on a page, in points."""
    out: list[tuple[tuple[int, int | None], tuple[float, ...]]] = []
    for li, line in enumerate(layout.pages[page].lines):
        if not line.words:
            continue
        y0, y1 = _line_box(line)
        out.append(((li, None), (line.words[0].x0 - 1.5, y0, line.words[-1].x1 + 1.5, y1)))
        for wi in range(len(line.words)):
            x0, x1 = _word_box(line, wi)
            out.append(((li, wi), (x0, y0, x1, y1)))
    return out


@dataclass(frozen=True)
class _Detail:
    """One reference page at measuring resolution, for a page a leak was matched to."""

    image: Gray  # MEASURE_DPI
    template: npt.NDArray[np.float32]  # ECC_DPI
    boxes: dict[tuple[int, int | None], _Box]  # measured at REF_DPI


class Reference:
    """The unmoved rendering of one document, and what the reader needs of it: every
    page at ID_DPI with its SIFT features (one FLANN index over all pages), and the
    finer renderings only of pages a leak was matched to (made on first use)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._pdf = write_pdf(layout, {}, {}, None)
        self.small = render_gray(self._pdf, ID_DPI)
        sift = _sift()
        self._keypoints: list[tuple[float, float]] = []
        page_of: list[int] = []
        descriptors = []
        for n, img in enumerate(self.small):
            kp, des = _features(sift, img)
            if des is None:
                continue
            self._keypoints += [(float(k.pt[0]), float(k.pt[1])) for k in kp]
            page_of += [n] * len(kp)
            descriptors.append(des)
        self._page_of = np.array(page_of, np.int64)
        self._matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 48})
        if descriptors:
            self._matcher.add([np.vstack(descriptors)])
            self._matcher.train()
        self._details: dict[int, _Detail] = {}
        self._lock = threading.Lock()

    def knn(self, des: npt.NDArray[np.float32]) -> list[tuple[int, int, tuple[float, float]]]:
        """Ratio-tested matches: (query index, reference page, reference point)."""
        if not len(self._page_of):
            return []
        with self._lock:
            pairs = self._matcher.knnMatch(des, k=2)
        out = []
        for x in pairs:
            if len(x) == 2 and x[0].distance < 0.8 * x[1].distance:
                t = x[0].trainIdx
                out.append((x[0].queryIdx, int(self._page_of[t]), self._keypoints[t]))
        return out

    def detail(self, page: int) -> _Detail:
        with self._lock:
            hit = self._details.get(page)
        if hit is not None:
            return hit
        fine = render_gray(self._pdf, REF_DPI, page)[0]
        ink = 255.0 - fine.astype(np.float32) - INK_FLOOR
        np.maximum(ink, 0.0, out=ink)
        meter = _Ink(ink, None, REF_DPI)
        boxes = {key: meter.box(*box) for key, box in _boxes(self.layout, page)}
        image = _resize(fine, MEASURE_DPI / REF_DPI)
        template = _resize(fine, ECC_DPI / REF_DPI).astype(np.float32)
        hit = _Detail(image, template, boxes)
        with self._lock:
            self._details[page] = hit
        return hit


_SIFT_FEATURES = 2500


def _sift() -> cv2.Feature2D:
    sift: cv2.Feature2D = cv2.SIFT_create(nfeatures=_SIFT_FEATURES)  # type: ignore[attr-defined]
    return sift


def _u8(a: object) -> Gray:
    return np.asarray(a, dtype=np.uint8)


def reference(layout: Layout) -> Reference:
    return Reference(layout)


def _features(
    sift: cv2.Feature2D, img: Gray
) -> tuple[Sequence[cv2.KeyPoint], npt.NDArray[np.float32] | None]:
    kp, des = sift.detectAndCompute(img, None)
    return kp, None if des is None else np.asarray(des, dtype=np.float32)


def _resize(img: Gray, f: float) -> Gray:
    h, w = img.shape
    size = (max(1, round(w * f)), max(1, round(h * f)))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    return _u8(cv2.resize(img, size, interpolation=interp))


@dataclass(frozen=True)
class Registered:
    page: int  # reference page index
    agreement: float  # 0..1, see ``agreement``
    image: Gray  # the leaked page warped into the reference frame at MEASURE_DPI
    valid: Gray  # 1 where the leaked page covered the reference frame
    rotation: float  # degrees, for the notes
    scale: float  # leak pixels per reference point


def _match(ref: Reference, leak_small: Gray) -> list[tuple[int, int, Matrix]]:
    """Candidate reference pages for a small leak image, most RANSAC inliers first:
    (inliers, page, H leak small -> reference small)."""
    kp, des = _features(_sift(), leak_small)
    found: list[tuple[int, int, Matrix]] = []
    if des is None or len(kp) < 8:
        return found
    per_page: dict[int, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
    for q, page, pt in ref.knn(des):
        per_page.setdefault(page, []).append(((float(kp[q].pt[0]), float(kp[q].pt[1])), pt))
    for page, pairs in per_page.items():
        if len(pairs) < MIN_INLIERS:
            continue
        src = np.array([a for a, _ in pairs], np.float32).reshape(-1, 1, 2)
        dst = np.array([b for _, b in pairs], np.float32).reshape(-1, 1, 2)
        h, inl = cv2.findHomography(src, dst, cv2.RANSAC, 2.5, maxIters=4000, confidence=0.999)
        n = int(inl.sum()) if inl is not None else 0
        if h is not None and n >= MIN_INLIERS:
            hom = np.asarray(h, dtype=np.float64)
            if _plausible(hom):
                found.append((n, page, hom))
    found.sort(key=lambda c: -c[0])
    return found


def _words_only(img: Gray, dpi: float) -> npt.NDArray[np.float32]:
    """Ink smoothed to word blobs, minus its horizontal running mean: what remains is
    where words and gaps fall within lines, not merely where lines are (any text page
    has lines at a regular pitch)."""
    k = dpi / 72.0
    ink = cv2.GaussianBlur(255.0 - img.astype(np.float32), (0, 0), 1.0 * k)
    return ink - cv2.GaussianBlur(ink, (0, 0), sigmaX=8.0 * k, sigmaY=0.1)


def agreement(ref_img: Gray, warped: Gray, valid: Gray, dpi: float) -> float:
    """Correlation of word-blob images over the body area the leak covers: about 0.5 to
    0.9 for the right page, near 0 for another page or document."""
    a, b = _words_only(ref_img, dpi), _words_only(warped, dpi)
    keep = (valid > 0) & (_body_mask(valid.shape, dpi) > 0)
    if keep.sum() < 0.1 * keep.size:
        keep = valid > 0
    if keep.sum() < 1000:
        return 0.0
    x, y = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return max(0.0, float((x * y).sum()) / den) if den > 0 else 0.0


def _guesses(leak: Gray) -> list[float]:
    """Scales that bring the leak to ID_DPI if it spans the page's width or height."""
    h, w = leak.shape
    out: list[float] = []
    for f in (ID_DPI / 72.0 * PAGE_W / w, ID_DPI / 72.0 * PAGE_H / h, ID_DPI / 72.0 * PAGE_W / h):
        f = min(f, 1.0)
        if all(abs(f / g - 1) > 0.2 for g in out):
            out.append(f)
    return out


def _scale(s: float) -> Matrix:
    return np.diag([s, s, 1.0])


def identify(ref: Reference, leak: Gray) -> tuple[int, float, Matrix | None]:
    """(page, agreement 0..1, H: leak pixels -> reference pixels at MEASURE_DPI); page -1
    and H None when the leak is not a page of this reference."""
    best: tuple[int, float, Matrix | None] = (-1, 0.0, None)
    for f in _guesses(leak):
        small = _resize(leak, f)
        for _, page, h in _match(ref, small)[:3]:
            size = (ref.small[page].shape[1], ref.small[page].shape[0])
            warped = _u8(cv2.warpPerspective(small, h, size, borderValue=255))
            ones = np.ones(small.shape, np.uint8)
            valid = _u8(cv2.warpPerspective(ones, h, size, flags=cv2.INTER_NEAREST))
            score = agreement(ref.small[page], warped, valid, ID_DPI)
            if score > best[1]:
                best = (page, score, _scale(MEASURE_DPI / ID_DPI) @ h @ _scale(f))
        if best[1] >= GOOD_AGREEMENT:
            break
    if best[1] < MIN_AGREEMENT:
        return -1, best[1], None
    return best


def _plausible(h: Matrix) -> bool:
    """A homography a scan or photo can produce: not mirrored, not degenerate."""
    h = h / h[2, 2]
    det = float(np.linalg.det(h[:2, :2]))
    if det <= 0:
        return False
    sv = np.linalg.svd(h[:2, :2], compute_uv=False)
    return bool(sv[1] / sv[0] > 0.6 and 0.1 < np.sqrt(det) < 10 and abs(h[2, :2]).max() < 1e-2)


def _body_mask(shape: tuple[int, int], dpi: float) -> Gray:
    mask = np.zeros(shape, np.uint8)
    k = dpi / 72.0
    mask[round((BODY_TOP - 8) * k) : round((BODY_BOTTOM + 8) * k), :] = 255
    return mask


def _refine(ref: Reference, page: int, leak: Gray, h: Matrix) -> Matrix:
    """ECC on ECC_DPI: refine H (leak pixels -> MEASURE_DPI pixels)."""
    k = ECC_DPI / MEASURE_DPI
    template = ref.detail(page).template
    # bring the leak to about the template's scale so ECC's smoothing sees the same detail
    lin = h[:2, :2] / h[2, 2]
    leak_scale = float(np.sqrt(abs(np.linalg.det(lin))))  # ref px per leak px
    f = min(1.0, leak_scale * k)
    small = _resize(leak, f)
    # warp: template coords -> small-leak coords
    to_small = _scale(f) @ np.linalg.inv(h) @ _scale(1 / k)
    warp = (to_small / to_small[2, 2]).astype(np.float32)
    mask = cv2.warpPerspective(
        _body_mask(template.shape, ECC_DPI),
        warp.astype(np.float64),
        (small.shape[1], small.shape[0]),
        flags=cv2.INTER_NEAREST,
    )
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 60, 1e-6)
    try:
        _, warp = cv2.findTransformECC(
            template, small.astype(np.float32), warp, cv2.MOTION_HOMOGRAPHY, criteria, mask, 3
        )
    except cv2.error:
        return h
    back = np.linalg.inv(_scale(f)) @ warp.astype(np.float64)  # template -> leak
    refined = _scale(1 / k) @ np.linalg.inv(back)
    # refuse a refinement that ran away from the SIFT estimate
    corners = np.array(
        [[0, 0, 1], [leak.shape[1], 0, 1], [0, leak.shape[0], 1], [leak.shape[1], leak.shape[0], 1]]
    ).T
    a, b = h @ corners, refined @ corners
    drift = np.abs(a[:2] / a[2] - b[:2] / b[2]).max()
    return refined if drift < 40.0 else h


def register(ref: Reference, leak: Gray) -> Registered | None:
    page, score, h = identify(ref, leak)
    if h is None:
        return None
    h = _refine(ref, page, leak, h)
    lin = h[:2, :2] / h[2, 2]
    per_px = float(np.sqrt(abs(np.linalg.det(lin))))  # reference px per leak px
    src = leak
    if per_px < 0.95:  # leak finer than the measuring grid: average down first
        src = _resize(leak, per_px)
        h = h @ np.linalg.inv(_scale(per_px))
    ref_shape = ref.detail(page).image.shape
    size = (ref_shape[1], ref_shape[0])
    image = _u8(cv2.warpPerspective(src, h, size, flags=cv2.INTER_LINEAR, borderValue=255))
    ones = np.ones(src.shape, np.uint8)
    valid = _u8(cv2.warpPerspective(ones, h, size, flags=cv2.INTER_NEAREST, borderValue=0))
    # shrink the valid area a little: the border pixels are interpolated with white
    valid = _u8(cv2.erode(valid, np.ones((5, 5), np.uint8)))
    rotation = float(np.degrees(np.arctan2(lin[1, 0], lin[0, 0])))
    return Registered(page, score, image, valid, rotation, PX / per_px)


# -- measuring -----------------------------------------------------------------------


def _line_box(line: Line) -> tuple[float, float]:
    return (
        line.baseline - ASCENT * line.size - BOX_SLACK,
        line.baseline + DESCENT * line.size + BOX_SLACK,
    )


def _word_box(line: Line, i: int) -> tuple[float, float]:
    words = line.words
    half_gap = 0.5 * (words[1].x0 - words[0].x1) if len(words) > 1 else 1.5
    left = words[i].x0 - (0.5 * (words[i].x0 - words[i - 1].x1) if i else half_gap)
    right = words[i].x1 + (
        0.5 * (words[i + 1].x0 - words[i].x1) if i + 1 < len(words) else half_gap
    )
    return left, right


def measure(
    ref: Reference, reg: Registered, slots: Sequence[Slot], line_shift: float, word_shift: float
) -> list[float | None]:
    """Each slot's soft value: about +1 (moved down/right), -1, or None (unreadable)."""
    leak = _Ink(_ink(reg.image), reg.valid, MEASURE_DPI)
    base = ref.detail(reg.page).boxes
    where = dict(_boxes(ref.layout, reg.page))
    cache: dict[tuple[int, int | None], tuple[_Box, _Box]] = {}

    def boxes(li: int, wi: int | None) -> tuple[_Box, _Box]:
        if (li, wi) not in cache:
            cache[(li, wi)] = (base[(li, wi)], leak.box(*where[(li, wi)]))
        return cache[(li, wi)]

    needed = [(s.line, s.word) for s in slots]
    needed += [
        (s.before if s.word is None else s.line, None if s.word is None else s.before)
        for s in slots
    ]
    needed += [
        (s.after if s.word is None else s.line, None if s.word is None else s.after) for s in slots
    ]
    ratios = []
    for li, wi in needed:
        r, lk = boxes(li, wi)
        if r.mass > 0 and lk.ok:
            ratios.append(lk.mass / r.mass)
    if not ratios:
        return [None] * len(slots)
    typical = float(np.median(ratios))

    def offset(li: int, wi: int | None) -> tuple[float, float] | None:
        r, lk = boxes(li, wi)
        if r.mass <= 0 or not lk.ok or not MASS_LO <= lk.mass / r.mass / typical <= MASS_HI:
            return None
        return (r.cy, lk.cy - r.cy) if wi is None else (r.cx, lk.cx - r.cx)

    out: list[float | None] = []
    for s in slots:
        if s.word is None:
            mid, b, a, step = (
                offset(s.line, None),
                offset(s.before, None),
                offset(s.after, None),
                line_shift,
            )
        else:
            mid, b, a, step = (
                offset(s.line, s.word),
                offset(s.line, s.before),
                offset(s.line, s.after),
                word_shift,
            )
        if mid is None or b is None or a is None:
            out.append(None)
            continue
        t = (mid[0] - b[0]) / (a[0] - b[0]) if a[0] != b[0] else 0.5
        expected = b[1] + t * (a[1] - b[1])
        out.append((mid[1] - expected) / step)
    return out
