"""The capture chain of the injection evaluation: sensor noise, the page's timer and JPEG, codecs,
a display and its recapture — each a small pure function of its inputs and a seed.

What is simulated, and why (every report built on it repeats this):

* **Sensor noise.**  The recordings are compressed video whose own noise the codec smoothed, and
  a live session re-uses real frames (its still phase plays a neutral stretch back and forth).
  A camera re-samples its noise every exposure, so every frame a *camera* delivers gets fresh
  noise (:class:`NoiseBank`, keyed per delivered frame); a *recording* played back keeps the
  noise it was recorded with (keyed per source frame).  Both draw σ from the same range, so
  the noise level never tells a live session from an attack; only whether it repeats does.
* **The page.**  What ``api/static/capture/app.js`` does: grab the camera's latest frame on a
  timer (times from real Chromium traces, :mod:`scripts/measure_page_timing.py`), draw it at
  most 640 px wide, JPEG at quality 0.85 (:func:`page_frames`).  The camera hands over a frame
  captured ``latency`` earlier.
* **Codecs, displays, recapture** for the attacks (:func:`jpeg_recode`, :func:`mpeg4_recode`,
  :func:`display_and_grab`, :func:`display_and_film`).

Nothing is written to disk except the MPEG-4 round trip's temporary file (deleted at once).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from shiren.core.geometry import RGBImage
from shiren.eval.suite_annotation import suite_error
from shiren.eval.suite_effects import jpeg

NOISE_PAD = 128
NOISE_FIELDS = 12
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class SimParams:
    """Knobs of the capture chain; all reported with the results."""

    noise_sigma: tuple[float, float] = (1.0, 2.5)
    """Sensor noise σ (grey levels, luma), drawn per session / per recording."""
    camera_latency_ms: tuple[float, float] = (20.0, 80.0)
    """How old the camera's latest frame is when the page grabs it."""
    page_width: int = 640
    page_quality: int = 85
    colour_gain: float = 0.08
    display_delay_frames: int = 1
    think_s: tuple[float, float] = (2.0, 25.0)
    """From the challenge reaching the page to the borrower's consent."""
    start_delay_s: tuple[float, float] = (0.5, 10.0)
    """From consent to tapping "start"."""
    upload_s: tuple[float, float] = (0.4, 4.0)
    """Encoding and uploading the frames."""
    script_s: tuple[float, float] = (0.3, 2.5)
    """A script's whole turn-around, challenge to upload, when it does not wait."""
    recode_quality: tuple[int, int] = (45, 80)
    screen_gain: float = 0.03
    """The flash's reflection on a glossy attack screen (uniform over the frame)."""


DEFAULT_SIM = SimParams()


class NoiseBank:
    """Gaussian luma noise fields of one frame size; :meth:`add` adds a distinct slice per key.

    Keys map to (field, dy, dx) without collision inside one bank's use (drawn without
    replacement), so two frames share noise only when they share a key.
    """

    def __init__(self, shape: tuple[int, int], seed: int) -> None:
        rng = np.random.default_rng(seed)
        h, w = shape
        self._fields = rng.standard_normal((NOISE_FIELDS, h + NOISE_PAD, w + NOISE_PAD), np.float32)
        self._shape = shape
        self._slots = rng.permutation(NOISE_FIELDS * NOISE_PAD * NOISE_PAD)
        self._keys: dict[Hashable, int] = {}

    def _slot(self, key: Hashable) -> tuple[int, int, int]:
        if key not in self._keys:
            if len(self._keys) >= self._slots.size:
                raise suite_error("the noise bank ran out of distinct slices")
            self._keys[key] = int(self._slots[len(self._keys)])
        s = self._keys[key]
        return s // (NOISE_PAD * NOISE_PAD), (s // NOISE_PAD) % NOISE_PAD, s % NOISE_PAD

    def add(self, image: RGBImage, key: Hashable, sigma: float) -> RGBImage:
        h, w = image.shape[:2]
        if (h, w) != self._shape:
            raise suite_error("frame size differs from the noise bank's", size=[w, h])
        f, dy, dx = self._slot(key)
        noise = self._fields[f, dy : dy + h, dx : dx + w] * sigma
        out = image.astype(np.float32) + noise[..., None]
        return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def page_draw(image: RGBImage, width: int) -> RGBImage:
    """``grabber.draw()``: the frame at most ``width`` px wide (aspect kept)."""
    h, w = image.shape[:2]
    if w <= width:
        return image
    size = (width, round(h * width / w))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def page_frames(
    grabs_ms: Sequence[float],
    delivered: Callable[[float], K],
    render: Callable[[K], RGBImage],
    params: SimParams,
    latency_ms: float,
) -> list[RGBImage]:
    """What the page uploads: at each grab time, the camera's latest frame (``delivered`` maps a
    time to the key of the frame the camera had then; ``render`` makes that frame), drawn and
    JPEG-encoded.  One key grabbed twice gives the same bytes twice, as on a real page."""
    cache: dict[K, RGBImage] = {}
    out: list[RGBImage] = []
    for g in grabs_ms:
        key = delivered(g - latency_ms)
        if key not in cache:
            cache[key] = jpeg(page_draw(render(key), params.page_width), params.page_quality)
        out.append(cache[key])
    return out


