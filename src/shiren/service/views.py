"""What the use cases return: small frozen views the API and the CLI serialise.

Views hold domain objects and render them on demand (``to_dict``), so a use case never builds
JSON and the API's response models (:mod:`shiren.api.schemas`) describe exactly these shapes.
No view carries a biometric or an ID number: templates and images never leave the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiren.domain.decisions import FALLBACKS, Outcome, RetryRules
from shiren.domain.entities import Check, LendingEvent, ReviewItem, ReviewStatus, Session
from shiren.domain.fallback import FallbackFlow, FallbackStatus
from shiren.domain.policy import Requirement
from shiren.liveness.challenge import Challenge
from shiren.messages import message
from shiren.reasons import ReasonCode
from shiren.storage.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class SessionView:
    session: Session
    challenge: Challenge
    check_id: str | None = None
    capture_token: str | None = None
    """Opens this session's capture page (``/capture/<token>``) without the lender's key."""

    def to_dict(self) -> dict[str, Any]:
        s = self.session
        return {
            "id": s.id,
            "subject_id": s.subject_id,
            "purpose": s.purpose.value,
            "level": s.level,
            "status": s.status.value,
            "nonce": s.nonce,
            "created_at": s.created_at.isoformat(),
            "expires_at": s.expires_at.isoformat(),
            "challenge": self.challenge.to_dict(),
            "check_id": self.check_id,
            "capture_token": self.capture_token,
        }


@dataclass(frozen=True, slots=True)
class CheckView:
    check: Check
    outcome: Outcome
    fallbacks: tuple[str, ...] = ()
    retry_after_s: int | None = None

    def to_dict(self, lang: str = "zh-CN") -> dict[str, Any]:
        c = self.check
        tips = [{"code": r, "message": message(r, lang)} for r in c.reasons if _known_reason(r)]
        return {
            "id": c.id,
            "session_id": c.session_id,
            "subject_id": c.subject_id,
            "decision": c.decision.value,
            "reasons": list(c.reasons),
            "tips": tips,
            "fallbacks": list(self.fallbacks),
            "retry_after_s": self.retry_after_s,
            "liveness_score": c.liveness_score,
            "match_score": c.match_score,
            "policy_version": c.policy_version,
            "created_at": c.created_at.isoformat(),
        }


def _known_reason(code: str) -> bool:
    try:
        message(code, "en")
    except KeyError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class StepUpView:
    event: LendingEvent
    requirement: Requirement
    session: SessionView | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event.id,
            "requirement": self.requirement.to_dict(),
            "session": None if self.session is None else self.session.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one retention sweep did, summed over tenants (counts only: no ids)."""

    templates: int = 0
    evidence: int = 0
    sessions: int = 0
    tenants: int = 0
    """Tenants that had anything to sweep (each got one ``retention.swept`` audit event)."""
    review_candidates: int = 0
    """Captured faces of pending reviews cleared (older than the review-candidate TTL)."""

    def to_dict(self) -> dict[str, int]:
        return {
            "templates": self.templates,
            "evidence": self.evidence,
            "sessions_expired": self.sessions,
            "tenants": self.tenants,
            "review_candidates": self.review_candidates,
        }


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What one master-key rotation run did (key ids are names, not secrets)."""

    key_id: str
    """The master key every tenant key is now wrapped by."""
    rewrapped: int = 0
    already_current: int = 0
    failed: tuple[str, ...] = ()
    """Tenant ids whose wrapped key could not be opened (its master key is not in the ring)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "rewrapped": self.rewrapped,
            "already_current": self.already_current,
            "failed": list(self.failed),
        }


def check_view(check: Check, rules: RetryRules) -> CheckView:
    """The view of a stored check: its fallbacks when it was not a pass, and the cool-off when
    it was refused for a lock-out."""
    outcome = Outcome(check.decision.value)
    fallbacks = FALLBACKS if outcome in (Outcome.REVIEW, Outcome.FALLBACK) else ()
    locked = ReasonCode.LIMIT_LOCKED.value in check.reasons
    return CheckView(check, outcome, fallbacks, rules.cooloff_s if locked else None)


def review_dict(item: ReviewItem, check: Check | None) -> dict[str, Any]:
    """A review item for the API: ids, state and the check's decision data; no biometrics."""
    return {
        "id": item.id,
        "kind": "face",
        "check_id": item.check_id,
        "subject_id": None if check is None else check.subject_id,
        "status": item.status.value,
        "outcome": None if item.outcome is None else item.outcome.value,
        "reviewer": item.reviewer,
        "reasons": [] if check is None else list(check.reasons),
        "liveness_passed": item.liveness_passed,
        "liveness_score": None if check is None else check.liveness_score,
        "match_score": None if check is None else check.match_score,
        "created_at": item.created_at.isoformat(),
        "closed_at": None if item.closed_at is None else item.closed_at.isoformat(),
    }


def fallback_reviews(
    uow: UnitOfWork, tenant_id: str, status: ReviewStatus, limit: int
) -> list[FallbackFlow]:
    """The fallback cases that belong in the review queue in ``status``: ``open`` — waiting for
    a reviewer (``review``); ``closed`` — decided by one (``approved`` / ``rejected``)."""
    wanted = {
        ReviewStatus.OPEN: (FallbackStatus.REVIEW,),
        ReviewStatus.CLOSED: (FallbackStatus.APPROVED, FallbackStatus.REJECTED),
    }.get(status, ())
    return [f for st in wanted for f in uow.fallbacks.list_by_status(tenant_id, st, limit=limit)]


def fallback_review_dict(flow: FallbackFlow) -> dict[str, Any]:
    """A fallback case as a review-queue item (``kind`` ``fallback``): the same keys as a face
    review, no scores; its steps and masked phone are at ``GET /v1/fallbacks/{id}``."""
    closed = flow.status in (FallbackStatus.APPROVED, FallbackStatus.REJECTED)
    return {
        "id": flow.id,
        "kind": "fallback",
        "check_id": None,
        "subject_id": flow.subject_id,
        "event_id": flow.event_id,
        "cause": flow.cause.value,
        "status": ReviewStatus.CLOSED.value if closed else ReviewStatus.OPEN.value,
        "outcome": flow.status.value if closed else None,
        "reviewer": flow.reviewer,
        "reasons": list(flow.reasons),
        "liveness_passed": None,
        "liveness_score": None,
        "match_score": None,
        "created_at": flow.created_at.isoformat(),
        "closed_at": None if flow.closed_at is None else flow.closed_at.isoformat(),
    }


__all__ = [
    "CheckView",
    "RotationResult",
    "SessionView",
    "StepUpView",
    "SweepResult",
    "check_view",
    "fallback_review_dict",
    "fallback_reviews",
    "review_dict",
]
