"""Binomial confidence intervals against published and closed-form values.

* Clopper–Pearson, k = 0: the upper bound solves (1 - p)^n = alpha/2, so p = 1 - 0.025^(1/n);
  for n = 10 that is 0.30850.  k = n mirrors it.  k = 5, n = 10 → (0.18709, 0.81291) (the
  textbook value, e.g. R ``binom.test(5, 10)``).
* Wilson, z = 1.96: k = 5, n = 10 → centre 0.5, half-width
  1.96 / 1.38416 * sqrt(0.025 + 0.009604) = 0.26341 → (0.23659, 0.76341); k = 0, n = 10 →
  (0, 2 * 0.19208 / 1.38416) = (0, 0.27754).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.eval.intervals import beta_quantile, regularized_beta
from shiren.eval.metrics import clopper_pearson, rule_of_three, wilson_interval


def test_clopper_pearson_known_values() -> None:
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 0.3085), abs=5e-5)
    assert clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025**0.1, abs=1e-12)
    assert clopper_pearson(10, 10) == pytest.approx((0.025**0.1, 1.0), abs=1e-12)
    low, high = clopper_pearson(5, 10)
    assert low == pytest.approx(0.1871, abs=5e-5)
    assert high == pytest.approx(0.8129, abs=5e-5)
    # 99 % interval, k = 0: 1 - 0.005^(1/20).
    assert clopper_pearson(0, 20, alpha=0.01)[1] == pytest.approx(1 - 0.005**0.05, abs=1e-12)


def test_clopper_pearson_large_n() -> None:
    # k = 0 of 3 million: closed form again; and a symmetric interval around 1/2.
    assert clopper_pearson(0, 3_000_000)[1] == pytest.approx(1 - 0.025 ** (1 / 3e6), rel=1e-9)
    low, high = clopper_pearson(1_500_000, 3_000_000)
    assert low + high == pytest.approx(1.0, abs=1e-12)
    assert high - 0.5 == pytest.approx(1.96 * math.sqrt(0.25 / 3e6), rel=1e-3)


def test_wilson_known_values() -> None:
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.23659, abs=1e-5)
    assert high == pytest.approx(0.76341, abs=1e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-5)
    assert wilson_interval(10, 10) == pytest.approx((1 - 0.27754, 1.0), abs=1e-5)


def test_rule_of_three() -> None:
    assert rule_of_three(3000) == pytest.approx(1e-3)
    assert rule_of_three(2) == 1.0
    # Close to the exact one-sided 95 % bound 1 - 0.05^(1/n) for large n.
    assert rule_of_three(1000) == pytest.approx(1 - 0.05**0.001, rel=5e-3)


def test_regularized_beta_closed_forms() -> None:
    assert regularized_beta(0.3, 1, 1) == pytest.approx(0.3)  # uniform
    assert regularized_beta(0.3, 2, 1) == pytest.approx(0.09)  # x^a when b = 1
    assert regularized_beta(0.3, 1, 3) == pytest.approx(1 - 0.7**3)  # 1 - (1-x)^b when a = 1
    assert regularized_beta(0.0, 2, 3) == 0.0
    assert regularized_beta(1.0, 2, 3) == 1.0
    assert beta_quantile(0.5, 4, 4) == pytest.approx(0.5, abs=1e-12)  # symmetric


def test_interval_input_checks() -> None:
    with pytest.raises(ValueError, match="n must be"):
        clopper_pearson(0, 0)
    with pytest.raises(ValueError, match="k must"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="alpha"):
        clopper_pearson(1, 10, alpha=1.5)
    with pytest.raises(ValueError, match="n must be"):
        rule_of_three(0)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_clopper_pearson_solves_its_defining_equations(kn: tuple[int, int]) -> None:
    k, n = kn
    low, high = clopper_pearson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    if k < n:  # P(X <= k | high) = alpha / 2
        assert _binomial_cdf(k, n, high) == pytest.approx(0.025, abs=1e-9)
    if k > 0:  # P(X >= k | low) = alpha / 2
        assert 1 - _binomial_cdf(k - 1, n, low) == pytest.approx(0.025, abs=1e-9)
    w_low, w_high = wilson_interval(k, n)
    assert 0.0 <= w_low <= k / n <= w_high <= 1.0
