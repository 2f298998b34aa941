"""Collusion simulations with a fixed seed: colluders are caught, innocents never accused.

Kept small for CI (a few hundred trials in all); ``bench/tracing_code.py`` runs
thousands. Each trial uses a fresh secret, scores the colluders and a random sample
of innocents among n = 10,000.
"""

from __future__ import annotations

import random

import pytest

from relto.tracing import TracingCode, code_parameters, unpack
from relto.tracing.attacks import ATTACKS, Attack, crop, erase

PARAMS = code_parameters(3, 10_000, 1e-3)
TRIALS = 200
INNOCENTS = 500


def _trial(rng: random.Random, attack: Attack, c: int, damage: str = "") -> tuple[bool, int]:
    code = TracingCode(rng.randbytes(32), PARAMS)
    colluders = rng.sample(range(PARAMS.n), c)
    words = [unpack(code.codeword(r), PARAMS.length) for r in colluders]
    pirate = attack(words, rng)
    if damage == "erase":
        pirate = erase(pirate, 0.2, rng)
    elif damage == "crop":
        pirate = crop(pirate, 0.8, rng)
    others = set(rng.sample(range(PARAMS.n), INNOCENTS)) - set(colluders)
    result = code.accuse(pirate, [*colluders, *sorted(others)])
    accused = {r for r, _ in result.accused}
    return bool(accused & set(colluders)), len(accused - set(colluders))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_three_colluders_are_caught_and_no_innocent_accused(name: str) -> None:
    rng = random.Random(f"tracing-sim-{name}")
    caught = false_accusations = 0
    for _ in range(TRIALS):
        hit, innocents = _trial(rng, ATTACKS[name], 3)
        caught += hit
        false_accusations += innocents
    assert false_accusations == 0
    assert caught >= TRIALS - 1


@pytest.mark.parametrize("damage", ["erase", "crop"])
def test_colluders_caught_through_erasures(damage: str) -> None:
    rng = random.Random(f"tracing-sim-{damage}")
    caught = false_accusations = 0
    for _ in range(TRIALS // 4):
        hit, innocents = _trial(rng, ATTACKS["interleave"], 3, damage)
        caught += hit
        false_accusations += innocents
    assert false_accusations == 0
    assert caught >= TRIALS // 4 - 1


def test_an_innocent_recipient_is_never_accused_by_a_pirate_copy_built_without_their_codeword() -> (
    None
):
    # The coalition pools every copy but one recipient's; that recipient, scored over
    # many coalitions and attacks, never reaches the threshold.
    rng = random.Random("tracing-innocent")
    innocent = 1234
    worst = float("-inf")
    for name in sorted(ATTACKS):
        for _ in range(10):
            code = TracingCode(rng.randbytes(32), PARAMS)
            colluders = rng.sample([r for r in range(PARAMS.n) if r != innocent], 3)
            words = [unpack(code.codeword(r), PARAMS.length) for r in colluders]
            pirate = ATTACKS[name](words, rng)
            result = code.accuse(pirate, [innocent])
            assert result.accused == ()
            worst = max(worst, code.scores(pirate, [innocent])[0] / result.threshold)
    assert worst < 0.75  # the innocent stays far below Z, not just below it


def test_two_colluders_are_caught_with_the_c2_code() -> None:
    params = code_parameters(2, 10_000, 1e-3)
    rng = random.Random("tracing-sim-c2")
    for _ in range(20):
        code = TracingCode(rng.randbytes(32), params)
        colluders = rng.sample(range(params.n), 2)
        words = [unpack(code.codeword(r), params.length) for r in colluders]
        result = code.accuse(ATTACKS["interleave"](words, rng), range(params.n))
        accused = {r for r, _ in result.accused}
        assert accused and accused <= set(colluders)
