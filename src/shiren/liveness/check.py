"""Fusion: one :class:`LivenessResult` from the challenge, 3-D motion, colour, identity and PAD.

The decision is a conjunction: every signal the level requires must pass (a chain is as strong as
its weakest link; averaging would let a perfect replay of the actions outvote a failed colour
check).  The result still carries one ``score`` in [0, 1] for ranking and risk engines: each
signal's value is mapped to [0, 1] with 0.5 exactly at its threshold, and the fused score is the
smallest of the required ones, so ``score ≥ 0.5 ⇔ passed``.

Cost is dominated by the face mesh on every frame (≈ 2.5 ms); the heavier models (detector, PAD,
embedder) run on a few keyframes only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from shiren.core.geometry import BBox, FloatArray
from shiren.core.similarity import similarity
from shiren.errors import ModelError
from shiren.liveness.actions import ChallengeOutcome, check_challenge
from shiren.liveness.challenge import Challenge
from shiren.liveness.config import Level, LivenessConfig, load_config
from shiren.liveness.flash import ColourOutcome, check_colour
from shiren.liveness.frames import FrameSequence
from shiren.liveness.memo import CaptureMemo, face_of, mesh_box
from shiren.liveness.parallax import ParallaxOutcome, check_parallax
from shiren.liveness.signals import Baseline, FaceSignals, baseline, face_signals
from shiren.messages import message
from shiren.models.protocols import FaceTracker, ModelInfo, PresentationAttackDetector
from shiren.reasons import ReasonCode
from shiren.verifier import PROFILES, Verifier

MIN_FACE_FRACTION = 0.6
KEYFRAME_MAX_YAW_DEG = 15.0
KEYFRAME_MAX_PITCH_DEG = 15.0
PASSIVE_MAX_ANGLE_DEG = 15.0
MIN_PASSIVE_GAP_MS = 300.0
SECOND_FACE_AREA = 0.2
"""A second detection counts as another person when its box is ≥ 20 % of the main face's."""


@dataclass(frozen=True, slots=True)
class SignalResult:
    """One signal's verdict.  ``score`` is in [0, 1] with 0.5 at the threshold."""

    name: str
    required: bool
    passed: bool
    score: float
    value: float | None
    threshold: float | None
    reasons: tuple[ReasonCode, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "passed": self.passed,
            "score": round(self.score, 4),
            "value": None if self.value is None else round(self.value, 5),
            "threshold": self.threshold,
            "reasons": [r.value for r in self.reasons],
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class LivenessResult:
    passed: bool
    score: float
    level: Level
    nonce: str
    signals: dict[str, SignalResult]
    reasons: tuple[ReasonCode, ...]
    frames: int
    faces_found: int
    duration_ms: float
    timings_ms: dict[str, float]
    models: tuple[ModelInfo, ...] = ()

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "passed": self.passed,
            "score": round(self.score, 4),
            "level": self.level.value,
            "nonce": self.nonce,
            "reasons": [r.value for r in self.reasons],
            "messages": [message(r, lang) for r in self.reasons],
            "signals": {k: v.to_dict() for k, v in self.signals.items()},
            "frames": self.frames,
            "faces_found": self.faces_found,
            "duration_ms": round(self.duration_ms, 1),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "models": [
                {"name": m.name, "version": m.version, "sha256": m.sha256} for m in self.models
            ],
        }


def _normalised(value: float | None, threshold: float, span: float) -> float:
    """[0, 1], 0.5 at ``threshold``; ``span`` above the threshold reaches 1."""
    if value is None or not np.isfinite(value):
        return 0.0
    if value < threshold:
        return float(max(0.0, 0.5 * value / threshold)) if threshold > 0 else 0.0
    return float(min(1.0, 0.5 + 0.5 * (value - threshold) / span))


# -- replay guard ---------------------------------------------------------------------------


class ReplayGuard(Protocol):
    """Remembers sessions' frame fingerprints; says when frames come back under a new nonce."""

    def seen_before(self, fingerprint: tuple[int, ...], nonce: str) -> bool: ...


