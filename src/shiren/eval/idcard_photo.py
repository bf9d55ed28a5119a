"""Turn a flat card into what a borrower's phone uploads: a JPEG of the card lying on a table.

Three levels (:data:`LEVELS`): ``none`` (the card square to the camera on a plain background,
sharp, JPEG 95), ``moderate`` (a hand-held photo: tilt, perspective, mild blur, sometimes a glare
spot, sometimes the card upside down) and ``strong`` (what a hurried user sends: steep
perspective, upside-down and sideways cards, heavy blur, strong glare, low JPEG quality).  The
knobs of each level are in :data:`PARAMS`; randomness only comes from the generator passed in.

The ground truth comes out of the same transform that draws the photo: the card's four corners
(the card's own top-left, top-right, bottom-right, bottom-left, wherever they land) and the
portrait's box, in the output image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from shiren.eval.idcard_render import FlatCard

RGBImage = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]
LEVELS: Final = ("none", "moderate", "strong")


@dataclass(frozen=True, slots=True)
class PhotoParams:
    """How a level spoils a card photo.  Ranges are ``(low, high)``, drawn uniformly."""

    width_share: tuple[float, float]
    """Card width over the photo's width before rotation (how close the phone is)."""
    tilt_deg: float
    """Largest in-plane rotation either way."""
    upside_down: float
    """Probability that the card lies rotated by 180°."""
    quarter_turn: float
    """Probability that the card lies rotated by ±90° (a portrait shot of a landscape card)."""
    jitter: float
    """Largest corner displacement, as a share of the card's width (perspective)."""
    blur_sigma_px: tuple[float, float]
    motion_blur: float
    """Probability of a motion blur (instead of the Gaussian one)."""
    motion_px: tuple[int, int]
    glare: float
    """Probability of a glare spot on the card."""
    glare_strength: tuple[float, float]
    jpeg_quality: tuple[int, int]
    noise_sigma: tuple[float, float]
    lighting: float
    """Largest relative brightness change across the photo (uneven light)."""
    portrait_frame: float
    """Probability of a portrait-oriented photo (960 × 1280 instead of 1280 × 960)."""


PARAMS: Final[dict[str, PhotoParams]] = {
    "none": PhotoParams(
        width_share=(0.7, 0.7), tilt_deg=0.0, upside_down=0.0, quarter_turn=0.0, jitter=0.0,
        blur_sigma_px=(0.0, 0.0), motion_blur=0.0, motion_px=(1, 1), glare=0.0,
        glare_strength=(0.0, 0.0), jpeg_quality=(95, 95), noise_sigma=(0.0, 0.0), lighting=0.0,
        portrait_frame=0.0,
    ),
    "moderate": PhotoParams(
        width_share=(0.55, 0.85), tilt_deg=10.0, upside_down=0.1, quarter_turn=0.0, jitter=0.035,
        blur_sigma_px=(0.0, 1.2), motion_blur=0.2, motion_px=(3, 6), glare=0.3,
        glare_strength=(0.15, 0.45), jpeg_quality=(60, 92), noise_sigma=(1.5, 4.0),
        lighting=0.2, portrait_frame=0.0,
    ),
    "strong": PhotoParams(
        width_share=(0.4, 0.9), tilt_deg=25.0, upside_down=0.25, quarter_turn=0.15, jitter=0.08,
        blur_sigma_px=(0.8, 2.2), motion_blur=0.35, motion_px=(5, 12), glare=0.6,
        glare_strength=(0.35, 0.8), jpeg_quality=(35, 75), noise_sigma=(3.0, 9.0),
        lighting=0.4, portrait_frame=0.3,
    ),
}  # fmt: skip
_LANDSCAPE: Final = (1280, 960)
_MARGIN_PX: Final = 12


