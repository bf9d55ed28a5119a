"""Which frames the heavy models see: identity keyframes and the passive model's frames.

Why: the face mesh runs on every frame, but the detector, the embedder and the PAD model cost too
much for that, and they judge near-frontal, sharp frames best (a profile view or motion blur reads
as a different face or as an artefact).  So the identity signal compares a few near-frontal
keyframes spread over the whole session (a face swap anywhere lands between two of them), and the
passive signal scores the stillest frontal frames of the still phase, before the colour flash
tints the face when it can.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox
from shiren.liveness.challenge import Challenge
from shiren.liveness.signals import Baseline, FaceSignals
from shiren.reasons import ReasonCode

KEYFRAME_MAX_YAW_DEG = 15.0
KEYFRAME_MAX_PITCH_DEG = 15.0
PASSIVE_MAX_ANGLE_DEG = 15.0
MIN_PASSIVE_GAP_MS = 300.0
PASSIVE_FRONTAL_DEG = 40.0
"""The passive model judges a face only when it is this close to frontal in absolute terms
(yaw and pitch).  Not tighter: at 25° the mesh read the printed poster of the browser tests
(Silent-Face ``image_F1``, held at an angle) as turned, and the poster was asked to face the
camera instead of being caught as a spoof — a way round the passive check.  The passive frames
are already the near-frontal ones of the still phase (:func:`passive_frames`)."""
PASSIVE_LUMA = (35.0, 225.0)
"""The face's median luma must lie here to be judged (the quality gate's own ``min_face_luma``
and ``max_face_luma``, shiren/data/quality.toml): a face too dark or washed out is asked for
better light instead of being judged (issue 17: most held-out false rejects were dim faces)."""


def face_luma(image: npt.NDArray[np.uint8], box: BBox) -> float | None:
    """Median luma of the inner 60 % of the face box (``None``: the box is outside the image)."""
    height, width = image.shape[:2]
    inner = box.scaled(0.6).clipped(width, height)
    part = image[int(inner.y0) : int(inner.y1), int(inner.x0) : int(inner.x1)]
    if part.size == 0:
        return None
    return float(np.median(cv2.cvtColor(np.ascontiguousarray(part), cv2.COLOR_RGB2GRAY)))


def judgeable(
    image: npt.NDArray[np.uint8], box: BBox, yaw: float, pitch: float
) -> ReasonCode | None:
    """``None`` when the passive model may judge this face, else the reason it may not (too
    dark, overexposed, not frontal): what the borrower is asked to fix."""
    if not (abs(yaw) <= PASSIVE_FRONTAL_DEG and abs(pitch) <= PASSIVE_FRONTAL_DEG):
        return (
            ReasonCode.QUALITY_POSE_YAW if abs(yaw) > abs(pitch) else ReasonCode.QUALITY_POSE_PITCH
        )
    luma = face_luma(image, box)
    if luma is None:
        return None
    if luma < PASSIVE_LUMA[0]:
        return ReasonCode.QUALITY_TOO_DARK
    if luma > PASSIVE_LUMA[1]:
        return ReasonCode.QUALITY_OVEREXPOSED
    return None


def keyframes(challenge: Challenge, signals: FaceSignals, base: Baseline, count: int) -> list[int]:
    """Near-frontal frames spread over the session — the most frontal of the still phase,
    of each action window and of the last second — so a swap anywhere is caught, while
    a profile view (which no embedder or PAD model judges well) is never a keyframe.  At most
    ``count`` (the first, the last and evenly between)."""
    offset = np.abs(signals.yaw - base.yaw) + np.abs(signals.pitch - base.pitch)
    usable = (
        signals.found
        & (np.abs(signals.yaw - base.yaw) <= KEYFRAME_MAX_YAW_DEG)
        & (np.abs(signals.pitch - base.pitch) <= KEYFRAME_MAX_PITCH_DEG)
    )
    end = float(signals.t_ms[-1])
    spans = [(0.0, float(challenge.still_until_ms))]
    spans += [(float(s.start_ms), float(s.end_ms)) for s in challenge.actions]
    spans.append((end - 1000.0, end + 1.0))
    picks: list[int] = []
    for lo, hi in spans:
        idx = np.flatnonzero(usable & (signals.t_ms >= lo) & (signals.t_ms < hi))
        if idx.size:
            picks.append(int(idx[np.argmin(offset[idx])]))
    unique = list(dict.fromkeys(picks))
    if len(unique) <= count:
        return unique
    # keep the first and the last, and the middle ones evenly
    keep = np.linspace(0, len(unique) - 1, count).round().astype(int)
    return [unique[i] for i in sorted(set(keep.tolist()))]


def motion(signals: FaceSignals) -> np.ndarray:
    """Per frame, the median landmark displacement since the previous frame / IOD (``inf`` where
    unknown): a still frame is a sharp frame (no motion blur) and a frontal one."""
    out = np.full(len(signals), np.inf)
    for i in range(1, len(signals)):
        a, b = signals.meshes[i - 1], signals.meshes[i]
        if a is None or b is None or not np.isfinite(signals.iod[i]):
            continue
        step = np.linalg.norm(b[:468, :2] - a[:468, :2], axis=1)
        out[i] = float(np.median(step)) / max(float(signals.iod[i]), 1.0)
    return out


def passive_frames(
    signals: FaceSignals,
    keys: list[int],
    still_until: float,
    count: int,
    lead_in_until: float | None = None,
) -> list[int]:
    """The frames the passive model judges: the stillest near-frontal frames of the still phase
    (the face holds still there while the colours flash), at least ``MIN_PASSIVE_GAP_MS`` apart;
    the identity keyframes when the still phase has none.  MiniFASNet, like every single-frame
    PAD model, reads motion blur and a tilted head as artefacts."""
    move = motion(signals)
    found = np.flatnonzero(signals.found & (signals.t_ms < still_until) & np.isfinite(move))
    if lead_in_until is not None:
        # prefer the lead-in: before the colour flash the face is lit as the camera sees it
        # every day, not tinted by a saturated screen colour
        lead = found[signals.t_ms[found] < lead_in_until]
        if lead.size >= count:
            found = lead
    if found.size:
        ref_yaw = float(np.median(signals.yaw[found]))
        ref_pitch = float(np.median(signals.pitch[found]))
        ref_roll = float(np.median(signals.roll[found]))
        ok = found[
            (np.abs(signals.yaw[found] - ref_yaw) <= PASSIVE_MAX_ANGLE_DEG)
            & (np.abs(signals.pitch[found] - ref_pitch) <= PASSIVE_MAX_ANGLE_DEG)
            & (np.abs(signals.roll[found] - ref_roll) <= PASSIVE_MAX_ANGLE_DEG)
        ]
        picks: list[int] = []
        for i in ok[np.argsort(move[ok], kind="stable")]:
            if all(abs(signals.t_ms[i] - signals.t_ms[j]) >= MIN_PASSIVE_GAP_MS for j in picks):
                picks.append(int(i))
            if len(picks) == count:
                break
        if picks:
            return sorted(picks)
    return sorted(keys, key=lambda i: float(move[i]))[:count]


__all__ = [
    "KEYFRAME_MAX_PITCH_DEG",
    "KEYFRAME_MAX_YAW_DEG",
    "MIN_PASSIVE_GAP_MS",
    "PASSIVE_FRONTAL_DEG",
    "PASSIVE_LUMA",
    "PASSIVE_MAX_ANGLE_DEG",
    "face_luma",
    "judgeable",
    "keyframes",
    "motion",
    "passive_frames",
]