class MemoryReplayGuard:
    """In-process guard: a ring of the last ``capacity`` fingerprints, compared all at once
    (a Python loop over 10,000 entries cost ~15 ms per check once the ring was full)."""

    def __init__(self, capacity: int = 10_000, max_distance: int = 6) -> None:
        self._prints = np.zeros((capacity, FINGERPRINT_FRAMES), dtype=np.uint64)
        self._nonces: list[str | None] = [None] * capacity
        self._size = 0
        self._next = 0
        self._max_distance = max_distance
        self._lock = threading.Lock()

    def seen_before(self, fingerprint: tuple[int, ...], nonce: str) -> bool:
        probe = np.array(fingerprint, dtype=np.uint64)
        with self._lock:
            known = self._prints[: self._size]
            close = (np.bitwise_count(known ^ probe) <= self._max_distance).all(axis=1)
            if any(self._nonces[i] != nonce for i in np.flatnonzero(close)):
                return True
            self._prints[self._next] = probe
            self._nonces[self._next] = nonce
            self._next = (self._next + 1) % len(self._nonces)
            self._size = min(self._size + 1, len(self._nonces))
            return False


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of a frame (robust to re-encoding and small rescaling)."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


FINGERPRINT_FRAMES = 3
"""The first, middle and last frames' difference hashes make a capture's fingerprint."""


