"""The borrower's routes: the capture page and its token-authorised API (no lender key).

``GET /capture/{token}`` serves the page (plain HTML/CSS/ES modules from ``static/capture``);
``/v1/capture/{token}`` and its sub-resources are what the page calls (see
:mod:`shiren.service.capture`).  A bad, forged or expired token is a problem+json 404/410 with a
stable code, never a 500.  Every response carries ``Cache-Control: no-store`` and
``Referrer-Policy: no-referrer`` (the token is in the path: it must not leak to a third party
through a Referer header or a shared cache), and the page a strict Content-Security-Policy.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import segno
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from shiren.api.deps import CaptureDep, CaptureLangDep, OriginDep
from shiren.api.models import ChallengeOut, Out, Strict, Tip
from shiren.api.parsing import FramesMeta, card_input, frames_input, request_body
from shiren.api.problems import documented, error_response, status_of
from shiren.domain.entities import SessionPurpose, SessionStatus
from shiren.errors import ErrorCode, InputError, ShirenError, StateError
from shiren.service.capture import MAX_QUALITY_BYTES
from shiren.service.capture_card import MAX_CARD_PHOTO_BYTES

PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
Receipt = Annotated[
    str | None,
    Header(
        alias="X-Shiren-Consent",
        description="The receipt of the borrower's consent (403 capture.consent_required "
        "without it)",
    ),
]


def static_dir() -> Path:
    return Path(str(resources.files("shiren.api").joinpath("static")))


class PrivateRoute(APIRoute):
    """A capture route: typed errors rendered here, and every answer private (no cache, no
    referrer)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def private(request: Request) -> Response:
            try:
                response = await handler(request)
            except ShirenError as exc:
                response = error_response(exc)
            response.headers.update(PRIVATE)
            return response

        return private


router = APIRouter(tags=["capture"], route_class=PrivateRoute)
router.mount(
    "/capture/assets", StaticFiles(directory=static_dir() / "capture"), name="capture-assets"
)


class ConsentAnswer(Strict):
    accepted: bool
    lang: str = Field(default="zh-CN", description="zh-CN or en (anything else: zh-CN)")


class Alternative(Out):
    code: str
    zh_cn: str = Field(alias="zh-CN")
    en: str


class ConsentTexts(Out):
    version: str
    retention_days: int
    texts: dict[str, dict[str, str]] = Field(
        description="The consent texts shown (title, body, …), by language"
    )
    sha256: dict[str, str] = Field(description="The SHA-256 of each text")


class RecordingOffer(Out):
    allowed: bool = Field(description="the record-and-upload fallback is offered (issue 17)")
    read_digits: bool = Field(
        default=False, description="reading the digits aloud is offered (issue 18)"
    )
    max_seconds: int
    max_bytes: int


class CaptureInfo(Out):
    """What the page needs.  A card capture's link (``step: id_card``) has no challenge yet:
    the page photographs the card first and then moves to the selfie session it opens."""

    status: SessionStatus
    purpose: SessionPurpose
    level: str
    locale: str
    expires_at: str
    nonce: str | None
    challenge: ChallengeOut | None
    result_ready: bool
    lender: str
    consent: ConsentTexts
    alternatives: list[Alternative]
    step: Literal["face", "id_card"] = "face"
    back_required: bool | None = Field(
        default=None, description="id_card step: whether the back must be photographed too"
    )
    next_capture_path: str | None = Field(
        default=None, description="id_card step, once enrolled: the selfie session's page"
    )
    recording: RecordingOffer | None = Field(
        default=None, description="face step: whether the record-and-upload fallback is offered"
    )


class ConsentReceipt(Out):
    accepted: bool
    receipt: str | None = Field(default=None, description="When accepted: send it back")
    alternatives: list[Alternative] | None = Field(default=None, description="When declined")


class QualityOut(Out):
    passed: bool
    reasons: list[Tip]
    tip: str | None


class Advice(Out):
    code: str
    symptom: str
    advice: str


class Attempts(Out):
    failed: int
    max: int


class FallbackChoice(Out):
    code: str
    label: str


