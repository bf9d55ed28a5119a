"""The colour flash that cannot be seen (issue 17): when every required liveness signal passed
but the flash, whose reflection was too weak to measure, and the face matched, the level's rule
is kept — no pass — and the borrower is not failed either: the check goes to review with
``liveness.flash_unseen``.  A reflection of the wrong colours is still an attack.

Measured while writing this: a live recording rendered with NO reflection at all (gain 0) reads
as ``liveness.colour_mismatch``, not inconclusive — the face's own colour drift is a swing large
enough to measure — so a borrower in direct sun may be sent to review as an attack cue rather
than as ``flash_unseen``; either way never a pass and never a silent retry loop."""

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
