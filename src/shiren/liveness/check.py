"""Fusion: one :class:`LivenessResult` from the challenge, 3-D motion, colour, identity and PAD.

The decision is a conjunction: every signal the level requires must pass (a chain is as strong as
its weakest link; averaging would let a perfect replay of the actions outvote a failed colour
check).  The result still carries one ``score`` in [0, 1] for ranking and risk engines: each
signal's value is mapped to [0, 1] with 0.5 exactly at its threshold, and the fused score is the
smallest of the required ones, so ``score ≥ 0.5 ⇔ passed``.

Cost is dominated by the face mesh on every frame (≈ 2.5 ms); the heavier models (detector, PAD,
embedder) run on a few keyframes only.

Beside it: the verdict types and per-signal scores (:mod:`shiren.liveness.result`), which frames
the heavy models see (:mod:`shiren.liveness.keyframes`) and the replay guard
(:mod:`shiren.liveness.replay_guard`).  This module keeps the checker and re-exports the names
callers import from it (:class:`LivenessResult`, :class:`MemoryReplayGuard`, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from shiren.core.geometry import BBox, FloatArray
from shiren.core.similarity import similarity
from shiren.errors import ModelError
from shiren.liveness.actions import check_challenge
from shiren.liveness.challenge import Challenge, Variant
from shiren.liveness.config import Level, LevelPolicy, LivenessConfig, load_config
from shiren.liveness.flash import check_colour
from shiren.liveness.frames import FrameSequence
from shiren.liveness.keyframes import judgeable, keyframes, passive_frames
from shiren.liveness.memo import CaptureMemo, face_of, mesh_box
from shiren.liveness.parallax import ParallaxOutcome, check_parallax
from shiren.liveness.recorded import retime
from shiren.liveness.replay_guard import MemoryReplayGuard, ReplayGuard, dhash, fingerprint
from shiren.liveness.result import (
    LivenessResult,
    SignalResult,
    challenge_signal,
    colour_signal,
    normalised,
    parallax_signal,
)
from shiren.liveness.signals import Baseline, FaceSignals, baseline, face_signals
from shiren.models.protocols import (
    FaceTracker,
    ModelInfo,
    PresentationAttackDetector,
    SpeechRecognizer,
)
from shiren.reasons import ReasonCode
from shiren.verifier import PROFILES, Verifier

MIN_FACE_FRACTION = 0.6
SECOND_FACE_AREA = 0.2
"""A second detection counts as another person when its box is ≥ 20 % of the main face's."""


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
        recogniser: SpeechRecognizer | None = None,
    ) -> None:
        self.verifier = verifier
        self.tracker = tracker
        self.pad = pad
        self.config = config or load_config()
        self.key = key
        self.replay_guard = replay_guard
        self.parallel = parallel
        self.recogniser = recogniser
        """The speech recogniser a read-the-digits check also asks (issue 18; none ships)."""
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
        pad_model: str | None = "auto",
        key: bytes | None = None,
        replay_guard: ReplayGuard | None = None,
        parallel: bool = False,
    ) -> LivenessChecker:
        """Real models.  ``pad_model`` ``"auto"`` (the default) is MiniFASNet when its weights
        are configured, else the registry's DTN
        (:func:`~shiren.models.registry.build_passive_model`).  A named PAD model that is
        missing (weights not configured) leaves ``pad`` unset: levels that require the passive
        signal then fail with ``liveness.passive_unavailable`` rather than silently passing.
        ``parallel`` runs the 3-D motion signal on a second thread (a service's latency; the
        CPU spent is the same)."""
        from shiren.models.mediapipe_face import MediapipeMeshTracker
        from shiren.models.registry import build_passive_model, get_entry

        v = verifier or Verifier.from_config(PROFILES["fast"].config())
        tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
        pad: PresentationAttackDetector | None = None
        if pad_model:
            try:
                pad = build_passive_model(pad_model)
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
            variant=challenge.variant.value,
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
        required = required_signals(policy, challenge.variant)

        refused = self._refused(challenge, lv, frames, now, timings)
        if refused is not None:
            return refused
        with _timed(timings, "mesh"):
            meshes = self.tracker.track([f.image for f in frames.frames])
        with _timed(timings, "signals"):
            signals = face_signals(meshes, frames.times_ms, frames.size)
        memo.meshes = list(signals.meshes)
        memo.signals = signals
        faces_found = int(signals.found.sum())
        base = baseline(signals, challenge.still_until_ms)
        if base is None or faces_found < MIN_FACE_FRACTION * len(frames):
            reason = ReasonCode.LIVENESS_FACE_LOST
            result = self._failed_early(challenge, lv, frames, reason, timings)
            return LivenessResult(**{**_fields(result), "faces_found": faces_found})
        if challenge.variant is Variant.RECORDED:
            with _timed(timings, "retime"):
                challenge = retime(challenge, signals, base, self.config.actions)

        results: dict[str, SignalResult] = {}
        with _timed(timings, "actions"):
            outcome = check_challenge(challenge, signals, base, self.config.actions)
        results["challenge"] = challenge_signal(outcome, "challenge" in required)

        parallax = self._start_parallax(challenge, frames, signals, base, timings)
        with _timed(timings, "colour"):
            col = check_colour(challenge, frames, signals, self.config.colour)
        results["colour"] = colour_signal(
            col, self.config.colour.pass_correlation, "colour" in required
        )

        keys = keyframes(challenge, signals, base, self.config.identity.keyframes)
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
                self.config.passive_threshold(lv, self.pad.info.name if self.pad else None),
                "passive" in required,
                memo,
            )

        results["parallax"] = parallax_signal(
            parallax(), self.config.parallax.pass_residual, "parallax" in required
        )
        passed, score, reasons = _fuse(results, challenge.variant, policy)
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
            variant=challenge.variant.value,
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
            normalised(worst, th, 1.0 - th),
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
        judged, unjudged = [], []
        for i in picks:
            mesh = signals.meshes[i]
            assert mesh is not None
            image = frames.frames[i].image
            box = self._pad_box(memo, i, image, mesh)
            why = judgeable(image, box, float(signals.yaw[i]), float(signals.pitch[i]))
            if why is not None:  # judged only frontal, well-exposed (issue 17)
                unjudged.append(why)
                continue
            judged.append(i)
            scores.append(self.pad.live_score(image, box))
        if picks and not judged:  # ask for better light / a frontal face instead of failing
            return SignalResult(
                "passive",
                required,
                False,
                0.0,
                None,
                threshold,
                (max(set(unjudged), key=unjudged.count),),
                {"keyframes": picks, "scores": [], "model": self.pad.info.name},
            )
        picks = judged
        value = float(np.mean(scores)) if scores else 0.0
        passed = bool(scores) and value >= threshold
        return SignalResult(
            "passive",
            required,
            passed,
            normalised(value, threshold, 1.0 - threshold),
            value,
            threshold,
            () if passed else (ReasonCode.LIVENESS_SPOOF_SUSPECTED,),
            {
                "keyframes": picks,
                "scores": [round(s, 4) for s in scores],
                "model": self.pad.info.name,
            },
        )


