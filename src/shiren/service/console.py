"""The review console's use cases: the queue with its evidence, decisions, subject records, the
audit log and the dashboard — each behind a role check and scoped to the signed-in user's tenant.

The console adds no new power over data: a decision goes through
:meth:`ShirenService.decide_review` (same rules, same audit event, same webhook) and reads go
through the repositories with the principal's tenant id, so a user never sees another tenant's
rows (another tenant's id is "not found", as in the API).  What it adds is *who*: every decision
is attributed to the console user (``reviewer = "console:<user id>"``) and a
``console.review_decided`` event records the user's role and the reason category.  The reason's
free text is kept only as a SHA-256 (``note_sha256`` of ``review.closed``), like the API's note:
the audit chain is append-only and must never hold personal data someone might type into a box.

Keyframes a review keeps for its reviewers (issue 17, :mod:`shiren.service.review_evidence`) are
opened for the reviewer role only, each view audited (``console.evidence_viewed``, ids only).  A
reason that claims an inspection of the faces (:data:`INSPECTION_CATEGORIES`) is offered, and
accepted, only on a case with kept keyframes its decider may look at: without them it would
record a look nobody could take.  The injection check's evidence of a case's check (mode,
effect, the features against their lines: :mod:`shiren.service.console_injection`) is shown to
reviewers only, each view audited (``console.injection_viewed``, ids only).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiren.audit import VerifyResult
from shiren.domain.console import ConsoleUser, Permission, allowed
from shiren.domain.entities import AuditEvent, Consent, ReviewStatus, Subject, utcnow
from shiren.domain.fallback import FallbackFlow
from shiren.errors import ErrorCode, InputError, StateError
from shiren.service.app import ShirenService
from shiren.service.capture import start_demo_session
from shiren.service.console_auth import ConsoleAuth, ConsolePolicy, Principal
from shiren.service.console_injection import InjectionEvidence, injection_evidence
from shiren.service.console_views import (
    CaseView,
    Dashboard,
    ReasonText,
    build_dashboard,
    case_view,
    reason_text,
)
from shiren.service.fallback_records import flow_view
from shiren.service.journal import append_audit
from shiren.service.keys import ServiceKeys
from shiren.service.review_evidence import kept_keyframes, open_keyframe
from shiren.service.views import fallback_review_dict, fallback_reviews
from shiren.storage.ports import UnitOfWorkFactory

REASON_CATEGORIES: dict[str, str] = {
    "same_person": "Same person: the faces match on inspection",
    "live_capture": "Live capture confirmed (prompts followed)",
    "documents_checked": "Checked against documents or the customer",
    "different_person": "Different person",
    "presentation_attack": "Photo, screen, mask or replay suspected",
    "poor_quality": "Capture too poor to judge: ask for a new one",
    "other": "Other (explain in the note)",
}
"""Why a reviewer decided: a fixed list (audited in clear) plus a required free-text note."""
INSPECTION_CATEGORIES = frozenset({"same_person"})
"""Reasons that say the reviewer looked at the faces: only where keyframes were kept."""
MIN_NOTE_CHARS = 3
AUDIT_PAGE = 50


def _forbidden(permission: Permission) -> StateError:
    return StateError(
        "your role does not allow this",
        code=ErrorCode.CONSOLE_FORBIDDEN,
        detail={"permission": permission.value},
    )


def _not_found(what: str) -> StateError:
    return StateError(f"{what} not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": what})


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    """A subject as the console shows it: ids and states, consents, erasure; no identity
    data (name, ID number) and nothing biometric."""

    subject: Subject
    consents: list[Consent]
    events: list[AuditEvent]
    checks: int


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    page: int
    pages: int
    head_seq: int


DEMO_LEVELS = ("low", "normal", "high")
"""Liveness levels a demo session may run at (from the console)."""


class ConsoleService:
    """Console use cases over a :class:`ShirenService` (see the module docstring)."""

    def __init__(self, service: ShirenService, auth: ConsoleAuth) -> None:
        self.service = service
        self.auth = auth

    @classmethod
    def for_service(
        cls, service: ShirenService, policy: ConsolePolicy | None = None
    ) -> ConsoleService:
        """Wire the console to ``service``: same storage, audit key and clock; the session key
        is derived from the challenge key (rotating that key signs every console user out)."""
        policy = policy or ConsolePolicy(secure_cookies=service.production)
        auth = make_auth(service.store, service.keys, service.clock, policy)
        return cls(service, auth)

    @staticmethod
    def require(principal: Principal, permission: Permission) -> None:
        if not allowed(principal.user.role, permission):
            raise _forbidden(permission)

    # -- the queue ---------------------------------------------------------------------

    def queue(self, p: Principal, status: str = "open", ref: str = "") -> list[CaseView]:
        """The tenant's reviews in ``status`` (oldest first), optionally of one subject ref."""
        self.require(p, Permission.QUEUE_VIEW)
        try:
            wanted = ReviewStatus(status)
        except ValueError:
            raise InputError("unknown review status", detail={"field": "status"}) from None
        now = self.service.clock()
        with self.service.store() as uow:
            items = uow.reviews.list_by_status(p.tenant.id, wanted, limit=200)
            cases = [case_view(uow, p.tenant.id, item, now) for item in items]
        if ref:
            cases = [c for c in cases if c.subject is not None and c.subject.external_ref == ref]
        return cases

    def fallback_queue(
        self, p: Principal, status: str = "open", ref: str = ""
    ) -> list[FallbackCaseView]:
        """The tenant's non-face cases (issue 6) in the review queue's ``status``: ``open`` —
        a fallback that ended in manual review; ``closed`` — decided by a reviewer."""
        self.require(p, Permission.QUEUE_VIEW)
        try:
            wanted = ReviewStatus(status)
        except ValueError:
            raise InputError("unknown review status", detail={"field": "status"}) from None
        with self.service.store() as uow:
            flows = fallback_reviews(uow, p.tenant.id, wanted, 200)
            cases = [_fallback_case(uow, p.tenant.id, f) for f in flows]
        if ref:
            cases = [c for c in cases if c.subject is not None and c.subject.external_ref == ref]
        return sorted(cases, key=lambda c: c.item["created_at"])

    def fallback_case(self, p: Principal, flow_id: str) -> FallbackCaseView:
        self.require(p, Permission.QUEUE_VIEW)
        with self.service.store() as uow:
            flow = uow.fallbacks.get(p.tenant.id, flow_id) if _is_id(flow_id) else None
            if flow is None:
                raise _not_found("fallback")
            return _fallback_case(uow, p.tenant.id, flow)

    def case(self, p: Principal, review_id: str) -> CaseView:
        self.require(p, Permission.QUEUE_VIEW)
        with self.service.store() as uow:
            item = uow.reviews.get(p.tenant.id, review_id) if _is_id(review_id) else None
            if item is None:
                raise _not_found("review")
            return case_view(uow, p.tenant.id, item, self.service.clock())

    def categories(self, p: Principal, case: CaseView | None) -> dict[str, str]:
        """The reasons the decision form offers for ``case`` (``None``: a non-face case): the
        inspection-based ones only with kept keyframes ``p`` may look at."""
        inspect = case is not None and bool(case.evidence) and self.may_view_evidence(p)
        return {
            k: text
            for k, text in REASON_CATEGORIES.items()
            if inspect or k not in INSPECTION_CATEGORIES
        }

    @staticmethod
    def may_view_evidence(p: Principal) -> bool:
        return allowed(p.user.role, Permission.EVIDENCE_VIEW)

    def injection(self, p: Principal, case: CaseView) -> InjectionEvidence | None:
        """The injection evidence of ``case``'s check for a reviewer (None for anyone else, or
        when it was not measured); a view is audited (``console.injection_viewed``: ids only)
        before it is shown."""
        if not self.may_view_evidence(p) or case.check is None:
            return None
        check, now = case.check, self.service.clock()
        with self.service.store() as uow:
            found = injection_evidence(uow, p.tenant.id, check)
            if found is None:
                return None
            payload = {
                "user_id": p.user.id,
                "role": p.user.role.value,
                "review_id": case.review.id,
                "check_id": check.id,
            }
            append_audit(
                uow, self.service.keys.audit_key, p.tenant.id, "console.injection_viewed",
                check.subject_id, payload, now,
            )  # fmt: skip
            uow.commit()
        return found

    def keyframes_kept(self, p: Principal) -> int:
        """How many keyframes a check of ``p``'s tenant sent to review keeps (0: none)."""
        return self.service.recorder.evidence.keyframes_for(p.tenant.id)

    def decide(
        self, p: Principal, review_id: str, *, outcome: str, category: str, note: str
    ) -> dict[str, Any]:
        """Close a review through the service, with a required reason (category + note)."""
        self.require(p, Permission.QUEUE_DECIDE)
        note = note.strip()
        if category not in REASON_CATEGORIES:
            raise InputError("choose a reason", detail={"field": "category"})
        if category in INSPECTION_CATEGORIES and self._nothing_to_inspect(p, review_id):
            raise InputError(
                "no kept keyframes to inspect: choose another reason",
                detail={"field": "category"},
            )
        if len(note) < MIN_NOTE_CHARS:
            raise InputError(
                f"write a reason of at least {MIN_NOTE_CHARS} characters",
                detail={"field": "note"},
            )
        result = self.service.decide_review(
            p.tenant,
            review_id,
            outcome=outcome,
            reviewer=f"console:{p.user.id}",
            note=f"{category}: {note}",
        )
        now = self.service.clock()
        with self.service.store() as uow:
            payload = {
                "review_id": result["id"],
                "user_id": p.user.id,
                "role": p.user.role.value,
                "outcome": result["outcome"],
                "reason_category": category,
            }
            if result.get("kind") == "fallback":  # issue 6: a non-face case
                payload["kind"] = "fallback"
            append_audit(
                uow,
                self.service.keys.audit_key,
                p.tenant.id,
                "console.review_decided",
                result["subject_id"],
                payload,
                now,
            )
            uow.commit()
        return result

    def _nothing_to_inspect(self, p: Principal, review_id: str) -> bool:
        """Whether ``p`` has no kept keyframes of ``review_id`` to look at (an id that is not
        one of the tenant's cases is left to the decision itself: not found)."""
        if not _is_id(review_id):
            return False
        with self.service.store() as uow:
            item = uow.reviews.get(p.tenant.id, review_id)
            if item is None:  # a non-face case keeps no frames
                return uow.fallbacks.get(p.tenant.id, review_id) is not None
            kept = kept_keyframes(uow, p.tenant.id, item.check_id, self.service.clock())
        return not (kept and self.may_view_evidence(p))

    def keyframe(self, p: Principal, review_id: str, evidence_id: str) -> bytes:
        """A kept keyframe of an open review, as a JPEG, for a reviewer; the view is audited
        (``console.evidence_viewed``: ids only) before the image leaves the service.  Another
        tenant's id, another case's frame, a decided case or an expired frame: not found."""
        if not (_is_id(review_id) and _is_id(evidence_id)):
            raise _not_found("evidence")
        now = self.service.clock()
        with self.service.store() as uow:
            if uow.reviews.get(p.tenant.id, review_id) is None:
                raise _not_found("review")  # before the role: a foreign id is just not found
            self.require(p, Permission.EVIDENCE_VIEW)
            kept = open_keyframe(uow, self.service.vault, p.tenant, review_id, evidence_id, now)
            payload = {
                "user_id": p.user.id,
                "role": p.user.role.value,
                "review_id": review_id,
                "check_id": kept.check_id,
                "evidence_id": evidence_id,
            }
            append_audit(
                uow, self.service.keys.audit_key, p.tenant.id, "console.evidence_viewed",
                kept.subject_id, payload, now,
            )  # fmt: skip
            uow.commit()
        return kept.jpeg

    # -- subjects ----------------------------------------------------------------------

    def find_subjects(self, p: Principal, ref: str) -> list[Subject]:
        self.require(p, Permission.SUBJECTS_VIEW)
        ref = ref.strip()[:128]
        if not ref:
            return []
        with self.service.store() as uow:
            return uow.console.find_subjects(p.tenant.id, ref, limit=50)

    def subject(self, p: Principal, subject_id: str) -> SubjectRecord:
        self.require(p, Permission.SUBJECTS_VIEW)
        with self.service.store() as uow:
            subject = uow.subjects.get(p.tenant.id, subject_id) if _is_id(subject_id) else None
            if subject is None:
                raise _not_found("subject")
            return SubjectRecord(
                subject,
                uow.consents.list_for_subject(p.tenant.id, subject_id),
                uow.console.audit_for_subject(p.tenant.id, subject_id),
                len(uow.checks.list_for_subject(p.tenant.id, subject_id)),
            )

    # -- audit -------------------------------------------------------------------------

    def audit_page(self, p: Principal, page: int = 1) -> AuditPage:
        """Newest first, :data:`AUDIT_PAGE` events a page."""
        self.require(p, Permission.AUDIT_VIEW)
        with self.service.store() as uow:
            head = uow.audit.head(p.tenant.id)
            last = 0 if head is None else head.seq
            pages = max(1, -(-last // AUDIT_PAGE))
            page = min(max(1, page), pages)
            end = last - (page - 1) * AUDIT_PAGE
            start = max(1, end - AUDIT_PAGE + 1)
            events = uow.audit.read(p.tenant.id, start_seq=start, end_seq=end) if last else []
        return AuditPage(list(reversed(events)), page, pages, last)

    def verify_audit(self, p: Principal) -> VerifyResult:
        """Verify the tenant's whole chain (hashes, links, MACs); the check itself is audited."""
        self.require(p, Permission.AUDIT_VIEW)
        result = self.service.audit_verify(p.tenant.id)
        now = self.service.clock()
        with self.service.store() as uow:
            payload = {"user_id": p.user.id, "ok": result.ok, "checked": result.checked}
            append_audit(
                uow, self.service.keys.audit_key, p.tenant.id, "console.audit_verified", None,
                payload, now,
            )  # fmt: skip
            uow.commit()
        return result

    # -- dashboard ---------------------------------------------------------------------

    def dashboard(self, p: Principal, days: int = 14) -> Dashboard:
        """Per-UTC-day counts of the last ``days`` days (today included), from the database."""
        self.require(p, Permission.DASHBOARD_VIEW)
        days = min(max(days, 1), 90)
        now = self.service.clock()
        until = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        since = until - timedelta(days=days)
        with self.service.store() as uow:
            decisions = uow.console.daily_decisions(p.tenant.id, since, until)
            reasons = uow.console.daily_reasons(p.tenant.id, since, until)
        return build_dashboard(since, days, decisions, reasons)

    # -- users -------------------------------------------------------------------------

    def users(self, p: Principal) -> list[ConsoleUser]:
        self.require(p, Permission.USERS_MANAGE)
        with self.service.store() as uow:
            return uow.console_users.list_for_tenant(p.tenant.id)

    def add_user(self, p: Principal, username: str, role: str) -> tuple[ConsoleUser, str]:
        self.require(p, Permission.USERS_MANAGE)
        return self.auth.create_user(p.tenant.id, username, role)

    def change_user(
        self, p: Principal, user_id: str, action: str, role: str = ""
    ) -> tuple[ConsoleUser, str | None]:
        """Disable / enable / reset the password of / change the role of a user of the tenant
        (not oneself: an admin cannot lock themselves out or demote the last admin by slip)."""
        self.require(p, Permission.USERS_MANAGE)
        if user_id == p.user.id:
            raise InputError("you cannot change your own account here", detail={"field": "user"})
        if not _is_id(user_id):
            raise _not_found("console user")
        return self.auth.change_user(p.tenant.id, user_id, action, by=p.user.id, role=role)

    def reviewer_names(self, p: Principal) -> dict[str, str]:
        """``"console:<id>"`` → username for the tenant's users (to show who decided)."""
        with self.service.store() as uow:
            users = uow.console_users.list_for_tenant(p.tenant.id)
        return {f"console:{u.id}": u.username for u in users}

    # -- demo sessions -----------------------------------------------------------------

    def start_demo(self, p: Principal, reference_image: bytes, level: str = "normal") -> str:
        """Open a demo capture session in the staff member's own tenant for the person in
        ``reference_image`` (who then faces the camera: the capture is matched against it) and
        return the capture page's path.  An empty upload is ``input.invalid``; a bad image is the
        decoder's typed error."""
        self.require(p, Permission.DEMO_START)
        if not reference_image:
            raise InputError(
                "a demo session needs a reference photo of the person who will face the camera",
                code=ErrorCode.INPUT_INVALID,
                detail={"field": "reference"},
            )
        if level not in DEMO_LEVELS:
            raise InputError("unknown liveness level", code=ErrorCode.INPUT_INVALID)
        demo = start_demo_session(
            self.service, reference_image=reference_image, level=level, tenant=p.tenant
        )
        with self.service.store() as uow:
            payload = {"user_id": p.user.id, "session_id": demo.session_id, "level": level}
            append_audit(
                uow, self.service.keys.audit_key, p.tenant.id, "console.demo_started",
                demo.subject_id, payload, self.service.clock(),
            )  # fmt: skip
            uow.commit()
        return f"/capture/{demo.capture_token}"


@dataclass(frozen=True, slots=True)
class FallbackCaseView:
    """A non-face case in the review queue: the queue item, the case's masked view (steps,
    phone's last four digits, reasons) and its subject."""

    item: dict[str, Any]
    flow: dict[str, Any]
    subject: Subject | None
    reasons: list[ReasonText]


def _fallback_case(uow: Any, tenant_id: str, flow: FallbackFlow) -> FallbackCaseView:
    return FallbackCaseView(
        item=fallback_review_dict(flow),
        flow=flow_view(flow),
        subject=uow.subjects.get(tenant_id, flow.subject_id),
        reasons=[reason_text(r) for r in flow.reasons],
    )


def make_auth(
    store: UnitOfWorkFactory,
    keys: ServiceKeys,
    clock: Callable[[], datetime] = utcnow,
    policy: ConsolePolicy | None = None,
) -> ConsoleAuth:
    """Console sign-in over ``store``: audit events in each tenant's keyed chain, sessions
    signed with a key derived from the challenge key (rotating that key signs everyone out)."""
    key = hmac.new(keys.challenge_key, b"shiren/console-session/v1", hashlib.sha256).digest()
    return ConsoleAuth(
        store=store,
        audit=lambda uow, tid, kind, payload, now: append_audit(
            uow, keys.audit_key, tid, kind, None, payload, now
        ),
        session_key=key,
        clock=clock,
        policy=policy or ConsolePolicy(),
    )


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


__all__ = [
    "AUDIT_PAGE",
    "INSPECTION_CATEGORIES",
    "REASON_CATEGORIES",
    "AuditPage",
    "ConsoleService",
    "SubjectRecord",
    "make_auth",
]
