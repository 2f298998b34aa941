"""Leak tracing (issue 17): embedded copies under attack, end to end.

Every trial is the whole chain on real copies: a recipient's codeword (c = 3,
n = 10,000, ε = 10⁻³) embedded by the document embedder (``relto.tracing.docmark``:
a per-recipient PDF, line and word shifts) or the image embedder
(``relto.tracing.imagemark``: a figure), the copies of 1–3 randomly chosen
recipients rasterised, combined and degraded by an attack of
``relto.tracing.degrade``, the codeword read back through the ``Embedder`` protocol,
and an accusation over all n recipients. A trial *catches* when at least one
colluder is accused; every other recipient scored (the pool's non-colluders and the
rest of the n = 10,000, whose codewords exist but whose copies were never rendered)
is an innocent, and accusing one is a false accusation.

To keep a trial affordable on one core, each object's copies are made once, for a
pool of recipients (``--pool``, split over ``--objects`` objects with their own
secrets); colluders, pages and attack randomness are drawn per trial. Extraction is
per trial and dominates. The next trial goes to the setting that has had the least
(weighted, ``--weights``) time so far (``--schedule time``; ``rounds``: the fewest
trials), so that when ``--time-limit`` stops the run every setting has had its share;
every trial's record can be kept (``--jsonl``) and tabled again later (``--report``).

A document trial costs tens of seconds (several pages, each registered and read), so
3,000 trials per setting do not fit a working session on one core. ``--model N``
adds N code-level trials per setting under the channel the real trials measured
(for each trial, how often a position was read 0, read 1 or erased, given how many
colluders hold a 1 there): it extends a measured channel to many fresh codes and is
reported apart from the measurement, never as it.

Settings are ``<medium>:<attack>[@pages]``: ``doc`` (the document), ``fig`` (the
figure, relto's image watermark) or ``base`` (the same figure with the invisible-
watermark baseline, ``relto.tracing.baseline``, dwtDct, read blind); ``attack`` names
a pipeline of ``relto.tracing.degrade.ATTACKS_ON_PAGES``; ``@k`` leaks k pages
(documents; default: the fewest consecutive pages that carry every code position).

Reports per setting: trials, catch rate with its two-sided 95 % Clopper–Pearson lower
bound, innocents accused / scored with the rate's upper bound and the upper bound on
P(any false accusation in a trial), bits read / erased / wrong (a wrong bit is one
read against the bit every colluder holds: a breach of the marking assumption), and
time per trial; then the baseline lengths, pages needed, and the issue's two timings
(fingerprinting a 20-page document, tracing one scanned page).

    .venv/bin/python bench/tracing.py [--trials 3000] [--quick] [--settings doc:print-scan,...]
        [--time-limit SECONDS] [--pool 200] [--objects 4] [--jsonl FILE] [--model 3000]
    .venv/bin/python bench/tracing.py --report FILE.jsonl [--model 3000]

Runs on one core (OpenCV and BLAS threads are pinned to 1). Exits non-zero only on a crash.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from relto.tracing import TracingCode, code_parameters, theoretical_length, unpack  # noqa: E402
from relto.tracing.degrade import ATTACKS_ON_PAGES, Pipeline, print_scan  # noqa: E402
from relto.tracing.embedding import Embedder, Marking  # noqa: E402

cv2.setNumThreads(1)

_FAILURES: list[str] = []

C = 3
N = 10_000
EPSILON = 1e-3
PARAMS = code_parameters(C, N, EPSILON)
M = PARAMS.length

PRINT_DPI = 300.0  # a page is printed (or photographed) from a rendering at this resolution
DIGITAL_DPI = 200.0  # the node rasterises a leaked PDF at this resolution (docmark.LEAK_DPI)
FIGURE_DPI = 200.0  # the figure (800 px wide) printed 4 inches wide

#: The issue's attacks: print-and-scan, phone photo, half a page, collusion of 2 and 3
#: copies by averaging, interleaving pages or lines and majority vote (for a figure,
#: the grey-level median: binarising a figure would destroy it).
DEFAULT_SETTINGS = (
    *(
        f"doc:{a}"
        for a in (
            "print-scan",
            "phone-photo",
            "crop-half",
            "average-2",
            "average-3",
            "interleave-pages-3",
            "interleave-lines-3",
            "majority-3",
        )
    ),
    *(
        f"{medium}:{a}"
        for medium in ("fig", "base")
        for a in (
            "none",
            "print-scan",
            "phone-photo",
            "crop-half",
            "average-2",
            "average-3",
            "median-3",
        )
    ),
)


# -- statistics ---------------------------------------------------------------------------


def _log_pmf(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def binom_cdf(k: int, n: int, p: float) -> float:
    """P[X ≤ k] for X ~ Bin(n, p), summing the shorter tail (exact up to rounding)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if k < n - k:
        return min(1.0, math.fsum(math.exp(_log_pmf(i, n, p)) for i in range(k + 1)))
    upper = math.fsum(math.exp(_log_pmf(i, n, p)) for i in range(k + 1, n + 1))
    return max(0.0, 1.0 - upper)


