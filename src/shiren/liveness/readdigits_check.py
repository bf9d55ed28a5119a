"""Checking an answered read-the-digits challenge: one uploaded recording → a LivenessResult.

An API layer calls :meth:`ReadDigitsChecker.check` with ``(challenge, uploaded bytes, now)`` and
gets the same :class:`~shiren.liveness.result.LivenessResult` as every other challenge (signals,
reasons, ``score ≥ 0.5 ⇔ passed``, ``variant = "read_digits"``).  Unusable input raises a typed
:class:`~shiren.errors.InputError` from :func:`~shiren.liveness.audio.decode_av` (no verdict).

The signals, all required (a conjunction, as :mod:`shiren.liveness.check`):

* ``onsets`` — one spoken answer per digit in its window (:func:`check_onsets`);
* ``sync`` — the mouth follows the voice at a plausible lag (:func:`check_sync`);
* ``identity`` — the same person on keyframes from the lead-in, each digit and the end, and no
  second face: :class:`~shiren.liveness.check.LivenessChecker`'s own identity step;
* ``passive`` — the level's passive model on the stillest frames of the silent lead-in:
  the same checker's passive step, at the level's threshold;
* ``digits`` — only when a :class:`~shiren.models.protocols.SpeechRecognizer` is configured:
  the digits it heard equal the digits shown.

Cost: the face mesh runs on the sparse RGB frames only (``AVLimits.sample_ms``, 800 ms by
default, 400 ms in the 1-s lead-in, whose frames the passive model judges: the keyframes, the
passive frames and the mouth's box come from them; 400 ms throughout cost ~40 ms more and did no
better in ``shiren eval readdigits``, docs/LIVENESS.md); the mouth's motion is
measured on the decoder's brightness planes every ``luma_ms`` (40 ms) inside the box of the
nearest mesh; the detector, embedder and passive model run on a few keyframes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from shiren.liveness.audio import (
    AVCapture,
    AVLimits,
    SpeechParams,
    band_envelope,
    decode_av,
    grey_of,
)
from shiren.liveness.audio import speech_segments as find_speech
from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import Level
from shiren.liveness.frames import Frame, FrameSequence
from shiren.liveness.keyframes import KEYFRAME_MAX_PITCH_DEG, KEYFRAME_MAX_YAW_DEG
from shiren.liveness.memo import CaptureMemo
from shiren.liveness.readdigits import ReadDigitsChallenge
from shiren.liveness.readdigits_signals import (
    OnsetOutcome,
    SyncOutcome,
    SyncParams,
    check_onsets,
    check_sync,
    mouth_motion,
    room_level,
)
from shiren.liveness.result import LivenessResult, SignalResult, normalised
from shiren.liveness.signals import FaceSignals, baseline, face_signals
from shiren.models.protocols import SpeechRecognizer
from shiren.reasons import ReasonCode

VARIANT = "read_digits"
MIN_FACE_FRACTION = 0.6


@dataclass(frozen=True, slots=True)
class ReadDigitsConfig:
    limits: AVLimits = field(
        default_factory=lambda: AVLimits(
            sample_ms=800.0, luma_ms=40.0, lead_in_ms=1000.0, lead_in_sample_ms=400.0
        )
    )
    speech: SpeechParams = field(default_factory=lambda: SpeechParams(rise_db=6.0))
    """6 dB over the floor, not 12: in a room 20 dB under the voice a soft digit stands 9-10 dB
    over it (the band's noise subtracted); a steady noise's hops stray ±1-2 dB."""
    sync: SyncParams = field(default_factory=SyncParams)
    interpolate_box: bool = False
    """The mouth's box between two meshes: weighted by time (``True``) or the nearest's."""
    min_snr_db: float = 30.0
    """Below this (:meth:`~shiren.liveness.audio.Envelope.snr_db`: the loud hops over the
    room's noise, steady or heard in the silent lead-in), a failed ``onsets`` or ``sync``
    signal says ``liveness.too_noisy`` (a retry somewhere quieter) instead of
    ``speech_mismatch`` / ``av_desync``.  The estimate reads ~6 dB over the speech-to-noise
    ratio of ``shiren eval readdigits --snr-db`` (white noise at 30 / 20 / 10 dB: medians
    35.6 / 25.5 / 15.9 dB); genuine sessions of one development seed were rejected 14 % clean,
    25 % at 30 dB, 36 % at 20 and 59 % at 10 (docs/LIVENESS.md, "Too noisy to judge")."""
    noisy_min_corr: float = 0.3
    """Noise explains a failed ``sync`` only as a weak correlation at the right lag: a mouth that
    moves, the best lag in the band, and a correlation of at least this (genuine sessions of
    development seed 1 stayed ≥ 0.50 under white noise and ≥ 0.28 under people talking, 20 dB
    under the speech).  A still mouth, a peak at another lag (a shifted or looped track) or no
    correlation at all stays ``av_desync`` — a review — however noisy the room."""


NOISE_MASKED = frozenset({ReasonCode.LIVENESS_SPEECH_MISMATCH, ReasonCode.LIVENESS_AV_DESYNC})
"""The failures a noisy room explains (a buried digit, a voice whose soft parts are gone)."""


def noise_explains(
    corr: float, peak_gap: float, mouth_range: float, params: SyncParams, min_corr: float
) -> bool:
    """A failed synchrony (a :class:`SyncOutcome`'s values) that a noisy room can explain: the
    mouth moves, the voice peaks in the plausible band, only weakly (``min_corr``:
    ``ReadDigitsConfig.noisy_min_corr``)."""
    return (
        mouth_range >= params.min_mouth_range
        and peak_gap <= params.max_peak_gap
        and corr >= min_corr
    )


def too_noisy(signal: SignalResult, snr_db: float, min_snr_db: float) -> SignalResult:
    """``signal`` with its speech reasons read as ``liveness.too_noisy`` when it failed in a
    recording under ``min_snr_db``; unchanged otherwise (a lost face stays a lost face)."""
    if signal.passed or not (snr_db < min_snr_db):  # nan (no estimate): not noisy
        return signal
    reasons = tuple(
        dict.fromkeys(
            ReasonCode.LIVENESS_TOO_NOISY if r in NOISE_MASKED else r for r in signal.reasons
        )
    )
    return replace(signal, reasons=reasons)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0


def onset_signal(outcome: OnsetOutcome) -> SignalResult:
    return SignalResult(
        "onsets",
        True,
        outcome.passed,
        (0.5 + 0.5 * outcome.score) if outcome.passed else 0.5 * outcome.score,
        outcome.score,
        1.0,
        () if outcome.passed else (ReasonCode.LIVENESS_SPEECH_MISMATCH,),
        outcome.details(),
    )


def sync_signal(outcome: SyncOutcome, params: SyncParams) -> SignalResult:
    score = normalised(outcome.corr, params.min_corr, 1.0 - params.min_corr)
    return SignalResult(
        "sync",
        True,
        outcome.passed,
        score if outcome.passed else min(score, 0.4999),
        outcome.corr,
        params.min_corr,
        () if outcome.reason is None else (outcome.reason,),
        outcome.details(),
    )


def read_keyframes(challenge: ReadDigitsChallenge, signals: FaceSignals, count: int) -> list[int]:
    """The most frontal frame of the lead-in, of the digits (every other one when there are
    more than fit) and of the end; at most ``count + 1``."""
    found = signals.found
    if not found.any():
        return []
    yaw0, pitch0 = np.nanmedian(signals.yaw), np.nanmedian(signals.pitch)
    off = np.abs(signals.yaw - yaw0) + np.abs(signals.pitch - pitch0)
    usable = (
        found
        & (np.abs(signals.yaw - yaw0) <= KEYFRAME_MAX_YAW_DEG)
        & (np.abs(signals.pitch - pitch0) <= KEYFRAME_MAX_PITCH_DEG)
    )
    first = challenge.steps[0].show_ms
    spans = [(0.0, float(first))]
    steps = list(challenge.steps)
    stride = max(1, -(-len(steps) // max(1, count - 2)))
    spans += [(float(s.show_ms), float(s.window_end_ms)) for s in steps[::stride]]
    spans.append((float(signals.t_ms[-1]) - 1000.0, float(signals.t_ms[-1]) + 1.0))
    picks: list[int] = []
    for lo, hi in spans:
        idx = np.flatnonzero(usable & (signals.t_ms >= lo) & (signals.t_ms < hi))
        if idx.size:
            best = int(idx[np.argmin(off[idx])])
            if best not in picks:
                picks.append(best)
    return sorted(picks)


class ReadDigitsChecker:
    """Checks one answered read-the-digits challenge.  The face models are the
    :class:`LivenessChecker`'s (its tracker, verifier and passive model); ``recogniser`` is the
    optional speech recogniser."""

    def __init__(
        self,
        liveness: LivenessChecker,
        *,
        config: ReadDigitsConfig | None = None,
        recogniser: SpeechRecognizer | None = None,
        key: bytes | None = None,
    ) -> None:
        self.liveness = liveness
        self.config = config or ReadDigitsConfig()
        self.recogniser = recogniser
        self.key = key

    def check(
        self, challenge: ReadDigitsChallenge, data: bytes, now: float | None = None
    ) -> LivenessResult:
        """Judge ``data`` (the uploaded recording) as the answer to ``challenge`` at ``now``
        (Unix seconds; default: the clock).  Typed :class:`~shiren.errors.InputError` when the
        recording cannot be judged at all."""
        timings: dict[str, float] = {}
        refused = self._refused(challenge, now)
        if refused is not None:
            return self._early(challenge, refused, timings, 0)
        with _timed(timings, "decode"):
            capture = decode_av(data, self.config.limits)
        return self.check_capture(challenge, capture, timings=timings, verified=True)

    def _refused(self, challenge: ReadDigitsChallenge, now: float | None) -> ReasonCode | None:
        if self.key is not None and not challenge.signature_valid(self.key):
            return ReasonCode.LIVENESS_CHALLENGE_MISMATCH
        if challenge.expired(now):
            return ReasonCode.LIVENESS_CHALLENGE_EXPIRED
        return None

    def _early(
        self,
        challenge: ReadDigitsChallenge,
        reason: ReasonCode,
        timings: dict[str, float],
        frames: int,
        faces_found: int = 0,
    ) -> LivenessResult:
        sig = SignalResult("onsets", True, False, 0.0, None, None, (reason,))
        return LivenessResult(
            passed=False,
            score=0.0,
            level=challenge.level,
            nonce=challenge.nonce,
            signals={"onsets": sig},
            reasons=(reason,),
            frames=frames,
            faces_found=faces_found,
            duration_ms=0.0,
            timings_ms=timings,
            models=self.liveness.models,
            variant=VARIANT,
        )

    def check_capture(
        self,
        challenge: ReadDigitsChallenge,
        capture: AVCapture,
        *,
        now: float | None = None,
        timings: dict[str, float] | None = None,
        verified: bool = False,
        memo: CaptureMemo | None = None,
    ) -> LivenessResult:
        """The check on an already decoded recording (the evaluation builds them in memory)."""
        timings = timings if timings is not None else {}
        memo = memo if memo is not None else CaptureMemo()
        if not verified:
            refused = self._refused(challenge, now)
            if refused is not None:
                return self._early(challenge, refused, timings, len(capture.frames))
        with _timed(timings, "mesh"):
            meshes = self.liveness.tracker.track(list(capture.frames))
        h, w = capture.frames[0].shape[:2]
        signals = face_signals(meshes, [float(t) for t in capture.times_ms], (int(w), int(h)))
        memo.meshes, memo.signals = list(signals.meshes), signals
        found = int(signals.found.sum())
        if found < MIN_FACE_FRACTION * len(capture.frames) or baseline(signals, 1e9) is None:
            reason = ReasonCode.LIVENESS_FACE_LOST
            return self._early(challenge, reason, timings, len(capture.frames), found)
        results: dict[str, SignalResult] = {}
        with _timed(timings, "motion"):
            mouth, mouth_t = self._mouth(capture, signals, (int(w), int(h)))
        with _timed(timings, "audio"):
            env = band_envelope(capture.audio, capture.rate)
            # the lead-in before the first digit is silent by protocol: the room's own level
            quiet_ms = float(challenge.steps[0].show_ms) - capture.audio_start_ms
            room = room_level(challenge, env, capture.audio_start_ms)
            shifted = [
                type(s)(
                    s.start_ms + capture.audio_start_ms,
                    s.end_ms + capture.audio_start_ms,
                    s.peak_db,
                )
                for s in find_speech(env, self.config.speech, room)
            ]
            onsets = check_onsets(
                challenge, shifted, env, capture.audio_start_ms, self.config.speech
            )
            snr = env.snr_db(quiet_ms)
            results["onsets"] = too_noisy(onset_signal(onsets), snr, self.config.min_snr_db)
        with _timed(timings, "sync"):
            sync = check_sync(
                mouth, mouth_t, env, capture.audio_start_ms, self.config.sync, challenge, room
            )
            signal = sync_signal(sync, self.config.sync)
            if np.isfinite(snr):
                signal.details["snr_db"] = round(float(snr), 1)
            cfg = self.config
            if noise_explains(
                sync.corr, sync.peak_gap, sync.mouth_range, cfg.sync, cfg.noisy_min_corr
            ):
                signal = too_noisy(signal, snr, self.config.min_snr_db)
            results["sync"] = signal
        self._face_signals(challenge, capture, signals, memo, results, timings)
        if self.recogniser is not None:
            with _timed(timings, "recogniser"):
                results["digits"] = self._digits(challenge, capture)
        return self._fused(challenge, results, capture, found, timings)

    def _mouth(
        self, capture: AVCapture, signals: FaceSignals, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The mouth's motion on the brightness planes (the RGB frames' own brightness when the
        capture carries none)."""
        if capture.luma:
            luma, t = capture.luma, capture.luma_times_ms
        else:
            luma, t = tuple(grey_of(f) for f in capture.frames), capture.times_ms
        motion = mouth_motion(
            luma,
            t,
            signals.meshes,
            signals.t_ms,
            size,
            interpolate=self.config.interpolate_box,
        )
        return motion, t

    def _face_signals(
        self,
        challenge: ReadDigitsChallenge,
        capture: AVCapture,
        signals: FaceSignals,
        memo: CaptureMemo,
        results: dict[str, SignalResult],
        timings: dict[str, float],
    ) -> None:
        """Identity and passive, by the liveness checker's own steps (not a fork of them)."""
        live = self.liveness
        seq = FrameSequence(
            frames=tuple(
                Frame(image, float(t))
                for image, t in zip(capture.frames, capture.times_ms, strict=True)
            ),
            nonce=challenge.nonce,
        )
        keys = read_keyframes(challenge, signals, live.config.identity.keyframes)
        with _timed(timings, "detect"):
            extra = live._second_faces(seq, keys, memo)
        with _timed(timings, "identity"):
            ident = live._identity(seq, keys, memo, True)
        if extra:
            ident = SignalResult(
                ident.name,
                True,
                False,
                min(ident.score, 0.25),
                ident.value,
                ident.threshold,
                (*ident.reasons, ReasonCode.LIVENESS_MULTIPLE_FACES),
                {**ident.details, "frames_with_second_face": extra},
            )
        results["identity"] = ident
        first = float(challenge.steps[0].show_ms)
        pad_name = live.pad.info.name if live.pad else None
        with _timed(timings, "passive"):
            results["passive"] = live._passive(
                seq,
                keys,
                first,
                first,
                signals,
                live.config.passive_threshold(challenge.level, pad_name),
                True,
                memo,
            )

    def _digits(self, challenge: ReadDigitsChallenge, capture: AVCapture) -> SignalResult:
        assert self.recogniser is not None
        name = self.recogniser.info.name
        heard: object = None
        failure = "no text"
        try:
            heard = self.recogniser.digits(capture.audio, capture.rate, challenge.lang)
        except Exception as exc:  # a lender's plug-in: it fails closed, never as a 500
            failure = type(exc).__name__
        if not isinstance(heard, str):
            return SignalResult(
                "digits",
                True,
                False,
                0.0,
                None,
                1.0,
                (ReasonCode.LIVENESS_RECOGNISER_UNAVAILABLE,),
                {"recogniser": name, "failure": failure},
            )
        ok = heard == challenge.digits
        return SignalResult(
            "digits",
            True,
            ok,
            1.0 if ok else 0.0,
            1.0 if ok else 0.0,
            1.0,
            () if ok else (ReasonCode.LIVENESS_DIGITS_MISMATCH,),
            {"recogniser": name, "digits_heard": len(heard)},
        )

    def _fused(
        self,
        challenge: ReadDigitsChallenge,
        results: dict[str, SignalResult],
        capture: AVCapture,
        found: int,
        timings: dict[str, float],
    ) -> LivenessResult:
        passed = all(r.passed for r in results.values() if r.required)
        score = min(r.score for r in results.values() if r.required)
        score = max(score, 0.5) if passed else min(score, 0.4999)
        reasons = tuple(
            dict.fromkeys(
                c for r in results.values() if r.required and not r.passed for c in r.reasons
            )
        )
        if not passed and not reasons:
            reasons = (ReasonCode.LIVENESS_SPOOF_SUSPECTED,)
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        return LivenessResult(
            passed=passed,
            score=score,
            level=Level(challenge.level),
            nonce=challenge.nonce,
            signals=results,
            reasons=reasons,
            frames=len(capture.frames),
            faces_found=found,
            duration_ms=float(capture.times_ms[-1] - capture.times_ms[0]),
            timings_ms=timings,
            models=self.liveness.models,
            variant=VARIANT,
        )


__all__ = [
    "NOISE_MASKED",
    "VARIANT",
    "ReadDigitsChecker",
    "ReadDigitsConfig",
    "noise_explains",
    "onset_signal",
    "read_keyframes",
    "too_noisy",
]
