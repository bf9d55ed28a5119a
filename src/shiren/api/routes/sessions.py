"""``/v1/sessions`` and ``/v1/checks``: a capture session's state, the capture that answers its
challenge (single use), and the check it produced (polling)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from shiren.api.deps import ClientIpDep, LangDep, MetricsDep, OriginDep, ServiceDep, TenantDep
from shiren.api.models import CheckId, CheckOut, SessionId, SessionOut, link, with_capture_urls
from shiren.api.parsing import FramesMeta, frames_input, request_body
from shiren.api.problems import documented

router = APIRouter()

JUDGED = {
    "description": "The check with its decision (poll it again at GET /v1/checks/{id})",
    "links": {
        "GetCheck": link("get_check", "The check", check_id="$response.body#/id"),
        "GetSession": link("get_session", "Its session", session_id="$response.body#/session_id"),
    },
}
SESSION = {
    "description": "The session; check_id is set once it is judged",
    "links": {
        "GetCheck": link(
            "get_check", "Its check, once judged", check_id="$response.body#/check_id"
        ),
        "SubmitFrames": link("submit_frames", "Answer it", session_id="$response.body#/id"),
    },
}


@router.get(
    "/v1/sessions/{session_id}",
    tags=["sessions"],
    response_model=SessionOut,
    response_model_exclude_unset=True,
    operation_id="get_session",
    responses={200: SESSION, **documented(404)},
)
async def get_session(
    session_id: SessionId, tenant: TenantDep, service: ServiceDep, origin: OriginDep
) -> SessionOut:
    """A session's status, its signed challenge and, once judged, its check id."""
    view = await run_in_threadpool(service.get_session, tenant, session_id)
    return SessionOut.model_validate(with_capture_urls(view.to_dict(), origin))


@router.post(
    "/v1/sessions/{session_id}/frames",
    tags=["sessions"],
    response_model=CheckOut,
    operation_id="submit_frames",
    responses={200: JUDGED, **documented(400, 404, 409, 410)},
    openapi_extra=request_body(FramesMeta, {"frames": "many"}),
)
async def submit_frames(
    request: Request,
    session_id: SessionId,
    tenant: TenantDep,
    service: ServiceDep,
    lang: LangDep,
    client_ip: ClientIpDep,
    metrics: MetricsDep,
) -> CheckOut:
    """Submit the capture (JPEG/PNG frames + their times) answering the session's challenge;
    returns the check with its decision.  A session is single use."""
    await run_in_threadpool(service.get_session, tenant, session_id)  # 404 before the upload
    meta, blobs = await frames_input(request)
    view = await run_in_threadpool(
        lambda: service.submit(
            tenant,
            session_id,
            nonce=meta.nonce,
            frames=blobs,
            times_ms=meta.t_ms,
            client_ip=client_ip,  # issue 6
            camera_label=meta.camera_label,  # issue 17: a weak injection signal
        )
    )
    metrics.decisions.labels(view.outcome.value).inc()
    return CheckOut.model_validate(view.to_dict(lang))


@router.get(
    "/v1/checks/{check_id}",
    tags=["checks"],
    response_model=CheckOut,
    operation_id="get_check",
    responses=documented(404),
)
async def get_check(
    check_id: CheckId, tenant: TenantDep, service: ServiceDep, lang: LangDep
) -> CheckOut:
    """A check's decision, reasons with zh-CN/English tips, and fallbacks (polling)."""
    view = await run_in_threadpool(service.get_check, tenant, check_id)
    return CheckOut.model_validate(view.to_dict(lang))


__all__ = ["router"]
