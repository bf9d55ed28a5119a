"""The borrower's routes: the capture page and its token-authorised API (no lender key).

``GET /capture/{token}`` serves the page (plain HTML/CSS/ES modules from ``static/capture``);
``/v1/capture/{token}`` and its sub-resources are what the page calls (see
:mod:`shiren.service.capture`).  A bad, forged or expired token is a problem+json 404/410 with a
stable code, never a 500.  Every response carries ``Cache-Control: no-store`` and
``Referrer-Policy: no-referrer`` (the token is in the path: it must not leak to a third party
through a Referer header or a shared cache), and the page a strict Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from shiren.api.app import _frames_input, problem, status_of
from shiren.errors import ErrorCode, InputError, ShirenError
from shiren.messages import negotiate_lang, normalise_lang
from shiren.service.app import ShirenService
from shiren.service.capture import MAX_QUALITY_BYTES, CaptureService

RECEIPT_HEADER = "x-shiren-consent"
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.CAPTURE_TOKEN_INVALID: 404,
    ErrorCode.CAPTURE_TOKEN_EXPIRED: 410,
    ErrorCode.CAPTURE_RATE_LIMITED: 429,
    ErrorCode.CAPTURE_CONSENT_REQUIRED: 403,
    ErrorCode.CAPTURE_RETRY_NOT_ALLOWED: 409,
}
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class ConsentAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accepted: bool
    lang: str = "zh-CN"


def static_dir() -> Path:
    return Path(str(resources.files("shiren.api").joinpath("static")))


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked:
        try:
            return normalise_lang(asked[:16])
        except InputError:
            pass
    return negotiate_lang(request.headers.get("accept-language"))


def _error(exc: ShirenError) -> JSONResponse:
    status = _STATUS.get(exc.code) or status_of(exc)
    headers = dict(_PRIVATE)
    if exc.code is ErrorCode.CAPTURE_RATE_LIMITED:
        headers["Retry-After"] = str(max(1, round(float(exc.detail.get("retry_after_s", 1)))))
    safe = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | float | list)}
    return problem(status, exc.code, exc.message, extra=safe or None, headers=headers)


async def _answer(call: Callable[[], Awaitable[dict[str, Any]]]) -> JSONResponse:
    try:
        body = await call()
    except ShirenError as exc:
        return _error(exc)
    return JSONResponse(body, headers=_PRIVATE)


def link_sessions(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Add ``capture_url`` beside every ``capture_token`` in a response body: the public
    origin (``SHIREN_PUBLIC_URL``) or the request's own, + ``/capture/<token>``."""
    origin = getattr(request.app.state, "public_url", None) or str(request.base_url)
    origin = origin.rstrip("/")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            token = node.get("capture_token")
            if isinstance(token, str):
                node["capture_url"] = f"{origin}/capture/{token}"
            for value in node.values():
                walk(value)

    walk(body)
    return body


def install_capture(app: FastAPI, service: ShirenService) -> CaptureService:
    """Mount the page and its API on ``app`` (called once from ``create_app``)."""
    capture = CaptureService(service)
    app.state.capture = capture
    assets = static_dir() / "capture"
    app.mount("/capture/assets", StaticFiles(directory=assets), name="capture-assets")

    @app.get("/capture/{token}", include_in_schema=False)
    async def page(token: str) -> Response:
        try:
            await run_in_threadpool(capture.claim, token)
        except ShirenError as exc:
            # The page still loads (it shows the link problem in the borrower's language).
            headers = {**_PRIVATE, "Content-Security-Policy": _CSP}
            return FileResponse(
                assets / "index.html", status_code=_STATUS.get(exc.code, 404), headers=headers
            )
        headers = {**_PRIVATE, "Content-Security-Policy": _CSP}
        return FileResponse(assets / "index.html", headers=headers)

    @app.get("/v1/capture/{token}", tags=["capture"])
    async def info(request: Request, token: str) -> JSONResponse:
        """What the page needs: status, challenge, level, consent texts, the alternatives."""
        return await _answer(lambda: run_in_threadpool(capture.info, token, _lang(request)))

    @app.post("/v1/capture/{token}/consent", tags=["capture"])
    async def consent(request: Request, token: str, body: ConsentAnswer) -> JSONResponse:
        """Record the borrower's answer to the face-processing consent (audited, no PII)."""
        client = request.headers.get("user-agent", "")[:256]
        return await _answer(
            lambda: run_in_threadpool(
                lambda: capture.consent(
                    token, lang=body.lang, accepted=body.accepted, client=client
                )
            )
        )

    @app.post("/v1/capture/{token}/quality", tags=["capture"])
    async def quality(request: Request, token: str) -> JSONResponse:
        """One small JPEG frame (raw ``image/jpeg`` body) → the server's quality reasons."""

        async def run() -> dict[str, Any]:
            image = await request.body()
            if len(image) > MAX_QUALITY_BYTES:
                raise InputError("guidance frame too large", code=ErrorCode.IMAGE_TOO_LARGE)
            return await run_in_threadpool(
                lambda: capture.quality(
                    token,
                    receipt=request.headers.get(RECEIPT_HEADER),
                    image=image,
                    lang=_lang(request),
                )
            )

        return await _answer(run)

    @app.post("/v1/capture/{token}/frames", tags=["capture"])
    async def frames(request: Request, token: str) -> JSONResponse:
        """Submit the capture: multipart ``meta`` {nonce, t_ms} + ``frames`` (as for
        ``/v1/sessions/{id}/frames``).  Single use: a second submission is 409
        ``session.already_used`` — poll ``/result`` then."""

        async def run() -> dict[str, Any]:
            capture.claim(token)  # refuse a bad link before reading a large body
            meta, blobs = await _frames_input(request)
            return await run_in_threadpool(
                lambda: capture.submit(
                    token,
                    receipt=request.headers.get(RECEIPT_HEADER),
                    nonce=meta.nonce,
                    frames=blobs,
                    times_ms=meta.t_ms,
                    lang=_lang(request),
                )
            )

        return await _answer(run)

    @app.post("/v1/capture/{token}/retry", tags=["capture"])
    async def retry(request: Request, token: str) -> JSONResponse:
        """After a ``retry`` decision with attempts left: the next attempt's link (idempotent);
        409 ``capture.retry_not_allowed`` otherwise."""
        receipt = request.headers.get(RECEIPT_HEADER)
        return await _answer(
            lambda: run_in_threadpool(lambda: capture.retry(token, receipt=receipt))
        )

    @app.get("/v1/capture/{token}/result", tags=["capture"])
    async def result(request: Request, token: str) -> JSONResponse:
        """The decision as the borrower sees it (``decision: null`` until judged)."""
        return await _answer(lambda: run_in_threadpool(capture.result, token, _lang(request)))

    return capture


__all__ = ["install_capture", "link_sessions", "static_dir"]
