"""Consent purposes come from the lender's versioned policy (issue 17): an enrolment whose
consent names a purpose the policy does not list (``"marketing"`` was accepted before) is
refused with ``input.consent_purpose_unknown``; a policy may list its own purposes."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources

import pytest

from shiren.domain.policy import DEFAULT_CONSENT_PURPOSES, load_policy, parse_policy
from shiren.errors import ConfigError, ErrorCode, InputError
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from tests.conftest import lfw
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME


def _policy_with(extra: str) -> dict[str, object]:
    text = resources.files("shiren.data").joinpath("policy.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    raw.pop("consent", None)
    return {**raw, **tomllib.loads(extra)}


def _service(engine: Engine, clock: FakeClock, **kw: object) -> ShirenService:
    return ShirenService(
        store=MemoryStore(), keys=ServiceKeys.generate(), engine=engine, clock=clock, **kw
    )  # type: ignore[arg-type]


def _enrol(svc: ShirenService, purpose: str) -> None:
    tenant, _ = svc.create_tenant("lender")
    svc.enrol(
        tenant,
        external_ref=f"u-{purpose}",
        name=NAME,
        id_number=ID_NUMBER,
        consent=replace(ConsentIn(**CONSENT), purpose=purpose),  # type: ignore[arg-type]
        reference_image=lfw("Jeb_Bush", 1).read_bytes(),
    )


def test_a_purpose_the_policy_does_not_list_is_refused(engine: Engine, clock: FakeClock) -> None:
    svc = _service(engine, clock)
    with pytest.raises(InputError) as refused:
        _enrol(svc, "marketing")
    assert refused.value.code is ErrorCode.CONSENT_PURPOSE_UNKNOWN
    assert refused.value.detail["allowed"] == list(load_policy().consent_purposes)
    _enrol(svc, CONSENT["purpose"])  # a listed one enrols


def test_a_lender_lists_its_own_purposes(engine: Engine, clock: FakeClock) -> None:
    policy = parse_policy(_policy_with('[consent]\npurposes = ["loan_kyc"]'), "test")
    assert policy.consent_purposes == ("loan_kyc",)
    svc = _service(engine, clock, policy=policy)
    _enrol(svc, "loan_kyc")
    with pytest.raises(InputError) as refused:
        _enrol(svc, CONSENT["purpose"])
    assert refused.value.code is ErrorCode.CONSENT_PURPOSE_UNKNOWN


def test_the_consent_table_is_validated() -> None:
    assert parse_policy(_policy_with(""), "t").consent_purposes == DEFAULT_CONSENT_PURPOSES
    for bad in ("[consent]\npurposes = []", "[consent]\npurposes = [1]", "[consent]\nx = 1"):
        with pytest.raises(ConfigError):
            parse_policy(_policy_with(bad), "t")
