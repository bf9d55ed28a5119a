"""A world for the fallback and payout use cases without the face models: memory storage, real
keys and encryption, SANDBOX connectors, a fake clock — and subjects, lending events and face
checks written straight into storage (as the face path would have left them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shiren.connectors.sandbox import SandboxAuthority, SandboxBankCard, SandboxSms
from shiren.connectors.types import Connectors, with_luhn
from shiren.domain.entities import (
    Check,
    Decision,
    LendingEvent,
    Session,
    SessionPurpose,
    StepUpDecided,
    Subject,
    SubjectStatus,
    Tenant,
    new_id,
)
from shiren.domain.fallback import FallbackPolicy, StepKind
from shiren.privacy import CipherContext, new_data_key, seal, wrap_subject_key
from shiren.service.app import create_tenant
from shiren.service.fallback import FallbackService
from shiren.service.keys import ServiceKeys
from shiren.service.payout import PayoutService
from shiren.service.webhooks import seal_secret
from shiren.storage.memory import MemoryStore
from shiren.storage.ports import UnitOfWorkFactory

NAME = "张三"
ID_NUMBER = "11010519491231002X"
PHONE = "13912345678"


def card(magic: str = "1234") -> str:
    """A valid sandbox card whose four digits before the check digit are ``magic``."""
    return with_luhn("62220200000" + magic)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    store: UnitOfWorkFactory
    keys: ServiceKeys
    clock: Clock
    tenant: Tenant
    sms: SandboxSms = field(default_factory=SandboxSms)
    cards: SandboxBankCard = field(default_factory=SandboxBankCard)
    policy: FallbackPolicy = field(
        default_factory=lambda: FallbackPolicy(version="test-1", face_failures=3)
    )

    @property
    def connectors(self) -> Connectors:
        return Connectors(self.sms, self.cards, SandboxAuthority())

    def fallbacks(self, **over: Any) -> FallbackService:
        policy = replace(self.policy, **over)
        return FallbackService(
            store=self.store,
            keys=self.keys,
            connectors=self.connectors,
            clock=self.clock,
            policy=policy,
        )

    def payouts(self) -> PayoutService:
        return PayoutService(
            store=self.store, keys=self.keys, connectors=self.connectors, clock=self.clock
        )

    def subject(self, name: str = NAME, id_number: str = ID_NUMBER) -> str:
        sid = new_id()
        key = new_data_key()
        t = self.tenant
        dek = self.keys.ring.unwrap_tenant_key(t.id, t.wrapped_dek)

        def sealed(column: str, data: bytes) -> bytes:
            return seal(key, data, CipherContext(t.id, "subjects", column, sid))

        subject = Subject(
            id=sid,
            tenant_id=t.id,
            external_ref="u-" + sid[:8],
            created_at=self.clock(),
            status=SubjectStatus.ENROLLED,
            id_pseudonym="p" * 64,
            id_number_enc=sealed("id_number_enc", id_number.encode()),
            name_enc=sealed("name_enc", name.encode()),
            wrapped_key=wrap_subject_key(dek, t.id, sid, key),
        )
        with self.store() as uow:
            uow.subjects.add(subject)
            uow.commit()
        return sid

    def event(self, subject_id: str, *, needed: bool = True) -> str:
        event = LendingEvent(
            id=new_id(),
            tenant_id=self.tenant.id,
            subject_id=subject_id,
            type="disbursement",
            decided=StepUpDecided.NEEDED if needed else StepUpDecided.NOT_NEEDED,
            policy_version="p",
            created_at=self.clock(),
        )
        with self.store() as uow:
            uow.lending_events.add(event)
            uow.commit()
        return event.id

    def face_check(self, subject_id: str, event_id: str, decision: Decision) -> None:
        """A face check of the event, as ``ShirenService.submit`` would have recorded it (one
        second after the previous one: checks are ordered by time)."""
        self.clock.advance(1)
        now = self.clock()
        session = Session(
            id=new_id(),
            tenant_id=self.tenant.id,
            subject_id=subject_id,
            purpose=SessionPurpose.STEP_UP,
            challenge_json="{}",
            nonce=new_id(),
            level="normal",
            threshold=0.5,
            created_at=now,
            expires_at=now + timedelta(minutes=5),
            event_id=event_id,
        )
        check = Check(
            id=new_id(),
            tenant_id=self.tenant.id,
            session_id=session.id,
            subject_id=subject_id,
            decision=decision,
            policy_version="p",
            created_at=now,
        )
        with self.store() as uow:
            uow.sessions.add(session)
            uow.checks.add(check)
            uow.commit()

    def webhook_events(self) -> list[dict[str, Any]]:
        with self.store() as uow:
            rows = uow.webhooks.list_for_tenant(self.tenant.id)
        return [json.loads(r.payload) for r in rows]

    def audit_kinds(self) -> list[str]:
        with self.store() as uow:
            return [e.kind for e in uow.audit.read(self.tenant.id)]

    def audit_text(self) -> str:
        with self.store() as uow:
            return "\n".join(e.payload for e in uow.audit.read(self.tenant.id))


def make_world(store: UnitOfWorkFactory | None = None, *, webhook: bool = True) -> World:
    keys = ServiceKeys.generate()
    clock = Clock()
    store = store or MemoryStore()
    tenant, _ = create_tenant(store, keys, "lender", clock())
    if webhook:
        with store() as uow:
            uow.tenants.set_webhook(
                tenant.id,
                url="https://lender.example/hook",
                secret_enc=seal_secret(keys, tenant, "whsec_" + "x" * 32),
            )
            uow.commit()
    return World(store, keys, clock, tenant)


__all__ = ["ID_NUMBER", "NAME", "PHONE", "StepKind", "World", "card", "make_world"]
