"""Recording a decided check, and binding a face to a subject.

One unit of work per check: the check row, a review item when the decision is ``review`` (an
enrolment under review keeps its captured template, sealed with the subject's key, so an
approving reviewer can bind it), the bound template when an enrolment passed (or a step-up
passed on an older network's template: the shipped network's template joins it), the audit line
and the webhook — all commit together or not at all.  A face is never bound without an active
consent: a withdrawal may land while a capture is in flight.

A check sent to review also keeps up to three of its keyframes for the console's reviewers when
the tenant's policy asks for it (:mod:`shiren.service.review_evidence`; off by default), sealed
with the subject's key in the same unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiren.domain.decisions import Outcome
from shiren.domain.entities import (
    Check,
    Decision,
    ReviewItem,
    Session,
    SessionPurpose,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    new_id,
)
from shiren.domain.policy import StepUpPolicy
from shiren.domain.review_evidence import ReviewEvidencePolicy, load_review_evidence
from shiren.liveness.check import LivenessResult
from shiren.liveness.frames import FrameSequence
from shiren.service.consent import has_active_consent
from shiren.service.context import Context
from shiren.service.fraud import FraudGuard
from shiren.service.matching import MatchOutcome
from shiren.service.retention import StoredFaces
from shiren.service.review_evidence import keep_keyframes, keyframe_jpegs
from shiren.service.webhooks import Event
from shiren.storage.ports import UnitOfWork
from shiren.verifier import TEMPLATE_VERSION


@dataclass(frozen=True, slots=True)
class Judged:
    """What the check decided, and the evidence behind it: scores and the live template, which
    is bound or kept for review and otherwise dropped; the ``capture``'s frames are only read
    when the decision is review and the tenant's policy keeps keyframes for its reviewers."""

    outcome: Outcome
    reasons: tuple[str, ...]
    liveness: LivenessResult | None = None
    similarity: float | None = None
    template: bytes | None = None
    matched: MatchOutcome | None = None
    capture: FrameSequence | None = None
    injection: dict[str, Any] | None = None
    """The injection check's evidence (numbers and codes: :mod:`shiren.service.injection`),
    written to the check's audit line; None when the tenant's mode is ``off``."""


