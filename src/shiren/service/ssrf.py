"""SSRF guard for webhook URLs: where a tenant may make the service send HTTP requests.

Why: a webhook URL is a lender-controlled address that *our* network connects to.  Without a
guard a tenant could point it at ``http://169.254.169.254/`` (cloud metadata, credentials), at
the database, Redis or an admin port on the private network, and read or poke them through the
delivery worker.  So:

* **At ``PUT /v1/webhook``** the host is resolved and *every* address it resolves to must be a
  public unicast address (:func:`forbidden_reason`): not loopback, private (RFC 1918, ULA
  ``fc00::/7``), link-local (``169.254/16`` — the metadata address — and ``fe80::/10``),
  multicast, reserved, unspecified, shared (CGNAT) or documentation space, nor such an IPv4
  address dressed as IPv6 (``::ffff:a.b.c.d``, ``::a.b.c.d``, 6to4 ``2002::/16``, NAT64
  ``64:ff9b::/96``).  Numeric tricks (``2130706433``, ``0x7f.1``, ``127.1``) are caught because
  the *resolver's* answer is classified, not the text.  Userinfo (``user:pw@``) and schemes
  other than https (http only to the local machine in development) are refused by
  :func:`shiren.service.webhooks.validate_url`; ports are limited to 80, 443 and 1024-65535
  (any port for the development exception below).
* **At delivery** the host is resolved again and classified again (DNS may have changed: DNS
  rebinding), and the connection goes to the very address that was checked (:func:`pin`): the
  URL's host is replaced by that IP, the ``Host`` header and TLS SNI keep the name, so the
  certificate is still verified against the name.  A refused destination fails the delivery
  with a reason; it never raises out of the worker.

Development keeps one exception: ``http``/``https`` to ``localhost``, ``127.0.0.1`` or ``::1``
(a receiver under test), and only when those names resolve to loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shiren.errors import ErrorCode, InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` as text; raises :class:`OSError` when the name does not
resolve.  Injected so tests (and operators with their own DNS policy) can replace it."""

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ALLOWED_LOW_PORTS = frozenset({80, 443})
MIN_HIGH_PORT = 1024
MAX_ADDRESSES = 32

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), TCP addresses only, de-duplicated."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if addr not in out:
            out.append(addr)
    return out


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    packed = int(ip)
    if packed >> 32 == 0 and packed > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not receive a webhook (a stable word), or ``None`` for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = forbidden_reason(inner)
            return None if why is None else f"ipv4_embedded_{why}"
        if ip in _NAT64_LOCAL:
            return "private"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link_local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("shared", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
        ("not_global", not ip.is_global),
    )
    for why, hit in checks:
        if hit:
            return why
    return None


def _forbidden(why: str, **detail: str | int) -> InputError:
    return InputError(
        f"webhook url points to a forbidden destination ({why})",
        code=ErrorCode.WEBHOOK_URL_FORBIDDEN,
        detail={"field": "url", "reason": why, **detail},
    )


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked webhook destination: the URL, its host name and the address to connect to."""

    url: str
    host: str
    address: IPAddress

    def pinned_url(self) -> str:
        return pin(self.url, self.address)


def check_destination(url: str, *, production: bool, resolver: Resolver) -> Destination:
    """Resolve ``url``'s host and return the address to connect to, or raise
    ``input.webhook_url_forbidden`` (see the module docstring).  ``url`` must already have
    passed :func:`shiren.service.webhooks.validate_url`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = port_of(url)
    local_ok = not production and host in LOCAL_HOSTS
    if port not in ALLOWED_LOW_PORTS and port < MIN_HIGH_PORT and not local_ok:
        raise _forbidden("port", port=port)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    try:
        answers = [str(literal)] if literal is not None else list(resolver(host, port))
        addresses = [ipaddress.ip_address(a) for a in answers[:MAX_ADDRESSES]]
    except (OSError, UnicodeError, ValueError):
        raise _forbidden("unresolvable") from None
    if not addresses:
        raise _forbidden("unresolvable")
    for ip in addresses:
        why = forbidden_reason(ip)
        if why is not None and not (local_ok and ip.is_loopback):
            raise _forbidden(why)
    return Destination(url, host, addresses[0])


def pin(url: str, address: IPAddress) -> str:
    """``url`` with its host replaced by ``address`` (port, path and query kept)."""
    parts = urlsplit(url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def host_header(url: str) -> str:
    """The ``Host`` header for ``url`` (name and, when not the default, port)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"


__all__ = [
    "Destination",
    "IPAddress",
    "Resolver",
    "check_destination",
    "embedded_ipv4",
    "forbidden_reason",
    "host_header",
    "pin",
    "port_of",
    "system_resolver",
]
