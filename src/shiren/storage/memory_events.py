"""In-memory audit log and webhook outbox (the ports in :mod:`shiren.storage.event_ports`).

The audit chain is extended under the unit of work's lock (the in-memory twin of SQL's lock on
the tenant row), so ``seq`` and ``prev_hash`` are always the head's.  The outbox claims due
deliveries oldest first and retries them with the port's deterministic back-off.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from shiren.domain.entities import (
    AUDIT_GENESIS_HASH,
    AuditDraft,
    AuditEvent,
    DeliveryStatus,
    WebhookDelivery,
)
from shiren.storage.errors import conflict, duplicate, not_found
from shiren.storage.event_ports import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP,
    ChainHasher,
    retry_delay,
)
from shiren.storage.memory_tables import _Repo, _scoped


class MemoryWebhookOutbox(_Repo):
    def enqueue(self, delivery: WebhookDelivery) -> None:
        if delivery.tenant_id not in self._t.tenants:
            raise not_found("tenant")
        if delivery.id in self._t.webhooks:
            raise duplicate("webhook delivery")
        self._t.webhooks[delivery.id] = delivery

    def get(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None:
        return _scoped(self._t.webhooks, tenant_id, delivery_id)

    def list_for_tenant(
        self, tenant_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        rows = (
            x
            for x in self._t.webhooks.values()
            if x.tenant_id == tenant_id and (status is None or x.status == status)
        )
        return sorted(rows, key=lambda x: (x.created_at, x.id))[:limit]

    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[WebhookDelivery]:
        due = sorted(
            (
                x
                for x in self._t.webhooks.values()
                if x.status in (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)
                and x.next_attempt_at <= now
            ),
            key=lambda x: (x.next_attempt_at, x.id),
        )[:limit]
        claimed = [
            replace(
                x,
                status=DeliveryStatus.IN_FLIGHT,
                attempts=x.attempts + 1,
                next_attempt_at=now + lease,
            )
            for x in due
        ]
        for x in claimed:
            self._t.webhooks[x.id] = x
        return claimed

    def _in_flight(self, tenant_id: str, delivery_id: str) -> WebhookDelivery:
        current = self.get(tenant_id, delivery_id)
        if current is None:
            raise not_found("webhook delivery")
        if current.status is not DeliveryStatus.IN_FLIGHT:
            raise conflict("webhook delivery", str(DeliveryStatus.IN_FLIGHT), str(current.status))
        return current

    def mark_delivered(self, tenant_id: str, delivery_id: str, at: datetime) -> WebhookDelivery:
        current = self._in_flight(tenant_id, delivery_id)
        new = replace(current, status=DeliveryStatus.DELIVERED, delivered_at=at, last_error=None)
        self._t.webhooks[delivery_id] = new
        return new

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
        current = self._in_flight(tenant_id, delivery_id)
        if current.attempts >= max_attempts:
            new = replace(current, status=DeliveryStatus.FAILED, last_error=error)
        else:
            new = replace(
                current,
                status=DeliveryStatus.PENDING,
                last_error=error,
                next_attempt_at=now + retry_delay(current.attempts, base_delay, max_delay),
            )
        self._t.webhooks[delivery_id] = new
        return new


class MemoryAuditLog(_Repo):
    def append(self, draft: AuditDraft, hasher: ChainHasher) -> AuditEvent:
        if draft.tenant_id not in self._t.tenants:
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
        self._t.audit[(draft.tenant_id, seq)] = event
        return event

    def head(self, tenant_id: str) -> AuditEvent | None:
        seqs = [seq for (tid, seq) in self._t.audit if tid == tenant_id]
        return self._t.audit[(tenant_id, max(seqs))] if seqs else None

    def read(
        self, tenant_id: str, *, start_seq: int = 1, end_seq: int | None = None, limit: int = 1000
    ) -> list[AuditEvent]:
        rows = [
            e
            for (tid, seq), e in self._t.audit.items()
            if tid == tenant_id and seq >= start_seq and (end_seq is None or seq <= end_seq)
        ]
        return sorted(rows, key=lambda e: e.seq)[:limit]


__all__ = ["MemoryAuditLog", "MemoryWebhookOutbox"]
