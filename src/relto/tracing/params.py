"""Parameters of the symmetric Tardos code with Nuida's discrete bias distribution.

Pure arithmetic, no I/O. :func:`code_parameters` turns (c, n, ε) into a code length m
and an accusation threshold Z, both from *rigorous* Chernoff bounds (no simulation is
involved in choosing them; the simulations in the tests and ``bench/tracing_code.py``
only confirm them):

Bias distribution (Nuida et al.)
    K. Nuida, S. Fujitsu, M. Hagiwara, T. Kitagawa, H. Watanabe, K. Ogawa, H. Imai,
    "An improvement of discrete Tardos fingerprinting codes", Des. Codes Cryptogr. 52
    (2009) 339–362; and K. Nuida, M. Hagiwara, H. Watanabe, H. Imai, "Optimization of
    memory usage in Tardos's fingerprinting codes", arXiv:cs/0610036: for c = 2k-1 or
    2k colluders the bias takes k values, the Gauss–Legendre nodes t_i of degree k
    mapped to p_i = (1 + t_i)/2. We could not retrieve the papers' tables here, so the
    values are *derived*, not copied: nodes in closed form (k = 1: 0; k = 2: ±1/√3;
    k = 3: 0, ±√(3/5)), probabilities q_i ∝ w_i / √(p_i(1-p_i)) (the Gauss–Legendre
    weights w_i applied to the arcsine density 1/(π√(p(1-p))) of the continuous
    symmetric Tardos code). For c = 3 the result is p ∈ {(1-1/√3)/2, (1+1/√3)/2} =
    {0.21132…, 0.78868…}, each with probability 1/2 (forced by symmetry).

Score (Škorić et al.)
    B. Škorić, S. Katzenbeisser, M. U. Celik, "Symmetric Tardos fingerprinting codes
    for arbitrary alphabet sizes", Des. Codes Cryptogr. 46 (2008) 137–166. In a
    position where the pirate copy shows symbol y, and P is the probability that a
    codeword carries y there, a recipient whose bit agrees gets +√((1-P)/P) and one
    whose bit differs gets -√(P/(1-P)). An innocent's term has mean 0 and variance 1
    whatever the pirate did. Their asymptotic length m ≈ (π²/2)·c²·ln(n/ε) is
    reported as :attr:`CodeParameters.theoretical_length` (the baseline the issue asks
    for; it is a large-c Gaussian estimate, not a proof).

Threshold Z(m') (false accusation, rigorous)
    Given the biases, the pirate copy and the erasures, an innocent's m' non-erased
    terms are independent (their bits were drawn independently of everything the
    colluders saw). Each term's moment generating function is at most
    M(α) = max over P ∈ biases of E[exp(α·term_P)], so
    Pr[score ≥ Z] ≤ exp(-αZ)·M(α)^m'. Z(m') is the smallest Z with n·that ≤ ε
    (union bound over all n recipients), minimised over α. The bound holds for every
    pirate strategy and every erasure pattern, so the accuser recomputes Z for the
    number of bits actually read.

Length m (missing every colluder, rigorous under the marking assumption)
    The coalition's total score T over m positions: if T ≥ c·Z then some colluder
    scores ≥ Z. Conditioning column by column (Tardos's argument),
    Pr[T < c·Z] ≤ exp(β·c·Z)·(Σ_σ max_y E[exp(-β·T_σ,y)])^m, where σ is the number of
    colluders holding a 1, y is forced when σ ∈ {0, c} and free otherwise. m is the
    smallest multiple of 8 for which this is ≤ ε_miss (default ε). It assumes no
    erasures, or erasures that do not depend on the code (damage, cropping); for
    fewer bits read the same bound is recomputed, and below :attr:`min_bits` (where
    the bound exceeds 1/2) the accuser declines to accuse anybody.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "MAX_COLLUDERS",
    "MAX_LENGTH",
    "CodeParameters",
    "bias_distribution",
    "code_parameters",
    "miss_bound",
    "theoretical_length",
    "threshold",
]

#: Largest coalition we have a bias distribution for (Gauss–Legendre degree ≤ 3).
MAX_COLLUDERS = 6
#: Longest code we will produce; asking for more is a caller's mistake.
MAX_LENGTH = 8192
_MAX_RECIPIENTS = 1 << 32
_GRID = 2000  # points of the grid over α and β before refinement


@dataclass(frozen=True, slots=True)
class CodeParameters:
    """One code: for up to ``c`` colluders among ``n`` recipients.

    ``threshold`` is Z for all ``length`` bits; ``false_accusation`` bounds the chance
    that any innocent is accused (≤ ``epsilon``), ``miss`` the chance that a coalition
    of ``c`` escapes with every bit read.
    """

    c: int
    n: int
    epsilon: float
    length: int
    threshold: float
    miss: float
    min_bits: int
    bias_values: tuple[float, ...]
    bias_weights: tuple[float, ...]
    theoretical_length: float

    @property
    def distribution_id(self) -> str:
        """Names the bias distribution in the keyed derivation (``nuida-gl2`` for c=3)."""
        return f"nuida-gl{len(self.bias_values)}"


def _gauss_legendre(k: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nodes and weights of the degree-k Gauss–Legendre rule on [-1, 1], closed form."""
    if k == 1:
        return (0.0,), (2.0,)
    if k == 2:
        t = 1.0 / math.sqrt(3.0)
        return (-t, t), (1.0, 1.0)
    if k == 3:
        t = math.sqrt(3.0 / 5.0)
        return (-t, 0.0, t), (5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0)
    raise ValueError(f"no bias distribution for degree {k}")


