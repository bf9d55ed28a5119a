"""Injection signals in the pixels: repeated frames and foreign compression or resampling grids.

**Repeated frames** (``repeat_fraction``).  A camera never delivers the same frame twice with
the same sensor noise after showing something else in between: even a perfectly still face
re-samples its noise every exposure.  A recording looped or played back and forth to fill a
session (or a re-timed recording whose still phase was stretched by re-using frames) does:
frame *j* equals an earlier frame *i* to the pixel although frames between them differed.  The
page may grab one camera frame twice in a row when the camera is slower than its timer; such
*adjacent* runs are reported (``adjacent_duplicates``) but not scored.  A pair counts when the
green channel, every other pixel of every fourth row (no averaging: the noise is kept), differs
by less than ``DUPLICATE_MAD`` grey levels on average (two live frames differ by ≥ 1.3 at the
1st percentile); the candidate pairs come first from a ~512-pixel sample, all pairs at once.

**Grids** (``grid_foreign``, ``grid_aligned``, ``grid_suppressed``).  The page encodes every
frame as a JPEG, whose 8 × 8 block edges sit at fixed columns and rows (``c ≡ 7 mod 8``).
Everything a frame went through *before* the page leaves its own fixed-position pattern too: an
earlier lossy encode on the same grid or on a grid shifted by a crop, an interpolating resize
(periodic interpolation weights; Popescu & Farid 2005), a display's pixel grid recaptured
(moiré).  Each frame's coding artefacts are new, but they sit at the same places, so they
survive in the *difference* of two consecutive frames, where a still background (a fixed
camera's scene) cancels.  Averaged over a few such differences (:data:`GRID_FRAMES` pairs of
the central :data:`GRID_CROP`, to keep the cost down: these lines are weak evidence), the mean
absolute horizontal (vertical) gradient per column (row) is a profile whose fixed patterns
stand out: ``grid_foreign`` is its strongest detrended spectral peak *outside* the page's own 8-px
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
F64 = npt.NDArray[np.float64]
SAMPLE_PX = 512
"""Pixels in the sparse sample that picks the candidate pairs (:func:`_candidates`)."""
CANDIDATE_RMS = 0.75
"""Sample RMS difference (grey levels) below which a pair is compared in full."""
DUPLICATE_MAD = 0.25
"""Half-resolution luma difference (grey levels) below which two frames are the same frame."""
MIN_FRAME_STD = 2.0
"""Frames flatter than this (grey levels; a covered lens, a black frame) are never compared."""
GRID_FRAMES = 8
"""Pairs of consecutive frames averaged for the grid spectra (24 before the cost cut of
2026-12-08: the grid lines are weak evidence only, and 8 pairs on the central crop cost a
sixth; ``scripts/bench_injection.py``)."""
GRID_RUN = 3
"""Consecutive frames per run of pairs (a run of 3 gives 2 pairs from 3 conversions)."""
GRID_CROP = 0.75
"""Share of each side kept, centred: where the face and the most content are."""
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


def _decimated(image: RGBImage) -> npt.NDArray[np.uint8]:
    """Every fourth row, every other pixel, of the green channel: what the repeat test compares.

    Pixel-identical frames are identical in any channel at any sampling, and *not* averaging
    keeps independent sensor noise at full strength (two noisy samples of σ ≈ 1 differ by ≈ 1.1
    grey levels on average), so the test is no weaker than an area-averaged one.  Reading a
    quarter of the rows is what makes it cheap: a full pass over a 640×360 frame costs ~0.1 ms
    here, memory-bound, and a capture has ~110 frames."""
    return np.ascontiguousarray(image[::4, ::2, 1])


def _runs(same_as_previous: Sequence[bool]) -> list[int]:
    """Index of the run each frame belongs to (a run: consecutive identical frames)."""
    run, out = 0, []
    for k, same in enumerate(same_as_previous):
        if k > 0 and not same:
            run += 1
        out.append(run)
    return out


def _mad(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    """Mean absolute difference (grey levels)."""
    return float(cv2.norm(a, b, cv2.NORM_L1)) / a.size


def _candidates(half: Sequence[npt.NDArray[np.uint8]], firsts: Sequence[int]) -> F64:
    """Which pairs of ``firsts`` may be the same frame: the RMS difference of a sparse sample
    (about :data:`SAMPLE_PX` pixels, not averaged: noise kept) below :data:`CANDIDATE_RMS`,
    for all pairs at once (one matrix product).  RMS ≥ mean absolute difference, and a sample
    of two frames the same to within :data:`DUPLICATE_MAD` differs by far less than the line
    (±1 on a quarter of the pixels: RMS 0.5), while two live frames differ by ≥ 1.3 at the 1st
    percentile (measured on ``eval injection``'s sessions)."""
    h, w = half[0].shape
    stride = max(1, round(float(np.sqrt(h * w / SAMPLE_PX))))
    sample = np.stack([half[k][::stride, ::stride].ravel() for k in firsts]).astype(np.float64)
    sample -= sample.mean(axis=0)
    sq = (sample * sample).sum(axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (sample @ sample.T), 0.0)
    return np.asarray(dist2 / sample.shape[1] < CANDIDATE_RMS**2, np.float64)


def repeat_features(images: Sequence[RGBImage]) -> RepeatFeatures:
    """Pixel-identical frames that came back after something else was shown."""
    n = len(images)
    half = [_decimated(img) for img in images]
    usable = np.array([float(cv2.meanStdDev(hf)[1][0, 0]) >= MIN_FRAME_STD for hf in half])

    def same(i: int, j: int) -> bool:
        return bool(usable[i] and usable[j]) and _mad(half[i], half[j]) < DUPLICATE_MAD

    adjacent = [False] + [same(k - 1, k) for k in range(1, n)]
    run_of = _runs(adjacent)
    firsts = [k for k in range(n) if k == 0 or run_of[k] != run_of[k - 1]]
    close = _candidates(half, firsts) if firsts else np.zeros((0, 0))
    repeated_runs: set[int] = set()
    for a_idx, b_idx in zip(*np.nonzero(np.triu(close, 2)), strict=True):
        a, b = firsts[int(a_idx)], firsts[int(b_idx)]
        if run_of[b] not in repeated_runs and same(a, b):
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


def _pair_starts(n: int, max_pairs: int) -> list[int]:
    """First frames of up to ``max_pairs`` consecutive pairs, in runs of :data:`GRID_RUN`
    frames spread evenly over the capture: runs share frames between pairs (each frame is
    converted and calibrated once), spreading samples different content."""
    if n < 2:
        return []
    per_run = GRID_RUN - 1
    runs = max(1, min(-(-max_pairs // per_run), (n - 1) // per_run))
    firsts = sorted({round(k) for k in np.linspace(0, max(0, n - GRID_RUN), runs)})
    starts = {i + j for i in firsts for j in range(per_run) if i + j + 1 < n}
    return sorted(starts)[:max_pairs]


def _crop_box(shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The central :data:`GRID_CROP` of each side, its corner on the page's 8-px grid (so the
    page's block edges stay at ``c ≡ 7 mod 8``); the whole frame when that would be too small."""
    h, w = int(shape[0]), int(shape[1])

    def side(length: int) -> slice:
        keep = int(length * GRID_CROP) // BLOCK_PX * BLOCK_PX
        if keep < 8 * BLOCK_PX:
            return slice(0, length)
        start = (length - keep) // 2 // BLOCK_PX * BLOCK_PX
        return slice(start, start + keep)

    return side(h), side(w)


def grid_features(
    images: Sequence[RGBImage], quality: int = 85, max_pairs: int = GRID_FRAMES
) -> GridFeatures:
    """Foreign and (calibrated) aligned grid strength in the differences of up to
    ``max_pairs`` pairs of consecutive frames (runs spread over the capture; identical pairs
    skipped), on the frames' central :data:`GRID_CROP`; ``quality``: the page's JPEG quality."""
    starts = _pair_starts(len(images), max_pairs)
    rows, cols = _crop_box(images[0].shape) if images else (slice(0), slice(0))
    greys: dict[int, tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]] = {}

    def grey(k: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        if k not in greys:
            g = _grey(images[k][rows, cols])
            greys[k] = (g, _recoded(g, quality))
        return greys[k]

    actual, calibrated = _Profiles(), _Profiles()
    used = 0
    for i in starts:
        (a, a1), (b, b1) = grey(i), grey(i + 1)
        diff = _diff(a, b)
        if float(np.abs(diff).mean()) < MIN_DIFFERENCE:
            continue
        actual.add(diff)
        calibrated.add(_diff(a1, b1))
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
