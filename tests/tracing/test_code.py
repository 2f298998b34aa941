"""Keyed derivation and accusation: known answers, an independent re-implementation,
properties."""

from __future__ import annotations

import hashlib
import hmac
import math
import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.tracing import (
    TracingCode,
    accuse,
    biases,
    code_parameters,
    codeword,
    scores,
    unpack,
)
from relto.tracing.attacks import majority

PARAMS = code_parameters(3, 10_000, 1e-3)
SECRET = bytes(range(32))

# Generated once by relto.tracing.code, then frozen; re-derived independently below.
KAT_BIASES = "LLLLHLLLLHLHHHLL"  # first 16 positions: L = 0.21132…, H = 0.78868…
KAT_CODEWORDS = {
    0: "34332587e6b9d180",
    1: "842a7007262b5714",
    2: "1a3a2206d1bff542",
    9999: "103a3406ecbbc2a2",
}


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with hmac/hashlib only."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _ctr_by_ecb(key: bytes, initial: int, blocks: int) -> bytes:
    """AES-CTR keystream built from AES-ECB on explicit 128-bit counter blocks."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    counters = b"".join(((initial + i) % (1 << 128)).to_bytes(16, "big") for i in range(blocks))
    return encryptor.update(counters) + encryptor.finalize()


def _reference(secret: bytes, recipient: int) -> tuple[list[float], list[int]]:
    """The derivation in docs/tracing.md, written out position by position."""
    m, (values, weights) = PARAMS.length, (PARAMS.bias_values, PARAMS.bias_weights)
    descriptor = f"c=3;m={m};dist=nuida-gl2".encode()
    salt = b"relto.tracing.code.v1"
    key_b = _hkdf_sha256(secret, salt, b"biases;" + descriptor, 32)
    stream = _ctr_by_ecb(key_b, 0, math.ceil(8 * m / 16))
    cut = round(weights[0] * 2**64)
    ps = [
        values[0] if int.from_bytes(stream[8 * i : 8 * i + 8], "big") < cut else values[1]
        for i in range(m)
    ]
    key_w = _hkdf_sha256(secret, salt, b"codewords;" + descriptor, 32)
    width = (m + 7) // 8
    stream = _ctr_by_ecb(key_w, recipient << 64, math.ceil(32 * width / 16))
    planes = [int.from_bytes(stream[k * width : (k + 1) * width], "little") for k in range(32)]
    bits = []
    for i in range(m):
        u = sum(((planes[k] >> i) & 1) << (31 - k) for k in range(32))
        bits.append(int(u < round(ps[i] * 2**32)))
    return ps, bits


def test_known_answer_vectors() -> None:
    got = "".join("L" if p < 0.5 else "H" for p in biases(SECRET, PARAMS)[:16])
    assert got == KAT_BIASES
    for recipient, expected in KAT_CODEWORDS.items():
        assert codeword(SECRET, PARAMS, recipient)[:8].hex() == expected


@pytest.mark.parametrize("recipient", [0, 1, 2, 9999])
def test_derivation_matches_an_independent_implementation(recipient: int) -> None:
    ps, bits = _reference(SECRET, recipient)
    assert biases(SECRET, PARAMS) == ps
    assert unpack(codeword(SECRET, PARAMS, recipient), PARAMS.length) == bits
    assert (
        bytes(int("".join(map(str, reversed(bits[i : i + 8]))), 2) for i in range(0, 64, 8)).hex()
        == (KAT_CODEWORDS[recipient])
    )


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        codeword(bytes(31), PARAMS, 0)
    with pytest.raises(TypeError):
        codeword("x" * 40, PARAMS, 0)  # type: ignore[arg-type]


def test_recipient_outside_the_code_refused() -> None:
    with pytest.raises(ValueError):
        codeword(SECRET, PARAMS, PARAMS.n)
    with pytest.raises(ValueError):
        codeword(SECRET, PARAMS, -1)


def test_malformed_pirate_copy_refused() -> None:
    with pytest.raises(ValueError):
        scores([0] * (PARAMS.length - 1), PARAMS, SECRET, [0])
    with pytest.raises(ValueError):
        scores([2] * PARAMS.length, PARAMS, SECRET, [0])


secrets_ = st.binary(min_size=32, max_size=64)


@settings(max_examples=20, deadline=None)
@given(secret=secrets_, recipient=st.integers(0, PARAMS.n - 1))
def test_codewords_are_deterministic(secret: bytes, recipient: int) -> None:
    assert codeword(secret, PARAMS, recipient) == codeword(secret, PARAMS, recipient)
    assert len(codeword(secret, PARAMS, recipient)) == (PARAMS.length + 7) // 8


@settings(max_examples=20, deadline=None)
@given(a=secrets_, b=secrets_, recipient=st.integers(0, PARAMS.n - 1))
def test_different_secrets_give_different_codewords(a: bytes, b: bytes, recipient: int) -> None:
    if a != b:
        assert codeword(a, PARAMS, recipient) != codeword(b, PARAMS, recipient)
        assert biases(a, PARAMS) != biases(b, PARAMS)


@settings(max_examples=10, deadline=None)
@given(secret=secrets_, seed=st.integers(0, 2**32))
def test_scores_are_symmetric_under_flipping_every_bit(secret: bytes, seed: int) -> None:
    # Flipping the pirate copy, every codeword and every bias (p -> 1-p) leaves every
    # score unchanged: the symmetric score treats 0 and 1 alike.
    code = TracingCode(secret, PARAMS)
    rng = random.Random(seed)
    words = [unpack(code.codeword(r), PARAMS.length) for r in (0, 1, 2, 3)]
    pirate = majority(words[:3], rng)
    ps = code.biases()
    flipped_pirate = [None if b is None else 1 - b for b in pirate]
    for word, score in zip(words, code.scores(pirate, [0, 1, 2, 3]), strict=True):
        direct = _symmetric_score(pirate, word, ps)
        flipped = _symmetric_score(flipped_pirate, [1 - b for b in word], [1 - p for p in ps])
        assert score == pytest.approx(direct)
        assert flipped == pytest.approx(direct)


def _symmetric_score(pirate: list[int | None], word: list[int], ps: list[float]) -> float:
    """Škorić et al.'s score written out term by term."""
    total = 0.0
    for y, x, p in zip(pirate, word, ps, strict=True):
        if y is None:
            continue
        big_p = p if y == 1 else 1 - p
        total += math.sqrt((1 - big_p) / big_p) if x == y else -math.sqrt(big_p / (1 - big_p))
    return total


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), erased=st.integers(1, 300))
def test_erasures_lower_bits_used_and_raise_nothing(seed: int, erased: int) -> None:
    rng = random.Random(seed)
    code = TracingCode(SECRET, PARAMS)
    pirate: list[int | None] = list(unpack(code.codeword(5), PARAMS.length))
    full = code.accuse(pirate, [5, 6])
    for i in rng.sample(range(PARAMS.length), erased):
        pirate[i] = None
    partial = code.accuse(pirate, [5, 6])
    assert partial.bits_used == PARAMS.length - erased < full.bits_used
    assert partial.threshold < full.threshold


