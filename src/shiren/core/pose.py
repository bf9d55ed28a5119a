"""Head pose and eye / mouth openness from the 478-point MediaPipe face mesh.

Pure numpy/OpenCV.  The mesh is ``(N, 2)`` or ``(N, 3)`` float pixel coordinates of the decoded
image (N ≥ 468; only x and y are used), indexed as in MediaPipe Face Mesh.

**Angle conventions** (degrees, in the image *as given*; a mirrored image flips yaw and roll):

* ``yaw > 0``: the subject turns the head to *their own left*, so the nose points towards the
  image's right edge (in an unmirrored photo).
* ``pitch > 0``: the chin goes up; the nose points towards the top of the image.
* ``roll > 0``: the head tilts towards the subject's left shoulder, so the face turns *clockwise*
  as seen in the image (the subject's left eye, on the image's right, is lower).

The angles are Euler angles of the head rotation ``R = Rz(roll) · Ry(−yaw) · Rx(−pitch)`` in the
OpenCV camera frame (x right, y down, z forward), measured *relative to the line of sight* to the
head, so a face at the edge of a wide-angle selfie that looks into the lens reads as frontal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import FloatArray

Side = Literal["right", "left"]
"""The *subject's* side: their right eye is on the image's left in an unmirrored photo."""

# Mesh indices used for solvePnP: rigid points that move little with expression (eye corners,
# nose ridge and tip, forehead top) plus mouth corners and chin for a vertical lever arm.
POSE_INDICES: tuple[int, ...] = (1, 2, 4, 6, 10, 33, 133, 168, 61, 152, 263, 362, 291)

# Their 3-D positions in MediaPipe's canonical face model (mediapipe/modules/face_geometry/data/
# canonical_face_model.obj, Apache-2.0; units ≈ cm; x to the image right, y up, z towards the
# camera).  Indices 263, 362, 291 are the mirror images (x → −x) of 33, 133, 61.
_CANONICAL_XYZ: dict[int, tuple[float, float, float]] = {
    1: (0.000000, -1.126865, 7.475604),
    2: (0.000000, -2.089024, 6.058267),
    4: (0.000000, -0.463170, 7.586580),
    6: (0.000000, 2.473255, 5.788627),
    10: (0.000000, 8.261778, 4.481535),
    33: (-4.445859, 2.663991, 3.173422),
    133: (-1.856432, 2.585245, 3.757904),
    168: (0.000000, 3.271027, 5.236015),
    61: (-2.456206, -4.342621, 4.283884),
    152: (0.000000, -9.403378, 4.264492),
    263: (4.445859, 2.663991, 3.173422),
    362: (1.856432, 2.585245, 3.757904),
    291: (2.456206, -4.342621, 4.283884),
}

# Eye aspect ratio (Soukupová & Čech, "Real-Time Eye Blink Detection using Facial Landmarks",
# CVWW 2016): EAR = (|p2 − p6| + |p3 − p5|) / (2 |p1 − p4|), with p1/p4 the eye corners and
# p2, p3 / p6, p5 the upper / lower lid points above / below each other.  Mesh indices:
EAR_INDICES: dict[Side, tuple[int, int, int, int, int, int]] = {
    "right": (33, 160, 158, 133, 153, 144),  # outer corner, upper lid ×2, inner corner, lower ×2
    "left": (362, 385, 387, 263, 373, 380),  # inner corner, upper lid ×2, outer corner, lower ×2
}
# Mouth aspect ratio on the inner lip contour: (|81−178| + |13−14| + |311−402|) / (2 |78−308|).
MAR_INDICES: tuple[int, ...] = (78, 81, 13, 311, 308, 402, 14, 178)

_MIN_MESH_POINTS = 468


@dataclass(frozen=True, slots=True)
class Pose:
    """Head pose in degrees; see the module docstring for the sign conventions."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float


def _model_points() -> npt.NDArray[np.float64]:
    """Canonical points in the OpenCV object frame (y down, z away from the camera), centred."""
    xyz = np.array([_CANONICAL_XYZ[i] for i in POSE_INDICES], dtype=np.float64)
    xyz *= np.array([1.0, -1.0, -1.0])
    return np.asarray(xyz - xyz.mean(axis=0), dtype=np.float64)


_MODEL = _model_points()


def _check_mesh(mesh: FloatArray) -> None:
    if mesh.ndim != 2 or mesh.shape[0] < _MIN_MESH_POINTS or mesh.shape[1] not in (2, 3):
        raise ValueError(f"expected a (>={_MIN_MESH_POINTS}, 2|3) mesh, got {mesh.shape}")


