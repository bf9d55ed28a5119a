"""Webhooks without the models: signing, URL rules, the transactional outbox and the delivery
worker against a real local HTTP receiver, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shiren.domain.entities import DeliveryStatus, Tenant
from shiren.errors import ErrorCode, InputError
from shiren.service.app import create_tenant
from shiren.service.keys import ServiceKeys
from shiren.service.webhooks import (
    SIGNATURE_HEADER,
    Event,
    WebhookDeliverer,
    enqueue_event,
    open_secret,
    seal_secret,
    sign,
    validate_url,
    verify_signature,
)
from shiren.storage.ports import UnitOfWorkFactory
from tests.storage.conftest import open_backend

SECRET = "whsec_test-secret-0123456789"


class Receiver:
    """A real HTTP server in a thread; answers with ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received.append((dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _tenant(store: UnitOfWorkFactory, keys: ServiceKeys, url: str) -> Tenant:
    tenant, _ = create_tenant(store, keys, "lender", datetime.now(UTC))
    with store() as uow:
        tenant = uow.tenants.set_webhook(
            tenant.id, url=url, secret_enc=seal_secret(keys, tenant, SECRET)
        )
        uow.commit()
    return tenant


def _enqueue(store: UnitOfWorkFactory, keys: ServiceKeys, tenant: Tenant, n: int = 1) -> None:
    with store() as uow:
        for i in range(n):
            enqueue_event(
                uow,
                keys,
                tenant.id,
                event=Event.CHECK_DECIDED,
                now=datetime.now(UTC) - timedelta(seconds=1),
                subject_id="a" * 32,
                check_id=f"{i:032x}",
                decision="pass",
                reasons=("match.above_threshold",),
            )
        uow.commit()


# -- pure ---------------------------------------------------------------------------------


def test_signature_roundtrip_tamper_and_replay_window() -> None:
    body = '{"a":1}'
    header = sign(b"k" * 16, body, 1_000_000)
    assert header.startswith("t=1000000,v1=")
    assert verify_signature(b"k" * 16, body, header, now=1_000_100)
    assert not verify_signature(b"k" * 16, body + " ", header, now=1_000_100)
    assert not verify_signature(b"x" * 16, body, header, now=1_000_100)
    assert not verify_signature(b"k" * 16, body, header, now=1_000_301)  # replayed too late
    assert not verify_signature(b"k" * 16, body, "garbage", now=1_000_000)


@pytest.mark.parametrize(
    ("url", "production", "ok"),
    [
        ("https://lender.example/hook", True, True),
        ("https://lender.example/hook", False, True),
        ("http://127.0.0.1:8080/hook", False, True),
        ("http://localhost/hook", False, True),
        ("http://127.0.0.1:8080/hook", True, False),
        ("http://lender.example/hook", False, False),
        ("https://user:pw@lender.example/hook", True, False),
        ("ftp://lender.example/", False, False),
        ("https://", True, False),
        ("https://lender.example/a b", True, False),
    ],
)
def test_url_rules(url: str, production: bool, ok: bool) -> None:
    if ok:
        assert validate_url(url, production=production) == url
    else:
        with pytest.raises(InputError) as err:
            validate_url(url, production=production)
        assert err.value.code is ErrorCode.WEBHOOK_URL_INVALID


# -- per backend --------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    with open_backend(request.param, tmp_path) as backend:
        yield backend.factory


def test_secret_is_sealed_and_outbox_is_transactional(store: UnitOfWorkFactory) -> None:
    keys = ServiceKeys.generate()
    tenant = _tenant(store, keys, "https://lender.example/hook")
    assert tenant.webhook_secret_enc is not None
    assert SECRET.encode() not in tenant.webhook_secret_enc
    assert open_secret(keys, tenant) == SECRET.encode()
    with store() as uow:  # rolled back: the event never existed
        enqueue_event(uow, keys, tenant.id, event=Event.SUBJECT_ERASED, now=datetime.now(UTC))
    with store() as uow:
        assert uow.webhooks.list_for_tenant(tenant.id) == []
    other, _ = create_tenant(store, keys, "no hook", datetime.now(UTC))
    with store() as uow:  # a tenant without a webhook gets no rows
        assert enqueue_event(uow, keys, other.id, event="x", now=datetime.now(UTC)) is None


def test_delivery_is_signed_and_payload_has_ids_only(
    store: UnitOfWorkFactory, receiver: Receiver
) -> None:
    keys = ServiceKeys.generate()
    tenant = _tenant(store, keys, receiver.url)
    _enqueue(store, keys, tenant)
    stats = WebhookDeliverer(store, keys).deliver_once()
    assert stats.delivered == 1
    (headers, body), *_ = receiver.received
    assert verify_signature(SECRET.encode(), body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert set(payload) == {
        "event",
        "id",
        "tenant",
        "subject_id",
        "check_id",
        "decision",
        "reasons",
        "created_at",
    }
    assert payload["tenant"] == tenant.id
    assert payload["event"] == "check.decided"
    with store() as uow:
        (row,) = uow.webhooks.list_for_tenant(tenant.id)
    assert row.status is DeliveryStatus.DELIVERED
    assert row.id == payload["id"] == headers["Shiren-Delivery"]


def test_500_then_200_is_retried_with_backoff(store: UnitOfWorkFactory) -> None:
    receiver = Receiver([500])
    try:
        keys = ServiceKeys.generate()
        tenant = _tenant(store, keys, receiver.url)
        _enqueue(store, keys, tenant)
        clock = Clock()
        deliverer = WebhookDeliverer(store, keys, clock=clock)
        assert deliverer.deliver_once().retried == 1
        assert deliverer.deliver_once().claimed == 0  # not due yet (back-off)
        clock.now += timedelta(seconds=11)
        assert deliverer.deliver_once().delivered == 1
        with store() as uow:
            (row,) = uow.webhooks.list_for_tenant(tenant.id)
        assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 2)
        assert len(receiver.received) == 2
    finally:
        receiver.close()


def test_gives_up_after_max_attempts(store: UnitOfWorkFactory) -> None:
    receiver = Receiver([500] * 10)
    try:
        keys = ServiceKeys.generate()
        tenant = _tenant(store, keys, receiver.url)
        _enqueue(store, keys, tenant)
        clock = Clock()
        deliverer = WebhookDeliverer(store, keys, clock=clock, max_attempts=2)
        assert deliverer.deliver_once().retried == 1
        clock.now += timedelta(seconds=11)
        assert deliverer.deliver_once().failed == 1
        clock.now += timedelta(days=1)
        assert deliverer.deliver_once().claimed == 0
        with store() as uow:
            (row,) = uow.webhooks.list_for_tenant(tenant.id)
        assert row.status is DeliveryStatus.FAILED
        assert row.last_error == "http 500"
    finally:
        receiver.close()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_two_workers_never_deliver_a_row_twice(
    backend_name: str, tmp_path: Path, receiver: Receiver
) -> None:
    with open_backend(backend_name, tmp_path) as backend:
        store = backend.factory
        keys = ServiceKeys.generate()
        tenant = _tenant(store, keys, receiver.url)
        _enqueue(store, keys, tenant, n=40)
        errors: list[BaseException] = []

        def work() -> None:
            deliverer = WebhookDeliverer(store, keys, batch=3)
            try:
                while deliverer.deliver_once().claimed:
                    pass
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        ids = [json.loads(body)["id"] for _, body in receiver.received]
        assert len(ids) == 40
        assert len(set(ids)) == 40
        with store() as uow:
            rows = uow.webhooks.list_for_tenant(tenant.id)
        assert {r.status for r in rows} == {DeliveryStatus.DELIVERED}
        assert {r.attempts for r in rows} == {1}
