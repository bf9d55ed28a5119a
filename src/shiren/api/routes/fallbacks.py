"""The non-face path of a lending event (issue 6): open a case, send and verify an SMS code,
the bank-card 4-element check, the authority check, a reviewer's decision.

A verdict (a wrong code, a card mismatch) is a 200 with the verdict in the body, not an error.
The use cases are :class:`~shiren.service.fallback.FallbackService`'s.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import FallbacksDep, TenantDep
from shiren.api.models import EventId, FallbackId, FallbackOut, Out, Strict, link
from shiren.api.parsing import decode_optional
from shiren.api.problems import documented
from shiren.domain.fallback import FallbackStatus

router = APIRouter(tags=["fallbacks"])

MAX_PHOTO_B64 = 8 * 1024 * 1024
PHONE_PATTERN = "^[ -]*(?:\\+[ -]*8[ -]*6[ -]*|8[ -]*6[ -]*)?1[ -]*[3-9](?:[ -]*[0-9]){9}[ -]*$"
"""An 11-digit mainland mobile number (``1[3-9]…``), optionally ``+86``/``86`` first, spaces
and dashes anywhere (what ``shiren.connectors.types.normalise_phone`` accepts)."""
CARD_PATTERN = "^[ -]*(?:[0-9][ -]*){12,19}$"
"""12-19 digits, spaces and dashes anywhere; the Luhn check digit is checked too (400
``input.card_number_invalid``)."""


Phone = Annotated[
    str,
    Field(
        min_length=11,
        max_length=20,
        description="A mainland mobile number (another value: 400 input.phone_invalid)",
        json_schema_extra={"pattern": PHONE_PATTERN},
    ),
]
CardNumber = Annotated[
    str,
    Field(
        min_length=12,
        max_length=32,
        description="A bank card number with its Luhn check digit (else 400 "
        "input.card_number_invalid)",
        json_schema_extra={"pattern": CARD_PATTERN},
    ),
]


class StartBody(Strict):
    phone: Phone
    refuse_face: bool = Field(
        default=False, description="The user refuses face processing: straight to this path."
    )


class CodeBody(Strict):
    code: str = Field(min_length=1, max_length=16)


class CardBody(Strict):
    card_number: CardNumber


class AuthorityBody(Strict):
    photo: str | None = Field(
        default=None,
        max_length=MAX_PHOTO_B64,
        description="Base64 of a photo of the person (optional)",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "image/*"},
    )


class FallbackReviewBody(Strict):
    outcome: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


class FallbackListOut(Out):
    fallbacks: list[FallbackOut]


class SentOut(FallbackOut):
    code_expires_at: str | None
    sandbox_code: str | None = Field(default=None, description="SANDBOX connectors only")


class VerifiedOut(FallbackOut):
    verified: bool
    attempts_left: int | None


class CardResult(Out):
    result: str
    mismatched: list[str]
    card: str
    sandbox: bool


class CardOut(FallbackOut):
    bank_card: CardResult


class AuthorityResult(Out):
    result: str
    photo_match: bool | None
    sandbox: bool


class AuthorityOut(FallbackOut):
    authority: AuthorityResult


_CASE = {"flow_id": "$response.body#/id"}
OPENED = {
    "description": "The case (an open case of the event comes back as it is)",
    "links": {
        "GetFallback": link("get_fallback", "The case", **_CASE),
        "SendCode": link("send_code", "Send the SMS code", **_CASE),
        "SubmitBankCard": link("submit_bank_card", "The 4-element check", **_CASE),
        "SubmitAuthority": link("submit_authority", "The authority check", **_CASE),
    },
}
StatusQuery = Annotated[
    str,
    Query(
        description="Cases in this status (another value: 400 input.invalid)",
        json_schema_extra={"enum": [s.value for s in FallbackStatus]},
    ),
]


@router.post(
    "/v1/events/{event_id}/fallback",
    status_code=201,
    response_model=FallbackOut,
    operation_id="start_fallback",
    responses={201: OPENED, **documented(400, 404, 409)},
)
async def start(
    event_id: EventId, body: StartBody, tenant: TenantDep, fallbacks: FallbacksDep
) -> FallbackOut:
    """Open the non-face path for a lending event (after failed face checks, a lock-out,
    or a refusal of face processing); an open case of the event is returned as it is."""
    view = await run_in_threadpool(
        lambda: fallbacks.start(tenant, event_id, phone=body.phone, refuse_face=body.refuse_face)
    )
    return FallbackOut.model_validate(view)


@router.get(
    "/v1/fallbacks/{flow_id}",
    response_model=FallbackOut,
    operation_id="get_fallback",
    responses=documented(404),
)
async def get(flow_id: FallbackId, tenant: TenantDep, fallbacks: FallbacksDep) -> FallbackOut:
    """A case's state: steps, masked phone, reasons with tips."""
    return FallbackOut.model_validate(await run_in_threadpool(fallbacks.get, tenant, flow_id))


