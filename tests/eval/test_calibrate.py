"""Threshold calibration on the hand-checked fixture of ``test_roc.py`` and on synthetic scores.

Genuine 0.9 0.8 0.6 0.4; impostor 0.7 0.5 0.3 0.2 0.1 0.0 (see ``test_roc.py`` for the table):

* target 0.5: three false accepts allowed → threshold 0.3, FA 3/6, TA 4/4; 3/6 <= 0.5 → resolvable.
* target 0.2: one allowed → threshold 0.6, FA 1/6, TA 3/4; 6 < 3/0.2 = 15 → not resolvable.
* target 0.1: none allowed → threshold 0.8, FA 0/6, TA 2/4; 6 < 30 → not resolvable.

TA 4 of 4 has the Clopper–Pearson interval (0.025^(1/4), 1) = (0.39764, 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shiren.eval.calibrate import calibrate_thresholds, is_resolvable, min_impostors
from shiren.eval.intervals import clopper_pearson

GENUINE = [0.9, 0.8, 0.6, 0.4]
IMPOSTOR = [0.7, 0.5, 0.3, 0.2, 0.1, 0.0]


def test_calibration_by_hand() -> None:
    high, mid, low = calibrate_thresholds(GENUINE, IMPOSTOR, targets=(0.5, 0.2, 0.1), n_boot=50)
    assert (high.threshold, mid.threshold, low.threshold) == (0.3, 0.6, 0.8)
    assert (high.n_false_accept, mid.n_false_accept, low.n_false_accept) == (3, 1, 0)
    assert (high.n_true_accept, mid.n_true_accept, low.n_true_accept) == (4, 3, 2)
    assert (high.n_impostor, high.n_genuine) == (6, 4)
    assert (high.resolvable, mid.resolvable, low.resolvable) == (True, False, False)
    assert high.note == ""
    assert "at least 15" in mid.note
    assert "at least 30" in low.note
    assert high.far == 0.5
    assert high.far_ci == clopper_pearson(3, 6)
    assert high.tar_ci == pytest.approx((0.025**0.25, 1.0))
    assert high.fnmr == 0.0
    assert high.fnmr_ci == pytest.approx((0.0, 1 - 0.025**0.25))
    assert low.far_ci == pytest.approx((0.0, 1 - 0.025 ** (1 / 6)))


def test_bootstrap_is_deterministic_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(7)
    genuine, impostor = rng.normal(0.6, 0.1, 1000), rng.normal(0.1, 0.1, 3000)
    first = calibrate_thresholds(genuine, impostor, n_boot=100, seed=3)
    again = calibrate_thresholds(genuine, impostor, n_boot=100, seed=3)
    other = calibrate_thresholds(genuine, impostor, n_boot=100, seed=4)
    assert first == again
    assert [e.threshold_ci for e in first] != [e.threshold_ci for e in other]
    assert [e.resolvable for e in first] == [True, True, False]  # 3000 impostors, 1e-2..1e-4
    for estimate in first:
        assert estimate.n_boot == 100
        assert estimate.far <= estimate.far_target
        assert estimate.far_ci[0] <= estimate.far <= estimate.far_ci[1]
        assert estimate.tar_ci[0] <= estimate.tar <= estimate.tar_ci[1]
        assert estimate.threshold_ci is not None
        assert estimate.threshold_ci[0] <= estimate.threshold <= estimate.threshold_ci[1]
    assert first[0].threshold < first[1].threshold <= first[2].threshold


def test_no_bootstrap() -> None:
    (estimate,) = calibrate_thresholds(GENUINE, IMPOSTOR, targets=(0.5,), n_boot=0)
    assert estimate.threshold_ci is None
    assert estimate.n_boot == 0


def test_unreachable_target_gives_infinite_threshold() -> None:
    # The top score is an impostor and no false accept is allowed: nothing may be accepted.
    (estimate,) = calibrate_thresholds([0.5], [0.9, 0.1], targets=(0.01,), n_boot=20)
    assert estimate.threshold == math.inf
    assert (estimate.n_true_accept, estimate.tar, estimate.fnmr) == (0, 0.0, 1.0)


def test_resolvable_rule_of_three() -> None:
    assert is_resolvable(3000, 1e-3)
    assert not is_resolvable(2999, 1e-3)
    assert [min_impostors(t) for t in (1e-2, 1e-3, 1e-4, 1e-5)] == [300, 3000, 30000, 300000]


def test_calibration_input_checks() -> None:
    with pytest.raises(ValueError, match="target FAR"):
        calibrate_thresholds(GENUINE, IMPOSTOR, targets=(0.0,))
    with pytest.raises(ValueError, match="n_boot"):
        calibrate_thresholds(GENUINE, IMPOSTOR, n_boot=-1)
    with pytest.raises(ValueError, match="NaN"):
        calibrate_thresholds([math.nan], IMPOSTOR)
