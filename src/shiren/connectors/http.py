"""The HTTP client every provider adapter uses: signed requests, timeouts, retries with
exponential back-off and jitter, a circuit breaker and idempotency keys.

The provider contract (what a real provider — or the adapter in front of it — implements):

* ``POST {base_url}{path}`` with a JSON body and the headers ``Idempotency-Key``,
  ``X-Shiren-Key-Id``, ``X-Shiren-Timestamp`` (unix seconds) and ``X-Shiren-Signature``: hex
  ``HMAC-SHA256(secret, "POST\\n{path}\\n{timestamp}\\n{idempotency key}\\n{sha256(body)}")``.
  The provider rejects a bad signature or a timestamp outside its window with 401.
* The same ``Idempotency-Key`` with the same body returns the first answer again (and sends no
  second SMS); with a different body it is refused with 409.
* A 200 answer is a JSON object signed back: ``X-Provider-Timestamp`` and
  ``X-Provider-Signature`` = hex ``HMAC-SHA256(secret, "{status}\\n{timestamp}\\n{idempotency
  key}\\n{sha256(body)}")``; an answer with a bad signature is treated as not received.
* 400/422: the data is unusable (``input.connector_rejected``, not retried); 401/403: our
  credentials (``connector.auth_failed``, not retried); 429 and 5xx, timeouts and connection
  errors: retried, then ``connector.unavailable`` / ``connector.timeout``.

Retries reuse the idempotency key, so a retry after a lost answer gets the answer the provider
already gave.  Back-off is "full jitter": attempt *n* waits ``uniform(0, min(cap, base·2^(n-1)))``
so that many workers retrying at once spread out.  Every provider failure is counted by the
breaker; when it is open, calls fail at once with ``connector.circuit_open``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from shiren.connectors.breaker import BreakerSettings, CircuitBreaker
from shiren.connectors.errors import (
    ConnectorError,
    auth_failed,
    bad_response,
    circuit_open,
    timeout,
    unavailable,
)
from shiren.errors import ErrorCode, InputError

KEY_ID_HEADER = "X-Shiren-Key-Id"
TIMESTAMP_HEADER = "X-Shiren-Timestamp"
SIGNATURE_HEADER = "X-Shiren-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PROVIDER_TIMESTAMP_HEADER = "X-Provider-Timestamp"
PROVIDER_SIGNATURE_HEADER = "X-Provider-Signature"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RESPONSE_BYTES = 64 * 1024


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(
    secret: bytes, method: str, path: str, timestamp: int, idempotency_key: str, body: bytes
) -> str:
    text = f"{method.upper()}\n{path}\n{timestamp}\n{idempotency_key}\n{body_digest(body)}"
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def response_signature(
    secret: bytes, status: int, timestamp: int, idempotency_key: str, body: bytes
) -> str:
    text = f"{status}\n{timestamp}\n{idempotency_key}\n{body_digest(body)}"
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, repr=False)
class ProviderSettings:
    """One provider endpoint.  ``repr`` never shows the secret."""

    name: str
    base_url: str
    key_id: str
    secret: bytes
    timeout_s: float = 3.0
    max_attempts: int = 3
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 2.0
    tolerance_s: int = 300
    """How far the provider's answer timestamp may be from our clock."""
    breaker: BreakerSettings = field(default_factory=BreakerSettings)

    def __repr__(self) -> str:
        return f"ProviderSettings(name={self.name!r}, base_url={self.base_url!r})"


class ProviderClient:
    """Signed, retried, circuit-broken JSON POSTs to one provider (thread-safe)."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        client: httpx.Client | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s), follow_redirects=False
        )
        self.breaker = breaker or CircuitBreaker(settings.breaker)
        self._sleep = sleep
        self._rng = rng or random.SystemRandom()
        self._now = wall_clock

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based): full jitter."""
        s = self.settings
        return self._rng.uniform(0.0, min(s.backoff_cap_s, s.backoff_base_s * 2 ** (attempt - 1)))

    def post(
        self, path: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """The provider's JSON answer, after up to ``max_attempts`` tries for retryable
        failures (every try with the same idempotency key)."""
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        raw = body.encode("utf-8")
        attempts = max(1, self.settings.max_attempts)
        for attempt in range(1, attempts + 1):
            if not self.breaker.allow():
                raise circuit_open(self.settings.name)
            try:
                answer = self._once(path, raw, idempotency_key)
            except ConnectorError as exc:
                if exc.retryable:
                    self.breaker.record_failure()
                if not exc.retryable or attempt == attempts:
                    raise
                self._sleep(self.backoff(attempt))
                continue
            except InputError:
                self.breaker.record_success()  # the provider answered: it is healthy
                raise
            self.breaker.record_success()
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, path: str, raw: bytes, idempotency_key: str) -> dict[str, Any]:
        s = self.settings
        ts = int(self._now())
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: idempotency_key,
            KEY_ID_HEADER: s.key_id,
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: request_signature(s.secret, "POST", path, ts, idempotency_key, raw),
        }
        try:
            resp = self.client.post(s.base_url.rstrip("/") + path, content=raw, headers=headers)
        except httpx.TimeoutException:
            raise timeout(s.name) from None
        except httpx.HTTPError as exc:
            raise unavailable(s.name, type(exc).__name__) from None
        return self._read(resp, idempotency_key)

    def _read(self, resp: httpx.Response, idempotency_key: str) -> dict[str, Any]:
        s = self.settings
        status = resp.status_code
        if status in RETRYABLE_STATUS:
            raise unavailable(s.name, f"HTTP {status}", status)
        if status in (401, 403):
            raise auth_failed(s.name, status)
        if status in (400, 409, 422):
            raise InputError(
                f"{s.name} refused the request",
                code=ErrorCode.CONNECTOR_REJECTED,
                detail={"provider": s.name, "status": status},
            )
        if status != 200:
            raise bad_response(s.name, f"HTTP {status}", status)
        raw = resp.content
        if len(raw) > MAX_RESPONSE_BYTES:
            raise bad_response(s.name, "answer too large", status)
        self._check_signature(resp, raw, idempotency_key)
        try:
            answer = json.loads(raw)
        except ValueError:
            raise bad_response(s.name, "not JSON", status) from None
        if not isinstance(answer, dict):
            raise bad_response(s.name, "not a JSON object", status)
        return answer

    def _check_signature(self, resp: httpx.Response, raw: bytes, idempotency_key: str) -> None:
        s = self.settings
        try:
            ts = int(resp.headers.get(PROVIDER_TIMESTAMP_HEADER, ""))
        except ValueError:
            raise bad_response(s.name, "unsigned answer") from None
        given = resp.headers.get(PROVIDER_SIGNATURE_HEADER, "")
        expected = response_signature(s.secret, resp.status_code, ts, idempotency_key, raw)
        if abs(self._now() - ts) > s.tolerance_s or not hmac.compare_digest(expected, given):
            raise bad_response(s.name, "bad answer signature")

    def close(self) -> None:
        self.client.close()


__all__ = [
    "IDEMPOTENCY_HEADER",
    "KEY_ID_HEADER",
    "PROVIDER_SIGNATURE_HEADER",
    "PROVIDER_TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ProviderClient",
    "ProviderSettings",
    "request_signature",
    "response_signature",
]
