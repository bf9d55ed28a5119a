"""Capture tokens (one session, signed, expiring) and the passive-only test configuration."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shiren.errors import ConfigError, ErrorCode, StateError
from shiren.liveness.config import load_config
from shiren.service.capture_token import issue, verify
from shiren.service.settings import load_settings
from shiren.service.testing import passive_only

KEY = secrets.token_bytes(32)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TENANT, SESSION = "a" * 32, "b" * 32


def token(expires: datetime = NOW + timedelta(minutes=5), key: bytes = KEY) -> str:
    return issue(key, TENANT, SESSION, expires)


def code_of(text: str, now: datetime = NOW, key: bytes = KEY) -> ErrorCode:
    with pytest.raises(StateError) as err:
        verify(key, text, now)
    return err.value.code


def test_a_token_opens_its_own_session_until_the_session_expires() -> None:
    claim = verify(KEY, token(), NOW)
    assert (claim.tenant_id, claim.session_id) == (TENANT, SESSION)
    assert claim.expires_at == NOW + timedelta(minutes=5)
    assert code_of(token(), NOW + timedelta(minutes=5)) is ErrorCode.CAPTURE_TOKEN_EXPIRED


def test_forged_edited_or_foreign_tokens_are_invalid() -> None:
    good = token()
    prefix, payload, mac = good.split(".")
    other = issue(KEY, TENANT, "c" * 32, NOW + timedelta(minutes=5))
    assert code_of(f"{prefix}.{other.split('.')[1]}.{mac}") is ErrorCode.CAPTURE_TOKEN_INVALID
    assert code_of(f"{prefix}.{payload}.{mac[:-2]}AA") is ErrorCode.CAPTURE_TOKEN_INVALID
    assert code_of(good, key=secrets.token_bytes(32)) is ErrorCode.CAPTURE_TOKEN_INVALID
    assert code_of(f"c2.{payload}.{mac}") is ErrorCode.CAPTURE_TOKEN_INVALID
    # an expiry pushed into the future breaks the signature: a link cannot be extended
    later = token(NOW + timedelta(days=1)).split(".")[1]
    assert code_of(f"{prefix}.{later}.{mac}") is ErrorCode.CAPTURE_TOKEN_INVALID


@given(st.text(max_size=600))
def test_any_string_is_a_typed_error_never_a_crash(text: str) -> None:
    assert code_of(text) is ErrorCode.CAPTURE_TOKEN_INVALID


def test_production_refuses_the_passive_only_test_configuration() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env="production", test_passive_only=True)
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert load_settings(test_passive_only=True).test_passive_only
    assert not load_settings(env="production").test_passive_only


def test_passive_only_requires_only_the_passive_signal_and_keeps_thresholds() -> None:
    shipped = load_config()
    test = passive_only(shipped)
    assert {p.required for p in test.levels.values()} == {("passive",)}
    assert test.passive.thresholds == shipped.passive.thresholds
    assert shipped.level("normal").required != ("passive",)  # the shipped config is untouched
