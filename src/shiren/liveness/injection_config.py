"""What the injection check expects of a genuine capture, and where it draws its lines.

Three kinds of knowledge, kept apart:

* :class:`PageProtocol` — facts about *our* capture page (``api/static/capture/app.js``): it
  grabs a frame every ``frame_interval_ms`` with ``setInterval``, films until ``duration_ms +
  end_extra_ms`` and rounds every ``t_ms`` to ``t_resolution_ms``.  A capture that was not filmed
  by the page does not have to look like this, which is the point; change these when the page
  changes.
* :class:`FlashLatency` — physics: the screen needs at least a refresh to show a colour and the
  camera at least an exposure to see it, so a real reflection shows up *after* the colour starts,
  and a phone's camera pipeline delivers it within a few hundred milliseconds.
* :class:`InjectionThresholds` — per feature, the value at which it counts as suspected and the
  live spread used to put every feature on one scale.  The defaults are the lines the rule of
  ``shiren eval injection`` fits on all the live sessions of the run in docs/LIVENESS.md
  ("Injection attacks", where the same rule, cross-validated by person, is measured); a
  deployment re-measures them with that command, and should on real phones first.

Virtual-camera names (:data:`VIRTUAL_CAMERA_WORDS`) make a *weak* signal only: a label is
whatever the driver says, trivially renamed by an attacker and present on honest machines too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["high", "low"]


@dataclass(frozen=True, slots=True)
class PageProtocol:
    """How the capture page films (mirror of ``api/static/capture/app.js``)."""

    frame_interval_ms: float = 80.0
    """``FRAME_INTERVAL_MS``: the page's ``setInterval`` period."""
    end_extra_ms: float = 300.0
    """The page films until ``duration_ms + end_extra_ms``."""
    t_resolution_ms: float = 0.1
    """``Math.round(tm * 10) / 10``: every ``t_ms`` is a multiple of this."""
    jpeg_quality: int = 85
    """``grab.jpeg(0.85)``: the quality of the page's own encode."""


@dataclass(frozen=True, slots=True)
class FlashLatency:
    """The band of plausible flash-to-reflection delays, and the lags searched."""

    min_ms: float = 20.0
    """A display shows a new colour one refresh (~16.7 ms at 60 Hz) after it is painted at the
    earliest, and the camera needs an exposure to integrate it."""
    max_ms: float = 400.0
    """Display (≤ ~50 ms) plus a phone camera's capture pipeline (≤ ~300 ms) with margin."""
    search_min_ms: float = -300.0
    search_max_ms: float = 800.0
    step_ms: float = 10.0


@dataclass(frozen=True, slots=True)
class FeatureThreshold:
    """One feature's line: suspected when ``value ≥ threshold`` (``direction="high"``) or
    ``value ≤ threshold`` (``"low"``); ``scale`` (> 0) is the live spread that turns a distance
    to the line into the fused score."""

    threshold: float
    scale: float
    direction: Direction = "high"
    decisive: bool = True
    """Decisive: crossing the line makes the capture *suspected* (a live capture through the
    page cannot do it: physics, or a fact of the page's own code).  Weak (False): it only
    suggests review — the line depends on the camera, the source chain, the browser or the
    light, and was measured on simulated chains only."""


