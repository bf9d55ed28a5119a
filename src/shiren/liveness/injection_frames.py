"""Injection signals in the pixels: repeated frames and foreign compression or resampling grids.

**Repeated frames** (``repeat_fraction``).  A camera never delivers the same frame twice with
the same sensor noise after showing something else in between: even a perfectly still face
re-samples its noise every exposure.  A recording looped or played back and forth to fill a
session (or a re-timed recording whose still phase was stretched by re-using frames) does:
frame *j* equals an earlier frame *i* to the pixel although frames between them differed.  The
page may grab one camera frame twice in a row when the camera is slower than its timer; such
*adjacent* runs are reported (``adjacent_duplicates``) but not scored.  Candidates come from
32-px thumbnails; a pair counts when the half-resolution luma differs by less than
``DUPLICATE_MAD`` grey levels on average (independent noise of σ ≈ 1 differs by ≈ 0.8).

**Grids** (``grid_foreign``, ``grid_aligned``, ``grid_suppressed``).  The page encodes every
frame as a JPEG, whose 8 × 8 block edges sit at fixed columns and rows (``c ≡ 7 mod 8``).
Everything a frame went through *before* the page leaves its own fixed-position pattern too: an
earlier lossy encode on the same grid or on a grid shifted by a crop, an interpolating resize
(periodic interpolation weights; Popescu & Farid 2005), a display's pixel grid recaptured
(moiré).  Each frame's coding artefacts are new, but they sit at the same places, so they
survive in the *difference* of two consecutive frames, where a still background (a fixed
camera's scene) cancels.  Averaged over many such differences, the mean absolute horizontal
(vertical) gradient per column (row) is a profile whose fixed patterns stand out:
``grid_foreign`` is its strongest detrended spectral peak *outside* the page's own 8-px
harmonics (periods 2–12 px), as a multiple of the spectrum's median.  ``grid_aligned`` is the
gradient at the page's block edges over the gradient elsewhere, *calibrated*: divided by the
same ratio for the frames cropped by half a block and JPEG-encoded once at the page's quality,
which is what a single encode of this content gives (how blocky one JPEG looks depends on the
scene; the calibrated ratio much less).  A coarser encode on the *same* grid raises it (double
compression, suspected when high); an earlier encode on a shifted grid, a resample or a
recapture lowers it (``grid_suppressed``: the same number, suspected when low).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import RGBImage

F32 = npt.NDArray[np.float32]
THUMB_PX = 32
CANDIDATE_MAD = 0.5
"""Thumbnail difference (grey levels) below which a pair is checked at half resolution."""
DUPLICATE_MAD = 0.25
"""Half-resolution luma difference (grey levels) below which two frames are the same frame."""
MIN_FRAME_STD = 2.0
"""Frames flatter than this (grey levels; a covered lens, a black frame) are never compared."""
GRID_FRAMES = 24
"""Pairs of consecutive frames averaged for the grid spectra (evenly spaced over the capture)."""
MIN_DIFFERENCE = 0.1
"""Pairs differing by less than this (grey levels, mean) are the same frame: skipped."""
DETREND_PX = 33
MIN_PERIOD_PX = 2.0
MAX_PERIOD_PX = 12.0
BLOCK_PX = 8
HARMONIC_GUARD_BINS = 1.5
CALIBRATION_SHIFT_PX = 4


@dataclass(frozen=True, slots=True)
class RepeatFeatures:
    repeat_fraction: float
    """Share of frames that repeat, pixel for pixel, an earlier non-adjacent frame."""
    repeated_frames: int
    adjacent_duplicates: int
    compared_frames: int


@dataclass(frozen=True, slots=True)
class GridFeatures:
    grid_foreign: float
    foreign_period_px: float
    grid_aligned: float
    """Block-edge strength over what a single JPEG of the same content gives (calibrated)."""
    block_edge_ratio: float
    """The uncalibrated block-edge strength (edges over elsewhere)."""
    frames_used: int


def _grey(image: RGBImage) -> npt.NDArray[np.uint8]:
    """Luma (BT.601, rounded to integers, as the JPEG decoder's output already is)."""
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.uint8)


def _runs(same_as_previous: Sequence[bool]) -> list[int]:
    """Index of the run each frame belongs to (a run: consecutive identical frames)."""
    run, out = 0, []
    for k, same in enumerate(same_as_previous):
        if k > 0 and not same:
            run += 1
        out.append(run)
    return out