def bias_distribution(c: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nuida's discrete bias distribution for ``c`` colluders: (values, probabilities).

    Derived as described in the module docstring: p_i = (1 + t_i)/2 at the
    Gauss–Legendre nodes of degree ⌈c/2⌉, q_i ∝ w_i / √(p_i(1-p_i)).
    """
    if not 1 <= c <= MAX_COLLUDERS:
        raise ValueError(f"c must be between 1 and {MAX_COLLUDERS}, not {c}")
    k = (c + 1) // 2
    nodes, weights = _gauss_legendre(k)
    # The lower half is computed, the upper half mirrored, so that the distribution is
    # exactly symmetric in floating point (p ↔ 1-p, same probability).
    low = [(1.0 + t) / 2.0 for t in nodes[: (k + 1) // 2]]
    values = tuple(low + [1.0 - p for p in reversed(low[: k // 2])])
    raw_low = [w / math.sqrt(p * (1.0 - p)) for w, p in zip(weights, low, strict=False)]
    raw = raw_low + list(reversed(raw_low[: k // 2]))
    total = math.fsum(raw)
    return values, tuple(r / total for r in raw)


def theoretical_length(c: int, n: int, epsilon: float) -> float:
    """Škorić et al.'s asymptotic symmetric-Tardos length (π²/2)·c²·ln(n/ε)."""
    return math.pi**2 / 2.0 * c * c * math.log(n / epsilon)


def _log_mgf_innocent(values: tuple[float, ...], alpha: float) -> float:
    """log max_P E[exp(α·term)] for an innocent, P over the biases and their complements."""
    best = 0.0
    for p in values:
        for big_p in (p, 1.0 - p):
            up = math.sqrt((1.0 - big_p) / big_p)
            down = math.sqrt(big_p / (1.0 - big_p))
            mgf = big_p * math.exp(alpha * up) + (1.0 - big_p) * math.exp(-alpha * down)
            best = max(best, math.log(mgf))
    return best


def _minimise(fn: Callable[[float], float], lo: float, hi: float) -> float:
    """Minimum of a unimodal function on [lo, hi]: a grid, then golden-section refinement."""
    step = (hi - lo) / _GRID
    xs = [lo + step * (i + 1) for i in range(_GRID)]
    ys = [fn(x) for x in xs]
    i = min(range(_GRID), key=ys.__getitem__)
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, _GRID - 1)]
    g = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(60):
        x1, x2 = b - g * (b - a), a + g * (b - a)
        if fn(x1) <= fn(x2):
            b = x2
        else:
            a = x1
    return float(min(ys[i], fn((a + b) / 2.0)))


@lru_cache(maxsize=4096)
def _threshold(values: tuple[float, ...], n: int, epsilon: float, bits: int) -> float:
    log_budget = math.log(n / epsilon)
    return _minimise(lambda a: (log_budget + bits * _log_mgf_innocent(values, a)) / a, 0.0, 2.0)