class CaptureResult(Out):
    """The borrower's view of the decision; only ``status`` and ``decision: null`` until
    judged."""

    status: SessionStatus
    decision: str | None
    can_retry: bool | None = None
    tips: list[str] | None = None
    advice: list[Advice] | None = None
    attempts: Attempts | None = None
    retry_after_s: int | None = None
    fallbacks: list[FallbackChoice] | None = None


class NextAttempt(Out):
    capture_token: str
    capture_path: str
    receipt: str


@router.get("/capture/{token}", include_in_schema=False)
async def page(token: str, capture: CaptureDep) -> FileResponse:
    """The page; a link that is not valid still loads it (it explains in the borrower's
    language), with the link's status."""
    status = 200
    try:
        await run_in_threadpool(capture.claim, token)
    except ShirenError as exc:
        status = status_of(exc) if exc.code.value.startswith("capture.") else 404
    index = static_dir() / "capture" / "index.html"
    return FileResponse(
        index, status_code=status, headers={**PRIVATE, "Content-Security-Policy": CSP}
    )


@router.get("/capture/{token}/qr.svg", include_in_schema=False)
async def qr_code(token: str, capture: CaptureDep, origin: OriginDep) -> Response:
    """The page's own link as a QR code (SVG), for the desktop → phone hand-off; a link that is
    not valid is its problem+json 404/410."""
    capture.claim(token)
    out = io.BytesIO()
    segno.make(f"{origin}/capture/{token}", error="m").save(out, kind="svg", scale=5, border=2)
    return Response(
        out.getvalue(),
        media_type="image/svg+xml",
        headers={**PRIVATE, "Content-Security-Policy": "default-src 'none'"},
    )


@router.get(
    "/v1/capture/{token}",
    response_model=CaptureInfo,
    operation_id="capture_info",
    responses=documented(404, 410),
)
async def info(token: str, capture: CaptureDep, lang: CaptureLangDep) -> CaptureInfo:
    """What the page needs: status, challenge, level, consent texts, the alternatives."""
    return CaptureInfo.model_validate(await run_in_threadpool(capture.info, token, lang))


@router.post(
    "/v1/capture/{token}/consent",
    response_model=ConsentReceipt,
    response_model_exclude_unset=True,
    operation_id="capture_consent",
    responses=documented(404, 410),
)
async def consent(
    request: Request, token: str, body: ConsentAnswer, capture: CaptureDep
) -> ConsentReceipt:
    """Record the borrower's answer to the face-processing consent (audited, no PII)."""
    client = request.headers.get("user-agent", "")[:256]
    answer = await run_in_threadpool(
        lambda: capture.consent(token, lang=body.lang, accepted=body.accepted, client=client)
    )
    return ConsentReceipt.model_validate(answer)


