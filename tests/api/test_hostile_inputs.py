"""Hostile input through the API: injection strings in every string field of every JSON body
(enumerated from the OpenAPI document), in every path and query parameter; another tenant's
identifiers on every route with a path id (API and console); replayed sessions.

Generic over the routes the app has when the test runs: an operation added later is covered
(its JSON body gets a baseline built from its schema when ``BASELINES`` does not know it).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from typing import Any

from shiren.liveness.challenge import parse_challenge
from shiren.service.app import verify_audit
from tests.api.console_support import staff
from tests.api.hostile_support import Live, live, routes_of
from tests.service.support import CONSENT, Recording

__all__ = ["live"]

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE subjects; --",
    '" OR 1=1 --',
    "1) UNION SELECT api_key_hash FROM tenants --",
    "%' AND pg_sleep(5) IS NULL --",
    "../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/dev/zero",
    "\x00",
    "a\u0000b",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}{% raw %}",
    "<script>alert(1)</script>",
    "\u202e\ufeff\U0001f600",
    "A" * 5000,
]


# -- the OpenAPI document: every string field of every JSON body -----------------------------


def _resolve(schema: dict[str, Any], doc: dict[str, Any], local: dict[str, Any]) -> Any:
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[1]
    if ref.startswith("#/components/schemas/"):
        return _resolve(doc["components"]["schemas"][name], doc, local)
    return _resolve(local["$defs"][name], doc, local)


def _string_paths(
    schema: dict[str, Any], doc: dict[str, Any], local: dict[str, Any], prefix: tuple[str, ...]
) -> list[tuple[str, ...]]:
    schema = _resolve(schema, doc, local)
    variants = schema.get("anyOf") or schema.get("oneOf") or [schema]
    out: list[tuple[str, ...]] = []
    for raw in variants:
        variant = _resolve(raw, doc, local)
        if variant.get("type") == "string":
            out.append(prefix)
        for name, sub in (variant.get("properties") or {}).items():
            out.extend(_string_paths(sub, doc, local, (*prefix, name)))
    return sorted(set(out))


def _minimal(schema: dict[str, Any], doc: dict[str, Any], local: dict[str, Any]) -> Any:
    """A crude valid-looking instance for an operation ``BASELINES`` does not know."""
    schema = _resolve(schema, doc, local)
    if "anyOf" in schema:
        return _minimal(schema["anyOf"][0], doc, local)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        return {k: _minimal(v, doc, local) for k, v in (schema.get("properties") or {}).items()}
    if kind in {"integer", "number"}:
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_minimal(schema.get("items", {}), doc, local)]
    return "a" * max(1, schema.get("minLength", 1))


def _json_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                out.append((method.upper(), path, content["application/json"]["schema"]))
    return out


def _baselines(live: Live) -> dict[tuple[str, str], dict[str, Any]]:
    ids = live.ids
    return {
        ("POST", "/v1/subjects"): {
            "external_ref": "ref",
            "name": "张三",
            "id_number": "11010519491231002X",
            "consent": CONSENT,
            "reference_image": ids["reference_b64"],
        },
        ("POST", "/v1/events"): {
            "subject_id": ids["passed_subject"],
            "type": "disbursement",
            "amount_minor": 100,
            "device_id": "phone-1",
        },
        ("POST", "/v1/subjects/{subject_id}/consents/withdraw"): {"purpose": CONSENT["purpose"]},
        ("PUT", "/v1/webhook"): {"url": "https://hooks.invalid/shiren", "secret": "s" * 24},
        ("POST", "/v1/reviews/{review_id}"): {"outcome": "reject", "reviewer": "r", "note": "n"},
    }


def _set(body: Any, path: tuple[str, ...], value: str) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return copy


def _fill(path: str, live: Live, value: str | None = None) -> str:
    ids = {
        "session_id": live.ids["session"],
        "subject_id": live.ids["subject"],
        "check_id": live.ids["check"],
        "review_id": live.ids["review"],
        "user_id": live.admin.user_id if live.admin else "0" * 32,
    }
    pattern = r"\{(\w+)(?::\w+)?\}"
    return re.sub(pattern, lambda m: value or ids.get(m[1], live.ids["subject"]), path)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_injection_in_every_string_field_of_every_json_body(live: Live) -> None:
    doc = live.app.openapi()
    baselines = _baselines(live)
    ops = _json_operations(doc)
    assert ("POST", "/v1/events") in {(m, p) for m, p, _ in ops}
    sent, statuses = 0, set()
    with live.client() as c:
        for method, path, schema in ops:
            local = _resolve(schema, doc, schema)
            base = baselines.get((method, path)) or _minimal(schema, doc, local)
            fields = _string_paths(schema, doc, local, ())
            assert fields, (method, path)
            for field in fields:
                for payload in INJECTIONS:
                    body = _set(base, field, payload)
                    if path == "/v1/subjects" and field != ("external_ref",):
                        body["external_ref"] = uuid.uuid4().hex  # else a 409 stops it early
                    resp = c.request(method, _fill(path, live), json=body, headers=live.auth_a)
                    sent += 1
                    statuses.add(resp.status_code)
                    assert resp.status_code < 500, (method, path, field, payload, resp.text)
    print(f"\ninjection: {sent} requests over {len(ops)} JSON operations, statuses {statuses}")
    _assert_intact(live)


def test_injection_in_every_path_and_query_parameter(live: Live) -> None:
    cookie_client = live.admin.client if live.admin else None
    assert cookie_client is not None
    sent = 0
    with live.client() as c:
        for method, path in routes_of(live.app):
            if "{" not in path and method != "GET":
                continue
            for payload in INJECTIONS:
                quoted = _quote(payload)
                url = _fill(path, live, quoted) if "{" in path else path
                url += f"?status={quoted}&ref={quoted}&q={quoted}&page={quoted}&days={quoted}"
                url += f"&to={quoted}&back={quoted}&next={quoted}"
                if path.startswith("/console"):
                    resp = cookie_client.request(method, url, follow_redirects=False)
                else:
                    resp = c.request(method, url, headers=live.auth_a)
                sent += 1
                assert resp.status_code < 500, (method, url[:200], resp.status_code)
                location = resp.headers.get("location", "")
                assert not location.startswith(("http", "//")), ("open redirect", url, location)
    print(f"\npath/query injection: {sent} requests")
    _assert_intact(live)


def _assert_intact(live: Live) -> None:
    """The seeded records are still there, the audit chain still verifies."""
    with live.client() as c:
        session = c.get(f"/v1/sessions/{live.ids['session']}", headers=live.auth_a)
        assert session.status_code == 200, session.text
        export = c.get(f"/v1/subjects/{live.ids['subject']}/export", headers=live.auth_a)
        assert export.status_code == 200, export.text
    audit = verify_audit(live.service.store, live.service.keys.audit_key, live.tenant_a)
    assert audit.ok, audit


def test_another_tenants_ids_on_every_route_with_a_path_id(live: Live) -> None:
    tenant_b = live.service.authenticate(live.key_b)
    bob = staff(live.app, live.app.state.console, tenant_b, "bob", "admin")
    assert bob.sign_in().status_code == 303
    baselines = _baselines(live)
    doc = live.app.openapi()
    before = _snapshot(live)
    reached, unreached = [], []
    with live.client() as c:
        for method, path in routes_of(live.app):
            if "{" not in path or "{token}" in path:  # a capture token is its own credential
                continue
            url = _fill(path, live)
            if path.startswith("/console"):
                if method == "POST":
                    resp = bob.post(url, _console_form(path), csrf_from="/console/queue")
                else:
                    resp = bob.client.get(url, follow_redirects=False)
            else:
                kwargs = _api_body(live, baselines, doc, method, path)
                resp = c.request(method, url, headers=live.auth_b, **kwargs)
            what = (method, path, resp.status_code, resp.text[:200])
            assert resp.status_code >= 400, ("another tenant's id succeeded", what)
            if resp.status_code in {400, 422} and (method, path) not in baselines:
                unreached.append(what[:3])  # its schema-built body was refused first
                continue
            assert resp.status_code == 404, what
            reached.append((method, path))
    print(f"\nother tenant: {len(reached)} routes 404; refused before the lookup: {unreached}")
    assert len(reached) >= 10, reached
    assert _snapshot(live) == before


def _api_body(
    live: Live,
    baselines: dict[tuple[str, str], Any],
    doc: dict[str, Any],
    method: str,
    path: str,
) -> dict[str, Any]:
    """A well-formed body, so the request reaches the record lookup (not a 400 before it)."""
    if path.endswith("/frames"):
        meta = {"nonce": live.ids["nonce"], "t_ms": [0, 66, 133]}
        jpeg = base64.b64decode(live.ids["reference_b64"])
        return {
            "data": {"meta": json.dumps(meta)},
            "files": [("frames", (f"{i}.jpg", jpeg, "image/jpeg")) for i in range(3)],
        }
    body = baselines.get((method, path))
    if body is None:
        content = doc["paths"].get(path, {}).get(method.lower(), {}).get("requestBody", {})
        schema = content.get("content", {}).get("application/json", {}).get("schema")
        body = None if schema is None else _minimal(schema, doc, _resolve(schema, doc, schema))
    return {} if body is None else {"json": body}


def _console_form(path: str) -> dict[str, str]:
    if path.endswith("/decision"):
        return {"outcome": "approve", "category": "same_person", "note": "looks fine"}
    return {"action": "disable", "role": "reviewer"}


def _snapshot(live: Live) -> dict[str, Any]:
    with live.client() as c:
        return {
            "session": c.get(f"/v1/sessions/{live.ids['session']}", headers=live.auth_a).json(),
            "export": c.get(
                f"/v1/subjects/{live.ids['subject']}/export", headers=live.auth_a
            ).json(),
            "reviews": c.get("/v1/reviews?status=open", headers=live.auth_a).json(),
            "admin": live.admin.client.get("/console/users").status_code if live.admin else 0,
        }


def test_replayed_sessions(live: Live, recording: Recording) -> None:
    """A session submitted twice at the same instant passes once (the other is 409); an old
    session's nonce and frames sent to a new session are refused."""
    with live.client() as c:
        event = {"subject_id": live.ids["passed_subject"], "type": "password_reset"}
        opened = c.post("/v1/events", json=event, headers=live.auth_a)
        assert opened.status_code == 200, opened.text
        session = opened.json()["session"]
        frames, times = recording.answer(parse_challenge(session["challenge"]))
    files = [("frames", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    meta = {"meta": json.dumps({"nonce": session["nonce"], "t_ms": times})}
    results: list[int] = []

    def submit(session_id: str) -> None:
        with live.client() as cc:
            url = f"/v1/sessions/{session_id}/frames"
            resp = cc.post(url, data=meta, files=files, headers=live.auth_a)
            results.append(resp.status_code)

    threads = [threading.Thread(target=submit, args=(session["id"],)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [200, 409], results
    with live.client() as c:  # the same capture (nonce and all) against a fresh session
        fresh = c.post("/v1/events", json=event, headers=live.auth_a).json()["session"]
    results.clear()
    submit(fresh["id"])
    assert results == [400], results
