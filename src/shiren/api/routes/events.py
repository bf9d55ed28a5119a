"""``POST /v1/events``: a lending event; the step-up policy says whether a face check is
needed and how strong, and opens the capture session when it is."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import OriginDep, ServiceDep, TenantDep
from shiren.api.models import (
    ID_PATTERN,
    PRINTABLE,
    Integer,
    Out,
    SessionOut,
    Strict,
    link,
    with_capture_urls,
)
from shiren.api.problems import documented
from shiren.domain.policy import EventType

router = APIRouter(tags=["events"])


class EventBody(Strict):
    subject_id: str = Field(
        min_length=1,
        max_length=64,
        description="The subject's id (another value: 404 record.not_found)",
        json_schema_extra={"pattern": ID_PATTERN},
    )
    type: str = Field(
        min_length=1,
        max_length=64,
        description="The kind of lending event (another value: 400 input.invalid)",
        json_schema_extra={"enum": [e.value for e in EventType]},
    )
    amount_minor: Integer = Field(default=0, ge=0, le=10**15)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    device_id: str | None = Field(
        default=None, min_length=1, max_length=128, json_schema_extra={"pattern": PRINTABLE}
    )


class RequirementOut(Out):
    """What the step-up policy decided for the event."""

    needed: bool
    purpose: str = Field(description="enrol (no face bound yet) or step_up")
    level: str
    match_profile: str
    max_age_s: int
    reasons: list[str]
    policy_version: str
    fallbacks: list[str]
    retry_after_s: int | None = Field(
        default=None,
        description="With reason limit.locked: the subject is locked out of face checks for "
        "this many seconds (no session is opened; use a fallback)",
    )
    challenge: str = Field(
        default="actions",
        description="The challenge the capture answers: actions (random actions and the colour "
        "flash), or read_digits (the event's policy requires reading digits aloud: the session's "
        "challenge carries the digit schedule; the capture page records sound and picture)",
    )


class StepUpOut(Out):
    event_id: str
    requirement: RequirementOut
    session: SessionOut | None = Field(description="The capture session, when one is needed")


STEPPED_UP = {
    "description": "The requirement, and the capture session when a check is needed",
    "links": {
        "GetSession": link("get_session", "The session", session_id="$response.body#/session/id"),
        "SubmitFrames": link("submit_frames", "Answer it", session_id="$response.body#/session/id"),
        "StartFallback": link(
            "start_fallback", "The non-face path", event_id="$response.body#/event_id"
        ),
    },
}


@router.post(
    "/v1/events",
    response_model=StepUpOut,
    response_model_exclude_unset=True,
    operation_id="post_event",
    responses={200: STEPPED_UP, **documented(400, 404, 409)},
)
async def post_event(
    body: EventBody, tenant: TenantDep, service: ServiceDep, origin: OriginDep
) -> StepUpOut:
    """A lending event: the step-up policy says whether a face check is needed and how
    strong; when it is, a capture session comes back."""
    view = await run_in_threadpool(
        lambda: service.start_step_up(
            tenant,
            body.subject_id,
            event_type=body.type,
            amount_minor=body.amount_minor,
            currency=body.currency,
            device_id=body.device_id,
        )
    )
    return StepUpOut.model_validate(with_capture_urls(view.to_dict(), origin))


__all__ = ["EventBody", "router"]
