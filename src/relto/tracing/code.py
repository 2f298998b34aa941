"""Keyed symmetric Tardos codes: biases, codewords and accusation. Pure, no I/O.

Everything is derived from a per-object secret (≥ 32 bytes) with standard primitives
from ``cryptography``, so that anyone holding the secret can recompute it:

``descriptor`` = ``b"c=<c>;m=<length>;dist=<distribution_id>"`` (ASCII), e.g.
``b"c=3;m=840;dist=nuida-gl2"``.

Biases
    key_b = HKDF-SHA256(IKM=secret, salt=``b"relto.tracing.code.v1"``,
    info=``b"biases;"`` + descriptor, L=32). The keystream of AES-256-CTR under key_b
    with the all-zero initial counter block is read 8 bytes per position (big-endian
    integer V_i); position i takes bias value j for the smallest j with
    V_i < round(2⁶⁴ · (q_0 + … + q_j)) (the last bound is 2⁶⁴).

Codewords
    key_w = HKDF-SHA256(IKM=secret, salt=``b"relto.tracing.code.v1"``,
    info=``b"codewords;"`` + descriptor, L=32). For recipient r the keystream of
    AES-256-CTR under key_w with initial counter block r (8 bytes big-endian) ‖ 0⁸ is
    read as 32 planes of B = ⌈m/8⌉ bytes; plane k, read as a little-endian integer,
    gives bit 31-k of the 32-bit number U_i at bit i. Bit i of the codeword is 1 iff
    U_i < round(2³² · p_i), so it is 1 with probability p_i to within 2⁻³². Different
    recipients use disjoint counter ranges of one key (up to 2⁶⁴ blocks each), so
    their codewords are independent given the biases.

A codeword is packed least significant bit first: bit i is ``(word[i // 8] >> (i % 8)) & 1``.

Accusation uses Škorić et al.'s symmetric score and the threshold Z(m') of
:mod:`relto.tracing.params` for the m' bits actually read (erased bits are skipped).
Z(m') bounds false accusations for any m', so the accusation never refuses to score:
with too few bits nobody reaches Z and the answer is "too weak, nobody accused".
See ``docs/tracing.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from relto.tracing.params import CodeParameters, miss_bound, threshold

__all__ = [
    "MIN_SECRET_BYTES",
    "Accusation",
    "TracingCode",
    "accuse",
    "biases",
    "codeword",
    "scores",
    "unpack",
]

#: A per-object secret shorter than this is refused.
MIN_SECRET_BYTES = 32
_SALT = b"relto.tracing.code.v1"
_PLANES = 32
_ZERO_BLOCK = bytes(16)


def _descriptor(params: CodeParameters) -> bytes:
    return f"c={params.c};m={params.length};dist={params.distribution_id}".encode("ascii")


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray):
        raise TypeError("secret must be bytes")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"secret must be at least {MIN_SECRET_BYTES} bytes, not {len(secret)}")


def _key(secret: bytes, purpose: bytes, params: CodeParameters) -> bytes:
    _check_secret(secret)
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose + b";" + _descriptor(params)
    )
    return hkdf.derive(bytes(secret))


def _keystream(key: bytes, counter_block: bytes, size: int) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    return encryptor.update(bytes(size)) + encryptor.finalize()


def _bias_indices(secret: bytes, params: CodeParameters) -> list[int]:
    stream = _keystream(_key(secret, b"biases", params), _ZERO_BLOCK, 8 * params.length)
    bounds: list[int] = []
    running = 0.0
    for q in params.bias_weights[:-1]:
        running += q
        bounds.append(round(running * 2.0**64))
    bounds.append(1 << 64)
    out = []
    for i in range(params.length):
        v = int.from_bytes(stream[8 * i : 8 * i + 8], "big")
        out.append(next(j for j, bound in enumerate(bounds) if v < bound))
    return out


def biases(secret: bytes, params: CodeParameters) -> list[float]:
    """The bias p_i of every position, drawn from Nuida's distribution under ``secret``."""
    return [params.bias_values[j] for j in _bias_indices(secret, params)]


