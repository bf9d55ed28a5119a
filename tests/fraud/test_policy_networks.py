"""Issue 14: the 1:N thresholds follow the face network's score scale."""

from __future__ import annotations

import pytest

from shiren.errors import ConfigError
from shiren.fraud.policy import load_fraud_policy, parse_fraud_policy
from shiren.verifier import DLIB, MOBILEFACENET


def test_the_shipped_policy_has_mobilefacenet_thresholds_and_keeps_dlibs() -> None:
    policy = load_fraud_policy()
    assert policy.for_network(DLIB) == policy  # dlib's are the top-level ones
    mfn = policy.for_network(MOBILEFACENET)
    assert mfn.duplicate_threshold < policy.duplicate_threshold
    assert mfn.same_id_threshold < mfn.duplicate_threshold
    assert mfn.actions == policy.actions
    assert mfn.version == policy.version


def test_a_network_section_overrides_only_what_it_names() -> None:
    policy = parse_fraud_policy(
        {"version": "t", "networks": {"net-a": {"duplicate_threshold": 0.5}}}, "test"
    )
    a = policy.for_network("net-a")
    assert a.duplicate_threshold == 0.5
    assert a.blacklist_threshold == policy.blacklist_threshold
    assert policy.for_network("net-b") is policy


def test_an_unknown_key_in_a_network_section_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_fraud_policy({"version": "t", "networks": {"n": {"search_k": 9}}}, "test")
