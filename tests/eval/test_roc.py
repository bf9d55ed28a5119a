"""Golden numbers for ROC, AUC, EER, TAR@FAR and the failure policy, checked by hand.

The main fixture: 4 genuine and 6 impostor similarity scores.  Sorted, highest first::

    0.9 G   0.8 G   0.7 I   0.6 G   0.5 I   0.4 G   0.3 I   0.2 I   0.1 I   0.0 I

threshold  inf  0.9  0.8  0.7  0.6  0.5  0.4  0.3  0.2  0.1  0.0
TA (of 4)    0    1    2    2    3    3    4    4    4    4    4
FA (of 6)    0    0    0    1    1    2    2    3    4    5    6

AUC = #(g > i) / (4 * 6): 0.9 beats 6, 0.8 beats 6, 0.6 beats 5, 0.4 beats 4 → 21/24 = 0.875.
EER: FAR - FNMR is -1/12 at 0.6 (1/6 vs 1/4) and +1/12 at 0.5 (2/6 vs 1/4); the ROC segment
between them has FNMR = 1/4 and FAR going 1/6 → 2/6, so it meets FAR = FNMR at 0.25, halfway.
|gap| is equal at both ends → the tie goes to the higher threshold, 0.6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.eval.metrics import (
    apply_failure_policy,
    auc,
    eer,
    max_false_accepts,
    roc_curve,
    tar_at_far,
)

GENUINE = [0.9, 0.8, 0.6, 0.4]
IMPOSTOR = [0.7, 0.5, 0.3, 0.2, 0.1, 0.0]
SCORES = np.array(GENUINE + IMPOSTOR)
LABELS = np.array([True] * 4 + [False] * 6)


def test_roc_points_by_hand() -> None:
    roc = roc_curve(SCORES, LABELS)
    expected_thr = [math.inf, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    np.testing.assert_array_equal(roc.thresholds, expected_thr)
    np.testing.assert_array_equal(roc.n_true_accept, [0, 1, 2, 2, 3, 3, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(roc.n_false_accept, [0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6])
    assert (roc.n_genuine, roc.n_impostor) == (4, 6)
    np.testing.assert_allclose(roc.far[[0, 3, 5, -1]], [0, 1 / 6, 2 / 6, 1])
    np.testing.assert_allclose(roc.tar + roc.fnmr, 1.0)


def test_auc_by_hand() -> None:
    assert auc(roc_curve(SCORES, LABELS)) == pytest.approx(0.875)


def test_eer_by_hand() -> None:
    rate, threshold = eer(SCORES, LABELS)
    assert rate == pytest.approx(0.25)
    assert threshold == 0.6


def test_eer_exact_crossing() -> None:
    # G = {3, 1}, I = {2, 0}: at threshold 2, FAR = 1/2 (the 2) and FNMR = 1/2 (the 1).
    assert eer([3, 1, 2, 0], [1, 1, 0, 0]) == (0.5, 2.0)


def test_eer_perfect_separation() -> None:
    # Threshold 0.8 accepts both genuines and no impostor: FAR = FNMR = 0.
    assert eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == (0.0, 0.8)


@pytest.mark.parametrize(
    ("target", "threshold", "n_ta", "n_fa", "resolvable"),
    [
        (0.0, 0.8, 2, 0, False),  # no impostor may pass: smallest score above 0.7
        (0.1, 0.8, 2, 0, False),  # 6 * 0.1 < 1: no false accept allowed either
        (1 / 6, 0.6, 3, 1, True),  # exactly one false accept allowed (1/6 <= 1/6)
        (0.2, 0.6, 3, 1, True),  # 1.2 → one allowed; 0.5 would be the second
        (0.5, 0.3, 4, 3, True),  # three allowed: 0.7, 0.5, 0.3
        (1.0, 0.0, 4, 6, True),  # everything
    ],
)
def test_tar_at_far_by_hand(
    target: float, threshold: float, n_ta: int, n_fa: int, resolvable: bool
) -> None:
    point = tar_at_far(SCORES, LABELS, target)
    assert point.threshold == threshold
    assert (point.n_true_accept, point.n_false_accept) == (n_ta, n_fa)
    assert (point.n_genuine, point.n_impostor) == (4, 6)
    assert point.tar == n_ta / 4
    assert point.far == n_fa / 6 <= target
    assert point.fnmr == (4 - n_ta) / 4
    assert point.resolvable is resolvable


def test_tar_at_far_needs_infinite_threshold() -> None:
    # The highest score is an impostor: at FAR 0 nothing can be accepted.
    point = tar_at_far([0.5, 0.9], [1, 0], 0.0)
    assert point.threshold == math.inf
    assert (point.n_true_accept, point.n_false_accept) == (0, 0)


def test_ties_are_diagonal_and_count_half() -> None:
    # G = {0.5, 0.5}, I = {0.5, 0.2}: each genuine beats 0.2 and ties 0.5 → (1 + 0.5) * 2 / 4.
    roc = roc_curve([0.5, 0.5, 0.5, 0.2], [1, 1, 0, 0])
    np.testing.assert_array_equal(roc.thresholds, [math.inf, 0.5, 0.2])
    np.testing.assert_array_equal(roc.tar, [0, 1, 1])
    np.testing.assert_array_equal(roc.far, [0, 0.5, 1])
    assert auc(roc) == pytest.approx(0.75)


def test_max_false_accepts_boundaries() -> None:
    assert max_false_accepts(3000, 1e-3) == 3
    assert max_false_accepts(6, 1 / 6) == 1
    assert max_false_accepts(6, 0.0) == 0
    assert max_false_accepts(6, 1.0) == 6
    with pytest.raises(ValueError, match="far_target"):
        max_false_accepts(6, 1.5)


def test_failure_policy_reject() -> None:
    # A failed genuine pair is an error at every threshold; a failed impostor is never accepted.
    applied = apply_failure_policy([0.9, None, 0.1, math.nan], [1, 1, 0, 0])
    assert applied.n_failed == 2
    np.testing.assert_array_equal(applied.scores, [0.9, -math.inf, 0.1, -math.inf])
    assert applied.kept.all()
    roc = roc_curve(applied.scores, applied.labels)
    assert roc.thresholds[-1] == -math.inf
    point = tar_at_far(applied.scores, applied.labels, 0.0)
    assert (point.n_true_accept, point.n_false_accept) == (1, 0)


def test_failure_policy_exclude() -> None:
    applied = apply_failure_policy(np.array([0.9, np.nan, 0.1]), [1, 1, 0], "exclude")
    np.testing.assert_array_equal(applied.scores, [0.9, 0.1])
    np.testing.assert_array_equal(applied.labels, [True, False])
    np.testing.assert_array_equal(applied.kept, [True, False, True])
    assert applied.n_failed == 1


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="NaN"):
        roc_curve([0.1, math.nan], [1, 0])
    with pytest.raises(ValueError, match=r"\+inf"):
        roc_curve([0.1, math.inf], [1, 0])
    with pytest.raises(ValueError, match="one genuine and one impostor"):
        roc_curve([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="shape"):
        roc_curve([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="0/1"):
        roc_curve([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="unknown failure policy"):
        apply_failure_policy([0.1], [1], "ignore")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------

_score = st.integers(0, 8).map(lambda v: v / 8)  # few distinct values: plenty of ties


@st.composite
def scored_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    genuine = draw(st.lists(_score, min_size=1, max_size=12))
    impostor = draw(st.lists(_score, min_size=1, max_size=12))
    labels = np.array([True] * len(genuine) + [False] * len(impostor))
    return np.array(genuine + impostor), labels


def _mann_whitney(scores: np.ndarray, labels: np.ndarray) -> float:
    g, i = scores[labels][:, None], scores[~labels][None, :]
    return float(((g > i) + 0.5 * (g == i)).mean())


@settings(max_examples=150, deadline=None)
@given(scored_pairs())
def test_auc_is_mann_whitney_and_flips(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = data
    area = auc(roc_curve(scores, labels))
    assert 0.0 <= area <= 1.0
    assert area == pytest.approx(_mann_whitney(scores, labels))
    assert auc(roc_curve(scores, ~labels)) == pytest.approx(1.0 - area)


@settings(max_examples=150, deadline=None)
@given(scored_pairs(), st.floats(0, 1), st.floats(0, 1))
def test_tar_at_far_monotone_and_minimal(
    data: tuple[np.ndarray, np.ndarray], t1: float, t2: float
) -> None:
    scores, labels = data
    low, high = sorted((t1, t2))
    p_low, p_high = tar_at_far(scores, labels, low), tar_at_far(scores, labels, high)
    assert p_low.tar <= p_high.tar
    assert p_low.threshold >= p_high.threshold
    for point in (p_low, p_high):
        assert point.far <= point.far_target
        impostor = scores[~labels]
        # Smallest: every observed score below the threshold lets through too many impostors.
        for s in scores[scores < point.threshold]:
            assert (impostor >= s).sum() / impostor.size > point.far_target


@settings(max_examples=150, deadline=None)
@given(scored_pairs())
def test_eer_threshold_minimises_the_gap(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = data
    rate, threshold = eer(scores, labels)
    roc = roc_curve(scores, labels)
    assert 0.0 <= rate <= 1.0
    gap = np.abs(roc.far - roc.fnmr)
    k = int(np.flatnonzero(roc.thresholds == threshold)[0])
    assert gap[k] == pytest.approx(gap.min())
    # The EER lies between FAR and FNMR at the chosen point (it is on the segment through it).
    assert min(roc.far[k], roc.fnmr[k]) - 1e-12 <= rate <= max(roc.far[k], roc.fnmr[k]) + 1e-12