def _default_thresholds() -> dict[str, FeatureThreshold]:
    # `shiren eval injection --sessions 5` (seed 0, 2026-12-07, after the cost cut of d2de5c2):
    # the lines fitted on all 60 live sessions of both folds (its `thresholds_recommended`):
    # each the most extreme live value moved outwards by 0.25 × the live spread; the upload,
    # gap and jitter lines are physics (see shiren.eval.injection_eval.PHYSICAL).
    #
    # Which lines decide (issue 17): the physics and the page's own code decide; the fitted
    # lines that depend on the camera, codec chain, browser or light only suggest review
    # (``decisive=False``) — the codec lines do not carry from one source chain to another
    # (cross-validated by person, they alone sent 8 of 60 live sessions to review), and none of
    # these was measured on a phone (docs/LIVENESS.md, "Injection attacks").
    return {
        "timer_mismatch": FeatureThreshold(0.005, 0.005, decisive=False),
        "schedule_ms": FeatureThreshold(5.6, 5.0, decisive=False),
        "off_resolution": FeatureThreshold(0.01, 0.01),
        "jitter_ms": FeatureThreshold(0.05, 0.05, "low"),
        "min_interval_ratio": FeatureThreshold(0.05, 0.05, "low"),
        "upload_deficit_s": FeatureThreshold(0.25, 1.0),
        "repeat_fraction": FeatureThreshold(0.005, 0.005),
        "grid_foreign": FeatureThreshold(11.16, 4.225, decisive=False),
        "grid_aligned": FeatureThreshold(1.217, 0.052, decisive=False),
        "grid_suppressed": FeatureThreshold(1.040, 0.083, "low", decisive=False),
        "flash_response": FeatureThreshold(0.813, 0.100, "low", decisive=False),
        "flash_lag_outside_ms": FeatureThreshold(10.0, 10.0, decisive=False),
    }


WEAK_FEATURES = frozenset(
    {
        "timer_mismatch",
        "schedule_ms",
        "grid_foreign",
        "grid_aligned",
        "grid_suppressed",
        "flash_response",
        "flash_lag_outside_ms",
    }
)
"""Features whose lines only suggest review (see :attr:`FeatureThreshold.decisive`)."""
PAGE_ONLY_FEATURES = frozenset(
    ("timer_mismatch", "schedule_ms", "off_resolution", "jitter_ms", "min_interval_ratio")
)
"""Facts of *our* capture page's timer: judged only on captures the page uploaded, not on a
lender's own client (``POST /v1/sessions/{id}/frames``), whose clock and timer are its own."""


@dataclass(frozen=True, slots=True)
class InjectionThresholds:
    """Every feature's :class:`FeatureThreshold`; a feature without one is measured only."""

    features: Mapping[str, FeatureThreshold] = field(default_factory=_default_thresholds)
    page: PageProtocol = field(default_factory=PageProtocol)
    flash: FlashLatency = field(default_factory=FlashLatency)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Mapping[str, object]]) -> InjectionThresholds:
        """From ``{"feature": {"threshold": …, "scale": …, "direction": "high"|"low",
        "decisive": bool}}`` (the ``thresholds`` object of an ``eval injection`` report;
        ``decisive`` defaults to the feature's shipped tier)."""
        out: dict[str, FeatureThreshold] = {}
        for name, row in raw.items():
            direction = str(row.get("direction", "high"))
            if direction not in ("high", "low"):
                raise ValueError(f"{name}: direction must be 'high' or 'low'")
            threshold, scale = row.get("threshold"), row.get("scale", 1.0)
            if not isinstance(threshold, int | float) or not isinstance(scale, int | float):
                raise ValueError(f"{name}: threshold and scale must be numbers")
            if scale <= 0:
                raise ValueError(f"{name}: scale must be positive")
            decisive = row.get("decisive", name not in WEAK_FEATURES)
            if not isinstance(decisive, bool):
                raise ValueError(f"{name}: decisive must be true or false")
            out[name] = FeatureThreshold(
                float(threshold), float(scale), "high" if direction == "high" else "low", decisive
            )
        return cls(features=out)


VIRTUAL_CAMERA_WORDS = (
    "virtual",
    "obs",
    "manycam",
    "snap camera",
    "xsplit",
    "vcam",
    "droidcam",
    "epoccam",
    "iriun",
    "camtwist",
    "splitcam",
    "youcam",
    "fake",
    "v4l2loopback",
    "dummy",
)
"""Substrings of camera labels that name a known virtual camera or loopback driver."""

DEFAULT_INJECTION_THRESHOLDS = InjectionThresholds()

__all__ = [
    "DEFAULT_INJECTION_THRESHOLDS",
    "PAGE_ONLY_FEATURES",
    "VIRTUAL_CAMERA_WORDS",
    "WEAK_FEATURES",
    "Direction",
    "FeatureThreshold",
    "FlashLatency",
    "InjectionThresholds",
    "PageProtocol",
]
