"""Cheap texture and frequency cues of a face crop for passive presentation-attack detection.

Why these cues: a printed photo or a screen shown to the camera is a *recapture*.  Recapture
leaves traces a deep model may or may not have learnt on its training attacks, but which are
cheap to measure directly (Määttä et al. 2011; Boulkenafet et al. 2016):

* **micro-texture** — uniform LBP histograms.  Paper grain, halftone dots and screen pixels change
  the local binary patterns of skin.  Computed on the luma *and* on the two chroma channels,
  because print and display gamuts lose chroma texture that luma alone hides;
* **frequency content** — a recaptured face is blurred by two optical paths (less high-frequency
  energy) and a screen adds moiré (sharp isolated peaks in the spectrum);
* **colour moments** in HSV and YCrCb — prints are desaturated and shifted, screens tinted;
* **specular highlights** — glossy paper and glass reflect bright, colourless patches;
* **sharpness** (variance of the Laplacian) and **clipping** (share of saturated pixels).

Everything is plain numpy/OpenCV on a ``96 × 96`` crop of the face box grown 1.5× (the skin
*and* some context such as the photo's edge), so one face costs about a millisecond on one core.
The vector layout is versioned by :data:`FEATURE_SPEC_VERSION`: a trained model records it and a
model made for another layout is refused rather than silently misread.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox, RGBImage

FEATURE_SPEC_VERSION = "texture-v1"
"""Bump when the meaning or order of any feature changes."""

CROP_SCALE = 1.5
"""The face box is grown by this factor around its centre (then made square) before resizing."""

CROP_SIZE = 96
"""Side of the square crop the features are computed on, in pixels."""

LBP_RADII = (1, 2)
LBP_BINS = 59
"""Uniform LBP with 8 neighbours: 58 uniform patterns and one bin for all the others."""

_LBP_CHANNELS = ("y", "cr", "cb")
_MOMENT_CHANNELS = ("h", "s", "v", "y", "cr", "cb")
_FFT_BANDS = ((0.02, 0.10), (0.10, 0.20), (0.20, 0.30), (0.30, 0.40), (0.40, 0.75))
"""Radial frequency bands, in cycles per pixel (0.5 = Nyquist along an axis)."""
_HIGH_FREQ = 0.25
_MOIRE_FROM = 0.15
_SPECULAR_V = 0.90 * 255
_SPECULAR_S = 0.20 * 255
_CLIPPED_Y = 250
_EPS = 1e-8

FloatVector = npt.NDArray[np.float64]


def feature_names() -> tuple[str, ...]:
    """The name of every feature, in vector order (also a check that the layout is what a model
    expects: its length is :data:`FEATURE_DIM`)."""
    names: list[str] = []
    for channel in _LBP_CHANNELS:
        for radius in LBP_RADII:
            names += [f"lbp_{channel}_r{radius}_{b:02d}" for b in range(LBP_BINS)]
    names += [f"fft_band_{lo:.2f}_{hi:.2f}" for lo, hi in _FFT_BANDS]
    names += ["fft_high_ratio", "fft_moire_peak"]
    for channel in _MOMENT_CHANNELS:
        names += [f"{channel}_mean", f"{channel}_std", f"{channel}_skew"]
    names += ["specular_fraction", "clipped_fraction", "laplacian_log_var"]
    return tuple(names)


FEATURE_DIM = len(feature_names())


def face_crop(image: RGBImage, box: BBox, *, scale: float = CROP_SCALE) -> RGBImage:
    """The face box grown ``scale``× into a square, **clipped to the image**, resized to
    :data:`CROP_SIZE` (area interpolation, so downscaling does not alias).

    Clipped rather than padded: padding would invent texture (replicated or black borders) that
    the classifier could learn instead of the face.  A box that is the whole image (``--input
    crops``) therefore uses exactly the whole image.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("face_crop needs an (H, W, 3) uint8 RGB image")
    height, width = image.shape[:2]
    region = box.scaled(scale).square().clipped(width, height)
    x0, y0 = math.floor(region.x0), math.floor(region.y0)
    x1, y1 = max(math.ceil(region.x1), x0 + 1), max(math.ceil(region.y1), y0 + 1)
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    x1, y1 = min(x1, width), min(y1, height)
    patch = image[y0:y1, x0:x1]
    interpolation = cv2.INTER_AREA if patch.shape[0] >= CROP_SIZE else cv2.INTER_LINEAR
    resized = cv2.resize(patch, (CROP_SIZE, CROP_SIZE), interpolation=interpolation)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def texture_features(image: RGBImage, box: BBox) -> FloatVector:
    """The ``(FEATURE_DIM,)`` float64 feature vector of the face in ``box`` (see the module doc)."""
    return crop_features(face_crop(image, box))


def crop_features(crop: RGBImage) -> FloatVector:
    """Features of an already prepared ``(CROP_SIZE, CROP_SIZE, 3)`` uint8 RGB crop."""
    ycrcb: npt.NDArray[np.uint8] = np.asarray(cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb), np.uint8)
    hsv: npt.NDArray[np.uint8] = np.asarray(cv2.cvtColor(crop, cv2.COLOR_RGB2HSV), np.uint8)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    parts: list[FloatVector] = []
    for channel in (y, cr, cb):
        for radius in LBP_RADII:
            parts.append(lbp_histogram(channel, radius))
    parts.append(_spectrum_features(y))
    parts.append(_colour_moments((hsv[..., 0], hsv[..., 1], hsv[..., 2], y, cr, cb)))
    parts.append(_highlight_features(hsv, y))
    out = np.concatenate(parts)
    if out.shape != (FEATURE_DIM,):  # pragma: no cover - a layout bug, caught by the tests
        raise AssertionError(f"feature vector has shape {out.shape}, expected ({FEATURE_DIM},)")
    return out


