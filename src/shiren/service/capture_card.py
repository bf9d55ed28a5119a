"""The card step of the capture page: what a *card* capture token may do.

A card token (``"k": "card"``, :mod:`shiren.service.capture_token`) opens the page on a card
capture (:mod:`shiren.service.card_capture`) instead of a session.  With it the page may read
the consent texts (the face text plus what reading the card means), record the borrower's
answer, ask for live framing guidance on small frames (:func:`shiren.idcard.guide.guide`,
throttled as the face guidance is), and send the card once it is framed.  A card that passes
enrols the subject and opens the selfie session; the answer carries that session's token and a
consent receipt for it, so the page goes on to the selfie without asking again — the consent
the borrower gave covered both steps, and it is recorded (a ``Consent`` row, purpose
``face_capture``, the hash of the exact texts shown) against the new subject in the enrolment's
own unit of work.

Errors keep their stable codes; those about the card carry ``tips`` — the guidance codes'
texts in the borrower's language — so the page can say what to fix.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from shiren.core.image import decode_image
from shiren.domain.card_capture import CardCaptureStatus
from shiren.domain.entities import Consent, Subject, Tenant, new_id
from shiren.errors import ErrorCode, InputError, StateError
from shiren.idcard.guide import guide
from shiren.idcard.types import CARD_LIMITS
from shiren.messages import message
from shiren.service import capture_texts as texts
from shiren.service.app import ShirenService
from shiren.service.capture_token import CaptureClaim
from shiren.service.card_capture import CardCaptureView
from shiren.service.views import SessionView
from shiren.storage.ports import UnitOfWork

T = TypeVar("T")
MAX_CARD_PHOTO_BYTES = 6 * 1024 * 1024
"""A phone photo of one side of the card, as the page sends it (JPEG, at most 2,048 px)."""


def invalid_link() -> StateError:
    return StateError("capture link is not valid", code=ErrorCode.CAPTURE_TOKEN_INVALID)


def active_tenant(service: ShirenService, claim: CaptureClaim) -> Tenant:
    """The claim's tenant while active; ``capture.token_invalid`` otherwise."""
    with service.store() as uow:
        tenant = uow.tenants.get(claim.tenant_id)
    if tenant is None or tenant.status.value != "active":
        raise invalid_link()
    return tenant


def opened(read: Callable[[], T]) -> T:
    """What a link opens; a missing record reads as an invalid link (ids leak nothing)."""
    try:
        return read()
    except StateError as exc:
        if exc.code is ErrorCode.RECORD_NOT_FOUND:
            raise invalid_link() from None
        raise


