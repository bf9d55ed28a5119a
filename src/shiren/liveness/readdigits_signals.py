"""The two signals of the read-the-digits challenge that need no speech recogniser (issue 18).

* **Onsets** (:func:`check_onsets`): one spoken answer per digit, each *starting* inside its
  digit's window (after the digit appeared, before the next one's window).  A Chinese digit is one
  syllable, so each window must hold exactly one speech onset; an English digit may be two
  (*seven*, *zero*), so up to two.  Speech that starts before the first window did not wait for
  the screen.  Onsets are the starts of :func:`shiren.liveness.audio.speech_segments`.
* **Synchrony** (:func:`check_sync`): the mouth's opening (the inner-lip aspect ratio of the face
  mesh, per video frame) against the speech level (dB above the room's floor) on the same frame
  times, correlated (Pearson) at every lag of the sound against the picture from
  ``-search_ms`` to ``+search_ms``.  A live recording's best lag lies near zero (the page records
  both through one ``MediaRecorder``; the mouth opens as the voice starts); a dubbed, shifted or
  synthesised track, or a still or looped picture under live sound, peaks elsewhere or nowhere.
  It passes when the best correlation inside the plausible band reaches ``min_corr`` *and* is
  within ``max_peak_gap`` of the best at any lag (the true alignment is in the band), and the
  mouth moves at all (a still picture has no correlation to speak of).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.liveness.audio import Envelope, Segment
from shiren.liveness.readdigits import ReadDigitsChallenge
from shiren.reasons import ReasonCode

F64 = npt.NDArray[np.float64]

MAX_ONSETS: dict[str, int] = {"zh-CN": 1, "en": 2}
"""Onsets allowed in one digit's window: 一…九 and 零 are one syllable each; *seven*, *zero* two."""


@dataclass(frozen=True, slots=True)
class OnsetOutcome:
    passed: bool
    matched: int
    """Windows holding an allowed number (1 … ``MAX_ONSETS``) of onsets."""
    counts: tuple[int, ...]
    early: int
    """Onsets before the first window (answers that did not wait for the screen)."""
    latencies_ms: tuple[float | None, ...]
    """Each window's first onset after its digit appeared."""

    @property
    def score(self) -> float:
        """The share of digits answered in their windows, 0 when anything came early."""
        return 0.0 if self.early else self.matched / max(1, len(self.counts))

    def details(self) -> dict[str, Any]:
        return {
            "counts": list(self.counts),
            "early": self.early,
            "latencies_ms": [None if v is None else round(v) for v in self.latencies_ms],
        }


def check_onsets(challenge: ReadDigitsChallenge, segments: list[Segment]) -> OnsetOutcome:
    """``segments`` on the video's timeline (shifted by the sound's start)."""
    onsets = np.array([s.start_ms for s in segments], dtype=np.float64)
    allowed = MAX_ONSETS[challenge.lang]
    counts, latencies = [], []
    for step in challenge.steps:
        inside = onsets[(onsets >= step.window_start_ms) & (onsets < step.window_end_ms)]
        counts.append(int(inside.size))
        latencies.append(float(inside[0] - step.show_ms) if inside.size else None)
    early = int(np.count_nonzero(onsets < challenge.steps[0].window_start_ms))
    matched = sum(1 for c in counts if 1 <= c <= allowed)
    return OnsetOutcome(
        passed=early == 0 and matched == len(counts),
        matched=matched,
        counts=tuple(counts),
        early=early,
        latencies_ms=tuple(latencies),
    )


