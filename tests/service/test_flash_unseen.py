"""The colour flash that cannot be seen (issue 17): when every required liveness signal passed
but the flash, whose reflection was too weak to measure, and the face matched, the level's rule
is kept — no pass — and the borrower is not failed either: the level's ``without_flash`` rule
says what follows — ``motion`` (the shipped ``normal``): try again with a motion-only challenge;
``review`` (``high``, and the default): a person decides; ``fallback``: the non-face routes.  A
reflection of the wrong colours is still an attack.

Measured (scripts/measure_flash_unseen.py): a live recording with no reflection, or a 1–3 %
one, swings 0.0009–0.0047 with the face's own colour drift; below ``[colour] unseen_swing``
(0.005) an uncorrelated response reads as inconclusive (not seen), not as a mismatch.  Before
that rule such a face in direct sun was sent to review as an attack cue."""

from __future__ import annotations

from shiren.domain.decisions import Outcome, RetryRules, decide
from shiren.liveness.config import Level
from shiren.liveness.result import LivenessResult, SignalResult
from shiren.reasons import ReasonCode
from shiren.service.checks import flash_unseen

INCONCLUSIVE = (ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE.value,)


def _decide(**kw: object) -> Outcome:
    args: dict[str, object] = {
        "liveness_passed": False,
        "liveness_reasons": INCONCLUSIVE,
        "similarity": 0.9,
        "threshold": 0.7,
        "recent_failures": 0,
        "daily_attempts": 1,
        "rules": RetryRules(),
    }
    return decide(**{**args, **kw}).outcome  # type: ignore[arg-type]


def test_the_decision_rule() -> None:
    assert _decide(flash_unseen=True) is Outcome.REVIEW
    assert _decide(flash_unseen=False) is Outcome.RETRY  # before issue 17: try again
    assert _decide(flash_unseen=True, similarity=0.2) is Outcome.RETRY  # another face: no review
    reasons = decide(
        liveness_passed=False,
        liveness_reasons=INCONCLUSIVE,
        similarity=0.9,
        threshold=0.7,
        recent_failures=0,
        daily_attempts=1,
        rules=RetryRules(),
        flash_unseen=True,
    ).reasons
    assert reasons == (*INCONCLUSIVE, ReasonCode.LIVENESS_FLASH_UNSEEN.value)


def _signal(name: str, passed: bool, *reasons: ReasonCode, required: bool = True) -> SignalResult:
    return SignalResult(name, required, passed, 0.9 if passed else 0.1, None, None, reasons)


def _result(*signals: SignalResult) -> LivenessResult:
    return LivenessResult(
        passed=all(s.passed for s in signals if s.required),
        score=0.3,
        level=Level.NORMAL,
        nonce="n",
        signals={s.name: s for s in signals},
        reasons=tuple(r for s in signals for r in s.reasons),
        frames=40,
        faces_found=40,
        duration_ms=4000.0,
        timings_ms={},
    )


def test_flash_unseen_only_when_the_flash_alone_was_unmeasurable() -> None:
    ok = [_signal(n, True) for n in ("challenge", "identity", "parallax", "passive")]
    unseen = _signal("colour", False, ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE)
    assert flash_unseen(_result(*ok, unseen))
    wrong = _signal("colour", False, ReasonCode.LIVENESS_COLOUR_MISMATCH)  # an attack cue
    assert not flash_unseen(_result(*ok, wrong))
    no_action = _signal("challenge", False, ReasonCode.LIVENESS_ACTION_MISSING)
    assert not flash_unseen(_result(no_action, *ok[1:], unseen))
    optional = _signal("colour", False, ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE, required=False)
    assert not flash_unseen(_result(*ok, optional))  # passed: nothing to excuse
    assert not flash_unseen(_result(*ok, _signal("colour", True)))


def test_the_borrower_is_not_told_to_prove_they_are_live() -> None:
    from shiren.service.capture_texts import advice_for

    codes = [*INCONCLUSIVE, ReasonCode.LIVENESS_FLASH_UNSEEN.value]
    assert advice_for(codes) == []
    assert advice_for(list(INCONCLUSIVE)) == ["not_live"]


def test_the_level_rule_picks_the_rung_of_the_ladder() -> None:
    assert _decide(flash_unseen=True, without_flash="motion") is Outcome.RETRY
    assert _decide(flash_unseen=True, without_flash="review") is Outcome.REVIEW
    assert _decide(flash_unseen=True, without_flash="fallback") is Outcome.FALLBACK
    # a capture without the flash that passed every signal it had, at a level that does not
    # pass those: never a pass
    required = (ReasonCode.LIVENESS_FLASH_REQUIRED.value,)
    assert _decide(liveness_reasons=required, without_flash="review") is Outcome.REVIEW
    assert _decide(liveness_reasons=required, without_flash="fallback") is Outcome.FALLBACK
    # another face is no reason to ask a person
    assert _decide(liveness_reasons=required, similarity=0.2) is not Outcome.PASS
