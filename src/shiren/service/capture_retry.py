"""The borrower's next attempt, opened from the capture page after a ``retry`` decision.

A session is single use, so trying again needs a new one.  Without this the borrower would have
to go back to the lending app and wait for the lender to open it; with it the result page offers
"再试一次" when — and only when — the service itself said ``retry`` and the retry rules leave an
attempt: not after ``pass``, ``review`` or ``fallback``, not while the subject is locked.

The new session copies what the lender's policy decided for the old one (purpose, level, match
threshold, lending event), draws a fresh signed challenge and nonce, and is audited
(``capture.retry_opened``, ids only).  The light ladder (issue 17): after a ``retry`` because the
colour flash could not be seen on the face (``liveness.flash_unseen``: direct sun, a dim screen),
the next challenge is drawn ``motion``-only — no flash, one action more, a head turn always —
and the level's motion-only rules judge it; the audit names the variant.  A read-the-digits
attempt (the borrower's choice, or the event's policy requiring it) is followed by another one.
Idempotent: asking
again from the same old link returns the attempt already opened rather than a second one, so a
double tap or a reload never multiplies sessions.
"""

from __future__ import annotations

from shiren.domain.decisions import Outcome
from shiren.domain.entities import SubjectStatus, Tenant
from shiren.errors import ErrorCode, StateError
from shiren.liveness.challenge import Variant
from shiren.reasons import ReasonCode
from shiren.service.checks import Checks
from shiren.service.context import Context
from shiren.service.sessions import Sessions
from shiren.service.views import SessionView


def _refuse(why: str) -> StateError:
    return StateError(
        f"no further attempt from this link ({why})",
        code=ErrorCode.CAPTURE_RETRY_NOT_ALLOWED,
        detail={"why": why},
    )


def next_attempt(
    ctx: Context, sessions: Sessions, checks: Checks, tenant: Tenant, old: SessionView
) -> SessionView:
    """The attempt after ``old`` (see the module docstring); ``capture.retry_not_allowed``
    when the decision or the retry rules forbid one."""
    if old.check_id is None:
        raise _refuse("not judged yet")
    check = sessions.check(tenant, old.check_id)
    if check.outcome is not Outcome.RETRY:
        raise _refuse(f"decision {check.outcome.value}")
    s = old.session
    now = ctx.clock()
    key = f"{tenant.id}:subject:{s.subject_id}"
    rules, counter = checks.rules, checks.counter
    if counter.locked_for(key, now.timestamp()) > 0:
        raise _refuse("locked")
    if counter.failures(key, rules.window_s, now.timestamp()) >= rules.max_failures:
        raise _refuse("no attempts left")
    with ctx.store() as uow:
        subject = uow.subjects.get(tenant.id, s.subject_id)
        if subject is None or subject.status in (SubjectStatus.ERASED, SubjectStatus.LOCKED):
            raise _refuse("subject not available")
        later = [
            x
            for x in uow.sessions.list_for_subject(tenant.id, s.subject_id)
            if x.id != s.id
            and x.created_at >= s.created_at
            and (x.purpose, x.event_id) == (s.purpose, s.event_id)
        ]
        if later:
            return sessions.view(tenant, max(later, key=lambda x: x.created_at))
        unseen = ReasonCode.LIVENESS_FLASH_UNSEEN.value in check.check.reasons
        variant = Variant.MOTION if unseen else Variant.LIVE
        if old.challenge.variant is Variant.READ_DIGITS:  # chosen or required: it stays
            variant = Variant.READ_DIGITS
        view = sessions.reopen(uow, tenant, s, now, variant)
        ctx.journal.audit(
            uow,
            tenant.id,
            "capture.retry_opened",
            s.subject_id,
            {
                "previous_session_id": s.id,
                "session_id": view.session.id,
                "check_id": old.check_id,
                "variant": variant.value,
            },
            now,
        )
        uow.commit()
    return view


__all__ = ["next_attempt"]
