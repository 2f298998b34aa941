"""Images and figures: a non-blind luminance watermark with resynchronisation (issue 17).

Each code position is spread over several keyed blocks of the image (8x8 pixels for a
figure of about 800x600; the block size grows with the image), each block carrying the
bit times a keyed sign as a soft, low-frequency bump in luminance (Y of YCbCr; the
chroma is not touched). The bump's height follows the content: a few grey levels on
flat areas, more on textured ones. Pure white and pure black have no room to move, so
the reference image is first pulled :data:`BASE_STRENGTH` levels away from 0 and 255
(a white background becomes 252 ± 3).

Reading is non-blind: the node holds the original. The leak is registered to it (ORB
matches, a RANSAC homography, refined by ECC), the reference is warped into the leak's
frame and subtracted there (so that both sides go through the same resampling), and
the residual is brought back, weighted by its local noise and correlated with each
block's bump. A code position's evidence is the weighted mean of its blocks; the noise
is estimated from the spread of the blocks of the same position, pooled over the
image. A position whose evidence is below :data:`THRESHOLD` standard deviations is an
erasure (``None``), never a guess. Blocks the leak does not cover (a crop) give no
evidence, so a cropped figure reads the positions that kept enough blocks.

See ``docs/tracing.md`` ("Images and figures") and ADR 0159.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from PIL import Image, UnidentifiedImageError

from relto.errors import InvalidInput
from relto.tracing.embedding import Copy, Marking, Page, Reading

if TYPE_CHECKING:
    import numpy.typing as npt

    Floats = npt.NDArray[np.float32]
    Array = npt.NDArray[np.generic]
else:
    Floats = object
    Array = object

__all__ = [
    "BASE_STRENGTH",
    "MAX_PIXELS",
    "THRESHOLD",
    "ImageEmbedder",
    "embed_image",
    "extract_image",
    "psnr",
]

_SALT = b"relto.tracing.imagemark.v1"
#: Block sizes tried, largest first; the largest that gives every position
#: :data:`_MIN_REPEATS` blocks is used (4 if none does).
_BLOCK_SIZES = (16, 12, 8, 6, 4)
_MIN_REPEATS = 8
#: Bump height on flat areas, in grey levels (of 255); also the headroom kept at 0/255.
BASE_STRENGTH = 3.0
#: Bump height ceiling on textured areas.
_MAX_STRENGTH = 8.0
#: Extra height per grey level of local standard deviation (perceptual masking).
_MASKING = 0.2
#: |evidence| in standard deviations below which a position is an erasure.
THRESHOLD = 5.0
#: Images larger than this are refused (decompression bombs).
MAX_PIXELS = 40_000_000
_MIN_INLIERS = 12
#: ECC correlation a registration without feature matches must reach.
_MIN_ECC_WITHOUT_FEATURES = 0.8
#: Consistent feature matches at which ``locate`` is sure (an unrelated figure with the
#: same fonts and symbols reaches about 15).
_LOCATE_MATCHES = 100.0
#: Blurs (Gaussian sigma) of the reference tried against the leak (pixels of the original).
_BLURS = (0.0, 0.5, 0.8, 1.2, 1.8, 2.6)
_LUMA = (0.299, 0.587, 0.114)

_FORMATS = {
    "image/png": ("PNG", ".png"),
    "image/jpeg": ("JPEG", ".jpg"),
    "image/tiff": ("TIFF", ".tif"),
}
_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_SUFFIXES |= {".tif": "image/tiff", ".tiff": "image/tiff"}


# --- the keyed layout -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    block: int
    rows: int
    cols: int
    position: npt.NDArray[np.int64]  # (rows, cols): the code position each block carries
    sign: npt.NDArray[np.float32]  # (rows, cols): the block's keyed sign, +1 or -1

    @property
    def positions(self) -> int:
        return int(np.unique(self.position).size)


def _block_size(height: int, width: int, length: int) -> int:
    for block in _BLOCK_SIZES:
        if (height // block) * (width // block) >= _MIN_REPEATS * length:
            return block
    return _BLOCK_SIZES[-1]


def _layout(key: bytes, height: int, width: int, length: int) -> _Layout:
    """Which block carries which code position with which sign: keyed, secret."""
    if not isinstance(key, bytes | bytearray):
        raise TypeError("key must be bytes")
    if len(key) < 32:
        raise ValueError("key must be at least 32 bytes")
    if length < 1:
        raise ValueError("length must be positive")
    block = _block_size(height, width, length)
    rows, cols = height // block, width // block
    n = rows * cols
    if n == 0:
        raise ValueError(f"image of {width}x{height} is too small to carry a mark")
    info = f"layout;h={height};w={width};m={length};b={block}".encode("ascii")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(bytes(key))
    encryptor = Cipher(algorithms.AES(derived), modes.CTR(bytes(16))).encryptor()
    stream = encryptor.update(bytes(8 * n + (n + 7) // 8)) + encryptor.finalize()
    order = np.argsort(np.frombuffer(stream[: 8 * n], dtype=">u8"), kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64) % length
    sign_bits = np.unpackbits(np.frombuffer(stream[8 * n :], dtype=np.uint8))[:n]
    sign = (2.0 * sign_bits.astype(np.float32) - 1.0).astype(np.float32)
    return _Layout(block, rows, cols, position.reshape(rows, cols), sign.reshape(rows, cols))


def _sigma(block: int) -> float:
    return block / 4.0


def _profile(block: int) -> Floats:
    """One block's bump restricted to the block: the matched filter for its chip."""
    canvas = np.zeros((3 * block, 3 * block), dtype=np.float32)
    canvas[block : 2 * block, block : 2 * block] = 1.0
    blurred = cv2.GaussianBlur(canvas, (0, 0), _sigma(block))
    return np.ascontiguousarray(blurred[block : 2 * block, block : 2 * block])