def _bisect(fn: Callable[[float], bool], lo: float, hi: float) -> float:
    """The boundary in [lo, hi] where ``fn`` turns from true to false."""
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if fn(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return lo


def cp_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Two-sided Clopper–Pearson lower bound: P[X ≥ successes | p] = (1 - confidence)/2."""
    if trials <= 0 or successes <= 0:
        return 0.0
    alpha = (1.0 - confidence) / 2.0
    # P[X >= s | p] grows with p; the bound is where it reaches alpha
    return _bisect(
        lambda p: 1.0 - binom_cdf(successes - 1, trials, p) < alpha, 0.0, successes / trials
    )


def cp_upper(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Two-sided Clopper–Pearson upper bound: P[X ≤ successes | p] = (1 - confidence)/2."""
    if trials <= 0:
        return 1.0
    if successes >= trials:
        return 1.0
    alpha = (1.0 - confidence) / 2.0
    return _bisect(lambda p: binom_cdf(successes, trials, p) >= alpha, successes / trials, 1.0)


# -- content --------------------------------------------------------------------------------

_WORDS = (  # noqa: SIM905
    "the partner nation shall receive controlled technical data only under a valid licence "
    "and every release is recorded with its recipient classification and purpose while the "
    "originating office keeps the right to revoke access review the handling of each copy "
    "audit storage and destruction report any loss within one working day and confirm that "
    "export rules foreign disclosure policy and programme security instructions are met for "
    "design drawings test results software interface specifications maintenance manuals and "
    "training material exchanged between the participating governments and their contractors"
).split()


def document_text(pages: int = 20, seed: int = 17) -> bytes:
    """Plain-text prose that lays out to about ``pages`` A4 pages (deterministic)."""
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(pages * 6):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(35, 110))]
        paragraphs.append(" ".join(words).capitalize() + ".")
    return "\n\n".join(paragraphs).encode()


