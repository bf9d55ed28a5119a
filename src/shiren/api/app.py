"""The HTTP face of :class:`~shiren.service.app.ShirenService`: FastAPI ``/v1``.

Why the layer is thin: every rule (privacy, retry limits, single-use sessions, tenant isolation)
lives in the service, where it is tested without HTTP.  This module only

* authenticates (``Authorization: Bearer <key>`` on every ``/v1`` route; the tenant found is
  passed to the service, which scopes every read and write to it);
* parses requests (JSON or multipart), capping the body size *before* it is buffered, so a huge
  upload costs the server nothing;
* maps typed errors to ``application/problem+json`` ``{type, title, status, code, detail}``
  with stable codes — bad input of any kind is a 4xx, never a 5xx;
* publishes OpenAPI, ``/healthz``, ``/readyz`` and Prometheus ``/metrics``, and logs one JSON
  line per request with a request id (ids and codes only: images and ID numbers never reach a
  log line).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from shiren.api.fraud import router as fraud_router
from shiren.domain.entities import Tenant
from shiren.errors import ErrorCode, FaceError, InputError, ServiceError, ShirenError, StateError
from shiren.messages import message, negotiate_lang
from shiren.privacy import RedactingFilter, redact
from shiren.service.app import ConsentIn, ShirenService
from shiren.service.settings import DEFAULT_MAX_BODY_BYTES
from shiren.storage.sql.repositories import unavailable

log = logging.getLogger("shiren.api")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shiren.dev/problems/"
MAX_FRAMES = 900
MAX_META_BYTES = 64 * 1024

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

_STATE_STATUS: dict[ErrorCode, int] = {
    ErrorCode.RECORD_NOT_FOUND: 404,
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.SESSION_ALREADY_USED: 409,
    ErrorCode.RECORD_CONFLICT: 409,
    ErrorCode.RECORD_DUPLICATE: 409,
    ErrorCode.SUBJECT_NOT_READY: 409,
    ErrorCode.SESSION_EXPIRED: 410,
    ErrorCode.OTP_EXPIRED: 410,  # issue 6
    ErrorCode.OTP_RESEND_TOO_SOON: 429,  # issue 6
}


def status_of(exc: ShirenError) -> int:
    """The HTTP status of a typed error: the contract clients code against."""
    if isinstance(exc, StateError):
        return _STATE_STATUS.get(exc.code, 409)
    if isinstance(exc, FaceError):
        return 422
    if isinstance(exc, InputError):
        return 413 if exc.code is ErrorCode.REQUEST_TOO_LARGE else 400
    if isinstance(exc, ServiceError) and exc.retryable:
        return 503
    return 500


def _lost_database(exc: Exception) -> bool:
    """A database connection that broke (server restarted, network cut) or a database that
    cannot be written: retryable, never a 500."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def problem(
    status: int,
    code: ErrorCode | str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document; ``title`` is the code's stable English message."""
    try:
        title = message(code, "en")
    except KeyError:
        title = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + str(code),
        "title": title,
        "status": status,
        "code": str(code),
        "detail": detail,
        "request_id": request_id_var.get(),
    }
    if extra:
        body["extra"] = extra
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# -- request models --------------------------------------------------------------------------


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=32)
    text_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    retention_days: int = Field(ge=1, le=3650)


class EnrolBody(BaseModel):
    """Enrolment.  ``reference_image``: base64 of the reference photo (JSON requests); in a
    multipart request it is a file part and this JSON goes in the ``meta`` part."""

    model_config = ConfigDict(extra="forbid")
    external_ref: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=18)
    consent: ConsentBody
    reference_kind: Literal["id_card", "authority", "upload"] = "id_card"
    reference_image: str | None = Field(default=None, max_length=DEFAULT_MAX_BODY_BYTES)
    device_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The lender's identifier of the applicant's device (anti-fraud: many "
        "subjects enrolled from one device); stored only as a keyed hash.",
    )


class EventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=64)
    amount_minor: int = Field(default=0, ge=0, le=10**15)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    device_id: str | None = Field(default=None, min_length=1, max_length=128)


class FramesMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nonce: str = Field(min_length=1, max_length=128)
    t_ms: list[float] = Field(min_length=1, max_length=MAX_FRAMES)


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    secret: str | None = Field(default=None, min_length=16, max_length=256)


class WithdrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(min_length=1, max_length=64)
    version: str | None = Field(default=None, min_length=1, max_length=32)
    """Only this version of the purpose's consent (default: every version)."""


class ReviewDecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