def required_signals(policy: LevelPolicy, variant: Variant) -> set[str]:
    """The signals that must pass: the level's, or for a capture without the colour flash the
    motion-only rules — every signal of the level but the flash, the 3-D motion always."""
    required = set(policy.required)
    if variant is not Variant.LIVE:
        required = (required - {"colour"}) | {"parallax"}
    return required


def _fuse(
    results: dict[str, SignalResult], variant: Variant, policy: LevelPolicy
) -> tuple[bool, float, tuple[ReasonCode, ...]]:
    """The conjunction of the required signals (see the module docstring): passed, the fused
    score (≥ 0.5 ⇔ passed) and the failed signals' reasons.  A capture without the flash passes
    only where the level's ``without_flash`` rule is ``motion``; elsewhere one that would have
    passed fails with ``liveness.flash_required`` alone (a person decides)."""
    required_results = [r for r in results.values() if r.required]
    passed = all(r.passed for r in required_results)
    score = min((r.score for r in required_results), default=0.0)
    score = max(score, 0.5) if passed else min(score, 0.4999)
    reasons = tuple(
        dict.fromkeys(code for r in required_results if not r.passed for code in r.reasons)
    )
    if not passed and not reasons:
        reasons = (ReasonCode.LIVENESS_SPOOF_SUSPECTED,)
    if passed and variant is not Variant.LIVE and policy.without_flash != "motion":
        return False, min(score, 0.4999), (ReasonCode.LIVENESS_FLASH_REQUIRED,)
    return passed, score, reasons


def _fields(result: LivenessResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}


__all__ = [
    "LivenessChecker",
    "LivenessResult",
    "MemoryReplayGuard",
    "ReplayGuard",
    "SignalResult",
    "dhash",
    "fingerprint",
]
