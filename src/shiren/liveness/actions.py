"""Active challenge: was each asked action done, in its own time window, from a neutral start?

Every action is a *response curve* over time, relative to the person's own baseline and scaled
so that 1.0 is "done" (:func:`responses`):

* ``blink``: ``(1 − EAR / baseline) / (1 − blink_closed_ratio)`` — eyes closing relative to
  *their* open eyes (small eyes, glasses and squints move the baseline, not the decision);
* ``open_mouth``: ``(MAR − baseline) / mouth_open_delta`` (a beard does not change MAR);
* ``turn_left`` / ``turn_right``: yaw change towards that side / ``turn_delta_deg``;
* ``nod``: ``|pitch change| / nod_delta_deg``.

An action counts when, inside its window (± a latency slack), the curve rises from below
``neutral_fraction`` to ≥ 1 (a blink must also reopen within ``blink_max_ms``).  Starting from
neutral is what makes a recording that is "always turned" or "always open-mouthed" fail.  A
*foreign* action (another large action fully done inside a window, e.g. turning right when asked
to turn left) fails the challenge: a video that keeps doing everything would otherwise pass any
challenge.  Blinks are never foreign (people blink every few seconds), and a nod is not foreign
in a turn window (turning moves the pitch estimate a little).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiren.liveness.challenge import Action, ActionStep, Challenge
from shiren.liveness.config import ActionThresholds
from shiren.liveness.signals import F64, Baseline, FaceSignals
from shiren.reasons import ReasonCode

MIN_FRAMES_PER_WINDOW = 2


def responses(signals: FaceSignals, base: Baseline, th: ActionThresholds) -> dict[Action, F64]:
    """Each action's response curve (``nan`` where there is no face)."""
    blink_scale = max(1e-6, 1.0 - th.blink_closed_ratio)
    frontal = np.abs(signals.yaw - base.yaw) <= FRONTAL_FOR_MOUTH_DEG
    return {
        Action.BLINK: (1.0 - signals.ear / max(base.ear, 1e-6)) / blink_scale,
        Action.OPEN_MOUTH: np.where(
            frontal, (signals.mar - base.mar) / th.mouth_open_delta, np.nan
        ),
        Action.TURN_LEFT: (signals.yaw - base.yaw) / th.turn_delta_deg,
        Action.TURN_RIGHT: (base.yaw - signals.yaw) / th.turn_delta_deg,
        Action.NOD: np.abs(signals.pitch - base.pitch) / th.nod_delta_deg,
    }


FOREIGN: dict[Action, tuple[Action, ...]] = {
    Action.BLINK: (Action.OPEN_MOUTH, Action.TURN_LEFT, Action.TURN_RIGHT),
    Action.OPEN_MOUTH: (Action.TURN_LEFT, Action.TURN_RIGHT),
    Action.TURN_LEFT: (Action.TURN_RIGHT, Action.OPEN_MOUTH),
    Action.TURN_RIGHT: (Action.TURN_LEFT, Action.OPEN_MOUTH),
    Action.NOD: (Action.TURN_LEFT, Action.TURN_RIGHT, Action.OPEN_MOUTH),
}
FRONTAL_FOR_MOUTH_DEG = 25.0
"""The mouth ratio is read only where the head is within this yaw of its baseline: on a face
turned further the inner-lip points are guessed, not seen."""


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action: Action
    start_ms: int
    end_ms: int
    detected: bool
    score: float
    """Peak response, capped at 1 (1 = fully done)."""
    peak_ms: float | None
    frames: int
    foreign: tuple[str, ...] = ()
    reason: ReasonCode | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "window_ms": [self.start_ms, self.end_ms],
            "detected": self.detected,
            "score": round(self.score, 4),
            "peak_ms": None if self.peak_ms is None else round(self.peak_ms, 1),
            "frames": self.frames,
            "foreign": list(self.foreign),
            "reason": None if self.reason is None else self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class ChallengeOutcome:
    passed: bool
    score: float
    actions: tuple[ActionOutcome, ...]
    reasons: tuple[ReasonCode, ...]


