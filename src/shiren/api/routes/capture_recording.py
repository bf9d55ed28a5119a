"""The capture page's record-and-upload fallback (issue 17).

See :mod:`shiren.service.capture_recording`.

``POST /v1/capture/{token}/recording/open`` switches an open, unused session to a ``recorded``
one (the answer: its link, receipt, nonce and the actions to film, in order);
``POST /v1/capture/{token}/recording`` uploads the video (multipart: ``nonce`` and ``video``).
Private like every capture route (no cache, no referrer); typed errors, never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import CaptureDep, CaptureLangDep
from shiren.api.models import Out
from shiren.api.parsing import recording_input
from shiren.api.problems import documented
from shiren.api.routes.capture import CaptureResult, PrivateRoute, Receipt
from shiren.liveness.challenge import Variant
from shiren.liveness.recorded import MAX_RECORDING_BYTES

router = APIRouter(tags=["capture"], route_class=PrivateRoute)


class RecordingOpened(Out):
    """The recorded session: film ``actions`` in this order, then upload with ``nonce``."""

    capture_token: str
    capture_path: str
    receipt: str = Field(description="The recorded session's consent receipt (consent carries)")
    nonce: str
    actions: list[str]
    max_seconds: int = Field(description="What the page asks the borrower for")
    max_bytes: int
    server_max_seconds: int = Field(description="Longer recordings are refused")


_VIDEO = {"type": "string", "format": "binary", "description": "MP4, MOV or WebM"}
RECORDING_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"The recording (at most {MAX_RECORDING_BYTES // (1024 * 1024)} MiB)",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "nonce": {"type": "string", "pattern": "^[A-Za-z0-9]{16,128}$"},
                        "video": _VIDEO,
                    },
                    "required": ["nonce", "video"],
                    "additionalProperties": False,
                }
            }
        },
    }
}


@router.post(
    "/v1/capture/{token}/recording/open",
    response_model=RecordingOpened,
    operation_id="capture_recording_open",
    responses=documented(403, 404, 409, 410),
)
async def open_recording(
    token: str, capture: CaptureDep, receipt: Receipt = None
) -> RecordingOpened:
    """Switch to recording: 409 ``capture.recording_not_allowed`` when the session is used or
    the level forbids it; idempotent."""
    opened = await run_in_threadpool(lambda: capture.recordings.open(token, receipt=receipt))
    return RecordingOpened.model_validate(opened)


@router.post(
    "/v1/capture/{token}/read-digits/open",
    response_model=RecordingOpened,
    operation_id="capture_read_digits_open",
    responses=documented(403, 404, 409, 410),
)
async def open_read_digits(
    token: str, capture: CaptureDep, receipt: Receipt = None
) -> RecordingOpened:
    """Switch to reading the digits aloud (issue 18; where the level allows it): the new
    session's challenge carries the digit schedule; answer with ``/recording`` (sound on)."""
    opened = await run_in_threadpool(
        lambda: capture.recordings.open(token, receipt=receipt, variant=Variant.READ_DIGITS)
    )
    return RecordingOpened.model_validate(opened)


@router.post(
    "/v1/capture/{token}/recording",
    response_model=CaptureResult,
    response_model_exclude_unset=True,
    operation_id="capture_recording",
    responses=documented(400, 403, 404, 409, 410, 413),
    openapi_extra=RECORDING_BODY,
)
async def recording(
    request: Request, token: str, capture: CaptureDep, lang: CaptureLangDep, receipt: Receipt = None
) -> CaptureResult:
    """Upload the recording (single use, as a frames upload is)."""
    capture.claim(token)  # refuse a bad link before reading a large body
    nonce, data, spoken = await recording_input(request, MAX_RECORDING_BYTES)
    result = await run_in_threadpool(
        lambda: capture.recordings.submit(
            token, receipt=receipt, nonce=nonce, data=data, lang=lang, spoken=spoken
        )
    )
    return CaptureResult.model_validate(result)


__all__ = ["router"]
