"""The capture memo (the 1:1 match reuses what the liveness check computed) and the parallel
3-D motion signal: both must change the cost, never the verdict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shiren.liveness.challenge import parse_challenge
from shiren.liveness.check import LivenessChecker
from shiren.liveness.frames import FrameSequence
from shiren.liveness.memo import CaptureMemo, face_of, live_template
from shiren.verifier import PROFILES, Verifier

NOW = 1_800_000_000.0


class CountingDetector:
    """The real detector, counting its calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.info = inner.info
        self.calls = 0

    def detect(self, image: Any) -> Any:
        self.calls += 1
        return self.inner.detect(image)


def _challenge() -> Any:
    # the hand-annotated windows of the live webcam video (see test_liveness_core)
    return parse_challenge(
        {
            "nonce": "c" * 32,
            "level": "low",
            "issued_at": NOW,
            "expires_at": NOW + 180,
            "lead_in_ms": 1000,
            "actions": [
                {"action": "open_mouth", "start_ms": 1000, "end_ms": 3600},
                {"action": "turn_right", "start_ms": 5600, "end_ms": 8200},
            ],
            "colours": [],
        }
    )


@pytest.fixture(scope="module")
def standard(real_checker: Any) -> Verifier:
    """The service's verifier: standard profile, on the checker's loaded models."""
    verifier: Verifier = real_checker.verifier.with_config(views=PROFILES["standard"].views)
    return verifier


def _checker(real_checker: Any, verifier: Verifier, *, parallel: bool) -> LivenessChecker:
    return LivenessChecker(
        verifier=verifier,
        tracker=real_checker.tracker,
        pad=real_checker.pad,
        config=real_checker.config,
        parallel=parallel,
    )


def _short(frames: FrameSequence, stop: int = 130) -> FrameSequence:
    return FrameSequence(frames=frames.frames[:stop], nonce=None)


def test_the_memo_template_is_the_pipeline_template(
    real_checker: Any, real_mov_frames: Any, standard: Verifier
) -> None:
    seq = _short(real_mov_frames)
    memo = CaptureMemo()
    _checker(real_checker, standard, parallel=False).check(_challenge(), seq, now=NOW, memo=memo)
    assert len(memo.meshes) == len(seq)
    assert memo.mesh_templates, "the identity signal's embeddings are kept"
    key = next(iter(memo.mesh_templates))
    for index in (key, 3):  # a keyframe (embedding reused) and another still frame
        image = seq.frames[index].image
        fast = live_template(standard, image, index, memo)
        full = standard.analyze(image).template
        assert fast is not None
        # tracked mesh vs a fresh single-image mesh: the same face, the same template (0.996
        # measured with MobileFaceNet, whose LFW genuine pairs score ~0.4-0.9: far closer than
        # any two photos; dlib's cosines, compressed near 1, gave > 0.999)
        assert standard.score(fast, full) > 0.99
        assert standard.score(fast, full) < 1.0 + 1e-6


def test_the_memo_runs_the_detector_once_per_frame(
    real_checker: Any, real_mov_frames: Any, standard: Verifier
) -> None:
    counting = CountingDetector(standard.detector)
    verifier = Verifier(
        detector=counting,
        landmarker=standard.landmarker,
        aligner=standard.aligner,
        embedder=standard.embedder,
        config=standard.config,
    )
    seq = _short(real_mov_frames)
    memo = CaptureMemo()
    _checker(real_checker, verifier, parallel=False).check(_challenge(), seq, now=NOW, memo=memo)
    assert counting.calls == len(memo.detections) > 0
    before = counting.calls
    index = next(iter(memo.detections))
    mesh = memo.mesh(index)
    assert mesh is not None
    assert face_of(memo.detections[index], mesh) is not None
    assert live_template(verifier, seq.frames[index].image, index, memo) is not None
    assert counting.calls == before  # the match reused the check's detection


def test_without_a_mesh_the_whole_pipeline_runs(real_mov_frames: Any, standard: Verifier) -> None:
    image = real_mov_frames.frames[0].image
    fast = live_template(standard, image, 0, CaptureMemo())
    assert fast is not None
    assert standard.score(fast, standard.analyze(image).template) > 0.99999
    blank = np.zeros((240, 320, 3), np.uint8)
    assert live_template(standard, blank, 0, None) is None  # no face: None, not an exception


def test_parallel_motion_signal_gives_the_same_verdict(
    real_checker: Any, real_mov_frames: Any
) -> None:
    seq = _short(real_mov_frames)
    plain = real_checker.check(_challenge(), seq, now=NOW)
    fast = _checker(real_checker, real_checker.verifier, parallel=True).check(
        _challenge(), seq, now=NOW
    )
    assert fast.passed == plain.passed
    assert fast.reasons == plain.reasons
    for name, signal in plain.signals.items():
        assert fast.signals[name].value == signal.value, name
    assert fast.timings_ms["parallax"] > 0
