"""``POST /v1/enrolments/id-card``: enrol a subject from the borrower's resident ID card.

The card's front (and back, for the expiry) replaces the reference photo: the service reads and
checks it (:mod:`shiren.service.id_cards`), takes its portrait as the reference, and answers with
the fields read (the ID number masked), every check's outcome and the review signals raised.
A card that cannot be read is 400 ``input.idcard_unreadable`` (with the guidance codes); one that
fails a check no honest card fails is 400 ``input.idcard_rejected`` (naming the checks).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, JsonValue

from shiren.api.deps import ClientIpDep, OriginDep, ServiceDep, TenantDep
from shiren.api.models import (
    ID_PATTERN,
    PRINTABLE,
    PRINTABLE_NOT_BLANK,
    Out,
    SessionOut,
    Strict,
    SubjectRef,
    link,
    with_capture_urls,
)
from shiren.api.parsing import decode_base64, decode_optional
from shiren.api.problems import documented
from shiren.api.routes.subjects import ConsentBody
from shiren.service.app import ConsentIn
from shiren.service.settings import DEFAULT_MAX_BODY_BYTES

router = APIRouter(tags=["subjects"])  # its own path: /v1/subjects/{id} takes any segment
_IMAGE: dict[str, JsonValue] = {"contentEncoding": "base64", "contentMediaType": "image/*"}


class CardEnrolBody(Strict):
    """Enrolment from the ID card: its photos replace the reference photo, its name and number
    the typed ones (send them too and they must agree with the card)."""

    external_ref: str = Field(
        min_length=1, max_length=128, json_schema_extra={"pattern": PRINTABLE}
    )
    consent: ConsentBody
    id_card_front: str = Field(
        max_length=DEFAULT_MAX_BODY_BYTES // 2,
        description="Base64 of a phone photo of the card's front (the portrait side)",
        json_schema_extra=_IMAGE,
    )
    id_card_back: str | None = Field(
        default=None,
        max_length=DEFAULT_MAX_BODY_BYTES // 2,
        description="Base64 of a photo of the back (issuing authority, validity): checks expiry",
        json_schema_extra=_IMAGE,
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The name the lender holds (a different name on the card: manual review)",
        json_schema_extra={"pattern": PRINTABLE_NOT_BLANK},
    )
    id_number: str | None = Field(
        default=None,
        min_length=15,
        max_length=18,
        description="The ID number the lender holds (a different one on the card: refused)",
    )
    device_id: str | None = Field(default=None, min_length=1, max_length=128)


class CardField(Out):
    value: str
    confidence: float


class CardCheckOut(Out):
    code: str
    passed: bool | None = Field(description="None: not applicable (e.g. expiry without a back)")
    side: Literal["front", "back"] = Field(description="The side of the card it was made on")


class IdCardOut(Out):
    """What was read from the card (the ID number only masked) and how it was judged."""

    sides: list[str]
    fields: dict[str, CardField] = Field(description="Field name → value read, confidence")
    id_number_masked: str
    checks: list[CardCheckOut]
    review_signals: list[str] = Field(description="Codes that send the enrolment to review")
    portrait_found: bool


class CardEnrolOut(Out):
    subject: SubjectRef
    session: SessionOut
    id_card: IdCardOut


_BY_SESSION = {"session_id": "$response.body#/session/id"}
CARD_ENROLLED = {
    "description": "The subject, its enrolment session and what the card said",
    "links": {
        "GetSession": link("get_session", "The enrolment session", **_BY_SESSION),
        "SubmitFrames": link("submit_frames", "Answer the challenge", **_BY_SESSION),
        "ExportSubject": link(
            "export_subject", "What is held", subject_id="$response.body#/subject/id"
        ),
    },
}


@router.post(
    "/v1/enrolments/id-card",
    status_code=201,
    response_model=CardEnrolOut,
    operation_id="enrol_with_id_card",
    responses={201: CARD_ENROLLED, **documented(400, 409)},
)
async def enrol_with_id_card(
    body: CardEnrolBody,
    tenant: TenantDep,
    service: ServiceDep,
    origin: OriginDep,
    client_ip: ClientIpDep,
) -> CardEnrolOut:
    """Enrol a subject from the borrower's ID card (front, and back for the expiry) and open
    the enrolment capture session; the card's portrait is the reference."""
    front = decode_base64(body.id_card_front, "id_card_front")
    back = decode_optional(body.id_card_back, "id_card_back")
    subject, view, card = await run_in_threadpool(
        lambda: service.enrol_with_card(
            tenant,
            external_ref=body.external_ref,
            consent=ConsentIn(**body.consent.model_dump()),
            id_card_front=front,
            id_card_back=back,
            name=body.name,
            id_number=body.id_number,
            device_id=body.device_id,
            client_ip=client_ip,
        )
    )
    ref = {"id": subject.id, "external_ref": subject.external_ref, "status": subject.status}
    out = {"subject": ref, "session": view.to_dict(), "id_card": card.summary()}
    return CardEnrolOut.model_validate(with_capture_urls(out, origin))