@cache
def _uniform_lut() -> npt.NDArray[np.uint8]:
    """Map each 8-bit LBP code to its uniform bin: patterns with at most two 0/1 transitions
    (circularly) get bins 0..57 in code order; every other pattern goes to bin 58."""
    lut = np.full(256, LBP_BINS - 1, dtype=np.uint8)
    next_bin = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        if transitions <= 2:
            lut[code] = next_bin
            next_bin += 1
    if next_bin != LBP_BINS - 1:  # pragma: no cover - arithmetic fact: 58 uniform patterns
        raise AssertionError(next_bin)
    lut.setflags(write=False)
    return lut


def lbp_histogram(channel: npt.NDArray[np.uint8], radius: int) -> FloatVector:
    """Normalised ``(59,)`` histogram of uniform LBP codes, 8 neighbours at ``radius``.

    The neighbours are the 8 pixels of the square ring at Chebyshev distance ``radius`` along the
    axes and diagonals (no bilinear interpolation of the diagonal points: faster, deterministic,
    and equally good as a texture statistic).  Border pixels without a full ring are skipped.
    """
    r = radius
    h, w = channel.shape
    if h <= 2 * r or w <= 2 * r:
        raise ValueError(f"channel {channel.shape} too small for LBP radius {r}")
    centre = channel[r : h - r, r : w - r]
    offsets = ((-r, -r), (-r, 0), (-r, r), (0, r), (r, r), (r, 0), (r, -r), (0, -r))
    codes = np.zeros(centre.shape, dtype=np.uint8)
    for bit, (dy, dx) in enumerate(offsets):
        neighbour = channel[r + dy : h - r + dy, r + dx : w - r + dx]
        codes |= (neighbour >= centre).astype(np.uint8) << np.uint8(bit)
    counts = np.bincount(_uniform_lut()[codes].ravel(), minlength=LBP_BINS)
    return counts.astype(np.float64) / float(codes.size)


@cache
def _spectrum_geometry(size: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The radial frequency (cycles/pixel) of every ``rfft2`` bin and the 2-D Hann window."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fy * fy + fx * fx)
    hann = np.hanning(size)
    window = np.outer(hann, hann)
    radius.setflags(write=False)
    window.setflags(write=False)
    return radius, window


def _spectrum_features(y: npt.NDArray[np.uint8]) -> FloatVector:
    """Log energy share per radial band, log high/low ratio, and the moiré peak ratio.

    The mean is removed and a Hann window applied, so the image border does not appear as a
    false high-frequency edge.  Logs keep the tiny high-frequency shares of blurred prints on a
    usable scale for a linear model.
    """
    radius, window = _spectrum_geometry(y.shape[0])
    signal = (y.astype(np.float64) - float(y.mean())) * window
    power = np.abs(np.fft.rfft2(signal)) ** 2
    total = float(power[radius >= _FFT_BANDS[0][0]].sum()) + _EPS
    bands = [
        math.log(float(power[(radius >= lo) & (radius < hi)].sum()) / total + _EPS)
        for lo, hi in _FFT_BANDS
    ]
    high = float(power[radius >= _HIGH_FREQ].sum())
    high_ratio = math.log(high / total + _EPS)
    tail = power[radius >= _MOIRE_FROM]
    moire = math.log((float(tail.max()) + _EPS) / (float(np.median(tail)) + _EPS))
    return np.array([*bands, high_ratio, moire], dtype=np.float64)


def _colour_moments(channels: tuple[npt.NDArray[np.uint8], ...]) -> FloatVector:
    """Mean, standard deviation and skewness of each channel, scaled to [0, 1] units.

    OpenCV's 8-bit hue runs 0..179 and is scaled by 180.  It is not treated as circular: skin
    hues sit far from the red wrap-around in practice, and a linear model copes with the rest.
    """
    full_scale = np.array([180.0] + [255.0] * (len(channels) - 1))[:, None]
    values = np.stack([c.ravel() for c in channels]).astype(np.float64) / full_scale
    mean = values.mean(axis=1)
    centred = values - mean[:, None]
    squared = centred * centred
    std = np.sqrt(squared.mean(axis=1))
    skew = (squared * centred).mean(axis=1) / (std * std * std + _EPS)
    return np.stack([mean, std, skew], axis=1).ravel()


def _highlight_features(hsv: npt.NDArray[np.uint8], y: npt.NDArray[np.uint8]) -> FloatVector:
    """Specular-highlight fraction (bright *and* colourless pixels), clipped-luma fraction, and
    the log variance of the Laplacian (a focus measure: recaptures are softer)."""
    specular = float(np.mean((hsv[..., 2] >= _SPECULAR_V) & (hsv[..., 1] <= _SPECULAR_S)))
    clipped = float(np.mean(y >= _CLIPPED_Y))
    laplacian = cv2.Laplacian(y, cv2.CV_64F, ksize=3)
    return np.array([specular, clipped, math.log(float(laplacian.var()) + 1.0)], dtype=np.float64)


__all__ = [
    "CROP_SCALE",
    "CROP_SIZE",
    "FEATURE_DIM",
    "FEATURE_SPEC_VERSION",
    "crop_features",
    "face_crop",
    "feature_names",
    "lbp_histogram",
    "texture_features",
]
