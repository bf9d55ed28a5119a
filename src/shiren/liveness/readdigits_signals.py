"""The two signals of the read-the-digits challenge that need no speech recogniser (issue 18).

* **Onsets** (:func:`check_onsets`): one spoken answer per digit, each *starting* inside its
  digit's window (after the digit appeared, before the next one's window).  A Chinese digit is one
  syllable, so each window must hold exactly one speech onset; an English digit may be two
  (*seven*, *zero*), so up to two.  Speech that starts before the first window did not wait for
  the screen (the recording-wide :func:`shiren.liveness.audio.speech_segments`); each window's
  onsets are found against that window's own loudness (:func:`window_onsets`), so a soft
  fricative answer after a loud one still counts.  Both on the voiced band's level
  (:func:`shiren.liveness.audio.band_envelope`: breath and hiss mostly fall outside it).
* **Synchrony** (:func:`check_sync`): the mouth's motion (:func:`mouth_motion`: the brightness
  change inside the mouth's box, every 40 ms, the box from the nearest of a few face meshes)
  against the speech level (dB above the floor or, when louder, the room's level in the silent
  lead-in: :func:`speech_level`) on the same times, correlated (Pearson) at every lag of the
  sound against the picture from ``-search_ms`` to ``+search_ms``.  A live
  recording's best lag lies near zero (the page records both through one ``MediaRecorder``; the
  mouth moves as the voice sounds); a dubbed, shifted or synthesised track, or a still or looped
  picture under live sound, peaks elsewhere or nowhere.  It passes when the best correlation
  inside the plausible band reaches ``min_corr`` *and* is within ``max_peak_gap`` of the best at
  any lag (the true alignment is in the band), the mouth moves at all (a still picture has no
  correlation to speak of), and for at least ``min_digit_share`` of the digits the digit's own
  stretch peaks in the band too (:func:`digit_share`: each answer's mouth goes with its voice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import FloatArray
from shiren.liveness.audio import HOP_MS, Envelope, Segment, SpeechParams, _runs, speech_floor
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


LOCAL_RANGE_DB = 20.0
"""A digit's own onsets are the voiced runs within this many dB of the loudest point of its
window (not of the whole recording: one loud digit must not hide a soft one)."""
CONTEXT_MS = 300.0
"""A run already going this long before the window opens is the previous answer, not an onset."""
EARLY_RANGE_DB = 12.0
"""Speech before the first window is an early answer only within this many dB of the answers'
own level (the median of the windows' peaks): a voice in the room behind the borrower — people
talking 20 dB under the answers — is not the borrower answering early; the borrower's own
voice, or a replayed track that ignores the schedule, is as loud as the answers."""


def window_onsets(
    env: Envelope,
    lo_ms: float,
    hi_ms: float,
    offset_ms: float = 0.0,
    params: SpeechParams | None = None,
    local_range_db: float = LOCAL_RANGE_DB,
) -> list[float]:
    """Speech onsets (video timeline) starting in ``[lo_ms, hi_ms)``, found against the window's
    own peak: hops above ``max(floor + rise_db, window peak − local_range_db)``, gaps under
    ``merge_gap_ms`` merged, runs ≥ ``min_ms`` long with ≥ ``min_voiced_ms`` voiced.
    ``offset_ms``: the sound's start on the video's timeline (``env``'s clock starts at 0)."""
    p = params or SpeechParams()
    if env.db.size == 0:
        return []
    t = env.t_ms + offset_ms
    idx = np.flatnonzero((t >= lo_ms - CONTEXT_MS) & (t < hi_ms))
    inside = t[idx] >= lo_ms
    if not inside.any():
        return []
    floor = float(np.percentile(env.db, 10))
    db, zcr = env.db[idx], env.zcr[idx]
    active = db > max(floor + p.rise_db, float(db[inside].max()) - local_range_db)
    merged: list[list[int]] = []
    gap = max(1, round(p.merge_gap_ms / HOP_MS))
    for a, b in _runs(active):
        if merged and a - merged[-1][1] < gap:
            merged[-1][1] = int(b)
        else:
            merged.append([int(a), int(b)])
    out = []
    for a, b in merged:
        voiced = int(np.count_nonzero(active[a:b] & (zcr[a:b] < p.max_zcr)))
        if (b - a) * HOP_MS < p.min_ms or voiced * HOP_MS < p.min_voiced_ms:
            continue
        if a > 0 and inside[a]:
            out.append(float(t[idx[a]]))
    return out


def _window_peaks(challenge: ReadDigitsChallenge, env: Envelope, offset_ms: float) -> F64:
    """The loudest hop of each digit's window that holds any (the answers' level)."""
    t = env.t_ms + offset_ms
    peaks = []
    for step in challenge.steps:
        inside = (t >= step.window_start_ms) & (t < step.window_end_ms)
        if inside.any():
            peaks.append(float(env.db[inside].max()))
    return np.asarray(peaks, dtype=np.float64)


def room_level(challenge: ReadDigitsChallenge, env: Envelope, offset_ms: float = 0.0) -> float:
    """The room's level on ``env.db``'s scale (``nan`` when unknown), which the speech level and
    the early-answer rule are measured from when it is louder than the floor: the median level
    of the lead-in before the first digit (:meth:`~shiren.liveness.audio.Envelope.room_db`),
    silent by protocol; at most ``EARLY_RANGE_DB`` under the answers' own level, so a lead-in
    spoken through (a borrower who answers before the screen, a track that ignores it) is still
    heard as speech, not taken for the room.  ``offset_ms``: the sound's start on the video's
    timeline."""
    room = env.room_db(float(challenge.steps[0].show_ms) - offset_ms)
    peaks = _window_peaks(challenge, env, offset_ms)
    if not math.isfinite(room) or peaks.size == 0:
        return room
    return min(room, float(np.median(peaks)) - EARLY_RANGE_DB)


def check_onsets(
    challenge: ReadDigitsChallenge,
    segments: list[Segment],
    env: Envelope | None = None,
    offset_ms: float = 0.0,
    params: SpeechParams | None = None,
) -> OnsetOutcome:
    """``segments`` on the video's timeline (shifted by the sound's start): the recording-wide
    speech, whose onsets before the first window are early answers.  With ``env`` (its clock
    starting at ``offset_ms`` on the video's timeline) each window's onsets are counted against
    the window's own loudness (:func:`window_onsets`), and speech before the first window is
    early only within ``EARLY_RANGE_DB`` of the answers' level; without it, ``segments``'
    starts, and any speech before the first window is early."""
    onsets = np.array([s.start_ms for s in segments], dtype=np.float64)
    allowed = MAX_ONSETS[challenge.lang]
    counts, latencies = [], []
    for step in challenge.steps:
        if env is not None:
            found = window_onsets(env, step.window_start_ms, step.window_end_ms, offset_ms, params)
            inside = np.asarray(found, dtype=np.float64)
        else:
            inside = onsets[(onsets >= step.window_start_ms) & (onsets < step.window_end_ms)]
        counts.append(int(inside.size))
        latencies.append(float(inside[0] - step.show_ms) if inside.size else None)
    before = onsets < challenge.steps[0].window_start_ms
    if env is not None and before.any():
        peaks = _window_peaks(challenge, env, offset_ms)
        if peaks.size:
            level = float(np.median(peaks)) - EARLY_RANGE_DB
            before &= np.array([seg.peak_db >= level for seg in segments], dtype=bool)
    early = int(np.count_nonzero(before))
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
    min_corr: float = 0.58
    """The mean of the two per-fold minimax lines of ``shiren eval readdigits`` on seed 0
    (0.589, 0.568; mouth motion against the voiced band's level over the room's: docs/LIVENESS.md;
    0.59 before the level was measured from the room's)."""
    max_peak_gap: float = 0.02
    min_mouth_range: float = 0.005
    """The mouth signal's 90th − 10th percentile: a still or frozen mouth stays well below."""
    max_missing: float = 0.4
    floor_db_range: float = 40.0
    digit_search_ms: float = 400.0
    min_digit_share: float = 0.75
    """Per digit (its window ±200 ms), the lag of the best local correlation must lie in the
    band for this share of the digits: each answer's mouth goes with its own voice."""
    smooth_frames: int = 3


MOUTH_ROI = (61, 291, 0, 17)
"""Mesh points bounding the mouth: the lip corners and the outer lips' top and bottom centres."""


def _mouth_box(mesh: FloatArray) -> npt.NDArray[np.float64]:
    """``(x0, x1, y0, y1)``: the lip corners' x, the outer lips' top and bottom centres' y."""
    left, right, top, bottom = (mesh[i] for i in MOUTH_ROI)
    return np.array([left[0], right[0], top[1], bottom[1]], dtype=np.float64)


def _roi(
    box: npt.NDArray[np.float64], sx: float, sy: float, shape: tuple[int, ...]
) -> tuple[slice, slice]:
    x0, x1 = float(box[0]) * sx, float(box[1]) * sx
    y0, y1 = float(box[2]) * sy, float(box[3]) * sy
    w, h = x1 - x0, y1 - y0
    x0, x1, y1 = x0 + 0.1 * w, x1 - 0.1 * w, y1 + 0.3 * h  # the lips' middle and the jaw's drop
    rows = slice(max(0, int(y0)), max(0, min(shape[0], int(np.ceil(y1)))))
    cols = slice(max(0, int(x0)), max(0, min(shape[1], int(np.ceil(x1)))))
    return rows, cols


def mouth_motion(
    luma: Sequence[npt.NDArray[np.uint8]],
    luma_t_ms: F64,
    meshes: Sequence[FloatArray | None],
    mesh_t_ms: F64,
    mesh_size: tuple[int, int],
    *,
    interpolate: bool = False,
) -> F64:
    """The mouth's motion per brightness frame: the mean absolute change of brightness since the
    previous frame inside the mouth's box, over the box's mean brightness.  The box comes from the
    mesh nearest in time, or (``interpolate``) from the two meshes around the frame, weighted by
    time (the mesh runs on a few frames only; a face reading digits holds still), scaled from the
    mesh's ``(width, height)`` to the brightness plane's; ``nan`` without one."""
    n = len(luma)
    out = np.full(n, np.nan)
    have = [i for i, m in enumerate(meshes) if m is not None]
    if n < 2 or not have:
        return out
    anchors = np.asarray(mesh_t_ms, dtype=np.float64)[have]
    boxes = np.stack([_mouth_box(meshes[i]) for i in have])  # type: ignore[arg-type]
    t = np.asarray(luma_t_ms, dtype=np.float64)
    if interpolate:
        per_frame = np.stack([np.interp(t, anchors, boxes[:, k]) for k in range(4)], axis=1)
    else:
        nearest = np.abs(anchors[None, :] - t[:, None]).argmin(axis=1)
        per_frame = boxes[nearest]
    prev: npt.NDArray[np.uint8] | None = None
    for i, image in enumerate(luma):
        sx, sy = image.shape[1] / mesh_size[0], image.shape[0] / mesh_size[1]
        rows, cols = _roi(per_frame[i], sx, sy, image.shape)
        if prev is not None and prev.shape == image.shape:
            a = image[rows, cols].astype(np.int16)
            if a.size:
                b = prev[rows, cols].astype(np.int16)
                out[i] = float(np.abs(a - b).mean()) / max(1.0, float(a.mean()))
        prev = image
    if np.isfinite(out[1]):
        out[0] = out[1]
    return out


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
    digit_share: float = 1.0
    """The share of digits whose own best lag is in the band."""

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
            "digit_share": round(self.digit_share, 4),
        }


def _filled(values: F64) -> F64 | None:
    ok = np.isfinite(values)
    if ok.sum() < 2:
        return None
    idx = np.arange(values.size)
    return np.interp(idx, idx[ok], values[ok])


def speech_level(env: Envelope, floor_db_range: float, room_db: float = math.nan) -> F64:
    """dB above the recording's floor (its 10th percentile) or, when louder, the room's level
    (``room_db``: :meth:`~shiren.liveness.audio.Envelope.room_db`), clipped to ``[0, range]``.
    With people talking behind the borrower, their voices rise and fall between the answers;
    measured from the quietest hops, that rise and fall is half the level's range and halves
    the mouth's correlation with it (docs/LIVENESS.md, "People talking")."""
    return np.clip(env.db - speech_floor(env, room_db), 0.0, floor_db_range)


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


def digit_share(
    mouth: F64,
    times_ms: F64,
    level: F64,
    env_t_ms: F64,
    audio_start_ms: float,
    challenge: ReadDigitsChallenge,
    p: SyncParams,
) -> float:
    """The share of digits whose local lag curve (their window ±200 ms on the video's timeline,
    lags within ``±digit_search_ms``) peaks inside the band."""
    lags = np.arange(-p.digit_search_ms, p.digit_search_ms + p.step_ms / 2, p.step_ms)
    hits, total = 0, 0
    for step in challenge.steps:
        w = (times_ms >= step.window_start_ms - 200.0) & (times_ms < step.window_end_ms + 200.0)
        if np.count_nonzero(w) < 4:
            continue
        total += 1
        local = lag_curve(mouth[w], times_ms[w] - audio_start_ms, level, env_t_ms, lags)
        hits += int(p.band_ms[0] <= float(lags[int(np.argmax(local))]) <= p.band_ms[1])
    return hits / total if total else 0.0


def check_sync(
    mar: F64,
    times_ms: F64,
    env: Envelope,
    audio_start_ms: float,
    params: SyncParams | None = None,
    challenge: ReadDigitsChallenge | None = None,
    room_db: float = math.nan,
) -> SyncOutcome:
    """Mouth against voice (see the module docstring).  ``mar``: the mouth signal (the mouth's
    motion, :func:`mouth_motion`, or the inner-lip ratio) at ``times_ms``, smoothed over
    ``smooth_frames``.  ``env``'s clock starts at the sound's first sample, ``audio_start_ms`` on
    the video's timeline.  With ``challenge``, the per-digit rule (:func:`digit_share`) too.
    ``room_db``: the room's level (:func:`speech_level`)."""
    p = params or SyncParams()
    filled = _filled(mar)
    if filled is not None and p.smooth_frames > 1 and filled.size >= p.smooth_frames:
        kernel = np.ones(p.smooth_frames) / p.smooth_frames
        filled = np.convolve(filled, kernel, mode="same")
    missing = 1.0 - float(np.isfinite(mar).mean()) if mar.size else 1.0
    if filled is None or missing > p.max_missing or env.db.size == 0:
        return SyncOutcome(False, 0.0, 0.0, 0.0, 0.0, 0.0, ReasonCode.LIVENESS_FACE_LOST)
    lo, hi = np.percentile(filled, [10, 90])
    mouth_range = float(hi - lo)
    lags = np.arange(-p.search_ms, p.search_ms + p.step_ms / 2, p.step_ms)
    level = speech_level(env, p.floor_db_range, room_db)
    curve = lag_curve(filled, times_ms - audio_start_ms, level, env.t_ms, lags)
    band = (lags >= p.band_ms[0]) & (lags <= p.band_ms[1])
    i_band = int(np.flatnonzero(band)[np.argmax(curve[band])])
    i_best = int(np.argmax(curve))
    corr, best = float(curve[i_band]), float(curve[i_best])
    share = 1.0
    if challenge is not None:
        share = digit_share(filled, times_ms, level, env.t_ms, audio_start_ms, challenge, p)
    passed = (
        mouth_range >= p.min_mouth_range
        and corr >= p.min_corr
        and best - corr <= p.max_peak_gap
        and share >= p.min_digit_share
    )
    return SyncOutcome(
        passed=passed,
        corr=corr if mouth_range >= p.min_mouth_range else 0.0,
        lag_ms=float(lags[i_band]),
        best_corr=best,
        best_lag_ms=float(lags[i_best]),
        mouth_range=mouth_range,
        reason=None if passed else ReasonCode.LIVENESS_AV_DESYNC,
        digit_share=share,
    )


__all__ = [
    "EARLY_RANGE_DB",
    "MAX_ONSETS",
    "OnsetOutcome",
    "SyncOutcome",
    "SyncParams",
    "check_onsets",
    "check_sync",
    "digit_share",
    "lag_curve",
    "mouth_motion",
    "room_level",
    "speech_level",
    "window_onsets",
]
