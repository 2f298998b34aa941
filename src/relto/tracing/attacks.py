"""Collusion attacks on codewords, for tests and benchmarks. Pure, no I/O.

Each attack takes the colluders' codewords (lists of 0/1 bits, one list per colluder)
and a ``random.Random`` and returns a pirate copy. All of them keep the marking
assumption: where every colluder holds the same bit (an undetectable position) the
pirate copy holds it too. Erasures (``None``) are applied afterwards by
:func:`erase` (random positions) or :func:`crop` (a contiguous run survives).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

__all__ = [
    "ATTACKS",
    "Attack",
    "all_ones",
    "all_zeros",
    "crop",
    "erase",
    "interleave",
    "majority",
    "minority",
    "random_detectable",
]

Words = Sequence[Sequence[int]]
Attack = Callable[[Words, random.Random], list[int | None]]


def _columns(words: Words) -> list[tuple[int, ...]]:
    if not words:
        raise ValueError("a coalition has at least one member")
    length = len(words[0])
    if any(len(w) != length for w in words):
        raise ValueError("colluders' codewords differ in length")
    return list(zip(*words, strict=True))


def _detectable(words: Words, choose: Callable[[tuple[int, ...]], int]) -> list[int | None]:
    out: list[int | None] = []
    for column in _columns(words):
        ones = sum(column)
        out.append(column[0] if ones in (0, len(column)) else choose(column))
    return out


def majority(words: Words, rng: random.Random) -> list[int | None]:
    """Each detectable position takes the bit most colluders hold (ties: random)."""

    def choose(column: tuple[int, ...]) -> int:
        ones = sum(column)
        if 2 * ones == len(column):
            return rng.getrandbits(1)
        return int(2 * ones > len(column))

    return _detectable(words, choose)


def minority(words: Words, rng: random.Random) -> list[int | None]:
    """Each detectable position takes the bit fewest colluders hold (ties: random)."""

    def choose(column: tuple[int, ...]) -> int:
        ones = sum(column)
        if 2 * ones == len(column):
            return rng.getrandbits(1)
        return int(2 * ones < len(column))

    return _detectable(words, choose)


def interleave(words: Words, rng: random.Random) -> list[int | None]:
    """Each position comes from a colluder chosen at random."""
    return [column[rng.randrange(len(column))] for column in _columns(words)]


def random_detectable(words: Words, rng: random.Random) -> list[int | None]:
    """Each detectable position takes a fair coin."""
    return _detectable(words, lambda _column: rng.getrandbits(1))


def all_zeros(words: Words, rng: random.Random) -> list[int | None]:
    """Each detectable position takes 0."""
    return _detectable(words, lambda _column: 0)


def all_ones(words: Words, rng: random.Random) -> list[int | None]:
    """Each detectable position takes 1."""
    return _detectable(words, lambda _column: 1)


def erase(pirate: Sequence[int | None], fraction: float, rng: random.Random) -> list[int | None]:
    """Erase each position independently with probability ``fraction``."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be in [0, 1]")
    return [None if rng.random() < fraction else bit for bit in pirate]


def crop(pirate: Sequence[int | None], keep: float, rng: random.Random) -> list[int | None]:
    """Keep one contiguous run of ``keep`` of the positions (at a random offset), erase the rest."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError("keep must be in [0, 1]")
    length = len(pirate)
    kept = round(keep * length)
    start = rng.randrange(length - kept + 1)
    return [bit if start <= i < start + kept else None for i, bit in enumerate(pirate)]


#: The attacks by name, in the order the benchmark reports them.
ATTACKS: dict[str, Attack] = {
    "majority": majority,
    "minority": minority,
    "interleave": interleave,
    "random": random_detectable,
    "all-zeros": all_zeros,
    "all-ones": all_ones,
}
