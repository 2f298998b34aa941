"""Tracing codes (issue 17, first slice): collusion simulations at benchmark scale.

For c = 2 and c = 3 colluders among n = 10,000 recipients, ε = 10⁻³, every attack in
``relto.tracing.attacks`` (plus interleaving with 20 % random erasures and with a crop
to 80 %): TRIALS trials, each with a fresh per-object secret and random colluders.
Each trial scores the colluders and INNOCENTS randomly chosen innocents; a second,
smaller run scores all n per trial to time a full accusation and count false
accusations over every recipient. Prints catch rate with its 95 % Clopper–Pearson
lower bound, false accusations, the code length against Škorić et al.'s theoretical
symmetric-Tardos length, and time per accusation.

    .venv/bin/python bench/tracing_code.py [--trials 3000] [--innocents 200] [--full 100]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Sequence

from relto.tracing import TracingCode, code_parameters, unpack
from relto.tracing.attacks import ATTACKS, Attack, crop, erase, interleave

N = 10_000
EPSILON = 1e-3


def _binom_tail_ge(k: int, n: int, p: float) -> float:
    """P[X ≥ k] for X ~ Bin(n, p)."""
    if p <= 0.0:
        return 0.0 if k > 0 else 1.0
    if p >= 1.0:
        return 1.0
    terms = [
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * math.log(p)
            + (n - i) * math.log1p(-p)
        )
        for i in range(k, n + 1)
    ]
    return math.fsum(terms)


def clopper_pearson_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Two-sided Clopper–Pearson lower bound (the one-sided (1+confidence)/2 bound)."""
    if successes == 0:
        return 0.0
    alpha = (1.0 - confidence) / 2.0
    lo, hi = 0.0, successes / trials
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if _binom_tail_ge(successes, trials, mid) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


def clopper_pearson_upper(successes: int, trials: int, confidence: float = 0.95) -> float:
    return 1.0 - clopper_pearson_lower(trials - successes, trials, confidence)


def _erased(words: Sequence[Sequence[int]], rng: random.Random) -> list[int | None]:
    return erase(interleave(words, rng), 0.2, rng)


def _cropped(words: Sequence[Sequence[int]], rng: random.Random) -> list[int | None]:
    return crop(interleave(words, rng), 0.8, rng)


SETTINGS: dict[str, Attack] = {
    **ATTACKS,
    "interleave+20% erased": _erased,
    "interleave+crop 80%": _cropped,
}


def run(c: int, name: str, attack: Attack, trials: int, innocents: int, seed: str) -> None:
    params = code_parameters(c, N, EPSILON)
    rng = random.Random(seed)
    caught = accused_innocents = scored_innocents = trials_with_false = 0
    worst = 0.0
    for _ in range(trials):
        code = TracingCode(rng.randbytes(32), params)
        colluders = rng.sample(range(N), c)
        words = [unpack(code.codeword(r), params.length) for r in colluders]
        pirate = attack(words, rng)
        others = sorted(set(rng.sample(range(N), innocents)) - set(colluders))
        result = code.accuse(pirate, [*colluders, *others])
        accused = {r for r, _ in result.accused}
        caught += bool(accused & set(colluders))
        bad = len(accused - set(colluders))
        accused_innocents += bad
        trials_with_false += bool(bad)
        scored_innocents += len(others)
        if result.bits_used:
            top = max(code.scores(pirate, others))
            worst = max(worst, top / result.threshold)
    print(
        f"| {c} | {name} | {trials} | {caught / trials:.4f} | "
        f"{clopper_pearson_lower(caught, trials):.4f} | {accused_innocents} / {scored_innocents} | "
        f"{clopper_pearson_upper(trials_with_false, trials):.4f} | {worst:.2f} |",
        flush=True,
    )


def run_full(c: int, trials: int, seed: str) -> None:
    params = code_parameters(c, N, EPSILON)
    rng = random.Random(seed)
    times = []
    caught = false = 0
    names = sorted(SETTINGS)
    for t in range(trials):
        code = TracingCode(rng.randbytes(32), params)
        colluders = rng.sample(range(N), c)
        words = [unpack(code.codeword(r), params.length) for r in colluders]
        pirate = SETTINGS[names[t % len(names)]](words, rng)
        start = time.perf_counter()
        result = code.accuse(pirate, range(N))
        times.append(time.perf_counter() - start)
        accused = {r for r, _ in result.accused}
        caught += bool(accused & set(colluders))
        false += len(accused - set(colluders))
    print(
        f"| {c} | all attacks in turn, all {N} scored | {trials} | {caught / trials:.4f} | "
        f"{clopper_pearson_lower(caught, trials):.4f} | {false} / {trials * (N - c)} | "
        f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
        f"per accusation over all n |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--innocents", type=int, default=200)
    parser.add_argument("--full", type=int, default=100)
    args = parser.parse_args()
    for c in (2, 3):
        p = code_parameters(c, N, EPSILON)
        print(
            f"c={c} n={N} eps={EPSILON}: length {p.length} bits (theoretical symmetric Tardos "
            f"{p.theoretical_length:.0f}), Z={p.threshold:.2f}, rigorous miss bound {p.miss:.2e}, "
            f"min bits {p.min_bits}, biases {[round(v, 5) for v in p.bias_values]}"
        )
    print()
    print(
        "| c | attack | trials | catch rate | 95 % lower (CP) | innocents accused / scored "
        "| 95 % upper on P(any false accusation in a trial) | max innocent score / Z |"
    )
    print("|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    for c in (2, 3):
        for name, attack in SETTINGS.items():
            run(c, name, attack, args.trials, args.innocents, f"bench-{c}-{name}")
    print(f"\n(sampled runs: {time.perf_counter() - start:.0f} s)\n")
    print(
        "| c | setting | trials | catch rate | 95 % lower (CP) | innocents accused / scored "
        "| time |"
    )
    print("|---|---|---|---|---|---|---|")
    for c in (2, 3):
        run_full(c, args.full, f"bench-full-{c}")


if __name__ == "__main__":
    main()
