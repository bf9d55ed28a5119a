"""The injection check's signals on small real slices: a talking-face clip's frames, a real
Chromium timer trace, the real face mesh for the flash (shiren.liveness.injection*)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from shiren.core.geometry import RGBImage
from shiren.eval.injection_material import DEFAULT_TRACES, load_traces
from shiren.eval.injection_sim import NoiseBank, jpeg_recode
from shiren.eval.suite_effects import face_mask, jpeg, reflect
from shiren.liveness.challenge import Challenge, ColourStep, draw_challenge
from shiren.liveness.config import Level, load_config
from shiren.liveness.frames import FrameSequence, validate
from shiren.liveness.injection import (
    CAMERA_LABEL_SUB_KIND,
    assess_injection,
    judge,
    measure_injection,
    virtual_camera_label,
)
from shiren.liveness.injection_config import (
    FeatureThreshold,
    FlashLatency,
    InjectionThresholds,
    PageProtocol,
)
from shiren.liveness.injection_flash import flash_features
from shiren.liveness.injection_frames import grid_features, repeat_features
from shiren.liveness.injection_timing import UploadTiming, timing_features
from shiren.liveness.signals import face_signals
from shiren.reasons import ReasonCode
from tests.conftest import SHARED, require

CLIP = SHARED / "grid_talking_faces" / "P08_bbaf2n.mpg"
NOW = 1_800_000_000.0


def _decode(path: Path, count: int) -> list[RGBImage]:
    capture = cv2.VideoCapture(str(require(path)))
    out: list[RGBImage] = []
    while len(out) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    capture.release()
    return out


@pytest.fixture(scope="module")
def clip() -> list[RGBImage]:
    """The first 40 frames of a real talking-face clip (360×288, 25 fps)."""
    return _decode(CLIP, 40)


@pytest.fixture(scope="module")
def challenge() -> Challenge:
    return draw_challenge(load_config(), Level.NORMAL, seed=3, now=NOW)


def _camera(frames: list[RGBImage], keys: list[int], seed: int = 0) -> list[RGBImage]:
    """Each delivered frame with fresh sensor noise (``keys``: one per delivered frame), then
    the page's JPEG."""
    bank = NoiseBank(frames[0].shape[:2], seed)
    return [jpeg(bank.add(f, ("cam", k), 1.5), 85) for f, k in zip(frames, keys, strict=True)]


# -- timing ---------------------------------------------------------------------------------


def test_a_real_page_trace_looks_like_the_page(challenge: Challenge) -> None:
    traces, meta = load_traces(require(DEFAULT_TRACES))
    assert meta["frame_interval_ms"] == PageProtocol().frame_interval_ms
    end = challenge.duration_ms + 300
    times = [t for t in traces[0] if t < end]
    got = timing_features(times, challenge, PageProtocol())
    assert got.timer_mismatch < 0.01
    assert got.off_resolution == 0.0
    assert got.jitter_ms > 0.05  # a browser timer jitters
    assert got.schedule_ms < 20.0
    assert got.upload_deficit_s is None


def test_a_recordings_own_timeline_does_not(challenge: Challenge) -> None:
    times = [i * 1000.0 / 15.0 for i in range(int((challenge.duration_ms + 300) * 15 / 1000))]
    got = timing_features(times, challenge, PageProtocol())
    assert got.timer_mismatch > 0.1  # 66.7 ms, not the page's 80
    assert got.off_resolution > 0.5  # not on the 0.1 ms grid
    assert got.jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert got.schedule_ms >= 79.0  # starts at 0, not one tick in


def test_upload_deficit_is_claimed_filming_minus_server_time(challenge: Challenge) -> None:
    times = [80.0 * k for k in range(1, 120)]
    started = NOW + 5.0
    honest = UploadTiming(started, started + times[-1] / 1000.0 + 1.2)
    hurried = UploadTiming(started, started + 1.5)
    assert timing_features(times, challenge, PageProtocol(), honest).upload_deficit_s == (
        pytest.approx(-1.2)
    )
    deficit = timing_features(times, challenge, PageProtocol(), hurried).upload_deficit_s
    assert deficit == pytest.approx(times[-1] / 1000.0 - 1.5)
    assert (
        timing_features(times, challenge, PageProtocol(), UploadTiming(None, NOW)).upload_deficit_s
        is None
    )


