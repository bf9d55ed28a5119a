"""The quality gate's pure parts on synthetic images: config, ordering, serialisation, the
box-only path (no mesh), the mesh sanity check, exposure, backlight, blur, framing.

Mesh-region checks (pose, eyes, occlusion) need real meshes and are covered by
``tests/integration/test_quality_real.py``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import fields
from importlib import resources
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.core.geometry import BBox, Detection, RGBImage
from shiren.core.quality import (
    PRIORITY,
    QualityConfig,
    QualityReport,
    assess_quality,
    crete_blur,
    no_face_report,
)
from shiren.errors import ConfigError, ErrorCode
from shiren.reasons import ReasonCode

R = ReasonCode
CONFIG = QualityConfig.default()
FIELDS = [f.name for f in fields(QualityConfig)]


# ---- synthetic scenes --------------------------------------------------------------------------


def _face(x0: float = 220, y0: float = 140, side: float = 200, score: float = 0.9) -> Detection:
    """A detection with BlazeFace-like eye keypoints (≈ 0.4 box widths apart)."""
    eyes = np.array(
        [[x0 + 0.3 * side, y0 + 0.35 * side], [x0 + 0.7 * side, y0 + 0.35 * side]], dtype=np.float32
    )
    return Detection(BBox(x0, y0, x0 + side, y0 + side), score, eyes)


def _scene(
    face: Detection,
    *,
    skin: float = 150.0,
    background: float = 110.0,
    size: tuple[int, int] = (640, 480),
) -> RGBImage:
    """A textured background and a textured skin-coloured ellipse for the face."""
    rng = np.random.default_rng(7)
    width, height = size
    image = np.empty((height, width, 3), np.float32)
    image[:] = background
    image += rng.normal(0, 12, image.shape)
    canvas = np.zeros((height, width), np.uint8)
    cx, cy = face.box.center
    cv2.ellipse(
        canvas,
        (int(cx), int(cy)),
        (int(face.box.width * 0.55), int(face.box.height * 0.65)),
        0,
        0,
        360,
        1,
        -1,
    )
    tone = np.array([1.15, 0.95, 0.8], np.float32) * skin
    texture = rng.normal(0, 18, image.shape).astype(np.float32)
    image[canvas.astype(bool)] = (tone + texture)[canvas.astype(bool)]
    for ex, ey in face.keypoints:  # dark eyes and a mouth give the face some structure
        cv2.circle(image, (int(ex), int(ey)), int(face.box.width * 0.06), (40, 30, 30), -1)
    cv2.line(
        image,
        (int(cx - 30), int(face.box.y0 + 0.75 * face.box.height)),
        (int(cx + 30), int(face.box.y0 + 0.75 * face.box.height)),
        (90, 40, 40),
        6,
    )
    return np.asarray(image.clip(0, 255), dtype=np.uint8)


def _assess(
    image: RGBImage, face: Detection, faces: list[Detection] | None = None, **overrides: float
) -> QualityReport:
    config = QualityConfig.from_mapping(overrides) if overrides else CONFIG
    return assess_quality(
        image, face, None, all_faces=faces if faces is not None else [face], config=config
    )


# ---- configuration -----------------------------------------------------------------------------


def test_toml_holds_exactly_the_config_fields() -> None:
    text = resources.files("shiren").joinpath("data/quality.toml").read_text(encoding="utf-8")
    assert set(tomllib.loads(text)) == set(FIELDS)


def test_every_default_is_finite() -> None:
    assert all(math.isfinite(getattr(CONFIG, name)) for name in FIELDS)


def test_every_threshold_is_documented_in_the_toml() -> None:
    """Each key sits under a comment block (keys that share a block follow each other)."""
    lines = (
        resources.files("shiren")
        .joinpath("data/quality.toml")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    for name in FIELDS:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name} ="))
        while lines[index - 1].split(" =")[0] in FIELDS:
            index -= 1
        assert lines[index - 1].startswith("#"), name


def test_from_mapping_overrides_defaults() -> None:
    config = QualityConfig.from_mapping({"max_yaw_deg": 10, "max_blur": 0.5})
    assert (config.max_yaw_deg, config.max_blur) == (10.0, 0.5)
    assert config.min_face_luma == CONFIG.min_face_luma


def test_unknown_keys_are_config_errors_with_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        QualityConfig.from_mapping({"max_yaw": 10})
    assert caught.value.code == ErrorCode.CONFIG_INVALID
    assert "max_yaw_deg" in caught.value.message


@pytest.mark.parametrize("value", ["20", None, True, float("nan"), float("inf"), [1]])
def test_non_numbers_are_config_errors(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        QualityConfig.from_mapping({"max_yaw_deg": value})
    assert caught.value.code == ErrorCode.CONFIG_INVALID


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), st.floats(allow_nan=False, allow_infinity=False)))
def test_any_known_subset_round_trips(overrides: dict[str, float]) -> None:
    config = QualityConfig.from_mapping(overrides)
    assert all(getattr(config, key) == value for key, value in overrides.items())


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        CONFIG.max_blur = 1.0  # type: ignore[misc]


# ---- report ----------------------------------------------------------------------------------


def test_priority_lists_every_quality_reason_once() -> None:
    quality = [code for code in ReasonCode if str(code).startswith("quality.")]
    assert sorted(PRIORITY) == sorted(quality)
    assert len(set(PRIORITY)) == len(PRIORITY)


def test_report_serialises_codes_messages_and_metrics() -> None:
    report = QualityReport(False, (R.QUALITY_TOO_DARK, R.QUALITY_BLURRED), {"blur": 0.712345})
    data = report.to_dict("en")
    assert data == {
        "passed": False,
        "reasons": [
            {"code": "quality.too_dark", "message": "Too dark. Move to bright, even light."},
            {
                "code": "quality.blurred",
                "message": "Blurry. Hold the phone still and let it focus.",
            },
        ],
        "metrics": {"blur": 0.7123},
    }
    assert report.to_dict()["reasons"][0]["message"].startswith("光线太暗")


# ---- the box-only path -------------------------------------------------------------------------


def test_without_a_mesh_only_box_checks_run_and_landmarks_are_reported_last() -> None:
    face = _face()
    report = _assess(_scene(face), face)
    assert report.reasons == (R.QUALITY_LANDMARKS_UNRELIABLE,)
    assert "yaw_deg" not in report.metrics
    assert "mask_skin_fraction" not in report.metrics
    assert report.metrics["iod_px"] == pytest.approx(0.4 * 200, rel=1e-3)


def test_a_mesh_that_misses_the_detected_eyes_is_ignored() -> None:
    face = _face()
    mesh = np.zeros((478, 3), np.float32)  # every point in the corner, far from the eyes
    report = assess_quality(_scene(face), face, mesh, all_faces=[face], config=CONFIG)
    assert R.QUALITY_LANDMARKS_UNRELIABLE in report.reasons
    assert report.metrics["mesh_keypoint_error"] > CONFIG.max_mesh_keypoint_error


def test_dark_scene_is_too_dark() -> None:
    face = _face()
    report = _assess(_scene(face, skin=20, background=20), face)
    assert report.reasons[0] == R.QUALITY_TOO_DARK


def test_bright_scene_is_overexposed() -> None:
    face = _face()
    report = _assess(_scene(face, skin=240, background=200), face)
    assert R.QUALITY_OVEREXPOSED in report.reasons


def test_dim_face_before_a_bright_window_is_backlit_and_reported_first() -> None:
    face = _face()
    report = _assess(_scene(face, skin=30, background=245), face)
    assert report.reasons[:2] == (R.QUALITY_BACKLIGHT, R.QUALITY_TOO_DARK)
    assert report.metrics["backlight_ratio"] > CONFIG.min_backlight_ratio


def test_well_lit_dark_skin_is_not_too_dark() -> None:
    face = _face()
    report = _assess(_scene(face, skin=60, background=200), face)
    assert R.QUALITY_TOO_DARK not in report.reasons
    assert R.QUALITY_BACKLIGHT not in report.reasons


def test_flat_grey_face_is_low_contrast() -> None:
    face = _face()
    scene = (_scene(face).astype(np.float32) * 0.1 + 120).astype(np.uint8)
    assert R.QUALITY_LOW_CONTRAST in _assess(scene, face).reasons


def test_blurred_scene_is_blurred_and_sharp_is_not() -> None:
    face = _face()
    sharp = _scene(face)
    assert R.QUALITY_BLURRED not in _assess(sharp, face).reasons
    blurred = np.asarray(cv2.GaussianBlur(sharp, (0, 0), 8), dtype=np.uint8)
    assert R.QUALITY_BLURRED in _assess(blurred, face).reasons


def test_blur_score_does_not_depend_on_resolution() -> None:
    face, big_face = _face(), _face(440, 280, 400)
    small = _assess(_scene(face), face).metrics["blur"]
    upscaled = cv2.resize(_scene(face), (1280, 960), interpolation=cv2.INTER_CUBIC)
    big = _assess(np.asarray(upscaled, dtype=np.uint8), big_face).metrics["blur"]
    assert abs(small - big) < 0.15


def test_small_face_in_a_big_frame_is_too_small() -> None:
    face = _face(600, 500, 60)
    report = _assess(_scene(face, size=(1600, 1200)), face)
    assert R.QUALITY_FACE_TOO_SMALL in report.reasons


def test_face_filling_the_frame_is_too_large() -> None:
    face = _face(20, 20, 440)
    assert R.QUALITY_FACE_TOO_LARGE in _assess(_scene(face), face).reasons


def test_face_leaving_the_frame_is_cut_off() -> None:
    face = _face(-90, 140, 200)
    report = _assess(_scene(face), face)
    assert R.QUALITY_FACE_CUT_OFF in report.reasons
    assert report.metrics["outside_fraction"] == pytest.approx(0.45, abs=0.01)


@pytest.mark.parametrize(("other_side", "expected"), [(60.0, False), (180.0, True)])
def test_other_faces_count_only_when_big_enough(other_side: float, expected: bool) -> None:
    face, other = _face(60, 140, 200), _face(400, 100, other_side)
    report = _assess(_scene(face), face, [face, other])
    assert (R.QUALITY_MULTIPLE_FACES in report.reasons) is expected
    assert report.metrics["other_face_ratio"] == pytest.approx(other_side / 200)


def test_the_chosen_face_is_not_its_own_second_face() -> None:
    face = _face()
    duplicate = Detection(BBox(222, 141, 421, 339), 0.8, face.keypoints)
    assert _assess(_scene(face), face, [face, duplicate]).metrics["other_face_ratio"] == 0.0


def test_no_face_report_hints_at_the_light() -> None:
    dark = np.full((100, 100, 3), 10, np.uint8)
    assert no_face_report(dark, CONFIG).reasons == (R.QUALITY_NO_FACE, R.QUALITY_TOO_DARK)
    grey = np.full((100, 100, 3), 128, np.uint8)
    assert no_face_report(grey, CONFIG).reasons == (R.QUALITY_NO_FACE,)
    assert not no_face_report(grey, CONFIG).passed


# ---- the blur metric ---------------------------------------------------------------------------


def test_crete_blur_orders_sharp_below_blurred() -> None:
    rng = np.random.default_rng(0)
    sharp = (rng.random((112, 112)) * 255).astype(np.float32)
    blurred = [np.asarray(cv2.GaussianBlur(sharp, (0, 0), s), np.float32) for s in (1, 2, 4)]
    scores = [crete_blur(image) for image in (sharp, *blurred)]
    assert scores == sorted(scores)
    assert scores[0] < 0.3
    assert scores[-1] > 0.7


def test_crete_blur_ignores_contrast_and_brightness() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.random((112, 112)) * 255).astype(np.float32)
    image = np.asarray(cv2.GaussianBlur(noise, (0, 0), 1.0), dtype=np.float32)
    assert crete_blur(image) == pytest.approx(crete_blur(image * 0.3 + 50), abs=0.01)


def test_crete_blur_of_a_flat_image_is_fully_blurred() -> None:
    assert crete_blur(np.full((112, 112), 90, np.float32)) == 1.0
