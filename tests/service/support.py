"""Test material for the service and the API: the real engine, and capture frames assembled
from the annotated live recording (``real.mov``) to answer a server's challenge.

The reference photo of "the same person" is a still frame from the start of the recording; the
capture's still phase (whose stillest frame is matched) comes from its end, so the 1:1 match
compares two different images of one person.

Why assembled: a recording cannot answer a random challenge.  The service under test is given a
challenge drawer restricted to actions the recording contains (as the liveness evaluation does,
``shiren.eval.liveness_suite.draw_answerable``); the frames are then retimed from the real video
for the exact challenge the service signed (``live_timeline`` + ``render_live``, with the colour
flash reflected).  Everything else — signature, nonce, liveness models, matching — is real.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from shiren.eval.liveness_eval import load_source
from shiren.eval.liveness_suite import (
    SourceVideo,
    SuiteParams,
    draw_answerable,
    live_timeline,
    load_annotation,
    render_live,
)
from shiren.liveness.challenge import Challenge, Variant
from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import Level, LivenessConfig, load_config
from shiren.liveness.readdigits_session import draw_read_digits_challenge
from shiren.service.app import ChallengeDrawer, Engine
from shiren.verifier import PROFILES, Verifier

CONSENT = {
    "purpose": "credit_identity_verification",
    "version": "2026-01",
    "text_sha256": "a" * 64,
    "retention_days": 365,
}
ID_NUMBER = "11010519491231002X"
"""The GB 11643 standard's own example number (valid check digit)."""
OTHER_ID = "440524198001010013"
NAME = "张三"


def jpeg_bytes(image: np.ndarray[Any, Any], quality: int = 92) -> bytes:
    ok, blob = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [1, quality])
    assert ok
    return bytes(blob.tobytes())


def build_engine(pad: Any) -> Engine:
    """The service's engine: standard-profile verifier, liveness checker sharing it."""
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    verifier = Verifier.from_config(PROFILES["standard"].config())
    checker = LivenessChecker(
        verifier=verifier,
        tracker=MediapipeMeshTracker(get_entry("face-mesh-attention")),
        pad=pad,
        config=load_config(),
    )
    return Engine(verifier, checker)


@dataclass
class Recording:
    """The annotated live video with its meshes, and what it can answer."""

    source: SourceVideo
    params: SuiteParams

    def drawer(self) -> ChallengeDrawer:
        available = self.source.annotation.available(self.params.min_confidence)
        # Deterministic draws (seed 0, 1, …): about 1 draw in 30 asks for a sequence the
        # assembled recording answers badly (the face is lost at a cut between segments) — a
        # limit of the stand-in, not of the service — so the tests use a fixed, known sequence
        # of challenges instead of random ones, and cannot flake.
        seeds = itertools.count(0)

        def draw(
            config: LivenessConfig, level: Level, now: float, variant: Variant = Variant.LIVE
        ) -> Challenge:
            seed = next(seeds) * 997
            if variant is Variant.READ_DIGITS:
                return draw_read_digits_challenge(config, level, seed=seed, now=now)
            return draw_answerable(config, level, seed, available, now=now, variant=variant)[0]

        return draw

    def answer(self, challenge: Challenge, seed: int = 0) -> tuple[list[bytes], list[float]]:
        """JPEG frames and times answering ``challenge`` (the capture page's upload)."""
        capture = capture_source(self.source)
        timeline = live_timeline(capture, challenge, random.Random(seed), self.params)
        images, times, _ = render_live(
            capture,
            timeline,
            colours=challenge,
            gain=self.params.colour_gain,
            delay=self.params.display_delay_frames,
        )
        return [jpeg_bytes(img) for img in images], [float(t) for t in times]

    def still_frame(self) -> bytes:
        """The reference photo of "the same person": a frontal frame from the START of the
        recording (see :func:`capture_source`: captures never show this stretch's still
        frames, so reference and matched capture frame are different images, ~11 s apart)."""
        return jpeg_bytes(self.source.images[reference_index(self.source)], 95)


def reference_index(source: SourceVideo) -> int:
    return source.annotation.neutral[0].start_frame + 3


def capture_source(source: SourceVideo) -> SourceVideo:
    """The recording as the capture sees it: its still phase is drawn only from the LAST
    neutral stretch, never the first (where the reference photo comes from)."""
    return replace(
        source, annotation=replace(source.annotation, neutral=source.annotation.neutral[1:])
    )


def load_recording(frames: Any, tracker: Any) -> Recording:
    return Recording(load_source(frames, tracker, load_annotation()), SuiteParams())
