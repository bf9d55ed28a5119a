"""The capture-quality gate: is this selfie good enough to judge, and if not, what should the user
fix first?

Pure numpy/OpenCV: the caller runs the detector and the mesh and passes their results in.
:func:`assess_quality` measures exposure, backlight, blur, size, framing, pose, eye openness and
occlusion and returns a :class:`QualityReport` whose ``reasons`` are ordered by what to fix first.
Thresholds live in :class:`QualityConfig` (defaults in ``shiren/data/quality.toml``, each with its
unit and evidence).  Region statistics are taken on a crop resampled to a fixed face width
(:mod:`shiren.core.regions`), so no threshold depends on the photo's resolution.

Occlusion has no model behind it: it compares colour statistics of mesh regions with the person's
own skin (:mod:`shiren.core.occlusion`).  It is a heuristic and documented as one.

``QualityReport.metrics`` keys: ``iod_px``, ``face_width_px``, ``face_fraction``,
``outside_fraction``, ``other_face_ratio``, ``mesh_keypoint_error``; ``face_luma_p5/p50/p95``,
``face_clipped_fraction``, ``face_contrast``, ``background_luma_p50``, ``backlight_ratio``;
``blur``, ``laplacian_var_norm``; ``yaw_deg``, ``pitch_deg``, ``roll_deg``, ``ear_right``,
``ear_left``; and the occlusion scores of :func:`shiren.core.occlusion.occlusion_scores`.  A key
is absent when its check could not run (no mesh, no background, no reference skin).
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import resources
from statistics import fmean
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core import regions as rg
from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.core.occlusion import occlusion_scores
from shiren.core.pose import eye_aspect_ratio, head_pose
from shiren.errors import ConfigError, ErrorCode
from shiren.messages import message
from shiren.reasons import ReasonCode

Metrics = dict[str, float]
_R = ReasonCode

# What the user should fix first: framing, then light (colour statistics below depend on it),
# then things worn on the face, then pose, focus and eyes.
PRIORITY: tuple[ReasonCode, ...] = (
    _R.QUALITY_NO_FACE, _R.QUALITY_MULTIPLE_FACES, _R.QUALITY_FACE_CUT_OFF,
    _R.QUALITY_FACE_TOO_SMALL, _R.QUALITY_FACE_TOO_LARGE, _R.QUALITY_BACKLIGHT,
    _R.QUALITY_TOO_DARK, _R.QUALITY_OVEREXPOSED, _R.QUALITY_LOW_CONTRAST,
    _R.QUALITY_OCCLUDED_MASK, _R.QUALITY_OCCLUDED_SUNGLASSES, _R.QUALITY_OCCLUDED_HAT,
    _R.QUALITY_OCCLUDED_HAIR_EYES, _R.QUALITY_POSE_YAW, _R.QUALITY_POSE_PITCH,
    _R.QUALITY_POSE_ROLL, _R.QUALITY_BLURRED, _R.QUALITY_EYES_CLOSED,
    _R.QUALITY_LANDMARKS_UNRELIABLE,
)  # fmt: skip
_LIGHT = frozenset({_R.QUALITY_BACKLIGHT, _R.QUALITY_TOO_DARK, _R.QUALITY_OVEREXPOSED})
_BLUR_SIDE_PX = 112  # blur is judged at the resolution a face embedder sees (112 × 112 crops)
_CRETE_KERNEL_PX = 9  # re-blur kernel of Crete et al. 2007


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Every threshold of the gate; units are in the names.  See ``data/quality.toml``."""

    min_iod_px: float
    min_face_fraction: float
    max_face_fraction: float
    max_outside_fraction: float
    max_mesh_keypoint_error: float
    min_other_face_ratio: float
    min_face_luma: float
    max_face_luma: float
    max_clipped_fraction: float
    min_face_contrast: float
    min_backlight_ratio: float
    backlight_max_face_luma: float
    max_blur: float
    max_yaw_deg: float
    pitch_offset_deg: float
    max_pitch_deg: float
    max_roll_deg: float
    min_eye_aspect_ratio: float
    skin_chroma_tolerance: float
    min_mask_skin_fraction: float
    max_mask_lips_contrast: float
    max_sunglasses_orbit_luma_ratio: float
    max_sunglasses_skin_chroma_fraction: float
    min_brow_band_skin_fraction: float
    min_upper_orbit_skin_fraction: float

    @classmethod
    def default(cls) -> QualityConfig:
        """The shipped defaults from ``shiren/data/quality.toml``."""
        return _default_config()

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, base: QualityConfig | None = None
    ) -> QualityConfig:
        """``base`` (default: :meth:`default`) with the values in ``mapping`` replaced.

        Raises :class:`~shiren.errors.ConfigError` (``config.invalid``) for an unknown key (with
        a did-you-mean hint) or a value that is not a finite number.
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for key, value in mapping.items():
            if key not in known:
                hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                raise ConfigError(
                    f"unknown quality setting {key!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else ""),
                    code=ErrorCode.CONFIG_INVALID,
                    detail={"key": str(key)},
                )
            values[key] = _finite(key, value)
        return replace(base if base is not None else cls.default(), **values)


def _finite(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(
            f"quality setting {key!r} must be a finite number",
            code=ErrorCode.CONFIG_INVALID,
            detail={"key": key},
        )
    return float(value)


@cache
def _default_config() -> QualityConfig:
    text = resources.files("shiren").joinpath("data/quality.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    missing = {f.name for f in fields(QualityConfig)} - raw.keys()
    if missing:
        raise ConfigError(f"quality.toml lacks {sorted(missing)}", code=ErrorCode.CONFIG_INVALID)
    placeholder = QualityConfig(**{f.name: 0.0 for f in fields(QualityConfig)})
    return QualityConfig.from_mapping(raw, base=placeholder)


@dataclass(frozen=True)
class QualityReport:
    """The gate's verdict: ``passed`` iff no reasons; ``reasons`` ordered by what to fix first;
    ``metrics`` the measurements behind them (keys documented in ``data/quality.toml``)."""

    passed: bool
    reasons: tuple[ReasonCode, ...]
    metrics: dict[str, float]

    def to_dict(self, lang: str = "zh-CN") -> dict[str, Any]:
        """JSON-ready: ``{"passed", "reasons": [{"code", "message"}], "metrics"}``."""
        return {
            "passed": self.passed,
            "reasons": [{"code": str(r), "message": message(r, lang)} for r in self.reasons],
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
        }


def _report(found: set[ReasonCode], metrics: Metrics) -> QualityReport:
    reasons = tuple(r for r in PRIORITY if r in found)
    return QualityReport(passed=not reasons, reasons=reasons, metrics=metrics)


def no_face_report(image: RGBImage, config: QualityConfig) -> QualityReport:
    """The report when the detector found no face, with a hint if the whole frame is too dark or
    too bright (the likely reason nothing was found)."""
    luma = _luma(image)
    metrics: Metrics = {"frame_luma_p50": float(np.median(luma))}
    found = {_R.QUALITY_NO_FACE}
    if metrics["frame_luma_p50"] < config.min_face_luma:
        found.add(_R.QUALITY_TOO_DARK)
    elif metrics["frame_luma_p50"] > config.max_face_luma:
        found.add(_R.QUALITY_OVEREXPOSED)
    return _report(found, metrics)


def assess_quality(
    image: RGBImage,
    face: Detection,
    mesh: FloatArray | None,
    *,
    all_faces: Sequence[Detection],
    config: QualityConfig,
) -> QualityReport:
    """Judge the capture of ``face`` (one of ``all_faces``) in ``image`` (RGB uint8).

    ``mesh`` is the ``(478, 2|3)`` MediaPipe mesh in image px, or ``None`` when the landmarker
    failed; then only box-based checks run and ``quality.landmarks_unreliable`` is reported.
    """
    metrics: Metrics = {}
    mesh = _reliable_mesh(mesh, face, config, metrics)
    crop = rg.face_crop(image, face.box, mesh)
    found = _framing(image, face, mesh, all_faces, config, metrics)
    found |= _exposure(crop, config, metrics)
    found |= _sharpness(image, face.box, config, metrics)
    if mesh is None:
        found.add(_R.QUALITY_LANDMARKS_UNRELIABLE)
        return _report(found, metrics)
    found |= _pose_and_eyes(mesh, image, config, metrics)
    if not found & (_LIGHT | {_R.QUALITY_POSE_YAW, _R.QUALITY_FACE_CUT_OFF}):
        found |= _occlusion(crop, config, metrics)
    return _report(found, metrics)


# ---- landmarks -------------------------------------------------------------------------------


def _reliable_mesh(
    mesh: FloatArray | None, face: Detection, config: QualityConfig, metrics: Metrics
) -> FloatArray | None:
    """The mesh, or ``None`` when its eye centres disagree with the detector's eye keypoints by
    more than ``max_mesh_keypoint_error`` inter-ocular distances (a mesh fitted to the wrong
    thing)."""
    if mesh is None or mesh.shape[0] < 468:
        return None
    if face.keypoints.shape[0] < 2:
        return mesh
    eyes = np.stack([mesh[list(rg.RIGHT_EYE), :2].mean(0), mesh[list(rg.LEFT_EYE), :2].mean(0)])
    iod = float(np.linalg.norm(face.keypoints[1] - face.keypoints[0]))
    error = float(np.linalg.norm(eyes - face.keypoints[:2], axis=1).max()) / max(iod, 1.0)
    metrics["mesh_keypoint_error"] = error
    return mesh if error <= config.max_mesh_keypoint_error else None


# ---- framing: size, cut-off, other faces ---------------------------------------------------------


def _framing(
    image: RGBImage,
    face: Detection,
    mesh: FloatArray | None,
    all_faces: Sequence[Detection],
    config: QualityConfig,
    metrics: Metrics,
) -> set[ReasonCode]:
    height, width = image.shape[:2]
    box = face.box
    metrics["iod_px"] = _iod_px(face, mesh)
    metrics["face_width_px"] = box.width
    face_w, face_h = _face_extent(box, mesh)
    metrics["face_fraction"] = max(face_w / width, face_h / height)
    metrics["outside_fraction"] = _outside_fraction(box, mesh, width, height)
    metrics["other_face_ratio"] = _other_face_ratio(face, all_faces)
    checks = {
        _R.QUALITY_MULTIPLE_FACES: metrics["other_face_ratio"] >= config.min_other_face_ratio,
        _R.QUALITY_FACE_CUT_OFF: metrics["outside_fraction"] > config.max_outside_fraction,
        _R.QUALITY_FACE_TOO_SMALL: metrics["iod_px"] < config.min_iod_px
        or metrics["face_fraction"] < config.min_face_fraction,
        _R.QUALITY_FACE_TOO_LARGE: metrics["face_fraction"] > config.max_face_fraction,
    }
    return {reason for reason, failed in checks.items() if failed}


def _iod_px(face: Detection, mesh: FloatArray | None) -> float:
    """Inter-ocular distance (eye centre to eye centre) in image px."""
    if mesh is not None and mesh.shape[0] > rg.LEFT_IRIS_CENTRE:
        right, left = mesh[rg.RIGHT_IRIS_CENTRE, :2], mesh[rg.LEFT_IRIS_CENTRE, :2]
    elif face.keypoints.shape[0] >= 2:
        right, left = face.keypoints[0], face.keypoints[1]
    else:
        return face.box.width * 0.4  # BlazeFace boxes are ≈ 2.5 IOD wide
    return float(np.linalg.norm(left - right))


def _face_extent(box: BBox, mesh: FloatArray | None) -> tuple[float, float]:
    """Width and height of the face: of the mesh's 468 points, else of the detector's box.

    The mesh is used when there is one because detector boxes depend on the model (the
    short-range and full-range BlazeFace models frame the same face differently, and the
    short-range one returns an oversized box for a face far below its range) while the mesh
    outlines the face itself.  On the clean set of the real-image tests the mesh spans 0.92 x
    the short-range box's width and 1.06 x its height (p5-p95 0.84-0.98, 1.00-1.13), so the
    thresholds read about the same either way."""
    if mesh is not None:
        span = np.ptp(mesh[:468, :2], axis=0)
        return float(span[0]), float(span[1])
    return box.width, box.height


def _outside_fraction(box: BBox, mesh: FloatArray | None, width: int, height: int) -> float:
    """Share of the face outside the image: of the mesh points, else of the box's area."""
    if mesh is not None:
        xy = mesh[:468, :2]
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
        return float(1.0 - inside.mean())
    return 1.0 - box.clipped(width, height).area / box.area if box.area > 0 else 1.0


