"""The non-face path as use cases: open a fallback for a lending event, send and verify the
SMS code, run the bank-card (or authority) check, show the state, close a manual review.

The state machine and the policy are pure (:mod:`shiren.domain.fallback`); this module loads a
case, calls the provider *outside* any transaction (a slow provider holds no lock), then stores
the new state with an optimistic version check, so two concurrent submissions for one step
cannot both advance it (the loser gets ``record.conflict``).  When a case finishes — passed by
the non-face path, or exhausted into manual review — it is audited and a ``fallback.decided``
webhook is queued in the same unit of work.

Privacy: the phone is sealed with the subject key (only its last four digits in clear), the code
is kept only as a keyed hash, the name and ID number are opened in memory for the provider call
and dropped; audit payloads and webhooks carry ids, steps and reason codes only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from shiren.connectors import Connectors
from shiren.connectors.otp import OtpCheck, OtpRules, attempts_left, check, issue
from shiren.connectors.types import (
    AuthorityOutcome,
    AuthorityQuery,
    CardOutcome,
    CardQuery,
    mask_card,
    normalise_card,
    normalise_phone,
)
from shiren.domain.entities import Decision, LendingEvent, StepUpDecided, Tenant, new_id
from shiren.domain.fallback import (
    FallbackFlow,
    FallbackPolicy,
    FallbackStatus,
    FallbackTrigger,
    StepKind,
    close_review,
    exhaust,
    expiry,
    load_fallback_policy,
    record_step,
    require_step,
)
from shiren.errors import ErrorCode, InputError, StateError
from shiren.privacy import redact
from shiren.reasons import ReasonCode
from shiren.service.connectors import idempotency_key, otp_key
from shiren.service.fallback_records import (
    announce_decision,
    audit_flow,
    flow_view,
    otp_state,
    with_otp,
)
from shiren.service.keys import ServiceKeys
from shiren.service.vault import KeyVault
from shiren.storage.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("shiren.service.fallback")

R = ReasonCode
_CARD_REASON = {
    CardOutcome.MATCH: R.FALLBACK_BANK_CARD_MATCHED,
    CardOutcome.MISMATCH: R.FALLBACK_BANK_CARD_MISMATCH,
    CardOutcome.UNKNOWN: R.FALLBACK_BANK_CARD_UNKNOWN,
}


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _not_found(what: str) -> StateError:
    return StateError(f"{what} not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": what})


def _not_allowed(why: str, **detail: Any) -> StateError:
    return StateError(
        f"fallback not allowed: {why}",
        code=ErrorCode.FALLBACK_NOT_ALLOWED,
        detail={"why": why, **detail},
    )


class FallbackService:
    def __init__(
        self,
        *,
        store: UnitOfWorkFactory,
        keys: ServiceKeys,
        connectors: Connectors,
        clock: Callable[[], datetime],
        policy: FallbackPolicy | None = None,
        otp_rules: OtpRules | None = None,
        vault: KeyVault | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.vault = vault or KeyVault(keys)
        self.connectors = connectors
        self.clock = clock
        self.policy = policy or load_fallback_policy()
        self.otp_rules = otp_rules or OtpRules()

    # -- start ---------------------------------------------------------------------------

    def start(
        self, tenant: Tenant, event_id: str, *, phone: str, refuse_face: bool = False
    ) -> dict[str, Any]:
        """Open the fallback for a lending event whose face check failed often enough, locked
        the subject, or that the user refuses (``refuse_face``); an existing unexpired case of
        the event is returned as it is (idempotent)."""
        number = normalise_phone(phone)
        now = self.clock()
        with self.store() as uow:
            event = uow.lending_events.get(tenant.id, event_id) if _is_id(event_id) else None
            if event is None:
                raise _not_found("event")
            for flow in reversed(uow.fallbacks.list_for_event(tenant.id, event.id)):
                if flow.status is not FallbackStatus.EXPIRED and now <= flow.expires_at:
                    return flow_view(flow)
            subject = uow.subjects.get(tenant.id, event.subject_id)
            if subject is None or subject.erased_at is not None:
                raise _not_allowed("subject erased")
            cause = self._cause(uow, tenant, event, refuse_face)
            flow_id = new_id()
            flow = FallbackFlow(
                id=flow_id,
                tenant_id=tenant.id,
                subject_id=subject.id,
                event_id=event.id,
                cause=cause,
                steps=tuple(s.value for s in self.policy.steps),
                policy_version=self.policy.version,
                created_at=now,
                expires_at=expiry(now, self.policy),
                phone_enc=self.vault.seal_field(
                    tenant,
                    subject,
                    "fallback_flows",
                    "phone_enc",
                    flow_id,
                    number.encode("ascii"),
                ),
                phone_last4=number[-4:],
                reasons=(
                    R.FALLBACK_FACE_REFUSED.value
                    if cause is FallbackTrigger.FACE_REFUSED
                    else R.FALLBACK_FACE_FAILED.value,
                ),
            )
            uow.fallbacks.add(flow)
            self._audit(
                uow, flow, "fallback.started", {"cause": cause.value, "steps": list(flow.steps)}
            )
            uow.commit()
        log.info(redact(f"fallback started tenant={tenant.id} fallback={flow.id} cause={cause}"))
        return flow_view(flow)

    def _cause(
        self, uow: UnitOfWork, tenant: Tenant, event: LendingEvent, refuse_face: bool
    ) -> FallbackTrigger:
        if event.decided is not StepUpDecided.NEEDED:
            raise _not_allowed("the event needs no check")
        on_event = {
            s.id
            for s in uow.sessions.list_for_subject(tenant.id, event.subject_id)
            if s.event_id == event.id
        }
        checks = uow.checks.list_for_subject(tenant.id, event.subject_id)  # oldest first
        if any(c.decision is Decision.PASS and c.session_id in on_event for c in checks):
            raise _not_allowed("the face check passed")
        if refuse_face:
            return FallbackTrigger.FACE_REFUSED
        passes = [i for i, c in enumerate(checks) if c.decision is Decision.PASS]
        failed = checks[passes[-1] + 1 :] if passes else checks  # since the last pass
        if any(c.decision is Decision.FALLBACK for c in failed):
            return FallbackTrigger.FACE_LOCKED
        if len(failed) >= self.policy.face_failures:
            return FallbackTrigger.FACE_FAILED
        raise _not_allowed(
            "too few failed face checks", failed=len(failed), needed=self.policy.face_failures
        )

    # -- SMS code ------------------------------------------------------------------------

    def send_code(self, tenant: Tenant, flow_id: str) -> dict[str, Any]:
        """Send a fresh code to the case's phone (cool-down and send cap enforced)."""
        now = self.clock()
        flow, subject = self._load(tenant, flow_id, StepKind.SMS_OTP, now)
        phone = self.vault.open_field(
            tenant,
            subject,
            "fallback_flows",
            "phone_enc",
            flow.id,
            flow.phone_enc or b"",
        ).decode("ascii")
        code, state = issue(
            otp_state(flow),
            key=otp_key(self.keys, tenant.id),
            scope=self._scope(flow, flow.otp_sends + 1),
            now=now,
            rules=self.otp_rules,
        )
        # The key covers the code's hash: the adapter's own retries reuse it (one SMS); a send
        # the caller repeats after a provider failure is a new code, so a new key.
        key = idempotency_key(
            self.keys, tenant.id, flow.id, "sms", str(state.sends), state.code_hash or ""
        )
        receipt = self.connectors.sms.send_code(phone, code, idempotency_key=key)
        with self.store() as uow:
            saved = uow.fallbacks.update(with_otp(flow, state), expected_version=flow.version)
            self._audit(uow, saved, "fallback.code_sent", {"sends": state.sends})
            uow.commit()
        out = flow_view(saved)
        out["code_expires_at"] = None if state.expires_at is None else state.expires_at.isoformat()
        if receipt.sandbox:  # SANDBOX only: no SMS leaves the machine, so show the code
            out["sandbox_code"] = code
        return out

    def verify_code(self, tenant: Tenant, flow_id: str, code: str) -> dict[str, Any]:
        now = self.clock()
        if not 1 <= len(code) <= 16:
            raise InputError("code must be 1-16 characters", detail={"field": "code"})
        flow, _ = self._load(tenant, flow_id, StepKind.SMS_OTP, now)
        state = otp_state(flow)
        rules = self.otp_rules
        result, after = check(
            state,
            code,
            key=otp_key(self.keys, tenant.id),
            scope=self._scope(flow, flow.otp_sends),
            now=now,
            rules=rules,
        )
        new = with_otp(flow, after)
        if result is OtpCheck.VERIFIED:
            new = record_step(
                new, passed=True, reason=R.FALLBACK_SMS_VERIFIED.value, policy=self.policy, now=now
            )
        elif after.attempts >= rules.max_attempts:  # this code is dead: one failure of the step
            new = record_step(
                new, passed=False, reason=R.FALLBACK_SMS_FAILED.value, policy=self.policy, now=now
            )
            if new.status is FallbackStatus.OPEN and after.sends >= rules.max_sends:
                new = exhaust(new, now)
        out = self._store_step(tenant, flow, new, StepKind.SMS_OTP, result.value)
        out["verified"] = result is OtpCheck.VERIFIED
        out["attempts_left"] = attempts_left(after, rules) if result is OtpCheck.WRONG else None
        return out

    # -- bank card and authority ---------------------------------------------------------

    def submit_bank_card(self, tenant: Tenant, flow_id: str, card_number: str) -> dict[str, Any]:
        """The 4-element check with the subject's own name and ID number, the case's verified
        phone and the card given: all four must match."""
        now = self.clock()
        card = normalise_card(card_number)
        flow, subject = self._load(tenant, flow_id, StepKind.BANK_CARD_4, now)
        name, id_number = self.vault.open_identity(tenant, subject)
        phone = self.vault.open_field(
            tenant,
            subject,
            "fallback_flows",
            "phone_enc",
            flow.id,
            flow.phone_enc or b"",
        ).decode("ascii")
        key = idempotency_key(
            self.keys, tenant.id, flow.id, "bank_card", str(flow.step_failures), card
        )
        result = self.connectors.bank_card.verify(
            CardQuery(name, id_number, card, phone), idempotency_key=key
        )
        del name, id_number
        reason = _CARD_REASON[result.outcome]
        new = record_step(
            flow,
            passed=result.outcome is CardOutcome.MATCH,
            reason=reason.value,
            policy=self.policy,
            now=now,
        )
        out = self._store_step(tenant, flow, new, StepKind.BANK_CARD_4, result.outcome.value)
        out["bank_card"] = {
            "result": result.outcome.value,
            "mismatched": list(result.mismatched),
            "card": mask_card(card),
            "sandbox": result.sandbox,
        }
        return out

    def submit_authority(
        self, tenant: Tenant, flow_id: str, photo: bytes | None = None
    ) -> dict[str, Any]:
        """Name + ID number (and optionally the photo) against the identity authority."""
        now = self.clock()
        flow, subject = self._load(tenant, flow_id, StepKind.AUTHORITY, now)
        name, id_number = self.vault.open_identity(tenant, subject)
        digest = "" if photo is None else hashlib.sha256(photo).hexdigest()
        key = idempotency_key(
            self.keys, tenant.id, flow.id, "authority", str(flow.step_failures), digest
        )
        result = self.connectors.authority.verify(
            AuthorityQuery(name, id_number, photo), idempotency_key=key
        )
        del name, id_number, photo
        ok = result.outcome is AuthorityOutcome.MATCH and result.photo_match is not False
        reason = {
            AuthorityOutcome.MATCH: R.FALLBACK_AUTHORITY_MISMATCH,  # the photo did not match
            AuthorityOutcome.MISMATCH: R.FALLBACK_AUTHORITY_MISMATCH,
            AuthorityOutcome.NOT_FOUND: R.FALLBACK_AUTHORITY_NOT_FOUND,
        }[result.outcome]
        if ok:
            reason = R.FALLBACK_AUTHORITY_MATCHED
        new = record_step(flow, passed=ok, reason=reason.value, policy=self.policy, now=now)
        out = self._store_step(tenant, flow, new, StepKind.AUTHORITY, result.outcome.value)
        out["authority"] = {
            "result": result.outcome.value,
            "photo_match": result.photo_match,
            "sandbox": result.sandbox,
        }
        return out

    # -- reading and review --------------------------------------------------------------

    def get(self, tenant: Tenant, flow_id: str) -> dict[str, Any]:
        with self.store() as uow:
            flow = uow.fallbacks.get(tenant.id, flow_id) if _is_id(flow_id) else None
        if flow is None:
            raise _not_found("fallback")
        return flow_view(flow)

    def list(
        self, tenant: Tenant, status: str = "review", *, limit: int = 100
    ) -> list[dict[str, Any]]:
        try:
            wanted = FallbackStatus(status)
        except ValueError:
            raise InputError(
                "unknown fallback status",
                detail={"field": "status", "allowed": [s.value for s in FallbackStatus]},
            ) from None
        with self.store() as uow:
            flows = uow.fallbacks.list_by_status(tenant.id, wanted, limit=max(1, min(limit, 500)))
        return [flow_view(f) for f in flows]

    def decide_review(
        self, tenant: Tenant, flow_id: str, *, outcome: str, reviewer: str, note: str = ""
    ) -> dict[str, Any]:
        """A person closes an exhausted case: ``approve`` or ``reject`` (once)."""
        if outcome not in ("approve", "reject"):
            raise InputError("outcome must be approve or reject", detail={"field": "outcome"})
        now = self.clock()
        with self.store() as uow:
            flow = uow.fallbacks.get(tenant.id, flow_id) if _is_id(flow_id) else None
            if flow is None:
                raise _not_found("fallback")
            closed = close_review(flow, approve=outcome == "approve", reviewer=reviewer, now=now)
            saved = uow.fallbacks.update(closed, expected_version=flow.version)
            note_hash = hashlib.sha256(note.encode()).hexdigest() if note else None
            extra = {"reviewer": reviewer, "note_sha256": note_hash}
            announce_decision(uow, self.keys, saved, extra, now)
            uow.commit()
        return flow_view(saved)

    # -- helpers -------------------------------------------------------------------------

    def _load(
        self, tenant: Tenant, flow_id: str, step: StepKind, now: datetime
    ) -> tuple[FallbackFlow, Any]:
        with self.store() as uow:
            flow = uow.fallbacks.get(tenant.id, flow_id) if _is_id(flow_id) else None
            if flow is None:
                raise _not_found("fallback")
            if flow.status is FallbackStatus.OPEN and now > flow.expires_at:
                expired = replace(flow, status=FallbackStatus.EXPIRED, closed_at=now)
                uow.fallbacks.update(expired, expected_version=flow.version)
                self._audit(uow, expired, "fallback.expired", {})
                uow.commit()
                flow = expired
            require_step(flow, step, now)
            subject = uow.subjects.get(tenant.id, flow.subject_id)
            if subject is None:
                raise _not_found("subject")
        return flow, subject

    @staticmethod
    def _scope(flow: FallbackFlow, send: int) -> str:
        return f"{flow.id}:{send}"

    def _store_step(
        self, tenant: Tenant, old: FallbackFlow, new: FallbackFlow, step: StepKind, verdict: str
    ) -> dict[str, Any]:
        now = self.clock()
        with self.store() as uow:
            saved = uow.fallbacks.update(new, expected_version=old.version)
            self._audit(uow, saved, "fallback.step", {"step": step.value, "verdict": verdict})
            if saved.status is not FallbackStatus.OPEN:
                announce_decision(uow, self.keys, saved, {}, now)
            uow.commit()
        log.info(
            redact(
                f"fallback step tenant={tenant.id} fallback={saved.id} step={step} "
                f"verdict={verdict} status={saved.status}"
            )
        )
        return flow_view(saved)

    def _audit(
        self, uow: UnitOfWork, flow: FallbackFlow, kind: str, extra: Mapping[str, Any]
    ) -> None:
        audit_flow(uow, self.keys, flow, kind, extra, self.clock())


__all__ = ["FallbackService"]
