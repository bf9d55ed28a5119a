"""Head pose, EAR and MAR on synthetic meshes: canonical points rotated by known angles and
projected through a pinhole camera, so every expected value is exact."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.core.geometry import FloatArray
from shiren.core.pose import (
    EAR_INDICES,
    MAR_INDICES,
    POSE_INDICES,
    Pose,
    camera_matrix,
    canonical_points,
    eye_aspect_ratio,
    head_pose,
    mouth_aspect_ratio,
    pose_from_rotation,
    rotation_from_pose,
)

SIZE = (640, 480)
# Mirror partners among the pose points (subject's right ↔ left); the rest lie on the midline.
MIRROR = {33: 263, 263: 33, 133: 362, 362: 133, 61: 291, 291: 61}

angle = st.floats(min_value=-40.0, max_value=40.0, allow_nan=False)


def _project(
    rotation: npt.NDArray[np.float64], centre_px: tuple[float, float] = (320.0, 240.0)
) -> FloatArray:
    """A (478, 3) mesh whose pose points are the canonical face (≈ cm) rotated by ``rotation``,
    placed 60 cm from the camera on the ray through ``centre_px``, and projected."""
    camera = camera_matrix(SIZE)
    ray = np.linalg.inv(camera) @ np.array([centre_px[0], centre_px[1], 1.0])
    translation = ray / ray[2] * 60.0
    points = canonical_points() @ rotation.T + translation
    pixels = (camera @ points.T).T
    mesh = np.zeros((478, 3), dtype=np.float32)
    mesh[list(POSE_INDICES), :2] = pixels[:, :2] / pixels[:, 2:3]
    return mesh


def _line_of_sight(centre_px: tuple[float, float]) -> npt.NDArray[np.float64]:
    """The rotation that turns the optical axis onto the ray through ``centre_px``."""
    ray = np.linalg.inv(camera_matrix(SIZE)) @ np.array([centre_px[0], centre_px[1], 1.0])
    ray /= np.linalg.norm(ray)
    axis = np.cross([0.0, 0.0, 1.0], ray)
    s, c = float(np.linalg.norm(axis)), float(ray[2])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / max(
        s, 1e-12
    )
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _close(pose: Pose, yaw: float, pitch: float, roll: float, tol: float = 0.5) -> bool:
    return (
        abs(pose.yaw_deg - yaw) < tol
        and abs(pose.pitch_deg - pitch) < tol
        and abs(pose.roll_deg - roll) < tol
    )


def test_frontal_face_has_zero_pose() -> None:
    assert _close(head_pose(_project(np.eye(3)), SIZE), 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"),
    [
        (20.0, 0.0, 0.0),
        (-20.0, 0.0, 0.0),
        (0.0, 15.0, 0.0),
        (0.0, -15.0, 0.0),
        (0.0, 0.0, 25.0),
        (0.0, 0.0, -25.0),
    ],
)
def test_single_axis_rotations_are_recovered(yaw: float, pitch: float, roll: float) -> None:
    mesh = _project(rotation_from_pose(Pose(yaw, pitch, roll)))
    assert _close(head_pose(mesh, SIZE), yaw, pitch, roll)


def test_sign_conventions_in_the_image() -> None:
    """yaw > 0: the nose moves to the image's right; pitch > 0: it moves up; roll > 0: the
    subject's left eye (image right) is lower."""
    frontal = _project(np.eye(3))
    turned = _project(rotation_from_pose(Pose(20.0, 0.0, 0.0)))
    nodded = _project(rotation_from_pose(Pose(0.0, 15.0, 0.0)))
    tilted = _project(rotation_from_pose(Pose(0.0, 0.0, 20.0)))
    nose = 1
    assert turned[nose, 0] - turned[168, 0] > frontal[nose, 0] - frontal[168, 0]
    assert nodded[nose, 1] - nodded[168, 1] < frontal[nose, 1] - frontal[168, 1]
    assert tilted[263, 1] > tilted[33, 1]


@settings(max_examples=60, deadline=None)
@given(yaw=angle, pitch=angle, roll=angle)
def test_any_pose_is_recovered(yaw: float, pitch: float, roll: float) -> None:
    mesh = _project(rotation_from_pose(Pose(yaw, pitch, roll)))
    assert _close(head_pose(mesh, SIZE), yaw, pitch, roll, tol=1.0)