@dataclass(frozen=True, slots=True)
class SyncParams:
    """``band_ms``: the lags of sound against picture a live recording has (one recorder, one
    clock; the voice follows the opening mouth by tens of ms).  ``min_corr`` and
    ``max_peak_gap`` are set by ``shiren eval readdigits`` (see docs/LIVENESS.md)."""

    band_ms: tuple[float, float] = (-120.0, 120.0)
    search_ms: float = 700.0
    step_ms: float = 20.0
    min_corr: float = 0.5
    max_peak_gap: float = 0.05
    min_mouth_range: float = 0.02
    """Inner-lip ratio, 90th − 10th percentile: a still or frozen mouth stays well below."""
    max_missing: float = 0.4
    floor_db_range: float = 40.0


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    passed: bool
    corr: float
    """The best correlation inside the band (the signal's value)."""
    lag_ms: float
    best_corr: float
    """The best correlation at any lag searched."""
    best_lag_ms: float
    mouth_range: float
    reason: ReasonCode | None

    @property
    def peak_gap(self) -> float:
        return self.best_corr - self.corr

    def details(self) -> dict[str, Any]:
        return {
            "lag_ms": round(self.lag_ms),
            "best_corr": round(self.best_corr, 4),
            "best_lag_ms": round(self.best_lag_ms),
            "peak_gap": round(self.peak_gap, 4),
            "mouth_range": round(self.mouth_range, 4),
        }


def _filled(values: F64) -> F64 | None:
    ok = np.isfinite(values)
    if ok.sum() < 2:
        return None
    idx = np.arange(values.size)
    return np.interp(idx, idx[ok], values[ok])


def speech_level(env: Envelope, floor_db_range: float) -> F64:
    """dB above the recording's floor (its 10th percentile), clipped to ``[0, range]``."""
    floor = float(np.percentile(env.db, 10)) if env.db.size else 0.0
    return np.clip(env.db - floor, 0.0, floor_db_range)


def lag_curve(mar: F64, times_ms: F64, level: F64, env_t_ms: F64, lags_ms: F64) -> F64:
    """Pearson correlation of ``mar`` with the speech level sampled at ``times_ms + lag``, for
    every lag (one matrix product: the level is sampled at all lags at once)."""
    grid = times_ms[None, :] + lags_ms[:, None]
    sampled = np.interp(grid.ravel(), env_t_ms, level).reshape(grid.shape)
    a = mar - mar.mean()
    b = sampled - sampled.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum() * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (b @ a) / denom
    return np.where(np.isfinite(r), r, 0.0)


def check_sync(
    mar: F64,
    times_ms: F64,
    env: Envelope,
    audio_start_ms: float,
    params: SyncParams | None = None,
) -> SyncOutcome:
    """Mouth against voice (see the module docstring).  ``env``'s clock starts at the sound's
    first sample, ``audio_start_ms`` on the video's timeline."""
    p = params or SyncParams()
    filled = _filled(mar)
    missing = 1.0 - float(np.isfinite(mar).mean()) if mar.size else 1.0
    if filled is None or missing > p.max_missing or env.db.size == 0:
        return SyncOutcome(False, 0.0, 0.0, 0.0, 0.0, 0.0, ReasonCode.LIVENESS_FACE_LOST)
    lo, hi = np.percentile(filled, [10, 90])
    mouth_range = float(hi - lo)
    lags = np.arange(-p.search_ms, p.search_ms + p.step_ms / 2, p.step_ms)
    level = speech_level(env, p.floor_db_range)
    curve = lag_curve(filled, times_ms - audio_start_ms, level, env.t_ms, lags)
    band = (lags >= p.band_ms[0]) & (lags <= p.band_ms[1])
    i_band = int(np.flatnonzero(band)[np.argmax(curve[band])])
    i_best = int(np.argmax(curve))
    corr, best = float(curve[i_band]), float(curve[i_best])
    passed = (
        mouth_range >= p.min_mouth_range and corr >= p.min_corr and best - corr <= p.max_peak_gap
    )
    return SyncOutcome(
        passed=passed,
        corr=corr if mouth_range >= p.min_mouth_range else 0.0,
        lag_ms=float(lags[i_band]),
        best_corr=best,
        best_lag_ms=float(lags[i_best]),
        mouth_range=mouth_range,
        reason=None if passed else ReasonCode.LIVENESS_AV_DESYNC,
    )


__all__ = [
    "MAX_ONSETS",
    "OnsetOutcome",
    "SyncOutcome",
    "SyncParams",
    "check_onsets",
    "check_sync",
    "lag_curve",
    "speech_level",
]
