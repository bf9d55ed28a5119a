"""The ``[review_evidence]`` policy (issue 17): off by default, at most three keyframes, a bounded
number of days, optionally for named tenants only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shiren.domain.review_evidence import (
    ReviewEvidencePolicy,
    load_review_evidence,
    parse_review_evidence,
)
from shiren.errors import ConfigError, ErrorCode


def test_the_shipped_policy_keeps_nothing() -> None:
    shipped = load_review_evidence()
    assert shipped.keyframes == 0
    assert shipped.keyframes_for("any tenant") == 0
    assert shipped.days == 7


def test_absent_table_is_off() -> None:
    assert parse_review_evidence({"version": "v1"}, "x") == ReviewEvidencePolicy(version="v1")


def test_a_policy_for_some_tenants() -> None:
    raw = {"version": "v2", "review_evidence": {"keyframes": 3, "days": 2, "tenants": ["t1"]}}
    policy = parse_review_evidence(raw, "x")
    assert (policy.keyframes, policy.days, policy.version) == (3, 2, "v2")
    assert policy.keyframes_for("t1") == 3
    assert policy.keyframes_for("t2") == 0
    every = parse_review_evidence({"version": "v", "review_evidence": {"keyframes": 1}}, "x")
    assert every.keyframes_for("t2") == 1


@pytest.mark.parametrize(
    "body",
    [
        {"keyframes": 4},
        {"keyframes": -1},
        {"keyframes": True},
        {"keyframes": 1.5},
        {"days": 0},
        {"days": 31},
        {"tenants": "t1"},
        {"tenants": [""]},
        {"keep": 3},
    ],
)
def test_out_of_range_values_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_review_evidence({"version": "v", "review_evidence": body}, "policy.toml")
    assert err.value.code is ErrorCode.CONFIG_INVALID


def test_a_lenders_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('version = "mine"\n[review_evidence]\nkeyframes = 2\ndays = 3\n', "utf-8")
    assert load_review_evidence(path) == ReviewEvidencePolicy(2, 3, None, "mine")
    path.write_text("not = [toml", "utf-8")
    with pytest.raises(ConfigError):
        load_review_evidence(path)
    with pytest.raises(ConfigError):
        load_review_evidence(tmp_path / "missing.toml")
