"""``/v1/subjects``: enrol a subject, erase it, export what is held about it, withdraw its
consent to face processing (PIPL art. 15)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import ClientIpDep, OriginDep, ServiceDep, TenantDep
from shiren.api.models import (
    PRINTABLE,
    PRINTABLE_NOT_BLANK,
    CheckOut,
    FallbackOut,
    Integer,
    Out,
    SessionOut,
    Strict,
    SubjectId,
    SubjectRef,
    link,
    with_capture_urls,
)
from shiren.api.parsing import decode_base64, json_or_multipart, request_body
from shiren.api.problems import documented
from shiren.domain.entities import ReferenceKind, StepUpDecided, SubjectStatus
from shiren.errors import ErrorCode, InputError
from shiren.service.app import ConsentIn
from shiren.service.settings import DEFAULT_MAX_BODY_BYTES

router = APIRouter(tags=["subjects"])


class ConsentBody(Strict):
    """The consent the lender collected (the hash of the exact text the applicant accepted)."""

    purpose: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": PRINTABLE})
    version: str = Field(min_length=1, max_length=32, json_schema_extra={"pattern": PRINTABLE})
    text_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    retention_days: Integer = Field(ge=1, le=3650)


class EnrolBody(Strict):
    """Enrolment.  ``reference_image``: base64 of the reference photo (JSON requests); in a
    multipart request it is a file part and this JSON goes in the ``meta`` part."""

    external_ref: str = Field(
        min_length=1, max_length=128, json_schema_extra={"pattern": PRINTABLE}
    )
    name: str = Field(
        min_length=1, max_length=64, json_schema_extra={"pattern": PRINTABLE_NOT_BLANK}
    )
    id_number: str = Field(
        min_length=15,
        max_length=18,
        description="A resident ID number (GB 11643: 18 characters with its check character, "
        "or a legacy 15-digit one); a wrong check character is 400 input.id_number_invalid",
    )
    consent: ConsentBody
    reference_kind: Literal["id_card", "authority", "upload"] = "id_card"
    reference_image: str | None = Field(
        default=None,
        max_length=DEFAULT_MAX_BODY_BYTES,
        description="Base64 of a JPEG/PNG/WebP/BMP photo with one face (JSON requests)",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "image/*"},
    )
    device_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The lender's identifier of the applicant's device (anti-fraud: many "
        "subjects enrolled from one device); stored only as a keyed hash.",
    )


class EnrolJson(EnrolBody):
    """Enrolment as a JSON request: the reference photo is in it (base64)."""

    reference_image: str = Field(
        max_length=DEFAULT_MAX_BODY_BYTES,
        description="Base64 of a JPEG/PNG/WebP/BMP photo with one face",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "image/*"},
    )


class WithdrawBody(Strict):
    purpose: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": PRINTABLE})
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="Only this version of the purpose's consent (default: every version).",
        json_schema_extra={"pattern": PRINTABLE},
    )


class EnrolOut(Out):
    subject: SubjectRef
    session: SessionOut


class Deleted(Out):
    templates: int
    references: int
    evidence: int


class ErasedOut(Out):
    subject_id: str
    status: SubjectStatus
    erased_at: str
    deleted: Deleted


class SubjectRecord(Out):
    id: str
    external_ref: str
    status: SubjectStatus
    name: str | None
    id_number_masked: str | None
    created_at: str
    erased_at: str | None


class ConsentRecord(Out):
    id: str
    purpose: str
    version: str
    text_sha256: str
    retention_days: int
    granted_at: str
    withdrawn_at: str | None


class EventRecord(Out):
    id: str
    type: str
    amount_minor: int
    currency: str
    decided: StepUpDecided
    created_at: str


class TemplateRecord(Out):
    id: str
    embedder: str
    created_at: str
    expires_at: str | None


class ReferenceRecord(Out):
    id: str
    kind: ReferenceKind
    created_at: str


class PayoutRecord(Out):
    id: str
    event_id: str | None
    decision: str
    reasons: list[str]
    mismatched: list[str]
    card: str
    created_at: str


class ExportOut(Out):
    """Everything held about a subject: no templates, no images; the ID number masked."""

    subject: SubjectRecord
    consents: list[ConsentRecord]
    events: list[EventRecord]
    checks: list[CheckOut]
    templates: list[TemplateRecord]
    references: list[ReferenceRecord]
    fallbacks: list[FallbackOut]
    payout_checks: list[PayoutRecord]


class WithdrawnConsent(Out):
    id: str
    purpose: str
    version: str
    withdrawn_at: str | None


class WithdrawnOut(Out):
    subject_id: str
    already_withdrawn: bool
    consents: list[WithdrawnConsent]
    face_data_deleted: bool | None = Field(default=None, description="Absent when already")
    sessions_expired: int | None = Field(default=None, description="Absent when already")
    deleted: dict[str, int] | None = Field(default=None, description="Rows deleted, by kind")


_BY_SUBJECT = {"subject_id": "$response.body#/subject/id"}
_BY_SESSION = {"session_id": "$response.body#/session/id"}
ENROLLED = {
    "description": "The subject and its enrolment session (answer it with the frames)",
    "links": {
        "GetSession": link("get_session", "The enrolment session", **_BY_SESSION),
        "SubmitFrames": link("submit_frames", "Answer the challenge", **_BY_SESSION),
        "ExportSubject": link("export_subject", "What is held", **_BY_SUBJECT),
        "EraseSubject": link("erase_subject", "Erase it", **_BY_SUBJECT),
    },
}


async def _enrolment(request: Request) -> tuple[EnrolBody, bytes]:
    """The enrolment body and its reference image, from JSON (base64) or multipart."""
    body, image = await json_or_multipart(request, EnrolBody, file_field="reference_image")
    if body.reference_image is not None:
        image = decode_base64(body.reference_image, "reference_image")
    if not image:
        raise InputError(
            "a reference image is required",
            code=ErrorCode.IMAGE_EMPTY,
            detail={"field": "reference_image"},
        )
    return body, image


@router.post(
    "/v1/subjects",
    status_code=201,
    response_model=EnrolOut,
    response_model_exclude_unset=True,
    operation_id="enrol",
    responses={201: ENROLLED, **documented(400, 409)},
    openapi_extra=request_body(EnrolBody, {"reference_image": "one"}, json=EnrolJson),
)
async def enrol(
    request: Request,
    tenant: TenantDep,
    service: ServiceDep,
    origin: OriginDep,
    client_ip: ClientIpDep,
) -> EnrolOut:
    """Enrol a subject (name, ID number, consent, reference photo) and open the enrolment
    capture session; the face is bound when that session passes."""
    body, image = await _enrolment(request)
    subject, view = await run_in_threadpool(
        lambda: service.enrol(
            tenant,
            external_ref=body.external_ref,
            name=body.name,
            id_number=body.id_number,
            consent=ConsentIn(**body.consent.model_dump()),
            reference_image=image,
            reference_kind=body.reference_kind,
            device_id=body.device_id,  # issue 6: fraud.device_many_faces, velocity
            client_ip=client_ip,  # issue 6: velocity
        )
    )
    ref = {"id": subject.id, "external_ref": subject.external_ref, "status": subject.status}
    out = {"subject": ref, "session": view.to_dict()}
    return EnrolOut.model_validate(with_capture_urls(out, origin))


@router.delete(
    "/v1/subjects/{subject_id}",
    response_model=ErasedOut,
    operation_id="erase_subject",
    responses=documented(404),
)
async def erase(subject_id: SubjectId, tenant: TenantDep, service: ServiceDep) -> ErasedOut:
    """Erase a subject's biometrics and identity data (audited; idempotent)."""
    erased = await run_in_threadpool(service.erase_subject, tenant, subject_id)
    return ErasedOut.model_validate(erased)


