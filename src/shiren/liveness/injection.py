"""Injection-attack detection: were these frames filmed by the capture page, or fed to it?

A *presentation* attack puts something in front of a real camera (a photo, a screen, a mask);
the liveness signals catch those.  An *injection* attack skips the camera: a virtual camera
playing a recording, a script uploading frames it made, a stream re-encoded on its way
(CEN/TS 18099 names these "injection attack instruments").  Its frames can show a perfectly
live face, so the question is not "is the face live?" but "did these frames come from a camera
filming now, through our page?".  This module answers from the evidence a submitted capture
already carries, with no model of its own:

============================  ========  =========================================================
feature                       group     suspected when
============================  ========  =========================================================
``timer_mismatch``            timing    the frame interval is not the page's timer
``schedule_ms``               timing    the capture does not start / end where the page's would
``off_resolution``            timing    times are not on the page's 0.1 ms grid
``jitter_ms``                 timing    intervals are too regular for a browser timer (low)
``min_interval_ratio``        timing    two frames closer than the timer allows (low)
``upload_deficit_s``          timing    more filming claimed than server time passed (physics)
``repeat_fraction``           frames    frames repeat pixel for pixel after other frames (loops)
``grid_foreign``              codec     a compression / resampling / display grid the page's
                                        JPEG does not make
``grid_aligned``              codec     block edges on the page's grid stronger than one JPEG
``grid_suppressed``           codec     … or weaker (an earlier grid elsewhere, a resample) (low)
``flash_response``            flash     the skin does not answer the colour flash (low)
``flash_lag_outside_ms``      flash     it answers at a lag no screen-and-camera has
============================  ========  =========================================================

Details of each: :mod:`~shiren.liveness.injection_timing`, :mod:`~shiren.liveness.injection_frames`,
:mod:`~shiren.liveness.injection_flash`; the lines: :mod:`~shiren.liveness.injection_config`.

Decisive and weak lines (:attr:`~shiren.liveness.injection_config.FeatureThreshold.decisive`):
the physics (upload earlier than filming could have finished, an exact timeline, an impossible
gap, frames repeated after others) and the page's own time format decide — a capture crossing
one is *suspected*; the fitted lines that depend on the camera, codec chain, browser or light
(the grids, the flash, the page timer's pattern) only set ``review_suggested``, as does the
camera's label (``MediaStreamTrack.label``) naming a virtual camera.

Use :func:`assess_injection` (measure and judge); :func:`measure_injection` and :func:`judge`
separately when the same capture is judged under several threshold sets (the evaluation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shiren.liveness.challenge import Challenge
from shiren.liveness.frames import FrameSequence
from shiren.liveness.injection_config import (
    DEFAULT_INJECTION_THRESHOLDS,
    PAGE_ONLY_FEATURES,
    VIRTUAL_CAMERA_WORDS,
    Direction,
    FeatureThreshold,
    InjectionThresholds,
)
from shiren.liveness.injection_flash import flash_features
from shiren.liveness.injection_frames import grid_features, repeat_features
from shiren.liveness.injection_timing import UploadTiming, timing_features
from shiren.liveness.signals import FaceSignals
from shiren.reasons import ReasonCode

FEATURES: dict[str, tuple[str, str]] = {
    "timer_mismatch": ("timing", "timing.page_timer"),
    "schedule_ms": ("timing", "timing.schedule"),
    "off_resolution": ("timing", "timing.format"),
    "jitter_ms": ("timing", "timing.too_regular"),
    "min_interval_ratio": ("timing", "timing.impossible_gap"),
    "upload_deficit_s": ("timing", "timing.upload_too_early"),
    "repeat_fraction": ("frames", "frames.repeated"),
    "grid_foreign": ("codec", "codec.foreign_grid"),
    "grid_aligned": ("codec", "codec.double_compression"),
    "grid_suppressed": ("codec", "codec.shifted_grid"),
    "flash_response": ("flash", "flash.no_response"),
    "flash_lag_outside_ms": ("flash", "flash.latency"),
}
"""Feature name → (group, sub-kind reported in the evidence when it fires)."""
CAMERA_LABEL_SUB_KIND = "camera.virtual_label"
Source = Literal["page", "api"]
"""Who uploaded the capture: our capture page, or a lender's own client through the API."""


@dataclass(frozen=True, slots=True)
class InjectionFeatures:
    """Raw measurements of one capture (None: not measurable or not given)."""

    values: Mapping[str, float | None]
    details: Mapping[str, float | int | str | bool | None]
    camera_label: str | None = None
    timings_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InjectionSignal:
    """One feature judged against its line.

    ``margin`` is the signed distance past the line in units of the live spread (``scale``):
    ``≥ 0`` ⇔ suspected; None when the feature was not measured or has no threshold.
    """

    name: str
    group: str
    sub_kind: str
    value: float | None
    threshold: float | None
    direction: Direction
    suspected: bool
    margin: float | None
    decisive: bool = True
    """Whether crossing the line makes the capture suspected (else: review suggested)."""


