"""Anti-fraud (issue 6): a lender's blacklists (``/v1/blacklist``) and the findings reviewers
need (``GET /v1/subjects/{id}/fraud-findings``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from shiren.api.deps import ServiceDep, TenantDep
from shiren.api.models import ID_PATTERN, NAME_PATTERN, NOT_BLANK, EntryId, Out, SubjectId, link
from shiren.api.parsing import decode_optional
from shiren.api.problems import documented

router = APIRouter(tags=["anti-fraud"])

ONE_SOURCE: dict[str, Any] = {
    "oneOf": [
        {"required": ["image"], "properties": {"image": {"type": "string"}}},
        {"required": ["subject_id"], "properties": {"subject_id": {"type": "string"}}},
    ]
}
"""Exactly one of ``image`` and ``subject_id`` (400 input.invalid otherwise)."""


class BlacklistIn(BaseModel):
    """A face for a blacklist: a photo (``image``) or a subject's bound face (``subject_id``)."""

    model_config = ConfigDict(strict=True, json_schema_extra=ONE_SOURCE)
    list_name: str = Field(
        default="default", max_length=64, json_schema_extra={"pattern": NAME_PATTERN}
    )
    reason: str = Field(
        max_length=64,
        description="A short code: confirmed_fraud, …",
        json_schema_extra={"pattern": NAME_PATTERN},
    )
    evidence_ref: str = Field(
        max_length=200,
        description="Your case reference (not evidence).",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    added_by: str = Field(max_length=200, json_schema_extra={"pattern": NOT_BLANK})
    image: str | None = Field(
        default=None,
        description="Base64 JPEG/PNG of the face.",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "image/*"},
    )
    subject_id: str | None = Field(
        default=None,
        description="Or: a subject's bound face (unknown: 404).",
        json_schema_extra={"pattern": ID_PATTERN},
    )


class EntryOut(Out):
    id: str
    list_name: str
    reason: str
    evidence_ref: str
    added_by: str
    created_at: str


class EntriesOut(Out):
    entries: list[EntryOut]


class RemovedOut(Out):
    id: str
    removed: bool
    removed_at: str


class FindingOut(Out):
    id: str
    code: str
    action: str = Field(description="review or reject")
    check_id: str | None
    evidence: dict[str, Any] = Field(description="Ids and scores only")
    policy_version: str
    created_at: str


class FindingsOut(Out):
    findings: list[FindingOut]


ADDED = {
    "description": "The entry (never its template)",
    "links": {
        "RemoveEntry": link("remove_from_blacklist", "Remove it", entry_id="$response.body#/id")
    },
}
ListName = Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": NAME_PATTERN})]
Limit = Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": 1000})]
RemovedBy = Annotated[str, Query(json_schema_extra={"maxLength": 200, "pattern": NOT_BLANK})]


@router.post(
    "/v1/blacklist",
    status_code=201,
    response_model=EntryOut,
    operation_id="add_to_blacklist",
    responses={201: ADDED, **documented(400, 404, 409)},
)
async def add_to_blacklist(body: BlacklistIn, tenant: TenantDep, service: ServiceDep) -> EntryOut:
    """Put a face on one of your blacklists; searched at every enrolment and step-up."""
    entry = await run_in_threadpool(
        lambda: service.blacklists.add(
            tenant,
            list_name=body.list_name,
            reason=body.reason,
            evidence_ref=body.evidence_ref,
            added_by=body.added_by,
            image=decode_optional(body.image, "image"),
            subject_id=body.subject_id,
        )
    )
    return EntryOut.model_validate(entry)


@router.get(
    "/v1/blacklist",
    response_model=EntriesOut,
    operation_id="list_blacklist",
    responses=documented(400),
)
async def list_blacklist(
    tenant: TenantDep, service: ServiceDep, list_name: ListName = None, limit: Limit = 100
) -> EntriesOut:
    """Your blacklist entries (of one list, when ``list_name`` is given)."""
    entries = await run_in_threadpool(lambda: service.blacklists.entries(tenant, list_name, limit))
    return EntriesOut.model_validate({"entries": entries})


@router.delete(
    "/v1/blacklist/{entry_id}",
    response_model=RemovedOut,
    operation_id="remove_from_blacklist",
    responses=documented(400, 404),
)
async def remove_from_blacklist(
    entry_id: EntryId, tenant: TenantDep, service: ServiceDep, removed_by: RemovedBy
) -> RemovedOut:
    """Take an entry off its blacklist (audited: who removed it)."""
    removed = await run_in_threadpool(
        lambda: service.blacklists.remove(tenant, entry_id, removed_by=removed_by)
    )
    return RemovedOut.model_validate(removed)


@router.get(
    "/v1/subjects/{subject_id}/fraud-findings",
    response_model=FindingsOut,
    operation_id="fraud_findings",
    responses=documented(404),
)
async def fraud_findings(
    subject_id: SubjectId, tenant: TenantDep, service: ServiceDep
) -> FindingsOut:
    """The anti-fraud findings recorded for a subject, oldest first (for reviewers)."""
    found = await run_in_threadpool(lambda: service.blacklists.findings(tenant, subject_id))
    return FindingsOut.model_validate({"findings": found})


__all__ = ["router"]