@router.get(
    "/v1/fallbacks",
    response_model=FallbackListOut,
    operation_id="list_fallbacks",
    responses=documented(400),
)
async def list_(
    tenant: TenantDep, fallbacks: FallbacksDep, status: StatusQuery = "review"
) -> FallbackListOut:
    """The tenant's cases in a status (default: waiting for a reviewer)."""
    found = await run_in_threadpool(lambda: fallbacks.list(tenant, status))
    return FallbackListOut.model_validate({"fallbacks": found})


@router.post(
    "/v1/fallbacks/{flow_id}/sms",
    response_model=SentOut,
    response_model_exclude_unset=True,
    operation_id="send_code",
    responses=documented(400, 404, 409, 410, 429),
)
async def send(flow_id: FallbackId, tenant: TenantDep, fallbacks: FallbacksDep) -> SentOut:
    """Send a one-time code to the case's phone (60 s cool-down, 3 sends)."""
    return SentOut.model_validate(await run_in_threadpool(fallbacks.send_code, tenant, flow_id))


@router.post(
    "/v1/fallbacks/{flow_id}/sms/verify",
    response_model=VerifiedOut,
    operation_id="verify_code",
    responses=documented(400, 404, 409, 410),
)
async def verify(
    flow_id: FallbackId, body: CodeBody, tenant: TenantDep, fallbacks: FallbacksDep
) -> VerifiedOut:
    """Check the code the user typed (a wrong code is a 200 with ``verified: false``)."""
    done = await run_in_threadpool(fallbacks.verify_code, tenant, flow_id, body.code)
    return VerifiedOut.model_validate(done)


@router.post(
    "/v1/fallbacks/{flow_id}/bank-card",
    response_model=CardOut,
    operation_id="submit_bank_card",
    responses=documented(400, 404, 409, 410),
)
async def bank_card(
    flow_id: FallbackId, body: CardBody, tenant: TenantDep, fallbacks: FallbacksDep
) -> CardOut:
    """The bank-card 4-element check (the subject's name and ID number, this card, the
    case's phone)."""
    done = await run_in_threadpool(fallbacks.submit_bank_card, tenant, flow_id, body.card_number)
    return CardOut.model_validate(done)


@router.post(
    "/v1/fallbacks/{flow_id}/authority",
    response_model=AuthorityOut,
    operation_id="submit_authority",
    responses=documented(400, 404, 409, 410),
)
async def authority(
    flow_id: FallbackId, body: AuthorityBody, tenant: TenantDep, fallbacks: FallbacksDep
) -> AuthorityOut:
    """Name + ID number (and optionally the photo) against the identity authority."""
    photo = decode_optional(body.photo, "photo")
    done = await run_in_threadpool(fallbacks.submit_authority, tenant, flow_id, photo)
    return AuthorityOut.model_validate(done)


@router.post(
    "/v1/fallbacks/{flow_id}/review",
    response_model=FallbackOut,
    operation_id="decide_fallback",
    responses=documented(400, 404, 409),
)
async def review(
    flow_id: FallbackId, body: FallbackReviewBody, tenant: TenantDep, fallbacks: FallbacksDep
) -> FallbackOut:
    """A reviewer closes an exhausted case: approve or reject (once)."""
    done = await run_in_threadpool(
        lambda: fallbacks.decide_review(
            tenant, flow_id, outcome=body.outcome, reviewer=body.reviewer, note=body.note
        )
    )
    return FallbackOut.model_validate(done)


__all__ = ["CardNumber", "Phone", "router"]