@dataclass(frozen=True, slots=True)
class Photo:
    """A simulated upload: ``jpeg`` bytes of a ``size`` ``(width, height)`` photo.

    ``corners`` ``(4, 2)``: the card's own top-left, top-right, bottom-right, bottom-left corners
    in the photo's pixels; ``homography`` ``(3, 3)`` maps card pixels to photo pixels;
    ``rotation_deg`` is the card's in-plane rotation (counter-clockwise; 180 = upside down).
    """

    jpeg: bytes
    size: tuple[int, int]
    corners: FloatArray
    homography: FloatArray
    rotation_deg: float

    @property
    def upside_down(self) -> bool:
        """Whether the card's text runs upside down (rotated by more than 135°)."""
        return abs((self.rotation_deg + 180.0) % 360.0 - 180.0) > 135.0

    def project(self, points: FloatArray) -> FloatArray:
        """Card pixels ``(N, 2)`` → photo pixels ``(N, 2)``."""
        src = np.asarray(points, np.float64).reshape(-1, 1, 2)
        out = cv2.perspectiveTransform(src, self.homography)
        return np.asarray(out, np.float64).reshape(-1, 2)


def photograph(card: FlatCard, level: str, rng: np.random.Generator) -> Photo:
    """``card`` photographed at ``level`` (one of :data:`LEVELS`)."""
    if level not in PARAMS:
        raise ValueError(f"unknown distortion level {level!r}; expected one of {LEVELS}")
    p = PARAMS[level]
    size = _LANDSCAPE[::-1] if rng.random() < p.portrait_frame else _LANDSCAPE
    rotation = _rotation(p, rng)
    h, w = card.pixels.shape[:2]
    corners = _place(w, h, size, rotation, p, rng)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    homography = np.asarray(
        cv2.getPerspectiveTransform(src, corners.astype(np.float32)), np.float64
    )
    background = table(size, rng, plain=level == "none")
    image = _composite(card, background, homography)
    image = _spoil(image, corners, p, rng)
    quality = int(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return Photo(buf.tobytes(), size, corners, homography, rotation)


def _rotation(p: PhotoParams, rng: np.random.Generator) -> float:
    angle = float(rng.uniform(-p.tilt_deg, p.tilt_deg)) if p.tilt_deg else 0.0
    draw = rng.random()
    if draw < p.upside_down:
        return angle + 180.0
    if draw < p.upside_down + p.quarter_turn:
        return angle + (90.0 if rng.random() < 0.5 else -90.0)
    return angle


def _place(
    w: int, h: int, size: tuple[int, int], rotation: float, p: PhotoParams,
    rng: np.random.Generator,
) -> FloatArray:  # fmt: skip
    """The card's corners in the photo: scaled, rotated, jittered, and moved inside it."""
    width_px = rng.uniform(*p.width_share) * size[0]
    theta = np.deg2rad(rotation)
    turn = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    jitter = rng.uniform(-p.jitter, p.jitter, size=(4, 2)) * w
    base = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - (w / 2, h / 2)
    for _ in range(40):
        corners = ((base + jitter) * (width_px / w)) @ turn.T
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        room = np.array(size, np.float64) - 2 * _MARGIN_PX - (hi - lo)
        if (room >= 0).all():
            offset = _MARGIN_PX - lo + rng.uniform(0.0, 1.0, size=2) * room
            placed: FloatArray = corners + offset
            return placed
        width_px *= 0.92
    raise AssertionError("the card never fitted in the photo")


def table(size: tuple[int, int], rng: np.random.Generator, *, plain: bool = False) -> RGBImage:
    """A background ``(H, W, 3)``: plain paper, a wood grain, or a mottled fabric."""
    w, h = size
    kind = "plain" if plain else ("plain", "wood", "fabric")[int(rng.integers(3))]
    tone = _low_frequency(rng, (h, w), cells=6)
    if kind == "plain":
        colour = rng.choice(np.array([[228, 228, 224], [200, 204, 210], [62, 64, 70],
                                      [214, 196, 170]], np.float32))  # fmt: skip
        out = colour * (1 + 0.06 * tone[..., None])
    elif kind == "wood":
        ys = np.arange(h, dtype=np.float32)[:, None]
        grain = np.sin(ys / rng.uniform(4, 12) + 6 * tone + rng.uniform(0, 6))
        colour = np.array(rng.choice([[150, 104, 64], [190, 150, 104], [96, 64, 42]]), np.float32)
        out = colour * (1 + 0.12 * grain[..., None] + 0.08 * tone[..., None])
    else:
        colour = rng.uniform(60, 200, size=3).astype(np.float32)
        speckle = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 1.5)
        out = colour * (1 + 0.1 * tone[..., None] + 0.15 * speckle[..., None])
    if not plain:
        out = out + 3 * rng.standard_normal(size=(h, w, 1), dtype=np.float32)
    pixels: RGBImage = np.clip(out, 0, 255).astype(np.uint8)
    return pixels


