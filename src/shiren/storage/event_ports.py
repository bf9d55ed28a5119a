"""Repository Protocols of the two records of what happened: the audit log (for the regulator)
and the webhook outbox (for the tenant).

Both are append-mostly and both have an ordering the service relies on.  The audit log is a hash
chain per tenant: storage places each event after the head under the tenant's chain lock and
asks a :class:`ChainHasher` for the hash, knowing nothing of the hash format itself.  The outbox
is claimed by delivery workers across tenants and retried with a deterministic back-off
(:func:`retry_delay`), so its behaviour is reproducible in tests.  Same rules as every port
(:mod:`shiren.storage.ports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shiren.domain.entities import AuditDraft, AuditEvent, DeliveryStatus, WebhookDelivery

DEFAULT_RETRY_BASE = timedelta(seconds=10)
DEFAULT_RETRY_CAP = timedelta(hours=6)
DEFAULT_MAX_ATTEMPTS = 10


def retry_delay(
    attempts: int, base: timedelta = DEFAULT_RETRY_BASE, cap: timedelta = DEFAULT_RETRY_CAP
) -> timedelta:
    """Exponential back-off after ``attempts`` failed attempts: ``base·2^(attempts-1)``, capped.

    Deterministic (no jitter) so that the outbox's behaviour is reproducible in tests; the claim
    lease and the natural spread of failure times already de-synchronise workers.
    """
    exponent = max(0, attempts - 1)
    if exponent >= 32:  # 2**32·base overflows timedelta long before it matters
        return cap
    return min(cap, base * (1 << exponent))


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What a :class:`ChainHasher` returns: the event's hash and, for a keyed chain, its MAC."""

    hash: str
    mac: str | None = None


class ChainHasher(Protocol):
    """Computes an audit event's hash (and MAC) from its predecessor's; the service adapts
    ``shiren.audit.canonical_bytes`` / ``compute_hash`` / ``compute_mac`` to this shape.

    Storage calls it while it holds the tenant's chain lock, so ``seq`` and ``prev_hash`` are
    those of the event it is about to insert; storage itself knows nothing of the hash format.
    """

    def __call__(self, *, seq: int, prev_hash: str, draft: AuditDraft) -> ChainLink: ...


class AuditLog(Protocol):
    def append(self, draft: AuditDraft, hasher: ChainHasher) -> AuditEvent:
        """Place ``draft`` after the tenant's head: ``seq = head.seq + 1`` and ``prev_hash =
        head.hash`` (or 1 and the genesis hash), read under the tenant's chain lock held until
        the unit of work ends, so concurrent appends serialise and the chain never forks."""
        ...

    def head(self, tenant_id: str) -> AuditEvent | None: ...
    def read(
        self, tenant_id: str, *, start_seq: int = 1, end_seq: int | None = None, limit: int = 1000
    ) -> list[AuditEvent]:
        """Events with ``start_seq <= seq <= end_seq`` in ``seq`` order."""
        ...


class WebhookOutbox(Protocol):
    def enqueue(self, delivery: WebhookDelivery) -> None: ...
    def get(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None: ...
    def list_for_tenant(
        self, tenant_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]: ...
    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[WebhookDelivery]:
        """Claim up to ``limit`` due deliveries of any tenant, oldest due first: they become
        ``in_flight`` with ``attempts + 1`` and ``next_attempt_at = now + lease``.

        Concurrent workers get disjoint rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
        single writer lock on SQLite).  An ``in_flight`` row whose lease ran out is due again:
        its worker died.  Commit the unit of work before delivering, so the claim is visible.
        """
        ...

    def mark_delivered(self, tenant_id: str, delivery_id: str, at: datetime) -> WebhookDelivery:
        """``in_flight`` → ``delivered`` (``record.conflict`` otherwise)."""
        ...

    def mark_failed(
        self,
        tenant_id: str,
        delivery_id: str,
        *,
        now: datetime,
        error: str,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: timedelta = DEFAULT_RETRY_BASE,
        max_delay: timedelta = DEFAULT_RETRY_CAP,
    ) -> WebhookDelivery:
        """``in_flight`` → ``pending`` due at ``now + retry_delay(attempts)``, or ``failed`` for
        good once ``attempts >= max_attempts`` (``record.conflict`` when not in flight)."""
        ...


__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RETRY_BASE",
    "DEFAULT_RETRY_CAP",
    "AuditLog",
    "ChainHasher",
    "ChainLink",
    "WebhookOutbox",
    "retry_delay",
]
