"""Image effects of the liveness suite: the flash's reflection, JPEG, a pasted face, the upload.

The fake camera cannot see the screen, so the colour flash's reflection on the skin is
*simulated* (:func:`reflect` inside :func:`face_mask`, the colour seen ``delay`` frames late:
:func:`screen_colour`); every report built from these sessions must say so.  :func:`paste_face`
does what a face-swap tool does; :func:`jpeg` and :func:`session_frames` give frames the
treatment an upload gets (re-encoding, the checker's frame validation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from shiren.core.align import dlib5_from_mesh, similarity_transform
from shiren.core.geometry import FloatArray, RGBImage
from shiren.eval.suite_annotation import suite_error
from shiren.eval.suite_material import MESH_FACE_POINTS, Photo
from shiren.liveness.challenge import Challenge
from shiren.liveness.config import LivenessConfig
from shiren.liveness.frames import FrameSequence, validate


def face_mask(shape: tuple[int, ...], points: FloatArray, feather: float = 0.12) -> np.ndarray:
    """A feathered ellipse (float32 in [0, 1]) fitted to the face's mesh points.

    The feather (a Gaussian of ``feather`` × the ellipse's short axis) avoids a visible seam
    where a reflection or a pasted face ends.
    """
    h, w = shape[:2]
    pts = np.ascontiguousarray(points[:MESH_FACE_POINTS, :2], dtype=np.float32).reshape(-1, 1, 2)
    mask = np.zeros((h, w), dtype=np.float32)
    if len(pts) < 5 or not np.isfinite(pts).all():
        return mask
    (cx, cy), (ax, ay), angle = cv2.fitEllipse(pts)
    if not (math.isfinite(ax) and math.isfinite(ay)) or min(ax, ay) < 2:
        return mask
    cv2.ellipse(
        mask,
        (round(cx), round(cy)),
        (max(1, round(ax / 2)), max(1, round(ay / 2))),
        angle,
        0,
        360,
        1.0,
        -1,
    )
    sigma = max(1.0, feather * min(ax, ay))
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), dtype=np.float32)


def reflect(
    image: RGBImage, mask: np.ndarray, rgb: tuple[int, int, int] | None, gain: float
) -> RGBImage:
    """The screen's colour reflected on the skin: ``pixel · (1 + g · (c − mean c) / 255)``.

    Only the colour's deviation from grey tints the face (a white screen lights it evenly, which
    exposure control cancels anyway), scaled by the local mask.
    """
    if rgb is None or gain == 0.0:
        return image
    c = np.asarray(rgb, dtype=np.float32)
    tint = gain * (c - c.mean()) / 255.0
    factor = 1.0 + mask[..., None] * tint[None, None, :]
    out = np.clip(image.astype(np.float32) * factor, 0, 255)
    return np.ascontiguousarray(out.astype(np.uint8))


def screen_colour(
    colours: Challenge | None, times: Sequence[float], i: int, delay: int
) -> tuple[int, int, int] | None:
    """The colour the camera sees on frame ``i``: the screen's, ``delay`` frames late."""
    if colours is None:
        return None
    j = i - delay
    if j < 0:
        return None
    step = colours.colour_at(times[j])
    return None if step is None else step.rgb


def jpeg(image: RGBImage, quality: int) -> RGBImage:
    """Encode and decode as JPEG (what an uploaded frame goes through)."""
    ok, blob = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [1, int(quality)])
    if not ok:
        raise suite_error("JPEG encoding failed")
    bgr = cv2.imdecode(blob, cv2.IMREAD_COLOR)
    if bgr is None:
        raise suite_error("JPEG decoding failed")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def session_frames(
    images: list[RGBImage], times: list[float], config: LivenessConfig, nonce: str, source: str
) -> FrameSequence:
    return validate(images, times, config.frames, nonce=nonce, source=source)


def paste_face(target: RGBImage, target_mesh: FloatArray, donor: Photo) -> RGBImage:
    """``donor``'s face aligned onto the target face's 5 points (similarity transform) and blended
    with a feathered mask, its colour matched to the target skin (what a swap tool does)."""
    h, w = target.shape[:2]
    m = similarity_transform(dlib5_from_mesh(donor.mesh), dlib5_from_mesh(target_mesh))
    warped = cv2.warpAffine(donor.image, m, (w, h), flags=cv2.INTER_LINEAR)
    pts = donor.mesh[:MESH_FACE_POINTS, :2].astype(np.float32)
    moved = (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)
    mask = face_mask(target.shape, moved, feather=0.08)
    sel = mask > 0.5
    if not sel.any():
        return target
    src = warped.astype(np.float32)
    dst = target.astype(np.float32)
    for c in range(3):
        s_mean, s_std = float(src[..., c][sel].mean()), float(src[..., c][sel].std()) + 1e-3
        d_mean, d_std = float(dst[..., c][sel].mean()), float(dst[..., c][sel].std()) + 1e-3
        src[..., c] = (src[..., c] - s_mean) * (d_std / s_std) + d_mean
    out = mask[..., None] * np.clip(src, 0, 255) + (1.0 - mask[..., None]) * dst
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


__all__ = [
    "face_mask",
    "jpeg",
    "paste_face",
    "reflect",
    "screen_colour",
    "session_frames",
]
