"""The REST API over SQLite and PostgreSQL with the real models.

PostgreSQL runs on a throwaway database (``tests/storage/conftest.py``): skipped when the server
is unreachable, a failure when ``CI`` is set.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import text

from shiren.api.app import create_app
from shiren.service.app import Engine, ShirenService
from shiren.service.bootstrap import build_service
from shiren.service.keys import resolve_keys
from shiren.service.settings import Settings
from shiren.storage.leakscan import scan_database
from shiren.storage.sql import SqlStore, checkpoint_sqlite, make_engine, migrate
from tests.api.hostile_support import routes_of
from tests.conftest import lfw
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording
from tests.storage.conftest import fresh_pg_database

MAX_BODY = 24 * 1024 * 1024


@dataclass
class Api:
    client: TestClient
    service: ShirenService
    sql: SqlEngine
    url: str
    env: dict[str, str]
    clock: FakeClock
    recording: Recording

    def tenant(self, name: str = "lender") -> tuple[str, dict[str, str]]:
        tenant, key = self.service.create_tenant(name)
        return tenant.id, {"Authorization": f"Bearer {key}"}

    def enrol(self, auth: dict[str, str], image: bytes, ref: str = "u1") -> Any:
        body = {
            "external_ref": ref,
            "name": NAME,
            "id_number": ID_NUMBER if ref == "u1" else OTHER_ID,
            "consent": CONSENT,
            "reference_image": base64.b64encode(image).decode("ascii"),
        }
        return self.client.post("/v1/subjects", json=body, headers=auth)

    def submit(self, auth: dict[str, str], session: dict[str, Any], **over: Any) -> Any:
        from shiren.liveness.challenge import parse_challenge

        frames, times = self.recording.answer(parse_challenge(session["challenge"]))
        meta = {"nonce": session["nonce"], "t_ms": times}
        meta.update(over)
        files = [("frames", (f"f{i}.jpg", blob, "image/jpeg")) for i, blob in enumerate(frames)]
        return self.client.post(
            f"/v1/sessions/{session['id']}/frames",
            data={"meta": json.dumps(meta)},
            files=files,
            headers=auth,
        )


def _b64key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@pytest.fixture(params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> Iterator[Api]:
    env = {
        "SHIREN_MASTER_KEY": _b64key(),
        "SHIREN_AUDIT_KEY": _b64key(),
        "SHIREN_CHALLENGE_KEY": _b64key(),
        "SHIREN_ENV": "production",
    }
    with _database(request.param, tmp_path) as url:
        env["SHIREN_DATABASE_URL"] = url
        settings = Settings(
            env="production",
            database_url=url,
            master_key=env["SHIREN_MASTER_KEY"],  # type: ignore[arg-type]
            audit_key=env["SHIREN_AUDIT_KEY"],  # type: ignore[arg-type]
            challenge_key=env["SHIREN_CHALLENGE_KEY"],  # type: ignore[arg-type]
        )
        sql = make_engine(url)
        migrate(sql)
        service = ShirenService(
            store=SqlStore(sql),
            keys=resolve_keys(settings),
            engine=engine,
            clock=clock,
            draw=recording.drawer(),
            detect_replays=False,  # every session here is assembled from one recording
        )
        client = TestClient(create_app(service, max_body_bytes=MAX_BODY))
        try:
            yield Api(client, service, sql, url, env, clock, recording)
        finally:
            client.close()
            sql.dispose()


@contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a throwaway PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'api.db'}"
        return
    with fresh_pg_database() as url:
        yield url


def _is_problem(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert {"type", "title", "status", "code", "detail"} <= set(body)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


V1_ROUTES = [
    ("POST", "/v1/subjects"),
    ("POST", "/v1/enrolments/id-card"),
    ("POST", "/v1/enrolments/id-card/captures"),
    ("GET", "/v1/enrolments/id-card/captures/{id}"),
    ("POST", "/v1/sessions/{id}/frames"),
    ("GET", "/v1/sessions/{id}"),
    ("POST", "/v1/events"),
    ("GET", "/v1/checks/{id}"),
    ("DELETE", "/v1/subjects/{id}"),
    ("GET", "/v1/subjects/{id}/export"),
    ("POST", "/v1/subjects/{id}/consents/withdraw"),
    ("GET", "/v1/stats"),
    ("PUT", "/v1/webhook"),
    ("GET", "/v1/reviews"),
    ("POST", "/v1/reviews/{id}"),
    # anti-fraud, fallbacks and payouts (issue 6)
    ("POST", "/v1/blacklist"),
    ("GET", "/v1/blacklist"),
    ("DELETE", "/v1/blacklist/{id}"),
    ("GET", "/v1/subjects/{id}/fraud-findings"),
    ("POST", "/v1/events/{id}/fallback"),
    ("GET", "/v1/fallbacks"),
    ("GET", "/v1/fallbacks/{id}"),
    ("POST", "/v1/fallbacks/{id}/sms"),
    ("POST", "/v1/fallbacks/{id}/sms/verify"),
    ("POST", "/v1/fallbacks/{id}/bank-card"),
    ("POST", "/v1/fallbacks/{id}/authority"),
    ("POST", "/v1/fallbacks/{id}/review"),
    ("POST", "/v1/subjects/{id}/payout-check"),
]


def test_every_v1_route_requires_a_valid_key(api: Api) -> None:
    published = {
        (method, re.sub(r"\{\w+\}", "{id}", path))
        for method, path in routes_of(api.client.app)  # type: ignore[attr-defined]
        if path.startswith("/v1")
        # the borrower's routes are authorised by their capture token instead (one session
        # each; tests/api/test_capture_api.py)
        and not path.startswith("/v1/capture/")
    }
    assert published == set(V1_ROUTES)
    for method, path in V1_ROUTES:
        url = path.replace("{id}", "0" * 32)
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Basic eA=="},
            {"Authorization": "Bearer shk_00_" + "x" * 40},
        ):
            resp = api.client.request(method, url, headers=headers)
            body = _is_problem(resp, 401, "auth.required")
            assert "WWW-Authenticate" in resp.headers, body
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"models": True, "database": True}
    assert ready.json()["warnings"] == []
    assert "/v1/subjects" in api.client.get("/openapi.json").json()["paths"]


def test_enrol_pass_replay_step_up_isolation_and_erasure(api: Api) -> None:
    _, auth = api.tenant()
    resp = api.enrol(auth, api.recording.still_frame())
    assert resp.status_code == 201, resp.text
    subject_id = resp.json()["subject"]["id"]
    session = resp.json()["session"]
    assert session["challenge"]["signature"]
    check = api.submit(auth, session)
    assert check.status_code == 200, check.text
    assert check.json()["decision"] == "pass", check.json()
    # polling
    polled = api.client.get(f"/v1/checks/{check.json()['id']}", headers=auth)
    assert polled.json()["decision"] == "pass"
    state = api.client.get(f"/v1/sessions/{session['id']}", headers=auth).json()
    assert state["status"] == "used"
    assert state["check_id"] == check.json()["id"]
    # replay of the used session: typed 409
    _is_problem(api.submit(auth, session), 409, "session.already_used")

    # another tenant sees none of it
    _, other = api.tenant("other lender")
    for method, url in [
        ("GET", f"/v1/sessions/{session['id']}"),
        ("GET", f"/v1/checks/{check.json()['id']}"),
        ("GET", f"/v1/subjects/{subject_id}/export"),
        ("DELETE", f"/v1/subjects/{subject_id}"),
    ]:
        _is_problem(api.client.request(method, url, headers=other), 404, "record.not_found")
    event = {"subject_id": subject_id, "type": "disbursement", "amount_minor": 5_000_000}
    _is_problem(api.client.post("/v1/events", json=event, headers=other), 404)
    _is_problem(api.submit(other, session), 404, "record.not_found")

    # step-up for a disbursement: needed (high amount), and the same person passes
    api.clock.advance(30)
    step = api.client.post("/v1/events", json={**event, "device_id": "phone-1"}, headers=auth)
    assert step.status_code == 200, step.text
    assert step.json()["requirement"]["needed"] is True
    passed = api.submit(auth, step.json()["session"])
    assert passed.json()["decision"] == "pass", passed.json()

    # an expired session is a typed error
    late = api.client.post("/v1/events", json={**event, "type": "password_reset"}, headers=auth)
    api.clock.advance(301)
    _is_problem(api.submit(auth, late.json()["session"]), 410, "session.expired")

    # erasure: biometrics gone, audited, chain intact
    erased = api.client.delete(f"/v1/subjects/{subject_id}", headers=auth)
    assert erased.status_code == 200
    assert erased.json()["deleted"]["templates"] == 1
    export = api.client.get(f"/v1/subjects/{subject_id}/export", headers=auth).json()
    assert export["subject"]["status"] == "erased"
    assert export["templates"] == []
    metrics = api.client.get("/metrics").text
    assert 'shiren_decisions_total{decision="pass"} 2.0' in metrics


def test_a_different_person_does_not_pass(api: Api) -> None:
    _, auth = api.tenant()
    resp = api.enrol(auth, lfw("Jeb_Bush", 1).read_bytes(), ref="u2")
    assert resp.status_code == 201, resp.text
    check = api.submit(
        auth,
        resp.json()["session"],
    )
    assert check.status_code == 200
    body = check.json()
    assert body["decision"] != "pass"
    assert body["match_score"] < 0.9
    assert {t["code"] for t in body["tips"]} == set(body["reasons"])


def test_hostile_requests_are_4xx_problems(api: Api) -> None:
    _, auth = api.tenant()
    good = api.enrol(auth, api.recording.still_frame()).json()
    sid = good["session"]["id"]
    nonce = good["session"]["nonce"]
    c = api.client
    frames_url = f"/v1/sessions/{sid}/frames"
    jpeg = api.recording.still_frame()
    enrol_ok = {
        "external_ref": "x",
        "name": NAME,
        "id_number": ID_NUMBER,
        "consent": CONSENT,
        "reference_image": base64.b64encode(jpeg).decode(),
    }
    cases: list[tuple[str, Any, int]] = [
        ("not json", lambda: c.post("/v1/subjects", content=b"{", headers=auth), 422),
        ("json list", lambda: c.post("/v1/subjects", json=[1, 2], headers=auth), 422),
        ("missing fields", lambda: c.post("/v1/subjects", json={}, headers=auth), 422),
        (
            "wrong types",
            lambda: c.post("/v1/subjects", json={**enrol_ok, "consent": 5}, headers=auth),
            422,
        ),
        (
            "bad id number",
            lambda: c.post(
                "/v1/subjects", json={**enrol_ok, "id_number": "110105194912310021"}, headers=auth
            ),
            400,
        ),
        (
            "bad base64",
            lambda: c.post(
                "/v1/subjects", json={**enrol_ok, "reference_image": "%%"}, headers=auth
            ),
            400,
        ),
        (
            "not an image",
            lambda: c.post(
                "/v1/subjects",
                json={
                    **enrol_ok,
                    "external_ref": "y",
                    "reference_image": base64.b64encode(b"GIF89a" + b"\0" * 99).decode(),
                },
                headers=auth,
            ),
            400,
        ),
        (
            "no face",
            lambda: c.post(
                "/v1/subjects",
                json={
                    **enrol_ok,
                    "external_ref": "z",
                    "reference_image": base64.b64encode(_grey_png()).decode(),
                },
                headers=auth,
            ),
            422,
        ),
        (
            "duplicate ref",
            lambda: c.post("/v1/subjects", json={**enrol_ok, "external_ref": "u1"}, headers=auth),
            409,
        ),
        (
            "huge body",
            lambda: c.post(
                "/v1/subjects",
                content=b"x" * (MAX_BODY + 1),
                headers={**auth, "content-type": "application/json"},
            ),
            413,
        ),
        ("frames as json", lambda: c.post(frames_url, json={"nonce": nonce}, headers=auth), 400),
        (
            "frames no meta",
            lambda: c.post(frames_url, files=[("frames", ("a.jpg", jpeg))], headers=auth),
            400,
        ),
        (
            "meta not json",
            lambda: c.post(
                frames_url, data={"meta": "{"}, files=[("frames", ("a.jpg", jpeg))], headers=auth
            ),
            422,
        ),
        (
            "meta wrong types",
            lambda: c.post(
                frames_url,
                data={"meta": json.dumps({"nonce": nonce, "t_ms": ["a"]})},
                files=[("frames", ("a.jpg", jpeg))],
                headers=auth,
            ),
            422,
        ),
        (
            "garbage frames",
            lambda: c.post(
                frames_url,
                data={"meta": json.dumps({"nonce": nonce, "t_ms": [i * 66 for i in range(9)]})},
                files=[("frames", (f"{i}.jpg", b"junk")) for i in range(9)],
                headers=auth,
            ),
            400,
        ),
        (
            "too few frames",
            lambda: c.post(
                frames_url,
                data={"meta": json.dumps({"nonce": nonce, "t_ms": [0]})},
                files=[("frames", ("a.jpg", jpeg))],
                headers=auth,
            ),
            400,
        ),
        (
            "wrong nonce",
            lambda: c.post(
                frames_url,
                data={"meta": json.dumps({"nonce": "f" * 32, "t_ms": [0]})},
                files=[("frames", ("a.jpg", jpeg))],
                headers=auth,
            ),
            400,
        ),
        ("unknown session", lambda: c.get("/v1/sessions/nope", headers=auth), 404),
        ("unknown check", lambda: c.get("/v1/checks/" + "0" * 32, headers=auth), 404),
        ("unknown subject", lambda: c.delete("/v1/subjects/" + "0" * 32, headers=auth), 404),
        (
            "bad event type",
            lambda: c.post(
                "/v1/events",
                json={"subject_id": good["subject"]["id"], "type": "rob_bank"},
                headers=auth,
            ),
            400,
        ),
        (
            "negative amount",
            lambda: c.post(
                "/v1/events",
                json={"subject_id": "x", "type": "disbursement", "amount_minor": -1},
                headers=auth,
            ),
            422,
        ),
        ("unknown route", lambda: c.get("/v1/nothing", headers=auth), 404),
        ("wrong method", lambda: c.put("/v1/events", headers=auth), 405),
    ]
    cases += [
        (
            "lone surrogate name",
            lambda: c.post(
                "/v1/subjects",
                content=json.dumps({**enrol_ok, "external_ref": "s", "name": "\ud800"}),
                headers={**auth, "content-type": "application/json"},
            ),
            422,
        ),
        (
            "NUL in external_ref",
            lambda: c.post(
                "/v1/subjects", json={**enrol_ok, "external_ref": "a\u0000b"}, headers=auth
            ),
            400,
        ),
        ("NUL in path id", lambda: c.get("/v1/subjects/%00/export", headers=auth), 404),
        ("non-ASCII path id", lambda: c.get("/v1/checks/%F0%9F%98%80", headers=auth), 404),
        (
            "control chars in device",
            lambda: c.post(
                "/v1/events",
                json={
                    "subject_id": good["subject"]["id"],
                    "type": "disbursement",
                    "device_id": "\u0001",
                },
                headers=auth,
            ),
            400,
        ),
        (
            "non-ASCII API key",
            lambda: c.get(
                "/v1/checks/" + "0" * 32,
                headers={"Authorization": "Bearer shk_\xe9_x".encode("latin-1")},
            ),
            401,
        ),
        (
            "huge chunked body",
            lambda: c.post(
                "/v1/subjects",
                content=(b"x" * (1024 * 1024) for _ in range(MAX_BODY // (1024 * 1024) + 2)),
                headers={**auth, "content-type": "application/json"},
            ),
            413,
        ),
        (
            "multipart enrol without image",
            lambda: c.post(
                "/v1/subjects",
                data={"meta": json.dumps({**enrol_ok, "reference_image": None})},
                files=[("other", ("a.bin", b"1"))],
                headers=auth,
            ),
            400,
        ),
    ]
    for name, call, status in cases:
        resp = call()
        assert resp.status_code < 500, (name, resp.status_code, resp.text[:300])
        assert resp.status_code == status, (name, resp.status_code, resp.text[:300])
        assert resp.headers["content-type"].startswith("application/problem+json"), name
    # nothing above consumed the session
    state = c.get(f"/v1/sessions/{sid}", headers=auth).json()
    assert state["status"] == "open"


def _grey_png() -> bytes:
    import cv2

    ok, blob = cv2.imencode(".png", np.full((240, 320, 3), 128, dtype=np.uint8))
    assert ok
    return bytes(blob.tobytes())


def test_database_holds_no_plaintext_identity_or_template(api: Api) -> None:
    _tid, auth = api.tenant()
    still = api.recording.still_frame()
    resp = api.enrol(auth, still)
    check = api.submit(auth, resp.json()["session"])
    assert check.json()["decision"] == "pass"
    reference = api.service.verifier.analyze(still).template.astype(np.float32).tobytes()
    checkpoint_sqlite(api.sql)
    hits = scan_database(api.sql, [ID_NUMBER, NAME, reference[:64], reference[-64:]])
    assert hits == [], hits
    # the export shows the identity back only to its tenant, masked
    export = api.client.get(f"/v1/subjects/{resp.json()['subject']['id']}/export", headers=auth)
    assert export.json()["subject"]["id_number_masked"] == "110**************X"
    assert ID_NUMBER not in export.text


def test_audit_verify_cli_detects_an_altered_row(api: Api) -> None:
    tid, auth = api.tenant()
    resp = api.enrol(auth, api.recording.still_frame())
    assert resp.status_code == 201
    env = {**os.environ, **api.env}
    cmd = [sys.executable, "-m", "shiren.cli", "audit", "verify", "--tenant", tid]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with api.sql.begin() as conn:
        conn.execute(
            text(
                "UPDATE audit_events SET payload = replace(payload, '365', '999') "
                "WHERE tenant_id = :t AND seq = 2"
            ),
            {"t": tid},
        )
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "first bad seq 2" in bad.stdout


def test_enrol_by_multipart_upload(api: Api) -> None:
    _, auth = api.tenant()
    meta = {"external_ref": "mp", "name": NAME, "id_number": ID_NUMBER, "consent": CONSENT}
    resp = api.client.post(
        "/v1/subjects",
        data={"meta": json.dumps(meta)},
        files=[("reference_image", ("ref.jpg", api.recording.still_frame(), "image/jpeg"))],
        headers={**auth, "X-Request-ID": "req-123"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["X-Request-ID"] == "req-123"
    assert resp.json()["subject"]["status"] == "pending"


def test_stats_and_the_stored_faces_filing_threshold(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """``/v1/stats`` shows a tenant its own stored faces only; when the deployment's total
    reaches the (configurable) filing threshold, ``/readyz`` warns — and stays ready — and the
    log says so once, not on every probe."""
    from tests.storage import builders as b

    api.service.stored_faces_warning = 3  # Settings.stored_faces_warning (100,000 by default)
    tid, auth = api.tenant()
    other_id, other_auth = api.tenant("other lender")
    assert api.client.get("/v1/stats", headers=auth).json() == {"stored_faces": 0}
    resp = api.enrol(auth, api.recording.still_frame())
    assert api.submit(auth, resp.json()["session"]).json()["decision"] == "pass"
    assert api.client.get("/v1/stats", headers=auth).json() == {"stored_faces": 1}
    assert api.client.get("/readyz").json()["warnings"] == []
    with api.service.store() as uow:  # two faces of another lender
        for _ in range(2):
            subject = b.subject(other_id)
            uow.subjects.add(subject)
            uow.templates.add(b.template(other_id, subject.id, expires_at=None))
        uow.commit()
    assert api.client.get("/v1/stats", headers=auth).json() == {"stored_faces": 1}
    assert api.client.get("/v1/stats", headers=other_auth).json() == {"stored_faces": 2}
    with caplog.at_level(logging.WARNING, logger="shiren.service"):
        first = api.client.get("/readyz")
        second = api.client.get("/readyz")
    assert first.status_code == second.status_code == 200
    assert first.json()["ready"] is True
    (warning,) = first.json()["warnings"]
    assert warning["code"] == "stored_faces.filing_threshold"
    assert (warning["stored_faces"], warning["threshold"]) == (3, 3)
    assert second.json()["warnings"] == first.json()["warnings"]
    logged = [r for r in caplog.records if "filing threshold" in r.getMessage()]
    assert len(logged) == 1
    assert tid not in logged[0].getMessage()


def test_stored_faces_threshold_is_a_setting(tmp_path: Path, engine: Engine) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'thr.db'}",
        stored_faces_warning=3,
        keys_file=str(tmp_path / "keys.json"),
    )
    assert build_service(settings, engine=engine).stored_faces_warning == 3
    assert Settings().stored_faces_warning == 100_000
