"""The review console's pages under ``/console``: server-rendered HTML (Jinja2, autoescaped).

Thin like the rest of the API: every rule lives in :mod:`shiren.service.console` (roles, tenant
scope, reasons) and :mod:`shiren.service.console_auth` (sessions, CSRF, lock-out); this module
reads forms, sets cookies and renders.  Errors become friendly HTML pages with the same stable
codes (a client asking for JSON gets problem+json): an expired session goes back to sign-in, a
role without the permission gets 403, another tenant's id is 404.

Every response carries a strict Content-Security-Policy (no scripts, no inline styles, nothing
from another origin), ``no-store`` caching and ``frame-ancestors 'none'``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from shiren.api import console_charts as charts
from shiren.api.app import problem
from shiren.domain.console import PERMISSIONS, ConsoleRole, Permission
from shiren.domain.entities import ReviewStatus
from shiren.errors import ErrorCode, InputError, ShirenError
from shiren.messages import message
from shiren.service.app import ShirenService
from shiren.service.console import REASON_CATEGORIES, ConsoleService
from shiren.service.console_auth import ConsolePolicy, Principal
from shiren.service.console_views import DECISIONS

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


def _console(request: Request) -> ConsoleService:
    console: ConsoleService = request.app.state.console
    return console


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except ShirenError as exc:
        raise ConsolePageError(exc) from None


def _secure(request: Request) -> bool:
    return _console(request).auth.policy.secure_cookies


def _set_session(request: Request, response: Response, cookie: str) -> None:
    response.set_cookie(
        COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/console",
    )


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
    page = _env.get_template(template).render(
        me=me, nav=NAV, perms=perms, fmt=_fmt, pct=_pct, **ctx
    )
    response = HTMLResponse(page, status_code=status, headers=HEADERS)
    if cookie is not None:
        _set_session(request, response, cookie)
    return response


async def _me(request: Request) -> tuple[Principal, str]:
    return await _run(_console(request).auth.resume, request.cookies.get(COOKIE))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=16, max_part_size=16 * 1024)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _posted(request: Request) -> tuple[Principal, str, dict[str, str]]:
    """The principal of a POST whose CSRF token checks out, with its form fields."""
    me, cookie = await _me(request)
    form = await _form(request)
    await _run(_console(request).auth.check_csrf, me, form.get("csrf", ""))
    return me, cookie, form


def _redirect(url: str, request: Request | None = None, cookie: str | None = None) -> Response:
    response = RedirectResponse(url, status_code=303, headers=HEADERS)
    if request is not None and cookie is not None:
        _set_session(request, response, cookie)
    return response


router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/static/console.css")
async def stylesheet() -> Response:
    css = resources.files("shiren.api").joinpath("console_static/console.css").read_text("utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    me, _ = await _me(request)
    first = next((href for href, _, perm in NAV if perm in PERMISSIONS[me.user.role]), "")
    return _redirect(first or "/console/login")


# -- sign-in -------------------------------------------------------------------------------


def _login_page(
    request: Request, *, status: int = 200, error: str = "", username: str = "", nxt: str = ""
) -> HTMLResponse:
    nonce, token = _console(request).auth.login_nonce()
    response = render(
        request,
        "login.html",
        None,
        status=status,
        title="Sign in",
        error=error,
        username=username,
        next=nxt,
        login_csrf=token,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/console/login",
    )
    return response


def _safe_next(value: str) -> str:
    """Only a console path: never an absolute URL (an open redirect)."""
    ok = value.startswith("/console/") and not value.startswith("//") and "\\" not in value
    return value if ok else "/console"


@router.get("/login")
async def login_form(request: Request, next: str = "") -> Response:
    return _login_page(request, nxt=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    console = _console(request)
    form = await _form(request)
    username, nxt = form.get("username", "")[:64], _safe_next(form.get("next", ""))
    nonce = request.cookies.get(LOGIN_COOKIE)
    await _run(console.auth.check_login_csrf, nonce, form.get("csrf", ""))
    try:
        _, cookie = await run_in_threadpool(
            console.auth.sign_in, username, form.get("password", "")
        )
    except ShirenError as exc:
        locked = exc.code is ErrorCode.CONSOLE_LOCKED
        status = 429 if locked else 401
        text = message(exc.code, "en") if exc.code in _LOGIN_CODES else "Sign-in failed."
        return _login_page(request, status=status, error=text, username=username, nxt=nxt)
    response = _redirect(nxt, request, cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


_LOGIN_CODES = {ErrorCode.CONSOLE_LOCKED, ErrorCode.CONSOLE_SIGN_IN_FAILED}


@router.post("/logout")
async def logout(request: Request) -> Response:
    me, _, _ = await _posted(request)
    await _run(_console(request).auth.sign_out, me)
    response = _redirect("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- queue and cases -----------------------------------------------------------------------


@router.get("/queue")
async def queue(request: Request, status: str = "open", ref: str = "") -> Response:
    me, cookie = await _me(request)
    cases = await _run(_console(request).queue, me, status, ref.strip()[:128])
    return render(
        request,
        "queue.html",
        me,
        cookie,
        title="Review queue",
        section="/console/queue",
        cases=cases,
        review_status=status,
        ref=ref,
        statuses=[s.value for s in ReviewStatus],
        can_demo=Permission.DEMO_START in PERMISSIONS[me.user.role],
    )


async def _case_page(
    request: Request,
    me: Principal,
    cookie: str,
    review_id: str,
    *,
    status: int = 200,
    error: str = "",
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    console = _console(request)
    case = await _run(console.case, me, review_id)
    names = await run_in_threadpool(console.reviewer_names, me)
    return render(
        request,
        "case.html",
        me,
        cookie,
        status=status,
        title=f"Case {review_id[:8]}",
        section="/console/queue",
        case=case,
        names=names,
        categories=REASON_CATEGORIES,
        can_decide=Permission.QUEUE_DECIDE in PERMISSIONS[me.user.role],
        error=error,
        form=form or {},
    )


@router.get("/reviews/{review_id}")
async def case(request: Request, review_id: str) -> Response:
    me, cookie = await _me(request)
    return await _case_page(request, me, cookie, review_id)


@router.post("/reviews/{review_id}/decision")
async def decide(request: Request, review_id: str) -> Response:
    me, cookie, form = await _posted(request)
    try:
        await run_in_threadpool(
            lambda: _console(request).decide(
                me,
                review_id,
                outcome=form.get("outcome", ""),
                category=form.get("category", ""),
                note=form.get("note", ""),
            )
        )
    except InputError as exc:  # a missing reason: show the form again with what was typed
        return await _case_page(
            request, me, cookie, review_id, status=400, error=exc.message, form=form
        )
    except ShirenError as exc:
        raise ConsolePageError(exc) from None
    return _redirect(f"/console/reviews/{review_id}", request, cookie)


@router.post("/demo")
async def demo(request: Request) -> Response:
    me, cookie, _ = await _posted(request)
    url = await _run(_console(request).start_demo, me)
    return _redirect(url, request, cookie)


# -- subjects, audit, dashboard ------------------------------------------------------------


@router.get("/subjects")
async def subjects(request: Request, ref: str = "") -> Response:
    me, cookie = await _me(request)
    found = await _run(_console(request).find_subjects, me, ref)
    return render(
        request,
        "subjects.html",
        me,
        cookie,
        title="Subjects",
        section="/console/subjects",
        ref=ref.strip(),
        subjects=found,
    )


@router.get("/subjects/{subject_id}")
async def subject(request: Request, subject_id: str) -> Response:
    me, cookie = await _me(request)
    record = await _run(_console(request).subject, me, subject_id)
    return render(
        request,
        "subject.html",
        me,
        cookie,
        title="Subject",
        section="/console/subjects",
        record=record,
    )


async def _audit_page(
    request: Request, me: Principal, cookie: str, page: int, verified: Any = None
) -> HTMLResponse:
    data = await _run(_console(request).audit_page, me, page)
    return render(
        request,
        "audit.html",
        me,
        cookie,
        title="Audit log",
        section="/console/audit",
        page=data,
        verified=verified,
        can_subjects=Permission.SUBJECTS_VIEW in PERMISSIONS[me.user.role],
    )


@router.get("/audit")
async def audit(request: Request, page: int = 1) -> Response:
    me, cookie = await _me(request)
    return await _audit_page(request, me, cookie, page)


@router.post("/audit/verify")
async def audit_verify(request: Request) -> Response:
    me, cookie, _ = await _posted(request)
    result = await _run(_console(request).verify_audit, me)
    return await _audit_page(request, me, cookie, 1, result)


@router.get("/dashboard")
async def dashboard(request: Request, days: int = 14) -> Response:
    me, cookie = await _me(request)
    dash = await _run(_console(request).dashboard, me, days)
    n = len(dash.days)
    volumes = {d: dash.by_decision[d] for d in DECISIONS}
    drawn = {
        "volumes": charts.stacked_bars(
            dash.days, volumes, "Checks per day by decision", f"{n} days, stacked by decision"
        ),
        "rate": charts.rate_line(
            dash.days, dash.pass_rate, "Pass rate per day", "share of checks decided pass"
        ),
        "reasons": charts.hbars(
            [(r.code, c) for r, c in dash.failure_reasons],
            "Most frequent failure reasons",
            "reason codes of the period's checks, most frequent first",
        ),
        "attacks": charts.bars(
            dash.days, dash.attacks, "attack", "Attack signals per day", "liveness.* reasons"
        ),
        "lockouts": charts.bars(
            dash.days, dash.lockouts, "lockout", "Lock-outs per day", "limit.* reasons"
        ),
    }
    return render(
        request,
        "dashboard.html",
        me,
        cookie,
        title="Dashboard",
        section="/console/dashboard",
        dash=dash,
        days=n,
        charts=drawn,
        decisions=DECISIONS,
    )


# -- users ---------------------------------------------------------------------------------


async def _users_page(
    request: Request, me: Principal, cookie: str, status: int = 200, **ctx: Any
) -> HTMLResponse:
    users = await _run(_console(request).users, me)
    roles = [r.value for r in ConsoleRole]
    return render(
        request,
        "users.html",
        me,
        cookie,
        status=status,
        title="Users",
        section="/console/users",
        users=users,
        roles=roles,
        **ctx,
    )


@router.get("/users")
async def users(request: Request) -> Response:
    me, cookie = await _me(request)
    return await _users_page(request, me, cookie)


@router.post("/users")
async def add_user(request: Request) -> Response:
    me, cookie, form = await _posted(request)
    try:
        created = await run_in_threadpool(
            _console(request).add_user, me, form.get("username", ""), form.get("role", "")
        )
    except InputError as exc:
        return await _users_page(request, me, cookie, status=400, error=exc.message)
    except ShirenError as exc:
        if exc.code is ErrorCode.RECORD_DUPLICATE:
            return await _users_page(
                request, me, cookie, status=409, error="That username is taken."
            )
        raise ConsolePageError(exc) from None
    return await _users_page(request, me, cookie, created=created)


# -- wiring --------------------------------------------------------------------------------


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
        response = _redirect(f"/console/login{suffix}")
        response.delete_cookie(COOKIE, path="/console")
        return response
    status, heading = _STATUS.get(err.code, (400 if isinstance(err, InputError) else 409, "Error"))
    if _wants_json(request):
        return problem(status, err.code, err.message)
    try:
        text = message(err.code, "en")
    except KeyError:
        text = err.message
    return render(
        request,
        "error.html",
        None,
        status=status,
        title=heading,
        heading=heading,
        text=text,
        code=str(err.code),
        http_status=status,
    )


def install_console(
    app: FastAPI, service: ShirenService, policy: ConsolePolicy | None = None
) -> ConsoleService:
    """Mount ``/console`` on ``app`` (the one line ``create_app`` needs)."""
    console = ConsoleService.for_service(service, policy)
    app.state.console = console
    app.include_router(router)
    app.add_exception_handler(ConsolePageError, on_console_error)
    return console


__all__ = ["COOKIE", "ConsolePageError", "install_console", "router"]
