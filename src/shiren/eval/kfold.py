"""The LFW k-fold accuracy protocol (LFW README, "View 2": 10-fold cross-validation).

For each fold: choose the threshold that maximises accuracy on the *other* folds, then count
correct decisions on the held-out fold with it.  Report the mean accuracy, the sample standard
deviation (``ddof=1``) and the standard error of the mean ``S_E = std / sqrt(k)`` that the LFW
README asks for, next to the per-fold thresholds and counts.

Scores are similarities (higher = more alike, match when ``score >= threshold``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shiren.eval.scores import BoolArray, FloatArray, IntArray, ScoresLike, split_checked


@dataclass(frozen=True, slots=True)
class KFoldResult:
    """Per-fold thresholds and counts (tuples of length ``k``, folds in ascending id order), and
    the summary: mean, sample std (``ddof=1``), standard error ``std / sqrt(k)`` of the per-fold
    accuracies, and the pooled accuracy ``sum(n_correct) / sum(n_pairs)``."""

    folds: tuple[int, ...]
    thresholds: tuple[float, ...]
    n_correct: tuple[int, ...]
    n_pairs: tuple[int, ...]
    accuracies: tuple[float, ...]
    accuracy_mean: float
    accuracy_std: float
    accuracy_sem: float
    accuracy_pooled: float


def kfold_accuracy(scores: ScoresLike, labels: npt.ArrayLike, folds: npt.ArrayLike) -> KFoldResult:
    """LFW-protocol accuracy of ``scores`` ``(N,)`` against ``labels`` ``(N,)``.

    ``folds`` ``(N,)`` holds an integer fold id per pair; at least two distinct folds are needed.
    The threshold for each fold is :func:`best_accuracy_threshold` of the other folds.
    """
    s, y = split_checked(scores, labels)
    f = _as_folds(folds, s.shape[0])
    fold_ids = [int(v) for v in np.unique(f)]
    if len(fold_ids) < 2:
        raise ValueError("k-fold accuracy needs at least two folds")
    thresholds, n_correct, n_pairs = [], [], []
    for fold in fold_ids:
        test = f == fold
        threshold = best_accuracy_threshold(s[~test], y[~test])
        thresholds.append(threshold)
        n_correct.append(int(((s[test] >= threshold) == y[test]).sum()))
        n_pairs.append(int(test.sum()))
    return _summarise(fold_ids, thresholds, n_correct, n_pairs)


def best_accuracy_threshold(scores: FloatArray, labels: BoolArray) -> float:
    """The threshold maximising accuracy on ``scores`` ``(N,)`` / ``labels`` ``(N,)``.

    Candidates are the cuts between adjacent distinct scores (plus below the lowest and above
    the highest); accuracy per cut is counted exactly.  Among the best cuts the lower median
    is taken (the middle of the best run when they are contiguous), and its threshold is the
    midpoint of the two scores around it.  Next to an end or a ``-inf`` score, where there is no
    midpoint, it is one unit beyond the finite neighbour.
    """
    distinct = np.unique(scores)
    correct = _correct_per_cut(distinct, scores, labels)
    best = np.flatnonzero(correct == correct.max())
    cut = int(best[(best.size - 1) // 2])
    edges = np.concatenate(([-np.inf], distinct, [np.inf]))
    return _between(float(edges[cut]), float(edges[cut + 1]))


def _correct_per_cut(distinct: FloatArray, scores: FloatArray, labels: BoolArray) -> IntArray:
    """Correct decisions for each cut ``j`` in ``0..M``: accept the scores ``>= distinct[j]``
    (cut ``M`` accepts nothing)."""
    genuine, impostor = np.sort(scores[labels]), np.sort(scores[~labels])
    starts = np.concatenate((distinct, [np.inf]))
    true_accepts = genuine.size - np.searchsorted(genuine, starts, side="left")
    true_rejects = np.searchsorted(impostor, starts, side="left")
    return (true_accepts + true_rejects).astype(np.int64)


def _between(low: float, high: float) -> float:
    """A threshold in ``(low, high]``: accepts ``high``, rejects ``low``."""
    if math.isfinite(low) and math.isfinite(high):
        return (low + high) / 2.0
    if math.isfinite(high):
        return high - 1.0  # low is -inf: the sentinel below everything, or a failed pair
    if math.isfinite(low):
        return low + 1.0  # high is the +inf sentinel: reject everything
    return 0.0  # every training score is -inf and the cut rejects them all


def _as_folds(folds: npt.ArrayLike, n: int) -> IntArray:
    arr = np.asarray(folds)
    if arr.shape != (n,):
        raise ValueError(f"folds must have shape ({n},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("folds must be integers")
    return arr.astype(np.int64)


def _summarise(
    fold_ids: list[int], thresholds: list[float], n_correct: list[int], n_pairs: list[int]
) -> KFoldResult:
    accuracies = np.array(n_correct, dtype=np.float64) / np.array(n_pairs, dtype=np.float64)
    std = float(np.std(accuracies, ddof=1))
    return KFoldResult(
        folds=tuple(fold_ids),
        thresholds=tuple(thresholds),
        n_correct=tuple(n_correct),
        n_pairs=tuple(n_pairs),
        accuracies=tuple(float(a) for a in accuracies),
        accuracy_mean=float(accuracies.mean()),
        accuracy_std=std,
        accuracy_sem=std / math.sqrt(len(fold_ids)),
        accuracy_pooled=sum(n_correct) / sum(n_pairs),
    )