def _other_face_ratio(face: Detection, all_faces: Sequence[Detection]) -> float:
    """Size (√area) of the largest *other* face relative to ``face``; 0 when there is none.
    A small face on a poster behind the user stays below the threshold."""
    ratios = [
        math.sqrt(other.box.area / face.box.area)
        for other in all_faces
        if other.box.iou(face.box) < 0.3 and face.box.area > 0
    ]
    return max(ratios, default=0.0)


# ---- exposure --------------------------------------------------------------------------------


def _luma(rgb: RGBImage) -> npt.NDArray[np.float32]:
    """BT.601 luma in [0, 255]."""
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.float32)


def _exposure(crop: rg.FaceCrop, config: QualityConfig, metrics: Metrics) -> set[ReasonCode]:
    luma = _luma(crop.pixels)
    skin = luma[rg.skin_mask(crop)]
    if skin.size == 0:
        return set()
    p5, p50, p95 = (float(v) for v in np.percentile(skin, [5, 50, 95]))
    inner = _box_pixels(luma, crop.box)
    background = luma[rg.background_ring(crop)]
    metrics.update(
        face_luma_p5=p5,
        face_luma_p50=p50,
        face_luma_p95=p95,
        face_clipped_fraction=float((skin >= 250).mean()),
        face_contrast=float(np.percentile(inner, 95) - np.percentile(inner, 5)),
    )
    found = set()
    if background.size > 0:
        metrics["background_luma_p50"] = float(np.median(background))
        metrics["backlight_ratio"] = metrics["background_luma_p50"] / max(p50, 1.0)
        if (
            metrics["backlight_ratio"] >= config.min_backlight_ratio
            and p50 < config.backlight_max_face_luma
        ):
            found.add(_R.QUALITY_BACKLIGHT)
    if p50 < config.min_face_luma:
        found.add(_R.QUALITY_TOO_DARK)
    if p50 > config.max_face_luma or metrics["face_clipped_fraction"] > config.max_clipped_fraction:
        found.add(_R.QUALITY_OVEREXPOSED)
    if metrics["face_contrast"] < config.min_face_contrast and not found:
        found.add(_R.QUALITY_LOW_CONTRAST)
    return found


