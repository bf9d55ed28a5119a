"""Make a photo look like the reference a lender actually holds (issue 14, item 3).

A KYC reference is rarely a good photo: the portrait read from a Chinese 2nd-generation ID card's
chip decodes to 102 × 126 px (a small, heavily compressed image), and a reference taken
from a photographed or scanned card has been printed, re-photographed and JPEG-compressed on top.
:func:`degrade` turns any photo of a face into such a reference so that an evaluation can measure
selfie-against-ID-card matching on data sets that only hold ordinary photos.

Pure numpy/OpenCV; randomness (the print grain) comes only from the ``seed`` argument, so the same
image, spec and seed give the same bytes.  Images are RGB ``uint8`` arrays ``(H, W, 3)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox

RGBImage = npt.NDArray[np.uint8]

SPECS = ("none", "idcard")
"""The accepted ``--degrade-reference`` values."""


@dataclass(frozen=True, slots=True)
class Degradation:
    """How a reference is spoiled.  Defaults: an ID-card chip portrait, printed and re-shot."""

    width_px: int = 102
    height_px: int = 126
    """The chip portrait of a 2nd-generation resident ID card is 102 × 126 px."""
    face_width_fraction: float = 0.6
    """Face-box width over portrait width: an ID photo shows the head at roughly 60 % of the
    photo's width; BlazeFace's box is a little narrower than the head with its hair."""
    face_center_y_fraction: float = 0.55
    """Where the face-box centre sits, from the top: ID photos leave room above the head."""
    saturation: float = 0.5
    """Colour kept (0 = grey, 1 = unchanged): printed cards and chip images are washed out."""
    blur_sigma_px: float = 0.8
    """Gaussian blur at portrait scale: the printer's dot spread and the re-shooting lens."""
    contrast: float = 0.85
    """Tone range kept around mid-grey (print gamut is narrower than a screen's)."""
    noise_sigma: float = 2.0
    """Print grain / sensor noise, grey levels (seeded)."""
    jpeg_quality: int = 35
    """The final JPEG encode, as a cheap chip reader or a compressed upload produces."""


IDCARD = Degradation()


def parse_spec(spec: str) -> Degradation | None:
    """``"none"`` → None (the reference is used as it is), ``"idcard"`` → :data:`IDCARD`.

    Raises ``ValueError`` for anything else.
    """
    name = spec.strip().lower()
    if name == "none":
        return None
    if name == "idcard":
        return IDCARD
    raise ValueError(f"unknown degradation {spec!r}; expected one of {', '.join(SPECS)}")


def degrade(
    pixels: RGBImage, how: Degradation, *, face_box: BBox | None = None, seed: int = 0
) -> RGBImage:
    """``pixels`` ``(H, W, 3)`` → an ID-card-like portrait ``(how.height_px, how.width_px, 3)``.

    ``face_box`` (pixels of ``pixels``) places the portrait around the face as an ID photo would;
    None takes the largest centred region of the portrait's shape (a photo that is already a
    face crop).  Steps: crop and downscale (area interpolation), partial desaturation, blur,
    contrast loss and grain, JPEG.  Deterministic given ``seed``.
    """
    portrait = portrait_crop(pixels, how, face_box)
    out = desaturate(portrait, how.saturation)
    out = _blur(out, how.blur_sigma_px)
    out = _print_tone(out, how.contrast, how.noise_sigma, seed)
    return jpeg_roundtrip(out, how.jpeg_quality)


def portrait_crop(pixels: RGBImage, how: Degradation, face_box: BBox | None) -> RGBImage:
    """The portrait region, resized to ``(how.height_px, how.width_px)``; outside the image the
    border is replicated (an ID photo has a plain background)."""
    h, w = pixels.shape[:2]
    aspect = how.height_px / how.width_px
    if face_box is None:
        crop_w = min(float(w), h / aspect)
        cx, top = w / 2.0, (h - crop_w * aspect) / 2.0
    else:
        crop_w = face_box.width / how.face_width_fraction
        cx, cy = face_box.center
        top = cy - how.face_center_y_fraction * crop_w * aspect
    crop_h = crop_w * aspect
    x0, y0 = round(cx - crop_w / 2.0), round(top)
    x1, y1 = x0 + max(round(crop_w), 1), y0 + max(round(crop_h), 1)
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    padded = cv2.copyMakeBorder(pixels, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    region = padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    size = (how.width_px, how.height_px)
    shrinking = region.shape[1] >= how.width_px
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(region, size, interpolation=method)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def desaturate(pixels: RGBImage, keep: float) -> RGBImage:
    """Blend each pixel toward its luma (ITU-R BT.601 weights) keeping ``keep`` of the colour."""
    rgb = pixels.astype(np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = luma[..., None] + keep * (rgb - luma[..., None])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _blur(pixels: RGBImage, sigma_px: float) -> RGBImage:
    if sigma_px <= 0:
        return pixels
    return np.asarray(cv2.GaussianBlur(pixels, (0, 0), sigmaX=sigma_px), dtype=np.uint8)


def _print_tone(pixels: RGBImage, contrast: float, noise_sigma: float, seed: int) -> RGBImage:
    rng = np.random.default_rng(seed)
    out: npt.NDArray[np.float32] = 128.0 + contrast * (pixels.astype(np.float32) - 128.0)
    if noise_sigma > 0:
        out += rng.normal(0.0, noise_sigma, size=pixels.shape[:2])[..., None].astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def jpeg_roundtrip(pixels: RGBImage, quality: int) -> RGBImage:
    """Encode as baseline JPEG at ``quality`` (1-100) and decode again."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise ValueError("JPEG encoding failed")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover - OpenCV decodes what it just encoded
        raise ValueError("JPEG decoding failed")
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def sharpness(pixels: RGBImage) -> float:
    """Variance of the grey image's Laplacian (higher = sharper); a measurement aid."""
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def colourfulness(pixels: RGBImage) -> float:
    """Mean chroma: mean over pixels of (max - min) of R, G, B (0 = grey); a measurement aid."""
    rgb = pixels.astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


__all__ = [
    "IDCARD",
    "SPECS",
    "Degradation",
    "colourfulness",
    "degrade",
    "desaturate",
    "jpeg_roundtrip",
    "parse_spec",
    "portrait_crop",
    "sharpness",
]
