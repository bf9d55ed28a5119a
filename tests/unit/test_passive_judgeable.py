"""The passive model judges only frontal, well-exposed faces (issue 17): a dim, washed-out or
turned face is asked for better light or to face the camera, with a quality code the decision
treats as retryable — never as a spoof."""

from __future__ import annotations

import numpy as np

from shiren.core.geometry import BBox
from shiren.domain.decisions import ATTACK, RETRYABLE
from shiren.liveness.keyframes import PASSIVE_LUMA, judgeable
from shiren.reasons import ReasonCode

BOX = BBox(100, 100, 300, 340)


def _frame(luma: int) -> np.ndarray:
    return np.full((480, 640, 3), luma, np.uint8)


def test_a_frontal_well_lit_face_is_judged() -> None:
    assert judgeable(_frame(120), BOX, yaw=5.0, pitch=-3.0) is None


def test_light_and_pose_are_named() -> None:
    dark, bright = int(PASSIVE_LUMA[0]) - 10, int(PASSIVE_LUMA[1]) + 10
    assert judgeable(_frame(dark), BOX, 0.0, 0.0) is ReasonCode.QUALITY_TOO_DARK
    assert judgeable(_frame(bright), BOX, 0.0, 0.0) is ReasonCode.QUALITY_OVEREXPOSED
    assert judgeable(_frame(120), BOX, yaw=50.0, pitch=0.0) is ReasonCode.QUALITY_POSE_YAW
    assert judgeable(_frame(120), BOX, yaw=0.0, pitch=-45.0) is ReasonCode.QUALITY_POSE_PITCH


def test_only_the_face_counts_not_the_room() -> None:
    frame = _frame(20)  # a dark room …
    frame[100:340, 100:300] = 140  # … and a lit face
    assert judgeable(frame, BOX, 0.0, 0.0) is None


def test_the_codes_ask_for_another_try_not_review() -> None:
    for code in (
        ReasonCode.QUALITY_TOO_DARK,
        ReasonCode.QUALITY_OVEREXPOSED,
        ReasonCode.QUALITY_POSE_YAW,
        ReasonCode.QUALITY_POSE_PITCH,
    ):
        assert code in RETRYABLE
        assert code not in ATTACK
