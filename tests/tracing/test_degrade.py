"""The attack simulations on page images (relto.tracing.degrade), with seeded generators.

The benchmark trusts these to do what the issue says (print-and-scan at 150–300 dpi,
±2°, ±3 %, JPEG 50; perspective and uneven light; half a page; collusion of copies),
so the tests measure the output rather than trusting the drawn parameters: the
rotation and scale of a scanned rectangle, the JPEG quantisation grid, the bands
a line interleaving took from each copy.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from relto.tracing.degrade import (
    ATTACKS_ON_PAGES,
    CROP_REGIONS,
    PhonePhoto,
    PrintScan,
    Screenshot,
    average,
    crop,
    interleave_lines,
    interleave_pages,
    jpeg,
    majority,
    median,
    phone_photo,
    print_scan,
    screenshot,
    text_bands,
)

Image = npt.NDArray[np.uint8]

# The IJG luminance table (ITU-T T.81 Annex K), which libjpeg uses as is at quality 50.
LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)


def _table(quality: int) -> npt.NDArray[np.float64]:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((LUMA * scale + 50) / 100), 1, 255)


def _off_grid(img: Image, quality: int) -> float:
    """Mean distance of the 8x8 block DCT coefficients from the quantiser's lattice.

    A decoded JPEG of this quality sits on the lattice up to pixel rounding (about
    0.03 here); anything else is spread evenly (about 0.25). Saturated blocks are
    left out (clipping moves them off the lattice).
    """
    n = 8
    basis = np.array(
        [
            [
                math.sqrt((1 if u == 0 else 2) / n) * math.cos((2 * x + 1) * u * math.pi / (2 * n))
                for x in range(n)
            ]
            for u in range(n)
        ]
    )
    h, w = (img.shape[0] // n) * n, (img.shape[1] // n) * n
    blocks = img[:h, :w].astype(np.float64).reshape(h // n, n, w // n, n).transpose(0, 2, 1, 3)
    textured = blocks.std(axis=(2, 3)) > 20  # edges: coefficients spread over many steps
    keep = textured & (blocks.min(axis=(2, 3)) > 0) & (blocks.max(axis=(2, 3)) < 255)
    coeffs = np.einsum("ux,abxy,vy->abuv", basis, blocks[keep][None] - 128.0, basis)[0]
    table = _table(quality)
    coarse = (table >= 10) & (LUMA <= 30)  # rounding is small against these steps
    ratio = coeffs[:, coarse] / table[coarse]
    assert ratio.size > 1000, "too few textured blocks or coarse steps to tell"
    return float(np.abs(ratio - np.rint(ratio)).mean())


def _text_page(height: int = 700, width: int = 500, shift: int = 0, label: str = "") -> Image:
    img = np.full((height, width), 255, np.uint8)
    for i in range(14):
        y = 50 + i * 45 + (shift if i % 2 else 0)
        cv2.putText(
            img, f"{label}line {i} quick brown fox", (30, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2
        )
    return np.where(img < 128, 0, 255).astype(np.uint8)  # black on white, no anti-aliasing


def _rectangle_page() -> Image:
    """A 1200x900 page (150 dpi) with a black 600x400 rectangle in the middle."""
    img = np.full((1200, 900), 255, np.uint8)
    img[400:800, 150:750] = 0
    return img


def _noisy(shape: tuple[int, int], seed: int) -> Image:
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.uniform(40, 215, shape).astype(np.float32), (0, 0), 2.0)
    return np.clip(np.rint(smooth), 0, 255).astype(np.uint8)


# -- print and scan ----------------------------------------------------------------------


def test_print_scan_parameters_stay_within_the_issues_ranges() -> None:
    rng = np.random.default_rng(1)
    drawn = [PrintScan.draw(rng, 300) for _ in range(500)]
    assert all(150 <= p.scan_dpi <= 300 for p in drawn)
    assert all(-2 <= p.angle <= 2 for p in drawn)
    assert all(0.97 <= p.scale <= 1.03 for p in drawn)
    assert all(p.quality == 50 for p in drawn)
    # the ranges are used, not a corner of them
    assert max(p.angle for p in drawn) > 1.8 and min(p.angle for p in drawn) < -1.8
    assert max(p.scan_dpi for p in drawn) > 290 and min(p.scan_dpi for p in drawn) < 160


@pytest.mark.parametrize(
    ("angle", "scale", "scan_dpi"), [(1.7, 1.025, 200.0), (-1.2, 0.975, 290.0)]
)
def test_print_scan_rotates_scales_and_resamples_as_drawn(
    angle: float, scale: float, scan_dpi: float
) -> None:
    page = _rectangle_page()
    rng = np.random.default_rng(2)
    params = dataclasses.replace(
        PrintScan.draw(rng, 150),
        angle=angle,
        scale=scale,
        scan_dpi=scan_dpi,
        shift_x=0.0,
        shift_y=0.0,
    )
    out = params.apply(page, rng)
    assert out.dtype == np.uint8 and out.ndim == 2
    assert out.shape == (round(1200 * scan_dpi / 150), round(900 * scan_dpi / 150))
    dark = out < (params.black + params.white) / 2
    # scale: the rectangle's area grows with (scan dpi / source dpi * scale)^2
    expected_area = 600 * 400 * (scan_dpi / 150 * scale) ** 2
    assert abs(dark.sum() / expected_area - 1) < 0.012
    # rotation: the slope of the rectangle's top edge over its middle half
    _, xs = np.nonzero(dark)
    centre_x = xs.mean()
    half = 150 * scan_dpi / 150
    columns = np.arange(int(centre_x - half), int(centre_x + half))
    tops = np.array([np.nonzero(dark[:, x])[0].min() for x in columns])
    slope = np.polyfit(columns, tops, 1)[0]
    assert math.degrees(-math.atan(slope)) == pytest.approx(angle, abs=0.1)
    # white like the scanner's lid where the sheet does not reach
    assert out[:5, :5].mean() > params.white - 25


def test_print_scan_output_is_a_quality_50_jpeg() -> None:
    page = _text_page()
    params = dataclasses.replace(
        PrintScan.draw(np.random.default_rng(3), 200), black=20.0, white=235.0
    )
    lossless = dataclasses.replace(params, quality=100)
    assert _off_grid(lossless.apply(page, np.random.default_rng(3)), 50) > 0.2  # the test can tell
    assert _off_grid(params.apply(page, np.random.default_rng(3)), 50) < 0.08


def test_print_scan_is_repeatable_and_leaves_its_input_alone() -> None:
    page = _text_page()
    before = page.copy()
    a = print_scan(page, np.random.default_rng(4), source_dpi=150)
    b = print_scan(page, np.random.default_rng(4), source_dpi=150)
    c = print_scan(page, np.random.default_rng(5), source_dpi=150)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert np.array_equal(page, before)


# -- phone photo -------------------------------------------------------------------------


def test_phone_photo_parameters_stay_within_their_ranges() -> None:
    rng = np.random.default_rng(6)
    for _ in range(300):
        p = PhonePhoto.draw(rng)
        assert 1000 <= p.page_width <= 2400
        assert 0.03 <= p.margin <= 0.10
        assert len(p.corners) == 4 and all(abs(d) <= 0.04 for c in p.corners for d in c)
        assert 60 <= p.quality <= 90
        assert 0.1 <= p.light_gradient <= 0.4 and 0.1 <= p.vignette <= 0.35


def test_phone_photo_is_in_perspective_unevenly_lit_and_jpeg() -> None:
    page = np.full((1400, 1000), 255, np.uint8)
    page[::100, :] = 0  # a ruled grid, to follow the page's edges
    page[:, ::100] = 0
    rng = np.random.default_rng(7)
    params = dataclasses.replace(
        PhonePhoto.draw(rng), page_width=1000, blur_px=0.6, noise=2.0, exposure=0.9, quality=60
    )
    (height, width), homography = params.geometry((1400, 1000))
    out = params.apply(page, rng)
    assert out.shape == (height, width) and out.dtype == np.uint8
    # the page's corners land where the drawn displacements put them
    corners = cv2.perspectiveTransform(
        np.array([[(0, 0), (1000, 0), (1000, 1400), (0, 1400)]], np.float32), homography
    )[0]
    m = params.margin
    ideal = np.array([(m, m), (1 + m, m), (1 + m, 1 + m), (m, 1 + m)]) * (1000, 1400)
    moved = ideal + np.array(params.corners) * (1000, 1400)
    assert np.allclose(corners, moved, atol=1e-3)
    # a true perspective: opposite edges are no longer parallel
    top, bottom = corners[1] - corners[0], corners[2] - corners[3]
    assert abs(math.atan2(top[1], top[0]) - math.atan2(bottom[1], bottom[0])) > 1e-3
    # uneven light: the paper is brighter in some places than in others
    light = params.light((height, width))
    assert light.max() - light.min() > 0.1
    paper = out[(out > params.background + 30)]
    assert np.percentile(paper, 95) - np.percentile(paper, 5) > 15
    assert _off_grid(out, params.quality) < 0.08


def test_phone_photo_is_repeatable() -> None:
    page = _text_page()
    assert np.array_equal(
        phone_photo(page, np.random.default_rng(8)), phone_photo(page, np.random.default_rng(8))
    )


# -- crop and screenshot ---------------------------------------------------------------


@pytest.mark.parametrize("region", CROP_REGIONS)
def test_crop_keeps_half_the_page(region: str) -> None:
    page = _noisy((400, 300), 9)
    out = crop(page, np.random.default_rng(0), 0.5, region=region)  # type: ignore[arg-type]
    assert out.size == pytest.approx(page.size / 2, rel=0.01)
    expected = {
        "top": page[:200],
        "bottom": page[200:],
        "left": page[:, :150],
        "right": page[:, 150:],
        "centre": page[58:341, 44:256],
    }[region]
    assert np.array_equal(out, expected)


def test_crop_draws_every_region() -> None:
    page = _noisy((400, 300), 10)
    rng = np.random.default_rng(11)
    shapes = {crop(page, rng).shape for _ in range(60)}
    assert shapes == {(200, 300), (400, 150), (283, 212)}


def _grey_text_page() -> Image:
    """Text at levels 30..225, so that resampling and compression never clip."""
    return (_text_page(1400, 1000) * (195 / 255) + 30).round().astype(np.uint8)


def test_screenshot_rescales_to_a_screen_and_stays_lossless() -> None:
    page = _grey_text_page()
    rng = np.random.default_rng(13)
    for _ in range(3):
        params = Screenshot.draw(rng)
        assert 700 <= params.page_width <= 1600 and 0.2 <= params.blur_px <= 0.6
        out = params.apply(page, rng)
        assert out.shape == (round(1400 * params.page_width / 1000), params.page_width)
        assert _off_grid(out, 50) > 0.2  # no JPEG in a screenshot
    assert screenshot(page, np.random.default_rng(1)).dtype == np.uint8


def test_jpeg_round_trip_lands_on_the_quantiser_lattice() -> None:
    page = _grey_text_page()
    assert _off_grid(page, 75) > 0.2
    assert _off_grid(jpeg(page, 75), 75) < 0.08
    with pytest.raises(ValueError):
        jpeg(page, 0)


# -- collusion ---------------------------------------------------------------------------


def test_average_of_two_copies_differs_from_both() -> None:
    a, b = _text_page(), _text_page(shift=2)
    out = average([a, b])
    assert not np.array_equal(out, a) and not np.array_equal(out, b)
    assert np.array_equal(out[a == b], a[a == b])
    assert set(np.unique(out[a != b]).tolist()) == {128}  # (0 + 255) / 2, rounded


def test_majority_of_three_takes_each_pixel_from_the_majority() -> None:
    a, b, c = _text_page(), _text_page(shift=2), _text_page(shift=4)
    out = majority([a, b, c])
    ink = [(x < 128).astype(int) for x in (a, b, c)]
    votes = sum(ink)
    assert np.array_equal(out == 0, votes >= 2)
    assert np.array_equal(out == 255, votes <= 1)
    assert not np.array_equal(out, a) and not np.array_equal(out, c)


def test_majority_of_two_leaves_ties_grey() -> None:
    a, b = _text_page(), _text_page(shift=2)
    out = majority([a, b])
    assert set(np.unique(out).tolist()) == {0, 128, 255}
    assert np.array_equal(out == 128, (a < 128) != (b < 128))


def test_median_of_three_is_the_middle_grey_level() -> None:
    a, b, c = _noisy((60, 50), 1), _noisy((60, 50), 2), _noisy((60, 50), 3)
    out = median([a, b, c])
    middle = np.sort(np.stack([a, b, c]), axis=0)[1]
    assert np.array_equal(out, middle)
    assert not np.array_equal(out, a)


def test_interleave_pages_takes_each_page_from_some_copy() -> None:
    copies = [[_noisy((40, 30), 100 * c + k) for k in range(30)] for c in range(3)]
    out = interleave_pages(copies, np.random.default_rng(15))
    sources = set()
    for k, page in enumerate(out):
        [source] = [c for c in range(3) if np.array_equal(page, copies[c][k])]
        sources.add(source)
    assert sources == {0, 1, 2}
    with pytest.raises(ValueError):
        interleave_pages([copies[0], copies[1][:-1]], np.random.default_rng(0))


def test_interleave_lines_takes_whole_bands_from_both_copies() -> None:
    a = _text_page(label="A ")
    b = _text_page(shift=1, label="B ")
    bands = text_bands(a)
    assert len(bands) == 14
    out = interleave_lines([a, b], np.random.default_rng(16))
    taken = []
    for start, stop in bands:
        rows = out[start:stop]
        from_a, from_b = np.array_equal(rows, a[start:stop]), np.array_equal(rows, b[start:stop])
        assert from_a or from_b  # never a line cut in two
        taken.append("a" if from_a else "b")
    assert set(taken) == {"a", "b"}


def test_collusion_refuses_copies_of_different_sizes() -> None:
    with pytest.raises(ValueError):
        average([_noisy((40, 30), 1), _noisy((40, 31), 2)])
    with pytest.raises(TypeError):
        majority([np.zeros((40, 30), np.float32)])


def test_colour_images_keep_their_channels_and_a_neutral_border() -> None:
    grey = _text_page(350, 250)
    bgr = np.dstack([grey, (grey * 0.5 + 100).astype(np.uint8), grey])
    rng = np.random.default_rng(18)
    for out in (
        print_scan(bgr, rng, source_dpi=100),
        phone_photo(bgr, rng),
        screenshot(bgr, rng),
        crop(bgr, rng),
        average([bgr, bgr]),
        median([bgr, bgr, bgr]),
        interleave_lines([bgr, bgr], rng),
    ):
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    params = dataclasses.replace(PrintScan.draw(rng, 100), angle=2.0, white=250.0)
    corner = params.apply(bgr, rng)[:6, :6].reshape(-1, 3).mean(axis=0)
    assert np.ptp(corner) < 6  # the scanner's lid is grey, not blue
    with pytest.raises(TypeError):
        majority([bgr, bgr, bgr])


# -- the benchmark's registry --------------------------------------------------------------


def test_every_named_attack_runs_on_its_number_of_copies() -> None:
    assert {"print-scan", "phone-photo", "crop-half", "screenshot"} <= set(ATTACKS_ON_PAGES)
    for k in (2, 3):
        for name in ("average", "majority", "median", "interleave-pages", "interleave-lines"):
            assert ATTACKS_ON_PAGES[f"{name}-{k}"].colluders == k
    rng = np.random.default_rng(17)
    small = [[_text_page(350, 250, shift=c), _text_page(350, 250, shift=c + 1)] for c in range(3)]
    for name, attack in ATTACKS_ON_PAGES.items():
        pages = attack(small[: attack.colluders], rng, source_dpi=100)
        assert len(pages) == 2, name
        assert all(p.dtype == np.uint8 and p.ndim == 2 for p in pages), name
    with pytest.raises(ValueError):
        ATTACKS_ON_PAGES["average-3"](small[:2], rng, source_dpi=100)