class CardStep:
    """Token-authorised use cases of the card step (see the module docstring)."""

    def __init__(
        self,
        service: ShirenService,
        *,
        claim: Callable[[str], CaptureClaim],
        key: bytes,
        throttle: Callable[[str], float],
        session_receipt: Callable[[str], str],
    ) -> None:
        self.service = service
        self._claim = claim
        self._key = key
        self._throttle = throttle
        self._session_receipt = session_receipt

    # -- access --------------------------------------------------------------------------

    def is_card(self, token: str) -> bool:
        return self._claim(token).kind == "card"

    def _open(self, token: str) -> tuple[Tenant, CardCaptureView]:
        claim = self._claim(token)
        if claim.kind != "card":
            raise invalid_link()
        tenant = active_tenant(self.service, claim)
        return tenant, opened(lambda: self.service.card_captures.get(tenant, claim.session_id))

    def receipt(self, capture_id: str) -> str:
        msg = f"consent|card|{capture_id}|{texts.CARD_CONSENT_VERSION}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]

    def _require_consent(self, capture_id: str, receipt: str | None) -> None:
        if not receipt or not hmac.compare_digest(self.receipt(capture_id), receipt):
            raise StateError(
                "consent to face processing is required first",
                code=ErrorCode.CAPTURE_CONSENT_REQUIRED,
            )

    def _require_open(self, view: CardCaptureView) -> None:
        if view.status is CardCaptureStatus.ENROLLED:
            raise StateError(
                "the card was already read for this capture", code=ErrorCode.SESSION_ALREADY_USED
            )
        if view.status is CardCaptureStatus.EXPIRED:
            raise StateError("capture link has expired", code=ErrorCode.CAPTURE_TOKEN_EXPIRED)

    # -- what the page shows ---------------------------------------------------------------

    def info(self, token: str, lang: str, alternatives: list[dict[str, str]]) -> dict[str, Any]:
        tenant, view = self._open(token)
        c = view.capture
        days = c.consent_retention_days
        shown = texts.consent_texts(tenant.name, days, id_card=True)
        status = {"open": "open", "enrolled": "used", "expired": "expired"}[view.status.value]
        return {
            "status": status,
            "purpose": "enrol",
            "level": "normal",
            "locale": lang,
            "expires_at": c.expires_at.isoformat(),
            "nonce": None,
            "challenge": None,
            "result_ready": False,
            "lender": tenant.name,
            "consent": {
                "version": texts.CARD_CONSENT_VERSION,
                "retention_days": days,
                "texts": shown,
                "sha256": {lang_: texts.consent_sha256(t) for lang_, t in shown.items()},
            },
            "alternatives": alternatives,
            "step": "id_card",
            "back_required": c.back_required,
            "next_capture_path": self._next_path(tenant, view),
        }

    def _next_path(self, tenant: Tenant, view: CardCaptureView) -> str | None:
        """Once enrolled: the selfie session's page while that session is open (a reload of
        the card link lands on the selfie)."""
        session_id = view.capture.session_id
        if view.status is not CardCaptureStatus.ENROLLED or session_id is None:
            return None
        session = self.service.get_session(tenant, session_id)
        if session.capture_token is None or session.session.status.value != "open":
            return None
        return f"/capture/{session.capture_token}"

    def consent(self, token: str, *, lang: str, accepted: bool) -> dict[str, Any]:
        tenant, view = self._open(token)
        self._require_open(view)
        c = view.capture
        kind = "capture.consent_accepted" if accepted else "capture.consent_declined"
        with self.service.store() as uow:
            self.service.journal.audit(
                uow,
                tenant.id,
                kind,
                None,
                {"card_capture_id": c.id, "version": texts.CARD_CONSENT_VERSION, "lang": lang},
                self.service.clock(),
            )
            uow.commit()
        if not accepted:
            return {"accepted": False}
        return {"accepted": True, "receipt": self.receipt(c.id)}

    # -- the card ----------------------------------------------------------------------------

    def guide(self, token: str, *, receipt: str | None, image: bytes, lang: str) -> dict[str, Any]:
        """Framing guidance on one small frame: the codes, their texts, the first tip."""
        _, view = self._open(token)
        self._require_consent(view.capture.id, receipt)
        self._require_open(view)
        if not image:
            raise InputError("no image was sent", code=ErrorCode.IMAGE_EMPTY)
        wait = self._throttle(view.capture.id)
        if wait > 0:
            raise StateError(
                "too many guidance requests",
                code=ErrorCode.CAPTURE_RATE_LIMITED,
                detail={"retry_after_s": round(wait, 2)},
            )
        pixels = decode_image(image, CARD_LIMITS).pixels
        codes = guide(pixels)
        return {
            "passed": not codes,
            "reasons": [{"code": c, "message": message(c, lang)} for c in codes],
            "tip": message(codes[0], lang) if codes else None,
        }

    def submit(
        self,
        token: str,
        *,
        receipt: str | None,
        front: bytes,
        back: bytes | None,
        lang: str,
        client: str = "",
    ) -> dict[str, Any]:
        """Send the card; on success the selfie session's token and a receipt for it."""
        tenant, view = self._open(token)
        c = view.capture
        self._require_consent(c.id, receipt)
        self._require_open(view)
        lang = lang if lang in texts.LANGS else "zh-CN"
        shown = texts.consent_texts(tenant.name, c.consent_retention_days, id_card=True)[lang]

        def record_consent(uow: UnitOfWork, subject: Subject, session: SessionView) -> None:
            row = Consent(
                id=new_id(),
                tenant_id=tenant.id,
                subject_id=subject.id,
                purpose=texts.CONSENT_PURPOSE,
                version=texts.CARD_CONSENT_VERSION,
                text_sha256=texts.consent_sha256(shown),
                retention_days=c.consent_retention_days,
                granted_at=self.service.clock(),
                client=hashlib.sha256(client.encode()).hexdigest()[:16] if client else "",
            )
            uow.consents.add(row)

        try:
            done = self.service.card_captures.submit(
                tenant, c.id, front=front, back=back, also=record_consent
            )
        except InputError as exc:
            raise _with_tips(exc, lang) from None
        session = done.session
        assert session.capture_token is not None
        return {
            "capture_token": session.capture_token,
            "capture_path": f"/capture/{session.capture_token}",
            "receipt": self._session_receipt(session.session.id),
            "sides": done.card.audit()["sides"],
            "id_number_masked": done.card.summary()["id_number_masked"],
            "review": bool(done.card.review),
        }


def _with_tips(exc: InputError, lang: str) -> InputError:
    """The same error with ``tips``: the texts of its guidance or failed-check codes."""
    codes = list(exc.detail.get("guidance", [])) + list(exc.detail.get("checks", []))
    tips = []
    for code in codes:
        try:
            tips.append(message(str(code), lang))
        except KeyError:
            continue
    return InputError(exc.message, code=exc.code, detail={**exc.detail, "tips": tips})


__all__ = ["MAX_CARD_PHOTO_BYTES", "CardStep", "active_tenant", "invalid_link", "opened"]
