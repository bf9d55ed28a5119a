"""The liveness verdict: :class:`LivenessResult`, one :class:`SignalResult` per signal.

Each signal's value is mapped to a ``score`` in [0, 1] with 0.5 exactly at its threshold
(:func:`normalised`), so the fused score of :mod:`shiren.liveness.check` (the smallest of the
required signals' scores) satisfies ``score ≥ 0.5 ⇔ passed``.  The per-signal builders turn each
signal module's outcome (actions, colour, parallax) into that common shape, with the details a
reviewer needs to see why it passed or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shiren.liveness.actions import ChallengeOutcome
from shiren.liveness.config import Level
from shiren.liveness.flash import ColourOutcome
from shiren.liveness.parallax import ParallaxOutcome
from shiren.messages import message
from shiren.models.protocols import ModelInfo
from shiren.reasons import ReasonCode


@dataclass(frozen=True, slots=True)
class SignalResult:
    """One signal's verdict.  ``score`` is in [0, 1] with 0.5 at the threshold."""

    name: str
    required: bool
    passed: bool
    score: float
    value: float | None
    threshold: float | None
    reasons: tuple[ReasonCode, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "passed": self.passed,
            "score": round(self.score, 4),
            "value": None if self.value is None else round(self.value, 5),
            "threshold": self.threshold,
            "reasons": [r.value for r in self.reasons],
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class LivenessResult:
    passed: bool
    score: float
    level: Level
    nonce: str
    signals: dict[str, SignalResult]
    reasons: tuple[ReasonCode, ...]
    frames: int
    faces_found: int
    duration_ms: float
    timings_ms: dict[str, float]
    models: tuple[ModelInfo, ...] = ()
    variant: str = "live"
    """How the challenge was answered (:class:`~shiren.liveness.challenge.Variant`)."""

    @property
    def carried_by(self) -> tuple[str, ...]:
        """The required signals that passed: what this decision stands on (a capture without
        the colour flash names no ``colour``)."""
        return tuple(k for k, v in self.signals.items() if v.required and v.passed)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "passed": self.passed,
            "variant": self.variant,
            "carried_by": list(self.carried_by),
            "score": round(self.score, 4),
            "level": self.level.value,
            "nonce": self.nonce,
            "reasons": [r.value for r in self.reasons],
            "messages": [message(r, lang) for r in self.reasons],
            "signals": {k: v.to_dict() for k, v in self.signals.items()},
            "frames": self.frames,
            "faces_found": self.faces_found,
            "duration_ms": round(self.duration_ms, 1),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "models": [
                {"name": m.name, "version": m.version, "sha256": m.sha256} for m in self.models
            ],
        }


def normalised(value: float | None, threshold: float, span: float) -> float:
    """[0, 1], 0.5 at ``threshold``; ``span`` above the threshold reaches 1."""
    if value is None or not np.isfinite(value):
        return 0.0
    if value < threshold:
        return float(max(0.0, 0.5 * value / threshold)) if threshold > 0 else 0.0
    return float(min(1.0, 0.5 + 0.5 * (value - threshold) / span))


def challenge_signal(outcome: ChallengeOutcome, required: bool) -> SignalResult:
    return SignalResult(
        "challenge",
        required,
        outcome.passed,
        (0.5 + 0.5 * outcome.score) if outcome.passed else 0.5 * outcome.score,
        outcome.score,
        1.0,
        outcome.reasons,
        {"actions": [a.to_dict() for a in outcome.actions]},
    )


def parallax_signal(par: ParallaxOutcome, threshold: float, required: bool) -> SignalResult:
    return SignalResult(
        "parallax",
        required,
        par.passed,
        normalised(par.score, threshold, threshold),
        par.score,
        threshold,
        () if par.reason is None else (par.reason,),
        {
            "yaw_span_deg": round(par.yaw_span_deg, 2),
            "pairs": [{"from": a, "to": b, "residual": r, "points": n} for a, b, r, n in par.pairs],
        },
    )


def colour_signal(col: ColourOutcome, threshold: float, required: bool) -> SignalResult:
    return SignalResult(
        "colour",
        required,
        col.passed,
        normalised(col.score, threshold, 1.0 - threshold),
        col.score,
        threshold,
        () if col.reason is None else (col.reason,),
        {"lag_ms": col.lag_ms, "swing": round(col.swing, 5), "steps_measured": col.steps_measured},
    )


__all__ = [
    "LivenessResult",
    "SignalResult",
    "challenge_signal",
    "colour_signal",
    "normalised",
    "parallax_signal",
]