def repeat_features(images: Sequence[RGBImage]) -> RepeatFeatures:
    """Pixel-identical frames that came back after something else was shown."""
    n = len(images)
    half = []
    for img in images:
        g = _grey(img)
        h, w = g.shape
        half.append(cv2.resize(g, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA))
    thumbs = np.stack(
        [
            cv2.resize(hf, (THUMB_PX, max(1, round(hf.shape[0] * THUMB_PX / hf.shape[1]))),
                       interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
            for hf in half
        ]
    )  # fmt: skip
    usable = np.array([float(hf.std()) >= MIN_FRAME_STD for hf in half])

    def same(i: int, j: int) -> bool:
        return bool(usable[i] and usable[j]) and (
            float(cv2.absdiff(half[i], half[j]).mean()) < DUPLICATE_MAD
        )

    adjacent = [False] + [same(k - 1, k) for k in range(1, n)]
    run_of = _runs(adjacent)
    firsts = [k for k in range(n) if k == 0 or run_of[k] != run_of[k - 1]]
    close = np.stack([np.abs(thumbs - row).mean(axis=1) for row in thumbs]) < CANDIDATE_MAD
    repeated_runs: set[int] = set()
    for a_idx, a in enumerate(firsts):
        for b in firsts[a_idx + 2 :]:
            if run_of[b] not in repeated_runs and close[a, b] and same(a, b):
                repeated_runs.add(run_of[b])
    repeated = sum(1 for k in range(n) if run_of[k] in repeated_runs)
    return RepeatFeatures(
        repeat_fraction=repeated / n if n else 0.0,
        repeated_frames=repeated,
        adjacent_duplicates=int(sum(adjacent)),
        compared_frames=int(usable.sum()),
    )


def _profile(grey: F32, axis: int) -> F32:
    """Mean absolute gradient across ``axis`` boundaries: per column (axis 1) or row (axis 0)."""
    grad = np.abs(np.diff(grey, axis=axis))
    return np.asarray(grad.mean(axis=1 - axis), np.float32)


def _foreign_peak(profile: F32) -> tuple[float, float]:
    """Strongest spectral peak of the detrended profile outside the 8-px harmonics, as a multiple
    of the median magnitude, and its period in pixels."""
    n = profile.size
    if n < 4 * BLOCK_PX:
        return 0.0, 0.0
    kernel = np.ones(DETREND_PX, np.float32) / DETREND_PX
    padded = np.pad(profile, DETREND_PX // 2, mode="reflect")
    trend = np.convolve(padded, kernel, mode="valid")[:n]
    spectrum = np.abs(np.fft.rfft(profile - trend))
    freqs = np.fft.rfftfreq(n)
    band = (freqs >= 1.0 / MAX_PERIOD_PX) & (freqs <= 1.0 / MIN_PERIOD_PX)
    guard = HARMONIC_GUARD_BINS / n
    for m in range(1, BLOCK_PX // 2 + 1):
        band &= np.abs(freqs - m / BLOCK_PX) > guard
    if not band.any():
        return 0.0, 0.0
    median = float(np.median(spectrum[band])) or 1e-9
    k = int(np.argmax(np.where(band, spectrum, -1.0)))
    return float(spectrum[k]) / median, 1.0 / float(freqs[k])


def _aligned(profile: F32) -> float:
    """Block-edge gradient (``c ≡ 7 mod 8``) over the mean gradient elsewhere."""
    idx = np.arange(profile.size)
    edge = idx % BLOCK_PX == BLOCK_PX - 1
    rest = float(profile[~edge].mean())
    return float(profile[edge].mean()) / rest if rest > 0 else 0.0


def _recoded(grey: npt.NDArray[np.uint8], quality: int) -> npt.NDArray[np.uint8]:
    """Calibration (Fridrich, Goljan & Hogea 2002): ``grey`` cropped by half a block, so its
    old block edges fall mid-block, and encoded once more at the page's quality — what a
    *single* JPEG of this content would look like."""
    crop = np.ascontiguousarray(grey[CALIBRATION_SHIFT_PX:, CALIBRATION_SHIFT_PX:])
    ok, blob = cv2.imencode(".jpg", crop, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        return crop
    return np.asarray(cv2.imdecode(blob, cv2.IMREAD_GRAYSCALE), np.uint8)


class _Profiles:
    """Column and row gradient profiles summed over frame differences."""

    def __init__(self) -> None:
        self.cols: F32 | None = None
        self.rows: F32 | None = None

    def add(self, diff: F32) -> None:
        c, r = _profile(diff, 1), _profile(diff, 0)
        self.cols = c if self.cols is None else self.cols + c
        self.rows = r if self.rows is None else self.rows + r

    def aligned(self) -> float:
        if self.cols is None or self.rows is None:
            return 0.0
        return 0.5 * (_aligned(self.cols) + _aligned(self.rows))


def _diff(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> F32:
    return np.asarray(b.astype(np.float32) - a.astype(np.float32), np.float32)


def grid_features(
    images: Sequence[RGBImage], quality: int = 85, max_pairs: int = GRID_FRAMES
) -> GridFeatures:
    """Foreign and (calibrated) aligned grid strength in the differences of up to
    ``max_pairs`` pairs of consecutive frames (evenly spaced; identical pairs skipped);
    ``quality``: the page's JPEG quality."""
    n = len(images)
    starts = (
        sorted({round(k) for k in np.linspace(0, n - 2, min(n - 1, max_pairs))}) if n > 1 else []
    )
    actual, calibrated = _Profiles(), _Profiles()
    used = 0
    for i in starts:
        a, b = _grey(images[i]), _grey(images[i + 1])
        diff = _diff(a, b)
        if float(np.abs(diff).mean()) < MIN_DIFFERENCE:
            continue
        actual.add(diff)
        calibrated.add(_diff(_recoded(a, quality), _recoded(b, quality)))
        used += 1
    if actual.cols is None or actual.rows is None:
        return GridFeatures(0.0, 0.0, 0.0, 0.0, 0)
    peak_c, period_c = _foreign_peak(actual.cols)
    peak_r, period_r = _foreign_peak(actual.rows)
    peak, period = (peak_c, period_c) if peak_c >= peak_r else (peak_r, period_r)
    raw, single = actual.aligned(), calibrated.aligned()
    return GridFeatures(peak, period, raw / single if single > 0 else 0.0, raw, used)


__all__ = [
    "DUPLICATE_MAD",
    "GridFeatures",
    "RepeatFeatures",
    "grid_features",
    "repeat_features",
]