def _low_frequency(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> FloatArray:
    """Smooth noise in about ``[-1, 1]`` over ``shape`` (a small grid, upsampled)."""
    grid = rng.uniform(-1, 1, size=(cells, cells))
    out = cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.asarray(out, np.float64)


def _composite(
    card: FlatCard, background: RGBImage, homography: npt.NDArray[np.float64]
) -> RGBImage:
    """The card warped onto the background, with a soft shadow under it."""
    size = (background.shape[1], background.shape[0])
    warped = cv2.warpPerspective(card.pixels, homography, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(card.alpha, homography, size, flags=cv2.INTER_LINEAR)
    a = alpha.astype(np.float32)[..., None] / 255.0
    shadow = cv2.GaussianBlur(np.roll(a[..., 0], (6, 4), axis=(0, 1)), (0, 0), 6)[..., None]
    back = background.astype(np.float32) * (1 - 0.35 * shadow)
    out = warped.astype(np.float32) * a + back * (1 - a)
    pixels: RGBImage = np.clip(out, 0, 255).astype(np.uint8)
    return pixels


def _spoil(
    image: RGBImage, corners: FloatArray, p: PhotoParams, rng: np.random.Generator
) -> RGBImage:
    """Uneven light, glare, blur and sensor noise, in the order a camera adds them."""
    h, w = image.shape[:2]
    out: npt.NDArray[np.float32] = image.astype(np.float32)
    if p.lighting:
        angle, amount = rng.uniform(0, 2 * np.pi), rng.uniform(0, p.lighting) * 0.5
        xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * np.float32(np.cos(angle))
        ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None] * np.float32(np.sin(angle))
        out *= (1 + np.float32(amount) * (xs + ys))[..., None]
    if rng.random() < p.glare:
        out = _glare(out, corners, rng.uniform(*p.glare_strength), rng)
    out = np.clip(out, 0, 255)
    if rng.random() < p.motion_blur:
        out = _motion_blur(out, int(rng.integers(p.motion_px[0], p.motion_px[1] + 1)), rng)
    elif (sigma := rng.uniform(*p.blur_sigma_px)) > 0.1:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), sigma), np.float32)
    if p.noise_sigma[1] > 0:
        noise = np.float32(rng.uniform(*p.noise_sigma))
        out += noise * rng.standard_normal(size=out.shape, dtype=np.float32)
    pixels: RGBImage = np.clip(out, 0, 255).astype(np.uint8)
    return pixels


def _glare(
    image: npt.NDArray[np.float32], corners: FloatArray, strength: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """A soft elliptical highlight somewhere on the card (a lamp reflected by the laminate)."""
    h, w = image.shape[:2]
    weights = rng.dirichlet(np.ones(4))
    cx, cy = weights @ corners
    span = float(np.linalg.norm(corners[1] - corners[0]))
    sx, sy = rng.uniform(0.06, 0.16, size=2) * span
    # The blob is separable: exp(-(x²/sx² + y²/sy²)/2) = gx(x)·gy(y).
    gx = np.exp(-(((np.arange(w, dtype=np.float32) - cx) / sx) ** 2) / 2).astype(np.float32)
    gy = np.exp(-(((np.arange(h, dtype=np.float32) - cy) / sy) ** 2) / 2).astype(np.float32)
    blob = np.float32(strength * 255.0) * gy[:, None] * gx[None, :]
    out: npt.NDArray[np.float32] = image + blob[..., None]
    return out


def _motion_blur(
    image: npt.NDArray[np.float32], length: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1)
    kernel = np.asarray(cv2.warpAffine(kernel, turn, (length, length)), np.float32)
    kernel /= max(float(kernel.sum()), 1e-6)
    return np.asarray(cv2.filter2D(image, -1, kernel), np.float32)


__all__ = ["LEVELS", "PARAMS", "Photo", "PhotoParams", "photograph", "table"]
