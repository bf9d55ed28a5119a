"""The record-and-upload fallback of the capture page (issue 17).

Where the browser cannot stream the camera to the page (an old in-app web view, a page without
the camera API, a camera that fails to start), the page offers to film with the phone's own
camera app instead — never a silent downgrade to a still photo:

1. ``POST /v1/capture/{token}/recording/open`` — while the session is open and unused, and the
   level allows recordings (``recording`` in liveness.toml): a new session of the same lender
   decision (purpose, level, threshold, event) with a ``recorded`` challenge — a fresh nonce, a
   random list of actions with a head turn, no flash — and the old session expired, so there is
   never more than one open attempt.  Idempotent (a double tap returns the same session) and
   audited (``capture.recording_opened``, ids only).  The consent carries over (same subject,
   same minutes): the answer has the new session's receipt.
2. The borrower reads the list, films, does the actions in that order, and the page uploads the
   file to ``POST /v1/capture/{token}/recording`` with the session's nonce.  The service decodes
   it before consuming the session (an unreadable file burns nothing), finds the actions in the
   asked order (:mod:`shiren.liveness.recorded`) and judges it like any capture, by the level's
   ``without_flash`` rule: ``motion`` may pass; ``review`` / ``fallback`` never pass.

Binding: the recording answers one signed, single-use session — the actions and their order are
the nonce's and were unknown before step 1 — and it must arrive within the session's lifetime.
What a recording cannot give (the colour flash, the page's frame timing) is exactly what the
level's rule and the decision's ``carried_by`` account for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shiren.domain.entities import SessionStatus, Tenant
from shiren.errors import ErrorCode, StateError
from shiren.liveness.challenge import Variant
from shiren.liveness.recorded import MAX_RECORDING_BYTES, MAX_RECORDING_MS
from shiren.service.app import ShirenService
from shiren.service.views import SessionView

RECORDING_SECONDS = 20
"""What the page asks for: the actions within 20 s (the server accepts up to 30 s)."""


def _not_allowed(why: str) -> StateError:
    return StateError(
        f"this capture cannot switch to a recording ({why})",
        code=ErrorCode.CAPTURE_RECORDING_NOT_ALLOWED,
        detail={"why": why},
    )


class RecordingStep:
    """Token-authorised use cases of the record-and-upload fallback (see the module
    docstring)."""

    def __init__(
        self,
        service: ShirenService,
        *,
        open_session: Callable[[str], tuple[Tenant, SessionView]],
        require_consent: Callable[[str, str | None], None],
        receipt: Callable[[str], str],
        result: Callable[[str, str], dict[str, Any]],
    ) -> None:
        self.service = service
        self._open = open_session
        self._require_consent = require_consent
        self._receipt = receipt
        self._result = result

    def offer(
        self, level: str, status: SessionStatus, variant: Variant = Variant.LIVE
    ) -> dict[str, Any]:
        """What ``GET /v1/capture/{token}`` says of the fallback (and of reading the digits
        aloud, issue 18, which is switched to and uploaded the same way).  A read-the-digits
        session switches to nothing else: the borrower chose it, or the event's policy requires
        it (``challenge = "read_digits"``); its only other ways are the non-face routes."""
        is_open = status is SessionStatus.OPEN and variant is not Variant.READ_DIGITS
        return {
            "allowed": is_open and self._level_allows(level, Variant.RECORDED),
            "read_digits": is_open and self._level_allows(level, Variant.READ_DIGITS),
            "max_seconds": RECORDING_SECONDS,
            "max_bytes": MAX_RECORDING_BYTES,
        }

    def _level_allows(self, level: str, variant: Variant) -> bool:
        policy = self.service.checker.config.level(level)
        return bool(policy.read_digits if variant is Variant.READ_DIGITS else policy.recording)

    def open(
        self, token: str, *, receipt: str | None, variant: Variant = Variant.RECORDED
    ) -> dict[str, Any]:
        """Step 1: the new session's link, receipt and what to do: the actions to film, or
        (``read_digits``) the digit schedule to show."""
        tenant, current = self._open(token)
        self._require_consent(current.session.id, receipt)
        if current.challenge.variant is variant:
            view = current
        elif current.challenge.variant is Variant.READ_DIGITS:
            raise _not_allowed("a read-the-digits session")
        else:
            view = self._switch(tenant, current, variant)
        assert view.capture_token is not None
        return {
            "capture_token": view.capture_token,
            "capture_path": f"/capture/{view.capture_token}",
            "receipt": self._receipt(view.session.id),
            "nonce": view.session.nonce,
            "actions": [step.action.value for step in view.challenge.actions],
            "max_seconds": RECORDING_SECONDS,
            "max_bytes": MAX_RECORDING_BYTES,
            "server_max_seconds": int(MAX_RECORDING_MS // 1000),
        }

    def _switch(self, tenant: Tenant, old: SessionView, variant: Variant) -> SessionView:
        """The session of ``variant`` that replaces ``old`` (the one already opened, if any)."""
        svc, s = self.service, old.session
        now = svc.clock()
        with svc.store() as uow:
            later = [
                x
                for x in uow.sessions.list_for_subject(tenant.id, s.subject_id)
                if x.id != s.id
                and x.created_at >= s.created_at
                and (x.purpose, x.event_id) == (s.purpose, s.event_id)
            ]
            if later:  # a double tap, a reload: the attempt already opened
                view = svc.sessions.view(tenant, max(later, key=lambda x: x.created_at))
                if view.challenge.variant is not variant:
                    raise _not_allowed("a newer attempt exists")
                return view
            if s.status is not SessionStatus.OPEN or old.check_id is not None:
                raise _not_allowed(f"session {s.status.value}")
            if not self._level_allows(s.level, variant):
                raise _not_allowed(f"level {s.level}")
            uow.sessions.expire(tenant.id, s.id)
            view = svc.sessions.reopen(uow, tenant, s, now, variant)
            svc.ctx.journal.audit(
                uow,
                tenant.id,
                "capture.recording_opened",
                s.subject_id,
                {
                    "previous_session_id": s.id,
                    "session_id": view.session.id,
                    "variant": variant.value,
                },
                now,
            )
            uow.commit()
        return view

    def submit(
        self,
        token: str,
        *,
        receipt: str | None,
        nonce: str,
        data: bytes,
        lang: str = "zh-CN",
        spoken: str = "zh-CN",
    ) -> dict[str, Any]:
        """Step 2: judge the recording; answered with what the borrower may see."""
        tenant, view = self._open(token)
        self._require_consent(view.session.id, receipt)
        self.service.submit(
            tenant,
            view.session.id,
            nonce=nonce,
            frames=(),
            times_ms=(),
            recording=data,
            lang=spoken,
        )
        return self._result(token, lang)


__all__ = ["RECORDING_SECONDS", "RecordingStep"]
