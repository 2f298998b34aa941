"""The off-the-shelf baseline for the tracing benchmark: invisible-watermark (imwatermark).

Test and benchmark only; nothing in the product imports this module. It embeds the same
codeword with the package's own ``dwtDct`` (its default) and ``dwtDctSvd`` methods and
reads it back, so that the benchmark can set relto's image watermark
(:mod:`relto.tracing.imagemark`) beside it on the same figures and attacks.

What the package does, as shipped (0.2.0, unmodified): it converts BGR to YUV, takes a
one-level Haar DWT of the U channel (both methods only loop over Y and U, and Y's
default strength is 0, so the mark lives in chroma), cuts the LL band into 4x4 blocks
and quantises one coefficient per block (the largest AC coefficient of the block's DCT,
or the first singular value of the DCT for ``dwtDctSvd``) to carry bit ``i mod m`` of an
m-bit payload. Any m up to the number of blocks works (an 800x600 image has 7,500
blocks, so each of 840 bits is written about nine times and decoded by averaging).
Decoding is blind, has no resynchronisation and no notion of an unreliable bit: every
bit comes back as 0 or 1, so damage shows up as bit errors, never as erasures.

Loading follows ADR 0157: the package is installed without its dependencies and its
``watermark`` module imports ``torch`` at load time for the RivaGAN method only, so an
empty placeholder module stands in for ``torch`` during the import.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["METHODS", "bit_errors", "embed_baseline", "extract_baseline"]

#: The package's methods that need no model download (RivaGAN is left out, ADR 0157).
METHODS = ("dwtDct", "dwtDctSvd")


def _imwatermark() -> Any:
    """The imwatermark package, imported with a placeholder ``torch`` (ADR 0157)."""
    placeholder = None
    if "torch" not in sys.modules:
        # imwatermark.watermark imports rivaGan, which does `import torch` at load time;
        # torch is only used by the RivaGAN method, which the baseline does not run.
        placeholder = types.ModuleType("torch")
        sys.modules["torch"] = placeholder
    try:
        import imwatermark
    finally:
        if placeholder is not None and sys.modules.get("torch") is placeholder:
            del sys.modules["torch"]
    return imwatermark


def _bgr(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if arr.ndim == 3 and arr.shape[2] >= 3:
        return np.ascontiguousarray(arr[:, :, 2::-1])
    raise ValueError("image must be HxW (grey) or HxWx3 (RGB)")


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def embed_baseline(
    img: npt.NDArray[np.uint8], bits: Sequence[int], method: str = "dwtDct"
) -> npt.NDArray[np.uint8]:
    """``img`` (HxW grey or HxWx3 RGB, at least 256x256) with ``bits``; returns RGB."""
    _check(method)
    encoder = _imwatermark().WatermarkEncoder()
    encoder.set_watermark("bits", [int(b) for b in bits])
    bgr = encoder.encode(_bgr(img), method)
    out: npt.NDArray[np.uint8] = np.ascontiguousarray(np.asarray(bgr, dtype=np.uint8)[:, :, ::-1])
    return out


def extract_baseline(img: npt.NDArray[np.uint8], length: int, method: str = "dwtDct") -> list[int]:
    """The ``length`` bits the package reads from ``img`` (grey or RGB): always 0 or 1."""
    _check(method)
    decoder = _imwatermark().WatermarkDecoder("bits", length)
    bits = decoder.decode(_bgr(img), method)
    return [int(b) for b in np.asarray(bits).ravel()]


def bit_errors(read: Sequence[int | None], bits: Sequence[int]) -> tuple[int, int]:
    """(errors, read): positions read as the wrong bit, and positions read at all."""
    if len(read) != len(bits):
        raise ValueError("reading and codeword differ in length")
    pairs = [(r, b) for r, b in zip(read, bits, strict=True) if r is not None]
    return sum(r != b for r, b in pairs), len(pairs)
