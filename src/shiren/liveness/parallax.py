"""3-D motion: a flat photo or a screen moves as a plane, a real head does not.

Whatever way a printed photo or a phone screen is moved or tilted, the face on it is one plane,
so the *image points* of any two frames are related by a single homography.  A real head turning
shows parallax: the nose moves against the cheeks and the ears, and no homography explains all of
it.

We measure this on pixels, not on the face mesh: the mesh is a network with a strong 3-D face
prior, and on a photo rotated by 50–60° it "sees" a turned head and bends its landmarks
accordingly (measured: a homography leaves a 0.10–0.20 IOD residual on mesh points of a strongly
tilted photo, as much as on a real turn).  Corner features inside the face (eye corners, brows,
glasses, nostrils) are tracked with pyramidal Lucas–Kanade optical flow, with a forward–backward
check, from a frontal frame to the turned frame of each turn action; a RANSAC homography is fitted
and the score is the *median* reprojection error as a share of the inter-ocular distance.  On the
webcam video a 27–41° turn gives 0.05–0.16; a photo warped through 20–60° gives 0.002–0.021
(tracking drift under strong foreshortening).  Without a turn of ``min_yaw_span_deg`` there is
nothing to measure and the signal is inconclusive.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import FloatArray, RGBImage
from shiren.liveness.challenge import TURNS, Challenge
from shiren.liveness.config import ParallaxThresholds
from shiren.liveness.frames import FrameSequence
from shiren.liveness.signals import Baseline, FaceSignals
from shiren.reasons import ReasonCode

MESH_POINTS = 468
MAX_FEATURES = 150
REFINE_ROUNDS = 2
MIN_TRACKED = 10
FB_MAX_PX = 2.0
LK_WINDOW = (21, 21)
LK_LEVELS = 3
ROI_MARGIN = 0.25
TARGET_SPAN_DEG = 20.0
MAX_CHAIN = 10
LOOKBACK_MS = 1000.0


@dataclass(frozen=True, slots=True)
class ParallaxOutcome:
    passed: bool
    score: float | None
    """Median homography reprojection error / IOD (None: not measurable)."""
    yaw_span_deg: float
    pairs: tuple[tuple[int, int, float, int], ...]
    """(from frame, to frame, score, tracked points) per measured turn."""
    reason: ReasonCode | None


def _roi(meshes: list[FloatArray], width: int, height: int) -> tuple[int, int, int, int]:
    pts = np.concatenate([m[:MESH_POINTS, :2] for m in meshes])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = (hi - lo) * ROI_MARGIN
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int)
    return max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))


def planarity_residual(
    images: list[RGBImage], ref_mesh: FloatArray, last_mesh: FloatArray
) -> tuple[float, int] | None:
    """Track features from ``images[0]`` to ``images[-1]``; median RANSAC-homography error / IOD.

    ``ref_mesh`` places the face in the first image (features are taken inside its hull);
    ``last_mesh`` gives the IOD at the end.  None when too few features survive the tracking.
    """
    height, width = images[0].shape[:2]
    x0, y0, x1, y1 = _roi([ref_mesh, last_mesh], width, height)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    grays = [
        cv2.cvtColor(np.ascontiguousarray(im[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY) for im in images
    ]
    mask = np.zeros(grays[0].shape, np.uint8)
    hull = cv2.convexHull((ref_mesh[:MESH_POINTS, :2] - np.array([x0, y0])).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    iod = float(np.linalg.norm(ref_mesh[33, :2] - ref_mesh[263, :2]))
    start = cv2.goodFeaturesToTrack(grays[0], MAX_FEATURES, 0.005, max(3.0, iod * 0.06), mask=mask)
    if start is None or len(start) < MIN_TRACKED:
        return None
    cur = start.astype(np.float32)
    alive = np.ones(len(start), dtype=bool)
    for a, b in itertools.pairwise(grays):
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(
            a, b, cur, np.empty_like(cur), winSize=LK_WINDOW, maxLevel=LK_LEVELS
        )
        back, st2, _ = cv2.calcOpticalFlowPyrLK(
            b, a, nxt, np.empty_like(nxt), winSize=LK_WINDOW, maxLevel=LK_LEVELS
        )
        fb = np.linalg.norm((back - cur).reshape(-1, 2), axis=1)
        alive &= (st.ravel() == 1) & (st2.ravel() == 1) & (fb < FB_MAX_PX)
        cur = np.asarray(nxt, dtype=np.float32)
        if int(alive.sum()) < MIN_TRACKED:
            return None
    src = start.reshape(-1, 2)[alive].astype(np.float64)
    dst = cur.reshape(-1, 2)[alive].astype(np.float64)
    end_iod = float(np.linalg.norm(last_mesh[33, :2] - last_mesh[263, :2]))
    scale = max(1.0, min(iod, end_iod))
    h, _ = cv2.findHomography(src, dst, cv2.RANSAC, 0.02 * scale)
    if h is None:
        return None
    # Plane + parallax: warp the first frame by the homography and measure, directly against the
    # last frame, how far each feature still is from where the plane puts it.  For a plane the
    # warped image *is* the last frame, so drift accumulated along the chain is removed (the
    # homography is re-fitted to the refined points); a head keeps its parallax.
    target = grays[-1]
    size = (target.shape[1], target.shape[0])
    pts = src.reshape(-1, 1, 2).astype(np.float32)
    err = np.full(len(src), np.inf)
    for _ in range(REFINE_ROUNDS):
        warped = cv2.warpPerspective(grays[0], h, size, flags=cv2.INTER_LINEAR)
        pred = cv2.perspectiveTransform(pts, h).astype(np.float32)
        got, st, _ = cv2.calcOpticalFlowPyrLK(
            warped,
            target,
            pred,
            pred.copy(),
            winSize=LK_WINDOW,
            maxLevel=1,
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        )
        ok = st.ravel() == 1
        if int(ok.sum()) < MIN_TRACKED:
            return None
        err = np.where(ok, np.linalg.norm((got - pred).reshape(-1, 2), axis=1), np.inf)
        refit, _ = cv2.findHomography(
            src[ok], got.reshape(-1, 2)[ok].astype(np.float64), cv2.RANSAC, 0.02 * scale
        )
        if refit is None:
            break
        h = refit
    finite = err[np.isfinite(err)]
    return float(np.median(finite)) / scale, int(finite.size)


def _turn_pairs(
    challenge: Challenge, signals: FaceSignals, base: Baseline, th: ParallaxThresholds, slack: float
) -> list[list[tuple[int, int]]]:
    """Candidate (frontal frame, turned frame) pairs, best first, for each turn window, or for
    the session's largest yaw excursion when the challenge has no turn.  The turned frame is the
    first one past ``TARGET_SPAN_DEG`` (or the most-turned one if the turn stays smaller): a
    moderate turn keeps the features in view and trackable, an extreme one hides half of them."""
    found = signals.found
    windows = [
        (s.start_ms - slack, s.end_ms + slack) for s in challenge.actions if s.action in TURNS
    ]
    if not windows:
        windows = [(float(signals.t_ms[0]), float(signals.t_ms[-1]))]
    pairs: list[list[tuple[int, int]]] = []
    dyaw = np.abs(signals.yaw - base.yaw)
    for lo, hi in windows:
        idx = np.flatnonzero(found & (signals.t_ms >= lo) & (signals.t_ms <= hi))
        if idx.size == 0:
            continue
        peak = int(idx[np.nanargmax(dyaw[idx])])
        # the frontal frame the turn started from: before the peak, reaching back up to
        # LOOKBACK_MS before the window (a quick person starts turning as the prompt appears)
        before = np.flatnonzero(
            found & (signals.t_ms >= lo - LOOKBACK_MS) & (signals.t_ms < signals.t_ms[peak])
        )
        if before.size == 0:
            continue
        # candidates, best first: the most frontal frame before the peak, then the most frontal
        # one inside the window, then the frames just before the turn got under way (a cut or a
        # blur between a far reference and the turn loses the tracks; a nearer start may not)
        order = before[np.argsort(dyaw[before], kind="stable")]
        inside = before[signals.t_ms[before] >= lo]
        refs = [int(order[0])]
        if inside.size:
            refs.append(int(inside[np.argmin(dyaw[inside])]))
        refs += [int(i) for i in before[::-1][:8] if dyaw[i] < TARGET_SPAN_DEG / 2][:2]
        candidates: list[tuple[int, int]] = []
        for ref in dict.fromkeys(refs):
            after = np.arange(ref + 1, peak + 1)
            after = after[found[after]]
            if after.size == 0:
                continue
            span = np.abs(signals.yaw[after] - signals.yaw[ref])
            past = np.flatnonzero(span >= max(TARGET_SPAN_DEG, th.min_yaw_span_deg))
            target = int(after[past[0]]) if past.size else peak
            if abs(float(signals.yaw[target] - signals.yaw[ref])) >= th.min_yaw_span_deg:
                candidates.append((ref, target))
        if candidates:
            pairs.append(candidates)
    return pairs


def _chain(ref: int, peak: int) -> list[int]:
    """Frames to track through: all of them, or ``MAX_CHAIN`` spread evenly over a long turn."""
    n = peak - ref + 1
    if n <= MAX_CHAIN:
        return list(range(ref, peak + 1))
    return sorted({round(float(x)) for x in np.linspace(ref, peak, MAX_CHAIN)})


def check_parallax(
    challenge: Challenge,
    frames: FrameSequence,
    signals: FaceSignals,
    base: Baseline,
    th: ParallaxThresholds,
    slack_ms: float = 400.0,
) -> ParallaxOutcome:
    found = np.flatnonzero(signals.found)
    span = float(np.nanmax(np.abs(signals.yaw[found] - base.yaw))) if found.size else 0.0
    pairs = _turn_pairs(challenge, signals, base, th, slack_ms)
    if not pairs:
        return ParallaxOutcome(False, None, span, (), ReasonCode.LIVENESS_INSUFFICIENT_MOTION)
    measured: list[tuple[int, int, float, int]] = []
    for candidates in pairs:
        for ref, peak in candidates:  # the first pair whose features survive the tracking
            ref_mesh, peak_mesh = signals.meshes[ref], signals.meshes[peak]
            assert ref_mesh is not None
            assert peak_mesh is not None
            images = [frames.frames[i].image for i in _chain(ref, peak)]
            got = planarity_residual(images, ref_mesh, peak_mesh)
            if got is not None:
                measured.append((ref, peak, round(got[0], 5), got[1]))
                break
    if not measured:
        return ParallaxOutcome(False, None, span, (), ReasonCode.LIVENESS_INSUFFICIENT_MOTION)
    score = max(m[2] for m in measured)
    passed = score >= th.pass_residual
    return ParallaxOutcome(
        passed, score, span, tuple(measured), None if passed else ReasonCode.LIVENESS_FLAT_MOTION
    )


def homography_of_points(src: npt.NDArray[np.float64], dst: npt.NDArray[np.float64]) -> float:
    """RMS error (px) of the least-squares homography from ``src`` to ``dst`` (for tests)."""
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None:
        return float("inf")
    mapped = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((mapped - dst) ** 2, axis=1))))


__all__ = ["ParallaxOutcome", "check_parallax", "homography_of_points", "planarity_residual"]
