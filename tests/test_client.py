"""The lender-side client (:mod:`shiren.client`) against the real FastAPI app, in process.

The app, its SQLite/PostgreSQL store and the capture frames assembled from the live recording
come from the API tests' own fixtures (``tests/api/test_api.py``), so the client is exercised on
exactly what the API contract tests exercise.  The retry rules are tested on a mock transport:
they are about what the client sends, not about the server.
"""

from __future__ import annotations

import json

import httpx
import pytest

from shiren.client import Consent, RetryPolicy, ShirenApiError, ShirenClient
from shiren.liveness.challenge import parse_challenge
from tests.api.test_api import Api, api
from tests.conftest import lfw
from tests.service.fallback_support import card
from tests.service.fixtures import clock, engine, recording
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID

__all__ = ["api", "clock", "engine", "recording"]  # fixtures, re-exported for pytest


def _client(api: Api, key: str) -> ShirenClient:
    return ShirenClient("http://testserver", key, http=api.client)


def _key(api: Api) -> str:
    _, auth = api.tenant()
    return auth["Authorization"].removeprefix("Bearer ")


def test_round_trip_enrol_event_submit_poll_export_erase(api: Api) -> None:
    with _client(api, _key(api)) as client:
        enrolled = client.enrol(
            external_ref="u1",
            name=NAME,
            id_number=ID_NUMBER,
            consent=Consent(**CONSENT),  # type: ignore[arg-type]
            reference_image=api.recording.still_frame(),
        )
        assert enrolled.session.purpose == "enrolment" or enrolled.session.purpose
        frames, times = api.recording.answer(parse_challenge(enrolled.session.challenge))
        check = client.submit_frames(enrolled.session.id, enrolled.session.nonce, frames, times)
        assert check.passed, check.reasons
        assert client.get_check(check.id).decision == "pass"
        assert client.get_session(enrolled.session.id).check_id == check.id

        step = client.post_event(enrolled.subject.id, "disbursement", amount_minor=5_000_000)
        assert step.requirement.needed
        assert step.session is not None
        assert step.requirement.level == step.session.level
        frames, times = api.recording.answer(parse_challenge(step.session.challenge), seed=1)
        check = client.submit_frames(step.session.id, step.session.nonce, frames, times)
        assert check.passed, check.reasons
        assert check.match_score is not None

        # a single-use session: the typed error carries the stable code
        with pytest.raises(ShirenApiError) as used:
            client.submit_frames(step.session.id, step.session.nonce, frames, times)
        assert (used.value.status, used.value.code) == (409, "session.already_used")

        exported = client.export(enrolled.subject.id)
        assert json.dumps(exported).find(ID_NUMBER) == -1  # masked
        purpose = exported["consents"][0]["purpose"]
        withdrawn = client.withdraw_consent(enrolled.subject.id, purpose)
        assert withdrawn["face_data_deleted"] is True
        assert client.withdraw_consent(enrolled.subject.id, purpose)["already_withdrawn"] is True
        client.erase(enrolled.subject.id)


def test_anti_fraud_fallback_payout_and_account_routes(api: Api) -> None:
    """The lender routes added with issue 6, each through its client method."""
    phone = "13912345678"
    with _client(api, _key(api)) as client:
        hook = client.set_webhook("http://127.0.0.1:9/hook")
        assert hook["url"] == "http://127.0.0.1:9/hook"
        assert len(hook["secret"]) >= 16  # generated, returned once
        assert client.stats() == {"stored_faces": 0}
        first = client.enrol(
            external_ref="u1",
            name=NAME,
            id_number=ID_NUMBER,
            consent=Consent(**CONSENT),  # type: ignore[arg-type]
            reference_image=api.recording.still_frame(),
            device_id="phone-1",
        )
        assert client.fraud_findings(first.subject.id) == []
        # the same face under another ID number: a duplicate among pending references
        dup = client.enrol(
            external_ref="u2",
            name=NAME,
            id_number=OTHER_ID,
            consent=Consent(**CONSENT),  # type: ignore[arg-type]
            reference_image=api.recording.still_frame(),
            device_id="phone-1",
        )
        (found,) = client.fraud_findings(dup.subject.id)
        assert (found["code"], found["evidence"]["other_subject_id"]) == (
            "fraud.duplicate_face",
            first.subject.id,
        )

        # blacklists: add by photo, list, filter, remove (twice: a typed 404)
        entry = client.add_to_blacklist(
            reason="confirmed_fraud",
            evidence_ref="CASE-1",
            added_by="analyst",
            list_name="confirmed",
            image=lfw("Naoto_Kan", 1).read_bytes(),
        )
        assert [e["id"] for e in client.list_blacklist()] == [entry["id"]]
        assert client.list_blacklist("other") == []
        assert client.remove_from_blacklist(entry["id"], "lead")["removed"] is True
        with pytest.raises(ShirenApiError) as gone:
            client.remove_from_blacklist(entry["id"], "lead")
        assert (gone.value.status, gone.value.code) == (404, "record.not_found")
        assert client.list_blacklist() == []

        # the non-face path: SMS, then two failed card checks → review → a reviewer approves
        step = client.post_event(first.subject.id, "disbursement", amount_minor=5_000_000)
        flow = client.start_fallback(step.event_id, phone, refuse_face=True)
        assert client.start_fallback(step.event_id, phone, refuse_face=True)["id"] == flow["id"]
        assert client.get_fallback(flow["id"])["cause"] == "face_refused"
        with pytest.raises(ShirenApiError) as wrong_step:  # the first step is the SMS code
            client.submit_authority(flow["id"], b"\xff\xd8photo")
        assert wrong_step.value.status == 409
        sent = client.send_sms_code(flow["id"])
        miss = "000000" if sent["sandbox_code"] != "000000" else "111111"
        assert client.verify_sms_code(flow["id"], miss)["verified"] is False
        assert client.verify_sms_code(flow["id"], sent["sandbox_code"])["verified"] is True
        assert client.submit_bank_card(flow["id"], card("0004"))["status"] == "open"
        assert client.submit_bank_card(flow["id"], card("0009"))["status"] == "review"
        assert [f["id"] for f in client.list_fallbacks("review")] == [flow["id"]]
        closed = client.decide_fallback_review(flow["id"], "approve", "alice", "called back")
        assert closed["decision"] == "approved"
        assert client.list_fallbacks("review") == []

        # payout ownership
        own = client.payout_check(first.subject.id, card(), phone, event_id=step.event_id)
        assert own["decision"] == "allowed"
        theirs = client.payout_check(first.subject.id, card("0004"), phone)
        assert theirs["decision"] == "blocked"


