"""Every error of the HTTP API as an RFC 9457 ``application/problem+json`` document.

One place maps the typed errors of :mod:`shiren.errors` to HTTP statuses (the contract clients
code against), renders ``{type, title, status, code, detail, request_id, extra?}`` with a stable
``code``, and installs the app's exception handlers: bad input of any kind is a 4xx, never a
5xx; a lost database is a retryable 503; a method a resource does not offer is a 405 with
``Allow`` and the code ``method.not_allowed``.  :func:`documented` is how a route declares the
error statuses it can answer in the OpenAPI document (the same :class:`Problem` schema).
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shiren.errors import ErrorCode, FaceError, InputError, ServiceError, ShirenError, StateError
from shiren.messages import message
from shiren.privacy import redact
from shiren.storage.sql.repositories import unavailable

log = logging.getLogger("shiren.api")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shiren.dev/problems/"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_CODE_STATUS: dict[ErrorCode, int] = {
    ErrorCode.RECORD_NOT_FOUND: 404,
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.SESSION_ALREADY_USED: 409,
    ErrorCode.RECORD_CONFLICT: 409,
    ErrorCode.RECORD_DUPLICATE: 409,
    ErrorCode.SUBJECT_NOT_READY: 409,
    ErrorCode.SESSION_EXPIRED: 410,
    ErrorCode.OTP_EXPIRED: 410,  # issue 6
    ErrorCode.OTP_RESEND_TOO_SOON: 429,  # issue 6
    # the capture page's token-authorised API (issue 5)
    ErrorCode.CAPTURE_TOKEN_INVALID: 404,
    ErrorCode.CAPTURE_TOKEN_EXPIRED: 410,
    ErrorCode.CAPTURE_RATE_LIMITED: 429,
    ErrorCode.CAPTURE_CONSENT_REQUIRED: 403,
    ErrorCode.CAPTURE_RETRY_NOT_ALLOWED: 409,
    ErrorCode.CAPTURE_RECORDING_NOT_ALLOWED: 409,
}
_CAPTURE_CODES = frozenset(c for c in _CODE_STATUS if c.value.startswith("capture."))

_DESCRIPTIONS: dict[int, str] = {
    400: "The input cannot be used (input.*: a bad image, ID number, phone, card, URL, …)",
    401: "No valid API key (auth.required)",
    403: "Not permitted (capture.consent_required)",
    404: "No such record for this tenant (record.not_found), or a capture link that is not "
    "valid (capture.token_invalid)",
    409: "Conflicts with the stored state (session.already_used, record.duplicate, "
    "review.already_closed, subject.not_ready, fallback.*, …)",
    410: "Expired (session.expired, otp.expired, capture.token_expired)",
    413: "The request body is too large (input.request_too_large)",
    422: "The request does not match the schema (input.invalid), or an image with no usable "
    "face (face.*)",
    429: "Too many requests (capture.rate_limited, otp.resend_too_soon); see Retry-After",
    503: "A retryable service fault (storage.*, connector.*); see Retry-After",
}


class Problem(BaseModel):
    """An error (RFC 9457); ``code`` is the stable, machine-readable part."""

    type: str
    title: str
    status: int
    code: str = Field(description="The stable error code (shiren.errors.ErrorCode)")
    detail: str
    request_id: str | None = None
    extra: dict[str, Any] | None = None


def status_of(exc: ShirenError) -> int:
    """The HTTP status of a typed error: the contract clients code against."""
    if exc.code in _CAPTURE_CODES:
        return _CODE_STATUS[exc.code]
    if isinstance(exc, StateError):
        return _CODE_STATUS.get(exc.code, 409)
    if isinstance(exc, FaceError):
        return 422
    if isinstance(exc, InputError):
        return 413 if exc.code is ErrorCode.REQUEST_TOO_LARGE else 400
    if isinstance(exc, ServiceError) and exc.retryable:
        return 503
    return 500


def lost_database(exc: Exception) -> bool:
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


def error_response(exc: ShirenError) -> JSONResponse:
    """A typed error as its problem document, with the headers its status promises."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        log.error(redact(f"service error {exc.code}: {exc.message}"))
        if status == 503:
            headers["Retry-After"] = "5"
    if exc.code is ErrorCode.CAPTURE_RATE_LIMITED:
        wait = float(exc.detail.get("retry_after_s", 1))
        headers["Retry-After"] = str(max(1, round(wait)))
    safe = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | float | list)}
    return problem(status, exc.code, exc.message, extra=safe or None, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app answers at the request's path (for ``Allow``)."""
    routes = request.app.router.routes
    allowed = []
    for method in METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def _validation_detail(errors: Any) -> list[dict[str, str]]:
    out = []
    for err in list(errors)[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"field": loc[:200], "problem": str(err.get("type", "invalid"))[:64]})
    return out


async def on_shiren_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShirenError)
    return error_response(exc)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem(
        422,
        ErrorCode.INPUT_INVALID,
        "the request does not match the schema",
        extra={"errors": _validation_detail(exc.errors())},
    )


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405 and b"%2f" in request.scope.get("raw_path", b"").lower():
        # an id holding an encoded "/" reached another resource's route: no such resource
        return problem(404, ErrorCode.RECORD_NOT_FOUND, "no such resource")
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        detail = f"{request.method} is not allowed here; allowed: {allow or 'none'}"
        return problem(405, ErrorCode.METHOD_NOT_ALLOWED, detail, headers={"Allow": allow})
    code = ErrorCode.RECORD_NOT_FOUND if exc.status_code == 404 else ErrorCode.INPUT_INVALID
    return problem(exc.status_code, code, str(exc.detail)[:200])


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if lost_database(exc):  # a driver error no repository translated (issue 7: faults)
        assert isinstance(exc, DBAPIError)
        return error_response(unavailable(exc))
    log.error(redact(f"unexpected {type(exc).__name__}"), exc_info=False)
    return problem(500, ErrorCode.INTERNAL, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ShirenError, on_shiren_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status as a :class:`Problem` document."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "documented",
    "error_response",
    "install_error_handlers",
    "lost_database",
    "problem",
    "request_id_var",
    "status_of",
]