def threshold(params: CodeParameters, bits: int) -> float:
    """Z(bits): the score an innocent reaches with probability ≤ ε/n over ``bits`` bits."""
    if not 1 <= bits <= params.length:
        raise ValueError(f"bits must be between 1 and {params.length}, not {bits}")
    return _threshold(params.bias_values, params.n, params.epsilon, bits)


def _coalition_terms(
    c: int, values: tuple[float, ...], weights: tuple[float, ...]
) -> list[list[tuple[float, float]]]:
    """Per σ and choice of y: the (probability, coalition score) pairs over the biases."""
    out: list[list[tuple[float, float]]] = []
    for sigma in range(c + 1):
        choices = [0] if sigma == 0 else [1] if sigma == c else [0, 1]
        for y in choices:
            terms = []
            for p, q in zip(values, weights, strict=True):
                prob = q * math.comb(c, sigma) * p**sigma * (1.0 - p) ** (c - sigma)
                big_p = p if y == 1 else 1.0 - p
                agree = sigma if y == 1 else c - sigma
                r = math.sqrt((1.0 - big_p) / big_p)
                terms.append((prob, agree * r - (c - agree) / r))
            out.append([(float(sigma), 0.0), *terms])  # tag row with σ
    return out


@lru_cache(maxsize=4096)
def _miss(
    c: int, values: tuple[float, ...], weights: tuple[float, ...], z: float, bits: int
) -> float:
    rows = _coalition_terms(c, values, weights)

    def log_bound(beta: float) -> float:
        per_sigma: dict[float, float] = {}
        for row in rows:
            sigma = row[0][0]
            mgf = math.fsum(prob * math.exp(-beta * t) for prob, t in row[1:])
            per_sigma[sigma] = max(per_sigma.get(sigma, 0.0), mgf)
        return beta * c * z + bits * math.log(math.fsum(per_sigma.values()))

    return min(1.0, math.exp(_minimise(log_bound, 0.0, 2.0)))


def miss_bound(params: CodeParameters, bits: int) -> float:
    """Bound on the chance a coalition of c escapes when ``bits`` code-independent bits are read."""
    return _miss(params.c, params.bias_values, params.bias_weights, threshold(params, bits), bits)


@lru_cache(maxsize=64)
def code_parameters(
    c: int, n: int, epsilon: float, epsilon_miss: float | None = None
) -> CodeParameters:
    """The shortest code (a multiple of 8 bits) meeting both bounds for (c, n, ε).

    ``epsilon`` bounds false accusation of any innocent; ``epsilon_miss`` (default ε)
    bounds the chance of accusing no colluder. Raises ``ValueError`` for arguments
    out of range or when more than :data:`MAX_LENGTH` bits would be needed.
    """
    if not 2 <= n <= _MAX_RECIPIENTS:
        raise ValueError(f"n must be between 2 and {_MAX_RECIPIENTS}, not {n}")
    if not 0.0 < epsilon < 0.5:
        raise ValueError(f"epsilon must be in (0, 0.5), not {epsilon}")
    eps_miss = epsilon if epsilon_miss is None else epsilon_miss
    if not 0.0 < eps_miss < 0.5:
        raise ValueError(f"epsilon_miss must be in (0, 0.5), not {eps_miss}")
    values, weights = bias_distribution(c)

    def miss_at(bits: int) -> float:
        return _miss(c, values, weights, _threshold(values, n, epsilon, bits), bits)

    lo, hi = 1, MAX_LENGTH // 8
    if miss_at(hi * 8) > eps_miss:
        raise ValueError(f"more than {MAX_LENGTH} bits needed for c={c}, n={n}, ε={epsilon}")
    while lo < hi:
        mid = (lo + hi) // 2
        if miss_at(mid * 8) <= eps_miss:
            hi = mid
        else:
            lo = mid + 1
    length = lo * 8
    lo_bits, hi_bits = 1, length
    while lo_bits < hi_bits:
        mid = (lo_bits + hi_bits) // 2
        if miss_at(mid) <= 0.5:
            hi_bits = mid
        else:
            lo_bits = mid + 1
    return CodeParameters(
        c=c,
        n=n,
        epsilon=epsilon,
        length=length,
        threshold=_threshold(values, n, epsilon, length),
        miss=miss_at(length),
        min_bits=lo_bits,
        bias_values=values,
        bias_weights=weights,
        theoretical_length=theoretical_length(c, n, epsilon),
    )
