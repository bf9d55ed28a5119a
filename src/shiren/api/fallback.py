"""HTTP routes of the non-face path and of payout ownership (issue 6).

::

    POST /v1/events/{event_id}/fallback      {phone, refuse_face?}   open (or return) the case
    GET  /v1/fallbacks/{id}                                          its state
    GET  /v1/fallbacks?status=review                                 cases in a status
    POST /v1/fallbacks/{id}/sms                                      send a code
    POST /v1/fallbacks/{id}/sms/verify       {code}
    POST /v1/fallbacks/{id}/bank-card        {card_number}           the 4-element check
    POST /v1/fallbacks/{id}/authority        {photo?: base64}        name + ID number (+ photo)
    POST /v1/fallbacks/{id}/review           {outcome, reviewer, note}
    POST /v1/subjects/{id}/payout-check      {card_number, phone, event_id?}

Thin like the rest of the API: the use cases are :class:`~shiren.service.fallback.
FallbackService` and :class:`~shiren.service.payout.PayoutService`; errors are the shared
problem+json.  A verdict (wrong code, card mismatch, payout blocked) is a 200 with the verdict in
the body, not an error.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shiren.api.app import TenantDep
from shiren.errors import InputError
from shiren.messages import negotiate_lang
from shiren.service.app import ShirenService
from shiren.service.fallback import FallbackService
from shiren.service.payout import PayoutService

MAX_PHOTO_B64 = 8 * 1024 * 1024


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(min_length=11, max_length=20)
    refuse_face: bool = False
    """The user refuses face processing: straight to the non-face path."""


class CodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=16)


class CardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_number: str = Field(min_length=12, max_length=32)


class AuthorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    photo: str | None = Field(default=None, max_length=MAX_PHOTO_B64)


class FallbackReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


class PayoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_number: str = Field(min_length=12, max_length=32)
    phone: str = Field(min_length=11, max_length=20)
    event_id: str | None = Field(default=None, min_length=1, max_length=64)


def _photo(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("photo is not valid base64", detail={"field": "photo"}) from None


def fallback_router(service: ShirenService) -> APIRouter:
    """The routes over ``service``'s storage, keys, connectors and clock."""

    def now() -> datetime:
        return service.clock()

    store, keys, connectors = service.store, service.keys, service.connectors
    fallbacks = FallbackService(store=store, keys=keys, connectors=connectors, clock=now)
    payouts = PayoutService(store=store, keys=keys, connectors=connectors, clock=now)
    router = APIRouter(tags=["fallbacks"])

    @router.post("/v1/events/{event_id}/fallback", status_code=201)
    async def start(event_id: str, body: StartBody, tenant: TenantDep) -> JSONResponse:
        """Open the non-face path for a lending event (after failed face checks, a lock-out,
        or a refusal of face processing); an open case of the event is returned as it is."""
        view = await run_in_threadpool(
            lambda: fallbacks.start(
                tenant, event_id, phone=body.phone, refuse_face=body.refuse_face
            )
        )
        return JSONResponse(view, status_code=201)

    @router.get("/v1/fallbacks/{flow_id}")
    async def get(flow_id: str, tenant: TenantDep) -> dict[str, Any]:
        return await run_in_threadpool(fallbacks.get, tenant, flow_id)

    @router.get("/v1/fallbacks")
    async def list_(tenant: TenantDep, status: str = "review") -> dict[str, Any]:
        return {"fallbacks": await run_in_threadpool(lambda: fallbacks.list(tenant, status))}

    @router.post("/v1/fallbacks/{flow_id}/sms")
    async def send(flow_id: str, tenant: TenantDep) -> dict[str, Any]:
        """Send a one-time code to the case's phone (60 s cool-down, 3 sends)."""
        return await run_in_threadpool(fallbacks.send_code, tenant, flow_id)

    @router.post("/v1/fallbacks/{flow_id}/sms/verify")
    async def verify(flow_id: str, body: CodeBody, tenant: TenantDep) -> dict[str, Any]:
        return await run_in_threadpool(fallbacks.verify_code, tenant, flow_id, body.code)

    @router.post("/v1/fallbacks/{flow_id}/bank-card")
    async def bank_card(flow_id: str, body: CardBody, tenant: TenantDep) -> dict[str, Any]:
        """The bank-card 4-element check (the subject's name and ID number, this card, the
        case's phone)."""
        return await run_in_threadpool(
            fallbacks.submit_bank_card, tenant, flow_id, body.card_number
        )

    @router.post("/v1/fallbacks/{flow_id}/authority")
    async def authority(flow_id: str, body: AuthorityBody, tenant: TenantDep) -> dict[str, Any]:
        photo = _photo(body.photo)
        return await run_in_threadpool(fallbacks.submit_authority, tenant, flow_id, photo)

    @router.post("/v1/fallbacks/{flow_id}/review")
    async def review(flow_id: str, body: FallbackReviewBody, tenant: TenantDep) -> dict[str, Any]:
        return await run_in_threadpool(
            lambda: fallbacks.decide_review(
                tenant, flow_id, outcome=body.outcome, reviewer=body.reviewer, note=body.note
            )
        )

    @router.post("/v1/subjects/{subject_id}/payout-check", tags=["payouts"])
    async def payout_check(
        request: Request, subject_id: str, body: PayoutBody, tenant: TenantDep
    ) -> dict[str, Any]:
        """Whether the payout card belongs to the verified person (bank-card 4-element check
        with the subject's own name and ID number): ``allowed`` or ``blocked`` with reasons."""
        lang = negotiate_lang(request.headers.get("accept-language"))
        return await run_in_threadpool(
            lambda: payouts.check(
                tenant,
                subject_id,
                card_number=body.card_number,
                phone=body.phone,
                event_id=body.event_id,
                lang=lang,
            )
        )

    return router


def install(app: FastAPI, service: ShirenService) -> None:
    app.include_router(fallback_router(service))


__all__ = ["fallback_router", "install"]
