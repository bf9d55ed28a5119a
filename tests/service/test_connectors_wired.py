"""The service wired from settings with ``SHIREN_CONNECTORS=http`` against the local fake
provider: the non-face path and payout ownership work through signed HTTP, and a provider
that keeps failing opens the circuit (fast ``connector.circuit_open``) instead of being hammered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shiren.connectors.errors import ConnectorError
from shiren.errors import ErrorCode
from shiren.service.connectors import resolve_connectors
from shiren.service.fallback import FallbackService
from shiren.service.payout import PayoutService
from shiren.service.settings import Settings
from tests.connectors.fake_provider import FakeProvider
from tests.service.fallback_support import PHONE, World, card, make_world

SECRET = "p" * 40


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider(SECRET.encode()).start()
    try:
        yield p
    finally:
        p.stop()


def _wired(world: World, provider: FakeProvider) -> tuple[FallbackService, PayoutService]:
    settings = Settings(
        connectors="http",
        provider_url=provider.url,
        provider_key_id="k1",
        provider_secret=SECRET,  # type: ignore[arg-type]
        provider_timeout_s=0.5,
        provider_max_attempts=2,
        breaker_failures=2,
        breaker_reset_s=60,
    )
    connectors = resolve_connectors(settings)
    assert not connectors.sandbox
    store, keys, clock = world.store, world.keys, world.clock
    return (
        FallbackService(
            store=store, keys=keys, connectors=connectors, clock=clock, policy=world.policy
        ),
        PayoutService(store=store, keys=keys, connectors=connectors, clock=clock),
    )


def test_fallback_and_payout_over_signed_http(provider: FakeProvider) -> None:
    world = make_world()
    fallbacks, payouts = _wired(world, provider)
    sid = world.subject()
    fid = fallbacks.start(world.tenant, world.event(sid), phone=PHONE, refuse_face=True)["id"]
    sent = fallbacks.send_code(world.tenant, fid)
    assert "sandbox_code" not in sent  # a real gateway: the code only goes to the phone
    ((phone, code),) = provider.sms
    assert phone == PHONE
    assert fallbacks.verify_code(world.tenant, fid, code)["verified"] is True
    assert fallbacks.submit_bank_card(world.tenant, fid, card())["decision"] == "pass"
    blocked = payouts.check(world.tenant, sid, card_number=card("0004"), phone=PHONE)
    assert (blocked["decision"], blocked["sandbox"]) == ("blocked", False)
    assert [m["element"] for m in blocked["mismatched"]] == ["name", "id_number"]
    assert all(s.signature_ok for s in provider.seen)


def test_a_failing_provider_opens_the_circuit(provider: FakeProvider) -> None:
    world = make_world()
    _, payouts = _wired(world, provider)
    sid = world.subject()
    provider.faults.extend(["503", "503"])
    with pytest.raises(ConnectorError) as exc:
        payouts.check(world.tenant, sid, card_number=card(), phone=PHONE)
    assert exc.value.code is ErrorCode.CONNECTOR_UNAVAILABLE
    assert len(provider.seen) == 2  # two attempts, then the breaker (threshold 2) opened
    with pytest.raises(ConnectorError) as exc:
        payouts.check(world.tenant, sid, card_number=card(), phone=PHONE)
    assert exc.value.code is ErrorCode.CONNECTOR_CIRCUIT_OPEN
    assert len(provider.seen) == 2  # failed fast
    with world.store() as uow:
        assert uow.payouts.list_for_subject(world.tenant.id, sid) == []
