"""Colour flash: the face's reflected colour must follow the screen's colour sequence in time.

During the flash the capture page fills the screen with the challenge's colours, one after the
other (``ColourStep.start_ms … end_ms`` on the page's own clock, the same clock as the frames'
``t_ms``).  The screen lights the face, so the skin's *chromaticity* (``rgb / (r + g + b)``,
which cancels the camera's exposure changes) moves towards each colour.  Per colour step we take
the mean chromaticity change of the skin (forehead, cheeks and nose patches placed by the mesh)
against the lead-in, centre both it and the screen's chromaticity over the steps, and correlate
them (Pearson over steps × channels).  Display and camera latency shift the response, so the best
of a few lags up to ``max_lag_ms`` is taken.  A replayed or injected video shows some other
sequence (or none), so its correlation with a fresh random sequence is near zero.

Reflection is strong at arm's length indoors and weak in sunlight; where the change is too small
to measure, the signal is *inconclusive* (``liveness.colour_inconclusive``), never "passed".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiren.core.geometry import FloatArray, RGBImage
from shiren.liveness.challenge import Challenge
from shiren.liveness.config import ColourThresholds
from shiren.liveness.frames import FrameSequence
from shiren.liveness.signals import FaceSignals
from shiren.reasons import ReasonCode

# Skin points of the MediaPipe mesh: forehead (10, 151, 9, 108, 337), cheeks (50, 280, 101, 330,
# 123, 352, 205, 425) and nose bridge / tip (6, 4).
SKIN_POINTS = (10, 151, 9, 108, 337, 50, 280, 101, 330, 123, 352, 205, 425, 6, 4)
PATCH_IOD = 0.07
MIN_STEPS = 3
# Smallest mean chromaticity swing (std over steps × channels) that a reflection must produce;
# below it the frames cannot say anything about the screen's colours.
MIN_SWING = 0.0015
LAG_STEP_MS = 50.0


def skin_colour(image: RGBImage, mesh: FloatArray, iod: float) -> np.ndarray:
    """Mean RGB (float) of small patches around :data:`SKIN_POINTS`."""
    h, w = image.shape[:2]
    r = max(1, round(PATCH_IOD * iod))
    total = np.zeros(3, dtype=np.float64)
    count = 0
    for p in SKIN_POINTS:
        x, y = round(float(mesh[p, 0])), round(float(mesh[p, 1]))
        x0, x1, y0, y1 = max(0, x - r), min(w, x + r + 1), max(0, y - r), min(h, y + r + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        patch = image[y0:y1, x0:x1].reshape(-1, 3)
        total += patch.sum(axis=0, dtype=np.float64)
        count += patch.shape[0]
    return total / count if count else np.full(3, np.nan)


def chromaticity(rgb: np.ndarray) -> np.ndarray:
    s = rgb.sum(axis=-1, keepdims=True)
    return np.where(s > 0, rgb / np.maximum(s, 1e-9), np.nan)


@dataclass(frozen=True, slots=True)
class ColourOutcome:
    passed: bool
    score: float | None
    """Best correlation over lags (None: not measurable)."""
    lag_ms: float | None
    swing: float
    steps_measured: int
    reason: ReasonCode | None


def check_colour(
    challenge: Challenge, frames: FrameSequence, signals: FaceSignals, th: ColourThresholds
) -> ColourOutcome:
    steps = challenge.colours
    if not steps:
        return ColourOutcome(False, None, None, 0.0, 0, ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE)
    chroma = np.full((len(frames), 3), np.nan)
    first = steps[0].start_ms
    last = steps[-1].end_ms + th.max_lag_ms
    for i, frame in enumerate(frames.frames):
        mesh = signals.meshes[i]
        if mesh is None or frame.t_ms > last:
            continue
        chroma[i] = chromaticity(skin_colour(frame.image, mesh, float(signals.iod[i])))
    t = signals.t_ms
    ok = np.isfinite(chroma).all(axis=1)
    before = ok & (t < first)
    if int(before.sum()) < 1:
        return ColourOutcome(False, None, None, 0.0, 0, ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE)
    ref = np.median(chroma[before], axis=0)
    screen = chromaticity(np.array([s.rgb for s in steps], dtype=np.float64) + 8.0)
    best: tuple[float, float, float, int] | None = None
    lag = 0.0
    while lag <= th.max_lag_ms + 1e-9:
        means, expected = [], []
        for k, step in enumerate(steps):
            sel = ok & (t - lag >= step.start_ms) & (t - lag < step.end_ms)
            if int(sel.sum()) >= th.min_frames_per_step:
                means.append(chroma[sel].mean(axis=0) - ref)
                expected.append(screen[k])
        if len(means) >= MIN_STEPS:
            m = np.asarray(means)
            e = np.asarray(expected)
            m = m - m.mean(axis=0)
            e = e - e.mean(axis=0)
            swing = float(m.std())
            denom = float(np.linalg.norm(m) * np.linalg.norm(e))
            corr = float((m * e).sum() / denom) if denom > 0 else 0.0
            if best is None or corr > best[0]:
                best = (corr, lag, swing, len(means))
        lag += LAG_STEP_MS
    if best is None:
        return ColourOutcome(False, None, None, 0.0, 0, ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE)
    corr, best_lag, swing, measured = best
    if swing < MIN_SWING or (swing < th.unseen_swing and corr < th.pass_correlation):
        # too weak to tell the flash from the face's own colour drift: not seen, not a mismatch
        return ColourOutcome(
            False, corr, best_lag, swing, measured, ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE
        )
    passed = corr >= th.pass_correlation
    return ColourOutcome(
        passed,
        corr,
        best_lag,
        swing,
        measured,
        None if passed else ReasonCode.LIVENESS_COLOUR_MISMATCH,
    )


__all__ = ["SKIN_POINTS", "ColourOutcome", "check_colour", "chromaticity", "skin_colour"]