def _blink(
    curve: F64, t: F64, idx: np.ndarray, th: ActionThresholds
) -> tuple[bool, float, float | None]:
    """A closed frame with an open frame before and after it, all within ``blink_max_ms``."""
    open_level = (1.0 - th.blink_open_ratio) / max(1e-6, 1.0 - th.blink_closed_ratio)
    best = float(np.nanmax(curve[idx])) if idx.size else 0.0
    for k, i in enumerate(idx):
        if not curve[i] >= 1.0:
            continue
        before = [j for j in idx[:k] if curve[j] <= open_level and t[i] - t[j] <= th.blink_max_ms]
        after = [
            j for j in idx[k + 1 :] if curve[j] <= open_level and t[j] - t[i] <= th.blink_max_ms
        ]
        if before and after:
            return True, 1.0, float(t[i])
    return False, max(0.0, min(best, 0.99)), None


def _rise(
    curve: F64, t: F64, idx: np.ndarray, neutral: float, level: float = 1.0
) -> tuple[bool, float, float | None]:
    """The curve reaches ``level`` after having been below ``neutral`` earlier in the window
    (an onset inside the window: returning from an earlier action is a fall, not a rise)."""
    seen_neutral = False
    best = 0.0
    for i in idx:
        value = float(curve[i])
        if value < neutral:
            seen_neutral = True
        if seen_neutral and value >= level:
            return True, 1.0, float(t[i])
        best = max(best, value)
    return False, max(0.0, min(best, 0.99)), None


def _window(signals: FaceSignals, lo: float, hi: float) -> np.ndarray:
    return np.flatnonzero(signals.found & (signals.t_ms >= lo) & (signals.t_ms <= hi))


def check_step(
    step: ActionStep,
    signals: FaceSignals,
    curves: dict[Action, F64],
    th: ActionThresholds,
) -> ActionOutcome:
    slack = th.window_slack_ms
    idx = _window(signals, step.start_ms - slack, step.end_ms + slack)
    if idx.size < MIN_FRAMES_PER_WINDOW:
        return ActionOutcome(
            step.action,
            step.start_ms,
            step.end_ms,
            False,
            0.0,
            None,
            int(idx.size),
            reason=ReasonCode.LIVENESS_FACE_LOST,
        )
    curve = curves[step.action]
    if step.action is Action.BLINK:
        done, score, peak = _blink(curve, signals.t_ms, idx, th)
    else:
        done, score, peak = _rise(curve, signals.t_ms, idx, th.neutral_fraction)
    inner = _window(signals, step.start_ms, step.end_ms)
    foreign = tuple(
        other.value
        for other in FOREIGN[step.action]
        if _rise(curves[other], signals.t_ms, inner, th.neutral_fraction, th.foreign_fraction)[0]
    )
    reason = None
    if not done:
        reason = ReasonCode.LIVENESS_ACTION_MISSING
    elif foreign:
        reason = ReasonCode.LIVENESS_UNEXPECTED_ACTION
    return ActionOutcome(
        step.action,
        step.start_ms,
        step.end_ms,
        done and not foreign,
        score,
        peak,
        int(idx.size),
        foreign,
        reason,
    )


def check_challenge(
    challenge: Challenge, signals: FaceSignals, base: Baseline, th: ActionThresholds
) -> ChallengeOutcome:
    curves = responses(signals, base, th)
    outcomes = tuple(check_step(step, signals, curves, th) for step in challenge.actions)
    reasons = tuple(dict.fromkeys(o.reason for o in outcomes if o.reason is not None))
    score = float(min(o.score if not o.foreign else 0.0 for o in outcomes)) if outcomes else 0.0
    return ChallengeOutcome(
        passed=all(o.detected for o in outcomes), score=score, actions=outcomes, reasons=reasons
    )


__all__ = [
    "FOREIGN",
    "ActionOutcome",
    "ChallengeOutcome",
    "check_challenge",
    "check_step",
    "responses",
]
