"""SQL audit log and webhook outbox (the twins of :mod:`shiren.storage.memory_events`).

The audit chain is serialised per tenant by a lock on the tenant row, held until commit; the
outbox is claimed with ``FOR UPDATE SKIP LOCKED`` so concurrent delivery workers get disjoint
rows on PostgreSQL (SQLite's single writer does the same by itself).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from shiren.domain.entities import (
    AUDIT_GENESIS_HASH,
    AuditDraft,
    AuditEvent,
    DeliveryStatus,
    WebhookDelivery,
)
from shiren.storage.errors import conflict, not_found
from shiren.storage.event_ports import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP,
    ChainHasher,
    retry_delay,
)
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _loader, _SqlRepo, _values

_delivery = _loader(WebhookDelivery, status=DeliveryStatus)
_audit = _loader(AuditEvent)


class SqlWebhookOutbox(_SqlRepo):
    t = s.webhook_deliveries

    def enqueue(self, delivery: WebhookDelivery) -> None:
        self._insert(self.t, _values(delivery), "webhook delivery")

    def get(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == delivery_id)
        return self._one(stmt, _delivery)

    def list_for_tenant(
        self, tenant_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(self.t.c.status == status.value)
        stmt = stmt.order_by(self.t.c.created_at, self.t.c.id).limit(limit)
        return self._all(stmt, _delivery)

    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[WebhookDelivery]:
        due = (
            select(self.t.c.id)
            .where(
                self.t.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value]),
                self.t.c.next_attempt_at <= now,
            )
            .order_by(self.t.c.next_attempt_at, self.t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the writer lock
        )
        ids = list(self._exec(due).scalars().all())
        if not ids:
            return []
        claim = (
            update(self.t)
            .where(self.t.c.id.in_(ids))
            .values(
                status=DeliveryStatus.IN_FLIGHT.value,
                attempts=self.t.c.attempts + 1,
                next_attempt_at=now + lease,
            )
            .returning(*self.t.c)
        )
        claimed = self._all(claim, _delivery)
        order = {delivery_id: i for i, delivery_id in enumerate(ids)}
        return sorted(claimed, key=lambda x: order[x.id])

    def _finish(self, tenant_id: str, delivery_id: str, **values: Any) -> WebhookDelivery:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == delivery_id,
                self.t.c.status == DeliveryStatus.IN_FLIGHT.value,
            )
            .values(**values)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _delivery)
        if new is not None:
            return new
        current = self.get(tenant_id, delivery_id)
        if current is None:
            raise not_found("webhook delivery")
        raise conflict("webhook delivery", str(DeliveryStatus.IN_FLIGHT), str(current.status))

    def mark_delivered(self, tenant_id: str, delivery_id: str, at: datetime) -> WebhookDelivery:
        return self._finish(
            tenant_id,
            delivery_id,
            status=DeliveryStatus.DELIVERED.value,
            delivered_at=at,
            last_error=None,
        )

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
        current = self.get(tenant_id, delivery_id)
        if current is None:
            raise not_found("webhook delivery")
        if current.status is not DeliveryStatus.IN_FLIGHT:
            raise conflict("webhook delivery", str(DeliveryStatus.IN_FLIGHT), str(current.status))
        if current.attempts >= max_attempts:
            return self._finish(
                tenant_id, delivery_id, status=DeliveryStatus.FAILED.value, last_error=error
            )
        return self._finish(
            tenant_id,
            delivery_id,
            status=DeliveryStatus.PENDING.value,
            last_error=error,
            next_attempt_at=now + retry_delay(current.attempts, base_delay, max_delay),
        )


class SqlAuditLog(_SqlRepo):
    t = s.audit_events

    def append(self, draft: AuditDraft, hasher: ChainHasher) -> AuditEvent:
        # The tenant row is the chain's lock: FOR NO KEY UPDATE (key_share=True) serialises
        # appends of one tenant until commit without blocking inserts that merely reference the
        # tenant.  Locking the head event instead would not work for the first event (no row).
        lock = (
            select(s.tenants.c.id)
            .where(s.tenants.c.id == draft.tenant_id)
            .with_for_update(key_share=True)
        )
        if self._exec(lock).first() is None:
            raise not_found("tenant")
        head = self.head(draft.tenant_id)
        seq = 1 if head is None else head.seq + 1
        prev_hash = AUDIT_GENESIS_HASH if head is None else head.hash
        link = hasher(seq=seq, prev_hash=prev_hash, draft=draft)
        event = AuditEvent(
            seq=seq,
            tenant_id=draft.tenant_id,
            kind=draft.kind,
            payload=draft.payload,
            created_at=draft.created_at,
            prev_hash=prev_hash,
            hash=link.hash,
            subject_id=draft.subject_id,
            mac=link.mac,
        )
        self._insert(self.t, _values(event), "audit event")
        return event

    def head(self, tenant_id: str) -> AuditEvent | None:
        stmt = (
            select(self.t).where(self.t.c.tenant_id == tenant_id).order_by(self.t.c.seq.desc())
        ).limit(1)
        return self._one(stmt, _audit)

    def read(
        self, tenant_id: str, *, start_seq: int = 1, end_seq: int | None = None, limit: int = 1000
    ) -> list[AuditEvent]:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.seq >= start_seq)
        if end_seq is not None:
            stmt = stmt.where(self.t.c.seq <= end_seq)
        return self._all(stmt.order_by(self.t.c.seq).limit(limit), _audit)


__all__ = [
    "SqlAuditLog",
    "SqlWebhookOutbox",
]
