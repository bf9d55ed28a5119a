"""Templates from several images: weighted means of unit vectors (issue 14, item 1).

One photo of a face carries its own pose, light and blur; several photos of the same face carry
the identity more than any one of them.  A probe built from several frames of a capture and an
enrolled template built from the reference plus the enrolment's matching live frames both score
genuine pairs higher without moving impostor pairs much (measured in docs/MODEL_CARD.md,
"Templates from several images").  Pure numpy: the caller chooses the frames and the weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from shiren.core.geometry import FloatArray

MAX_YAW_DEG = 45.0
MAX_PITCH_DEG = 35.0


def unit(vector: FloatArray) -> FloatArray:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    out: FloatArray = (v / norm if norm > 1e-12 else v).astype(np.float32)
    return out


def fuse(templates: Sequence[FloatArray], weights: Sequence[float] | None = None) -> FloatArray:
    """The unit-length weighted mean of unit-length ``templates`` (cosine templates).

    Every template is normalised first, so one image with a large norm cannot dominate; weights
    must be ≥ 0 with a positive sum (``None``: equal).  Raises ``ValueError`` on no templates,
    mismatched shapes or unusable weights.
    """
    if not templates:
        raise ValueError("no templates to fuse")
    stacked = np.stack([unit(t) for t in templates]).astype(np.float64)
    w = np.ones(len(templates)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(templates),) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return unit((w[:, None] * stacked).sum(axis=0) / w.sum())


def pose_weight(yaw_deg: float, pitch_deg: float) -> float:
    """How much a frame's face counts, from its head pose: 1 when frontal, falling as
    ``cos²`` of the angle scaled so that |yaw| ≥ 45° or |pitch| ≥ 35° counts 0 (an embedding of
    a turned face is less reliable, and a template ought to describe the frontal face that an
    ID photo shows)."""
    if not (math.isfinite(yaw_deg) and math.isfinite(pitch_deg)):
        return 0.0
    wy = math.cos(min(abs(yaw_deg) / MAX_YAW_DEG, 1.0) * math.pi / 2) ** 2
    wp = math.cos(min(abs(pitch_deg) / MAX_PITCH_DEG, 1.0) * math.pi / 2) ** 2
    return wy * wp


__all__ = ["fuse", "pose_weight", "unit"]
