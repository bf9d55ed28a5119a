"""The operator's probes: ``/healthz`` (liveness), ``/readyz`` (database and models, with
warnings) and Prometheus ``/metrics``.  Public on purpose: no tenant data in any of them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field

from shiren.api.deps import MetricsDep, ServiceDep
from shiren.api.models import Out

log = logging.getLogger("shiren.api")
router = APIRouter(tags=["ops"])


class Health(Out):
    status: str = Field(description="ok")


class Readiness(Out):
    ready: bool
    checks: dict[str, bool] = Field(description="database, models")
    warnings: list[dict[str, Any]] = Field(
        description="For the operator (e.g. the stored-faces filing threshold); never make "
        "the service unready"
    )


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "Not ready (the same document, ready: false)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}},
    }
}
METRICS: dict[int | str, dict[str, Any]] = {200: {"description": "Prometheus text format"}}


@router.get("/healthz", response_model=Health, operation_id="healthz")
async def healthz() -> Health:
    """Liveness probe: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, operation_id="readyz", responses=NOT_READY)
async def readyz(service: ServiceDep, response: Response) -> Readiness:
    """Readiness: the database answers and the models are loaded.  ``warnings`` are for the
    operator (e.g. the stored-faces filing threshold) and never make the service unready."""
    checks = await run_in_threadpool(service.ready)
    ok = all(checks.values())
    warnings: list[dict[str, Any]] = []
    if checks.get("database"):
        try:
            warnings = await run_in_threadpool(service.warnings)
        except Exception:  # a probe reports, it never raises
            log.warning("readiness: warnings could not be computed", exc_info=False)
    response.status_code = 200 if ok else 503
    return Readiness(ready=ok, checks=checks, warnings=warnings)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    response_model=str,
    operation_id="metrics",
    responses=METRICS,
)
async def metrics(registry: MetricsDep) -> Response:
    """Prometheus counters: requests by method, route template and status; decisions."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["router"]
