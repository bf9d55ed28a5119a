"""Consent withdrawal (PIPL art. 15) and re-enrolment after it.

Face processing needs the subject's separate, versioned consent (recorded at enrolment).  When
the subject withdraws it, processing of their face stops *now*, in one unit of work:

* the matching consents get ``withdrawn_at``;
* once no consent is left active, every face datum of the subject is deleted — bound templates,
  reference templates, kept evidence images and the captured faces of pending reviews — and
  every open session of the subject is expired; an enrolled subject goes back to ``pending``;
* the withdrawal is audited (``consent.withdrawn``) and announced by webhook
  (``consent.withdrawn``, through the outbox, so it is sent exactly when it committed).

Afterwards a lending event for the subject opens no face session: the requirement is the
fallback (non-face methods) with the reason ``consent.withdrawn``; submitting frames to a
session of the subject fails with ``subject.consent_withdrawn`` (409); a face is never bound
without an active consent (a capture in flight during the withdrawal, or a review approved
after it).

Withdrawal is idempotent: withdrawing what is already withdrawn changes nothing, audits nothing
and answers with the first withdrawal's time.  Unlike erasure it keeps the subject's identity
(name, ID number) — the lender still needs them for the non-face methods — so the subject can
give a fresh consent and enrol again under the same ``external_ref``
(:meth:`shiren.service.enrolment.Enrolment.enrol`), which is only allowed for the same person
(same ID-number pseudonym).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shiren.domain.decisions import FALLBACKS
from shiren.domain.entities import Consent, SessionStatus, SubjectStatus, Tenant
from shiren.domain.policy import Requirement
from shiren.errors import ErrorCode, StateError
from shiren.privacy import redact
from shiren.reasons import ReasonCode
from shiren.service.context import Context
from shiren.service.validation import not_found, require_subject, text
from shiren.service.webhooks import Event
from shiren.storage.ports import UnitOfWork, erase_subject_biometrics

log = logging.getLogger("shiren.service")

CONSENT_WITHDRAWN_EVENT = Event.CONSENT_WITHDRAWN
FALLBACK_PURPOSE = "fallback"


def active_consents(uow: UnitOfWork, tenant_id: str, subject_id: str) -> list[Consent]:
    return [
        c for c in uow.consents.list_for_subject(tenant_id, subject_id) if c.withdrawn_at is None
    ]


def has_active_consent(uow: UnitOfWork, tenant_id: str, subject_id: str) -> bool:
    """Whether the subject may have their face processed (at least one consent not withdrawn)."""
    return bool(active_consents(uow, tenant_id, subject_id))


def consent_withdrawn_error() -> StateError:
    return StateError(
        "the subject withdrew consent to face processing", code=ErrorCode.CONSENT_WITHDRAWN
    )


def require_active_consent(uow: UnitOfWork, tenant_id: str, subject_id: str) -> None:
    """``subject.consent_withdrawn`` (409) unless the subject has an active consent."""
    if not has_active_consent(uow, tenant_id, subject_id):
        raise consent_withdrawn_error()


def gate_requirement(
    uow: UnitOfWork, tenant_id: str, subject_id: str, requirement: Requirement
) -> Requirement:
    """The policy's ``requirement``, or — when the subject withdrew consent — the fallback:
    a check is still needed, but only by the non-face methods."""
    if not requirement.needed or has_active_consent(uow, tenant_id, subject_id):
        return requirement
    return replace(
        requirement,
        purpose=FALLBACK_PURPOSE,
        reasons=(ReasonCode.CONSENT_WITHDRAWN.value,),
        fallbacks=FALLBACKS,
    )


def opens_session(requirement: Requirement) -> bool:
    return requirement.needed and requirement.purpose != FALLBACK_PURPOSE


class Consents:
    """Consent withdrawal for a running service (see the module docstring)."""

    def __init__(self, ctx: Context, *, on_erased: Callable[[], None] | None = None) -> None:
        self._ctx = ctx
        self._on_erased = on_erased
        """Run after face data was deleted (SQLite: fold the WAL, so the deleted ciphertext
        leaves the disk too, not only the tables)."""

    def withdraw(
        self, tenant: Tenant, subject_id: str, *, purpose: str, version: str | None
    ) -> dict[str, Any]:
        """Withdraw the subject's consents for ``purpose`` (and ``version``, when given); see
        the module docstring.  ``record.not_found`` when the subject has no such consent."""
        text(purpose, "purpose", 64)
        if version is not None:
            text(version, "version", 32)
        ctx = self._ctx
        now = ctx.clock()
        with ctx.store() as uow:
            require_subject(uow, tenant.id, subject_id)
            matching = [
                c
                for c in uow.consents.list_for_subject(tenant.id, subject_id)
                if c.purpose == purpose and (version is None or c.version == version)
            ]
            if not matching:
                raise not_found("consent")
            pending = [c for c in matching if c.withdrawn_at is None]
            if not pending:  # idempotent: already withdrawn, nothing changes
                return _result(subject_id, matching, already=True)
            withdrawn = [uow.consents.withdraw(tenant.id, c.id, now) for c in pending]
            payload = _stop_face_processing(uow, tenant.id, subject_id)
            payload.update(
                consent_ids=[c.id for c in withdrawn],
                purpose=purpose,
                versions=sorted({c.version for c in withdrawn}),
            )
            ctx.journal.audit(uow, tenant.id, "consent.withdrawn", subject_id, payload, now)
            ctx.journal.emit(
                uow,
                tenant.id,
                CONSENT_WITHDRAWN_EVENT,
                now,
                subject_id=subject_id,
                reasons=(ReasonCode.CONSENT_WITHDRAWN.value,),
            )
            uow.commit()
            done = {c.id: c for c in withdrawn}
            matching = [done.get(c.id, c) for c in matching]
        if payload["face_data_deleted"] and self._on_erased is not None:
            self._on_erased()
        log.info(redact(f"consent withdrawn tenant={tenant.id} subject={subject_id}"))
        out = _result(subject_id, matching, already=False)
        out.update({k: payload[k] for k in ("face_data_deleted", "sessions_expired", "deleted")})
        return out


def _stop_face_processing(uow: UnitOfWork, tenant_id: str, subject_id: str) -> dict[str, Any]:
    """When no consent is left: delete the subject's face data, expire their open sessions,
    un-enrol them.  Returns the audit payload (counts only)."""
    if has_active_consent(uow, tenant_id, subject_id):
        return {"face_data_deleted": False, "sessions_expired": 0, "deleted": {}}
    counts = erase_subject_biometrics(uow, tenant_id, subject_id)
    expired = 0
    for session in uow.sessions.list_for_subject(tenant_id, subject_id):
        if session.status is SessionStatus.OPEN:
            uow.sessions.expire(tenant_id, session.id)
            expired += 1
    subject = uow.subjects.get(tenant_id, subject_id)
    if subject is not None and subject.status is SubjectStatus.ENROLLED:
        uow.subjects.set_status(
            tenant_id, subject_id, SubjectStatus.PENDING, expected=SubjectStatus.ENROLLED
        )
    return {
        "face_data_deleted": True,
        "sessions_expired": expired,
        "deleted": {  # "template" is a forbidden audit key: name the rows by what they were
            "face_rows": counts.templates,
            "reference_rows": counts.references,
            "evidence_rows": counts.evidence,
            "review_candidate_rows": counts.review_candidates,
        },
    }


def _result(subject_id: str, consents: list[Consent], *, already: bool) -> dict[str, Any]:
    return {
        "subject_id": subject_id,
        "already_withdrawn": already,
        "consents": [
            {
                "id": c.id,
                "purpose": c.purpose,
                "version": c.version,
                "withdrawn_at": None if c.withdrawn_at is None else c.withdrawn_at.isoformat(),
            }
            for c in consents
        ],
    }


def review_not_bound_reason(
    *, approved: bool, enrolment: bool, live: bool, candidate: bool, consent: bool, erased: bool
) -> str | None:
    """Why an approved enrolment review bound no face, as a reason code the lender can show
    (``None`` when it bound one — ``approved`` is false then — or for a failed liveness check
    or an erased subject, which the review already shows)."""
    if not approved or not enrolment or not live or erased:
        return None
    if not consent:
        return ReasonCode.CONSENT_WITHDRAWN.value
    if not candidate:
        return ReasonCode.REVIEW_CANDIDATE_EXPIRED.value
    return None


__all__ = [
    "CONSENT_WITHDRAWN_EVENT",
    "Consents",
    "active_consents",
    "gate_requirement",
    "has_active_consent",
    "opens_session",
    "require_active_consent",
    "review_not_bound_reason",
]