def camera_matrix(image_size: tuple[int, int]) -> npt.NDArray[np.float64]:
    """A pinhole camera for an image of ``(width, height)`` px: focal length = the long side
    (≈ 53° field of view across it, between a phone's main and selfie cameras) and the principal
    point at the centre.  Pose is insensitive to this guess for faces that fill the frame."""
    width, height = image_size
    focal = float(max(width, height))
    return np.array(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def head_pose(mesh: FloatArray, image_size: tuple[int, int]) -> Pose:
    """Head pose from the mesh by ``cv2.solvePnP`` (SQPnP) against the canonical 3-D face.

    ``image_size`` is ``(width, height)`` in px.  Raises ``ValueError`` for a malformed mesh.
    """
    _check_mesh(mesh)
    image_points = np.ascontiguousarray(mesh[list(POSE_INDICES), :2], dtype=np.float64)
    camera = camera_matrix(image_size)
    ok, rvec, tvec = cv2.solvePnP(_MODEL, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:  # pragma: no cover - SQPnP is globally solvable for ≥ 3 non-collinear points
        raise ValueError("solvePnP failed on this mesh")
    rotation, _ = cv2.Rodrigues(rvec)
    translation = np.asarray(tvec, dtype=np.float64).ravel()
    return pose_from_rotation(
        _towards_line_of_sight(translation) @ np.asarray(rotation, np.float64)
    )


def _towards_line_of_sight(translation: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The smallest rotation taking the ray to the head onto the optical axis (0, 0, 1)."""
    ray = translation / np.linalg.norm(translation)
    axis = np.cross(ray, np.array([0.0, 0.0, 1.0]))
    sin_angle = float(np.linalg.norm(axis))
    if sin_angle < 1e-9:
        return np.eye(3)
    angle = math.atan2(sin_angle, float(ray[2]))
    rotation, _ = cv2.Rodrigues(axis / sin_angle * angle)
    return np.asarray(rotation, dtype=np.float64)


def pose_from_rotation(rotation: npt.NDArray[np.float64]) -> Pose:
    """Decompose ``R = Rz(roll) · Ry(−yaw) · Rx(−pitch)`` (object → camera, OpenCV axes)."""
    beta = math.asin(max(-1.0, min(1.0, -float(rotation[2, 0]))))
    alpha = math.atan2(float(rotation[2, 1]), float(rotation[2, 2]))
    gamma = math.atan2(float(rotation[1, 0]), float(rotation[0, 0]))
    return Pose(
        yaw_deg=-math.degrees(beta), pitch_deg=-math.degrees(alpha), roll_deg=math.degrees(gamma)
    )


def rotation_from_pose(pose: Pose) -> npt.NDArray[np.float64]:
    """The inverse of :func:`pose_from_rotation` (used by tests and synthetic checks)."""
    a, b, g = (
        math.radians(-pose.pitch_deg),
        math.radians(-pose.yaw_deg),
        math.radians(pose.roll_deg),
    )
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


def canonical_points() -> npt.NDArray[np.float64]:
    """The ``(len(POSE_INDICES), 3)`` centred model points (OpenCV object frame, ≈ cm)."""
    return _MODEL.copy()


def _dist(mesh: FloatArray, i: int, j: int) -> float:
    return float(np.linalg.norm(mesh[i, :2].astype(np.float64) - mesh[j, :2].astype(np.float64)))


def eye_aspect_ratio(mesh: FloatArray, side: Side) -> float:
    """EAR of the subject's ``side`` eye (dimensionless; ≈ 0.25–0.35 open, ≲ 0.12 closed with
    the mesh's lid points).  See :data:`EAR_INDICES`."""
    _check_mesh(mesh)
    p1, p2, p3, p4, p5, p6 = EAR_INDICES[side]
    width = _dist(mesh, p1, p4)
    return (_dist(mesh, p2, p6) + _dist(mesh, p3, p5)) / (2.0 * width) if width > 0 else 0.0


def mouth_aspect_ratio(mesh: FloatArray) -> float:
    """MAR on the inner lips (dimensionless; ≈ 0 closed, ≳ 0.5 wide open).  See
    :data:`MAR_INDICES`."""
    _check_mesh(mesh)
    left, up1, up2, up3, right, low3, low2, low1 = MAR_INDICES
    width = _dist(mesh, left, right)
    opening = _dist(mesh, up1, low1) + _dist(mesh, up2, low2) + _dist(mesh, up3, low3)
    return opening / (2.0 * width) if width > 0 else 0.0


__all__ = [
    "EAR_INDICES",
    "MAR_INDICES",
    "POSE_INDICES",
    "Pose",
    "Side",
    "camera_matrix",
    "canonical_points",
    "eye_aspect_ratio",
    "head_pose",
    "mouth_aspect_ratio",
    "pose_from_rotation",
    "rotation_from_pose",
]
