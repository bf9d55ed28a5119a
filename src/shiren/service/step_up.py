"""Step-up: does this lending event need a face check now, and how strong?

A loan platform re-checks "you are you" before money moves: disbursement, withdrawal, a large
transaction, a password reset, a dormant account, a new device, a policy change.  The versioned
policy (:mod:`shiren.domain.policy`) decides from the event and the subject's history; this use
case records the event (with the policy version that judged it) and opens a session when a check
is needed.  After a consent withdrawal the requirement is the non-face fallback instead, and
so it is while the subject (or the event's device) is locked out of face checks after repeated
failures: the answer then says ``limit.locked`` with the seconds left and the non-face routes,
and opens no session — a borrower must not consent and answer a whole challenge only to learn
that no check could pass.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shiren.domain.decisions import FALLBACKS
from shiren.domain.entities import (
    Decision,
    LendingEvent,
    SessionPurpose,
    StepUpDecided,
    Subject,
    SubjectStatus,
    Tenant,
    new_id,
)
from shiren.domain.policy import (
    EventType,
    LendingEventIn,
    Requirement,
    StepUpPolicy,
    SubjectState,
    decide_step_up,
)
from shiren.errors import ErrorCode, InputError, StateError
from shiren.liveness.challenge import Variant
from shiren.reasons import ReasonCode
from shiren.service.checks import attempt_keys
from shiren.service.consent import FALLBACK_PURPOSE, gate_requirement, opens_session
from shiren.service.context import Context
from shiren.service.ratelimit import AttemptCounter
from shiren.service.sessions import Sessions
from shiren.service.validation import require_subject, text
from shiren.service.views import StepUpView
from shiren.storage.ports import UnitOfWork

MAX_CURRENCY_CHARS = 3
MAX_DEVICE_ID_CHARS = 128


def _event_type(value: str) -> EventType:
    try:
        return EventType(value)
    except ValueError:
        raise InputError(
            "unknown event type",
            detail={"field": "type", "allowed": [e.value for e in EventType]},
        ) from None


def _state(uow: UnitOfWork, tenant_id: str, subject: Subject) -> SubjectState:
    """What the policy needs to know of the subject: enrolled?, the last passed check and its
    policy version, the last activity, the devices seen."""
    checks = uow.checks.list_for_subject(tenant_id, subject.id)
    passed = [c for c in checks if c.decision is Decision.PASS]
    events = uow.lending_events.list_for_subject(tenant_id, subject.id)
    return SubjectState(
        enrolled=subject.status is SubjectStatus.ENROLLED,
        last_check_at=passed[-1].created_at if passed else None,
        last_check_policy_version=passed[-1].policy_version if passed else None,
        last_activity_at=events[-1].created_at if events else None,
        known_devices=frozenset(e.device_id for e in events if e.device_id),
    )


class StepUp:
    """The step-up use case."""

    def __init__(
        self,
        ctx: Context,
        *,
        sessions: Sessions,
        policy: StepUpPolicy,
        counter: AttemptCounter | None = None,
    ) -> None:
        self._ctx = ctx
        self._sessions = sessions
        self.policy = policy
        self._counter = counter

    def start(
        self,
        tenant: Tenant,
        subject_id: str,
        *,
        event_type: str,
        amount_minor: int = 0,
        currency: str = "CNY",
        device_id: str | None = None,
    ) -> StepUpView:
        """Ask the versioned policy whether a lending event needs a face check, and how strong;
        record the event, and open a session when one is needed."""
        etype = _event_type(event_type)
        if amount_minor < 0:
            raise InputError("amount must not be negative", detail={"field": "amount_minor"})
        text(currency, "currency", MAX_CURRENCY_CHARS)
        if device_id is not None:
            text(device_id, "device_id", MAX_DEVICE_ID_CHARS)
        now = self._ctx.clock()
        with self._ctx.store() as uow:
            subject = require_subject(uow, tenant.id, subject_id)
            if subject.status in (SubjectStatus.ERASED, SubjectStatus.LOCKED):
                raise StateError(
                    f"subject is {subject.status.value}",
                    code=ErrorCode.SUBJECT_NOT_READY,
                    detail={"status": subject.status.value},
                )
            event_in = LendingEventIn(etype, now, amount_minor, currency, device_id)
            requirement = decide_step_up(
                event_in, _state(uow, tenant.id, subject), self.policy, now
            )
            requirement = gate_requirement(uow, tenant.id, subject_id, requirement)
            requirement = self._gate_lockout(tenant, subject_id, device_id, requirement, now)
            event = LendingEvent(
                id=new_id(),
                tenant_id=tenant.id,
                subject_id=subject_id,
                type=etype.value,
                decided=StepUpDecided.NEEDED if requirement.needed else StepUpDecided.NOT_NEEDED,
                policy_version=requirement.policy_version,
                created_at=now,
                amount_minor=amount_minor,
                currency=currency,
                device_id=device_id,
            )
            uow.lending_events.add(event)
            view = None
            if opens_session(requirement):  # not after a consent withdrawal
                purpose = (
                    SessionPurpose.ENROL
                    if requirement.purpose == "enrol"
                    else SessionPurpose.STEP_UP
                )
                view = self._sessions.open(
                    uow,
                    tenant,
                    subject_id,
                    purpose,
                    requirement.level,
                    requirement.match_profile,
                    now,
                    event_id=event.id,
                    variant=(
                        Variant.READ_DIGITS
                        if requirement.challenge == "read_digits"
                        else Variant.LIVE
                    ),
                )
            uow.commit()
        return StepUpView(event, requirement, view)

    def _gate_lockout(
        self,
        tenant: Tenant,
        subject_id: str,
        device_id: str | None,
        requirement: Requirement,
        now: datetime,
    ) -> Requirement:
        """The non-face fallback, with the seconds left, while a lock-out runs (see the module
        docstring); the requirement unchanged otherwise."""
        if self._counter is None or not opens_session(requirement):
            return requirement
        keys = attempt_keys(tenant.id, subject_id, device_id)
        locked = max(self._counter.locked_for(k, now.timestamp()) for k in keys)
        if locked <= 0:
            return requirement
        return replace(
            requirement,
            purpose=FALLBACK_PURPOSE,
            reasons=(ReasonCode.LIMIT_LOCKED.value,),
            fallbacks=FALLBACKS,
            retry_after_s=int(locked),
        )


__all__ = ["StepUp"]
