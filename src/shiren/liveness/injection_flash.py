"""Injection signal in the colour flash: does the face answer the screen, and how late?

The colour check (:mod:`shiren.liveness.flash`) asks whether the skin's chromaticity follows
the challenge's colour sequence within 0–250 ms.  The injection check asks *when*: the same
correlation, step by step, is computed for every lag from ``search_min_ms`` to ``search_max_ms``
(:class:`~shiren.liveness.injection_config.FlashLatency`).  Light reflected from the screen
reaches the camera after the screen shows the colour (a refresh, an exposure) and within a
phone's camera pipeline, so a live capture's best lag lies in ``[min_ms, max_ms]``.  A virtual
camera playing a recording does not answer at all (``flash_response`` low: the best correlation
inside the band), and frames tinted in software to the schedule, or a recording that happens to
carry some other flash, answer at a lag no camera has (``flash_lag_outside_ms``: how far the
best lag lies outside the band, counted only when it beats the band by ``OUTSIDE_MARGIN``).

Where the reflection is too weak to measure at all (below the colour check's minimum swing),
``flash_response`` is 0 (no response) and ``measured`` is False: a recording does not answer the
flash, but neither does a face in direct sunlight — the colour check calls that inconclusive,
and a caller should treat a ``flash.no_response`` alone the same way (ask again elsewhere), not
as proof of an attack.  Without a colour step or a face in the lead-in the features are None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiren.liveness.challenge import Challenge
from shiren.liveness.flash import MIN_STEPS, MIN_SWING, chromaticity, skin_colour
from shiren.liveness.frames import FrameSequence
from shiren.liveness.injection_config import FlashLatency
from shiren.liveness.signals import FaceSignals

OUTSIDE_MARGIN = 0.05
"""The best lag outside the band counts only if its correlation beats the band's by this."""
MIN_FRAMES_PER_STEP = 1


@dataclass(frozen=True, slots=True)
class FlashFeatures:
    measured: bool
    flash_response: float | None
    """Best correlation at a plausible lag (None: not measurable)."""
    flash_lag_outside_ms: float | None
    best_lag_ms: float | None
    best_corr: float | None
    swing: float
    steps: int


def _skin_chroma(frames: FrameSequence, signals: FaceSignals, until: float) -> np.ndarray:
    chroma = np.full((len(frames), 3), np.nan)
    for i, frame in enumerate(frames.frames):
        mesh = signals.meshes[i] if i < len(signals.meshes) else None
        if mesh is None or frame.t_ms > until or not np.isfinite(signals.iod[i]):
            continue
        chroma[i] = chromaticity(skin_colour(frame.image, mesh, float(signals.iod[i])))
    return chroma


def _curve(
    chroma: np.ndarray, t: np.ndarray, challenge: Challenge, screen: np.ndarray, lags: np.ndarray
) -> list[tuple[float, float, float, int]]:
    """(lag, correlation, swing, steps measured) for every lag with ≥ :data:`MIN_STEPS` steps
    measured, as the colour check computes them at one lag — all lags at once, from cumulative
    sums (the reference: the lead-in's median colour; ``chroma`` rows of frames without a face
    are nan and left out)."""
    ok = np.isfinite(chroma).all(axis=1)
    ref = np.median(chroma[ok & (t < challenge.colours[0].start_ms)], axis=0)
    tt, cc = t[ok], chroma[ok]
    sums = np.vstack([np.zeros((1, 3)), np.cumsum(cc, axis=0)])
    starts = np.array([s.start_ms for s in challenge.colours], dtype=np.float64)
    ends = np.array([s.end_ms for s in challenge.colours], dtype=np.float64)
    lo = np.searchsorted(tt, starts[None, :] + lags[:, None], side="left")  # (lags, steps)
    hi = np.searchsorted(tt, ends[None, :] + lags[:, None], side="left")
    count = hi - lo
    used = count >= MIN_FRAMES_PER_STEP
    w = used[..., None].astype(np.float64)
    means = (sums[hi] - sums[lo]) / np.maximum(count, 1)[..., None] - ref
    n_used = used.sum(axis=1)
    safe = np.maximum(n_used, 1)[:, None]
    m = (means - ((means * w).sum(axis=1) / safe)[:, None, :]) * w
    e = (screen[None] - ((screen[None] * w).sum(axis=1) / safe)[:, None, :]) * w
    num = (m * e).sum(axis=(1, 2))
    denom = np.sqrt((m * m).sum(axis=(1, 2)) * (e * e).sum(axis=(1, 2)))
    corr = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    swing = np.sqrt((m * m).sum(axis=(1, 2)) / (3.0 * safe[:, 0]))
    return [
        (float(lags[i]), float(corr[i]), float(swing[i]), int(n_used[i]))
        for i in range(lags.size)
        if n_used[i] >= MIN_STEPS
    ]


def flash_features(
    challenge: Challenge, frames: FrameSequence, signals: FaceSignals, latency: FlashLatency
) -> FlashFeatures:
    """Correlation of the skin's colour with the flash over lags; see the module docstring."""
    none = FlashFeatures(False, None, None, None, None, 0.0, 0)
    if not challenge.colours:
        return none
    until = challenge.colours[-1].end_ms + max(latency.search_max_ms, 0.0)
    chroma = _skin_chroma(frames, signals, until)
    t = np.asarray(frames.times_ms, dtype=np.float64)
    ok = np.isfinite(chroma).all(axis=1)
    if not (ok & (t < challenge.colours[0].start_ms)).any():
        return none
    screen = chromaticity(np.array([s.rgb for s in challenge.colours], dtype=np.float64) + 8.0)
    lags = np.arange(latency.search_min_ms, latency.search_max_ms + 1e-9, latency.step_ms)
    curve = _curve(chroma, t, challenge, screen, lags)
    band = [c for c in curve if latency.min_ms <= c[0] <= latency.max_ms]
    if not band:
        return none
    in_band = max(band, key=lambda c: c[1])
    best = max(curve, key=lambda c: c[1])
    if in_band[2] < MIN_SWING:
        # Too weak to measure: no response (a recording does not answer; nor does a face in
        # direct sunlight, which the colour check calls inconclusive).
        return FlashFeatures(False, 0.0, 0.0, best[0], best[1], in_band[2], in_band[3])
    outside = 0.0
    if best[1] >= in_band[1] + OUTSIDE_MARGIN:
        outside = max(latency.min_ms - best[0], best[0] - latency.max_ms, 0.0)
    return FlashFeatures(True, in_band[1], outside, best[0], best[1], in_band[2], in_band[3])


__all__ = ["OUTSIDE_MARGIN", "FlashFeatures", "flash_features"]
