"""Decisions: pass, retry, manual review or fallback — and the retry / lock-out rules.

Face must never be the only path: whenever the face check cannot pass (too many failed tries, a
locked subject, a suspected attack, a borderline match), the decision names the non-face methods
the lender may use instead.  The rules here are pure: attempt counts come in as numbers (the
service keeps them in Redis or in process).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shiren.domain.injection_policy import InjectionVerdict
from shiren.reasons import ReasonCode


class Outcome(StrEnum):
    PASS = "pass"
    RETRY = "retry"
    REVIEW = "review"
    FALLBACK = "fallback"


FALLBACKS = ("sms_otp", "bank_card_4", "authority_name_id", "manual_review")
SECOND_FACTORS = ("bank_card_4", "authority_name_id", "sms_otp")
"""What a grey-zone match asks for (JR/T 0299 asks for two measures besides the ID anyway)."""

# Failures the borrower can fix by trying again (light, pose, the prompt); everything else that
# points at an attack goes to review or fallback rather than inviting the attacker to iterate.
RETRYABLE = frozenset(
    {
        ReasonCode.LIVENESS_ACTION_MISSING,
        ReasonCode.LIVENESS_UNEXPECTED_ACTION,
        ReasonCode.LIVENESS_FACE_LOST,
        ReasonCode.LIVENESS_MULTIPLE_FACES,
        ReasonCode.LIVENESS_INSUFFICIENT_MOTION,
        ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE,
        ReasonCode.LIVENESS_CHALLENGE_EXPIRED,
        # read the digits (issue 18): a digit not heard in its window is the spoken "action
        # missing" (a soft voice, a noisy room); a voice out of step with the mouth is not
        ReasonCode.LIVENESS_SPEECH_MISMATCH,
        # ... and either one in a room too noisy to judge the voice: read again somewhere
        # quieter (the retry rules still cap the attempts)
        ReasonCode.LIVENESS_TOO_NOISY,
        # the passive model could not judge the face (issue 17): better light, face the camera
        ReasonCode.QUALITY_TOO_DARK,
        ReasonCode.QUALITY_OVEREXPOSED,
        ReasonCode.QUALITY_POSE_YAW,
        ReasonCode.QUALITY_POSE_PITCH,
    }
)
ATTACK = frozenset(
    {
        ReasonCode.LIVENESS_SPOOF_SUSPECTED,
        ReasonCode.LIVENESS_FLAT_MOTION,
        ReasonCode.LIVENESS_COLOUR_MISMATCH,
        ReasonCode.LIVENESS_FACE_CHANGED,
        ReasonCode.LIVENESS_CHALLENGE_MISMATCH,
        ReasonCode.LIVENESS_REPLAY_SUSPECTED,
        ReasonCode.LIVENESS_INJECTION_SUSPECTED,
    }
)


@dataclass(frozen=True, slots=True)
class RetryRules:
    """ "5 failures in 3 minutes → 30-minute cool-off; a daily cap per ID number"."""

    max_failures: int = 5
    window_s: int = 180
    cooloff_s: int = 1800
    daily_cap: int = 20
    review_margin: float = 0.02
    """A live face whose similarity is below the threshold by less than this goes to review."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    fallbacks: tuple[str, ...] = ()
    retry_after_s: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "reasons": list(self.reasons),
            "fallbacks": list(self.fallbacks),
            "retry_after_s": self.retry_after_s,
        }


