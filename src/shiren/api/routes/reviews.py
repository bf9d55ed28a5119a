"""``/v1/reviews``: the tenant's manual-review queue — face reviews and non-face (fallback)
cases in one queue — and a reviewer's decision."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import ServiceDep, TenantDep
from shiren.api.models import PRINTABLE, Out, ReviewId, Strict, link
from shiren.api.problems import documented
from shiren.domain.entities import ReviewStatus

router = APIRouter(tags=["reviews"])


class ReviewDecisionBody(Strict):
    outcome: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": PRINTABLE})
    note: str = Field(default="", max_length=2000)


class ReviewItemOut(Out):
    """A review item: ids, state and the decision data of its check; never biometrics.
    ``kind`` ``fallback`` items (a non-face case) also carry ``event_id`` and ``cause``."""

    id: str
    kind: Literal["face", "fallback"]
    check_id: str | None
    subject_id: str | None
    event_id: str | None = Field(default=None, description="fallback items only")
    cause: str | None = Field(default=None, description="fallback items only")
    status: ReviewStatus
    outcome: str | None
    reviewer: str | None
    reasons: list[str]
    liveness_passed: bool | None
    liveness_score: float | None
    match_score: float | None
    created_at: str
    closed_at: str | None


class ReviewQueueOut(Out):
    reviews: list[ReviewItemOut]


class ReviewDecidedOut(ReviewItemOut):
    face_bound: bool = Field(description="An approved enrolment's face was bound")
    not_bound_reason: str | None


QUEUE = {
    "description": "The queue, oldest first",
    "links": {
        "DecideReview": link(
            "decide_review", "Decide the first", review_id="$response.body#/reviews/0/id"
        )
    },
}
StatusQuery = Annotated[
    str,
    Query(
        description="Which items (another value: 400 input.invalid)",
        json_schema_extra={"enum": [s.value for s in ReviewStatus]},
    ),
]


@router.get(
    "/v1/reviews",
    response_model=ReviewQueueOut,
    response_model_exclude_unset=True,
    operation_id="list_reviews",
    responses={200: QUEUE, **documented(400)},
)
async def list_reviews(
    tenant: TenantDep, service: ServiceDep, status: StatusQuery = "open"
) -> ReviewQueueOut:
    """The tenant's manual-review queue, oldest first."""
    items = await run_in_threadpool(lambda: service.list_reviews(tenant, status))
    return ReviewQueueOut.model_validate({"reviews": items})


@router.post(
    "/v1/reviews/{review_id}",
    response_model=ReviewDecidedOut,
    response_model_exclude_unset=True,
    operation_id="decide_review",
    responses=documented(400, 404, 409),
)
async def decide_review(
    review_id: ReviewId, body: ReviewDecisionBody, tenant: TenantDep, service: ServiceDep
) -> ReviewDecidedOut:
    """Close a review (approve binds an enrolment's face only if its liveness passed);
    409 ``review.already_closed`` when it was already decided."""
    decided = await run_in_threadpool(
        lambda: service.decide_review(
            tenant, review_id, outcome=body.outcome, reviewer=body.reviewer, note=body.note
        )
    )
    return ReviewDecidedOut.model_validate(decided)


__all__ = ["router"]
