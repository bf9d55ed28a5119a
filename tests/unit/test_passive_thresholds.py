"""Passive thresholds per PAD model (issue 19): live scores of different models are not on one
scale, so ``[passive.by_model]`` gives each its own named thresholds, validated at load."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from shiren.errors import ConfigError
from shiren.liveness.config import load_config, parse_config

SHIPPED: dict[str, Any] = tomllib.loads(
    resources.files("shiren.data").joinpath("liveness.toml").read_text("utf-8")
)


def _with_passive(passive: dict[str, Any]) -> dict[str, Any]:
    return {**SHIPPED, "passive": passive}


def test_the_shipped_file_has_thresholds_for_the_registry_model() -> None:
    config = load_config()
    assert {"dtn-fas", "human-antispoof"} <= set(config.passive.by_model)
    for model in (None, "minifasnet", "dtn-fas", "human-antispoof"):
        low, normal, high = (
            config.passive_threshold(lv, model) for lv in ("low", "normal", "high")
        )
        assert 0.0 <= low <= normal <= high <= 1.0, (model, low, normal, high)
    # a model without an entry (MiniFASNet) keeps [passive].thresholds
    assert config.passive_threshold("normal", "minifasnet") == config.passive.thresholds["normal"]


def test_a_model_entry_overrides_the_default_thresholds() -> None:
    config = parse_config(
        _with_passive(
            {
                "thresholds": {"low": 0.3, "normal": 0.5, "high": 0.66},
                "by_model": {"other": {"low": 0.01, "normal": 0.02, "high": 0.03}},
            }
        ),
        "test",
    )
    assert config.passive_threshold("normal", "other") == 0.02
    assert config.passive_threshold("normal", "minifasnet") == 0.5
    assert config.passive_threshold("normal") == 0.5


@pytest.mark.parametrize(
    "entry",
    [
        {"low": 0.1, "normal": 0.2},  # a level's threshold missing
        {"low": 0.1, "normal": 0.2, "high": 0.3, "extreme": 0.4},  # an unknown one
        {"low": 0.1, "normal": 0.2, "high": 1.5},  # not a live-score threshold
        {"low": 0.1, "normal": "x", "high": 0.3},
    ],
)
def test_a_bad_model_entry_is_a_config_error(entry: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse_config(
            _with_passive(
                {"thresholds": {"low": 0.3, "normal": 0.5, "high": 0.66}, "by_model": {"m": entry}}
            ),
            "test",
        )