@router.get(
    "/v1/subjects/{subject_id}/export",
    response_model=ExportOut,
    operation_id="export_subject",
    responses=documented(404),
)
async def export(subject_id: SubjectId, tenant: TenantDep, service: ServiceDep) -> ExportOut:
    """Everything held about a subject (no templates, no images; ID number masked)."""
    held = await run_in_threadpool(service.export_subject, tenant, subject_id)
    return ExportOut.model_validate(held)


@router.post(
    "/v1/subjects/{subject_id}/consents/withdraw",
    response_model=WithdrawnOut,
    response_model_exclude_unset=True,
    operation_id="withdraw_consent",
    responses=documented(400, 404),
)
async def withdraw(
    subject_id: SubjectId, body: WithdrawBody, tenant: TenantDep, service: ServiceDep
) -> WithdrawnOut:
    """Withdraw consent to face processing (PIPL art. 15): the subject's face data is
    deleted and open sessions expire; later step-ups fall back to non-face methods
    (``consent.withdrawn``).  Idempotent; audited; announced by webhook."""
    done = await run_in_threadpool(
        lambda: service.withdraw_consent(
            tenant, subject_id, purpose=body.purpose, version=body.version
        )
    )
    return WithdrawnOut.model_validate(done)


__all__ = ["ConsentBody", "EnrolBody", "router"]