def latest_index(times_ms: Sequence[float], t: float) -> int:
    """Index of the last time ``≤ t`` (0 before the first)."""
    lo, hi = 0, len(times_ms) - 1
    if t < times_ms[0]:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if times_ms[mid] <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_box(image: RGBImage, size: tuple[int, int]) -> RGBImage:
    """``image`` scaled to fit ``size`` (w, h), aspect kept, centred on black (a virtual camera
    or a full-screen player)."""
    w, h = size
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp)
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = scaled
    return out


def jpeg_recode(image: RGBImage, quality: int, shift: tuple[int, int]) -> RGBImage:
    """A lossy JPEG round trip on a grid shifted by ``shift`` (dx, dy) px (a crop before the
    encode, padded back after), so its blocks need not align with the page's."""
    dx, dy = shift
    if dx == 0 and dy == 0:
        return jpeg(image, quality)
    h, w = image.shape[:2]
    coded = jpeg(np.ascontiguousarray(image[dy:, dx:]), quality)
    out = image.copy()
    out[dy:, dx:] = coded[: h - dy, : w - dx]
    return out


def mpeg4_recode(images: Sequence[RGBImage], fps: float) -> list[RGBImage]:
    """An MPEG-4 Part 2 round trip (OpenCV's ``mp4v`` writer, its default rate control)."""
    h, w = images[0].shape[:2]
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        writer = cv2.VideoWriter(path, fourcc, fps, (w, h))
        if not writer.isOpened():
            raise suite_error("the mp4v encoder is not available in this OpenCV")
        for img in images:
            writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        writer.release()
        capture = cv2.VideoCapture(path)
        out: list[RGBImage] = []
        while len(out) < len(images):
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            out.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        capture.release()
    finally:
        os.unlink(path)
    if len(out) != len(images):
        raise suite_error("the mp4v round trip lost frames", sent=len(images), got=len(out))
    return out


def display_gamut(image: RGBImage, rng_gamma: float, tint: tuple[float, float, float]) -> RGBImage:
    """A display's tone curve and white point."""
    x = image.astype(np.float32) / 255.0
    x = np.power(x, rng_gamma) * np.asarray(tint, np.float32)[None, None, :]
    return np.ascontiguousarray(np.clip(x * 255.0, 0, 255).astype(np.uint8))


def display_and_grab(image: RGBImage, display: tuple[int, int], out: tuple[int, int]) -> RGBImage:
    """A full-screen player on a ``display`` (w, h) monitor, grabbed by screen-capture software
    that outputs ``out`` (w, h): two resamplings."""
    shown = fit_box(image, display)
    return np.ascontiguousarray(cv2.resize(shown, out, interpolation=cv2.INTER_LINEAR))


def subpixel_screen(image: RGBImage, px: int) -> RGBImage:
    """``image`` as a display shows it: each pixel ``px`` × ``px`` device pixels, split into
    vertical R, G, B stripes (an LCD's subpixels, each lit ×2.55 so the mean stays near the
    pixel's value; brightest values clip)."""
    h, w = image.shape[:2]
    big = cv2.resize(image, (w * px, h * px), interpolation=cv2.INTER_NEAREST)
    stripe = np.zeros((px, 3), np.uint8)
    third = max(1, px // 3)
    for c in range(3):
        stripe[c * third : min(px, (c + 1) * third), c] = 255
    mask = np.ascontiguousarray(np.broadcast_to(np.tile(stripe, (w, 1))[None], big.shape))
    return np.ascontiguousarray(cv2.multiply(big, mask, scale=2.55 / 255.0))


def display_and_film(
    image: RGBImage,
    out: tuple[int, int],
    *,
    angle_deg: float,
    scale: float,
    blur_px: float,
) -> RGBImage:
    """A phone camera filming the screen: subpixel stripes, optical blur, then the camera's
    framing (a small rotation and zoom, the screen filling the view) sampled straight onto its
    ``out`` (w, h) sensor grid, so the display's grid aliases into moiré."""
    screen = subpixel_screen(image, 3)
    if blur_px > 0:
        screen = np.asarray(cv2.GaussianBlur(screen, (0, 0), blur_px), np.uint8)
    h, w = screen.shape[:2]
    ow, oh = out
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, scale)
    fit = np.array([[ow / w, 0.0, 0.0], [0.0, oh / h, 0.0]], np.float64)
    m = fit[:, :2] @ m
    return np.ascontiguousarray(
        cv2.warpAffine(screen, m, (ow, oh), flags=cv2.INTER_LINEAR, borderValue=(20, 20, 20))
    )


def uniform_tint(image: RGBImage, rgb: tuple[int, int, int] | None, gain: float) -> RGBImage:
    """The flash lighting the whole scene a little (a glossy screen held to the phone)."""
    if rgb is None or gain == 0.0:
        return image
    c = np.asarray(rgb, np.float32)
    factor = 1.0 + gain * (c - c.mean()) / 255.0
    out = image.astype(np.float32) * factor[None, None, :]
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def round_ms(t: float) -> float:
    """The page's ``Math.round(tm * 10) / 10``."""
    return math.floor(t * 10.0 + 0.5) / 10.0


__all__ = [
    "DEFAULT_SIM",
    "NoiseBank",
    "SimParams",
    "display_and_film",
    "display_and_grab",
    "display_gamut",
    "fit_box",
    "jpeg_recode",
    "latest_index",
    "mpeg4_recode",
    "page_draw",
    "page_frames",
    "round_ms",
    "subpixel_screen",
    "uniform_tint",
]
