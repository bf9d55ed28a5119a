"""``/v1/blacklist`` and ``/v1/subjects/{id}/fraud-findings`` (issue 6): a lender's blacklists
and the anti-fraud findings reviewers need.  Included in the app by one line in api/app.py."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shiren.domain.entities import Tenant
from shiren.errors import InputError
from shiren.service.app import ShirenService

router = APIRouter(tags=["anti-fraud"])


async def _tenant(request: Request) -> Tenant:
    from shiren.api.app import _tenant_of  # the app's own authentication

    return await _tenant_of(request)


TenantDep = Annotated[Tenant, Depends(_tenant)]


def _service(request: Request) -> ShirenService:
    service: ShirenService = request.app.state.service
    return service


class BlacklistIn(BaseModel):
    list_name: str = Field(default="default", max_length=64)
    reason: str = Field(max_length=64, description="A short code: confirmed_fraud, …")
    evidence_ref: str = Field(max_length=200, description="Your case reference (not evidence).")
    added_by: str = Field(max_length=200)
    image: str | None = Field(default=None, description="Base64 JPEG/PNG of the face.")
    subject_id: str | None = Field(default=None, description="Or: a subject's bound face.")


def _image(data: str | None) -> bytes | None:
    if data is None:
        return None
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("image is not valid base64", detail={"field": "image"}) from None


@router.post("/v1/blacklist", status_code=201)
async def add_to_blacklist(request: Request, body: BlacklistIn, tenant: TenantDep) -> JSONResponse:
    """Put a face on one of your blacklists; searched at every enrolment and step-up."""
    svc = _service(request)
    entry = await run_in_threadpool(
        lambda: svc.blacklists.add(
            tenant,
            list_name=body.list_name,
            reason=body.reason,
            evidence_ref=body.evidence_ref,
            added_by=body.added_by,
            image=_image(body.image),
            subject_id=body.subject_id,
        )
    )
    return JSONResponse(entry, status_code=201)


@router.get("/v1/blacklist")
async def list_blacklist(
    request: Request, tenant: TenantDep, list_name: str | None = None, limit: int = 100
) -> dict[str, Any]:
    svc = _service(request)
    entries = await run_in_threadpool(lambda: svc.blacklists.entries(tenant, list_name, limit))
    return {"entries": entries}


@router.delete("/v1/blacklist/{entry_id}")
async def remove_from_blacklist(
    request: Request, entry_id: str, tenant: TenantDep, removed_by: str
) -> dict[str, Any]:
    svc = _service(request)
    return await run_in_threadpool(
        lambda: svc.blacklists.remove(tenant, entry_id, removed_by=removed_by)
    )


@router.get("/v1/subjects/{subject_id}/fraud-findings")
async def fraud_findings(request: Request, subject_id: str, tenant: TenantDep) -> dict[str, Any]:
    svc = _service(request)
    found = await run_in_threadpool(lambda: svc.blacklists.findings(tenant, subject_id))
    return {"findings": found}


__all__ = ["router"]
