"""Calibrate decision thresholds for target false accept rates, with their uncertainty.

Scores are similarities (higher = more alike; a pair matches when ``score >= threshold``).  For
each target FAR the threshold is the one :func:`shiren.eval.metrics.tar_at_far` picks: the
smallest observed score (or ``+inf``) whose FAR on the impostor scores is ``<= target``.  Each
estimate carries:

* the exact counts behind the achieved FAR and the TAR, with Clopper–Pearson intervals;
* a bootstrap percentile interval of the threshold itself (impostor and genuine scores resampled
  with replacement, independently; ``numpy.random.default_rng(seed)``, so it is deterministic);
* ``resolvable``: whether there are at least ``3 / target`` impostors.  With fewer, even zero
  false accepts would leave a 95 % upper bound on the FAR (``3 / n``, the rule of three) above
  the target, so the data cannot show that the threshold meets it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shiren.eval.intervals import clopper_pearson
from shiren.eval.metrics import OperatingPoint, operating_point, threshold_at_far_sorted
from shiren.eval.scores import FloatArray, ScoresLike, check_scores

DEFAULT_TARGETS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True, slots=True)
class ThresholdEstimate:
    """A threshold for one target FAR and what it achieves on the calibration scores.

    Rates are fractions in ``[0, 1]``; intervals are ``(low, high)`` at ``1 - alpha``
    (95 % by default).  ``threshold_ci`` is ``None`` when no bootstrap was run; it may hold
    ``+inf`` (no observed score meets the target in some resamples).
    """

    far_target: float
    threshold: float
    threshold_ci: tuple[float, float] | None
    n_boot: int
    n_impostor: int
    n_false_accept: int
    far: float
    far_ci: tuple[float, float]
    n_genuine: int
    n_true_accept: int
    tar: float
    tar_ci: tuple[float, float]
    fnmr: float
    fnmr_ci: tuple[float, float]
    resolvable: bool
    note: str


def calibrate_thresholds(
    genuine: ScoresLike,
    impostor: ScoresLike,
    targets: Sequence[float] = DEFAULT_TARGETS,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
) -> list[ThresholdEstimate]:
    """One :class:`ThresholdEstimate` per target FAR, in the order given.

    ``genuine`` ``(G,)`` and ``impostor`` ``(I,)`` are similarity scores without NaN (apply a
    failure policy first).  ``n_boot`` bootstrap resamples (0 to skip) drawn from ``seed``.
    Cost: ``O(n_boot * (G + I) * log(G + I))``.
    """
    g = np.sort(check_scores(genuine, "genuine"))
    i = np.sort(check_scores(impostor, "impostor"))
    for target in targets:
        if not 0.0 < target <= 1.0:
            raise ValueError(f"a target FAR must lie in (0, 1], got {target}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    boot = _bootstrap_thresholds(g, i, targets, n_boot, seed)
    return [
        _estimate(operating_point(g, i, t), boot[:, k] if n_boot else None, alpha)
        for k, t in enumerate(targets)
    ]


def is_resolvable(n_impostor: int, far_target: float) -> bool:
    """``n_impostor >= 3 / far_target`` (rule of three), evaluated as ``3 / n <= target``."""
    return n_impostor > 0 and 3.0 / n_impostor <= far_target


def min_impostors(far_target: float) -> int:
    """The fewest impostor scores for which :func:`is_resolvable` holds at ``far_target``."""
    n = max(1, math.ceil(3.0 / far_target))
    while n > 1 and is_resolvable(n - 1, far_target):  # 3 / target may round up past an integer
        n -= 1
    return n


def _bootstrap_thresholds(
    genuine: FloatArray, impostor: FloatArray, targets: Sequence[float], n_boot: int, seed: int
) -> FloatArray:
    """Thresholds of ``n_boot`` resamples, shape ``(n_boot, len(targets))``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(targets)), dtype=np.float64)
    for b in range(n_boot):
        imp = np.sort(impostor[rng.integers(0, impostor.size, impostor.size)])
        gen = np.sort(genuine[rng.integers(0, genuine.size, genuine.size)])
        out[b] = [threshold_at_far_sorted(gen, imp, t) for t in targets]
    return out


def _estimate(point: OperatingPoint, boot: FloatArray | None, alpha: float) -> ThresholdEstimate:
    far_ci = clopper_pearson(point.n_false_accept, point.n_impostor, alpha)
    tar_ci = clopper_pearson(point.n_true_accept, point.n_genuine, alpha)
    resolvable = is_resolvable(point.n_impostor, point.far_target)
    return ThresholdEstimate(
        far_target=point.far_target,
        threshold=point.threshold,
        threshold_ci=None if boot is None else _percentile_interval(boot, alpha),
        n_boot=0 if boot is None else int(boot.size),
        n_impostor=point.n_impostor,
        n_false_accept=point.n_false_accept,
        far=point.far,
        far_ci=far_ci,
        n_genuine=point.n_genuine,
        n_true_accept=point.n_true_accept,
        tar=point.tar,
        tar_ci=tar_ci,
        fnmr=point.fnmr,
        fnmr_ci=(1.0 - tar_ci[1], 1.0 - tar_ci[0]),
        resolvable=resolvable,
        note="" if resolvable else _unresolvable_note(point),
    )


def _percentile_interval(values: FloatArray, alpha: float) -> tuple[float, float]:
    """Percentile interval by order statistics (no interpolation, so ``+inf`` stays usable):
    the ``lower`` ``alpha/2`` and the ``higher`` ``1 - alpha/2`` quantiles."""
    low = np.quantile(values, alpha / 2, method="lower")
    high = np.quantile(values, 1.0 - alpha / 2, method="higher")
    return float(low), float(high)


def _unresolvable_note(point: OperatingPoint) -> str:
    needed = min_impostors(point.far_target)
    return (
        f"only {point.n_impostor} impostor scores; at least {needed} are needed to show "
        f"FAR <= {point.far_target:g} (rule of three), so this threshold rests on too few "
        "impostors"
    )
