"""Rendering, cookies, forms and errors of the console's pages (the routes are in
:mod:`shiren.api.console`).

Every response carries a strict Content-Security-Policy (no scripts, no inline styles, nothing
from another origin), ``no-store`` caching and ``frame-ancestors 'none'``.  Errors become
friendly HTML pages with the stable codes (a client asking for JSON gets problem+json): an
expired session goes back to sign-in, a role without the permission gets 403, another tenant's
id is 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from shiren.api.console_i18n import LANG_COOKIE, LANGS, formatter, strong, translator
from shiren.api.problems import problem
from shiren.domain.console import PERMISSIONS, Permission
from shiren.domain.entities import AuditEvent
from shiren.errors import ErrorCode, InputError, ShirenError
from shiren.messages import message
from shiren.service.console import ConsoleService
from shiren.service.console_auth import Principal

T = TypeVar("T")
COOKIE = "shiren_console"
LOGIN_COOKIE = "shiren_console_login"
NAV = (
    ("/console/queue", "Review queue", Permission.QUEUE_VIEW),
    ("/console/subjects", "Subjects", Permission.SUBJECTS_VIEW),
    ("/console/audit", "Audit log", Permission.AUDIT_VIEW),
    ("/console/dashboard", "Dashboard", Permission.DASHBOARD_VIEW),
    ("/console/users", "Users", Permission.USERS_MANAGE),
)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
KEYFRAME_HEADERS = {
    # a face: never cached anywhere, never framed, never run as a document, never embedded by
    # another origin; the image's own bytes are a JPEG the service encoded (no metadata)
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "Cache-Control": "no-store, private, max-age=0",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Disposition": 'inline; filename="keyframe.jpg"',
}
_STATUS = {
    ErrorCode.CONSOLE_FORBIDDEN: (403, "Not allowed"),
    ErrorCode.CONSOLE_CSRF_FAILED: (403, "Form expired"),
    ErrorCode.RECORD_NOT_FOUND: (404, "Not found"),
    ErrorCode.REVIEW_ALREADY_CLOSED: (409, "Already decided"),
    ErrorCode.CONSOLE_DEMO_UNAVAILABLE: (501, "Not available"),
}

_env = Environment(
    loader=PackageLoader("shiren.api", "console_templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class ConsolePageError(Exception):
    """A typed error raised while serving a console page (rendered as HTML by the handler)."""

    def __init__(self, error: ShirenError) -> None:
        super().__init__(error.message)
        self.error = error


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def staff_names(names: dict[str, str]) -> Callable[[AuditEvent], str]:
    """The staff member an audit event names (``user_id`` or a ``console:<id>`` reviewer), by
    username; the chain itself stores ids only."""

    def who(event: AuditEvent) -> str:
        try:
            payload = json.loads(event.payload)
        except ValueError:
            return "—"
        if not isinstance(payload, dict):
            return "—"
        if isinstance(payload.get("user_id"), str):
            return names.get(f"console:{payload['user_id']}", "—")
        reviewer = payload.get("reviewer")
        if isinstance(reviewer, str):
            return names.get(reviewer, reviewer)
        return "—"

    return who


def console_of(request: Request) -> ConsoleService:
    console: ConsoleService = request.app.state.console
    return console


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except ShirenError as exc:
        raise ConsolePageError(exc) from None


def secure_cookies(request: Request) -> bool:
    return console_of(request).auth.policy.secure_cookies


def _set_session(request: Request, response: Response, cookie: str) -> None:
    response.set_cookie(
        COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/console",
    )


def lang_of(request: Request) -> str:
    """The language the staff member chose (the switch's cookie): ``en`` or ``zh-CN``."""
    lang = request.cookies.get(LANG_COOKIE, "en")
    return lang if lang in LANGS else "en"


def texts(request: Request) -> Callable[[str], str]:
    """``t(text)`` in the request's language, for texts built in Python (flash messages)."""
    return translator(lang_of(request))


def render(
    request: Request,
    template: str,
    me: Principal | None,
    cookie: str | None = None,
    status: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    """A page with the console's headers (and the refreshed session cookie)."""
    perms = PERMISSIONS[me.user.role] if me else frozenset()
    lang = lang_of(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    page = _env.get_template(template).render(
        me=me, nav=NAV, perms=perms, fmt=_fmt, pct=_pct, t=translator(lang), tf=formatter(lang),
        strong=strong, lang=lang, here=here, **ctx,
    )  # fmt: skip
    response = HTMLResponse(page, status_code=status, headers=HEADERS)
    if cookie is not None:
        _set_session(request, response, cookie)
    return response


def keyframe(request: Request, jpeg: bytes, cookie: str) -> Response:
    """A kept keyframe (:data:`KEYFRAME_HEADERS`), refreshing the session cookie."""
    response = Response(jpeg, media_type="image/jpeg", headers=KEYFRAME_HEADERS)
    _set_session(request, response, cookie)
    return response


async def signed_in(request: Request) -> tuple[Principal, str]:
    return await call(console_of(request).auth.resume, request.cookies.get(COOKIE))


async def read_form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=16, max_part_size=16 * 1024)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def posted(request: Request) -> tuple[Principal, str, dict[str, str]]:
    """The principal of a POST whose CSRF token checks out, with its form fields."""
    me, cookie = await signed_in(request)
    form = await read_form(request)
    await call(console_of(request).auth.check_csrf, me, form.get("csrf", ""))
    return me, cookie, form


def redirect(url: str, request: Request | None = None, cookie: str | None = None) -> Response:
    response = RedirectResponse(url, status_code=303, headers=HEADERS)
    if request is not None and cookie is not None:
        _set_session(request, response, cookie)
    return response


def safe_next(value: str) -> str:
    """Only a console path: never an absolute URL (an open redirect)."""
    ok = value.startswith("/console/") and not value.startswith("//") and "\\" not in value
    return value if ok else "/console"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


async def on_console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsolePageError)
    err = exc.error
    if err.code is ErrorCode.CONSOLE_SESSION_EXPIRED:
        if _wants_json(request):
            return problem(401, err.code, "sign in to the console first")
        target = request.url.path if request.method == "GET" else ""
        suffix = f"?next={quote(target)}" if target.startswith("/console/") else ""
        response = redirect(f"/console/login{suffix}")
        response.delete_cookie(COOKIE, path="/console")
        return response
    status, heading = _STATUS.get(err.code, (400 if isinstance(err, InputError) else 409, "Error"))
    if _wants_json(request):
        return problem(status, err.code, err.message)
    try:
        text = message(err.code, lang_of(request))
    except KeyError:
        text = texts(request)(err.message)
    me: Principal | None = None
    try:  # keep the navigation on the error page when the session is fine
        me, _ = await run_in_threadpool(
            console_of(request).auth.resume, request.cookies.get(COOKIE)
        )
    except ShirenError:
        me = None
    return render(
        request,
        "error.html",
        me,
        status=status,
        title=heading,
        heading=heading,
        text=text,
        code=str(err.code),
        http_status=status,
    )


__all__ = [
    "COOKIE",
    "HEADERS",
    "KEYFRAME_HEADERS",
    "LOGIN_COOKIE",
    "NAV",
    "ConsolePageError",
    "call",
    "console_of",
    "keyframe",
    "lang_of",
    "on_console_error",
    "posted",
    "read_form",
    "redirect",
    "render",
    "safe_next",
    "secure_cookies",
    "signed_in",
    "staff_names",
    "texts",
]