def test_too_few_bits_accuse_nobody() -> None:
    code = TracingCode(SECRET, PARAMS)
    word = unpack(code.codeword(7), PARAMS.length)
    # An exact copy of recipient 7, but only 40 positions survive: nobody can reach Z.
    pirate: list[int | None] = [b if i < 40 else None for i, b in enumerate(word)]
    result = accuse(pirate, PARAMS, SECRET, range(100))
    assert not result.sufficient and not result.conclusive
    assert result.accused == ()
    assert result.threshold > max(code.scores(pirate, range(100)))
    nothing = accuse([None] * PARAMS.length, PARAMS, SECRET, [7])
    assert nothing.threshold == math.inf and nothing.accused == ()


def test_clear_copy_below_min_bits_still_convicts_within_the_bound() -> None:
    # Z(m') bounds false accusations for every m', so a clean copy of one recipient
    # with fewer than min_bits positions left is still attributed, under the same eps.
    code = TracingCode(SECRET, PARAMS)
    word = unpack(code.codeword(7), PARAMS.length)
    pirate: list[int | None] = [b if i < PARAMS.min_bits - 1 else None for i, b in enumerate(word)]
    result = accuse(pirate, PARAMS, SECRET, range(100))
    assert not result.sufficient
    assert [r for r, _ in result.accused] == [7]
    assert result.false_accusation_bound == PARAMS.epsilon


def test_a_single_leaker_is_accused_with_their_score() -> None:
    code = TracingCode(SECRET, PARAMS)
    pirate = unpack(code.codeword(42), PARAMS.length)
    result = code.accuse(list(pirate), range(100))
    assert [r for r, _ in result.accused] == [42]
    assert result.accused[0][1] >= result.threshold == PARAMS.threshold
    assert result.false_accusation_bound == PARAMS.epsilon
    assert result.bits_used == PARAMS.length
