"""Webhooks: signed event notifications to the lender, through a transactional outbox.

Why an outbox: a decision, an erasure or a review outcome and the row announcing it are written
in the SAME unit of work, so the lender is told about exactly the changes that committed — never
about a rolled-back one, never missing a committed one — and a slow or dead receiver never slows
or fails the request that made the change.  A worker (:class:`WebhookDeliverer`, run by
``shiren webhooks deliver`` or by ``shiren serve --deliver``) claims due rows with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), POSTs them, and marks them delivered or schedules a
retry with exponential back-off, until ``max_attempts`` make the row ``failed``.  Delivery is
*at least once*: a worker that dies after the POST but before marking the row lets the lease run
out and the row is sent again, so receivers must de-duplicate on the payload's ``id``.

Payloads carry ids, the decision and reason codes only: never templates, images, names or ID
numbers (the lender fetches details with its API key if it needs them).

Signature (what the lender verifies, see :func:`verify_signature`)::

    Shiren-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

``t`` is the time of *this* attempt (each retry is re-signed), so a receiver can reject anything
older than its replay window (5 minutes recommended) and compare ``v1`` in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from shiren.domain.entities import Tenant, WebhookDelivery, new_id, utcnow
from shiren.errors import ErrorCode, InputError, StateError
from shiren.privacy import CipherContext, open_, seal
from shiren.service import tenantkeys
from shiren.service.keys import ServiceKeys
from shiren.service.ssrf import Resolver, check_destination, host_header, system_resolver
from shiren.storage.ports import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger("shiren.webhooks")

SIGNATURE_HEADER = "Shiren-Signature"
DEFAULT_TOLERANCE_S = 300
DELIVERY_TIMEOUT_S = 5.0
MAX_URL_CHARS = 2048
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Event:
    """Event names (stable: lenders switch on them)."""

    CHECK_DECIDED = "check.decided"
    SUBJECT_ERASED = "subject.erased"
    REVIEW_CLOSED = "review.closed"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    FALLBACK_DECIDED = "fallback.decided"  # issue 6: the non-face path finished
    PAYOUT_CHECKED = "payout.checked"  # issue 6: payout-card ownership verdict
    CARD_CAPTURE_ENROLLED = "card_capture.enrolled"  # issue 16: the phone's card enrolled


def sign(secret: bytes, body: str, t: int) -> str:
    """The ``Shiren-Signature`` header value for ``body`` sent at unix time ``t``."""
    mac = hmac.new(secret, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    secret: bytes,
    body: str | bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a lender runs on receipt: the header parses, ``t`` is within ``tolerance_s`` of
    ``now`` (replay window) and ``v1`` matches (constant-time comparison).

    Any forged input — a body that is not UTF-8, a non-ASCII or malformed header — answers
    ``False``; it never raises (a verifier that crashes on hostile input is a denial of service
    for the receiver).  The MAC is computed over the raw body bytes, exactly as sent."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, value)
    given_text = parts.get("v1", "")
    t_text = parts.get("t", "")
    if not (t_text.isascii() and t_text.isdigit() and len(t_text) <= 12):
        return False
    if not (given_text.isascii() and len(given_text) == 64):
        return False
    t = int(t_text)
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), given_text.encode("ascii"))


def validate_url(url: str, *, production: bool) -> str:
    """``url`` if it may receive webhooks: https in production; in development also plain
    http to the local machine (a receiver under test).  Credentials in the URL are refused:
    they would be stored and logged in clear."""

    def bad(why: str) -> InputError:
        return InputError(
            f"webhook url {why}", code=ErrorCode.WEBHOOK_URL_INVALID, detail={"field": "url"}
        )

    if not 1 <= len(url) <= MAX_URL_CHARS or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise bad(f"must be 1-{MAX_URL_CHARS} characters without spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise bad("is malformed") from None
    if not host or parts.username is not None or parts.password is not None:
        raise bad("needs a host and no credentials")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and not production and _is_local(host):
        return url
    raise bad("must use https" + ("" if production else " (or http to localhost)"))


def guard_url(url: str, *, production: bool, resolver: Resolver = system_resolver) -> str:
    """``url`` if it is well formed (:func:`validate_url`) *and* its host resolves only to
    addresses a webhook may reach (:func:`shiren.service.ssrf.check_destination`):
    ``input.webhook_url_invalid`` / ``input.webhook_url_forbidden`` otherwise."""
    url = validate_url(url, production=production)
    check_destination(url, production=production, resolver=resolver)
    return url


def _is_local(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_secret() -> str:
    """A fresh signing secret (``whsec_`` + 32 random bytes, URL-safe)."""
    return "whsec_" + secrets.token_urlsafe(32)


def _context(tenant_id: str) -> CipherContext:
    return CipherContext(tenant_id, "tenants", "webhook_secret_enc", tenant_id)


def seal_secret(keys: ServiceKeys, tenant: Tenant, secret: str) -> bytes:
    """The secret sealed with the tenant's data key, bound to the tenant's row and column."""
    dek = keys.ring.unwrap_tenant_key(tenant.id, tenant.wrapped_dek)
    return seal(dek, secret.encode(), _context(tenant.id))


def open_secret(keys: ServiceKeys, tenant: Tenant) -> bytes | None:
    """The tenant's signing secret, or ``None`` when it has none."""
    if tenant.webhook_secret_enc is None:
        return None
    deks = keys.ring.unwrap_tenant_keys(tenant.id, tenant.wrapped_dek)
    dek = tenantkeys.for_blob(deks, deks[0], tenant.webhook_secret_enc)  # mid-rotation
    return open_(dek, tenant.webhook_secret_enc, _context(tenant.id))