def figure_png(seed: int = 23) -> bytes:
    """An 800x600 colour figure: a photo-like panel beside a line chart, with labels."""
    rng = np.random.default_rng(seed)
    height, width = 600, 800
    img = np.full((height, width, 3), 255.0, np.float32)
    # the photo-like panel: smooth terrain at several scales, coloured
    terrain = np.zeros((500, 360), np.float32)
    for cell, amplitude in ((120, 60.0), (40, 30.0), (12, 14.0), (4, 7.0)):
        small = rng.standard_normal((500 // cell + 2, 360 // cell + 2)).astype(np.float32)
        terrain += amplitude * cv2.resize(small, (360, 500), interpolation=cv2.INTER_CUBIC)
    level = np.clip(128.0 + terrain, 0.0, 255.0)
    img[60:560, 20:380, 0] = np.clip(level * 0.55 + 40.0, 0, 255)  # B
    img[60:560, 20:380, 1] = np.clip(level * 0.85 + 20.0, 0, 255)  # G
    img[60:560, 20:380, 2] = np.clip(level * 0.75, 0, 255)  # R
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    # the chart: axes, grid, three series, ticks and labels
    x0, y0, x1, y1 = 450, 80, 770, 520
    for gx in range(x0, x1 + 1, 40):
        cv2.line(canvas, (gx, y0), (gx, y1), (225, 225, 225), 1)
    for gy in range(y0, y1 + 1, 55):
        cv2.line(canvas, (x0, gy), (x1, gy), (225, 225, 225), 1)
    cv2.line(canvas, (x0, y1), (x1, y1), (0, 0, 0), 2)
    cv2.line(canvas, (x0, y0), (x0, y1), (0, 0, 0), 2)
    xs = np.linspace(x0, x1, 60)
    for k, colour in enumerate(((200, 80, 30), (40, 40, 200), (30, 150, 40))):
        walk = np.cumsum(rng.standard_normal(60)) * 12.0 + (y0 + y1) / 2 + (k - 1) * 90
        points = np.stack([xs, np.clip(walk, y0 + 5, y1 - 5)], axis=1).astype(np.int32)
        cv2.polylines(canvas, [points], False, colour, 2, cv2.LINE_AA)
    for i, gx in enumerate(range(x0, x1 + 1, 80)):
        cv2.putText(
            canvas,
            str(i * 20),
            (gx - 8, y1 + 22),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    cv2.putText(
        canvas,
        "Fig. 3  Test range, sensor returns",
        (20, 38),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.8,
        (0, 0, 0),
        2,
        cv2.LINE_AA,
    )
    cv2.putText(
        canvas, "range (km)", (560, 580), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
    )
    ok, data = cv2.imencode(".png", canvas)
    assert ok
    return bytes(data)


# -- media and pools ----------------------------------------------------------------------------


def _marking(obj: int, recipient: int) -> Marking:
    return Marking(
        banner="SECRET//REL TO AUS, GBR, USA",
        recipient=f"Recipient {recipient:05d}",
        nation=("AUS", "GBR", "USA")[recipient % 3],
        copy_number=recipient + 1,
        object_ref=f"bench-object-{obj}",
    )


def _render_pdf(data: bytes, first: int, count: int, dpi: float) -> list[np.ndarray]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    try:
        out = []
        for i in range(first, first + count):
            page = doc[i]
            bitmap = page.render(scale=dpi / 72.0, grayscale=True)
            arr = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
            bitmap.close()
            page.close()
            out.append(arr.reshape(arr.shape[0], arr.shape[1], -1)[:, :, 0].copy())
        return out
    finally:
        doc.close()


@dataclass
class Obj:
    """One object: its secret, the embedder key, its code and the pool's copies."""

    index: int
    code: TracingCode
    key: bytes
    recipients: list[int]
    copies: dict[int, Any] = field(default_factory=dict)  # recipient -> copy (bytes or array)


@dataclass
class Medium:
    name: str
    content: bytes
    media_type: str
    filename: str
    embedder: Embedder | None
    objects: list[Obj]
    pages_total: int = 1
    leak_pages: int = 1
    capacity: list[int] = field(default_factory=list)
    make_seconds: float = 0.0


def _objects(rng: random.Random, count: int, pool: int) -> list[Obj]:
    per = max(C, pool // count)
    objs = []
    for o in range(count):
        code = TracingCode(rng.randbytes(32), PARAMS)
        recipients = sorted(rng.sample(range(N), per))
        objs.append(Obj(o, code, rng.randbytes(32), recipients))
    return objs


def _leak_pages(capacity: Sequence[int]) -> int:
    """The fewest consecutive full pages that, wherever they start, carry ≥ M slots."""
    full = list(capacity[:-1]) if len(capacity) > 1 else list(capacity)
    for k in range(1, len(full) + 1):
        if all(sum(full[s : s + k]) >= M for s in range(len(full) - k + 1)):
            return k
    return len(full)


def make_document(rng: random.Random, objects: int, pool: int) -> Medium:
    from relto.tracing.docmark import DocumentEmbedder

    embedder = DocumentEmbedder()
    content = document_text()
    capacity = embedder.capacity(content, "text/plain", "bench.txt")
    medium = Medium(
        "doc", content, "text/plain", "bench.txt", embedder, _objects(rng, objects, pool)
    )
    medium.capacity = capacity
    medium.pages_total = len(capacity)
    medium.leak_pages = _leak_pages(capacity)
    start = time.perf_counter()
    for obj in medium.objects:
        for r in obj.recipients:
            bits = unpack(obj.code.codeword(r), M)
            copy = embedder.embed(
                content, medium.media_type, medium.filename, bits, obj.key, _marking(obj.index, r)
            )
            obj.copies[r] = copy.data
    medium.make_seconds = time.perf_counter() - start
    return medium


def make_figure(rng: random.Random, objects: int, pool: int) -> Medium:
    from relto.tracing.imagemark import ImageEmbedder

    embedder = ImageEmbedder()
    content = figure_png()
    medium = Medium(
        "fig", content, "image/png", "figure.png", embedder, _objects(rng, objects, pool)
    )
    start = time.perf_counter()
    for obj in medium.objects:
        for r in obj.recipients:
            bits = unpack(obj.code.codeword(r), M)
            copy = embedder.embed(
                content, medium.media_type, medium.filename, bits, obj.key, _marking(obj.index, r)
            )
            obj.copies[r] = copy.data
    medium.make_seconds = time.perf_counter() - start
    return medium


def make_baseline(rng: random.Random, objects: int, pool: int) -> Medium:
    from relto.tracing.baseline import embed_baseline

    content = figure_png()
    rgb = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    medium = Medium("base", content, "image/png", "figure.png", None, _objects(rng, objects, pool))
    start = time.perf_counter()
    for obj in medium.objects:
        for r in obj.recipients:
            marked = embed_baseline(rgb, unpack(obj.code.codeword(r), M))
            obj.copies[r] = cv2.cvtColor(marked, cv2.COLOR_RGB2BGR)
    medium.make_seconds = time.perf_counter() - start
    return medium


def _decode_colour(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


# -- trials -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str
    medium: str
    attack: Pipeline
    pages: int | None  # documents: pages leaked (None: the medium's default)


def parse_setting(name: str) -> Setting:
    medium, _, rest = name.partition(":")
    attack, _, pages = rest.partition("@")
    if medium not in ("doc", "fig", "base") or attack not in ATTACKS_ON_PAGES:
        raise SystemExit(
            f"unknown setting {name!r}: <doc|fig|base>:<attack>[@pages], "
            f"attacks: {', '.join(ATTACKS_ON_PAGES)}"
        )
    if medium != "doc" and pages:
        raise SystemExit(f"{name!r}: only documents leak a number of pages")
    pipeline = ATTACKS_ON_PAGES[attack]
    if medium != "doc" and ("majority" in attack or "interleave" in attack):
        raise SystemExit(f"{name!r}: {attack} is for pages of text")
    return Setting(name, medium, pipeline, int(pages) if pages else None)


def _source_dpi(setting: Setting) -> float:
    if setting.medium != "doc":
        return FIGURE_DPI
    printed = "print-scan" in setting.attack.name or "phone-photo" in setting.attack.name
    return PRINT_DPI if printed else DIGITAL_DPI


def run_trial(
    setting: Setting, medium: Medium, rng: random.Random, nprng: np.random.Generator
) -> dict[str, Any]:
    obj = medium.objects[rng.randrange(len(medium.objects))]
    colluders = rng.sample(obj.recipients, setting.attack.colluders)
    dpi = _source_dpi(setting)
    t0 = time.perf_counter()
    if medium.name == "doc":
        count = setting.pages or medium.leak_pages
        full = max(1, medium.pages_total - 1)  # the last, short page is never a leak's start
        first = rng.randrange(max(1, full - count + 1))
        count = min(count, medium.pages_total - first)
        copies = [_render_pdf(obj.copies[r], first, count, dpi) for r in colluders]
    elif medium.name == "fig":
        copies = [[_decode_colour(obj.copies[r])] for r in colluders]
    else:
        copies = [[obj.copies[r]] for r in colluders]
    t1 = time.perf_counter()
    leaked = setting.attack(copies, nprng, source_dpi=dpi)
    t2 = time.perf_counter()
    failed = ""
    bits: list[int | None]
    try:
        if medium.name == "base":
            from relto.tracing.baseline import extract_baseline

            rgb = [cv2.cvtColor(p, cv2.COLOR_BGR2RGB) if p.ndim == 3 else p for p in leaked]
            bits = list(extract_baseline(rgb[0], M))
        else:
            assert medium.embedder is not None
            reading = medium.embedder.extract(
                [_grey(p) for p in leaked],
                medium.content,
                medium.media_type,
                medium.filename,
                obj.key,
                M,
            )
            bits = list(reading.bits)
    except Exception as exc:  # a reader that gives up reads nothing; counted, shown once
        failed = f"{type(exc).__name__}: {exc}"
        if not _FAILURES:
            traceback.print_exc()
        _FAILURES.append(failed)
        bits = [None] * M
    t3 = time.perf_counter()
    accusation = obj.code.accuse(bits, range(N))
    t4 = time.perf_counter()
    words = [unpack(obj.code.codeword(r), M) for r in colluders]
    read = [i for i, b in enumerate(bits) if b is not None]
    agreed = [i for i in read if all(w[i] == words[0][i] for w in words)]
    wrong = sum(bits[i] != words[0][i] for i in agreed)
    accused = {r for r, _ in accusation.accused}
    colluder_scores = obj.code.scores(bits, colluders) if read else [0.0] * len(colluders)
    z = accusation.threshold
    # the channel: outcome counts (read 0, read 1, erased) by how many colluders hold a 1
    channel = [[0, 0, 0] for _ in range(len(colluders) + 1)]
    for i, bit in enumerate(bits):
        sigma = sum(w[i] for w in words)
        channel[sigma][2 if bit is None else bit] += 1
    return {
        "setting": setting.name,
        "colluders": len(colluders),
        "pages": len(leaked),
        "caught": bool(accused & set(colluders)),
        "innocents_accused": len(accused - set(colluders)),
        "innocents_scored": N - len(colluders),
        "read": len(read),
        "erased": M - len(read),
        "agreed_read": len(agreed),
        "wrong": wrong,
        "best_colluder_over_z": (max(colluder_scores) / z) if math.isfinite(z) and z > 0 else 0.0,
        "channel": channel,
        "failed": failed,
        "seconds_render": t1 - t0,
        "seconds_attack": t2 - t1,
        "seconds_extract": t3 - t2,
        "seconds_accuse": t4 - t3,
    }


# -- tables -------------------------------------------------------------------------------------


def _fmt_rate(x: float) -> str:
    if x == 0.0:
        return "0"
    if x >= 1e-2:
        return f"{x:.4f}"
    return f"{x:.1e}"


def table(records: Sequence[dict[str, Any]], order: Sequence[str]) -> str:
    by: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by.setdefault(rec["setting"], []).append(rec)
    lines = [
        "| setting | copies | pages | trials | catch rate | 95 % lower (CP) "
        "| innocents accused / scored | 95 % upper: per innocent "
        "| 95 % upper: P(false accusation in a trial) | bits read | erased | wrong "
        "| bit accuracy | best colluder / Z (min, median) | s per trial (extract) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in [*order, *sorted(set(by) - set(order))]:
        recs = by.get(name)
        if not recs:
            continue
        t = len(recs)
        caught = sum(r["caught"] for r in recs)
        bad = sum(r["innocents_accused"] for r in recs)
        scored = sum(r["innocents_scored"] for r in recs)
        bad_trials = sum(r["innocents_accused"] > 0 for r in recs)
        margins = [r["best_colluder_over_z"] for r in recs]
        seconds = [
            r["seconds_render"] + r["seconds_attack"] + r["seconds_extract"] + r["seconds_accuse"]
            for r in recs
        ]
        mean = statistics.mean
        agreed = sum(r["agreed_read"] for r in recs)
        accuracy = f"{1 - sum(r['wrong'] for r in recs) / agreed:.4f}" if agreed else "-"
        lines.append(
            f"| {name} | {recs[0]['colluders']} | {mean(r['pages'] for r in recs):.0f} | {t} "
            f"| {caught / t:.4f} | {cp_lower(caught, t):.4f} | {bad} / {scored:,} "
            f"| {_fmt_rate(cp_upper(bad, scored))} | {_fmt_rate(cp_upper(bad_trials, t))} "
            f"| {mean(r['read'] for r in recs):.0f} | {mean(r['erased'] for r in recs):.0f} "
            f"| {mean(r['wrong'] for r in recs):.2f} | {accuracy} "
            f"| {min(margins):.2f}, {statistics.median(margins):.2f} "
            f"| {mean(seconds):.1f} ({mean(r['seconds_extract'] for r in recs):.1f}) |"
        )
    return "\n".join(lines)


# -- the measured channel, many trials ---------------------------------------------------------

MODEL_INNOCENTS = 200


def model_table(
    records: Sequence[dict[str, Any]], order: Sequence[str], trials: int, seed: str
) -> str:
    """Code-level trials under the channels the end-to-end trials measured.

    Each model trial takes a fresh secret and fresh colluders, picks one measured trial
    of the setting at random and draws every position's outcome (read 0, read 1,
    erased) from that trial's counts for the same number of colluders holding a 1.
    Positions are independent given that number, and colluders are symmetric; the
    real trials are the measurement, this extends their channel to many codes.
    """
    by: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by.setdefault(rec["setting"], []).append(rec)
    lines = [
        f"modelled: {trials} code-level trials per setting under the measured channels "
        f"({MODEL_INNOCENTS} innocents sampled per trial)",
        "",
        "| setting | measured trials | model trials | catch rate | 95 % lower (CP) "
        "| innocents accused / scored | 95 % upper: per innocent |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in [*order, *sorted(set(by) - set(order))]:
        recs = by.get(name)
        if not recs:
            continue
        k = recs[0]["colluders"]
        pooled = [[sum(r["channel"][sg][o] for r in recs) for o in range(3)] for sg in range(k + 1)]
        rng = random.Random(f"{seed}-model-{name}")
        caught = bad = scored = 0
        for _ in range(trials):
            channel = rng.choice(recs)["channel"]
            code = TracingCode(rng.randbytes(32), PARAMS)
            colluders = rng.sample(range(N), k)
            words = [unpack(code.codeword(r), M) for r in colluders]
            pirate: list[int | None] = []
            for i in range(M):
                sigma = sum(w[i] for w in words)
                counts = channel[sigma] if sum(channel[sigma]) else pooled[sigma]
                u = rng.random() * sum(counts)
                pirate.append(0 if u < counts[0] else 1 if u < counts[0] + counts[1] else None)
            others = sorted(set(rng.sample(range(N), MODEL_INNOCENTS)) - set(colluders))
            accused = {r for r, _ in code.accuse(pirate, [*colluders, *others]).accused}
            caught += bool(accused & set(colluders))
            bad += len(accused - set(colluders))
            scored += len(others)
        lines.append(
            f"| {name} | {len(recs)} | {trials} | {caught / trials:.4f} "
            f"| {cp_lower(caught, trials):.4f} | {bad} / {scored:,} "
            f"| {_fmt_rate(cp_upper(bad, scored))} |"
        )
    return "\n".join(lines)


# -- timings ------------------------------------------------------------------------------------


def timings(doc: Medium | None, fig: Medium | None) -> list[str]:
    out = []
    if doc is not None:
        from relto.tracing.docmark import DocumentEmbedder

        obj = doc.objects[0]
        r = obj.recipients[0]
        bits = unpack(obj.code.codeword(r), M)
        cold = []
        for _ in range(3):
            fresh = DocumentEmbedder()
            t = time.perf_counter()
            copy = fresh.embed(
                doc.content, doc.media_type, doc.filename, bits, obj.key, _marking(0, r)
            )
            cold.append(time.perf_counter() - t)
        assert doc.embedder is not None
        warm = []
        for _ in range(3):
            t = time.perf_counter()
            doc.embedder.embed(
                doc.content, doc.media_type, doc.filename, bits, obj.key, _marking(0, r)
            )
            warm.append(time.perf_counter() - t)
        out.append(
            f"fingerprint the {copy.pages}-page document (one recipient's PDF, "
            f"{copy.positions} positions carried): {statistics.median(cold):.2f} s from scratch "
            f"(layout included), "
            f"{statistics.median(warm):.2f} s with the layout cached (median of 3; target <= 2 s)"
        )
        nprng = np.random.default_rng(99)
        page_no = min(2, doc.pages_total - 1)
        cold_t, warm_t, accuse_t = [], [], []
        for i in range(3):
            scanned = print_scan(
                _render_pdf(obj.copies[r], page_no, 1, PRINT_DPI)[0], nprng, source_dpi=PRINT_DPI
            )
            fresh = DocumentEmbedder()
            t = time.perf_counter()
            fresh.extract([scanned], doc.content, doc.media_type, doc.filename, obj.key, M)
            cold_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            reading = doc.embedder.extract(
                [scanned], doc.content, doc.media_type, doc.filename, obj.key, M
            )
            warm_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            obj.code.accuse(list(reading.bits), range(N))
            accuse_t.append(time.perf_counter() - t)
            if i == 0:
                out.append(
                    f"  (a scanned page: {reading.read} bits read; {'; '.join(reading.notes)})"
                )
        out.append(
            f"trace one print-scanned page: extraction {statistics.median(cold_t):.2f} s "
            f"from scratch (reference rendered), {statistics.median(warm_t):.2f} s with the "
            f"reference cached; accusation over all n = {N:,}: "
            f"{statistics.median(accuse_t):.2f} s (median of 3; target <= 5 s)"
        )
    if fig is not None:
        assert fig.embedder is not None
        obj = fig.objects[0]
        r = obj.recipients[0]
        bits = unpack(obj.code.codeword(r), M)
        t = time.perf_counter()
        fig.embedder.embed(fig.content, fig.media_type, fig.filename, bits, obj.key, _marking(0, r))
        embed_s = time.perf_counter() - t
        scanned = print_scan(
            _decode_colour(obj.copies[r]), np.random.default_rng(98), source_dpi=FIGURE_DPI
        )
        t = time.perf_counter()
        fig.embedder.extract(
            [_grey(scanned)], fig.content, fig.media_type, fig.filename, obj.key, M
        )
        out.append(
            f"figure (800x600): embed {embed_s:.2f} s, "
            f"extract from a print-scan {time.perf_counter() - t:.2f} s"
        )
    return out


# -- main ---------------------------------------------------------------------------------------


_USED = (
    "bench/tracing.py",
    "src/relto/tracing/__init__.py",
    "src/relto/tracing/code.py",
    "src/relto/tracing/params.py",
    "src/relto/tracing/embedding.py",
    "src/relto/tracing/degrade.py",
    "src/relto/tracing/docmark.py",
    "src/relto/tracing/_doc",
    "src/relto/tracing/imagemark.py",
    "src/relto/tracing/baseline.py",
)


def provenance() -> str:
    """The commit, and the tracing modules that differ from it (by content hash)."""
    import hashlib
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *_USED],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "git: not available"
    changed = []
    for line in filter(None, dirty):
        path = root / line[3:]
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if f.exists():
                digest = hashlib.sha256(f.read_bytes()).hexdigest()[:10]
                changed.append(f"{f.relative_to(root)} ({line[:2].strip()} {digest})")
    return f"commit {head}" + (f"; uncommitted: {', '.join(changed)}" if changed else "")


def _load(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, default=3000, help="trials per setting (default 3000)"
    )
    parser.add_argument("--quick", action="store_true", help="200 trials per setting")
    parser.add_argument(
        "--settings", default=",".join(DEFAULT_SETTINGS), help="comma-separated settings"
    )
    parser.add_argument(
        "--time-limit", type=float, default=0.0, help="stop starting rounds after this many seconds"
    )
    parser.add_argument(
        "--pool", type=int, default=200, help="recipients whose copies are made, per medium"
    )
    parser.add_argument(
        "--objects", type=int, default=4, help="objects (secrets) the pool is split over"
    )
    parser.add_argument("--seed", default="relto-bench-tracing")
    parser.add_argument("--jsonl", help="append every trial's record to this file")
    parser.add_argument("--report", help="only print the tables of a --jsonl file")
    parser.add_argument(
        "--table-every", type=float, default=900.0, help="seconds between interim tables"
    )
    parser.add_argument("--no-timings", action="store_true")
    parser.add_argument(
        "--schedule",
        choices=("time", "rounds"),
        default="time",
        help="next trial: the setting with the least time so far (default) or fewest trials",
    )
    parser.add_argument("--progress-every", type=float, default=60.0)
    parser.add_argument(
        "--weights",
        default="doc=1,fig=1,base=1",
        help="time shares per medium for --schedule time, e.g. doc=4,fig=1,base=0.5",
    )
    parser.add_argument(
        "--model",
        type=int,
        default=0,
        help="also run this many code-level trials per setting under the measured channels",
    )
    args = parser.parse_args()

    settings = [parse_setting(s.strip()) for s in args.settings.split(",") if s.strip()]
    order = [s.name for s in settings]
    if args.report:
        records = [r for r in _load(args.report) if r["setting"] in order]
        print(table(records, order))
        if args.model:
            print()
            print(model_table(records, order, args.model, args.seed))
        return 0
    trials = 200 if args.quick else args.trials

    print(provenance(), flush=True)
    print(
        f"code: c={C} n={N:,} eps={EPSILON}: length {M} bits (budget 1,300), "
        f"Z={PARAMS.threshold:.2f}; theoretical symmetric Tardos (pi^2/2) c^2 ln(n/eps) = "
        f"{theoretical_length(C, N, EPSILON):.0f} bits"
    )
    media: dict[str, Medium] = {}
    needed = {s.medium for s in settings}
    for name, make in (("doc", make_document), ("fig", make_figure), ("base", make_baseline)):
        if name in needed or (name in ("doc", "fig") and not args.no_timings):
            medium = make(random.Random(f"{args.seed}-{name}"), args.objects, args.pool)
            media[name] = medium
            per = sum(len(o.recipients) for o in medium.objects)
            line = (
                f"{name}: {per} copies over {len(medium.objects)} objects, "
                f"{medium.make_seconds:.0f} s"
            )
            if name == "doc":
                line += (
                    f"; {medium.pages_total} pages, slots per page {medium.capacity[:-1]} "
                    f"(last {medium.capacity[-1]}); {medium.leak_pages} consecutive pages carry "
                    f"all {M} positions"
                )
            print(line, flush=True)
    if not args.no_timings:
        for line in timings(media.get("doc"), media.get("fig")):
            print(line, flush=True)
    print(flush=True)

    records: list[dict[str, Any]] = []
    sink = open(args.jsonl, "a", encoding="utf-8") if args.jsonl else None  # noqa: SIM115
    rngs = {}
    for s in settings:  # each setting its own generators, so that settings can be re-run alone
        py = random.Random(f"{args.seed}-{s.name}")
        rngs[s.name] = (py, np.random.default_rng(py.getrandbits(64)))
    start = last_table = last_progress = time.perf_counter()
    spent = {s.name: 0.0 for s in settings}
    weights = {"doc": 1.0, "fig": 1.0, "base": 1.0}
    for item in filter(None, args.weights.split(",")):
        medium, _, value = item.partition("=")
        weights[medium.strip()] = float(value)
    done = {s.name: 0 for s in settings}
    stopped = ""
    try:
        while True:
            elapsed = time.perf_counter() - start
            if args.time_limit and elapsed > args.time_limit:
                stopped = f"time limit ({args.time_limit:.0f} s) reached"
                break
            open_settings = [s for s in settings if done[s.name] < trials]
            if not open_settings:
                break
            if args.schedule == "rounds":
                s = min(open_settings, key=lambda s: done[s.name])
            else:  # the setting that has had the least (weighted) time so far
                s = min(open_settings, key=lambda s: spent[s.name] / weights[s.medium])
            py, nprng = rngs[s.name]
            t = time.perf_counter()
            rec = run_trial(s, media[s.medium], py, nprng)
            spent[s.name] += time.perf_counter() - t
            done[s.name] += 1
            records.append(rec)
            if sink is not None:
                sink.write(json.dumps(rec) + "\n")
                sink.flush()
            now = time.perf_counter()
            if now - last_progress > args.progress_every:
                fewest = min(done, key=lambda n: done[n])
                print(
                    f"{now - start:.0f} s: {len(records)} trials; "
                    f"fewest {done[fewest]} ({fewest}), most {max(done.values())}",
                    flush=True,
                )
                last_progress = now
            if now - last_table > args.table_every:
                print(table(records, order), flush=True)
                last_table = now
    finally:
        if sink is not None:
            sink.close()
    print()
    if stopped:
        print(stopped)
    print(f"trials: {len(records)} in {time.perf_counter() - start:.0f} s")
    if _FAILURES:
        print(f"readers that raised: {len(_FAILURES)} (first: {_FAILURES[0]})")
    print(table(records, order), flush=True)
    if args.model:
        print()
        print(model_table(records, order, args.model, args.seed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
