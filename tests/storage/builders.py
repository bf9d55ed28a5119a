"""Entity builders for storage tests: valid defaults, override what the test is about."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from shiren.domain.entities import (
    AuditDraft,
    Check,
    Consent,
    Decision,
    Evidence,
    LendingEvent,
    Reference,
    ReferenceKind,
    ReviewItem,
    Session,
    SessionPurpose,
    StepUpDecided,
    Subject,
    Template,
    Tenant,
    WebhookDelivery,
    new_id,
)
from shiren.storage.ports import ChainLink

T0 = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
"""A fixed 'now' (microseconds on purpose: they must survive every backend)."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def tenant(**kw: Any) -> Tenant:
    tid = kw.pop("id", new_id())
    defaults: dict[str, Any] = {
        "id": tid,
        "name": f"lender {tid[:6]}",
        "api_key_hash": f"salt${hashlib.sha256(tid.encode()).hexdigest()}",
        "created_at": T0,
        "wrapped_dek": b"\x00wrapped-dek\xff" + tid.encode(),
    }
    return Tenant(**{**defaults, **kw})


def subject(tenant_id: str, **kw: Any) -> Subject:
    sid = kw.pop("id", new_id())
    defaults: dict[str, Any] = {
        "id": sid,
        "tenant_id": tenant_id,
        "external_ref": f"user-{sid[:8]}",
        "created_at": T0,
        "id_pseudonym": "pseudo-" + sid[:8],
        "id_number_enc": b"\x01enc-id" + sid.encode(),
        "name_enc": b"\x02enc-name",
        "wrapped_key": b"\x02wrapped-subject-key" + sid.encode(),
    }
    return Subject(**{**defaults, **kw})


def consent(tenant_id: str, subject_id: str, **kw: Any) -> Consent:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "purpose": "face_verification",
        "version": "2025-01",
        "text_sha256": "ab" * 32,
        "retention_days": 365,
        "granted_at": T0,
        "client": "c" * 64,
    }
    return Consent(**{**defaults, **kw})


def template(tenant_id: str, subject_id: str, **kw: Any) -> Template:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "template_enc": bytes(range(256)) * 2,
        "embedder": "dlib-resnet@sha256:" + "0" * 64,
        "template_version": 1,
        "created_at": T0,
        "expires_at": at(86400),
    }
    return Template(**{**defaults, **kw})


def reference(tenant_id: str, subject_id: str, **kw: Any) -> Reference:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "kind": ReferenceKind.ID_CARD,
        "template_enc": b"\x03ref",
        "created_at": T0,
    }
    return Reference(**{**defaults, **kw})


def session(tenant_id: str, subject_id: str, **kw: Any) -> Session:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "purpose": SessionPurpose.STEP_UP,
        "challenge_json": '{"actions":["blink"],"sig":"x"}',
        "nonce": new_id(),
        "level": "normal",
        "threshold": 0.42,
        "created_at": T0,
        "expires_at": at(300),
    }
    return Session(**{**defaults, **kw})


def check(tenant_id: str, session_id: str, subject_id: str, **kw: Any) -> Check:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "session_id": session_id,
        "subject_id": subject_id,
        "decision": Decision.PASS,
        "policy_version": "p1",
        "created_at": at(10),
        "reasons": ("match.above_threshold",),
        "liveness_score": 0.97,
        "match_score": 0.61,
    }
    return Check(**{**defaults, **kw})


def evidence(tenant_id: str, check_id: str, **kw: Any) -> Evidence:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "check_id": check_id,
        "image_enc": b"\x04img" * 100,
        "expires_at": at(7 * 86400),
        "created_at": at(10),
    }
    return Evidence(**{**defaults, **kw})


def lending_event(tenant_id: str, subject_id: str, **kw: Any) -> LendingEvent:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "type": "disbursement",
        "decided": StepUpDecided.NEEDED,
        "policy_version": "p1",
        "created_at": T0,
        "amount_minor": 5_000_000_00,
        "device_id": "dev-1",
    }
    return LendingEvent(**{**defaults, **kw})


def review(tenant_id: str, check_id: str, **kw: Any) -> ReviewItem:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "check_id": check_id,
        "created_at": T0,
    }
    return ReviewItem(**{**defaults, **kw})


def delivery(tenant_id: str, **kw: Any) -> WebhookDelivery:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "url": "https://lender.example/hook",
        "payload": '{"event":"check.completed","id":"x"}',
        "signature": "t=1,v1=abc",
        "created_at": T0,
        "next_attempt_at": T0,
    }
    return WebhookDelivery(**{**defaults, **kw})


def draft(tenant_id: str, n: int = 0, **kw: Any) -> AuditDraft:
    defaults: dict[str, Any] = {
        "tenant_id": tenant_id,
        "kind": "check.decided",
        "payload": f'{{"n":{n}}}',
        "created_at": at(n),
    }
    return AuditDraft(**{**defaults, **kw})


def chain_hash(*, seq: int, prev_hash: str, draft: AuditDraft) -> ChainLink:
    """A stand-in for shiren.audit's hash and MAC (storage treats both as opaque)."""
    text = f"{prev_hash}|{seq}|{draft.tenant_id}|{draft.kind}|{draft.payload}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return ChainLink(digest, mac=hashlib.sha256(b"key" + digest.encode()).hexdigest())


def console_user(tenant_id: str, **kw: Any) -> Any:
    from shiren.domain.console import ConsoleRole, ConsoleUser

    uid = kw.pop("id", new_id())
    defaults: dict[str, Any] = {
        "id": uid,
        "tenant_id": tenant_id,
        "username": f"staff-{uid[:8]}",
        "role": ConsoleRole.REVIEWER,
        "password_hash": "scrypt$16384$8$1$c2FsdA==$aGFzaA==",
        "created_at": T0,
    }
    return ConsoleUser(**{**defaults, **kw})
