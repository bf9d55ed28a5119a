"""Connector wiring from the settings, and the keyed hashes the non-face path needs.

Like the keys (:mod:`shiren.service.keys`), what a missing setting means depends on where the
service runs: development and tests use the SANDBOX connectors; production refuses them at
start (``config.invalid``) — a sandbox answers "match" to anything that is not a magic value,
so a production deployment on it would verify nobody — and needs ``SHIREN_CONNECTORS=http``
with the provider's URL (https), key id and secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlsplit

from shiren.connectors import BreakerSettings, Connectors
from shiren.connectors.adapters import HttpAuthority, HttpBankCard, HttpSms
from shiren.connectors.http import ProviderClient, ProviderSettings
from shiren.connectors.sandbox import sandbox_connectors
from shiren.errors import ConfigError, ErrorCode
from shiren.service.keys import ServiceKeys
from shiren.service.settings import Settings

log = logging.getLogger("shiren.service.connectors")

MIN_SECRET_BYTES = 32


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(
        f"SHIREN_{name.upper()} {why}", code=ErrorCode.CONFIG_INVALID, detail={"key": name}
    )


def refuse_sandbox_in_production(connectors: Connectors, *, production: bool) -> Connectors:
    if production and connectors.sandbox:
        raise _bad("connectors", "is sandbox: production needs real providers (http)")
    return connectors


def resolve_connectors(settings: Settings) -> Connectors:
    """The connectors the settings ask for (see the module docstring)."""
    production = settings.env == "production"
    if settings.connectors == "sandbox":
        refuse_sandbox_in_production(sandbox_connectors(), production=production)
        log.warning("connectors: SANDBOX (development only; no real SMS, bank or authority)")
        return sandbox_connectors()
    url = settings.provider_url or ""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _bad("provider_url", "must be an absolute URL")
    if production and parts.scheme != "https":
        raise _bad("provider_url", "must use https in production")
    if not settings.provider_key_id:
        raise _bad("provider_key_id", "is required with SHIREN_CONNECTORS=http")
    given = settings.provider_secret
    secret = b"" if given is None else given.get_secret_value().encode("utf-8")
    if len(secret) < MIN_SECRET_BYTES:
        raise _bad("provider_secret", f"must be at least {MIN_SECRET_BYTES} bytes")
    breaker = BreakerSettings(
        failure_threshold=settings.breaker_failures, reset_after_s=settings.breaker_reset_s
    )

    def client(name: str) -> ProviderClient:  # one breaker per provider capability
        return ProviderClient(
            ProviderSettings(
                name=name,
                base_url=url,
                key_id=settings.provider_key_id or "",
                secret=secret,
                timeout_s=settings.provider_timeout_s,
                max_attempts=settings.provider_max_attempts,
                breaker=breaker,
            )
        )

    return Connectors(
        HttpSms(client("sms")),
        HttpBankCard(client("bank_card")),
        HttpAuthority(client("authority")),
    )


def _tenant_key(keys: ServiceKeys, tenant_id: str, label: bytes) -> bytes:
    """A per-tenant key for ``label``, derived from the tenant's pseudonym key (which never
    changes with master-key rotation: stored hashes stay comparable)."""
    return hmac.new(keys.pseudonym_key(tenant_id).key, label, hashlib.sha256).digest()


def otp_key(keys: ServiceKeys, tenant_id: str) -> bytes:
    """The key one-time codes are hashed with (``shiren.connectors.otp``)."""
    return _tenant_key(keys, tenant_id, b"shiren/otp/v1")


def card_pseudonym(keys: ServiceKeys, tenant_id: str, card_number: str) -> str:
    """A tenant-scoped keyed pseudonym of a card number (64 hex): the same card always maps to
    the same value, which is useless without the key (card numbers are too few to hash
    unkeyed: 10^9 candidates per BIN and last four)."""
    key = _tenant_key(keys, tenant_id, b"shiren/card/v1")
    return hmac.new(key, card_number.encode("ascii"), hashlib.sha256).hexdigest()


def idempotency_key(keys: ServiceKeys, tenant_id: str, *parts: str) -> str:
    """A provider idempotency key for these ``parts`` (ids, step, the query's own digits): the
    same request gets the same key — retried or repeated, the provider answers once — and the
    key reveals nothing of the query."""
    key = _tenant_key(keys, tenant_id, b"shiren/idempotency/v1")
    return "shr_" + hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()[:40]


__all__ = [
    "card_pseudonym",
    "idempotency_key",
    "otp_key",
    "refuse_sandbox_in_production",
    "resolve_connectors",
]
