"""The calling tenant's own settings and numbers: ``PUT /v1/webhook``, ``GET /v1/stats``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from shiren.api.deps import ServiceDep, TenantDep
from shiren.api.models import PRINTABLE, Out, Strict
from shiren.api.problems import documented

router = APIRouter()

URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x20\\x7f]+$"


class WebhookBody(Strict):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="https (plain http only to this machine outside production), no "
        "credentials; its host must resolve to public addresses only (SSRF guard): "
        "400 input.webhook_url_invalid / input.webhook_url_forbidden otherwise",
        json_schema_extra={"pattern": URL_PATTERN},
    )
    secret: str | None = Field(
        default=None, min_length=16, max_length=256, json_schema_extra={"pattern": PRINTABLE}
    )


class WebhookOut(Out):
    url: str
    secret: str | None = Field(default=None, description="Only when generated: shown this once")


class StatsOut(Out):
    stored_faces: int = Field(description="Bound templates this tenant stores")


@router.put(
    "/v1/webhook",
    tags=["webhooks"],
    response_model=WebhookOut,
    response_model_exclude_unset=True,
    operation_id="set_webhook",
    responses=documented(400),
)
async def put_webhook(body: WebhookBody, tenant: TenantDep, service: ServiceDep) -> WebhookOut:
    """Set where events are POSTed.  The signing secret is generated when not given and
    then returned this once (``Shiren-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``)."""
    done = await run_in_threadpool(lambda: service.set_webhook(tenant, body.url, body.secret))
    return WebhookOut.model_validate(done)


@router.get("/v1/stats", tags=["stats"], response_model=StatsOut, operation_id="get_stats")
async def stats(tenant: TenantDep, service: ServiceDep) -> StatsOut:
    """The calling tenant's own counts: stored faces (bound templates)."""
    return StatsOut.model_validate(await run_in_threadpool(service.stats, tenant))


__all__ = ["router"]