@dataclass(frozen=True, slots=True)
class _Keyed:
    """What one secret fixes for one code: bit planes of the thresholds, and the key."""

    key_w: bytes
    indices: tuple[int, ...]
    threshold_planes: tuple[int, ...]  # plane k: positions whose threshold has bit 31-k set
    full: int  # the mask of all m positions


def _keyed(secret: bytes, params: CodeParameters) -> _Keyed:
    indices = _bias_indices(secret, params)
    limits = [min(round(p * 2.0**_PLANES), (1 << _PLANES) - 1) for p in params.bias_values]
    planes = []
    for k in range(_PLANES):
        bit = _PLANES - 1 - k
        plane = 0
        for i, j in enumerate(indices):
            if (limits[j] >> bit) & 1:
                plane |= 1 << i
        planes.append(plane)
    return _Keyed(
        key_w=_key(secret, b"codewords", params),
        indices=tuple(indices),
        threshold_planes=tuple(planes),
        full=(1 << params.length) - 1,
    )


def _codeword_int(keyed: _Keyed, params: CodeParameters, recipient: int) -> int:
    if not 0 <= recipient < params.n:
        raise ValueError(f"recipient index must be between 0 and {params.n - 1}, not {recipient}")
    width = (params.length + 7) // 8
    stream = _keystream(keyed.key_w, recipient.to_bytes(8, "big") + bytes(8), _PLANES * width)
    less = 0  # positions where U_i < T_i is already decided true
    equal = keyed.full  # positions where the high bits of U_i and T_i are equal so far
    for k in range(_PLANES):
        u = int.from_bytes(stream[k * width : (k + 1) * width], "little") & keyed.full
        t = keyed.threshold_planes[k]
        less |= equal & t & ~u
        equal &= ~(u ^ t)
        if not equal:
            break
    return less


def codeword(secret: bytes, params: CodeParameters, recipient_index: int) -> bytes:
    """The codeword of recipient ``recipient_index`` (0 ≤ index < n), packed LSB first."""
    return TracingCode(secret, params).codeword(recipient_index)


def unpack(word: bytes, length: int) -> list[int]:
    """The bits of a packed codeword, position 0 first."""
    if len(word) * 8 < length:
        raise ValueError("word is shorter than length")
    value = int.from_bytes(word, "little")
    return [(value >> i) & 1 for i in range(length)]


@dataclass(frozen=True, slots=True)
class _Pirate:
    """The pirate copy split into classes of equal per-position score."""

    classes: tuple[tuple[int, bool, float, float, int], ...]  # mask, y, agree, differ, size
    bits_used: int


def _pirate(pirate: Sequence[int | None], keyed: _Keyed, params: CodeParameters) -> _Pirate:
    if len(pirate) != params.length:
        raise ValueError(f"pirate copy must have {params.length} positions, not {len(pirate)}")
    masks: dict[tuple[int, int], int] = {}
    used = 0
    for i, bit in enumerate(pirate):
        if bit is None:
            continue
        if bit not in (0, 1):
            raise ValueError(f"position {i}: a bit is 0, 1 or None, not {bit!r}")
        used += 1
        key = (keyed.indices[i], int(bit))
        masks[key] = masks.get(key, 0) | (1 << i)
    classes = []
    for (j, y), mask in sorted(masks.items()):
        p = params.bias_values[j]
        big_p = p if y == 1 else 1.0 - p
        classes.append(
            (
                mask,
                y == 1,
                math.sqrt((1.0 - big_p) / big_p),
                math.sqrt(big_p / (1.0 - big_p)),
                mask.bit_count(),
            )
        )
    return _Pirate(classes=tuple(classes), bits_used=used)


def _score(word: int, pirate: _Pirate) -> float:
    total = 0.0
    for mask, y, agree, differ, size in pirate.classes:
        hits = (mask & word if y else mask & ~word).bit_count()
        total += hits * agree - (size - hits) * differ
    return total


