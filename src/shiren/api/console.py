"""The review console's pages under ``/console``: server-rendered HTML (Jinja2, autoescaped).

Thin like the rest of the API: every rule lives in :mod:`shiren.service.console` (roles, tenant
scope, reasons) and :mod:`shiren.service.console_auth` (sessions, CSRF, lock-out); this module
reads forms, sets cookies and renders (through :mod:`shiren.api.console_web`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from shiren.api import console_charts as charts
from shiren.api.console_i18n import LANG_COOKIE, LANGS
from shiren.api.console_population import population_panel
from shiren.api.console_web import (
    COOKIE,
    LOGIN_COOKIE,
    NAV,
    ConsolePageError,
    call,
    console_of,
    keyframe,
    lang_of,
    on_console_error,
    posted,
    read_form,
    redirect,
    render,
    safe_next,
    secure_cookies,
    signed_in,
    staff_names,
    texts,
)
from shiren.domain.console import PERMISSIONS, ConsoleRole, Permission
from shiren.domain.entities import ReviewStatus
from shiren.errors import ErrorCode, InputError, ShirenError
from shiren.messages import message
from shiren.service.app import ShirenService
from shiren.service.console import ConsoleService
from shiren.service.console_auth import ConsolePolicy, Principal
from shiren.service.console_views import DECISIONS, Dashboard

DEMO_MAX_PHOTO_BYTES = 8 * 1024 * 1024
"""The demo form's reference photo (a phone photo; the decoder has its own pixel limits)."""

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/static/console.css")
async def stylesheet() -> Response:
    css = resources.files("shiren.api").joinpath("console_static/console.css").read_text("utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    me, _ = await signed_in(request)
    first = next((href for href, _, perm in NAV if perm in PERMISSIONS[me.user.role]), "")
    return redirect(first or "/console/login")


@router.get("/lang")
async def switch_language(request: Request, to: str = "en", back: str = "") -> Response:
    """Remember the chosen language (English or 中文) and go back to the page."""
    response = redirect(safe_next(back))
    response.set_cookie(
        LANG_COOKIE,
        to if to in LANGS else "en",
        max_age=365 * 86400,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/console",
    )
    return response


# -- sign-in -------------------------------------------------------------------------------


def _login_page(
    request: Request, *, status: int = 200, error: str = "", username: str = "", nxt: str = ""
) -> HTMLResponse:
    nonce, token = console_of(request).auth.login_nonce()
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
        secure=secure_cookies(request),
        path="/console/login",
    )
    return response


