"""The LFW k-fold protocol on a fixture small enough to check by hand.

Three folds of 2 genuine (S) and 2 impostor (D) pairs, integer scores so midpoints are exact::

    fold 0: S 10, S 7, D 4, D 1
    fold 1: S 9,  S 5, D 6, D 2
    fold 2: S 8,  S 3, D 11, D 0

Hold out fold 0, train on 0D 2D 3S 5S 6D 8S 9S 11D.  Correct decisions when accepting >= each
distinct score: >=0: 4, >=2: 5, >=3: 6, >=5: 5, >=6: 4, >=8: 5, >=9: 4, >=11: 3, none: 4.
Best is the single cut ">= 3" → threshold (2 + 3) / 2 = 2.5.  On fold 0: 10 S ✓, 7 S ✓, 4 D ✗
(accepted), 1 D ✓ → 3/4.

Hold out fold 1, train on 0D 1D 3S 4D 7S 8S 10S 11D: >=0: 4, >=1: 5, >=3: 6, >=4: 5, >=7: 6,
>=8: 5, >=10: 4, >=11: 3, none: 4.  Best cuts ">= 3" and ">= 7": the lower median is ">= 3" →
threshold (1 + 3) / 2 = 2.  On fold 1: 9 ✓, 5 ✓, 6 D ✗, 2 D ✗ (2 >= 2) → 2/4.

Hold out fold 2, train on 1D 2D 4D 5S 6D 7S 9S 10S: >=1: 4, >=2: 5, >=4: 6, >=5: 7, >=6: 6,
>=7: 7, >=9: 6, >=10: 5, none: 4.  Best ">= 5" and ">= 7" → ">= 5" → threshold 4.5.
On fold 2: 8 ✓, 3 S ✗, 11 D ✗, 0 D ✓ → 2/4.

Mean 7/12; deviations +1/6, -1/12, -1/12 → sample variance (1/36 + 2/144) / 2 = 1/48,
std = sqrt(1/48) ≈ 0.144338, standard error = std / sqrt(3) = 1/12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.eval.kfold import best_accuracy_threshold
from shiren.eval.metrics import kfold_accuracy

FOLDS = {0: ([10, 7], [4, 1]), 1: ([9, 5], [6, 2]), 2: ([8, 3], [11, 0])}


def _fixture() -> tuple[list[float], list[bool], list[int]]:
    scores: list[float] = []
    labels: list[bool] = []
    folds: list[int] = []
    for fold, (same, diff) in FOLDS.items():
        scores += same + diff
        labels += [True] * len(same) + [False] * len(diff)
        folds += [fold] * (len(same) + len(diff))
    return scores, labels, folds


def test_kfold_by_hand() -> None:
    result = kfold_accuracy(*_fixture())
    assert result.folds == (0, 1, 2)
    assert result.thresholds == (2.5, 2.0, 4.5)
    assert result.n_correct == (3, 2, 2)
    assert result.n_pairs == (4, 4, 4)
    assert result.accuracies == (0.75, 0.5, 0.5)
    assert result.accuracy_mean == pytest.approx(7 / 12)
    assert result.accuracy_std == pytest.approx(math.sqrt(1 / 48))
    assert result.accuracy_sem == pytest.approx(1 / 12)
    assert result.accuracy_pooled == pytest.approx(7 / 12)


def test_best_threshold_ends_and_failed_scores() -> None:
    # All genuine above all impostors, one cut: midpoint of 0.4 and 0.6.
    s = np.array([0.9, 0.6, 0.4, 0.1])
    y = np.array([True, True, False, False])
    assert best_accuracy_threshold(s, y) == pytest.approx(0.5)
    # Only genuines: accepting everything is best → one unit below the lowest score.
    assert best_accuracy_threshold(np.array([0.2, 0.7]), np.array([True, True])) == -0.8
    # Only impostors: rejecting everything is best → one unit above the highest score.
    assert best_accuracy_threshold(np.array([0.2, 0.7]), np.array([False, False])) == 1.7
    # A failed (-inf) impostor next to the cut: one unit below the finite neighbour.
    s = np.array([-np.inf, 0.3])
    assert best_accuracy_threshold(s, np.array([False, True])) == pytest.approx(-0.7)


def test_kfold_input_checks() -> None:
    scores, labels, folds = _fixture()
    with pytest.raises(ValueError, match="two folds"):
        kfold_accuracy(scores, labels, [0] * len(scores))
    with pytest.raises(ValueError, match="integers"):
        kfold_accuracy(scores, labels, [0.5] * len(scores))
    with pytest.raises(ValueError, match="shape"):
        kfold_accuracy(scores, labels, folds[:-1])


@st.composite
def folded_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(4, 30))
    scores = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    labels = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    labels[0], labels[1] = True, False  # both classes present
    folds = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    folds[0], folds[1] = 0, 1  # at least two folds
    return np.array(scores, dtype=float), np.array(labels), np.array(folds)


def _brute_best_accuracy(scores: np.ndarray, labels: np.ndarray) -> int:
    u = np.unique(scores)
    candidates = [u[0] - 1, *((u[:-1] + u[1:]) / 2), u[-1] + 1]
    return max(int(((scores >= t) == labels).sum()) for t in candidates)


@settings(max_examples=150, deadline=None)
@given(folded_pairs())
def test_kfold_properties(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    scores, labels, folds = data
    result = kfold_accuracy(scores, labels, folds)
    assert all(0.0 <= a <= 1.0 for a in result.accuracies)
    assert 0.0 <= result.accuracy_mean <= 1.0
    assert sum(result.n_pairs) == scores.size
    for fold, threshold in zip(result.folds, result.thresholds, strict=True):
        train = folds != fold
        achieved = int(((scores[train] >= threshold) == labels[train]).sum())
        assert achieved == _brute_best_accuracy(scores[train], labels[train])
