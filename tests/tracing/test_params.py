"""Parameters: Nuida's bias distribution, the rigorous threshold and length."""

from __future__ import annotations

import math

import pytest

from relto.tracing.params import (
    bias_distribution,
    code_parameters,
    miss_bound,
    theoretical_length,
    threshold,
)


@pytest.mark.parametrize("c", range(1, 7))
def test_bias_distribution_is_symmetric_and_sums_to_one(c: int) -> None:
    values, weights = bias_distribution(c)
    assert len(values) == (c + 1) // 2
    assert math.isclose(math.fsum(weights), 1.0, abs_tol=1e-15)
    assert all(values[-1 - i] == 1.0 - values[i] for i in range(len(values) // 2))
    assert list(values) == sorted(values)
    assert weights == tuple(reversed(weights))
    assert all(0.0 < p < 1.0 for p in values)


def test_bias_distribution_for_three_colluders_is_the_degree_two_gauss_legendre_rule() -> None:
    values, weights = bias_distribution(3)
    assert values[0] == pytest.approx((1 - 1 / math.sqrt(3)) / 2, abs=1e-15)
    assert values[1] == pytest.approx((1 + 1 / math.sqrt(3)) / 2, abs=1e-15)
    assert weights == (0.5, 0.5)
    assert round(values[0], 5) == 0.21132


def test_bias_distribution_matches_the_documented_derivation_for_degree_three() -> None:
    # p = (1 + t)/2 at the nodes 0, ±√(3/5); q ∝ w / √(p(1-p)) with w = 5/9, 8/9, 5/9.
    values, weights = bias_distribution(5)
    t = math.sqrt(0.6)
    assert values == pytest.approx(((1 - t) / 2, 0.5, (1 + t) / 2), abs=1e-15)
    raw = [5 / 9 / math.sqrt(0.1), 8 / 9 / math.sqrt(0.25), 5 / 9 / math.sqrt(0.1)]
    assert weights == pytest.approx(tuple(r / sum(raw) for r in raw), abs=1e-15)
    assert round(weights[0], 5) == 0.33201
    assert round(weights[1], 5) == 0.33597


def test_issue_target_three_of_ten_thousand_fits_in_1300_bits() -> None:
    params = code_parameters(3, 10_000, 1e-3)
    assert params.length == 840
    assert params.length <= 1300
    assert params.miss <= 1e-3
    assert params.threshold == pytest.approx(171.49, abs=0.01)
    assert params.theoretical_length == pytest.approx(715.86, abs=0.01)
    assert 0 < params.min_bits < params.length


def test_theoretical_length_is_skorics_formula() -> None:
    assert theoretical_length(3, 10_000, 1e-3) == pytest.approx(math.pi**2 / 2 * 9 * math.log(1e7))


def test_threshold_is_a_chernoff_bound_at_least_the_gaussian_one() -> None:
    # An innocent's term has mean 0 and variance 1; a Chernoff bound on a skewed sum is
    # never below the Gaussian quantile sqrt(2 m ln(n/ε)).
    params = code_parameters(3, 10_000, 1e-3)
    for bits in (100, 500, params.length):
        assert threshold(params, bits) >= math.sqrt(2 * bits * math.log(1e7))
    assert threshold(params, 500) < threshold(params, 600)


def test_fewer_bits_read_weaken_the_miss_bound() -> None:
    params = code_parameters(3, 10_000, 1e-3)
    assert miss_bound(params, params.length) <= 1e-3
    assert miss_bound(params, params.min_bits) <= 0.5
    assert miss_bound(params, params.min_bits - 1) > 0.5


def test_innocent_term_has_mean_zero_and_unit_variance() -> None:
    for p in bias_distribution(3)[0]:
        up, down = math.sqrt((1 - p) / p), math.sqrt(p / (1 - p))
        assert p * up - (1 - p) * down == pytest.approx(0.0, abs=1e-15)
        assert p * up**2 + (1 - p) * down**2 == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("c", "n", "epsilon"),
    [(0, 10, 1e-3), (7, 10, 1e-3), (3, 1, 1e-3), (3, 10, 0.0), (3, 10, 0.5)],
)
def test_parameters_out_of_range_are_refused(c: int, n: int, epsilon: float) -> None:
    with pytest.raises(ValueError):
        code_parameters(c, n, epsilon)