@router.get("/login")
async def login_form(request: Request, next: str = "") -> Response:
    return _login_page(request, nxt=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    form = await read_form(request)
    username, nxt = form.get("username", "")[:64], safe_next(form.get("next", ""))
    nonce = request.cookies.get(LOGIN_COOKIE)
    await call(console.auth.check_login_csrf, nonce, form.get("csrf", ""))
    try:
        _, cookie = await run_in_threadpool(
            console.auth.sign_in, username, form.get("password", "")
        )
    except ShirenError as exc:
        locked = exc.code is ErrorCode.CONSOLE_LOCKED
        status = 429 if locked else 401
        known = exc.code in _LOGIN_CODES
        text = message(exc.code, lang_of(request)) if known else texts(request)("Sign-in failed.")
        return _login_page(request, status=status, error=text, username=username, nxt=nxt)
    response = redirect(nxt, request, cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


_LOGIN_CODES = {ErrorCode.CONSOLE_LOCKED, ErrorCode.CONSOLE_SIGN_IN_FAILED}


@router.post("/logout")
async def logout(request: Request) -> Response:
    me, _, _ = await posted(request)
    await call(console_of(request).auth.sign_out, me)
    response = redirect("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- queue and cases -----------------------------------------------------------------------


@router.get("/queue")
async def queue(request: Request, status: str = "open", ref: str = "") -> Response:
    me, cookie = await signed_in(request)
    cases = await call(console_of(request).queue, me, status, ref.strip()[:128])
    fallbacks = await call(console_of(request).fallback_queue, me, status, ref.strip()[:128])
    return render(
        request,
        "queue.html",
        me,
        cookie,
        title="Review queue",
        section="/console/queue",
        cases=cases,
        fallbacks=fallbacks,
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
    console = console_of(request)
    case = await call(console.case, me, review_id)
    names = await run_in_threadpool(console.reviewer_names, me)
    return render(
        request,
        "case.html",
        me,
        cookie,
        status=status,
        title="Case",
        title_ref=review_id[:8],
        section="/console/queue",
        case=case,
        names=names,
        categories=console.categories(me, case),
        can_decide=Permission.QUEUE_DECIDE in PERMISSIONS[me.user.role],
        can_view_evidence=console.may_view_evidence(me),
        injection=await call(console.injection, me, case),
        keyframes_kept=console.keyframes_kept(me),
        error=error,
        form=form or {},
    )


@router.get("/reviews/{review_id}")
async def case(request: Request, review_id: str) -> Response:
    me, cookie = await signed_in(request)
    return await _case_page(request, me, cookie, review_id)


@router.post("/reviews/{review_id}/decision")
async def decide(request: Request, review_id: str) -> Response:
    me, cookie, form = await posted(request)
    try:
        await run_in_threadpool(
            lambda: console_of(request).decide(
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
    return redirect(f"/console/reviews/{review_id}", request, cookie)


@router.get("/reviews/{review_id}/evidence/{evidence_id}")
async def review_keyframe(request: Request, review_id: str, evidence_id: str) -> Response:
    """A keyframe the case kept for its reviewers (reviewers only; each view audited)."""
    me, cookie = await signed_in(request)
    jpeg = await call(console_of(request).keyframe, me, review_id, evidence_id)
    return keyframe(request, jpeg, cookie)


async def _fallback_page(
    request: Request,
    me: Principal,
    cookie: str,
    flow_id: str,
    *,
    status: int = 200,
    error: str = "",
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    console = console_of(request)
    case = await call(console.fallback_case, me, flow_id)
    names = await run_in_threadpool(console.reviewer_names, me)
    return render(
        request,
        "fallback.html",
        me,
        cookie,
        status=status,
        title="Non-face case",
        title_ref=flow_id[:8],
        section="/console/queue",
        case=case,
        names=names,
        categories=console.categories(me, None),
        can_decide=Permission.QUEUE_DECIDE in PERMISSIONS[me.user.role],
        error=error,
        form=form or {},
    )


@router.get("/fallbacks/{flow_id}")
async def fallback_case(request: Request, flow_id: str) -> Response:
    """A non-face case (issue 6) that ended in manual review: its steps and reasons."""
    me, cookie = await signed_in(request)
    return await _fallback_page(request, me, cookie, flow_id)


@router.post("/fallbacks/{flow_id}/decision")
async def decide_fallback(request: Request, flow_id: str) -> Response:
    me, cookie, form = await posted(request)
    await call(console_of(request).fallback_case, me, flow_id)  # a fallback of this tenant
    try:
        await run_in_threadpool(
            lambda: console_of(request).decide(
                me,
                flow_id,
                outcome=form.get("outcome", ""),
                category=form.get("category", ""),
                note=form.get("note", ""),
            )
        )
    except InputError as exc:
        return await _fallback_page(
            request, me, cookie, flow_id, status=400, error=exc.message, form=form
        )
    except ShirenError as exc:
        raise ConsolePageError(exc) from None
    return redirect(f"/console/fallbacks/{flow_id}", request, cookie)


@router.post("/demo")
async def demo(request: Request) -> Response:
    """A demo capture session for the person in the uploaded photo (multipart form)."""
    me, cookie = await signed_in(request)
    form = await request.form(max_files=1, max_fields=8, max_part_size=DEMO_MAX_PHOTO_BYTES)
    await call(console_of(request).auth.check_csrf, me, str(form.get("csrf", "")))
    photo = form.get("reference")
    image = await photo.read(DEMO_MAX_PHOTO_BYTES + 1) if isinstance(photo, UploadFile) else b""
    if len(image) > DEMO_MAX_PHOTO_BYTES:
        image = b""
    level = str(form.get("level", "normal"))
    url = await call(console_of(request).start_demo, me, image, level)
    return redirect(url, request, cookie)


# -- subjects, audit, dashboard ------------------------------------------------------------


@router.get("/subjects")
async def subjects(request: Request, ref: str = "") -> Response:
    me, cookie = await signed_in(request)
    found = await call(console_of(request).find_subjects, me, ref)
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
    me, cookie = await signed_in(request)
    record = await call(console_of(request).subject, me, subject_id)
    names = await run_in_threadpool(console_of(request).reviewer_names, me)
    return render(
        request,
        "subject.html",
        me,
        cookie,
        title="Subject",
        section="/console/subjects",
        record=record,
        who=staff_names(names),
    )


async def _audit_page(
    request: Request, me: Principal, cookie: str, page: int, verified: Any = None
) -> HTMLResponse:
    data = await call(console_of(request).audit_page, me, page)
    names = await run_in_threadpool(console_of(request).reviewer_names, me)
    return render(
        request,
        "audit.html",
        me,
        cookie,
        title="Audit log",
        section="/console/audit",
        page=data,
        verified=verified,
        who=staff_names(names),
        can_subjects=Permission.SUBJECTS_VIEW in PERMISSIONS[me.user.role],
    )


@router.get("/audit")
async def audit(request: Request, page: int = 1) -> Response:
    me, cookie = await signed_in(request)
    return await _audit_page(request, me, cookie, page)


@router.post("/audit/verify")
async def audit_verify(request: Request) -> Response:
    me, cookie, _ = await posted(request)
    result = await call(console_of(request).verify_audit, me)
    return await _audit_page(request, me, cookie, 1, result)


def _charts(dash: Dashboard, t: Callable[[str], str]) -> dict[str, str]:
    """The dashboard's SVG charts (server-side, no JavaScript), in the page's language."""
    n = len(dash.days)
    volumes = {d: dash.by_decision[d] for d in DECISIONS}
    by_decision = t("Days: {n}, stacked by decision").format(n=n)
    return {
        "volumes": charts.stacked_bars(
            dash.days, volumes, t("Checks per day by decision"), by_decision, t
        ),
        "rate": charts.rate_line(
            dash.days, dash.pass_rate, t("Pass rate per day"), t("share of checks decided pass"), t
        ),
        "reasons": charts.hbars(
            [(r.code, c) for r, c in dash.failure_reasons],
            t("Most frequent failure reasons"),
            t("reason codes of the period's checks, most frequent first"),
            t,
        ),
        "attacks": charts.bars(
            dash.days,
            dash.attacks,
            "attack",
            t("Attack signals per day"),
            t("liveness.* reasons"),
            t,
        ),
        "lockouts": charts.bars(
            dash.days, dash.lockouts, "lockout", t("Lock-outs per day"), t("limit.* reasons"), t
        ),
    }


@router.get("/dashboard")
async def dashboard(request: Request, days: int = 14) -> Response:
    me, cookie = await signed_in(request)
    dash = await call(console_of(request).dashboard, me, days)
    return render(
        request,
        "dashboard.html",
        me,
        cookie,
        title="Dashboard",
        section="/console/dashboard",
        dash=dash,
        days=len(dash.days),
        charts=_charts(dash, texts(request)),
        decisions=DECISIONS,
        population=await population_panel(console_of(request).service, me),
    )


# -- users ---------------------------------------------------------------------------------


async def _users_page(
    request: Request, me: Principal, cookie: str, status: int = 200, **ctx: Any
) -> HTMLResponse:
    users = await call(console_of(request).users, me)
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
    me, cookie = await signed_in(request)
    return await _users_page(request, me, cookie)


@router.post("/users")
async def add_user(request: Request) -> Response:
    me, cookie, form = await posted(request)
    try:
        created = await run_in_threadpool(
            console_of(request).add_user, me, form.get("username", ""), form.get("role", "")
        )
    except InputError as exc:
        return await _users_page(request, me, cookie, status=400, error=exc.message)
    except ShirenError as exc:
        if exc.code is ErrorCode.RECORD_DUPLICATE:
            return await _users_page(
                request, me, cookie, status=409, error="That username is taken."
            )  # the template translates it
        raise ConsolePageError(exc) from None
    return await _users_page(request, me, cookie, created=created)


@router.post("/users/{user_id}")
async def change_user(request: Request, user_id: str) -> Response:
    me, cookie, form = await posted(request)
    action, role = form.get("action", ""), form.get("role", "")
    try:
        user, password = await run_in_threadpool(
            console_of(request).change_user, me, user_id, action, role
        )
    except InputError as exc:
        return await _users_page(request, me, cookie, status=400, error=exc.message)
    except ShirenError as exc:
        raise ConsolePageError(exc) from None
    if password is not None:
        return await _users_page(request, me, cookie, reset=(user, password))
    t = texts(request)
    done = t("{user}: {action} done.").format(user=user.username, action=t(action))
    return await _users_page(request, me, cookie, flash=done)


# -- wiring --------------------------------------------------------------------------------


def install_console(
    app: FastAPI, service: ShirenService, policy: ConsolePolicy | None = None
) -> ConsoleService:
    """Mount ``/console`` on ``app`` (the one line ``create_app`` needs)."""
    console = ConsoleService.for_service(service, policy)
    app.state.console = console
    app.include_router(router)
    app.add_exception_handler(ConsolePageError, on_console_error)
    return console


__all__ = ["install_console", "router"]
