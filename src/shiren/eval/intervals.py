"""Binomial confidence intervals for rates measured as ``k`` events in ``n`` trials (numpy-free).

* :func:`clopper_pearson` — the exact interval (Clopper & Pearson 1934), from beta quantiles found
  by bisection on the regularized incomplete beta function (continued fraction, Numerical Recipes
  §6.4).  Coverage is at least ``1 - alpha``; use it for reported error rates.
* :func:`wilson_interval` — the Wilson score interval (Wilson 1927); shorter, approximate.
* :func:`rule_of_three` — ``3 / n``, the approximate one-sided 95 % upper bound when ``k = 0``
  (Hanley & Lippman-Hand 1983): zero errors in ``n`` trials do not mean a zero error rate.
"""

from __future__ import annotations

import math

_CF_MAX_ITER = 100_000
_CF_EPS = 1e-15
_TINY = 1e-300
_BISECT_ITER = 200


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for the proportion ``k / n``; ``z`` is the normal
    quantile (1.96 for a two-sided 95 % interval).  Bounds are clipped to ``[0, 1]``."""
    _check_counts(k, n)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided ``1 - alpha`` interval ``(low, high)`` for the proportion ``k / n``.

    ``low`` is the ``alpha/2`` quantile of Beta(k, n-k+1) (0 when ``k = 0``) and ``high`` the
    ``1 - alpha/2`` quantile of Beta(k+1, n-k) (1 when ``k = n``).  Accurate to ~1e-12.
    """
    _check_counts(k, n)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    low = 0.0 if k == 0 else beta_quantile(alpha / 2, k, n - k + 1)
    high = 1.0 if k == n else beta_quantile(1.0 - alpha / 2, k + 1, n - k)
    return low, high


def rule_of_three(n: int) -> float:
    """``3 / n``: approximate 95 % upper bound on a rate when 0 events were seen in ``n`` trials."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(1.0, 3.0 / n)


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``x`` in ``[0, 1]`` with ``I_x(a, b) = q``, by bisection (``I`` is increasing in x)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    lo, hi = 0.0, 1.0
    for _ in range(_BISECT_ITER):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if regularized_beta(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` for ``a, b > 0``, ``x`` in [0, 1].

    For integer ``a, b``: ``I_x(a, b) = P(Binomial(a + b - 1, x) >= a)``.
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be > 0, got {a}, {b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the other side (Numerical Recipes §6.4).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_cf(1.0 - x, b, a) / b


def _beta_cf(x: float, a: float, b: float) -> float:
    """Continued fraction of the incomplete beta function, modified Lentz's method."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, _nonzero(1.0 - qab * x / qap)
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAX_ITER + 1):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / _nonzero(1.0 + even * d)
        c = _nonzero(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / _nonzero(1.0 + odd * d)
        c = _nonzero(1.0 + odd / c)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for x={x}, a={a}, b={b}")


def _nonzero(value: float) -> float:
    return value if abs(value) >= _TINY else _TINY


def _check_counts(k: int, n: int) -> None:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, n], got k={k}, n={n}")
