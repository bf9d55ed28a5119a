"""The webhook SSRF guard: the address classifier (table + hypothesis), resolution with a fake
resolver at ``PUT`` time, and delivery that re-checks and pins the checked address (DNS
rebinding), on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shiren.domain.entities import DeliveryStatus
from shiren.errors import ErrorCode, InputError
from shiren.service.app import create_tenant
from shiren.service.keys import ServiceKeys
from shiren.service.ssrf import (
    check_destination,
    embedded_ipv4,
    forbidden_reason,
    host_header,
    pin,
    system_resolver,
)
from shiren.service.webhooks import (
    Event,
    WebhookDeliverer,
    enqueue_event,
    guard_url,
    seal_secret,
)
from shiren.storage.ports import UnitOfWorkFactory
from tests.service.test_webhooks import Receiver
from tests.storage.conftest import open_backend

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


class FakeResolver:
    """Answers from a table; ``answers`` can change between calls (DNS rebinding)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError("no such host")
        return self.table[host]


FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.169.254", "link_local"),
    ("fe80::1", "link_local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("100.64.0.1", "shared"),
    ("192.0.2.10", "private"),  # documentation (TEST-NET-1)
    ("198.18.0.1", "private"),  # benchmarking
    ("2001:db8::1", "private"),  # documentation
    ("::ffff:127.0.0.1", "ipv4_embedded_loopback"),
    ("::ffff:169.254.169.254", "ipv4_embedded_link_local"),
    ("::ffff:10.0.0.1", "ipv4_embedded_private"),
    ("::10.0.0.1", "ipv4_embedded_private"),
    ("2002:a00:1::", "ipv4_embedded_private"),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::1", "ipv4_embedded_loopback"),
    ("64:ff9b::a9fe:a9fe", "ipv4_embedded_link_local"),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::1", "private"),
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_classifier_refuses_non_public_addresses(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", [PUBLIC_V4, "8.8.8.8", "1.1.1.1", PUBLIC_V6, "::ffff:8.8.8.8", "2002:808:808::"]
)
def test_classifier_allows_public_addresses(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


PRIVATE_NETS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16")
]


@given(st.sampled_from(PRIVATE_NETS), st.integers(min_value=0, max_value=2**24 - 1))
def test_every_private_v4_address_is_refused_in_every_v6_dress(
    net: ipaddress.IPv4Network, offset: int
) -> None:
    v4 = net.network_address + (offset % net.num_addresses)
    assert forbidden_reason(v4) is not None
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80))
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    for dressed in (mapped, sixtofour, nat64):
        assert embedded_ipv4(dressed) == v4
        assert forbidden_reason(dressed) is not None, dressed


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_v4_verdict_survives_v6_mapping(value: int) -> None:
    v4 = ipaddress.IPv4Address(value)
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    assert (forbidden_reason(v4) is None) == (forbidden_reason(mapped) is None)
    if forbidden_reason(v4) is None:
        assert v4.is_global
        assert not v4.is_multicast


def test_real_resolver_sees_through_numeric_tricks() -> None:
    # getaddrinfo parses these without any DNS: all are 127.0.0.1
    for host in ("2130706433", "0x7f000001", "127.1", "0177.0.0.1"):
        url = f"https://{host}/hook"
        with pytest.raises(InputError) as err:
            check_destination(url, production=True, resolver=system_resolver)
        assert err.value.code is ErrorCode.WEBHOOK_URL_FORBIDDEN
        assert err.value.detail["reason"] == "loopback"


@pytest.mark.parametrize(
    ("url", "production", "reason"),
    [
        ("https://metadata.test/latest", True, "link_local"),
        ("https://intranet.test/hook", True, "private"),
        ("https://mixed.test/hook", True, "private"),  # one bad answer is enough
        ("https://nowhere.test/hook", True, "unresolvable"),
        ("https://localhost/hook", True, "loopback"),  # production: no local exception
        ("https://public.test:22/hook", True, "port"),
        ("https://rebind.test/hook", False, "loopback"),  # a name is not "localhost"
        ("https://[::ffff:127.0.0.1]/hook", True, "ipv4_embedded_loopback"),
    ],
)
def test_put_time_guard_refuses(url: str, production: bool, reason: str) -> None:
    resolver = FakeResolver(
        {
            "metadata.test": ["169.254.169.254"],
            "intranet.test": ["10.0.0.7"],
            "mixed.test": [PUBLIC_V4, "192.168.0.3"],
            "localhost": ["127.0.0.1"],
            "public.test": [PUBLIC_V4],
            "rebind.test": ["127.0.0.1"],
            "::ffff:127.0.0.1": ["::ffff:127.0.0.1"],
        }
    )
    with pytest.raises(InputError) as err:
        guard_url(url, production=production, resolver=resolver)
    assert err.value.code is ErrorCode.WEBHOOK_URL_FORBIDDEN
    assert err.value.detail["reason"] == reason