def _box_pixels(values: npt.NDArray[np.float32], box: BBox) -> npt.NDArray[np.float32]:
    clipped = box.clipped(values.shape[1], values.shape[0])
    part = values[int(clipped.y0) : math.ceil(clipped.y1), int(clipped.x0) : math.ceil(clipped.x1)]
    return part.ravel() if part.size else values.ravel()


# ---- sharpness -------------------------------------------------------------------------------


def _sharpness(
    image: RGBImage, box: BBox, config: QualityConfig, metrics: Metrics
) -> set[ReasonCode]:
    height, width = image.shape[:2]
    square = box.square().clipped(width, height)
    x0, y0 = int(square.x0), int(square.y0)
    x1, y1 = max(x0 + 1, math.ceil(square.x1)), max(y0 + 1, math.ceil(square.y1))
    side = (_BLUR_SIDE_PX, _BLUR_SIDE_PX)
    crop = cv2.resize(image[y0:y1, x0:x1], side, interpolation=cv2.INTER_AREA)
    gray = _luma(np.asarray(crop, dtype=np.uint8))
    metrics["blur"] = crete_blur(gray)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    metrics["laplacian_var_norm"] = float(lap.var() / max(float(gray.var()), 1.0))
    return {_R.QUALITY_BLURRED} if metrics["blur"] > config.max_blur else set()