def test_unknown_id_and_bad_key_are_typed_errors(api: Api) -> None:
    with _client(api, _key(api)) as client:
        with pytest.raises(ShirenApiError) as missing:
            client.get_check("0" * 32)
        assert missing.value.status == 404
        assert missing.value.code == "record.not_found"
        assert missing.value.request_id
        assert missing.value.title
    with _client(api, "shk_00_" + "x" * 40) as client, pytest.raises(ShirenApiError) as denied:
        client.get_session("0" * 32)
    assert (denied.value.status, denied.value.code) == (401, "auth.required")


def _unavailable(calls: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(
            503,
            json={
                "type": "https://shiren.dev/problems/storage.unavailable",
                "title": "Storage unavailable",
                "status": 503,
                "code": "storage.unavailable",
                "detail": "the database does not answer",
                "request_id": "r1",
            },
            headers={"content-type": "application/problem+json", "retry-after": "5"},
        )

    return httpx.MockTransport(handler)


def test_post_is_never_retried_get_is() -> None:
    calls: list[str] = []
    waits: list[float] = []
    client = ShirenClient(
        "http://shiren.test",
        "shk_x",
        transport=_unavailable(calls),
        retry=RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=1.0),
        sleep=waits.append,
    )
    with client:
        with pytest.raises(ShirenApiError) as post_err:
            client.submit_frames("s" * 32, "n", [b"x"], [0.0])
        assert calls == ["POST"]
        assert post_err.value.retryable  # retryable in itself, but a POST is sent once
        with pytest.raises(ShirenApiError):
            client.post_event("s" * 32, "disbursement", amount_minor=1)
        assert calls == ["POST", "POST"]
        calls.clear()
        with pytest.raises(ShirenApiError) as get_err:
            client.get_check("c" * 32)
        assert calls == ["GET", "GET", "GET"]
        assert waits == [1.0, 1.0]  # Retry-After honoured, capped by the policy
        assert (get_err.value.status, get_err.value.request_id) == (503, "r1")


def test_non_retryable_get_error_is_raised_at_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(404, json={"status": 404, "code": "record.not_found"})

    with (
        ShirenClient("http://shiren.test", "k", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ShirenApiError) as err,
    ):
        client.export("x" * 32)
    assert calls == ["GET"]
    assert err.value.code == "record.not_found"


def test_every_lender_route_has_a_client_method(api: Api) -> None:
    """The OpenAPI document's /v1 operations (the borrower's /v1/capture pages excepted) are
    all reachable through a ShirenClient method: a new route without one fails here."""
    import inspect
    import re

    from shiren import client as module

    source = inspect.getsource(module.ShirenClient)
    called = {
        (m, re.sub(r"\{[^}]*\}", "{}", p))
        for m, p in re.findall(r'_request\(\s*"([A-Z]+)",\s*f?"(/v1/[^"]*)"', source)
    }
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, ops in paths.items()
        for method in ops
        if path.startswith("/v1/") and not path.startswith("/v1/capture/")
    }
    assert len(routes) >= 25
    assert routes - called == set()


def test_card_capture_open_and_read_back(api: Api) -> None:
    with _client(api, _key(api)) as client:
        opened = client.open_card_capture(
            external_ref="card-phone",
            consent=Consent(**CONSENT),  # type: ignore[arg-type]
            id_number=ID_NUMBER,
            back_required=False,
        )
        assert opened.status == "open"
        assert opened.capture_url is not None
        assert opened.capture_url.startswith("http://testserver/capture/")
        again = client.get_card_capture(opened.id)
        assert (again.id, again.status, again.subject_id) == (opened.id, "open", None)
        with pytest.raises(ShirenApiError) as missing:
            client.get_card_capture("f" * 32)
        assert missing.value.code == "record.not_found"
