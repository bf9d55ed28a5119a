"""The borrower's side of a session: what the capture page may do with a capture token.

The lender opens a session (enrolment or step-up) with its API key and sends the borrower the
``capture_url``; everything the page does afterwards is authorised by that URL's token alone
(:mod:`shiren.service.capture_token`): read the challenge and the consent text, record the
borrower's consent, ask for live quality guidance on single frames, submit the capture once,
and poll the result.  No route here can reach another session, list anything, or see a name,
an ID number or a score.

Consent is stateless: accepting returns a *receipt* (an HMAC over the session id and the consent
version, under the capture-token key) that the quality and submit calls must carry, so no frame
is processed before the borrower agreed, and nothing extra is stored to know it.  The acceptance
itself is recorded as a ``Consent`` row (purpose ``face_capture``, the hash of the exact text
shown) and a ``capture.consent_accepted`` audit event.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shiren.domain.decisions import FALLBACKS
from shiren.domain.entities import Consent, SessionStatus, Tenant, new_id
from shiren.errors import ErrorCode, FaceError, InputError, StateError
from shiren.messages import message
from shiren.reasons import ReasonCode
from shiren.service import capture_texts as texts
from shiren.service.app import SessionView, ShirenService
from shiren.service.capture_card import CardStep, active_tenant, opened
from shiren.service.capture_demo import DemoSession, open_session, start_demo_session
from shiren.service.capture_recording import RecordingStep
from shiren.service.capture_retry import next_attempt
from shiren.service.capture_token import CaptureClaim, derive_key, verify

MAX_QUALITY_BYTES = 400 * 1024
QUALITY_MIN_INTERVAL_S = 0.3
QUALITY_MAX_PER_SESSION = 600


@dataclass(frozen=True, slots=True)
class _Opened:
    tenant: Tenant
    view: SessionView


class _Throttle:
    """Per-session quality-call limiter (in process: each worker limits its own share)."""

    def __init__(self, min_interval_s: float, max_calls: int, capacity: int = 10_000) -> None:
        self.min_interval_s = min_interval_s
        self.max_calls = max_calls
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def take(self, key: str, now: float) -> float:
        """0 when the call may proceed, else the seconds to wait."""
        with self._lock:
            last, count = self._seen.get(key, (float("-inf"), 0))
            if count >= self.max_calls:
                return 60.0
            wait = last + self.min_interval_s - now
            if wait > 0:
                return wait
            self._seen[key] = (now, count + 1)
            self._seen.move_to_end(key)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return 0.0


class CaptureService:
    """Token-authorised use cases of the capture page, over a :class:`ShirenService`."""

    def __init__(
        self,
        service: ShirenService,
        *,
        quality_min_interval_s: float = QUALITY_MIN_INTERVAL_S,
        quality_max_per_session: int = QUALITY_MAX_PER_SESSION,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self._monotonic = monotonic
        self._key = derive_key(service.keys.challenge_key)
        self._throttle = _Throttle(quality_min_interval_s, quality_max_per_session)
        self.cards = CardStep(
            service,
            claim=self.claim,
            key=self._key,
            throttle=lambda key: self._throttle.take(f"card:{key}", self._monotonic()),
            session_receipt=self._receipt,
        )
        self.recordings = RecordingStep(
            service,
            open_session=self._opened_view,
            require_consent=self._require_consent,
            receipt=self._receipt,
            result=self.result,
        )

    # -- access --------------------------------------------------------------------------

    def claim(self, token: str) -> CaptureClaim:
        return verify(self.service.keys.challenge_key, token, self.service.clock())

    def _open(self, token: str) -> _Opened:
        claim = self.claim(token)
        tenant = active_tenant(self.service, claim)
        return _Opened(tenant, opened(lambda: self.service.get_session(tenant, claim.session_id)))

    def _opened_view(self, token: str) -> tuple[Tenant, SessionView]:
        opened = self._open(token)
        return opened.tenant, opened.view

    def _receipt(self, session_id: str) -> str:
        msg = f"consent|{session_id}|{texts.CONSENT_VERSION}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]

    def _require_consent(self, session_id: str, receipt: str | None) -> None:
        if not receipt or not hmac.compare_digest(self._receipt(session_id), receipt):
            raise StateError(
                "consent to face processing is required first",
                code=ErrorCode.CAPTURE_CONSENT_REQUIRED,
            )

    def _retention_days(self, tenant: Tenant, subject_id: str) -> int:
        with self.service.store() as uow:
            consents = uow.consents.list_for_subject(tenant.id, subject_id)
        return min((c.retention_days for c in consents), default=365)

    # -- what the page shows ---------------------------------------------------------------

    def info(self, token: str, lang: str = "zh-CN") -> dict[str, Any]:
        """Status, challenge (while open), level, consent texts and the non-face paths (for a
        card token: the card step's, :class:`~shiren.service.capture_card.CardStep`)."""
        if self.cards.is_card(token):
            return self.cards.info(token, lang, _alternatives())
        opened = self._open(token)
        s = opened.view.session
        days = self._retention_days(opened.tenant, s.subject_id)
        shown = texts.consent_texts(opened.tenant.name, days)
        open_now = s.status is SessionStatus.OPEN
        self.service.sessions.challenge_sent(opened.tenant, s)  # the injection check's bound
        return {
            "status": s.status.value,
            "purpose": s.purpose.value,
            "level": s.level,
            "locale": lang,
            "expires_at": s.expires_at.isoformat(),
            "nonce": s.nonce if open_now else None,
            "challenge": opened.view.challenge.to_dict() if open_now else None,
            "result_ready": opened.view.check_id is not None,
            "lender": opened.tenant.name,
            "consent": {
                "version": texts.CONSENT_VERSION,
                "retention_days": days,
                "texts": shown,
                "sha256": {lang_: texts.consent_sha256(t) for lang_, t in shown.items()},
            },
            "alternatives": _alternatives(),
            "recording": self.recordings.offer(s.level, s.status, opened.view.challenge.variant),
        }

    def consent(self, token: str, *, lang: str, accepted: bool, client: str = "") -> dict[str, Any]:
        """Record the borrower's answer; an acceptance returns the receipt the page sends on."""
        if self.cards.is_card(token):
            answer = self.cards.consent(token, lang=lang, accepted=accepted)
            return answer if accepted else {**answer, "alternatives": _alternatives()}
        opened = self._open(token)
        s = opened.view.session
        now = self.service.clock()
        lang = lang if lang in texts.LANGS else "zh-CN"
        if not accepted:
            with self.service.store() as uow:
                self.service.journal.audit(
                    uow,
                    opened.tenant.id,
                    "capture.consent_declined",
                    s.subject_id,
                    {"session_id": s.id, "version": texts.CONSENT_VERSION},
                    now,
                )
                uow.commit()
            return {"accepted": False, "alternatives": _alternatives()}
        days = self._retention_days(opened.tenant, s.subject_id)
        shown = texts.consent_texts(opened.tenant.name, days)[lang]
        digest = texts.consent_sha256(shown)
        row = Consent(
            id=new_id(),
            tenant_id=opened.tenant.id,
            subject_id=s.subject_id,
            purpose=texts.CONSENT_PURPOSE,
            version=texts.CONSENT_VERSION,
            text_sha256=digest,
            retention_days=days,
            granted_at=now,
            client=hashlib.sha256(client.encode()).hexdigest()[:16] if client else "",
        )
        with self.service.store() as uow:
            uow.consents.add(row)
            self.service.journal.audit(
                uow,
                opened.tenant.id,
                "capture.consent_accepted",
                s.subject_id,
                {
                    "consent_id": row.id,
                    "session_id": s.id,
                    "purpose": row.purpose,
                    "version": row.version,
                    "text_sha256": digest,
                    "lang": lang,
                    "retention_days": days,
                },
                now,
            )
            uow.commit()
        return {"accepted": True, "receipt": self._receipt(s.id)}

    # -- capture ---------------------------------------------------------------------------

    def quality(
        self, token: str, *, receipt: str | None, image: bytes, lang: str = "zh-CN"
    ) -> dict[str, Any]:
        """The server's quality gate on one small frame: reason codes, texts, the first tip."""
        opened = self._open(token)
        s = opened.view.session
        self._require_consent(s.id, receipt)
        if s.status is not SessionStatus.OPEN:
            raise StateError("session already used", code=ErrorCode.SESSION_ALREADY_USED)
        if not image:
            raise InputError("no image was sent", code=ErrorCode.IMAGE_EMPTY)
        if len(image) > MAX_QUALITY_BYTES:
            raise InputError(
                f"a guidance frame must be at most {MAX_QUALITY_BYTES} bytes",
                code=ErrorCode.IMAGE_TOO_LARGE,
            )
        wait = self._throttle.take(s.id, self._monotonic())
        if wait > 0:
            raise StateError(
                "too many guidance requests",
                code=ErrorCode.CAPTURE_RATE_LIMITED,
                detail={"retry_after_s": round(wait, 2)},
            )
        reasons = self._assess(image)
        return {
            "passed": not reasons,
            "reasons": [{"code": r, "message": message(r, lang)} for r in reasons],
            "tip": message(reasons[0], lang) if reasons else None,
        }

    def _assess(self, image: bytes) -> list[str]:
        try:
            with self.service.models_lock:
                report = self.service.verifier.assess(image)
        except FaceError as exc:
            if exc.code is ErrorCode.FACE_MULTIPLE:
                return [ReasonCode.QUALITY_MULTIPLE_FACES.value]
            return [ReasonCode.QUALITY_NO_FACE.value]
        return [r.value for r in report.reasons]

    def submit(
        self,
        token: str,
        *,
        receipt: str | None,
        nonce: str,
        frames: Sequence[bytes],
        times_ms: Sequence[float],
        lang: str = "zh-CN",
        camera_label: str | None = None,
    ) -> dict[str, Any]:
        """Submit the capture (exactly ``POST /v1/sessions/{id}/frames``), answered with what
        the borrower may see; ``camera_label``: the page's camera's name (the injection check's
        weak signal)."""
        opened = self._open(token)
        self._require_consent(opened.view.session.id, receipt)
        self.service.submit(
            opened.tenant,
            opened.view.session.id,
            nonce=nonce,
            frames=frames,
            times_ms=times_ms,
            camera_label=camera_label,
            source="page",
        )
        return self.result(token, lang)

    def retry(self, token: str, *, receipt: str | None) -> dict[str, Any]:
        """Open the next attempt after a ``retry`` decision (:mod:`.capture_retry`); the
        borrower's consent carries over to it (same subject, same flow, minutes later)."""
        opened = self._open(token)
        self._require_consent(opened.view.session.id, receipt)
        svc = self.service
        view = next_attempt(svc.ctx, svc.sessions, svc.checks, opened.tenant, opened.view)
        assert view.capture_token is not None
        return {
            "capture_token": view.capture_token,
            "capture_path": f"/capture/{view.capture_token}",
            "receipt": self._receipt(view.session.id),
        }

    def result(self, token: str, lang: str = "zh-CN") -> dict[str, Any]:
        """The borrower's view of the decision (``pending`` until judged): tips and advice,
        attempts used, fallbacks — never scores or the precise attack signal."""
        opened = self._open(token)
        s, check_id = opened.view.session, opened.view.check_id
        if check_id is None:
            return {"status": s.status.value, "decision": None}
        view = self.service.get_check(opened.tenant, check_id)
        check = view.check
        outcome = view.outcome.value
        reasons = [] if outcome == "pass" else list(check.reasons)
        tips = list(dict.fromkeys(message(r, lang) for r in reasons if _known(r)))
        rules = self.service.rules
        used = self.service.counter.failures(
            f"{opened.tenant.id}:subject:{s.subject_id}",
            rules.window_s,
            self.service.clock().timestamp(),
        )
        fallbacks = list(view.fallbacks) or (list(FALLBACKS) if outcome != "pass" else [])
        can_retry = outcome == "retry" and used < rules.max_failures and not view.retry_after_s
        return {
            "status": s.status.value,
            "decision": outcome,
            "can_retry": can_retry,
            "tips": tips,
            "advice": [_advice(key, lang) for key in texts.advice_for(reasons)],
            "attempts": {"failed": used, "max": rules.max_failures},
            "retry_after_s": view.retry_after_s,
            "fallbacks": [_fallback(f, lang) for f in fallbacks if f in texts.FALLBACK_LABELS],
        }


def _known(code: str) -> bool:
    try:
        message(code, "en")
    except KeyError:
        return False
    return True


def _alternatives() -> list[dict[str, str]]:
    return [
        {"code": f, "zh-CN": texts.FALLBACK_LABELS[f][0], "en": texts.FALLBACK_LABELS[f][1]}
        for f in FALLBACKS
        if f in texts.FALLBACK_LABELS
    ]


def _fallback(code: str, lang: str) -> dict[str, str]:
    return {"code": code, "label": texts.label(texts.FALLBACK_LABELS, code, lang)}


def _advice(key: str, lang: str) -> dict[str, str]:
    symptom, tell = texts.ADVICE[key]
    return {
        "code": key,
        "symptom": symptom[0] if lang == "zh-CN" else symptom[1],
        "advice": tell[0] if lang == "zh-CN" else tell[1],
    }


__all__ = [
    "MAX_QUALITY_BYTES",
    "CaptureService",
    "DemoSession",
    "open_session",
    "start_demo_session",
]