class CardCaptureBody(Strict):
    """Start an enrolment on the borrower's phone with the ID card (no photo of it here): the
    page photographs the card, the card enrols the subject, the page goes on to the selfie."""

    external_ref: str = Field(
        min_length=1, max_length=128, json_schema_extra={"pattern": PRINTABLE}
    )
    consent: ConsentBody
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The name the lender holds (kept only as a keyed digest; a different name "
        "on the card: manual review)",
        json_schema_extra={"pattern": PRINTABLE_NOT_BLANK},
    )
    id_number: str | None = Field(
        default=None,
        min_length=15,
        max_length=18,
        description="The ID number the lender holds (kept only as a keyed pseudonym; a "
        "different one on the card: refused)",
    )
    back_required: bool = Field(
        default=True, description="Ask for the back too (the expiry is checked only with it)"
    )
    device_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The lender's identifier of the applicant's device (anti-fraud)",
        json_schema_extra={"pattern": PRINTABLE},
    )


class CardCaptureOut(Out):
    """A card capture: ``open`` until the card enrols the subject (``enrolled``: see
    ``subject_id`` and the selfie ``session_id``) or it expires."""

    id: str
    external_ref: str
    status: Literal["open", "enrolled", "expired"]
    back_required: bool
    expires_at: str
    card_reads: int = Field(description="Card photos sent so far (each read costs an OCR pass)")
    subject_id: str | None
    session_id: str | None
    capture_token: str | None = Field(description="Opens the capture page while open")
    capture_url: str | None = Field(default=None, description="Send this to the borrower")
    checks: list[CardCheckOut] | None = Field(
        description="Once enrolled: each check the card went through (codes, no value read)"
    )


CardCaptureId = Annotated[
    str,
    Path(
        description="The card capture's id: 32 lower-case hex (anything else: 404)",
        json_schema_extra={"pattern": ID_PATTERN},
    ),
]


@router.post(
    "/v1/enrolments/id-card/captures",
    status_code=201,
    response_model=CardCaptureOut,
    operation_id="open_card_capture",
    responses=documented(400, 409),
)
async def open_card_capture(
    body: CardCaptureBody, tenant: TenantDep, service: ServiceDep, origin: OriginDep
) -> CardCaptureOut:
    """Open a card capture and get the ``capture_url`` to send the borrower: their phone
    photographs the ID card, which enrols them, and then takes the selfie."""
    view = await run_in_threadpool(
        lambda: service.card_captures.open(
            tenant,
            external_ref=body.external_ref,
            consent=ConsentIn(**body.consent.model_dump()),
            name=body.name,
            id_number=body.id_number,
            back_required=body.back_required,
            device_id=body.device_id,
        )
    )
    return CardCaptureOut.model_validate(with_capture_urls(view.to_dict(), origin))


@router.get(
    "/v1/enrolments/id-card/captures/{capture_id}",
    response_model=CardCaptureOut,
    operation_id="get_card_capture",
    responses=documented(404),
)
async def get_card_capture(
    capture_id: CardCaptureId, tenant: TenantDep, service: ServiceDep, origin: OriginDep
) -> CardCaptureOut:
    """A card capture's status; once ``enrolled``, its subject and selfie session."""
    view = await run_in_threadpool(service.card_captures.get, tenant, capture_id)
    return CardCaptureOut.model_validate(with_capture_urls(view.to_dict(), origin))


__all__ = ["router"]