def decide(
    *,
    liveness_passed: bool,
    liveness_reasons: tuple[str, ...],
    similarity: float | None,
    threshold: float,
    recent_failures: int,
    daily_attempts: int,
    rules: RetryRules,
    grey_threshold: float | None = None,
    flash_unseen: bool = False,
    without_flash: str = "review",
) -> Decision:
    """The outcome of one check.  ``recent_failures`` counts failures in the rolling window
    *before* this check; ``daily_attempts`` the attempts today for this ID number, this one
    included.

    ``grey_threshold`` (issue 14): a live face scoring in ``[grey_threshold, threshold)`` lies
    between the threshold that keeps every measured cohort at the target FMR and the one
    calibrated on identity-labelled impostor pairs: the face is probably the person, but not
    surely for every population.  That is not a failure of the borrower: the decision asks for
    a non-face factor (``fallback`` with ``match.second_factor_required``), no attempt counted
    against them.

    ``flash_unseen`` (issue 17): liveness failed only on the colour flash, whose reflection was
    too weak to measure, every other required signal having passed; ``liveness.flash_required``
    among the reasons: a capture without the flash (motion-only, recorded) passed every signal it
    had, at a level that does not pass those.  Never a pass; the face matched, so not the
    borrower's failure either.  The level's ``without_flash`` rule says what follows (the light
    ladder): ``motion`` — an unseen flash is retried with a motion-only challenge (``retry``,
    the next attempt drawn without the flash); ``review`` — a person decides; ``fallback`` — the
    non-face routes."""
    matched = similarity is not None and similarity >= threshold
    if liveness_passed and matched:
        return Decision(Outcome.PASS, (ReasonCode.MATCH_ABOVE_THRESHOLD.value,))
    reasons = list(liveness_reasons)
    if (
        liveness_passed
        and similarity is not None
        and grey_threshold is not None
        and grey_threshold <= similarity < threshold
    ):
        return Decision(
            Outcome.FALLBACK, (ReasonCode.MATCH_SECOND_FACTOR_REQUIRED.value,), SECOND_FACTORS
        )
    flash_required = ReasonCode.LIVENESS_FLASH_REQUIRED.value in liveness_reasons
    if (flash_unseen or flash_required) and matched:
        if flash_unseen:
            reasons.append(ReasonCode.LIVENESS_FLASH_UNSEEN.value)
            if without_flash == "motion":
                return Decision(Outcome.RETRY, tuple(reasons))
        if without_flash == "fallback":
            return Decision(Outcome.FALLBACK, tuple(reasons), FALLBACKS)
        return Decision(Outcome.REVIEW, tuple(reasons), FALLBACKS)
    if liveness_passed and not matched:
        reasons.append(ReasonCode.MATCH_BELOW_THRESHOLD.value)
    failures = recent_failures + 1
    if daily_attempts >= rules.daily_cap:
        return Decision(Outcome.FALLBACK, (*reasons, ReasonCode.LIMIT_DAILY_CAP.value), FALLBACKS)
    if failures >= rules.max_failures:
        return Decision(
            Outcome.FALLBACK, (*reasons, ReasonCode.LIMIT_LOCKED.value), FALLBACKS, rules.cooloff_s
        )
    if any(r in ATTACK for r in liveness_reasons):
        return Decision(Outcome.REVIEW, tuple(reasons), FALLBACKS)
    if liveness_passed and similarity is not None and threshold - similarity <= rules.review_margin:
        return Decision(Outcome.REVIEW, tuple(reasons), FALLBACKS)
    if liveness_passed or all(r in RETRYABLE for r in liveness_reasons):
        return Decision(Outcome.RETRY, tuple(reasons))
    return Decision(Outcome.REVIEW, tuple(reasons), FALLBACKS)


def apply_injection(decision: Decision, injection: InjectionVerdict | None) -> Decision:
    """The decision after the tenant's injection mode (issue 17;
    :mod:`shiren.domain.injection_policy`).  ``fails``: the capture fails as an attack — its
    reason joins the others and the check goes to review with the non-face routes, as every
    attack does (a lock-out or the daily cap keeps its fallback); ``review``: a pass or a retry
    becomes a review (an attacker is not invited to iterate), anything graver keeps its outcome
    and gains the reason; neither: unchanged (shadow, or nothing found)."""
    if injection is None or injection.reason is None or not (injection.fails or injection.review):
        return decision
    reasons = tuple(dict.fromkeys((*decision.reasons, injection.reason)))
    if decision.outcome is Outcome.PASS:
        reasons = tuple(r for r in reasons if r != ReasonCode.MATCH_ABOVE_THRESHOLD.value)
    locked = any(r.startswith("limit.") for r in decision.reasons)
    if decision.outcome is Outcome.FALLBACK and (locked or not injection.fails):
        return Decision(decision.outcome, reasons, decision.fallbacks, decision.retry_after_s)
    if decision.outcome is Outcome.REVIEW or injection.fails:
        return Decision(Outcome.REVIEW, reasons, FALLBACKS, decision.retry_after_s)
    return Decision(Outcome.REVIEW, reasons, FALLBACKS)


__all__ = [
    "ATTACK",
    "FALLBACKS",
    "RETRYABLE",
    "SECOND_FACTORS",
    "Decision",
    "Outcome",
    "RetryRules",
    "apply_injection",
    "decide",
]
