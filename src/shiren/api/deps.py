"""The dependencies every route shares: the service and its rooms, the authenticated tenant
(``Authorization: Bearer <key>``, declared as the ``bearerAuth`` security scheme), the response
language, the client address — and the body-size guard in front of the whole app.

The service lives on ``app.state`` (:func:`attach`); a route asks for what it needs by type
(``tenant: TenantDep``) and never reaches into ``request.app`` itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shiren.api.observe import Metrics
from shiren.api.problems import problem
from shiren.domain.entities import Tenant
from shiren.errors import ErrorCode, InputError, StateError
from shiren.messages import negotiate_lang, normalise_lang
from shiren.service.app import ShirenService
from shiren.service.capture import CaptureService
from shiren.service.fallback import FallbackService
from shiren.service.payout import PayoutService

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]
MAX_KEY_CHARS = 512

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="shk_<key id>_<secret>",
    description="The tenant's API key: `Authorization: Bearer shk_…` (`shiren tenant create`).",
)


def attach(app: FastAPI, service: ShirenService) -> None:
    """Put the service and the rooms the routes use on ``app.state``."""
    app.state.service = service
    app.state.capture = CaptureService(service)
    app.state.fallbacks = service.fallbacks
    app.state.payouts = service.payouts


def _service(request: Request) -> ShirenService:
    service: ShirenService = request.app.state.service
    return service


def _capture(request: Request) -> CaptureService:
    capture: CaptureService = request.app.state.capture
    return capture


def _fallbacks(request: Request) -> FallbackService:
    fallbacks: FallbackService = request.app.state.fallbacks
    return fallbacks


def _payouts(request: Request) -> PayoutService:
    payouts: PayoutService = request.app.state.payouts
    return payouts


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > MAX_KEY_CHARS:
        raise StateError("missing or malformed Authorization header", code=ErrorCode.AUTH_REQUIRED)
    return token.strip()


async def _tenant(
    request: Request,
    service: Annotated[ShirenService, Depends(_service)],
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Tenant:
    """The authenticated tenant of the request (``auth.required`` → 401 otherwise).  The
    header is parsed here, not by ``HTTPBearer`` (which only declares the scheme)."""
    return await run_in_threadpool(service.authenticate, _bearer(request))


def _lang(
    accept_language: Annotated[
        str | None,
        Header(description="The language of tips and messages: zh-CN (default) or en."),
    ] = None,
) -> str:
    return negotiate_lang(accept_language)


def _capture_lang(
    lang: Annotated[
        str | None,
        Query(description="The page's language (zh-CN or en); else Accept-Language decides."),
    ] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> str:
    """The capture page's language: its ``?lang=`` when supported, else ``Accept-Language``."""
    if lang:
        try:
            return normalise_lang(lang[:16])
        except InputError:
            pass
    return negotiate_lang(accept_language)


def _origin(request: Request) -> str:
    """Where the capture page is served: ``SHIREN_PUBLIC_URL`` or this request's own origin."""
    origin = getattr(request.app.state, "public_url", None) or str(request.base_url)
    return str(origin).rstrip("/")


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ServiceDep = Annotated[ShirenService, Depends(_service)]
TenantDep = Annotated[Tenant, Depends(_tenant)]
CaptureDep = Annotated[CaptureService, Depends(_capture)]
FallbacksDep = Annotated[FallbackService, Depends(_fallbacks)]
PayoutsDep = Annotated[PayoutService, Depends(_payouts)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
LangDep = Annotated[str, Depends(_lang)]
CaptureLangDep = Annotated[str, Depends(_capture_lang)]
ClientIpDep = Annotated[str | None, Depends(_client_ip)]
OriginDep = Annotated[str, Depends(_origin)]


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


__all__ = [
    "BodyLimit",
    "CaptureDep",
    "CaptureLangDep",
    "ClientIpDep",
    "FallbacksDep",
    "LangDep",
    "MetricsDep",
    "OriginDep",
    "PayoutsDep",
    "ServiceDep",
    "TenantDep",
    "attach",
    "bearer_scheme",
]
