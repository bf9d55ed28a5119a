"""What the fallback use cases write and show besides the case itself: the API view, the audit
events and the ``fallback.decided`` webhook, and the one-time-code fields of a case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from shiren.connectors.otp import OtpState
from shiren.domain.fallback import FallbackFlow, decision_of
from shiren.messages import message
from shiren.service.journal import append_audit
from shiren.service.keys import ServiceKeys
from shiren.service.webhooks import Event, enqueue_event
from shiren.storage.ports import UnitOfWork


def otp_state(flow: FallbackFlow) -> OtpState:
    return OtpState(
        flow.otp_hash, flow.otp_expires_at, flow.otp_sent_at, flow.otp_attempts, flow.otp_sends
    )


def with_otp(flow: FallbackFlow, s: OtpState) -> FallbackFlow:
    return replace(
        flow,
        otp_hash=s.code_hash,
        otp_expires_at=s.expires_at,
        otp_sent_at=s.sent_at,
        otp_attempts=s.attempts,
        otp_sends=s.sends,
    )


def audit_flow(
    uow: UnitOfWork,
    keys: ServiceKeys,
    flow: FallbackFlow,
    kind: str,
    extra: Mapping[str, Any],
    now: datetime,
) -> None:
    """An audit event about ``flow``: ids, status and ``extra`` (codes and counts only)."""
    payload = {"fallback_id": flow.id, "event_id": flow.event_id, "status": flow.status.value}
    payload.update(extra)
    append_audit(uow, keys.audit_key, flow.tenant_id, kind, flow.subject_id, payload, now)


def announce_decision(
    uow: UnitOfWork, keys: ServiceKeys, flow: FallbackFlow, extra: Mapping[str, Any], now: datetime
) -> None:
    """Audit ``fallback.decided`` and queue its webhook, in ``uow`` (with the change itself)."""
    decision = decision_of(flow)
    details = {
        "decision": decision,
        "cause": flow.cause.value,
        "steps": list(flow.steps),
        "reasons": list(flow.reasons),
        "policy_version": flow.policy_version,
    }
    audit_flow(uow, keys, flow, "fallback.decided", {**details, **extra}, now)
    enqueue_event(
        uow,
        keys,
        flow.tenant_id,
        event=Event.FALLBACK_DECIDED,
        now=now,
        subject_id=flow.subject_id,
        decision=decision,
        reasons=flow.reasons,
        extra={"fallback_id": flow.id, "event_id": flow.event_id},
    )


def flow_view(flow: FallbackFlow, lang: str = "en") -> dict[str, Any]:
    """A case for the API: state, steps, masked phone, reasons with tips; never the code."""
    return {
        "id": flow.id,
        "event_id": flow.event_id,
        "subject_id": flow.subject_id,
        "cause": flow.cause.value,
        "status": flow.status.value,
        "decision": decision_of(flow),
        "steps": list(flow.steps),
        "next_step": None if flow.current_step is None else flow.current_step.value,
        "step_failures": flow.step_failures,
        "phone": "*******" + flow.phone_last4,
        "code_sends": flow.otp_sends,
        "reasons": list(flow.reasons),
        "tips": [{"code": r, "message": message(r, lang)} for r in flow.reasons],
        "policy_version": flow.policy_version,
        "created_at": flow.created_at.isoformat(),
        "expires_at": flow.expires_at.isoformat(),
        "closed_at": None if flow.closed_at is None else flow.closed_at.isoformat(),
    }


def subject_export(uow: UnitOfWork, tenant_id: str, subject_id: str) -> dict[str, Any]:
    """The subject's fallback cases and payout checks for an access request (masked: phone
    and card by their last four digits only)."""
    payouts = [
        {
            "id": p.id,
            "event_id": p.event_id,
            "decision": p.outcome.value,
            "reasons": list(p.reasons),
            "mismatched": list(p.mismatched),
            "card": "**** " + p.card_last4,
            "created_at": p.created_at.isoformat(),
        }
        for p in uow.payouts.list_for_subject(tenant_id, subject_id)
    ]
    flows = uow.fallbacks.list_for_subject(tenant_id, subject_id)
    return {"fallbacks": [flow_view(f) for f in flows], "payout_checks": payouts}


__all__ = [
    "announce_decision",
    "audit_flow",
    "flow_view",
    "otp_state",
    "subject_export",
    "with_otp",
]