@settings(max_examples=60, deadline=None)
@given(yaw=angle, pitch=angle, roll=angle)
def test_rotation_round_trip(yaw: float, pitch: float, roll: float) -> None:
    assert _close(
        pose_from_rotation(rotation_from_pose(Pose(yaw, pitch, roll))), yaw, pitch, roll, tol=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(yaw=angle, pitch=angle, roll=angle)
def test_mirrored_mesh_flips_yaw_and_roll(yaw: float, pitch: float, roll: float) -> None:
    mesh = _project(rotation_from_pose(Pose(yaw, pitch, roll)))
    mirrored = mesh.copy()
    for index in POSE_INDICES:  # a mirrored photo: x flips and the subject's sides swap
        mirrored[MIRROR.get(index, index), 0] = SIZE[0] - mesh[index, 0]
        mirrored[MIRROR.get(index, index), 1] = mesh[index, 1]
    pose = head_pose(mirrored, SIZE)
    assert _close(pose, -yaw, pitch, -roll, tol=1.0)


def test_pose_is_measured_against_the_line_of_sight() -> None:
    """A face in the image corner that looks into the lens is frontal, although it is turned
    relative to the optical axis."""
    corner = (600.0, 60.0)
    mesh = _project(_line_of_sight(corner), centre_px=corner)
    assert _close(head_pose(mesh, SIZE), 0.0, 0.0, 0.0)


def test_malformed_meshes_are_rejected() -> None:
    with pytest.raises(ValueError, match="mesh"):
        head_pose(np.zeros((10, 3), dtype=np.float32), SIZE)
    with pytest.raises(ValueError, match="mesh"):
        eye_aspect_ratio(np.zeros((478,), dtype=np.float32), "left")


def test_camera_matrix_uses_long_side_as_focal_length() -> None:
    matrix = camera_matrix((480, 640))
    assert matrix[0, 0] == matrix[1, 1] == 640.0
    assert (matrix[0, 2], matrix[1, 2]) == (240.0, 320.0)


def _eye_mesh(side: str, half_opening_px: float) -> FloatArray:
    """EAR points of one eye: corners 30 px apart, lid points at x = 10 and 20 px."""
    mesh = np.zeros((478, 2), dtype=np.float32)
    p1, p2, p3, p4, p5, p6 = EAR_INDICES[side]  # type: ignore[index]
    mesh[p1], mesh[p4] = (100, 100), (130, 100)
    mesh[p2], mesh[p3] = (110, 100 - half_opening_px), (120, 100 - half_opening_px)
    mesh[p6], mesh[p5] = (110, 100 + half_opening_px), (120, 100 + half_opening_px)
    return mesh


@pytest.mark.parametrize("side", ["right", "left"])
def test_eye_aspect_ratio(side: str) -> None:
    assert eye_aspect_ratio(_eye_mesh(side, 5.0), side) == pytest.approx(20.0 / 60.0)  # type: ignore[arg-type]
    assert eye_aspect_ratio(_eye_mesh(side, 0.5), side) == pytest.approx(2.0 / 60.0)  # type: ignore[arg-type]


def test_eye_indices_follow_the_subjects_sides() -> None:
    """The subject's right eye contains mesh point 33 (image left in an unmirrored photo)."""
    assert 33 in EAR_INDICES["right"]
    assert 263 in EAR_INDICES["left"]
    assert not set(EAR_INDICES["right"]) & set(EAR_INDICES["left"])


def test_mouth_aspect_ratio() -> None:
    mesh = np.zeros((478, 2), dtype=np.float32)
    left, up1, up2, up3, right, low3, low2, low1 = MAR_INDICES
    mesh[left], mesh[right] = (100, 200), (140, 200)
    for x, up, low in ((110, up1, low1), (120, up2, low2), (130, up3, low3)):
        mesh[up], mesh[low] = (x, 190), (x, 210)
    assert mouth_aspect_ratio(mesh) == pytest.approx(3 * 20.0 / (2 * 40.0))
    mesh[[up1, up2, up3], 1] = 200
    mesh[[low1, low2, low3], 1] = 200
    assert mouth_aspect_ratio(mesh) == 0.0


def test_degenerate_eye_gives_zero() -> None:
    assert eye_aspect_ratio(np.zeros((478, 2), dtype=np.float32), "right") == 0.0
    assert math.isfinite(mouth_aspect_ratio(np.zeros((478, 2), dtype=np.float32)))
