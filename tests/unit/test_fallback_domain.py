"""The fallback state machine and its policy (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shiren.domain.fallback import (
    FallbackFlow,
    FallbackPolicy,
    FallbackStatus,
    FallbackTrigger,
    StepKind,
    close_review,
    decision_of,
    load_fallback_policy,
    parse_fallback_policy,
    record_step,
    require_step,
)
from shiren.errors import ConfigError, ErrorCode, StateError

T0 = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = FallbackPolicy(version="v", step_failures=2)


def flow(**kw: object) -> FallbackFlow:
    base = FallbackFlow(
        id="f" * 32,
        tenant_id="t" * 32,
        subject_id="s" * 32,
        event_id="e" * 32,
        cause=FallbackTrigger.FACE_FAILED,
        steps=("sms_otp", "bank_card_4"),
        policy_version="v",
        created_at=T0,
        expires_at=T0 + timedelta(minutes=30),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_steps_pass_in_order_to_passed() -> None:
    f = flow()
    assert f.current_step is StepKind.SMS_OTP
    with pytest.raises(StateError) as exc:
        require_step(f, StepKind.BANK_CARD_4, T0)
    assert exc.value.code is ErrorCode.FALLBACK_WRONG_STEP
    f = record_step(f, passed=True, reason="a", policy=POLICY, now=T0)
    assert (f.current_step, f.status) == (StepKind.BANK_CARD_4, FallbackStatus.OPEN)
    f = record_step(f, passed=False, reason="b", policy=POLICY, now=T0)
    assert (f.step_failures, f.status) == (1, FallbackStatus.OPEN)
    f = record_step(f, passed=True, reason="c", policy=POLICY, now=T0)
    assert (f.status, f.current_step, f.step_failures) == (FallbackStatus.PASSED, None, 0)
    assert (decision_of(f), f.reasons, f.closed_at) == ("pass", ("a", "b", "c"), T0)
    with pytest.raises(StateError) as exc:
        require_step(f, StepKind.BANK_CARD_4, T0)
    assert exc.value.code is ErrorCode.FALLBACK_CLOSED


def test_failures_exhaust_into_review_then_a_reviewer_closes_it() -> None:
    f = record_step(flow(), passed=False, reason="x", policy=POLICY, now=T0)
    f = record_step(f, passed=False, reason="x", policy=POLICY, now=T0)
    assert (f.status, f.reasons[-1], decision_of(f)) == (
        FallbackStatus.REVIEW,
        "fallback.exhausted",
        "review",
    )
    done = close_review(f, approve=False, reviewer="r", now=T0)
    assert (done.status, decision_of(done)) == (FallbackStatus.REJECTED, "rejected")
    with pytest.raises(StateError):
        close_review(done, approve=True, reviewer="r", now=T0)
    with pytest.raises(StateError):
        close_review(flow(), approve=True, reviewer="r", now=T0)  # an open case has no review


def test_an_expired_case_takes_no_step() -> None:
    with pytest.raises(StateError) as exc:
        require_step(flow(), StepKind.SMS_OTP, T0 + timedelta(minutes=31))
    assert exc.value.code is ErrorCode.FALLBACK_CLOSED


def test_the_shipped_policy_and_its_validation(tmp_path: Path) -> None:
    shipped = load_fallback_policy()
    assert shipped.steps == (StepKind.SMS_OTP, StepKind.BANK_CARD_4)
    assert (shipped.face_failures, shipped.step_failures) == (3, 2)
    assert parse_fallback_policy({"version": "v"}, "x").steps == shipped.steps
    for bad in (
        {"version": "v", "fallback": {"steps": ["fax"]}},
        {"version": "v", "fallback": {"steps": []}},
        {"version": "v", "fallback": {"steps": ["sms_otp", "sms_otp"]}},
        {"version": "v", "fallback": {"face_failures": 0}},
        {"version": "v", "fallback": {"ttl_s": 5}},
        {"version": "v", "fallback": {"colour": "blue"}},
        {"fallback": {}},
    ):
        with pytest.raises(ConfigError):
            parse_fallback_policy(bad, "x")
    path = tmp_path / "p.toml"
    path.write_text('version = "mine"\n[fallback]\nsteps = ["authority_name_id"]\n', "utf-8")
    mine = load_fallback_policy(path)
    assert (mine.version, mine.steps) == ("mine", (StepKind.AUTHORITY,))
    path.write_text("version = ", "utf-8")
    with pytest.raises(ConfigError):
        load_fallback_policy(path)