def _frame_body(what: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose body is one small raw JPEG frame."""
    return {
        "requestBody": {
            "required": True,
            "description": f"One small JPEG frame{what} (at most {MAX_QUALITY_BYTES} bytes)",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        }
    }


async def _guidance_frame(request: Request) -> bytes:
    image = await request.body()
    if len(image) > MAX_QUALITY_BYTES:
        raise InputError("guidance frame too large", code=ErrorCode.IMAGE_TOO_LARGE)
    return image


QUALITY_BODY = _frame_body("")


@router.post(
    "/v1/capture/{token}/quality",
    response_model=QualityOut,
    operation_id="capture_quality",
    responses=documented(400, 403, 404, 409, 410, 413, 429),
    openapi_extra=QUALITY_BODY,
)
async def quality(
    request: Request, token: str, capture: CaptureDep, lang: CaptureLangDep, receipt: Receipt = None
) -> QualityOut:
    """One small JPEG frame (raw ``image/jpeg`` body) → the server's quality reasons."""
    image = await _guidance_frame(request)
    verdict = await run_in_threadpool(
        lambda: capture.quality(token, receipt=receipt, image=image, lang=lang)
    )
    return QualityOut.model_validate(verdict)


@router.post(
    "/v1/capture/{token}/frames",
    response_model=CaptureResult,
    response_model_exclude_unset=True,
    operation_id="capture_frames",
    responses=documented(400, 403, 404, 409, 410),
    openapi_extra=request_body(FramesMeta, {"frames": "many"}),
)
async def frames(
    request: Request, token: str, capture: CaptureDep, lang: CaptureLangDep, receipt: Receipt = None
) -> CaptureResult:
    """Submit the capture: multipart ``meta`` {nonce, t_ms, camera_label?} + ``frames`` (as for
    ``/v1/sessions/{id}/frames``).  Single use: a second submission is 409
    ``session.already_used`` — poll ``/result`` then."""
    capture.claim(token)  # refuse a bad link before reading a large body
    meta, blobs = await frames_input(request)
    result = await run_in_threadpool(
        lambda: capture.submit(
            token,
            receipt=receipt,
            nonce=meta.nonce,
            frames=blobs,
            times_ms=meta.t_ms,
            lang=lang,
            camera_label=meta.camera_label,
        )
    )
    return CaptureResult.model_validate(result)


@router.post(
    "/v1/capture/{token}/retry",
    response_model=NextAttempt,
    operation_id="capture_retry",
    responses=documented(403, 404, 409, 410),
)
async def retry(token: str, capture: CaptureDep, receipt: Receipt = None) -> NextAttempt:
    """After a ``retry`` decision with attempts left: the next attempt's link (idempotent);
    409 ``capture.retry_not_allowed`` otherwise."""
    attempt = await run_in_threadpool(lambda: capture.retry(token, receipt=receipt))
    return NextAttempt.model_validate(attempt)


@router.get(
    "/v1/capture/{token}/result",
    response_model=CaptureResult,
    response_model_exclude_unset=True,
    operation_id="capture_result",
    responses=documented(404, 410),
)
async def result(token: str, capture: CaptureDep, lang: CaptureLangDep) -> CaptureResult:
    """The decision as the borrower sees it (``decision: null`` until judged)."""
    return CaptureResult.model_validate(await run_in_threadpool(capture.result, token, lang))


class CardStepOut(Out):
    """The card was read and the subject enrolled: go on to the selfie session."""

    capture_token: str
    capture_path: str
    receipt: str = Field(description="The selfie session's consent receipt (consent carries)")
    sides: list[str]
    id_number_masked: str
    review: bool = Field(description="Whether the enrolment will be looked at by staff")


CARD_GUIDE_BODY = _frame_body(" of the card")
_PHOTO = {"type": "string", "format": "binary"}
CARD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The card's photos (JPEG or PNG, at most 2,048 px is read)",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"front": _PHOTO, "back": _PHOTO},
                    "required": ["front"],
                    "additionalProperties": False,
                }
            }
        },
    }
}


@router.post(
    "/v1/capture/{token}/id-card/guide",
    response_model=QualityOut,
    operation_id="capture_card_guide",
    responses=documented(400, 403, 404, 409, 410, 413, 429),
    openapi_extra=CARD_GUIDE_BODY,
)
async def card_guide(
    request: Request, token: str, capture: CaptureDep, lang: CaptureLangDep, receipt: Receipt = None
) -> QualityOut:
    """Card step: framing guidance on one small frame (cut off, too far, blurred, glare)."""
    image = await _guidance_frame(request)
    verdict = await run_in_threadpool(
        lambda: capture.cards.guide(token, receipt=receipt, image=image, lang=lang)
    )
    return QualityOut.model_validate(verdict)


@router.post(
    "/v1/capture/{token}/id-card",
    response_model=CardStepOut,
    operation_id="capture_card",
    responses=documented(400, 403, 404, 409, 410, 413, 429),
    openapi_extra=CARD_BODY,
)
async def card(
    request: Request, token: str, capture: CaptureDep, lang: CaptureLangDep, receipt: Receipt = None
) -> CardStepOut:
    """Card step: the card's front (and back) → enrolled, and the selfie session's link; a
    card that cannot be used is 400 with ``tips`` saying what to fix."""
    if not capture.cards.is_card(token):
        raise StateError("capture link is not valid", code=ErrorCode.CAPTURE_TOKEN_INVALID)
    front, back = await card_input(request, MAX_CARD_PHOTO_BYTES)
    client = request.headers.get("user-agent", "")[:256]
    done = await run_in_threadpool(
        lambda: capture.cards.submit(
            token, receipt=receipt, front=front, back=back, lang=lang, client=client
        )
    )
    return CardStepOut.model_validate(done)


__all__ = ["PRIVATE", "router", "static_dir"]