@dataclass(frozen=True, slots=True)
class InjectionResult:
    """The verdict on one capture.

    ``suspected``: at least one *decisive* feature crossed its line (reason
    ``liveness.injection_suspected``; ``sub_kinds`` name what fired, for the audit log and the
    lender's back office, never for the borrower).  ``review_suggested``: only weak evidence —
    a weak feature's line (codec grids, the flash, the page's timer pattern) or a
    virtual-camera label (reason ``liveness.injection_weak_signal``).  ``score``: the largest
    margin over the measured features (``≥ 0`` ⇔ some line crossed; higher = more suspicious).
    """

    suspected: bool
    review_suggested: bool
    score: float | None
    reasons: tuple[ReasonCode, ...]
    sub_kinds: tuple[str, ...]
    signals: Mapping[str, InjectionSignal]
    features: InjectionFeatures

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence (numbers and codes only: no pixels)."""
        return {
            "suspected": self.suspected,
            "review_suggested": self.review_suggested,
            "score": self.score,
            "sub_kinds": list(self.sub_kinds),
            "features": {
                name: {
                    "value": _rounded(s.value),
                    "threshold": s.threshold,
                    "fired": s.suspected,
                    "decisive": s.decisive,
                }
                for name, s in self.signals.items()
            },
            "details": dict(self.features.details),
        }


def virtual_camera_label(label: str | None) -> bool:
    """Whether a camera label names a known virtual camera or loopback driver."""
    low = (label or "").lower()
    return any(word in low for word in VIRTUAL_CAMERA_WORDS)


def measure_injection(
    challenge: Challenge,
    frames: FrameSequence,
    *,
    signals: FaceSignals | None = None,
    upload: UploadTiming | None = None,
    camera_label: str | None = None,
    thresholds: InjectionThresholds = DEFAULT_INJECTION_THRESHOLDS,
) -> InjectionFeatures:
    """Every feature of one capture (see :func:`assess_injection` for the inputs)."""
    spent: dict[str, float] = {}
    t0 = time.perf_counter()
    timing = timing_features(frames.times_ms, challenge, thresholds.page, upload)
    t1 = time.perf_counter()
    images = [f.image for f in frames.frames]
    repeats = repeat_features(images)
    t2 = time.perf_counter()
    grid = grid_features(images, thresholds.page.jpeg_quality)
    t3 = time.perf_counter()
    flash = flash_features(challenge, frames, signals, thresholds.flash) if signals else None
    t4 = time.perf_counter()
    spent |= {"timing": t1 - t0, "repeats": t2 - t1, "grid": t3 - t2, "flash": t4 - t3}
    values: dict[str, float | None] = {
        "timer_mismatch": timing.timer_mismatch,
        "schedule_ms": timing.schedule_ms,
        "off_resolution": timing.off_resolution,
        "jitter_ms": timing.jitter_ms,
        "min_interval_ratio": timing.min_interval_ratio,
        "upload_deficit_s": timing.upload_deficit_s,
        "repeat_fraction": repeats.repeat_fraction,
        "grid_foreign": grid.grid_foreign,
        "grid_aligned": grid.grid_aligned,
        "grid_suppressed": grid.grid_aligned,
        "flash_response": None if flash is None else flash.flash_response,
        "flash_lag_outside_ms": None if flash is None else flash.flash_lag_outside_ms,
    }
    details: dict[str, float | int | str | bool | None] = {
        "frames": len(frames),
        "median_interval_ms": timing.median_interval_ms,
        "first_ms": timing.first_ms,
        "last_ms": timing.last_ms,
        "repeated_frames": repeats.repeated_frames,
        "adjacent_duplicates": repeats.adjacent_duplicates,
        "foreign_period_px": grid.foreign_period_px,
        "block_edge_ratio": grid.block_edge_ratio,
        "grid_frames": grid.frames_used,
        "flash_measured": None if flash is None else flash.measured,
        "flash_best_lag_ms": None if flash is None else flash.best_lag_ms,
        "flash_best_corr": None if flash is None else flash.best_corr,
        "flash_swing": None if flash is None else flash.swing,
        "virtual_camera_label": virtual_camera_label(camera_label),
    }
    return InjectionFeatures(
        values=values,
        details=details,
        camera_label=camera_label,
        timings_ms={k: v * 1000.0 for k, v in spent.items()},
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _judge_one(name: str, value: float | None, line: FeatureThreshold | None) -> InjectionSignal:
    group, sub_kind = FEATURES.get(name, ("other", name))
    if value is None or line is None:
        direction: Direction = "high" if line is None else line.direction
        threshold = None if line is None else line.threshold
        decisive = line is not None and line.decisive
        return InjectionSignal(
            name, group, sub_kind, value, threshold, direction, False, None, decisive
        )
    past = value - line.threshold if line.direction == "high" else line.threshold - value
    margin = past / line.scale
    return InjectionSignal(
        name,
        group,
        sub_kind,
        value,
        line.threshold,
        line.direction,
        margin >= 0.0,
        margin,
        line.decisive,
    )


def judge(
    features: InjectionFeatures, thresholds: InjectionThresholds, *, source: Source = "page"
) -> InjectionResult:
    """Each feature against its line: suspected when a decisive one crossed it, review
    suggested when only weak ones (or the camera label) did.  ``source="api"``: a lender's own
    client uploaded the capture, so the page's timer facts
    (:data:`~shiren.liveness.injection_config.PAGE_ONLY_FEATURES`) are not judged."""
    lines = thresholds.features
    if source == "api":
        lines = {k: v for k, v in lines.items() if k not in PAGE_ONLY_FEATURES}
    signals = {
        name: _judge_one(name, value, lines.get(name)) for name, value in features.values.items()
    }
    decisive = tuple(s.sub_kind for s in signals.values() if s.suspected and s.decisive)
    weak = tuple(s.sub_kind for s in signals.values() if s.suspected and not s.decisive)
    label = bool(features.details.get("virtual_camera_label"))
    margins = [s.margin for s in signals.values() if s.margin is not None]
    suspected = bool(decisive)
    review = not suspected and (bool(weak) or label)
    reasons: tuple[ReasonCode, ...] = ()
    if suspected:
        reasons = (ReasonCode.LIVENESS_INJECTION_SUSPECTED,)
    elif review:
        reasons = (ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL,)
    return InjectionResult(
        suspected=suspected,
        review_suggested=review,
        score=max(margins) if margins else None,
        reasons=reasons,
        sub_kinds=decisive + weak + ((CAMERA_LABEL_SUB_KIND,) if label else ()),
        signals=signals,
        features=features,
    )


def assess_injection(
    challenge: Challenge,
    frames: FrameSequence,
    *,
    signals: FaceSignals | None = None,
    upload: UploadTiming | None = None,
    camera_label: str | None = None,
    thresholds: InjectionThresholds = DEFAULT_INJECTION_THRESHOLDS,
    source: Source = "page",
) -> InjectionResult:
    """Judge whether a capture's frames were injected rather than filmed live by the page.

    Inputs, and where each comes from in a submitted capture:

    * ``challenge``: the session's signed :class:`~shiren.liveness.challenge.Challenge` (its
      colour steps and ``duration_ms`` are the schedule the page followed);
    * ``frames``: the validated upload (:func:`shiren.liveness.frames.from_encoded` over the
      multipart ``frames`` parts, with ``t_ms`` from the ``meta`` part) — the *decoded* JPEGs
      exactly as uploaded (never re-encoded or resized first: that would erase the grids);
    * ``signals``: the :class:`~shiren.liveness.signals.FaceSignals` the liveness check already
      computed from the same frames (meshes, inter-ocular distances); without them the flash
      features are not measured;
    * ``upload``: :class:`~shiren.liveness.injection_timing.UploadTiming` on the server's clock —
      ``started_not_before`` = the later of when the capture page fetched the challenge and when
      the borrower's consent was recorded; ``received_at`` = when the upload arrived; without it
      ``upload_deficit_s`` is not measured;
    * ``camera_label``: the page's ``MediaStreamTrack.label`` if it sends one (weak signal only);
    * ``thresholds``: the lines (defaults measured by ``shiren eval injection``);
    * ``source``: ``"page"`` (our capture page) or ``"api"`` (a lender's client: the page's
      timer facts are not judged).

    Pure: no model, no I/O.  Cost on one core of this project's shared 2-core machine
    (``scripts/bench_injection.py``, ~110-frame 640×360 captures): see docs/LIVENESS.md.
    """
    features = measure_injection(
        challenge,
        frames,
        signals=signals,
        upload=upload,
        camera_label=camera_label,
        thresholds=thresholds,
    )
    return judge(features, thresholds, source=source)


__all__ = [
    "CAMERA_LABEL_SUB_KIND",
    "FEATURES",
    "InjectionFeatures",
    "InjectionResult",
    "InjectionSignal",
    "Source",
    "UploadTiming",
    "assess_injection",
    "judge",
    "measure_injection",
    "virtual_camera_label",
]
