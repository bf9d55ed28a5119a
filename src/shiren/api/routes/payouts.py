"""``POST /v1/subjects/{id}/payout-check`` (issue 6, AML): whether the payout card belongs to
the verified person — a bank-card 4-element check with the subject's own name and ID number.
``allowed`` or ``blocked`` is a verdict in a 200, not an error."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import LangDep, PayoutsDep, TenantDep
from shiren.api.models import ID_PATTERN, Out, Strict, SubjectId, Tip
from shiren.api.problems import documented
from shiren.api.routes.fallbacks import CardNumber, Phone

router = APIRouter(tags=["payouts"])


class PayoutBody(Strict):
    card_number: CardNumber
    phone: Phone
    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The lending event paid out (another subject's or unknown: 404)",
        json_schema_extra={"pattern": ID_PATTERN},
    )


class Mismatch(Out):
    element: str = Field(description="name, id_number, card_number or phone")
    sent: str = Field(description="What was sent for it, masked")


class PayoutOut(Out):
    id: str
    subject_id: str
    event_id: str | None
    decision: str = Field(description="allowed or blocked")
    reasons: list[str]
    tips: list[Tip]
    mismatched: list[Mismatch]
    card: str
    sandbox: bool
    created_at: str


@router.post(
    "/v1/subjects/{subject_id}/payout-check",
    response_model=PayoutOut,
    operation_id="payout_check",
    responses=documented(400, 404, 409),
)
async def payout_check(
    subject_id: SubjectId, body: PayoutBody, tenant: TenantDep, payouts: PayoutsDep, lang: LangDep
) -> PayoutOut:
    """Whether the payout card belongs to the verified person (bank-card 4-element check
    with the subject's own name and ID number): ``allowed`` or ``blocked`` with reasons."""
    verdict = await run_in_threadpool(
        lambda: payouts.check(
            tenant,
            subject_id,
            card_number=body.card_number,
            phone=body.phone,
            event_id=body.event_id,
            lang=lang,
        )
    )
    return PayoutOut.model_validate(verdict)


__all__ = ["router"]