def _recipients(recipients: range | Sequence[int] | None, params: CodeParameters) -> Iterable[int]:
    return range(params.n) if recipients is None else recipients


class TracingCode:
    """One object's code under its secret: the derivation done once, reused per call.

    The module functions :func:`codeword`, :func:`scores` and :func:`accuse` build one
    of these per call; a tracer scoring many copies builds it once.
    """

    __slots__ = ("_keyed", "params")

    def __init__(self, secret: bytes, params: CodeParameters) -> None:
        self.params = params
        self._keyed = _keyed(secret, params)

    def biases(self) -> list[float]:
        return [self.params.bias_values[j] for j in self._keyed.indices]

    def codeword(self, recipient_index: int) -> bytes:
        word = _codeword_int(self._keyed, self.params, recipient_index)
        return word.to_bytes((self.params.length + 7) // 8, "little")

    def scores(
        self, pirate: Sequence[int | None], recipients: range | Sequence[int] | None = None
    ) -> list[float]:
        parsed = _pirate(pirate, self._keyed, self.params)
        return [
            _score(_codeword_int(self._keyed, self.params, r), parsed)
            for r in _recipients(recipients, self.params)
        ]

    def accuse(
        self, pirate: Sequence[int | None], recipients: range | Sequence[int] | None = None
    ) -> Accusation:
        params = self.params
        parsed = _pirate(pirate, self._keyed, params)
        if parsed.bits_used == 0:
            return Accusation(
                accused=(),
                threshold=math.inf,
                false_accusation_bound=params.epsilon,
                bits_used=0,
                min_bits=params.min_bits,
                miss_bound=1.0,
            )
        z = threshold(params, parsed.bits_used)
        found = []
        for r in _recipients(recipients, params):
            s = _score(_codeword_int(self._keyed, params, r), parsed)
            if s >= z:
                found.append((r, s))
        found.sort(key=lambda item: (-item[1], item[0]))
        return Accusation(
            accused=tuple(found),
            threshold=z,
            false_accusation_bound=params.epsilon,
            bits_used=parsed.bits_used,
            min_bits=params.min_bits,
            miss_bound=miss_bound(params, parsed.bits_used),
        )


@dataclass(frozen=True, slots=True)
class Accusation:
    """The result of one accusation: data, never an exception.

    ``accused`` holds (recipient index, score) with score ≥ ``threshold``, highest
    first. ``false_accusation_bound`` bounds the chance that any of them is innocent
    (a union bound over all n recipients, whether or not all were scored).
    ``conclusive`` is false when nobody reached the threshold: the evidence is too
    weak to accuse anyone (with no bits read at all the threshold is infinite).
    ``sufficient`` says whether at least ``min_bits`` bits were read, the point below
    which the chance of catching a coalition of c is no longer assured (``miss_bound``
    passes 1/2, for erasures that did not depend on the code); fewer bits can still
    convict, with the same false-accusation bound, when the copy is clear enough.
    """

    accused: tuple[tuple[int, float], ...]
    threshold: float
    false_accusation_bound: float
    bits_used: int
    min_bits: int
    miss_bound: float

    @property
    def conclusive(self) -> bool:
        return bool(self.accused)

    @property
    def sufficient(self) -> bool:
        return self.bits_used >= self.min_bits


def scores(
    pirate: Sequence[int | None],
    params: CodeParameters,
    secret: bytes,
    recipients: range | Sequence[int] | None = None,
) -> list[float]:
    """Symmetric Tardos score of each recipient (default: all n) against ``pirate``.

    ``pirate[i]`` is the bit read at position i, or ``None`` where it was erased.
    """
    return TracingCode(secret, params).scores(pirate, recipients)


def accuse(
    pirate: Sequence[int | None],
    params: CodeParameters,
    secret: bytes,
    recipients: range | Sequence[int] | None = None,
) -> Accusation:
    """Accuse every recipient whose score reaches Z(bits read); nobody if none does."""
    return TracingCode(secret, params).accuse(pirate, recipients)