# -- repeated frames ------------------------------------------------------------------------


def test_fresh_noise_never_repeats_even_on_a_still_face(clip: list[RGBImage]) -> None:
    still = [clip[0]] * 12  # the same content twelve times, as a still face would give
    got = repeat_features(_camera(still, list(range(12))))
    assert got.repeat_fraction == 0.0
    assert got.adjacent_duplicates == 0


def test_a_loop_repeats_pixel_for_pixel(clip: list[RGBImage]) -> None:
    recorded = _camera(clip[:10], list(range(10)))  # a recording: its noise is baked in
    looped = recorded + recorded  # played twice
    got = repeat_features(looped)
    assert got.repeat_fraction == pytest.approx(0.5)
    pingpong = recorded + recorded[-2::-1]
    assert repeat_features(pingpong).repeated_frames == 9


def test_a_camera_slower_than_the_timer_gives_adjacent_runs_only(clip: list[RGBImage]) -> None:
    delivered = _camera(clip[:8], list(range(8)))
    grabbed = [delivered[k // 2] for k in range(16)]  # each camera frame grabbed twice
    got = repeat_features(grabbed)
    assert got.adjacent_duplicates == 8
    assert got.repeat_fraction == 0.0


# -- grids ----------------------------------------------------------------------------------


def test_an_extra_encode_on_the_pages_grid_raises_its_block_edges(clip: list[RGBImage]) -> None:
    bank = NoiseBank(clip[0].shape[:2], 1)
    fresh = [bank.add(f, ("cam", k), 1.5) for k, f in enumerate(clip[:24])]
    once = [jpeg(f, 85) for f in fresh]
    twice = [jpeg(jpeg_recode(f, 50, (0, 0)), 85) for f in fresh]
    shifted = [jpeg(jpeg_recode(f, 50, (3, 5)), 85) for f in fresh]
    base = grid_features(once).grid_aligned
    assert grid_features(twice).grid_aligned > base * 1.1
    assert grid_features(shifted).grid_aligned < base


def test_an_upscale_leaves_a_foreign_period(clip: list[RGBImage]) -> None:
    bank = NoiseBank(clip[0].shape[:2], 2)
    fresh = [bank.add(f, ("cam", k), 1.5) for k, f in enumerate(clip[:24])]
    native = grid_features([jpeg(f, 85) for f in fresh])
    up = [cv2.resize(f, None, fx=5 / 3, fy=5 / 3, interpolation=cv2.INTER_LINEAR) for f in fresh]
    upscaled = grid_features([jpeg(np.ascontiguousarray(f[:288, :600]), 85) for f in up])
    assert upscaled.grid_foreign > native.grid_foreign
    assert native.frames_used == 8  # GRID_FRAMES pairs of consecutive frames (of 23)


# -- the flash ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracker() -> Any:
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    return MediapipeMeshTracker(get_entry("face-mesh-attention"))


def _flash_session(
    clip: list[RGBImage], tracker: Any, lag_ms: float | None
) -> tuple[Challenge, FrameSequence, Any]:
    """40 frames of the clip at 80 ms, lit by a 6-colour flash seen ``lag_ms`` late (None: no
    reflection at all), through the page's JPEG."""
    base = draw_challenge(load_config(), Level.NORMAL, seed=11, now=NOW)
    steps = tuple(
        ColourStep(name, rgb, 800 + 300 * k, 1100 + 300 * k)
        for k, (name, rgb) in enumerate(
            [("red", (255, 0, 0)), ("cyan", (0, 255, 255)), ("blue", (0, 0, 255)),
             ("yellow", (255, 255, 0)), ("green", (0, 255, 0)), ("magenta", (255, 0, 255))]
        )
    )  # fmt: skip
    challenge = replace(base, colours=steps)
    times = [80.0 * (k + 1) for k in range(len(clip))]
    meshes = tracker.track(clip)
    images = []
    for img, mesh, t in zip(clip, meshes, times, strict=True):
        step = None if lag_ms is None else challenge.colour_at(t - lag_ms)
        lit = img
        if step is not None and mesh is not None:
            lit = reflect(img, face_mask(img.shape, mesh), step.rgb, 0.08)
        images.append(jpeg(lit, 85))
    frames = validate(images, times, load_config().frames, nonce=challenge.nonce)
    signals = face_signals(tracker.track(images), times, frames.size)
    return challenge, frames, signals


def test_a_live_reflection_answers_inside_the_band(clip: list[RGBImage], tracker: Any) -> None:
    challenge, frames, signals = _flash_session(clip, tracker, 100.0)
    got = flash_features(challenge, frames, signals, FlashLatency())
    assert got.measured
    assert got.flash_response is not None
    assert got.flash_response > 0.8
    assert got.flash_lag_outside_ms == 0.0


def test_no_reflection_is_no_response(clip: list[RGBImage], tracker: Any) -> None:
    challenge, frames, signals = _flash_session(clip, tracker, None)
    got = flash_features(challenge, frames, signals, FlashLatency())
    assert got.flash_response is not None
    assert got.flash_response < 0.5


def test_a_reflection_before_the_flash_is_outside_the_band(
    clip: list[RGBImage], tracker: Any
) -> None:
    challenge, frames, signals = _flash_session(clip, tracker, -250.0)  # answers too early
    got = flash_features(challenge, frames, signals, FlashLatency())
    assert got.flash_lag_outside_ms is not None
    assert got.flash_lag_outside_ms > 100.0
    assert got.best_lag_ms is not None
    assert got.best_lag_ms < 0


# -- judging --------------------------------------------------------------------------------


def _frames(clip: list[RGBImage], challenge: Challenge) -> FrameSequence:
    times = [80.0 * (k + 1) for k in range(12)]
    return validate(
        _camera(clip[:12], list(range(12))), times, load_config().frames, nonce=challenge.nonce
    )


def test_judge_fires_per_feature_and_names_the_sub_kind(
    clip: list[RGBImage], challenge: Challenge
) -> None:
    frames = _frames(clip, challenge)
    feats = measure_injection(challenge, frames, upload=UploadTiming(NOW, NOW + 0.3))
    assert feats.values["flash_response"] is None  # no face signals given: not measured
    lines = InjectionThresholds(features={"upload_deficit_s": FeatureThreshold(0.25, 1.0)})
    result = judge(feats, lines)
    assert result.suspected
    assert result.reasons == (ReasonCode.LIVENESS_INJECTION_SUSPECTED,)
    assert result.sub_kinds == ("timing.upload_too_early",)
    assert result.score is not None
    assert result.score > 0
    calm = judge(
        feats, InjectionThresholds(features={"jitter_ms": FeatureThreshold(-1.0, 1.0, "low")})
    )
    assert not calm.suspected
    assert calm.reasons == ()
    assert calm.score is not None
    assert calm.score < 0
    assert set(result.evidence()) >= {"suspected", "sub_kinds", "features", "details"}


def test_a_virtual_camera_label_is_a_weak_signal_only(
    clip: list[RGBImage], challenge: Challenge
) -> None:
    frames = _frames(clip, challenge)
    none = InjectionThresholds(features={})
    result = assess_injection(challenge, frames, camera_label="OBS Virtual Camera", thresholds=none)
    assert not result.suspected
    assert result.review_suggested
    assert result.reasons == (ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL,)
    assert CAMERA_LABEL_SUB_KIND in result.sub_kinds
    assert virtual_camera_label("v4l2loopback: Dummy video device")
    assert not virtual_camera_label("FaceTime HD Camera")
    assert not virtual_camera_label(None)


def test_thresholds_from_a_report_are_validated() -> None:
    th = InjectionThresholds.from_mapping(
        {"jitter_ms": {"threshold": 0.1, "scale": 0.05, "direction": "low"}}
    )
    assert th.features["jitter_ms"] == FeatureThreshold(0.1, 0.05, "low")
    with pytest.raises(ValueError, match="direction"):
        InjectionThresholds.from_mapping({"x": {"threshold": 1, "direction": "up"}})
    with pytest.raises(ValueError, match="scale"):
        InjectionThresholds.from_mapping({"x": {"threshold": 1, "scale": 0}})
    assert math.isfinite(InjectionThresholds().features["repeat_fraction"].threshold)
