"""Verification metrics from similarity scores (numpy only).

Conventions, everywhere in this module:

* ``scores`` is a 1-D float array of shape ``(N,)``: a similarity, **higher = more alike**.
  A pair *matches* (is accepted) when ``score >= threshold``.
* ``labels`` is a 1-D bool array of shape ``(N,)``: ``True`` for a genuine (same-person) pair,
  ``False`` for an impostor (different-person) pair.  ``0``/``1`` integers are accepted.
* ``-inf`` is a legal score and means "rejected whatever the threshold" (see
  :func:`apply_failure_policy`); ``NaN`` and ``+inf`` are refused with :class:`ValueError`.
* FAR = FMR = false accepts / impostors; TAR = 1 - FNMR = true accepts / genuines.  Every rate
  comes with the integer counts it was derived from.

The LFW 10-fold accuracy protocol is in :mod:`shiren.eval.kfold`, the binomial intervals in
:mod:`shiren.eval.intervals`; both are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from shiren.eval.intervals import clopper_pearson, rule_of_three, wilson_interval
from shiren.eval.kfold import KFoldResult, kfold_accuracy
from shiren.eval.scores import (
    BoolArray,
    FloatArray,
    IntArray,
    ScoresLike,
    as_float_array,
    as_labels,
    check_scores,
    split_checked,
)

FailurePolicy = Literal["reject", "exclude"]


@dataclass(frozen=True, eq=False)
class Roc:
    """A ROC curve, one point per distinct threshold, thresholds in descending order.

    ``thresholds[0]`` is ``+inf`` (nothing accepted, the point (0, 0)); the others are the
    distinct scores, so the last point accepts everything (1, 1).  All arrays have shape ``(M,)``.
    Tied scores share one threshold, so a tie between a genuine and an impostor score is a
    diagonal step and the area under it counts half (as in the Mann–Whitney U statistic).
    """

    thresholds: FloatArray
    n_true_accept: IntArray
    n_false_accept: IntArray
    n_genuine: int
    n_impostor: int

    @property
    def tar(self) -> FloatArray:
        """True accept rate (= 1 - FNMR) at each threshold."""
        return self.n_true_accept / self.n_genuine

    @property
    def far(self) -> FloatArray:
        """False accept rate (= FMR) at each threshold."""
        return self.n_false_accept / self.n_impostor

    @property
    def fnmr(self) -> FloatArray:
        """False non-match rate (= 1 - TAR) at each threshold."""
        return (self.n_genuine - self.n_true_accept) / self.n_genuine


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The operating point chosen for a target FAR, with the counts behind each rate.

    ``resolvable``: at least one false accept is allowed (``n_impostor * far_target >= 1``,
    evaluated exactly as ``1 / n_impostor <= far_target``).
    When it is ``False`` the only threshold meeting the target is one that accepts no impostor,
    so the achieved FAR is 0 and says nothing about whether the true FAR is near the target.
    """

    far_target: float
    threshold: float
    n_true_accept: int
    n_genuine: int
    n_false_accept: int
    n_impostor: int
    resolvable: bool

    @property
    def tar(self) -> float:
        return self.n_true_accept / self.n_genuine

    @property
    def far(self) -> float:
        """The FAR achieved on the data (<= ``far_target``)."""
        return self.n_false_accept / self.n_impostor

    @property
    def fnmr(self) -> float:
        return (self.n_genuine - self.n_true_accept) / self.n_genuine


class PolicyApplied(NamedTuple):
    """Scores after a failure policy: ``scores``/``labels`` of shape ``(K,)``, ``kept`` a
    ``(N,)`` mask over the input pairs (to filter folds or cohorts alike), ``n_failed`` the
    number of input pairs whose score was missing."""

    scores: FloatArray
    labels: BoolArray
    kept: BoolArray
    n_failed: int


def apply_failure_policy(
    scores: ScoresLike,
    labels: npt.ArrayLike,
    policy: FailurePolicy = "reject",
) -> PolicyApplied:
    """Resolve pairs whose score is ``None``/``NaN`` (an image failed to process).

    * ``"reject"`` (default): a failed pair is a non-match, its score becomes ``-inf``.  It then
      counts as an error on a same-person pair and as correct on a different-person pair,
      which is what a deployed system that refuses unreadable input would do.
    * ``"exclude"``: failed pairs are dropped.  Optimistic; report ``n_failed`` next to it.
    """
    raw = as_float_array(scores)
    truth = as_labels(labels, raw.shape[0])
    failed = np.isnan(raw)
    if policy == "reject":
        return PolicyApplied(
            np.where(failed, -np.inf, raw), truth, np.ones_like(failed), int(failed.sum())
        )
    if policy == "exclude":
        return PolicyApplied(raw[~failed], truth[~failed], ~failed, int(failed.sum()))
    raise ValueError(f"unknown failure policy {policy!r}")


def roc_curve(scores: ScoresLike, labels: npt.ArrayLike) -> Roc:
    """The ROC curve of ``scores`` (``(N,)``, higher = more alike) against ``labels``."""
    s, y = split_checked(scores, labels)
    genuine, impostor = np.sort(s[y]), np.sort(s[~y])
    thresholds = np.concatenate(([np.inf], np.unique(s)[::-1]))
    return Roc(
        thresholds=thresholds,
        n_true_accept=_count_at_least(genuine, thresholds),
        n_false_accept=_count_at_least(impostor, thresholds),
        n_genuine=int(genuine.size),
        n_impostor=int(impostor.size),
    )