def crete_blur(gray: npt.NDArray[np.float32]) -> float:
    """No-reference blur in [0, 1] (0 sharp, 1 fully blurred): how much of the image's
    neighbour-to-neighbour variation survives re-blurring (Crete, Dolmiere, Ladret, Nicolas,
    "The blur effect", SPIE 6492, 2007).  Nearly independent of contrast and brightness."""
    scores = []
    for axis, ksize in ((0, (1, _CRETE_KERNEL_PX)), (1, (_CRETE_KERNEL_PX, 1))):
        blurred = cv2.blur(gray, ksize)
        d_orig = np.abs(np.diff(gray, axis=axis))
        d_blur = np.abs(np.diff(blurred, axis=axis))
        total = float(d_orig.sum())
        lost = float(np.maximum(0.0, d_orig - d_blur).sum())
        scores.append((total - lost) / total if total > 0 else 1.0)
    return max(scores)


# ---- pose and eyes ---------------------------------------------------------------------------


def _pose_and_eyes(
    mesh: FloatArray, image: RGBImage, config: QualityConfig, metrics: Metrics
) -> set[ReasonCode]:
    pose = head_pose(mesh, (image.shape[1], image.shape[0]))
    metrics.update(yaw_deg=pose.yaw_deg, pitch_deg=pose.pitch_deg, roll_deg=pose.roll_deg)
    metrics["ear_right"] = eye_aspect_ratio(mesh, "right")
    metrics["ear_left"] = eye_aspect_ratio(mesh, "left")
    checks = {
        _R.QUALITY_POSE_YAW: abs(pose.yaw_deg) > config.max_yaw_deg,
        _R.QUALITY_POSE_PITCH: abs(pose.pitch_deg - config.pitch_offset_deg) > config.max_pitch_deg,
        _R.QUALITY_POSE_ROLL: abs(pose.roll_deg) > config.max_roll_deg,
        # The mean of both eyes: the mesh sometimes reads one shut eye as half open (0.04 / 0.15
        # on a real blink), which "both below" would miss.
        _R.QUALITY_EYES_CLOSED: (metrics["ear_right"] + metrics["ear_left"]) / 2
        < config.min_eye_aspect_ratio,
    }
    return {reason for reason, failed in checks.items() if failed}