def enqueue_event(
    uow: UnitOfWork,
    keys: ServiceKeys,
    tenant_id: str,
    *,
    event: str,
    now: datetime,
    subject_id: str | None = None,
    check_id: str | None = None,
    decision: str | None = None,
    reasons: Sequence[str] = (),
    extra: Mapping[str, str | None] | None = None,
) -> WebhookDelivery | None:
    """Add the event to the outbox inside ``uow`` (the caller's unit of work, so it commits or
    rolls back with the change it announces); nothing when the tenant has no webhook.

    The tenant is re-read in ``uow`` so a URL changed a moment ago is the one used.
    """
    tenant = uow.tenants.get(tenant_id)
    if tenant is None or tenant.webhook_url is None:
        return None
    secret = open_secret(keys, tenant)
    if secret is None:
        return None
    delivery_id = new_id()
    body = json.dumps(
        {
            "event": event,
            "id": delivery_id,
            "tenant": tenant_id,
            "subject_id": subject_id,
            "check_id": check_id,
            "decision": decision,
            "reasons": list(reasons),
            "created_at": now.isoformat(),
            **(extra or {}),  # issue 6: ids of fallbacks / payout checks / lending events
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    delivery = WebhookDelivery(
        id=delivery_id,
        tenant_id=tenant_id,
        url=tenant.webhook_url,
        payload=body,
        signature=sign(secret, body, int(now.timestamp())),
        created_at=now,
        next_attempt_at=now,
    )
    uow.webhooks.enqueue(delivery)
    return delivery


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """What one :meth:`WebhookDeliverer.deliver_once` did (counts only)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def claimed(self) -> int:
        return self.delivered + self.retried + self.failed

    def to_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retried": self.retried, "failed": self.failed}


class WebhookDeliverer:
    """Claims due outbox rows and POSTs them (see the module docstring).

    Several deliverers (threads, processes, hosts) may run against one database: the claim
    gives each row to one of them for ``lease``; the HTTP call happens *after* the claim is
    committed and outside any transaction, so a slow receiver holds no lock.
    """

    def __init__(
        self,
        store: UnitOfWorkFactory,
        keys: ServiceKeys,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 20,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: timedelta = DEFAULT_RETRY_BASE,
        max_delay: timedelta = DEFAULT_RETRY_CAP,
        production: bool = False,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.store = store
        self.production = production
        self.resolver = resolver
        """Every attempt re-resolves and re-checks the URL (DNS rebinding) and connects to the
        checked address (:mod:`shiren.service.ssrf`)."""
        self.keys = keys
        self.client = client or httpx.Client(timeout=DELIVERY_TIMEOUT_S, follow_redirects=False)
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    def deliver_once(self) -> DeliveryStats:
        """Claim one batch of due rows, deliver each, record each outcome."""
        with self.store() as uow:
            claimed = uow.webhooks.claim_due(self.clock(), limit=self.batch, lease=self.lease)
            uow.commit()
        delivered = retried = failed = 0
        for row in claimed:
            error, final = self._attempt(row)
            now = self.clock()
            with self.store() as uow:
                try:
                    if error is None:
                        uow.webhooks.mark_delivered(row.tenant_id, row.id, now)
                        delivered += 1
                    else:
                        new = uow.webhooks.mark_failed(
                            row.tenant_id,
                            row.id,
                            now=now,
                            error=error,
                            # a forbidden destination fails for good: retrying would only
                            # knock on the internal address again
                            max_attempts=1 if final else self.max_attempts,
                            base_delay=self.base_delay,
                            max_delay=self.max_delay,
                        )
                        if new.status.value == "failed":
                            failed += 1
                            log.warning("webhook %s failed for good: %s", row.id, error)
                        else:
                            retried += 1
                    uow.commit()
                except StateError as exc:  # our lease ran out and another worker took it
                    log.warning("webhook %s: could not record outcome (%s)", row.id, exc.code)
        return DeliveryStats(delivered, retried, failed)

    def _attempt(self, row: WebhookDelivery) -> tuple[str | None, bool]:
        """(error or ``None``, whether the error is final); never raises for a bad row."""
        try:
            return self._post(row), False
        except InputError as exc:  # the SSRF guard refused the destination
            reason = str(exc.detail.get("reason", exc.code))
            log.warning("webhook %s: destination refused (%s)", row.id, reason)
            return f"forbidden destination: {reason}", True
        except Exception as exc:  # a worker must survive any single bad row
            log.warning("webhook %s: attempt failed (%s)", row.id, type(exc).__name__)
            return f"error: {type(exc).__name__}", False

    def _post(self, row: WebhookDelivery) -> str | None:
        """POST one row, signed now, to the address the SSRF guard checked just now; ``None``
        on 2xx, else a short error (no body echoed)."""
        destination = check_destination(row.url, production=self.production, resolver=self.resolver)
        with self.store() as uow:
            tenant = uow.tenants.get(row.tenant_id)
        secret = None if tenant is None else open_secret(self.keys, tenant)
        if secret is None:
            return "tenant has no webhook secret"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shiren-webhooks/1",
            SIGNATURE_HEADER: sign(secret, row.payload, int(time.time())),
            "Shiren-Delivery": row.id,
            "Host": host_header(row.url),
        }
        try:
            response = self.client.post(
                destination.pinned_url(),
                content=row.payload.encode(),
                headers=headers,
                extensions={"sni_hostname": destination.host},
            )
        except httpx.HTTPError as exc:
            return f"transport: {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"http {response.status_code}"

    def run(self, stop: threading.Event, *, interval_s: float = 2.0) -> None:
        """Deliver until ``stop`` is set, sleeping ``interval_s`` when nothing was due."""
        while not stop.is_set():
            try:
                stats = self.deliver_once()
            except Exception:  # a worker loop must survive a database blip
                log.exception("webhook delivery round failed")
                stats = DeliveryStats()
            if stats.claimed < self.batch:
                stop.wait(interval_s)

    def start_thread(self, *, interval_s: float = 2.0) -> tuple[threading.Thread, threading.Event]:
        """Run :meth:`run` in a daemon thread (``shiren serve --deliver``)."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self.run,
            args=(stop,),
            kwargs={"interval_s": interval_s},
            name="shiren-webhooks",
            daemon=True,
        )
        thread.start()
        return thread, stop


__all__ = [
    "DELIVERY_TIMEOUT_S",
    "SIGNATURE_HEADER",
    "DeliveryStats",
    "Event",
    "WebhookDeliverer",
    "enqueue_event",
    "guard_url",
    "new_secret",
    "open_secret",
    "seal_secret",
    "sign",
    "validate_url",
    "verify_signature",
]