def _block_sum(values: Floats, layout: _Layout) -> Floats:
    b = layout.block
    cropped = values[: layout.rows * b, : layout.cols * b]
    out: Floats = cropped.reshape(layout.rows, b, layout.cols, b).sum(axis=(1, 3), dtype=np.float64)
    return out.astype(np.float32)


# --- the reference: headroom and strength, from the original alone -----------------------


def _as_float(img: Array) -> Floats:
    return np.asarray(img, dtype=np.float32)


def _f32(img: object) -> Floats:
    """An OpenCV result as a float32 array (OpenCV's stubs type results loosely)."""
    return np.asarray(img, dtype=np.float32)


def _luma(img: Array) -> Floats:
    arr = _as_float(img)
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
        out: Floats = (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).astype(np.float32)
        return out
    raise ValueError("image must be HxW (grey) or HxWx3 / HxWx4 (RGB, RGBA)")


@dataclass(frozen=True, slots=True)
class _Reference:
    luma: Floats  # the original's luminance after the headroom shift
    strength: Floats  # bump height per pixel, grey levels
    shift: Floats  # headroom shift per pixel, added to every colour channel


def _reference(img: Array) -> _Reference:
    arr = _as_float(img)
    if arr.ndim == 2:
        high = low = arr
    else:
        rgb = arr[..., :3]
        high, low = rgb.max(axis=2), rgb.min(axis=2)
    luma = _luma(img)
    # Pull pure white and pure black in by BASE_STRENGTH so that the bump can go both ways.
    shift = np.minimum(255.0 - BASE_STRENGTH - high, 0.0) + np.maximum(BASE_STRENGTH - low, 0.0)
    shift = shift.astype(np.float32)
    headroom = np.maximum(np.minimum(255.0 - (high + shift), low + shift), 0.0)
    # Perceptual masking: taller bumps where the content is busy.
    mean = cv2.blur(luma, (7, 7))
    var = np.maximum(cv2.blur(luma * luma, (7, 7)) - mean * mean, 0.0)
    busy = cv2.GaussianBlur(np.sqrt(var), (0, 0), 3.0)
    strength = np.clip(BASE_STRENGTH + _MASKING * busy, BASE_STRENGTH, _MAX_STRENGTH)
    strength = np.minimum(strength, headroom).astype(np.float32)
    return _Reference((luma + shift).astype(np.float32), strength, shift)


def _pattern(layout: _Layout, bits: Sequence[int], height: int, width: int) -> Floats:
    """The bipolar watermark field in [-1, 1] for these bits under this layout."""
    values = np.asarray([1.0 if b else -1.0 for b in bits], dtype=np.float32)
    chips = layout.sign * values[layout.position]
    b = layout.block
    field = np.zeros((height, width), dtype=np.float32)
    field[: layout.rows * b, : layout.cols * b] = np.kron(chips, np.ones((b, b), np.float32))
    return _f32(cv2.GaussianBlur(field, (0, 0), _sigma(b)))


