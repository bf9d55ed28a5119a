"""Every route of the app needs credentials, except an explicit, justified allow-list.

The routes are enumerated from ``app.routes`` (not from a hand-kept list), so a route added later
— the capture page, anti-fraud, connectors — fails this test until it either checks
credentials (API key, capture token or console session) or is added to ``PUBLIC`` here with a
reason.  Path parameters are filled with tenant A's real ids, so "needs auth" is tested where it
matters: an anonymous request for an existing record.

``/metrics`` is public on purpose (a Prometheus scraper has no tenant key); it holds counters
by method, route *template*, status and decision only.  The test checks it names no tenant,
subject, session, check or review id and no key after traffic.  Deployments keep it off the
public internet at the proxy (docs/RELIABILITY.md).
"""

from __future__ import annotations

import re
from typing import Any

from tests.api.hostile_support import Live, live, routes_of

__all__ = ["live"]

# (method, path) → why it may answer without credentials
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness probe: says only 'ok'",
    ("GET", "/readyz"): "readiness probe: database/models booleans, the stored-faces warning",
    ("GET", "/metrics"): "Prometheus counters without ids (checked below); network-restricted",
    ("GET", "/openapi.json"): "the API's published contract",
    ("GET", "/docs"): "the contract rendered (Swagger UI)",
    ("GET", "/docs/oauth2-redirect"): "part of Swagger UI",
    ("GET", "/redoc"): "the contract rendered (ReDoc)",
    ("GET", "/console/login"): "the console sign-in page",
    ("POST", "/console/login"): "signing in (CSRF- and lock-out-protected)",
    ("GET", "/console/lang"): "remembers a language choice in a cookie, reads nothing",
    ("GET", "/console/static/console.css"): "a static stylesheet",
}
PUBLIC_ONCE_MERGED: dict[tuple[str, str], str] = {
    # the capture page (issue 5's capture branch): present once merged, not stale before
    ("GET", "/capture/assets/"): "the capture page's static files (HTML/CSS/JS, no data)",
}
DENIED = {401, 403}
TOKEN_PARAM = "{token}"
"""A route with this path parameter is authorised by a capture token (the borrower has no key):
probed with a forged token, it must refuse (``capture.token_*``, or a schema error before the
token is even read) — never succeed."""
TOKEN_CODES = {"capture.token_invalid", "capture.token_expired", "input.invalid"}


def _fill(path: str, live: Live) -> str:
    """Path parameters ← tenant A's real ids (by name; any other name gets the subject id)."""
    by_name = {
        "session_id": live.ids["session"],
        "subject_id": live.ids["subject"],
        "check_id": live.ids["check"],
        "review_id": live.ids["review"],
        "user_id": live.admin.user_id if live.admin else "0" * 32,
        "token": "forged-" + "0" * 40,
    }
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: by_name.get(m[1], live.ids["subject"]), path)


def _anonymous(live: Live, method: str, path: str) -> Any:
    with live.client() as c:
        # as an API client would ask: JSON please (the console then answers 401, not a redirect)
        return c.request(method, _fill(path, live), headers={"Accept": "application/json"})


def _open_routes(live: Live) -> list[tuple[str, str, int, str]]:
    """The routes outside ``PUBLIC`` that answer an anonymous request with anything but a
    401/403 problem document."""
    found = []
    for method, path in routes_of(live.app):
        if (method, path) in PUBLIC or (method, path) in PUBLIC_ONCE_MERGED:
            continue
        resp = _anonymous(live, method, path)
        if TOKEN_PARAM in path:
            if not _refused_token(resp):
                found.append((method, path, resp.status_code, resp.text[:120]))
            continue
        if resp.status_code not in DENIED:
            found.append((method, path, resp.status_code, resp.text[:120]))
            continue
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] in {"auth.required", "console.session_expired"}, resp.text
    return found


def _refused_token(resp: Any) -> bool:
    if not 400 <= resp.status_code < 500:
        return False
    if resp.headers.get("content-type", "").startswith("text/html"):
        return resp.status_code in {404, 410}  # the capture page's "link not valid" page
    return bool(resp.json().get("code") in TOKEN_CODES)


def test_every_route_needs_credentials_except_the_allow_list(live: Live) -> None:
    routes = routes_of(live.app)
    assert len(routes) >= 30, routes
    assert ("POST", "/console/reviews/{review_id}/decision") in routes  # included routers too
    assert set(PUBLIC) <= set(routes), set(PUBLIC) - set(routes)  # no stale entries
    assert _open_routes(live) == [], "routes answering without credentials"


def test_a_route_without_auth_would_be_caught(live: Live) -> None:
    """Positive control: an unauthenticated route added to the app is reported."""

    async def leaky() -> dict[str, str]:
        return {"subject": "anything"}

    live.app.add_api_route("/v1/leaky/{subject_id}", leaky, methods=["GET"])
    try:
        assert [r[:3] for r in _open_routes(live)] == [("GET", "/v1/leaky/{subject_id}", 200)]
    finally:
        live.app.router.routes.pop()


def test_console_pages_redirect_a_browser_to_sign_in(live: Live) -> None:
    for method, path in routes_of(live.app):
        if not path.startswith("/console") or (method, path) in PUBLIC or method != "GET":
            continue
        with live.client() as c:
            resp = c.get(_fill(path, live), headers={"Accept": "text/html"})
        assert resp.status_code == 303, (path, resp.status_code)
        assert resp.headers["location"].startswith("/console/login"), path


def test_public_routes_reveal_no_ids_or_secrets(live: Live) -> None:
    with live.client() as c:  # traffic first, so /metrics has something to say
        for path in ("session", "check"):
            c.get(f"/v1/{path}s/{live.ids[path]}", headers=live.auth_a)
        c.get(f"/v1/subjects/{live.ids['subject']}/export", headers=live.auth_a)
        c.get(f"/v1/nothing/{live.ids['subject']}", headers=live.auth_a)
        texts = {path: c.get(path).text for method, path in PUBLIC if method == "GET"}
    secrets = [live.key_a, live.key_b, live.tenant_a, live.tenant_b, live.admin_password]
    secrets += [v for k, v in live.ids.items()]
    for path, text in texts.items():
        for secret in secrets:
            assert secret not in text, (path, secret)
    assert 'route="/v1/sessions/{session_id}"' in texts["/metrics"]
    assert 'route="unmatched"' in texts["/metrics"]
