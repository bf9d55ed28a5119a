"""Step-up policy, decisions and the attempt counters (in process and on the real Redis)."""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from shiren.domain.decisions import FALLBACKS, Outcome, RetryRules, decide
from shiren.domain.policy import (
    EventType,
    LendingEventIn,
    SubjectState,
    decide_step_up,
    load_policy,
    parse_policy,
)
from shiren.errors import ConfigError
from shiren.reasons import ReasonCode
from shiren.service.ratelimit import AttemptCounter, MemoryCounter, RedisCounter

POLICY = load_policy()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FRESH = SubjectState(
    enrolled=True,
    last_check_at=NOW - timedelta(hours=1),
    last_check_policy_version=POLICY.version,
    last_activity_at=NOW - timedelta(days=1),
    known_devices=frozenset({"dev-1"}),
)


def _event(kind: EventType, amount: int = 0, device: str | None = "dev-1") -> LendingEventIn:
    return LendingEventIn(kind, NOW, amount_minor=amount, device_id=device)


def test_every_event_type_has_a_rule() -> None:
    assert set(POLICY.rules) == set(EventType)


def test_not_enrolled_means_enrol_first() -> None:
    req = decide_step_up(_event(EventType.DISBURSEMENT), SubjectState(enrolled=False), POLICY, NOW)
    assert req.needed
    assert req.purpose == "enrol"


def test_small_disbursement_after_a_recent_check_is_not_needed() -> None:
    req = decide_step_up(_event(EventType.DISBURSEMENT, 100_000), FRESH, POLICY, NOW)
    assert not req.needed, req
    assert req.policy_version == POLICY.version


def test_disbursement_after_the_max_age_is_needed() -> None:
    old = SubjectState(
        enrolled=True,
        last_check_at=NOW - timedelta(days=2),
        last_check_policy_version=POLICY.version,
        known_devices=frozenset({"dev-1"}),
    )
    req = decide_step_up(_event(EventType.DISBURSEMENT, 100_000), old, POLICY, NOW)
    assert req.needed
    assert "policy.check_too_old" in req.reasons


def test_a_large_amount_needs_a_fresh_high_check() -> None:
    req = decide_step_up(_event(EventType.DISBURSEMENT, 6_000_000), FRESH, POLICY, NOW)
    assert req.needed
    assert req.level == "high"
    assert req.max_age_s == 0


@pytest.mark.parametrize(
    "kind", [EventType.PASSWORD_RESET, EventType.LARGE_TRANSACTION, EventType.NEW_DEVICE]
)
def test_always_events(kind: EventType) -> None:
    assert decide_step_up(_event(kind), FRESH, POLICY, NOW).needed