def embed_image(img: Array, bits: Sequence[int], key: bytes) -> npt.NDArray[np.uint8]:
    """``img`` (uint8, HxW grey or HxWx3/4 RGB[A]) carrying ``bits`` under ``key``.

    Only luminance changes (the same offset is added to R, G and B; alpha is kept).
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError("image must be uint8")
    if any(b not in (0, 1) for b in bits):
        raise ValueError("bits must be 0 or 1")
    height, width = arr.shape[:2]
    layout = _layout(key, height, width, len(bits))
    ref = _reference(arr)
    delta = ref.shift + ref.strength * _pattern(layout, bits, height, width)
    out = arr.astype(np.float32)
    if out.ndim == 2:
        out += delta
    else:
        out[..., :3] += delta[..., None]
    marked: npt.NDArray[np.uint8] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return marked


def psnr(a: Array, b: Array) -> float:
    """Peak signal-to-noise ratio of ``b`` against ``a``, in dB (inf when equal)."""
    diff = _as_float(a) - _as_float(b)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


# --- resynchronisation -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Registration:
    homography: npt.NDArray[np.float64]  # original (x, y, 1) -> leak
    inliers: int
    correlation: float  # ECC's correlation coefficient, or 0 if ECC did not converge


_ORB_MAX_SIDE = 1200


def _features(
    gray: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8] | None]:
    height, width = gray.shape
    scale = min(1.0, _ORB_MAX_SIDE / max(height, width))
    small = (
        gray
        if scale == 1.0
        else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    orb = cv2.ORB.create(nfeatures=4000, fastThreshold=5)
    keypoints, descriptors = orb.detectAndCompute(small, None)
    points = np.asarray([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2) / scale
    return points, None if descriptors is None else np.asarray(descriptors, dtype=np.uint8)


def _match(
    original: npt.NDArray[np.uint8], leak: npt.NDArray[np.uint8]
) -> tuple[list[npt.NDArray[np.float64]], int] | None:
    """Candidate maps from the original to the leak (similarity, then homography), and
    the number of RANSAC-consistent ORB matches behind the first."""
    p_o, d_o = _features(original)
    p_l, d_l = _features(leak)
    if d_o is None or d_l is None or len(p_o) < _MIN_INLIERS or len(p_l) < _MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(d_o, d_l, k=2)
    good = [
        p[0] for p in pairs if len(p) == 1 or (len(p) == 2 and p[0].distance < 0.8 * p[1].distance)
    ]
    if len(good) < _MIN_INLIERS:
        return None
    src = p_o[[m.queryIdx for m in good]]
    dst = p_l[[m.trainIdx for m in good]]
    candidates: list[npt.NDArray[np.float64]] = []
    affine, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0, maxIters=4000, confidence=0.999
    )
    inliers = int(mask.sum()) if mask is not None else 0
    if affine is not None and inliers >= _MIN_INLIERS:
        candidates.append(np.vstack([affine, [0.0, 0.0, 1.0]]).astype(np.float64))
    homography, hmask = cv2.findHomography(
        src, dst, cv2.RANSAC, 3.0, maxIters=4000, confidence=0.999
    )
    if homography is not None and hmask is not None and int(hmask.sum()) >= 2 * _MIN_INLIERS:
        candidates.append(np.asarray(homography, dtype=np.float64))
    candidates = [h for h in candidates if _plausible(h, original.shape)]
    if not candidates:
        return None
    return candidates, inliers


def _plausible(homography: npt.NDArray[np.float64], shape: tuple[int, ...]) -> bool:
    """Scale between 1/8 and 8, not mirrored, only mild perspective."""
    if not np.all(np.isfinite(homography)) or abs(homography[2, 2]) < 1e-9:
        return False
    h = homography / homography[2, 2]
    det = float(np.linalg.det(h[:2, :2]))
    if not (1 / 64 < det < 64):
        return False
    height, width = shape[:2]
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    w = corners @ h[2]
    return bool(np.all(w > 0.5) and np.all(w < 2.0))


def _scale(homography: npt.NDArray[np.float64]) -> float:
    return math.sqrt(abs(float(np.linalg.det(homography[:2, :2]))) / homography[2, 2] ** 2)


def _ecc(
    original: npt.NDArray[np.uint8],
    leak: npt.NDArray[np.uint8],
    start: npt.NDArray[np.float64],
    max_side: int,
    motion: int,
) -> tuple[npt.NDArray[np.float64], float] | None:
    """ECC refinement of ``start`` at a resolution where the original is ``max_side``."""
    f_o = min(1.0, max_side / max(original.shape))
    f_l = min(1.0, f_o / _scale(start))
    template = (
        original
        if f_o == 1.0
        else cv2.resize(original, None, fx=f_o, fy=f_o, interpolation=cv2.INTER_AREA)
    )
    image = (
        leak if f_l == 1.0 else cv2.resize(leak, None, fx=f_l, fy=f_l, interpolation=cv2.INTER_AREA)
    )
    to_o, to_l = np.diag([f_o, f_o, 1.0]), np.diag([f_l, f_l, 1.0])
    warp = to_l @ start @ np.linalg.inv(to_o)
    warp /= warp[2, 2]
    init = (
        warp.astype(np.float32) if motion == cv2.MOTION_HOMOGRAPHY else warp[:2].astype(np.float32)
    )
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 60, 1e-6)
    try:
        cc, refined = cv2.findTransformECC(
            _f32(template), _f32(image), init, motion, criteria, np.ones(image.shape, np.uint8), 5
        )
    except cv2.error:
        return None
    full = np.asarray(refined, dtype=np.float64)
    if full.shape[0] == 2:
        full = np.vstack([full, [0.0, 0.0, 1.0]])
    out = np.linalg.inv(to_l) @ full @ to_o
    out /= out[2, 2]
    if not _plausible(out, original.shape):
        return None
    return out, float(cc)


def _register(original: npt.NDArray[np.uint8], leak: npt.NDArray[np.uint8]) -> _Registration | None:
    """Feature estimate(s), each refined coarse to fine by ECC; the best correlation wins."""
    found = _match(original, leak)
    if found is None:
        # Too few features (smooth art, heavy noise): try the leak as the whole figure,
        # scaled to fit and centred, and trust ECC only if it then correlates well.
        scale = min(leak.shape[0] / original.shape[0], leak.shape[1] / original.shape[1])
        dx = (leak.shape[1] - scale * original.shape[1]) / 2.0
        dy = (leak.shape[0] - scale * original.shape[0]) / 2.0
        fit = np.array([[scale, 0.0, dx], [0.0, scale, dy], [0.0, 0.0, 1.0]])
        candidates, inliers = [fit], 0
    else:
        candidates, inliers = found
    best: tuple[npt.NDArray[np.float64], float] | None = None
    for start in candidates:
        current, cc = start, 0.0
        for side, motion in ((250, cv2.MOTION_AFFINE), (500, cv2.MOTION_AFFINE)):
            step = _ecc(original, leak, current, side, motion)
            if step is not None:
                current, cc = step
        if best is None or cc > best[1]:
            best = (current, cc)
    assert best is not None
    final = _ecc(original, leak, best[0], 1000, cv2.MOTION_HOMOGRAPHY)
    if final is None or final[1] < best[1] - 0.05:
        final = _ecc(original, leak, best[0], 1000, cv2.MOTION_AFFINE) or best
    if inliers == 0 and final[1] < _MIN_ECC_WITHOUT_FEATURES:
        return None
    return _Registration(final[0], inliers, final[1])


# --- extraction ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Evidence:
    mean: npt.NDArray[np.float64]  # per position: weighted mean of sign * chip estimate
    precision: npt.NDArray[np.float64]  # per position: 1 / variance of that mean (0: unseen)
    gain: float  # mean |chip| over well-read positions, 1.0 = as embedded
    match: float
    notes: tuple[str, ...]


def _to_gray_u8(img: Array) -> npt.NDArray[np.uint8]:
    out: npt.NDArray[np.uint8] = np.clip(np.rint(_luma(img)), 0, 255).astype(np.uint8)
    return out


def _horner(coef: npt.NDArray[np.float64], t: Floats) -> Floats:
    out = np.full(t.shape, np.float32(coef[-1]), dtype=np.float32)
    for c in coef[-2::-1]:
        out *= t
        out += np.float32(c)
    return out


def _tone(
    reference: Floats, leak: Floats, sel: npt.NDArray[np.bool_], degree: int
) -> tuple[Floats, Floats]:
    """The leak's tone curve as a polynomial in the reference's level, fitted by least
    squares: the predicted leak, and the curve's slope, which scales the mark. A curve
    that is not increasing everywhere falls back to the identity."""
    step = max(1, int(sel.sum()) // 200_000)
    x = reference[sel][::step].astype(np.float64) / 255.0
    y = leak[sel][::step].astype(np.float64)
    poly = np.polynomial.polynomial
    coef = np.asarray(poly.polyfit(x, y, degree), dtype=np.float64)
    derivative = np.asarray(poly.polyder(coef), dtype=np.float64) / 255.0
    if not np.all(poly.polyval(np.linspace(0.0, 1.0, 65), derivative) > 0.2):
        return reference, np.ones_like(reference)
    t = reference * np.float32(1.0 / 255.0)
    slope = np.clip(_horner(derivative, t), 0.2, 5.0)
    return _horner(coef, t), _f32(slope)


def _smooth(values: Floats, sigma: float) -> Floats:
    """A wide Gaussian blur, computed on a grid 1/4 of sigma apart (wide kernels are slow)."""
    height, width = values.shape
    factor = max(1, int(sigma // 4))
    if factor == 1:
        return _f32(cv2.GaussianBlur(values, (0, 0), sigma))
    small = cv2.resize(
        values, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return _f32(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))


def _residual(
    reference: Floats, leak: Floats, sel: npt.NDArray[np.bool_], degree: int
) -> tuple[float, Floats]:
    """The leak minus the reference through its tone curve, in reference grey levels."""
    predicted, slope = _tone(reference, leak, sel, degree)
    residual = _f32((leak - predicted) / slope)
    residual[~sel] = 0.0
    return float(np.mean(np.abs(residual[sel]))), residual


def _evidence(leaked: Array, original: Array, key: bytes, length: int) -> _Evidence | None:
    orig_gray = _to_gray_u8(original)
    leak_gray = _to_gray_u8(leaked)
    height, width = orig_gray.shape
    layout = _layout(key, height, width, length)
    reg = _register(orig_gray, leak_gray)
    if reg is None:
        return None
    ref = _reference(np.asarray(original))
    hom = reg.homography
    scale = _scale(hom)
    lh, lw = leak_gray.shape
    inside = cv2.warpPerspective(
        np.ones((height, width), np.uint8), hom, (lw, lh), flags=cv2.INTER_NEAREST
    )
    sel = inside > 0
    if int(sel.sum()) < 1000:
        return None
    leak_f = leak_gray.astype(np.float32)
    # The leak may be blurred (downscaling, printing, a filter): blur the reference to
    # match, choosing the blur that leaves the least residual, then fit the tone curve.
    best: tuple[float, Floats, Floats] | None = None
    for sigma in _BLURS:
        source = ref.luma if sigma < 0.1 else cv2.GaussianBlur(ref.luma, (0, 0), sigma)
        forward = cv2.warpPerspective(
            source, hom, (lw, lh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        energy, candidate = _residual(_f32(forward), leak_f, sel, 1)
        if best is None or energy < best[0]:
            best = (energy, candidate, _f32(forward))
    assert best is not None
    residual = best[1]
    # A print, a scan or a screen bends the tone curve (gamma, black and white points):
    # a cubic replaces the straight line where it explains clearly more.
    curved = _residual(best[2], leak_f, sel, 3)
    if curved[0] < 0.9 * best[0]:
        residual = curved[1]
    back_flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    r = _f32(cv2.warpPerspective(residual, hom, (width, height), flags=back_flags, borderValue=0.0))
    covered = cv2.warpPerspective(
        inside, hom, (width, height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    )
    covered = cv2.erode(covered, np.ones((5, 5), np.uint8))
    valid = covered.astype(np.float32)
    b = layout.block
    r *= valid
    # Local noise: what the residual does at scales finer than a block.
    fine = r - _f32(cv2.blur(r, (b | 1, b | 1)))
    noise = _f32(cv2.GaussianBlur(fine * fine, (0, 0), b / 2.0)) + 1.0
    weight = valid / noise
    # Remove slow drifts (tone, vignetting) much larger than a block, trusting quiet pixels.
    trend = _smooth(r * weight, 3.0 * b) / np.maximum(_smooth(weight, 3.0 * b), 1e-6)
    r = _f32((r - trend) * valid)
    template = (
        ref.strength * np.tile(_profile(b), (layout.rows + 1, layout.cols + 1))[:height, :width]
    )
    info = _block_sum(weight * template * template, layout).astype(np.float64)
    num = _block_sum(weight * r * template, layout).astype(np.float64)
    ok = info > 1e-6
    chip = np.where(ok, num / np.where(ok, info, 1.0), 0.0) * layout.sign.astype(np.float64)
    combined = _combine(
        chip.ravel(), np.where(ok, info, 0.0).ravel(), layout.position.ravel(), length
    )
    if combined is None:
        return None
    mean, precision = combined
    strong = np.abs(mean) * np.sqrt(precision) > THRESHOLD
    gain = float(np.mean(np.abs(mean[strong]))) if strong.any() else 0.0
    rotation = -math.degrees(math.atan2(hom[1, 0], hom[0, 0]))  # y points down
    covers = 100.0 * float(valid[: layout.rows * b, : layout.cols * b].mean())
    notes = (
        f"registered: {reg.inliers} feature matches, ECC correlation {reg.correlation:.3f}",
        f"leak scale {scale:.3f}, rotation {rotation:.2f} deg anticlockwise",
        f"covers {covers:.0f} % of the marked area",
        f"blocks {b}x{b}, mark gain {gain:.2f}",
    )
    match = reg.correlation if reg.correlation > 0 else min(1.0, reg.inliers / 50.0)
    return _Evidence(mean, precision, gain, match, notes)


def _combine(
    chip: npt.NDArray[np.float64],
    info: npt.NDArray[np.float64],
    pos: npt.NDArray[np.int64],
    length: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """Per position: the weighted mean of its blocks' signed chip estimates and its precision.

    A block's estimate varies as kappa / information + tau²: noise the local estimate
    saw, plus block-scale noise it could not see (JPEG, interpolation, content the
    reference blur did not match). Both are fitted to the spread of the blocks of the same
    position around their mean, pooled over the image; the result is then scaled so
    that the standardised spread is at least 1. Nothing is assumed about the bits.
    """
    seen = info > 0
    chip, info, pos = chip[seen], info[seen], pos[seen]
    blocks = np.bincount(pos, minlength=length).astype(np.float64)
    multi = blocks[pos] >= 2
    dof = float(np.sum(blocks[blocks >= 2] - 1))
    if dof < 20:
        return None
    inv_info = 1.0 / info
    weight = info.copy()
    for _ in range(3):
        total = np.bincount(pos, weights=weight, minlength=length)
        mean = np.bincount(pos, weights=weight * chip, minlength=length) / np.maximum(total, 1e-300)
        spread = (chip - mean[pos]) ** 2 * blocks[pos] / np.maximum(blocks[pos] - 1, 1)
        u, d = inv_info[multi], spread[multi]
        design = np.stack([u, np.ones_like(u)], axis=1)
        (kappa, tau2), *_ = np.linalg.lstsq(design, d, rcond=None)
        if kappa < 0:
            kappa, tau2 = 0.0, float(d.mean())
        elif tau2 < 0:
            kappa, tau2 = float(d @ u / (u @ u)), 0.0
        variance = np.maximum(kappa * inv_info + tau2, 1e-9)
        weight = 1.0 / variance
    total = np.bincount(pos, weights=weight, minlength=length)
    mean = np.bincount(pos, weights=weight * chip, minlength=length) / np.maximum(total, 1e-300)
    standardised = float(np.sum((weight * (chip - mean[pos]) ** 2)[multi])) / dof
    precision = total / max(1.0, standardised)
    return mean, precision


def _decide(ev: _Evidence, length: int) -> tuple[int | None, ...]:
    z = ev.mean * np.sqrt(ev.precision)
    return tuple(1 if v > THRESHOLD else 0 if v < -THRESHOLD else None for v in z.tolist())


def extract_image(leaked: Array, original: Array, key: bytes, length: int) -> Reading:
    """Read ``length`` code positions from ``leaked`` against ``original`` (uint8 arrays).

    Positions whose evidence is weaker than :data:`THRESHOLD` standard deviations, and
    all positions when the leak cannot be registered to the original, are erasures.
    """
    ev = _evidence(leaked, original, key, length)
    if ev is None:
        return Reading((None,) * length, 0.0, ("not registered to the original",))
    bits = _decide(ev, length)
    read = sum(b is not None for b in bits)
    return Reading(bits, float(np.clip(ev.match, 0.0, 1.0)), (*ev.notes, f"read {read}/{length}"))


# --- files ------------------------------------------------------------------------------


def _decode(content: bytes) -> Image.Image:
    """The image in ``content``; the size is checked before the pixels are decoded."""
    try:
        image = Image.open(io.BytesIO(content))
        if image.width * image.height > MAX_PIXELS:
            raise InvalidInput("image is too large to mark")
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidInput("not a readable image") from exc
    return image


def _pixels(image: Image.Image) -> npt.NDArray[np.uint8]:
    if image.mode in ("L", "RGB", "RGBA"):
        converted = image
    elif image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        converted = image.convert("RGBA")
    elif image.mode in ("1", "I;16", "I", "F"):
        converted = image.convert("L")
    else:
        converted = image.convert("RGB")
    return np.asarray(converted, dtype=np.uint8)


class ImageEmbedder:
    """The :class:`~relto.tracing.embedding.Embedder` for PNG, JPEG and TIFF images.

    The copy keeps the input's format (TIFF is written LZW-compressed, JPEG at quality
    95) and colour; the recipient's marking goes into the file's description metadata.
    """

    def accepts(self, media_type: str, filename: str) -> bool:
        suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
        return media_type.lower() in _FORMATS or suffix in _SUFFIXES

    def _media(self, media_type: str, filename: str) -> str:
        media = media_type.lower()
        if media in _FORMATS:
            return media
        suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
        raise ValueError(f"not an image type this embedder handles: {media_type}")

    def embed(
        self,
        content: bytes,
        media_type: str,
        filename: str,
        bits: Sequence[int],
        key: bytes,
        marking: Marking,
    ) -> Copy:
        media = self._media(media_type, filename)
        pixels = _pixels(_decode(content))
        marked = embed_image(pixels, bits, key)
        fmt, suffix = _FORMATS[media]
        out = Image.fromarray(marked)
        if fmt == "JPEG" and out.mode == "RGBA":
            out = out.convert("RGB")
        description = (
            f"{marking.banner} | copy {marking.copy_number} for {marking.recipient} "
            f"({marking.nation}) | {marking.object_ref}"
        )
        buf = io.BytesIO()
        if fmt == "PNG":
            from PIL import PngImagePlugin

            meta = PngImagePlugin.PngInfo()
            meta.add_text("Description", description)
            out.save(buf, format="PNG", pnginfo=meta)
        elif fmt == "JPEG":
            out.save(buf, format="JPEG", quality=95, comment=description.encode("utf-8"))
        else:
            out.save(buf, format="TIFF", compression="tiff_lzw", description=description)
        height, width = marked.shape[:2]
        layout = _layout(key, height, width, len(bits))
        return Copy(buf.getvalue(), media, suffix, layout.positions, 1)

    def _original_gray(self, content: bytes) -> npt.NDArray[np.uint8]:
        return _to_gray_u8(_pixels(_decode(content)))

    def locate(
        self, pages: Sequence[Page], content: bytes, media_type: str, filename: str
    ) -> float:
        """The best page's share of 100 RANSAC-consistent ORB matches (0 if under 12)."""
        original = self._original_gray(content)
        best = 0.0
        for page in pages:
            found = _match(original, _to_gray_u8(np.asarray(page)))
            if found is not None:
                best = max(best, min(1.0, found[1] / _LOCATE_MATCHES))
        return best

    def extract(
        self,
        pages: Sequence[Page],
        content: bytes,
        media_type: str,
        filename: str,
        key: bytes,
        length: int,
    ) -> Reading:
        """Evidence is pooled over every page that registers to the original."""
        original = _pixels(_decode(content))
        found = [ev for page in pages if (ev := _evidence(np.asarray(page), original, key, length))]
        if not found:
            return Reading((None,) * length, 0.0, ("no page registered to the original",))
        # Independent pages add information: precision-weighted means of the positions.
        total = np.sum([ev.precision for ev in found], axis=0)
        weighted = np.sum([ev.precision * ev.mean for ev in found], axis=0)
        mean = weighted / np.maximum(total, 1e-300)
        pooled = _Evidence(mean, total, 0.0, max(ev.match for ev in found), ())
        bits = _decide(pooled, length)
        notes = tuple(f"page: {n}" for ev in found for n in ev.notes)
        read = sum(b is not None for b in bits)
        return Reading(
            bits, float(np.clip(pooled.match, 0.0, 1.0)), (*notes, f"read {read}/{length}")
        )
