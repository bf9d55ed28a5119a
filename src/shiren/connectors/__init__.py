"""Connectors to outside providers: SMS one-time codes, the bank-card 4-element check and the
identity-authority check — Protocols (:mod:`.types`), SANDBOX implementations for development
and tests (:mod:`.sandbox`, refused in production), and HTTP adapters for real providers
(:mod:`.adapters` over :mod:`.http`: signing, timeouts, retries with back-off and jitter, a
circuit breaker, idempotency keys).  The service wires them (``shiren.service.connectors``)."""

from shiren.connectors.breaker import BreakerSettings, CircuitBreaker, CircuitState
from shiren.connectors.errors import ConnectorError
from shiren.connectors.types import (
    AuthorityOutcome,
    AuthorityQuery,
    AuthorityResult,
    AuthorityVerifier,
    BankCardVerifier,
    CardOutcome,
    CardQuery,
    CardResult,
    Connectors,
    SmsGateway,
    SmsReceipt,
    mask_card,
    mask_name,
    mask_phone,
    normalise_card,
    normalise_phone,
)

__all__ = [
    "AuthorityOutcome",
    "AuthorityQuery",
    "AuthorityResult",
    "AuthorityVerifier",
    "BankCardVerifier",
    "BreakerSettings",
    "CardOutcome",
    "CardQuery",
    "CardResult",
    "CircuitBreaker",
    "CircuitState",
    "ConnectorError",
    "Connectors",
    "SmsGateway",
    "SmsReceipt",
    "mask_card",
    "mask_name",
    "mask_phone",
    "normalise_card",
    "normalise_phone",
]