def fingerprint(frames: FrameSequence) -> tuple[int, ...]:
    n = len(frames)
    return tuple(dhash(frames.frames[i].image) for i in (0, n // 2, n - 1))


# -- the checker ----------------------------------------------------------------------------


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0


class LivenessChecker:
    """Checks one answered challenge.  Models are injected (real: :meth:`from_config`)."""

    def __init__(
        self,
        *,
        verifier: Verifier,
        tracker: FaceTracker,
        pad: PresentationAttackDetector | None,
        config: LivenessConfig | None = None,
        key: bytes | None = None,
        replay_guard: ReplayGuard | None = None,
        parallel: bool = False,
    ) -> None:
        self.verifier = verifier
        self.tracker = tracker
        self.pad = pad
        self.config = config or load_config()
        self.key = key
        self.replay_guard = replay_guard
        self.parallel = parallel
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="shiren-parallax")
            if parallel
            else None
        )

    @classmethod
    def from_config(
        cls,
        config: LivenessConfig | None = None,
        *,
        verifier: Verifier | None = None,
        pad_model: str | None = "minifasnet",
        key: bytes | None = None,
        replay_guard: ReplayGuard | None = None,
        parallel: bool = False,
    ) -> LivenessChecker:
        """Real models.  A missing PAD model (weights not configured) leaves ``pad`` unset:
        levels that require the passive signal then fail with ``liveness.passive_unavailable``
        rather than silently passing.  ``parallel`` runs the 3-D motion signal on a second
        thread (a service's latency; the CPU spent is the same)."""
        from shiren.models.mediapipe_face import MediapipeMeshTracker
        from shiren.models.registry import build_model, get_entry

        v = verifier or Verifier.from_config(PROFILES["fast"].config())
        tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
        pad: PresentationAttackDetector | None = None
        if pad_model:
            try:
                pad = build_model(pad_model)
            except ModelError as exc:
                if exc.code.value not in ("model.unavailable",):
                    raise
        return cls(
            verifier=v,
            tracker=tracker,
            pad=pad,
            config=config,
            key=key,
            replay_guard=replay_guard,
            parallel=parallel,
        )

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        found = [self.tracker.info, *self.verifier.models]
        if self.pad is not None:
            found.append(self.pad.info)
        return tuple(found)

    # -- helpers ---------------------------------------------------------------------------

    def _keyframes(self, challenge: Challenge, signals: FaceSignals, base: Baseline) -> list[int]:
        """Near-frontal frames spread over the session — the most frontal of the still phase,
        of each action window and of the last second — so a swap anywhere is caught, while
        a profile view (which no embedder or PAD model judges well) is never a keyframe."""
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
        if len(unique) <= self.config.identity.keyframes:
            return unique
        # keep the first and the last, and the middle ones evenly
        keep = np.linspace(0, len(unique) - 1, self.config.identity.keyframes).round().astype(int)
        return [unique[i] for i in sorted(set(keep.tolist()))]

    def _refused(
        self,
        challenge: Challenge,
        lv: Level,
        frames: FrameSequence,
        now: float | None,
        timings: dict[str, float],
    ) -> LivenessResult | None:
        """The early failures, before any model runs: a forged or foreign challenge, an expired
        one, a replayed capture."""
        if self.key is not None and not challenge.signature_valid(self.key):
            return self._failed_early(
                challenge, lv, frames, ReasonCode.LIVENESS_CHALLENGE_MISMATCH, timings
            )
        if frames.nonce is not None and frames.nonce != challenge.nonce:
            return self._failed_early(
                challenge, lv, frames, ReasonCode.LIVENESS_CHALLENGE_MISMATCH, timings
            )
        if challenge.expired(now):
            return self._failed_early(
                challenge, lv, frames, ReasonCode.LIVENESS_CHALLENGE_EXPIRED, timings
            )
        if self.replay_guard is not None:
            with _timed(timings, "fingerprint"):
                replayed = self.replay_guard.seen_before(fingerprint(frames), challenge.nonce)
            if replayed:
                return self._failed_early(
                    challenge, lv, frames, ReasonCode.LIVENESS_REPLAY_SUSPECTED, timings
                )
        return None

    def _failed_early(
        self,
        challenge: Challenge,
        level: Level,
        frames: FrameSequence,
        reason: ReasonCode,
        timings: dict[str, float],
    ) -> LivenessResult:
        sig = SignalResult("challenge", True, False, 0.0, None, None, (reason,))
        return LivenessResult(
            passed=False,
            score=0.0,
            level=level,
            nonce=challenge.nonce,
            signals={"challenge": sig},
            reasons=(reason,),
            frames=len(frames),
            faces_found=0,
            duration_ms=frames.duration_ms,
            timings_ms=timings,
            models=self.models,
        )

    # -- the check -------------------------------------------------------------------------

    def check(
        self,
        challenge: Challenge,
        frames: FrameSequence,
        *,
        now: float | None = None,
        level: Level | str | None = None,
        memo: CaptureMemo | None = None,
    ) -> LivenessResult:
        """Judge ``frames`` as the answer to ``challenge``.  ``memo``, when given, is filled with
        the per-frame meshes, detections and embeddings the check computed, so the caller's 1:1
        match of the same capture need not compute them again."""
        timings: dict[str, float] = {}
        memo = memo if memo is not None else CaptureMemo()
        lv = Level(level) if level is not None else challenge.level
        policy = self.config.level(lv)
        required = set(policy.required)

        refused = self._refused(challenge, lv, frames, now, timings)
        if refused is not None:
            return refused
        with _timed(timings, "mesh"):
            meshes = self.tracker.track([f.image for f in frames.frames])
        with _timed(timings, "signals"):
            signals = face_signals(meshes, frames.times_ms, frames.size)
        memo.meshes = list(signals.meshes)
        faces_found = int(signals.found.sum())
        base = baseline(signals, challenge.still_until_ms)
        if base is None or faces_found < MIN_FACE_FRACTION * len(frames):
            reason = ReasonCode.LIVENESS_FACE_LOST
            result = self._failed_early(challenge, lv, frames, reason, timings)
            return LivenessResult(**{**_fields(result), "faces_found": faces_found})

        results: dict[str, SignalResult] = {}
        with _timed(timings, "actions"):
            outcome = check_challenge(challenge, signals, base, self.config.actions)
        results["challenge"] = _challenge_signal(outcome, "challenge" in required)

        parallax = self._start_parallax(challenge, frames, signals, base, timings)
        with _timed(timings, "colour"):
            col = check_colour(challenge, frames, signals, self.config.colour)
        results["colour"] = _colour_signal(
            col, self.config.colour.pass_correlation, "colour" in required
        )

        keys = self._keyframes(challenge, signals, base)
        with _timed(timings, "detect"):
            extra_faces = self._second_faces(frames, keys, memo)
        with _timed(timings, "identity"):
            results["identity"] = self._identity(frames, keys, memo, "identity" in required)
        if extra_faces:
            sig = results["identity"]
            results["identity"] = SignalResult(
                sig.name,
                sig.required,
                False,
                min(sig.score, 0.25),
                sig.value,
                sig.threshold,
                (*sig.reasons, ReasonCode.LIVENESS_MULTIPLE_FACES),
                {**sig.details, "frames_with_second_face": extra_faces},
            )
        with _timed(timings, "passive"):
            results["passive"] = self._passive(
                frames,
                keys,
                float(challenge.still_until_ms),
                float(challenge.colours[0].start_ms if challenge.colours else challenge.lead_in_ms),
                signals,
                self.config.passive_threshold(lv),
                "passive" in required,
                memo,
            )

        results["parallax"] = _parallax_signal(
            parallax(), self.config.parallax.pass_residual, "parallax" in required
        )
        required_results = [r for r in results.values() if r.required]
        passed = all(r.passed for r in required_results)
        score = min((r.score for r in required_results), default=0.0)
        score = max(score, 0.5) if passed else min(score, 0.4999)
        reasons = tuple(
            dict.fromkeys(code for r in required_results if not r.passed for code in r.reasons)
        )
        if not passed and not reasons:
            reasons = (ReasonCode.LIVENESS_SPOOF_SUSPECTED,)
        timings["total"] = sum(timings.values())
        return LivenessResult(
            passed=passed,
            score=score,
            level=lv,
            nonce=challenge.nonce,
            signals=results,
            reasons=reasons,
            frames=len(frames),
            faces_found=faces_found,
            duration_ms=frames.duration_ms,
            timings_ms=timings,
            models=self.models,
        )

    def _start_parallax(
        self,
        challenge: Challenge,
        frames: FrameSequence,
        signals: FaceSignals,
        base: Baseline,
        timings: dict[str, float],
    ) -> Callable[[], ParallaxOutcome]:
        """Start the 3-D motion signal; call the result for its outcome.  With a pool it runs on
        a second thread while this one runs the detector, embedder and PAD model (OpenCV and
        ONNX Runtime release the GIL): the same CPU, less latency when a core is free."""

        def run() -> ParallaxOutcome:
            with _timed(timings, "parallax"):
                return check_parallax(
                    challenge,
                    frames,
                    signals,
                    base,
                    self.config.parallax,
                    self.config.actions.window_slack_ms,
                )

        if self._pool is None:
            outcome = run()
            return lambda: outcome
        return self._pool.submit(run).result

    def _second_faces(self, frames: FrameSequence, keys: list[int], memo: CaptureMemo) -> list[int]:
        out = []
        for i in keys[:3]:
            dets = memo.detect(self.verifier.detector, i, frames.frames[i].image)
            if len(dets) < 2:
                continue
            main = max(d.box.area for d in dets)
            if sum(1 for d in dets if d.box.area >= SECOND_FACE_AREA * main) >= 2:
                out.append(i)
        return out

    def _identity(
        self, frames: FrameSequence, keys: list[int], memo: CaptureMemo, required: bool
    ) -> SignalResult:
        th = self.config.identity.threshold_for(self.verifier.embedder.info.name)
        chips = []
        for i in keys:
            mesh = memo.mesh(i)
            assert mesh is not None
            chips.append(self.verifier.mesh_chip(frames.frames[i].image, mesh))
        if len(chips) < 2:
            return SignalResult(
                "identity", required, False, 0.0, None, th, (ReasonCode.LIVENESS_FACE_LOST,)
            )
        templates = self.verifier.embedder.embed(np.stack(chips))
        memo.mesh_templates.update(zip(keys, templates, strict=True))
        metric = self.verifier.embedder.metric
        sims = [
            similarity(templates[a], templates[b], metric)
            for a in range(len(keys))
            for b in range(a + 1, len(keys))
        ]
        worst = float(min(sims))
        passed = worst >= th
        return SignalResult(
            "identity",
            required,
            passed,
            _normalised(worst, th, 1.0 - th),
            worst,
            th,
            () if passed else (ReasonCode.LIVENESS_FACE_CHANGED,),
            {"keyframes": keys, "min_similarity": round(worst, 4)},
        )

    def _pad_box(self, memo: CaptureMemo, index: int, image: np.ndarray, mesh: FloatArray) -> BBox:
        """The face detector's box for the tracked face.  MiniFASNet's crop (×2.7, ×4.0) is
        defined on a detector's box: on the webcam video's still frames it scores 0.96–0.997 live
        from the detector's box but 0.35–0.85 from a box around the mesh, which is framed
        differently.  Falls back to the mesh's box when the detector misses."""
        face = face_of(memo.detect(self.verifier.detector, index, image), mesh)
        return face.box if face is not None else mesh_box(mesh)

    def _passive(
        self,
        frames: FrameSequence,
        keys: list[int],
        still_until: float,
        lead_in_until: float,
        signals: FaceSignals,
        threshold: float,
        required: bool,
        memo: CaptureMemo,
    ) -> SignalResult:
        if self.pad is None:
            return SignalResult(
                "passive",
                required,
                False,
                0.0,
                None,
                threshold,
                (ReasonCode.LIVENESS_PASSIVE_UNAVAILABLE,),
                {"model": None},
            )
        scores = []
        picks = passive_frames(
            signals, keys, still_until, self.config.passive.keyframes, lead_in_until
        )
        for i in picks:
            mesh = signals.meshes[i]
            assert mesh is not None
            image = frames.frames[i].image
            scores.append(self.pad.live_score(image, self._pad_box(memo, i, image, mesh)))
        value = float(np.mean(scores)) if scores else 0.0
        passed = bool(scores) and value >= threshold
        return SignalResult(
            "passive",
            required,
            passed,
            _normalised(value, threshold, 1.0 - threshold),
            value,
            threshold,
            () if passed else (ReasonCode.LIVENESS_SPOOF_SUSPECTED,),
            {
                "keyframes": picks,
                "scores": [round(s, 4) for s in scores],
                "model": self.pad.info.name,
            },
        )


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