def test_new_device_dormancy_and_policy_change_trigger() -> None:
    assert (
        "policy.new_device"
        in decide_step_up(
            _event(EventType.WITHDRAWAL, 100, device="dev-2"), FRESH, POLICY, NOW
        ).reasons
    )
    dormant = SubjectState(
        enrolled=True,
        last_check_at=NOW - timedelta(hours=1),
        last_check_policy_version=POLICY.version,
        last_activity_at=NOW - timedelta(days=400),
        known_devices=frozenset({"dev-1"}),
    )
    assert (
        "policy.dormant"
        in decide_step_up(_event(EventType.WITHDRAWAL, 100), dormant, POLICY, NOW).reasons
    )
    changed = SubjectState(
        enrolled=True,
        last_check_at=NOW - timedelta(hours=1),
        last_check_policy_version="older",
        known_devices=frozenset({"dev-1"}),
    )
    assert (
        "policy.policy_changed"
        in decide_step_up(_event(EventType.WITHDRAWAL, 100), changed, POLICY, NOW).reasons
    )


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"version": "x", "events": {"teleport": {}}},
        {"version": "x", "events": {"registration": {"level": "extreme"}}},
        {"version": "x", "events": {"registration": {"colour": 1}}},
        {"version": "x", "events": {"registration": {}}},
    ],
)
def test_bad_policies_are_config_errors(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse_policy(raw, "test")


# -- decisions ---------------------------------------------------------------------------------

RULES = RetryRules()


def _decide(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "liveness_passed": True,
        "liveness_reasons": (),
        "similarity": 0.99,
        "threshold": 0.97,
        "recent_failures": 0,
        "daily_attempts": 1,
        "rules": RULES,
    }
    args.update(kw)
    return decide(**args)


def test_pass() -> None:
    assert _decide().outcome is Outcome.PASS


def test_a_fixable_failure_is_a_retry_without_fallback() -> None:
    d = _decide(liveness_passed=False, liveness_reasons=("liveness.action_missing",))
    assert d.outcome is Outcome.RETRY
    assert d.fallbacks == ()


def test_a_digit_not_heard_is_a_retry_a_voice_out_of_step_is_not() -> None:
    """Read the digits (issue 18): a digit not heard in its window is the spoken "action
    missing"; a voice that does not follow the mouth (a dub, a frozen picture) is not retried."""
    heard = _decide(liveness_passed=False, liveness_reasons=("liveness.speech_mismatch",))
    assert heard.outcome is Outcome.RETRY
    both = ("liveness.speech_mismatch", "liveness.av_desync")
    assert _decide(liveness_passed=False, liveness_reasons=both).outcome is Outcome.REVIEW
    # either failure in a room too noisy to judge the voice: read again somewhere quieter
    noisy = ("liveness.too_noisy", "liveness.face_lost")
    assert _decide(liveness_passed=False, liveness_reasons=noisy).outcome is Outcome.RETRY


def test_the_page_advises_a_quiet_room_when_the_digits_were_not_heard() -> None:
    from shiren.service.capture_texts import advice_for

    assert advice_for(["liveness.too_noisy"]) == ["not_heard"]
    assert advice_for(["liveness.speech_mismatch"]) == ["not_heard"]
    # a voice out of step with the mouth is not a noisy room
    assert advice_for(["liveness.speech_mismatch", "liveness.av_desync"]) == [
        "not_heard",
        "not_live",
    ]
    assert advice_for(["liveness.av_desync"]) == ["not_live"]


def test_a_suspected_attack_goes_to_review_with_fallbacks() -> None:
    d = _decide(liveness_passed=False, liveness_reasons=("liveness.flat_motion",))
    assert d.outcome is Outcome.REVIEW
    assert d.fallbacks == FALLBACKS


def test_borderline_match_goes_to_review_and_clear_mismatch_retries() -> None:
    assert _decide(similarity=0.96).outcome is Outcome.REVIEW
    d = _decide(similarity=0.80)
    assert d.outcome is Outcome.RETRY
    assert ReasonCode.MATCH_BELOW_THRESHOLD.value in d.reasons


def test_fifth_failure_locks_and_daily_cap_falls_back() -> None:
    d = _decide(similarity=0.5, recent_failures=4)
    assert d.outcome is Outcome.FALLBACK
    assert d.retry_after_s == RULES.cooloff_s
    assert ReasonCode.LIMIT_LOCKED.value in d.reasons
    capped = _decide(similarity=0.5, daily_attempts=RULES.daily_cap)
    assert ReasonCode.LIMIT_DAILY_CAP.value in capped.reasons
    assert set(FALLBACKS) <= set(capped.fallbacks)


# -- counters ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def counter(request: pytest.FixtureRequest) -> Iterator[AttemptCounter]:
    if request.param == "memory":
        yield MemoryCounter()
        return
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable at 127.0.0.1:6379 in CI")
        pytest.skip("Redis is not reachable")
    prefix = f"shiren-test-{uuid.uuid4().hex}:"
    yield RedisCounter(client, prefix=prefix)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_rolling_window(counter: AttemptCounter) -> None:
    t0 = 1_800_000_000.0
    for i in range(4):
        assert counter.add_failure("s1", 180, now=t0 + i) == i + 1
    assert counter.failures("s1", 180, now=t0 + 10) == 4
    assert counter.failures("s1", 180, now=t0 + 181.5) == 2  # the first two fell out
    assert counter.add_failure("s1", 180, now=t0 + 300) == 1
    assert counter.failures("other", 180, now=t0) == 0


def test_lock_and_clear(counter: AttemptCounter) -> None:
    t0 = 1_800_000_000.0
    assert counter.locked_for("s2", now=t0) == 0
    counter.lock("s2", 1800, now=t0)
    assert 1790 <= counter.locked_for("s2", now=t0 + 5) <= 1800
    assert counter.locked_for("s2", now=t0 + 1801) == 0
    counter.add_failure("s2", 180, now=t0)
    counter.clear("s2")
    assert counter.failures("s2", 180, now=t0) == 0
    assert counter.locked_for("s2", now=t0) == 0


def test_daily_count_resets_each_utc_day(counter: AttemptCounter) -> None:
    day = datetime(2026, 11, 23, 23, 59, tzinfo=UTC).timestamp()
    assert counter.add_daily("id1", now=day) == 1
    assert counter.add_daily("id1", now=day + 30) == 2
    assert counter.add_daily("id1", now=day + 120) == 1  # next UTC day


# -- issue 14: the grey zone asks for a second factor -------------------------------------------


def test_a_grey_zone_match_asks_for_a_non_face_factor_not_a_reject() -> None:
    d = _decide(similarity=0.80, threshold=0.85, grey_threshold=0.70)
    assert d.outcome is Outcome.FALLBACK
    assert d.reasons == (ReasonCode.MATCH_SECOND_FACTOR_REQUIRED.value,)
    assert set(d.fallbacks) >= {"bank_card_4", "authority_name_id", "sms_otp"}
    assert d.retry_after_s is None


@pytest.mark.parametrize(
    ("similarity", "outcome"),
    [(0.85, Outcome.PASS), (0.70, Outcome.FALLBACK), (0.6999, Outcome.RETRY)],
)
def test_the_grey_zone_edges(similarity: float, outcome: Outcome) -> None:
    rules = RetryRules(review_margin=0.0)
    d = _decide(similarity=similarity, threshold=0.85, grey_threshold=0.70, rules=rules)
    assert d.outcome is outcome


def test_the_grey_zone_never_rescues_a_failed_liveness() -> None:
    d = _decide(
        liveness_passed=False,
        liveness_reasons=("liveness.spoof_suspected",),
        similarity=0.80,
        threshold=0.85,
        grey_threshold=0.70,
    )
    assert d.outcome is Outcome.REVIEW
    assert ReasonCode.MATCH_SECOND_FACTOR_REQUIRED.value not in d.reasons


def test_without_a_grey_threshold_nothing_changes() -> None:
    assert _decide(
        similarity=0.80, threshold=0.85, rules=RetryRules(review_margin=0.0)
    ).outcome is (Outcome.RETRY)


def _shipped_with(event: str, **rule: Any) -> dict[str, Any]:
    raw = tomllib.loads(resources.files("shiren.data").joinpath("policy.toml").read_text("utf-8"))
    raw["events"][event] = {**raw["events"][event], **rule}
    return raw


def test_an_event_may_require_reading_the_digits() -> None:
    """``challenge = "read_digits"`` (issue 18): the event's requirement says so, for an enrolled
    subject and before enrolment alike, and a large amount keeps it at the higher level; the
    shipped policy requires it nowhere."""
    assert {rule.challenge for rule in POLICY.rules.values()} == {"actions"}
    policy = parse_policy(_shipped_with("disbursement", challenge="read_digits"), "test")
    stale = SubjectState(enrolled=True, last_check_at=NOW - timedelta(days=3))
    req = decide_step_up(_event(EventType.DISBURSEMENT), stale, policy, NOW)
    assert (req.needed, req.challenge, req.level) == (True, "read_digits", "normal")
    assert req.to_dict()["challenge"] == "read_digits"
    big = decide_step_up(_event(EventType.DISBURSEMENT, 10**8), stale, policy, NOW)
    assert (big.level, big.challenge) == ("high", "read_digits")
    first = decide_step_up(
        _event(EventType.DISBURSEMENT), SubjectState(enrolled=False), policy, NOW
    )
    assert (first.purpose, first.challenge) == ("enrol", "read_digits")
    other = decide_step_up(_event(EventType.WITHDRAWAL, 10**6), stale, policy, NOW)
    assert other.challenge == "actions"
    with pytest.raises(ConfigError, match="challenge"):
        parse_policy(_shipped_with("disbursement", challenge="sing"), "test")
