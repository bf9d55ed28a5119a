"""Settings and keys: development generates and persists keys (0600, loud warning); production
refuses missing or weak keys with a typed config error."""

from __future__ import annotations

import base64
import logging
import secrets
import stat
from pathlib import Path

import pytest

from shiren.errors import ConfigError, ErrorCode
from shiren.service.app import hash_api_key
from shiren.service.keys import resolve_keys
from shiren.service.settings import Settings, load_settings


def _key(raw: bytes | None = None) -> str:
    return base64.b64encode(raw if raw is not None else secrets.token_bytes(32)).decode()


def test_development_generates_and_persists_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(env="development", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    with caplog.at_level(logging.WARNING, logger="shiren.service.keys"):
        first = resolve_keys(settings)
    assert "NOT FOR PRODUCTION" in caplog.text
    keyfile = tmp_path / "x.db.keys.json"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    second = resolve_keys(settings)
    assert first.audit_key == second.audit_key
    assert first.ring.current.key == second.ring.current.key
    assert "key=" not in repr(first)
    assert first.audit_key.hex() not in repr(first)


def test_production_refuses_missing_keys(tmp_path: Path) -> None:
    settings = Settings(env="production", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigError) as err:
        resolve_keys(settings)
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert "SHIREN_MASTER_KEY" in err.value.message
    assert not (tmp_path / "x.db.keys.json").exists()


@pytest.mark.parametrize(
    "master",
    [_key(bytes(32)), _key(b"ab" * 16), "not base64!", _key(secrets.token_bytes(16))],
    ids=["zeros", "repeated", "not-base64", "short"],
)
def test_production_refuses_weak_keys(master: str) -> None:
    settings = Settings(
        env="production",
        master_key=master,  # type: ignore[arg-type]
        audit_key=_key(),  # type: ignore[arg-type]
        challenge_key=_key(),  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigError) as err:
        resolve_keys(settings)
    assert err.value.detail["key"] == "master_key"
    assert master not in err.value.message


def test_production_accepts_strong_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MASTER_KEY", "AUDIT_KEY", "CHALLENGE_KEY"):
        monkeypatch.setenv(f"SHIREN_{name}", _key())
    monkeypatch.setenv("SHIREN_ENV", "production")
    keys = resolve_keys(load_settings())
    assert not keys.generated
    monkeypatch.setenv("SHIREN_ENV", "staging")
    with pytest.raises(ConfigError):
        load_settings()


def test_api_key_hash_is_salted_and_rejects_garbage() -> None:
    assert hash_api_key("") == hash_api_key("Bearer x") == hash_api_key("shk__x") == ""
    a, b = hash_api_key("shk_aa_secret"), hash_api_key("shk_bb_secret")
    assert a.startswith("sha256$aa$")
    assert a.split("$")[2] != b.split("$")[2]