def _fields(result: LivenessResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}


def _challenge_signal(outcome: ChallengeOutcome, required: bool) -> SignalResult:
    return SignalResult(
        "challenge",
        required,
        outcome.passed,
        (0.5 + 0.5 * outcome.score) if outcome.passed else 0.5 * outcome.score,
        outcome.score,
        1.0,
        outcome.reasons,
        {"actions": [a.to_dict() for a in outcome.actions]},
    )


def _parallax_signal(par: ParallaxOutcome, threshold: float, required: bool) -> SignalResult:
    return SignalResult(
        "parallax",
        required,
        par.passed,
        _normalised(par.score, threshold, threshold),
        par.score,
        threshold,
        () if par.reason is None else (par.reason,),
        {
            "yaw_span_deg": round(par.yaw_span_deg, 2),
            "pairs": [{"from": a, "to": b, "residual": r, "points": n} for a, b, r, n in par.pairs],
        },
    )


def _colour_signal(col: ColourOutcome, threshold: float, required: bool) -> SignalResult:
    return SignalResult(
        "colour",
        required,
        col.passed,
        _normalised(col.score, threshold, 1.0 - threshold),
        col.score,
        threshold,
        () if col.reason is None else (col.reason,),
        {"lag_ms": col.lag_ms, "swing": round(col.swing, 5), "steps_measured": col.steps_measured},
    )


__all__ = [
    "LivenessChecker",
    "LivenessResult",
    "MemoryReplayGuard",
    "ReplayGuard",
    "SignalResult",
    "dhash",
    "fingerprint",
]
