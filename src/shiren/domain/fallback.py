"""The non-face path: a small state machine per (subject, lending event), chosen by a versioned
policy — and the payout-ownership record.

Face must never be the only way in.  When the subject's face checks have failed often enough
since their last pass (``face_failures``, over any lending events), or locked the subject, or
when the user refuses face processing, the lender may open a *fallback* for a lending event
that needs a check and has not passed one: the policy's ``steps`` (e.g. an SMS code, then
the bank-card 4-element check) must all pass, in order.  A step that fails ``step_failures``
times sends the case to manual review; an unfinished case expires after ``ttl_s``::

    open ──(every step passed)──────────→ passed
      │──(a step failed step_failures×)─→ review ──(reviewer)──→ approved | rejected
      └──(ttl_s elapsed)────────────────→ expired

Pure: the service loads, applies and stores.  The policy lives in the ``[fallback]`` table of
the same ``policy.toml`` as the step-up rules, under the same ``version``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode, StateError
from shiren.reasons import ReasonCode


class StepKind(StrEnum):
    SMS_OTP = "sms_otp"
    BANK_CARD_4 = "bank_card_4"
    AUTHORITY = "authority_name_id"


class FallbackTrigger(StrEnum):
    FACE_FAILED = "face_failed"
    FACE_LOCKED = "face_locked"
    FACE_REFUSED = "face_refused"


class FallbackStatus(StrEnum):
    OPEN = "open"
    PASSED = "passed"
    REVIEW = "review"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class PayoutOutcome(StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    version: str
    face_failures: int = 3
    steps: tuple[StepKind, ...] = (StepKind.SMS_OTP, StepKind.BANK_CARD_4)
    step_failures: int = 2
    ttl_s: int = 1800


def _aware(obj: Any) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError(f"{type(obj).__name__}.{f.name} must be timezone-aware (UTC)")
            object.__setattr__(obj, f.name, value.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class FallbackFlow:
    """One fallback case.  ``phone_enc`` is sealed with the subject key (erasure shreds it);
    ``otp_hash`` is a keyed hash of the current code, never the code.  ``version`` increases
    with every stored change (optimistic concurrency: two concurrent submissions cannot both
    advance the same step)."""

    id: str
    tenant_id: str
    subject_id: str
    event_id: str
    cause: FallbackTrigger
    steps: tuple[str, ...]
    policy_version: str
    created_at: datetime
    expires_at: datetime
    status: FallbackStatus = FallbackStatus.OPEN
    step_index: int = 0
    step_failures: int = 0
    phone_enc: bytes | None = None
    phone_last4: str = ""
    otp_hash: str | None = None
    otp_expires_at: datetime | None = None
    otp_sent_at: datetime | None = None
    otp_attempts: int = 0
    otp_sends: int = 0
    reasons: tuple[str, ...] = ()
    reviewer: str | None = None
    closed_at: datetime | None = None
    version: int = 0

    def __post_init__(self) -> None:
        _aware(self)

    @property
    def current_step(self) -> StepKind | None:
        if self.status is not FallbackStatus.OPEN or self.step_index >= len(self.steps):
            return None
        return StepKind(self.steps[self.step_index])


@dataclass(frozen=True, slots=True)
class PayoutCheck:
    """A payout-ownership check: the card only as a keyed pseudonym and its last four digits."""

    id: str
    tenant_id: str
    subject_id: str
    card_pseudonym: str
    card_last4: str
    outcome: PayoutOutcome
    created_at: datetime
    reasons: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    event_id: str | None = None
    provider_ref: str = ""
    sandbox: bool = False

    def __post_init__(self) -> None:
        _aware(self)


# -- transitions -------------------------------------------------------------------------------


def _closed(flow: FallbackFlow) -> StateError:
    return StateError(
        f"fallback is {flow.status.value}",
        code=ErrorCode.FALLBACK_CLOSED,
        detail={"status": flow.status.value},
    )


def require_step(flow: FallbackFlow, kind: StepKind, now: datetime) -> None:
    """``fallback.closed`` unless open and unexpired; ``fallback.wrong_step`` unless ``kind``
    is the step due now."""
    if flow.status is not FallbackStatus.OPEN or now > flow.expires_at:
        raise _closed(flow)
    if flow.current_step is not kind:
        raise StateError(
            f"the step due is {flow.current_step}",
            code=ErrorCode.FALLBACK_WRONG_STEP,
            detail={"expected": str(flow.current_step), "given": kind.value},
        )


def record_step(
    flow: FallbackFlow,
    *,
    passed: bool,
    reason: str,
    policy: FallbackPolicy,
    now: datetime,
) -> FallbackFlow:
    """The flow after one verdict on its current step: next step, passed, or — after
    ``policy.step_failures`` failures of the step — manual review."""
    reasons = (*flow.reasons, reason)
    if passed:
        index = flow.step_index + 1
        done = index >= len(flow.steps)
        return replace(
            flow,
            step_index=index,
            step_failures=0,
            reasons=reasons,
            status=FallbackStatus.PASSED if done else FallbackStatus.OPEN,
            closed_at=now if done else None,
        )
    failures = flow.step_failures + 1
    if failures >= policy.step_failures:
        return exhaust(replace(flow, step_failures=failures, reasons=reasons), now)
    return replace(flow, step_failures=failures, reasons=reasons)


def exhaust(flow: FallbackFlow, now: datetime) -> FallbackFlow:
    """The non-face path cannot finish: a person decides (manual review)."""
    return replace(
        flow,
        status=FallbackStatus.REVIEW,
        reasons=(*flow.reasons, ReasonCode.FALLBACK_EXHAUSTED.value),
        closed_at=now,
    )


def close_review(
    flow: FallbackFlow, *, approve: bool, reviewer: str, now: datetime
) -> FallbackFlow:
    if flow.status is not FallbackStatus.REVIEW:
        raise _closed(flow)
    status = FallbackStatus.APPROVED if approve else FallbackStatus.REJECTED
    return replace(flow, status=status, reviewer=reviewer, closed_at=now)


def decision_of(flow: FallbackFlow) -> str | None:
    """The flow's decision in the vocabulary of checks: ``pass`` / ``review`` / reviewer
    ``approved`` / ``rejected``; ``None`` while open or after expiry."""
    return {
        FallbackStatus.PASSED: "pass",
        FallbackStatus.REVIEW: "review",
        FallbackStatus.APPROVED: "approved",
        FallbackStatus.REJECTED: "rejected",
    }.get(flow.status)


# -- the policy --------------------------------------------------------------------------------


def _bad(msg: str) -> ConfigError:
    return ConfigError(msg, code=ErrorCode.CONFIG_INVALID)


def parse_fallback_policy(raw: dict[str, Any], source: str) -> FallbackPolicy:
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise _bad(f"{source}: the policy needs a non-empty 'version' string")
    body = raw.get("fallback", {})
    known = {"face_failures", "steps", "step_failures", "ttl_s"}
    if not isinstance(body, dict) or set(body) - known:
        raise _bad(f"{source}: [fallback] has unknown keys")
    try:
        steps = tuple(StepKind(s) for s in body.get("steps", ("sms_otp", "bank_card_4")))
    except (ValueError, TypeError):
        raise _bad(f"{source}: fallback.steps must name {[k.value for k in StepKind]}") from None
    policy = FallbackPolicy(
        version=version,
        face_failures=int(body.get("face_failures", 3)),
        steps=steps,
        step_failures=int(body.get("step_failures", 2)),
        ttl_s=int(body.get("ttl_s", 1800)),
    )
    if (
        not steps
        or len(set(steps)) != len(steps)
        or policy.face_failures < 1
        or policy.step_failures < 1
        or not 60 <= policy.ttl_s <= 86400
    ):
        raise _bad(f"{source}: [fallback] values out of range")
    return policy


def load_fallback_policy(path: Path | None = None) -> FallbackPolicy:
    if path is None:
        text = resources.files("shiren.data").joinpath("policy.toml").read_text("utf-8")
        source = "shiren/data/policy.toml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise _bad(f"cannot read the policy {path}: {exc.strerror}") from None
        source = str(path)
    try:
        return parse_fallback_policy(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"{source} is not valid TOML: {exc}") from None


def expiry(now: datetime, policy: FallbackPolicy) -> datetime:
    return now + timedelta(seconds=policy.ttl_s)


__all__ = [
    "FallbackFlow",
    "FallbackPolicy",
    "FallbackStatus",
    "FallbackTrigger",
    "PayoutCheck",
    "PayoutOutcome",
    "StepKind",
    "close_review",
    "decision_of",
    "exhaust",
    "expiry",
    "load_fallback_policy",
    "parse_fallback_policy",
    "record_step",
    "require_step",
]
