"""The review queue: borderline face checks and non-face (fallback) cases, in one queue.

A reviewer may judge a borderline *match*, never overrule a failed liveness check: approving an
enrolment review binds the captured face only if its liveness passed (that would let a photo or
a replay enrol), only while the subject's consent is active, and only while the captured face is
still kept (reviews nobody works on lose it after the review-candidate TTL).  When an approval
binds nothing, the answer says why (``not_bound_reason``).  Each closing is audited and announced
by webhook in the same unit of work; a concurrent reviewer's closing wins cleanly.  The keyframes
kept for the reviewers (:mod:`shiren.service.review_evidence`) are deleted in that unit of work
too: once decided, nobody needs to look at the face again.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from shiren.domain.entities import (
    ReviewOutcome,
    ReviewStatus,
    SessionPurpose,
    SubjectStatus,
    Tenant,
)
from shiren.errors import ErrorCode, InputError, StateError
from shiren.privacy import redact
from shiren.service.consent import has_active_consent, review_not_bound_reason
from shiren.service.context import Context
from shiren.service.fallback import FallbackService
from shiren.service.recorder import Recorder
from shiren.service.validation import is_id, not_found, require_subject, text
from shiren.service.views import fallback_review_dict, fallback_reviews, review_dict
from shiren.service.webhooks import Event

log = logging.getLogger("shiren.service")

MAX_NOTE_CHARS = 2000
MAX_LIMIT = 500


def already_closed() -> StateError:
    return StateError("review already closed", code=ErrorCode.REVIEW_ALREADY_CLOSED)


def _outcome(value: str) -> ReviewOutcome:
    try:
        return {"approve": ReviewOutcome.APPROVED, "reject": ReviewOutcome.REJECTED}[value]
    except KeyError:
        raise InputError(
            "outcome must be approve or reject",
            detail={"field": "outcome", "allowed": ["approve", "reject"]},
        ) from None


class Reviews:
    """The review-queue use cases (see the module docstring)."""

    def __init__(self, ctx: Context, *, recorder: Recorder, fallbacks: FallbackService) -> None:
        self._ctx = ctx
        self._recorder = recorder
        self._fallbacks = fallbacks

    def queue(
        self, tenant: Tenant, status: str = "open", *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The tenant's review items in a status, oldest first (the queue's working order)."""
        try:
            wanted = ReviewStatus(status)
        except ValueError:
            raise InputError(
                "unknown review status",
                detail={"field": "status", "allowed": [x.value for x in ReviewStatus]},
            ) from None
        limit = max(1, min(limit, MAX_LIMIT))
        with self._ctx.store() as uow:
            items = uow.reviews.list_by_status(tenant.id, wanted, limit=limit)
            checks = {i.check_id: uow.checks.get(tenant.id, i.check_id) for i in items}
            flows = fallback_reviews(uow, tenant.id, wanted, limit)
        out = [review_dict(i, checks.get(i.check_id)) for i in items]
        out += [fallback_review_dict(f) for f in flows]  # one queue for reviewers
        return sorted(out, key=lambda d: (d["created_at"], d["id"]))[:limit]

    def decide(
        self, tenant: Tenant, item_id: str, *, outcome: str, reviewer: str, note: str = ""
    ) -> dict[str, Any]:
        """Close a review with a reviewer's outcome (see the module docstring)."""
        result = _outcome(outcome)
        text(reviewer, "reviewer", 200)
        if len(note) > MAX_NOTE_CHARS:
            raise InputError(
                f"note must be at most {MAX_NOTE_CHARS} characters", detail={"field": "note"}
            )
        if is_id(item_id) and self._is_fallback(tenant, item_id):  # a non-face case
            return self._decide_fallback(tenant, item_id, outcome, reviewer, note)
        ctx = self._ctx
        now = ctx.clock()
        total_faces: int | None = None
        with ctx.store() as uow:
            item = uow.reviews.get(tenant.id, item_id) if is_id(item_id) else None
            if item is None:
                raise not_found("review")
            if item.status is ReviewStatus.CLOSED:
                raise already_closed()
            check = uow.checks.get(tenant.id, item.check_id)
            assert check is not None  # a review references its check (foreign key)
            session = uow.sessions.get(tenant.id, check.session_id)
            subject = require_subject(uow, tenant.id, check.subject_id)
            try:
                closed = uow.reviews.close(
                    tenant.id, item_id, reviewer=reviewer, outcome=result, at=now
                )
            except StateError as exc:
                if exc.code is ErrorCode.RECORD_CONFLICT:  # a concurrent reviewer won
                    raise already_closed() from None
                raise
            enrolment = session is not None and session.purpose is SessionPurpose.ENROL
            consent = has_active_consent(uow, tenant.id, subject.id)
            erased = subject.status is SubjectStatus.ERASED
            template = None
            if (
                result is ReviewOutcome.APPROVED
                and enrolment
                and item.liveness_passed
                and item.candidate_enc is not None
                and not erased
                and consent
            ):
                template = ctx.vault.open_field(
                    tenant, subject, "review_items", "candidate_enc", item.id, item.candidate_enc
                )
                total_faces = self._recorder.bind(uow, tenant, subject, template, now)
            bound = total_faces is not None
            keyframes = uow.evidence.delete_for_check(tenant.id, check.id)
            not_bound = review_not_bound_reason(
                approved=result is ReviewOutcome.APPROVED and not bound,
                enrolment=enrolment,
                live=item.liveness_passed,
                candidate=item.candidate_enc is not None,
                consent=consent,
                erased=erased,
            )
            payload = {
                "review_id": item.id,
                "check_id": check.id,
                "outcome": result.value,
                "reviewer": reviewer,
                "note_sha256": hashlib.sha256(note.encode()).hexdigest() if note else None,
                "liveness_passed": item.liveness_passed,
                "face_bound": bound,
                "not_bound_reason": not_bound,
                "keyframes_deleted": keyframes,
            }
            ctx.journal.audit(uow, tenant.id, "review.closed", subject.id, payload, now)
            ctx.journal.emit(
                uow,
                tenant.id,
                Event.REVIEW_CLOSED,
                now,
                subject_id=subject.id,
                check_id=check.id,
                decision=result.value,
                reasons=check.reasons,
            )
            uow.commit()
        if total_faces is not None and template is not None:  # after the commit
            self._recorder.bound(tenant, subject.id, template, total_faces)
        log.info(redact(f"review closed tenant={tenant.id} review={item.id} outcome={result}"))
        out = review_dict(closed, check)
        out["face_bound"] = bound
        out["not_bound_reason"] = not_bound
        return out

    def _is_fallback(self, tenant: Tenant, item_id: str) -> bool:
        with self._ctx.store() as uow:
            if uow.reviews.get(tenant.id, item_id) is not None:
                return False
            return uow.fallbacks.get(tenant.id, item_id) is not None

    def _decide_fallback(
        self, tenant: Tenant, flow_id: str, outcome: str, reviewer: str, note: str
    ) -> dict[str, Any]:
        """A fallback case in review, decided through the review queue: the same use case as
        ``POST /v1/fallbacks/{id}/review`` (audited, ``fallback.decided`` webhook); a case
        already decided is ``review.already_closed`` here too."""
        try:
            self._fallbacks.decide_review(
                tenant, flow_id, outcome=outcome, reviewer=reviewer, note=note
            )
        except StateError as exc:
            if exc.code is ErrorCode.FALLBACK_CLOSED:
                raise already_closed() from None
            raise
        with self._ctx.store() as uow:
            flow = uow.fallbacks.get(tenant.id, flow_id)
        assert flow is not None
        out = fallback_review_dict(flow)
        out["face_bound"] = False
        out["not_bound_reason"] = None
        return out


__all__ = ["Reviews", "already_closed"]