def auc(roc: Roc) -> float:
    """Area under the ROC curve (TAR against FAR), by the trapezoidal rule.

    Equals P(genuine > impostor) + ½·P(genuine = impostor): ties count half.
    """
    return float(np.trapezoid(roc.tar, roc.far))


def eer(scores: ScoresLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and a threshold for it: ``(eer, threshold)``.

    FAR - FNMR rises strictly along the ROC (every threshold step accepts at least one more
    score), so it crosses zero once.  The EER is where the straight ROC segment between the two
    points around the crossing meets FAR = FNMR.  The threshold is the one of those two points
    whose |FAR - FNMR| is smaller (compared exactly, in counts); a tie goes to the higher,
    stricter threshold.
    """
    roc = roc_curve(scores, labels)
    n_false_reject = roc.n_genuine - roc.n_true_accept
    # FAR - FNMR scaled by n_genuine * n_impostor: exact integers.
    gap = roc.n_false_accept * roc.n_genuine - n_false_reject * roc.n_impostor
    k = int(np.searchsorted(gap, 0, side="left"))
    far = roc.far
    if gap[k] == 0:
        return float(far[k]), float(roc.thresholds[k])
    fraction = -gap[k - 1] / (gap[k] - gap[k - 1])
    rate = far[k - 1] + fraction * (far[k] - far[k - 1])
    best = k - 1 if -gap[k - 1] <= gap[k] else k
    return float(rate), float(roc.thresholds[best])


def tar_at_far(scores: ScoresLike, labels: npt.ArrayLike, far_target: float) -> OperatingPoint:
    """TAR at the **smallest threshold whose FAR <= far_target**.

    Thresholds are taken from the ROC (the observed scores and ``+inf``); every threshold
    between the next lower observed score (exclusive) and the one returned gives the same
    operating point on this data.  See :attr:`OperatingPoint.resolvable` for too few impostors.
    """
    s, y = split_checked(scores, labels)
    return operating_point(s[y], s[~y], far_target)


def operating_point(genuine: ScoresLike, impostor: ScoresLike, far_target: float) -> OperatingPoint:
    """:func:`tar_at_far` for separate genuine ``(G,)`` and impostor ``(I,)`` score arrays."""
    g = np.sort(check_scores(genuine, "genuine"))
    i = np.sort(check_scores(impostor, "impostor"))
    threshold = threshold_at_far_sorted(g, i, far_target)
    return OperatingPoint(
        far_target=far_target,
        threshold=threshold,
        n_true_accept=int(_count_at_least(g, np.array([threshold]))[0]),
        n_genuine=int(g.size),
        n_false_accept=int(_count_at_least(i, np.array([threshold]))[0]),
        n_impostor=int(i.size),
        resolvable=max_false_accepts(int(i.size), far_target) >= 1,
    )


def threshold_at_far_sorted(
    genuine_sorted: FloatArray, impostor_sorted: FloatArray, far_target: float
) -> float:
    """The smallest observed score (or ``+inf``) usable as a threshold with FAR <= far_target.

    Both arrays must be sorted ascending, non-empty, without NaN (not re-checked: this is the
    inner loop of the bootstrap in :mod:`shiren.eval.calibrate`).
    """
    n_impostor = impostor_sorted.size
    allowed = max_false_accepts(n_impostor, far_target)
    if allowed >= n_impostor:
        return float(min(genuine_sorted[0], impostor_sorted[0]))
    # At most `allowed` impostors may score >= threshold, so the threshold must exceed the
    # (allowed + 1)-th highest impostor score; take the smallest observed score above it.
    boundary = impostor_sorted[n_impostor - 1 - allowed]
    above = [
        arr[j]
        for arr in (genuine_sorted, impostor_sorted)
        if (j := int(np.searchsorted(arr, boundary, side="right"))) < arr.size
    ]
    return float(min(above)) if above else math.inf


def max_false_accepts(n_impostor: int, far_target: float) -> int:
    """The largest ``k`` in ``[0, n_impostor]`` with ``k / n_impostor <= far_target``."""
    if not 0.0 <= far_target <= 1.0:
        raise ValueError(f"far_target must lie in [0, 1], got {far_target}")
    k = min(n_impostor, math.floor(far_target * n_impostor))
    # Guard the float product against off-by-one; the test is the same k / n <= target.
    while k < n_impostor and (k + 1) / n_impostor <= far_target:
        k += 1
    while k > 0 and k / n_impostor > far_target:
        k -= 1
    return k


def _count_at_least(sorted_scores: FloatArray, thresholds: FloatArray) -> IntArray:
    """For each threshold, how many of the ascending ``sorted_scores`` are ``>= threshold``."""
    below = np.searchsorted(sorted_scores, thresholds, side="left")
    return (sorted_scores.size - below).astype(np.int64)


__all__ = [
    "BoolArray",
    "FailurePolicy",
    "FloatArray",
    "IntArray",
    "KFoldResult",
    "OperatingPoint",
    "PolicyApplied",
    "Roc",
    "apply_failure_policy",
    "auc",
    "clopper_pearson",
    "eer",
    "kfold_accuracy",
    "max_false_accepts",
    "operating_point",
    "roc_curve",
    "rule_of_three",
    "tar_at_far",
    "threshold_at_far_sorted",
    "wilson_interval",
]