# ---- occlusion -------------------------------------------------------------------------------


def _occlusion(crop: rg.FaceCrop, config: QualityConfig, metrics: Metrics) -> set[ReasonCode]:
    """Decisions over :func:`shiren.core.occlusion.occlusion_scores` (heuristics, see there)."""
    scores = occlusion_scores(crop, config.skin_chroma_tolerance)
    metrics.update(scores)
    if not scores:
        return set()
    sides = ("right", "left")
    band = {side: scores[f"brow_band_skin_fraction_{side}"] for side in sides}
    checks = {
        _R.QUALITY_OCCLUDED_MASK: scores["lips_contrast"] < config.max_mask_lips_contrast
        or scores["mask_skin_fraction"] < config.min_mask_skin_fraction,
        _R.QUALITY_OCCLUDED_SUNGLASSES: max(scores[f"orbit_luma_ratio_{s}"] for s in sides)
        < config.max_sunglasses_orbit_luma_ratio
        and fmean(scores[f"orbit_skin_chroma_fraction_{s}"] for s in sides)
        < config.max_sunglasses_skin_chroma_fraction,
        _R.QUALITY_OCCLUDED_HAT: max(band.values()) < config.min_brow_band_skin_fraction,
        _R.QUALITY_OCCLUDED_HAIR_EYES: any(
            scores[f"upper_orbit_skin_fraction_{side}"] < config.min_upper_orbit_skin_fraction
            and band[side] < config.min_brow_band_skin_fraction
            for side in sides
        ),
    }
    # Hair over one eye is the residual explanation: a brim's shadow or dark lenses come first.
    if checks[_R.QUALITY_OCCLUDED_SUNGLASSES] or checks[_R.QUALITY_OCCLUDED_HAT]:
        checks[_R.QUALITY_OCCLUDED_HAIR_EYES] = False
    return {reason for reason, failed in checks.items() if failed}


__all__ = [
    "PRIORITY",
    "QualityConfig",
    "QualityReport",
    "assess_quality",
    "crete_blur",
    "no_face_report",
]
