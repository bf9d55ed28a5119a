"""Templates from several images (issue 14): the maths on hand-checkable fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.core.fusion import fuse, pose_weight, unit


def test_fuse_of_two_orthogonal_unit_vectors_is_their_bisector() -> None:
    out = fuse([np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)])
    assert out == pytest.approx([math.sqrt(0.5), math.sqrt(0.5)], abs=1e-6)


def test_fuse_normalises_first_so_a_long_vector_cannot_dominate() -> None:
    out = fuse([np.array([100.0, 0.0], np.float32), np.array([0.0, 0.01], np.float32)])
    assert out == pytest.approx([math.sqrt(0.5), math.sqrt(0.5)], abs=1e-6)


def test_fuse_weights_hand_checked() -> None:
    # weights 3:1 → direction (3, 1) / √10
    out = fuse([np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)], [3.0, 1.0])
    assert out == pytest.approx([3 / math.sqrt(10), 1 / math.sqrt(10)], abs=1e-6)


def test_fuse_of_one_template_is_that_template_normalised() -> None:
    v = np.array([3.0, 4.0], np.float32)
    assert fuse([v]) == pytest.approx([0.6, 0.8], abs=1e-6)


@pytest.mark.parametrize("weights", [[0.0, 0.0], [-1.0, 2.0], [math.nan, 1.0], [1.0]])
def test_fuse_refuses_unusable_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        fuse([np.ones(2, np.float32), np.ones(2, np.float32)], weights)


def test_fuse_refuses_nothing() -> None:
    with pytest.raises(ValueError, match="no templates"):
        fuse([])


def test_fusing_noisy_views_of_one_identity_moves_towards_it() -> None:
    """The point of several frames: the mean of noisy views is closer to the identity than a
    typical single view (checked on a seeded sample, not asserted for every draw)."""
    rng = np.random.default_rng(7)
    truth = unit(rng.normal(size=192).astype(np.float32))
    views = [unit(truth + 0.08 * rng.normal(size=192).astype(np.float32)) for _ in range(4)]
    single = float(np.mean([v @ truth for v in views]))
    assert float(fuse(views) @ truth) > single


@pytest.mark.parametrize(
    ("yaw", "pitch", "expected"),
    [(0.0, 0.0, 1.0), (45.0, 0.0, 0.0), (-60.0, 0.0, 0.0), (0.0, 35.0, 0.0), (22.5, 0.0, 0.5)],
)
def test_pose_weight_hand_checked(yaw: float, pitch: float, expected: float) -> None:
    assert pose_weight(yaw, pitch) == pytest.approx(expected, abs=1e-9)


def test_pose_weight_of_a_nan_pose_is_zero() -> None:
    assert pose_weight(math.nan, 0.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.floats(-90, 90), st.floats(-90, 90))
def test_pose_weight_is_in_unit_interval_and_falls_with_yaw(yaw: float, pitch: float) -> None:
    w = pose_weight(yaw, pitch)
    assert 0.0 <= w <= 1.0
    assert pose_weight(abs(yaw) + 1.0, pitch) <= w + 1e-12