class Recorder:
    """Writes decided checks and binds faces (see the module docstring)."""

    def __init__(
        self,
        ctx: Context,
        *,
        fraud: FraudGuard,
        stored_faces: StoredFaces,
        policy: StepUpPolicy,
        embedder_id: str,
        evidence: ReviewEvidencePolicy | None = None,
    ) -> None:
        self._ctx = ctx
        self._fraud = fraud
        self._stored_faces = stored_faces
        self._policy = policy
        self._embedder_id = embedder_id
        self.evidence = evidence or load_review_evidence()
        """Which tenants' reviews keep keyframes, how many, how long (the policy's
        ``[review_evidence]``; tests and operators may replace it)."""

    def record(
        self, tenant: Tenant, session: Session, subject: Subject, at: datetime, judged: Judged
    ) -> Check:
        """Store the check of ``session`` with its consequences, in one unit of work."""
        liveness, similarity = judged.liveness, judged.similarity
        check = Check(
            id=new_id(),
            tenant_id=tenant.id,
            session_id=session.id,
            subject_id=subject.id,
            decision=Decision(judged.outcome.value),
            policy_version=self._policy.version,
            created_at=at,
            reasons=tuple(dict.fromkeys(judged.reasons)),
            liveness_score=None if liveness is None else round(float(liveness.score), 6),
            match_score=None if similarity is None else round(similarity, 6),
        )
        jpegs = self._keyframes(tenant, judged)  # encoded before the transaction opens
        with self._ctx.store() as uow:
            uow.checks.add(check)
            kept = 0
            if judged.outcome is Outcome.REVIEW:
                self._queue_review(uow, tenant, session, subject, check, judged)
                kept = keep_keyframes(
                    uow, self._ctx.vault, tenant, subject, check, jpegs, self.evidence.days
                )
            total_faces = self._bind_if_passed(uow, tenant, session, subject, judged, at)
            bound = total_faces is not None
            self._ctx.journal.audit(
                uow,
                tenant.id,
                "check.decided",
                subject.id,
                {
                    **_audit(check, session, judged, bound),
                    "keyframes_kept": kept,
                    "injection": judged.injection,
                },
                at,
            )
            self._ctx.journal.emit(
                uow,
                tenant.id,
                Event.CHECK_DECIDED,
                at,
                subject_id=subject.id,
                check_id=check.id,
                decision=judged.outcome.value,
                reasons=check.reasons,
            )
            uow.commit()
        if total_faces is not None and judged.template is not None:
            self.bound(tenant, subject.id, judged.template, total_faces)
        return check

    def _keyframes(self, tenant: Tenant, judged: Judged) -> list[bytes]:
        """The JPEGs a check sent to review keeps for the reviewers (none unless the tenant's
        policy asks for them)."""
        if judged.outcome is not Outcome.REVIEW or judged.capture is None:
            return []
        images = [f.image for f in judged.capture.frames]
        used = judged.matched.frames_used if judged.matched is not None else ()
        return keyframe_jpegs(self.evidence, tenant, images, used)

    def _queue_review(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        session: Session,
        subject: Subject,
        check: Check,
        judged: Judged,
    ) -> None:
        item_id = new_id()
        candidate = None
        if session.purpose is SessionPurpose.ENROL and judged.template is not None:
            candidate = self._ctx.vault.seal_field(
                tenant, subject, "review_items", "candidate_enc", item_id, judged.template
            )
        uow.reviews.add(
            ReviewItem(
                id=item_id,
                tenant_id=tenant.id,
                check_id=check.id,
                created_at=check.created_at,
                candidate_enc=candidate,
                liveness_passed=judged.liveness is not None and bool(judged.liveness.passed),
            )
        )

    def _bind_if_passed(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        session: Session,
        subject: Subject,
        judged: Judged,
        at: datetime,
    ) -> int | None:
        """Bind the live template when an enrolment passed, or when a step-up passed on an older
        network's template (the shipped network's template joins it, made from these live
        frames; no photo kept).  The deployment's stored-face count, or None: nothing bound."""
        if judged.outcome is not Outcome.PASS or judged.template is None:
            return None
        enrolment = session.purpose is SessionPurpose.ENROL
        upgrade = judged.matched is not None and judged.matched.upgrade
        if not (enrolment or upgrade) or not has_active_consent(uow, tenant.id, subject.id):
            return None
        return self.bind(uow, tenant, subject, judged.template, at)

    def bind(
        self, uow: UnitOfWork, tenant: Tenant, subject: Subject, template: bytes, at: datetime
    ) -> int:
        """Bind ``template`` to ``subject`` in ``uow`` (expiring with the shortest consent
        retention) and mark it enrolled; returns the deployment's stored-face count."""
        consents = uow.consents.list_for_subject(tenant.id, subject.id)
        days = min((c.retention_days for c in consents), default=None)
        template_id = new_id()
        sealed = self._ctx.vault.seal_field(
            tenant, subject, "templates", "template_enc", template_id, template
        )
        uow.templates.add(
            Template(
                id=template_id,
                tenant_id=tenant.id,
                subject_id=subject.id,
                template_enc=sealed,
                embedder=self._embedder_id,
                template_version=int(TEMPLATE_VERSION),
                created_at=at,
                expires_at=None if days is None else at + timedelta(days=days),
            )
        )
        uow.subjects.set_status(tenant.id, subject.id, SubjectStatus.ENROLLED)
        return uow.templates.count_all()

    def bound(self, tenant: Tenant, subject_id: str, template: bytes, total_faces: int) -> None:
        """After the commit: the face joins the 1:N gallery; the filing threshold is noted."""
        self._fraud.bound(tenant, subject_id, template)
        self._stored_faces.note(total_faces)


def _audit(check: Check, session: Session, judged: Judged, bound: bool) -> dict[str, object]:
    matched = judged.matched
    return {
        "check_id": check.id,
        "session_id": session.id,
        "purpose": session.purpose.value,
        "decision": judged.outcome.value,
        "reasons": list(check.reasons),
        "liveness_score": check.liveness_score,
        "match_score": check.match_score,
        "threshold": session.threshold if matched is None else matched.threshold,
        "second_factor_threshold": None if matched is None else matched.grey_threshold,
        "network": None if matched is None else matched.network,
        "network_upgraded": bool(bound and matched is not None and matched.upgrade),
        "policy_version": check.policy_version,
        "face_bound": bound,
        # how the challenge was answered and which signals the decision stands on (issue 17:
        # a capture without the colour flash names no "colour")
        "liveness_variant": None if judged.liveness is None else judged.liveness.variant,
        "carried_by": None if judged.liveness is None else list(judged.liveness.carried_by),
    }


__all__ = ["Judged", "Recorder"]