def test_put_time_guard_allows_public_and_dev_loopback() -> None:
    resolver = FakeResolver({"hooks.test": [PUBLIC_V6, PUBLIC_V4], "localhost": ["127.0.0.1"]})
    assert guard_url("https://hooks.test:8443/x", production=True, resolver=resolver)
    assert guard_url("http://localhost:9/x", production=False, resolver=resolver)
    assert guard_url("http://127.0.0.1:9/x", production=False, resolver=resolver)
    with pytest.raises(InputError) as err:  # userinfo stays refused (syntax rule)
        guard_url("https://u:p@hooks.test/x", production=True, resolver=resolver)
    assert err.value.code is ErrorCode.WEBHOOK_URL_INVALID


def test_pin_keeps_port_path_and_host_header() -> None:
    v6 = ipaddress.ip_address(PUBLIC_V6)
    assert pin("https://h.test:8443/a?b=1", v6) == f"https://[{PUBLIC_V6}]:8443/a?b=1"
    assert pin("https://h.test/a", ipaddress.ip_address(PUBLIC_V4)) == f"https://{PUBLIC_V4}/a"
    assert host_header("https://h.test:8443/a") == "h.test:8443"
    assert host_header("https://h.test/a") == "h.test"


# -- delivery (per backend) -----------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    with open_backend(request.param, tmp_path) as backend:
        yield backend.factory


def _tenant_with_hook(store: UnitOfWorkFactory, keys: ServiceKeys, url: str) -> str:
    tenant, _ = create_tenant(store, keys, "lender", datetime.now(UTC))
    with store() as uow:
        uow.tenants.set_webhook(
            tenant.id, url=url, secret_enc=seal_secret(keys, tenant, "whsec_0123456789abcdef")
        )
        enqueue_event(
            uow,
            keys,
            tenant.id,
            event=Event.CHECK_DECIDED,
            now=datetime.now(UTC) - timedelta(seconds=1),
            subject_id="a" * 32,
            decision="pass",
        )
        uow.commit()
    return tenant.id


def test_rebinding_to_an_internal_address_fails_the_delivery(store: UnitOfWorkFactory) -> None:
    keys = ServiceKeys.generate()
    # accepted when it resolved to a public address; now the name points at the metadata service
    resolver = FakeResolver({"hooks.test": ["169.254.169.254"]})
    tenant_id = _tenant_with_hook(store, keys, "https://hooks.test/x")
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    deliverer = WebhookDeliverer(store, keys, client=client, resolver=resolver, production=True)
    stats = deliverer.deliver_once()
    assert (stats.delivered, stats.failed) == (0, 1)
    assert sent == []  # no connection was made
    with store() as uow:
        (row,) = uow.webhooks.list_for_tenant(tenant_id)
    assert row.status is DeliveryStatus.FAILED
    assert row.last_error == "forbidden destination: link_local"
    assert deliverer.deliver_once().claimed == 0  # failed for good, not retried


def test_delivery_connects_to_the_checked_address(store: UnitOfWorkFactory) -> None:
    keys = ServiceKeys.generate()
    resolver = FakeResolver({"hooks.test": [PUBLIC_V4]})
    _tenant_with_hook(store, keys, "https://hooks.test:8443/x?y=1")
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    deliverer = WebhookDeliverer(store, keys, client=client, resolver=resolver, production=True)
    assert deliverer.deliver_once().delivered == 1
    (request,) = sent
    assert str(request.url) == f"https://{PUBLIC_V4}:8443/x?y=1"
    assert request.headers["host"] == "hooks.test:8443"
    assert request.extensions["sni_hostname"] == "hooks.test"  # TLS verifies the name
    assert resolver.calls == [("hooks.test", 8443)]


def test_dev_loopback_delivery_still_reaches_a_local_receiver(store: UnitOfWorkFactory) -> None:
    keys = ServiceKeys.generate()
    receiver = Receiver()
    try:
        url = receiver.url.replace("127.0.0.1", "localhost")
        _tenant_with_hook(store, keys, url)
        resolver = FakeResolver({"localhost": ["127.0.0.1"]})
        assert WebhookDeliverer(store, keys, resolver=resolver).deliver_once().delivered == 1
        ((headers, _),) = receiver.received
        assert headers["Host"] == url.split("/")[2]
        # the same URL in production is refused at delivery
        _tenant_with_hook(store, keys, url)
        prod = WebhookDeliverer(store, keys, resolver=resolver, production=True)
        assert prod.deliver_once().failed == 1
    finally:
        receiver.close()