# -- middleware --------------------------------------------------------------------------------


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 — by ``Content-Length`` before reading, and
    while streaming for chunked uploads that do not announce their size."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._reject(scope, receive, send)
                    return
        if any(name == b"content-length" for name, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read up to the cap first, then replay to the app.  The
        # app would buffer the body anyway, so this costs no extra memory beyond the cap.
        buffered: list[Any] = []
        seen = 0
        while True:
            msg = await receive()
            if msg.get("type") != "http.request":
                buffered.append(msg)
                break
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            buffered.append(msg)
            if not msg.get("more_body", False):
                break
        replay = iter(buffered)

        async def replay_receive() -> Any:
            nxt = next(replay, None)
            return nxt if nxt is not None else await receive()

        await self.app(scope, replay_receive, send)

    async def _reject(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        response = problem(
            413, ErrorCode.REQUEST_TOO_LARGE, f"the request body exceeds {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key in ("method", "route", "status", "duration_ms"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        return json.dumps(doc, ensure_ascii=False)


QUIET_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "python_multipart", "multipart")
"""Libraries whose INFO/DEBUG lines print request or row contents: kept at WARNING."""


def _json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def configure_logging(level: str = "INFO") -> None:
    """Structured JSON logs on stderr, every line through :func:`shiren.privacy.redact`:
    shiren's own at ``level``; other libraries' warnings through the same redacting handler
    (not Python's bare last-resort printer); SQL and multipart internals never below WARNING,
    whatever ``level`` says (their DEBUG lines hold bound values and result rows)."""
    ours = logging.getLogger("shiren")
    ours.handlers[:] = [_json_handler()]
    ours.setLevel(level.upper())
    ours.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [_json_handler()]
    root.setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# -- the app ---------------------------------------------------------------------------------


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 512:
        raise StateError("missing or malformed Authorization header", code=ErrorCode.AUTH_REQUIRED)
    return token.strip()


async def _tenant_of(request: Request) -> Tenant:
    """The authenticated tenant of the request (``auth.required`` → 401 otherwise)."""
    service: ShirenService = request.app.state.service
    return await run_in_threadpool(service.authenticate, _bearer(request))


TenantDep = Annotated[Tenant, Depends(_tenant_of)]


def _lang(request: Request) -> str:
    return negotiate_lang(request.headers.get("accept-language"))


def _validation_detail(errors: Any) -> list[dict[str, str]]:
    out = []
    for err in list(errors)[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"field": loc[:200], "problem": str(err.get("type", "invalid"))[:64]})
    return out


def _decode_b64(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned.startswith("data:"):
        cleaned = cleaned.partition(",")[2]
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            "reference_image is not valid base64", detail={"field": "reference_image"}
        ) from None


async def _read_upload(part: Any, what: str) -> bytes:
    if not isinstance(part, UploadFile):
        raise InputError(f"{what} must be a file part", detail={"field": what})
    data: bytes = await part.read()
    return data


async def _enrol_input(request: Request) -> tuple[EnrolBody, bytes]:
    """The enrolment body and reference image, from JSON (base64 image) or multipart."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=2, max_fields=4, max_part_size=MAX_META_BYTES)
        meta = form.get("meta")
        if not isinstance(meta, str):
            raise InputError("a 'meta' JSON part is required", detail={"field": "meta"})
        raw_meta = meta
        image = await _read_upload(form.get("reference_image"), "reference_image")
    else:
        raw_meta = (await request.body()).decode("utf-8", "replace")
        image = b""
    try:
        body = EnrolBody.model_validate_json(raw_meta)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    if body.reference_image is not None:
        image = _decode_b64(body.reference_image)
    if not image:
        raise InputError(
            "a reference image is required",
            code=ErrorCode.IMAGE_EMPTY,
            detail={"field": "reference_image"},
        )
    return body, image


async def _frames_input(request: Request) -> tuple[FramesMeta, list[bytes]]:
    """The ``meta`` part and the frame files of a multipart capture upload."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InputError("frames must be sent as multipart/form-data")
    form = await request.form(max_files=MAX_FRAMES, max_fields=4, max_part_size=MAX_META_BYTES * 8)
    meta_raw = form.get("meta")
    if not isinstance(meta_raw, str):
        raise InputError("a 'meta' JSON part is required", detail={"field": "meta"})
    try:
        meta = FramesMeta.model_validate_json(meta_raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    blobs = [await _read_upload(part, "frames") for part in form.getlist("frames")]
    if not blobs:
        raise InputError("no frames were sent", code=ErrorCode.FRAMES_EMPTY)
    return meta, blobs


def _install_ops(app: FastAPI, service: ShirenService) -> Counter:
    """Error handlers, the request-id / metrics / access-log middleware and the probes;
    returns the decisions counter the routes increment."""
    registry = CollectorRegistry()
    requests_total = Counter(
        "shiren_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram("shiren_http_request_seconds", "Latency", ["route"], registry=registry)
    decisions = Counter("shiren_decisions", "Check decisions", ["decision"], registry=registry)

    # -- error handlers ------------------------------------------------------------------

    @app.exception_handler(ShirenError)
    async def on_shiren_error(request: Request, exc: ShirenError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status >= 500:
            log.error(redact(f"service error {exc.code}: {exc.message}"))
            if status == 503:
                headers = {"Retry-After": "5"}
        safe = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | float | list)}
        return problem(status, exc.code, exc.message, extra=safe or None, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(
            422,
            ErrorCode.INPUT_INVALID,
            "the request does not match the schema",
            extra={"errors": _validation_detail(exc.errors())},
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = ErrorCode.RECORD_NOT_FOUND if exc.status_code == 404 else ErrorCode.INPUT_INVALID
        return problem(exc.status_code, code, str(exc.detail)[:200])

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if _lost_database(exc):  # a driver error no repository translated (issue 7: faults)
            assert isinstance(exc, DBAPIError)
            return await on_shiren_error(request, unavailable(exc))
        log.error(redact(f"unexpected {type(exc).__name__}"), exc_info=False)
        return problem(500, ErrorCode.INTERNAL, "internal error")

    # -- request id, metrics, access log -------------------------------------------------

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Response:
        rid = request.headers.get("x-request-id", "")
        if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            response: Response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - start
            requests_total.labels(request.method, route, str(response.status_code)).inc()
            latency.labels(route).observe(elapsed)
            response.headers["X-Request-ID"] = rid
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
        finally:
            request_id_var.reset(token)
        return response

    # -- probes --------------------------------------------------------------------------

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness probe: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
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
        return JSONResponse(
            {"ready": ok, "checks": checks, "warnings": warnings},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return decisions


def create_app(service: ShirenService, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The ASGI application around ``service`` (one per process; tests make one per store)."""
    app = FastAPI(
        title="shiren 实人认证",
        version="1",
        description="Real-person verification for lenders: enrolment, step-up, checks.",
    )
    decisions = _install_ops(app, service)
    from shiren.api.capture import install_capture, link_sessions  # the borrower's page + API

    app.state.service = service
    install_capture(app, service)

    app.include_router(fraud_router)  # anti-fraud (issue 6): /v1/blacklist, fraud-findings
    # -- /v1 -----------------------------------------------------------------------------

    @app.post(
        "/v1/subjects",
        status_code=201,
        tags=["subjects"],
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": EnrolBody.model_json_schema()},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "meta": {"type": "string", "description": "EnrolBody as JSON"},
                                "reference_image": {"type": "string", "format": "binary"},
                            },
                            "required": ["meta", "reference_image"],
                        }
                    },
                },
                "required": True,
            }
        },
    )
    async def enrol(request: Request, tenant: TenantDep) -> JSONResponse:
        """Enrol a subject (name, ID number, consent, reference photo) and open the enrolment
        capture session; the face is bound when that session passes."""
        body, image = await _enrol_input(request)
        subject, view = await run_in_threadpool(
            lambda: service.enrol(
                tenant,
                external_ref=body.external_ref,
                name=body.name,
                id_number=body.id_number,
                consent=ConsentIn(**body.consent.model_dump()),
                reference_image=image,
                reference_kind=body.reference_kind,
                device_id=body.device_id,  # issue 6: fraud.device_many_faces, velocity
                client_ip=request.client.host if request.client else None,  # issue 6: velocity
            )
        )
        out = {
            "subject": {
                "id": subject.id,
                "external_ref": subject.external_ref,
                "status": subject.status.value,
            },
            "session": view.to_dict(),
        }
        return JSONResponse(link_sessions(request, out), status_code=201)

    @app.post(
        "/v1/sessions/{session_id}/frames",
        tags=["sessions"],
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "meta": {
                                    "type": "string",
                                    "description": 'JSON {"nonce": str, "t_ms": [number]}',
                                },
                                "frames": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "binary"},
                                },
                            },
                            "required": ["meta", "frames"],
                        }
                    }
                },
                "required": True,
            }
        },
    )
    async def submit_frames(request: Request, session_id: str, tenant: TenantDep) -> JSONResponse:
        """Submit the capture (JPEG/PNG frames + their times) answering the session's challenge;
        returns the check with its decision.  A session is single use."""
        meta, blobs = await _frames_input(request)
        view = await run_in_threadpool(
            lambda: service.submit(
                tenant,
                session_id,
                nonce=meta.nonce,
                frames=blobs,
                times_ms=meta.t_ms,
                client_ip=request.client.host if request.client else None,  # issue 6
            )
        )
        decisions.labels(view.outcome.value).inc()
        return JSONResponse(view.to_dict(_lang(request)))

    @app.get("/v1/sessions/{session_id}", tags=["sessions"])
    async def get_session(request: Request, session_id: str, tenant: TenantDep) -> dict[str, Any]:
        """A session's status, its signed challenge and, once judged, its check id."""
        view = await run_in_threadpool(service.get_session, tenant, session_id)
        return link_sessions(request, view.to_dict())

    @app.post("/v1/events", tags=["events"])
    async def post_event(request: Request, body: EventBody, tenant: TenantDep) -> dict[str, Any]:
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
        return link_sessions(request, view.to_dict())

    @app.get("/v1/checks/{check_id}", tags=["checks"])
    async def get_check(request: Request, check_id: str, tenant: TenantDep) -> dict[str, Any]:
        """A check's decision, reasons with zh-CN/English tips, and fallbacks (polling)."""
        view = await run_in_threadpool(service.get_check, tenant, check_id)
        return view.to_dict(_lang(request))

    @app.get("/v1/stats", tags=["stats"])
    async def stats(tenant: TenantDep) -> dict[str, Any]:
        """The calling tenant's own counts: stored faces (bound templates)."""
        return await run_in_threadpool(service.stats, tenant)

    @app.delete("/v1/subjects/{subject_id}", tags=["subjects"])
    async def erase(subject_id: str, tenant: TenantDep) -> dict[str, Any]:
        """Erase a subject's biometrics and identity data (audited; idempotent)."""
        return await run_in_threadpool(service.erase_subject, tenant, subject_id)

    @app.get("/v1/subjects/{subject_id}/export", tags=["subjects"])
    async def export(subject_id: str, tenant: TenantDep) -> dict[str, Any]:
        """Everything held about a subject (no templates, no images; ID number masked)."""
        return await run_in_threadpool(service.export_subject, tenant, subject_id)

    @app.post("/v1/subjects/{subject_id}/consents/withdraw", tags=["subjects"])
    async def withdraw(subject_id: str, body: WithdrawBody, tenant: TenantDep) -> dict[str, Any]:
        """Withdraw consent to face processing (PIPL art. 15): the subject's face data is
        deleted and open sessions expire; later step-ups fall back to non-face methods
        (``consent.withdrawn``).  Idempotent; audited; announced by webhook."""
        return await run_in_threadpool(
            lambda: service.withdraw_consent(
                tenant, subject_id, purpose=body.purpose, version=body.version
            )
        )

    @app.put("/v1/webhook", tags=["webhooks"])
    async def put_webhook(body: WebhookBody, tenant: TenantDep) -> dict[str, Any]:
        """Set where events are POSTed.  The signing secret is generated when not given and
        then returned this once (``Shiren-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``)."""
        return await run_in_threadpool(lambda: service.set_webhook(tenant, body.url, body.secret))

    @app.get("/v1/reviews", tags=["reviews"])
    async def list_reviews(tenant: TenantDep, status: str = "open") -> dict[str, Any]:
        """The tenant's manual-review queue, oldest first."""
        items = await run_in_threadpool(lambda: service.list_reviews(tenant, status))
        return {"reviews": items}

    @app.post("/v1/reviews/{review_id}", tags=["reviews"])
    async def decide_review(
        review_id: str, body: ReviewDecisionBody, tenant: TenantDep
    ) -> dict[str, Any]:
        """Close a review (approve binds an enrolment's face only if its liveness passed);
        409 ``review.already_closed`` when it was already decided."""
        return await run_in_threadpool(
            lambda: service.decide_review(
                tenant,
                review_id,
                outcome=body.outcome,
                reviewer=body.reviewer,
                note=body.note,
            )
        )

    from shiren.api.console import install_console  # /console: the review console (issue 5)

    install_console(app, service)

    from shiren.api.fallback import install as install_fallbacks  # issue 6 (imports this module)

    install_fallbacks(app, service)  # issue 6: /v1/events/{id}/fallback, /v1/fallbacks, payouts

    from shiren.api.openapi_doc import install_problem_docs  # errors documented as problems

    install_problem_docs(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


__all__ = ["BodyLimit", "configure_logging", "create_app", "problem", "status_of"]
