"""Per-frame face signals from the tracked mesh: eye / mouth openness, head pose, face size.

Everything downstream (actions, 3-D motion, colour, keyframe choice) reads these arrays, so the
mesh-to-number work happens once per frame.  Frames without a face hold ``nan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import FloatArray
from shiren.core.pose import eye_aspect_ratio, head_pose, mouth_aspect_ratio

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class FaceSignals:
    """Aligned arrays, one entry per frame (``nan`` where the face was not found)."""

    t_ms: F64
    ear: F64
    """Mean eye aspect ratio of both eyes."""
    mar: F64
    """Inner-lip mouth aspect ratio."""
    yaw: F64
    """Degrees; > 0 when the person turns to their own left (unmirrored image)."""
    pitch: F64
    """Degrees; > 0 chin up."""
    roll: F64
    iod: F64
    """Inter-ocular distance in pixels (outer eye corners)."""
    meshes: tuple[FloatArray | None, ...]

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        return np.isfinite(self.ear)

    def __len__(self) -> int:
        return len(self.t_ms)


def face_signals(
    meshes: list[FloatArray | None], times_ms: list[float], image_size: tuple[int, int]
) -> FaceSignals:
    n = len(meshes)
    cols = {k: np.full(n, math.nan) for k in ("ear", "mar", "yaw", "pitch", "roll", "iod")}
    for i, mesh in enumerate(meshes):
        if mesh is None:
            continue
        try:
            pose = head_pose(mesh, image_size)
        except ValueError:
            continue
        cols["ear"][i] = (eye_aspect_ratio(mesh, "left") + eye_aspect_ratio(mesh, "right")) / 2.0
        cols["mar"][i] = mouth_aspect_ratio(mesh)
        cols["yaw"][i] = pose.yaw_deg
        cols["pitch"][i] = pose.pitch_deg
        cols["roll"][i] = pose.roll_deg
        cols["iod"][i] = float(np.linalg.norm(mesh[33, :2] - mesh[263, :2]))
    return FaceSignals(
        t_ms=np.asarray(times_ms, dtype=np.float64),
        meshes=tuple(meshes),
        **cols,
    )


@dataclass(frozen=True, slots=True)
class Baseline:
    """The person's own resting values (median over still frames) and their spread."""

    ear: float
    mar: float
    yaw: float
    pitch: float
    frames: int


def baseline(signals: FaceSignals, until_ms: float, min_frames: int = 3) -> Baseline | None:
    """Medians over frames before ``until_ms``; falls back to the first quarter of the session
    when the still phase held too few faces.  None when there is no face to learn from."""
    found = signals.found
    mask = found & (signals.t_ms < until_ms)
    if int(mask.sum()) < min_frames:
        idx = np.flatnonzero(found)
        if idx.size == 0:
            return None
        mask = np.zeros_like(found)
        mask[idx[: max(min_frames, idx.size // 4)]] = True
    return Baseline(
        ear=float(np.median(signals.ear[mask])),
        mar=float(np.median(signals.mar[mask])),
        yaw=float(np.median(signals.yaw[mask])),
        pitch=float(np.median(signals.pitch[mask])),
        frames=int(mask.sum()),
    )


__all__ = ["Baseline", "FaceSignals", "baseline", "face_signals"]
