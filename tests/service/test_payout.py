"""Payout ownership (memory and SQLite storage, SANDBOX bank-card check) and the connector
settings: production refuses the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiren.connectors.errors import ConnectorError
from shiren.connectors.sandbox import sandbox_connectors
from shiren.errors import ConfigError, ErrorCode, InputError, StateError
from shiren.service.connectors import (
    card_pseudonym,
    refuse_sandbox_in_production,
    resolve_connectors,
)
from shiren.service.settings import Settings
from shiren.storage.leakscan import scan_database
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.service.fallback_support import ID_NUMBER, NAME, PHONE, World, card, make_world


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    if request.param == "memory":
        return make_world()
    sql = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(sql)
    return make_world(SqlStore(sql))


def test_own_card_is_allowed_and_stored_as_a_pseudonym(world: World) -> None:
    sid = world.subject()
    eid = world.event(sid)
    own = card()
    out = world.payouts().check(world.tenant, sid, card_number=own, phone=PHONE, event_id=eid)
    assert (out["decision"], out["reasons"], out["mismatched"]) == (
        "allowed",
        ["payout.card_owner_verified"],
        [],
    )
    assert out["card"] == "**** " + own[-4:]
    with world.store() as uow:
        (row,) = uow.payouts.list_for_subject(world.tenant.id, sid)
    assert row.card_pseudonym == card_pseudonym(world.keys, world.tenant.id, own)
    assert own not in row.card_pseudonym
    assert row.card_last4 == own[-4:]
    hooks = [h for h in world.webhook_events() if h["event"] == "payout.checked"]
    assert [(h["decision"], h["payout_check_id"], h["event_id"]) for h in hooks] == [
        ("allowed", row.id, eid)
    ]


def test_card_in_another_name_is_blocked_with_the_masked_element(world: World) -> None:
    sid = world.subject()
    out = world.payouts().check(world.tenant, sid, card_number=card("0004"), phone=PHONE)
    assert out["decision"] == "blocked"
    assert out["reasons"] == ["payout.card_not_owner"]
    assert out["mismatched"] == [
        {"element": "name", "sent": "张*"},
        {"element": "id_number", "sent": "110**************X"},
    ]
    assert out["tips"][0]["message"].startswith("收款银行卡不属于本人")
    unknown = world.payouts().check(world.tenant, sid, card_number=card("0009"), phone=PHONE)
    assert (unknown["decision"], unknown["reasons"]) == ("blocked", ["payout.owner_unverified"])
    audit = world.audit_text()
    assert "payout.card_not_owner" in audit
    for secret in (NAME, ID_NUMBER, PHONE, card("0004")):
        assert secret not in audit


def test_bad_input_and_provider_failures(world: World) -> None:
    sid = world.subject()
    payouts = world.payouts()
    with pytest.raises(InputError) as exc:
        payouts.check(world.tenant, sid, card_number="1234", phone=PHONE)
    assert exc.value.code is ErrorCode.CARD_NUMBER_INVALID
    with pytest.raises(StateError) as st:
        payouts.check(world.tenant, "f" * 32, card_number=card(), phone=PHONE)
    assert st.value.code is ErrorCode.RECORD_NOT_FOUND
    with pytest.raises(StateError) as st:
        payouts.check(world.tenant, sid, card_number=card(), phone=PHONE, event_id="e" * 32)
    assert st.value.code is ErrorCode.RECORD_NOT_FOUND
    with pytest.raises(ConnectorError) as down:
        payouts.check(world.tenant, sid, card_number=card("0500"), phone=PHONE)
    assert down.value.retryable
    with world.store() as uow:
        assert uow.payouts.list_for_subject(world.tenant.id, sid) == []  # no verdict stored


def test_nothing_readable_reaches_the_sqlite_file(tmp_path: Path) -> None:
    sql = make_engine(f"sqlite:///{tmp_path / 'leak.db'}")
    migrate(sql)
    world = make_world(SqlStore(sql))
    sid = world.subject()
    world.payouts().check(world.tenant, sid, card_number=card("0001"), phone=PHONE)
    fid = world.fallbacks().start(world.tenant, world.event(sid), phone=PHONE, refuse_face=True)
    world.fallbacks().send_code(world.tenant, fid["id"])
    code = world.sms.outbox[PHONE]
    hits = scan_database(sql, [NAME, ID_NUMBER, PHONE, card("0001"), f'"{code}"'])
    assert hits == [], hits


def test_production_refuses_the_sandbox_and_validates_http_settings() -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_connectors(Settings(env="production"))
    assert exc.value.detail["key"] == "connectors"
    with pytest.raises(ConfigError):
        refuse_sandbox_in_production(sandbox_connectors(), production=True)
    assert resolve_connectors(Settings()).sandbox
    base = {"connectors": "http", "provider_key_id": "k1", "provider_secret": "s" * 32}
    plain = Settings(env="production", provider_url="http://bank.example", **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as exc:
        resolve_connectors(plain)
    assert exc.value.detail["key"] == "provider_url"
    weak = Settings(provider_url="https://bank.example", **{**base, "provider_secret": "short"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as exc:
        resolve_connectors(weak)
    assert exc.value.detail["key"] == "provider_secret"
    good = Settings(env="production", provider_url="https://bank.example", **base)  # type: ignore[arg-type]
    wired = resolve_connectors(good)
    assert not wired.sandbox
