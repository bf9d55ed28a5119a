"""Which face is the applicant's: a pure policy over detections."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from shiren.core.geometry import Detection
from shiren.errors import ErrorCode, FaceError

FacePolicy = Literal["single", "largest_central"]


def choose_face(
    faces: Sequence[Detection], width: int, height: int, policy: FacePolicy
) -> Detection:
    """Pick the applicant's face.

    ``single``: exactly one face, else ``face.multiple``.  ``largest_central``: the face with the
    largest ``sqrt(area) × (1 − 0.6 · r)``, ``r`` the distance of its centre from the image centre
    over half the diagonal — a big face near the middle beats a bigger one at the edge only when it
    is clearly more central (a poster behind the applicant is usually off-centre and smaller).
    """
    if not faces:
        raise FaceError("no face was found in the image", code=ErrorCode.FACE_NOT_FOUND)
    if policy == "single":
        if len(faces) > 1:
            raise FaceError(
                "more than one face was found in the image",
                code=ErrorCode.FACE_MULTIPLE,
                detail={"faces": len(faces)},
            )
        return faces[0]
    cx, cy, half_diag = width / 2.0, height / 2.0, math.hypot(width, height) / 2.0

    def weight(det: Detection) -> float:
        fx, fy = det.box.center
        r = min(1.0, math.hypot(fx - cx, fy - cy) / half_diag)
        return math.sqrt(det.box.area) * (1.0 - 0.6 * r)

    return max(faces, key=weight)
