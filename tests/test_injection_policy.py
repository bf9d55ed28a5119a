"""The ``[injection]`` policy (issue 17): validated modes, per-tenant overrides, what each mode
makes of a finding, and how that moves a decision (shiren.domain.injection_policy, decisions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiren.domain.decisions import FALLBACKS, Decision, Outcome, apply_injection
from shiren.domain.injection_policy import (
    DEFAULT_MODE,
    InjectionMode,
    InjectionVerdict,
    load_injection_policy,
    parse_injection_policy,
    verdict,
)
from shiren.errors import ConfigError, ErrorCode
from shiren.liveness.injection import InjectionFeatures, judge
from shiren.liveness.injection_config import (
    DEFAULT_INJECTION_THRESHOLDS,
    PAGE_ONLY_FEATURES,
    WEAK_FEATURES,
)
from shiren.reasons import ReasonCode

SUSPECTED = ReasonCode.LIVENESS_INJECTION_SUSPECTED.value
WEAK = ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL.value


def test_the_shipped_policy_is_shadow() -> None:
    policy = load_injection_policy()
    assert policy.mode is InjectionMode.SHADOW is DEFAULT_MODE
    assert policy.mode_for("any tenant") is InjectionMode.SHADOW


def test_modes_and_tenant_overrides_parse() -> None:
    raw = {"version": "v1", "injection": {"mode": "review", "tenants": {"t1": "enforce"}}}
    policy = parse_injection_policy(raw, "test")
    assert policy.mode_for("t1") is InjectionMode.ENFORCE
    assert policy.mode_for("t2") is InjectionMode.REVIEW
    assert parse_injection_policy({"version": "v1"}, "test").mode is DEFAULT_MODE


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "block"},
        {"mode": 1},
        {"mode": "review", "extra": True},
        {"tenants": {"t1": "maybe"}},
        {"tenants": ["t1"]},
        {"tenants": {"": "review"}},
        "review",
    ],
)
def test_a_bad_table_is_refused(body: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_injection_policy({"version": "v1", "injection": body}, "test")
    assert err.value.code is ErrorCode.CONFIG_INVALID


def test_a_policy_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('version = "x"\n[injection]\nmode = "enforce"\n', "utf-8")
    assert load_injection_policy(path).mode is InjectionMode.ENFORCE
    path.write_text("version = \n", "utf-8")
    with pytest.raises(ConfigError):
        load_injection_policy(path)


def test_what_each_mode_makes_of_a_finding() -> None:
    for mode in (InjectionMode.OFF, InjectionMode.SHADOW):
        assert verdict(mode, suspected=True, review_suggested=False) == InjectionVerdict()
    assert verdict(InjectionMode.REVIEW, suspected=True, review_suggested=False) == (
        InjectionVerdict(False, True, SUSPECTED)
    )
    assert verdict(InjectionMode.REVIEW, suspected=False, review_suggested=True) == (
        InjectionVerdict()
    )
    assert verdict(InjectionMode.ENFORCE, suspected=True, review_suggested=False) == (
        InjectionVerdict(True, False, SUSPECTED)
    )
    assert verdict(InjectionMode.ENFORCE, suspected=False, review_suggested=True) == (
        InjectionVerdict(False, True, WEAK)
    )


PASSED = Decision(Outcome.PASS, (ReasonCode.MATCH_ABOVE_THRESHOLD.value,))
RETRY = Decision(Outcome.RETRY, (ReasonCode.LIVENESS_ACTION_MISSING.value,))
LOCKED = Decision(Outcome.FALLBACK, (ReasonCode.LIMIT_LOCKED.value,), FALLBACKS, 1800)


def test_a_failure_turns_a_pass_or_retry_into_an_attack_review() -> None:
    fails = InjectionVerdict(True, False, SUSPECTED)
    got = apply_injection(PASSED, fails)
    assert got == Decision(Outcome.REVIEW, (SUSPECTED,), FALLBACKS)
    got = apply_injection(RETRY, fails)
    assert got.outcome is Outcome.REVIEW
    assert got.reasons == (ReasonCode.LIVENESS_ACTION_MISSING.value, SUSPECTED)
    locked = apply_injection(LOCKED, fails)  # a lock-out keeps its fallback and its wait
    assert locked.outcome is Outcome.FALLBACK
    assert locked.retry_after_s == 1800
    assert SUSPECTED in locked.reasons


def test_review_never_passes_and_nothing_changes_without_a_verdict() -> None:
    review = InjectionVerdict(False, True, WEAK)
    assert apply_injection(PASSED, review) == Decision(Outcome.REVIEW, (WEAK,), FALLBACKS)
    assert apply_injection(RETRY, review).outcome is Outcome.REVIEW
    assert apply_injection(PASSED, InjectionVerdict()) is PASSED
    assert apply_injection(PASSED, None) is PASSED


def test_only_physics_and_the_pages_own_code_decide() -> None:
    lines = DEFAULT_INJECTION_THRESHOLDS.features
    assert {n for n, line in lines.items() if not line.decisive} == WEAK_FEATURES
    assert {n for n, line in lines.items() if line.decisive} == {
        "upload_deficit_s",
        "min_interval_ratio",
        "jitter_ms",
        "off_resolution",
        "repeat_fraction",
    }


def _features(**values: float) -> InjectionFeatures:
    return InjectionFeatures(values=values, details={})


def test_weak_lines_suggest_review_decisive_ones_make_it_suspected() -> None:
    th = DEFAULT_INJECTION_THRESHOLDS
    weak = judge(_features(grid_foreign=99.0, flash_response=0.0), th)
    assert not weak.suspected
    assert weak.review_suggested
    assert weak.reasons == (ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL,)
    assert set(weak.sub_kinds) == {"codec.foreign_grid", "flash.no_response"}
    both = judge(_features(grid_foreign=99.0, upload_deficit_s=3.0), th)
    assert both.suspected
    assert not both.review_suggested
    assert both.sub_kinds[0] == "timing.upload_too_early"
    assert both.evidence()["features"]["upload_deficit_s"]["decisive"] is True


def test_a_lenders_client_is_not_judged_by_the_pages_timer() -> None:
    exact = _features(jitter_ms=0.0, off_resolution=1.0, timer_mismatch=0.2, repeat_fraction=0.0)
    assert judge(exact, DEFAULT_INJECTION_THRESHOLDS).suspected
    api = judge(exact, DEFAULT_INJECTION_THRESHOLDS, source="api")
    assert not api.suspected
    assert not api.review_suggested
    assert all(api.signals[n].threshold is None for n in PAGE_ONLY_FEATURES if n in api.signals)
