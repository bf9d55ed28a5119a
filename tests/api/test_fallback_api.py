"""End to end over HTTP, real service and models on SQLite and PostgreSQL (the ``api`` fixture
of test_api), SANDBOX connectors: a failed face path falls back to SMS + bank card and
completes; a user who refuses face processing goes straight to the non-face path; a payout to a
card in another name is blocked."""

from __future__ import annotations

import json
from typing import Any

from shiren.storage.leakscan import scan_database
from shiren.storage.sql import checkpoint_sqlite
from tests.api.test_api import Api, _is_problem, api  # noqa: F401 - api is a fixture
from tests.conftest import lfw
from tests.service.fallback_support import card
from tests.service.support import ID_NUMBER, NAME

PHONE = "13912345678"


def _hooks(api: Api, tenant_id: str, event: str) -> list[dict[str, Any]]:  # noqa: F811
    with api.service.store() as uow:
        rows = uow.webhooks.list_for_tenant(tenant_id)
    return [d for d in (json.loads(r.payload) for r in rows) if d["event"] == event]


def _setup(api: Api, image: bytes) -> tuple[str, dict[str, str], str]:  # noqa: F811
    tid, auth = api.tenant()
    hook = api.client.put("/v1/webhook", json={"url": "http://127.0.0.1:9/hook"}, headers=auth)
    assert hook.status_code == 200, hook.text
    enrolled = api.enrol(auth, image)
    assert enrolled.status_code == 201, enrolled.text
    return tid, auth, enrolled.json()["subject"]["id"]


def _event(api: Api, auth: dict[str, str], subject_id: str) -> dict[str, Any]:  # noqa: F811
    resp = api.client.post(
        "/v1/events",
        json={"subject_id": subject_id, "type": "disbursement", "amount_minor": 100_000},
        headers=auth,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["requirement"]["needed"] is True
    return body


def _sms_then_card(api: Api, auth: dict[str, str], fid: str) -> dict[str, Any]:  # noqa: F811
    sent = api.client.post(f"/v1/fallbacks/{fid}/sms", headers=auth)
    assert sent.status_code == 200, sent.text
    code = sent.json()["sandbox_code"]
    again = api.client.post(f"/v1/fallbacks/{fid}/sms", headers=auth)
    _is_problem(again, 429, "otp.resend_too_soon")
    wrong = "000000" if code != "000000" else "111111"
    miss = api.client.post(f"/v1/fallbacks/{fid}/sms/verify", json={"code": wrong}, headers=auth)
    assert (miss.json()["verified"], miss.json()["attempts_left"]) == (False, 4)
    ok = api.client.post(f"/v1/fallbacks/{fid}/sms/verify", json={"code": code}, headers=auth)
    assert ok.json()["next_step"] == "bank_card_4", ok.text
    down = api.client.post(
        f"/v1/fallbacks/{fid}/bank-card", json={"card_number": card("0500")}, headers=auth
    )
    _is_problem(down, 503, "connector.unavailable")
    done = api.client.post(
        f"/v1/fallbacks/{fid}/bank-card", json={"card_number": card()}, headers=auth
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


def test_failed_face_path_falls_back_to_sms_and_bank_card(api: Api) -> None:  # noqa: F811
    tid, auth, sid = _setup(api, lfw("Jeb_Bush", 1).read_bytes())  # not the live face
    event = None
    for attempt in range(3):
        event = _event(api, auth, sid)
        if attempt < 2:
            early = api.client.post(
                f"/v1/events/{event['event_id']}/fallback", json={"phone": PHONE}, headers=auth
            )
            _is_problem(early, 409, "fallback.not_allowed")
        check = api.submit(auth, event["session"])
        assert check.status_code == 200, check.text
        assert check.json()["decision"] in ("retry", "review"), check.text
        api.clock.advance(5)
    assert event is not None
    started = api.client.post(
        f"/v1/events/{event['event_id']}/fallback", json={"phone": PHONE}, headers=auth
    )
    assert started.status_code == 201, started.text
    flow = started.json()
    assert (flow["cause"], flow["steps"]) == ("face_failed", ["sms_otp", "bank_card_4"])
    done = _sms_then_card(api, auth, flow["id"])
    assert (done["status"], done["decision"]) == ("passed", "pass")
    state = api.client.get(f"/v1/fallbacks/{flow['id']}", headers=auth).json()
    assert state["reasons"] == [
        "fallback.face_failed",
        "fallback.sms_verified",
        "fallback.bank_card_matched",
    ]
    _, other = api.tenant("other")
    _is_problem(api.client.get(f"/v1/fallbacks/{flow['id']}", headers=other), 404)
    hooks = _hooks(api, tid, "fallback.decided")
    assert [(h["decision"], h["event_id"]) for h in hooks] == [("pass", event["event_id"])]
    assert api.service.audit_verify(tid).ok


def test_refusing_face_goes_straight_to_the_non_face_path(api: Api) -> None:  # noqa: F811
    _, auth, sid = _setup(api, api.recording.still_frame())
    event = _event(api, auth, sid)
    started = api.client.post(
        f"/v1/events/{event['event_id']}/fallback",
        json={"phone": PHONE, "refuse_face": True},
        headers=auth,
    )
    assert started.status_code == 201, started.text
    assert started.json()["cause"] == "face_refused"
    done = _sms_then_card(api, auth, started.json()["id"])
    assert done["decision"] == "pass"
    assert done["reasons"][0] == "fallback.face_refused"
    export = api.client.get(f"/v1/subjects/{sid}/export", headers=auth).json()
    assert [f["decision"] for f in export["fallbacks"]] == ["pass"]
    assert PHONE not in json.dumps(export)
    bad = api.client.post(
        f"/v1/events/{event['event_id']}/fallback", json={"phone": "123"}, headers=auth
    )
    assert bad.status_code == 422  # schema: too short


def test_payout_to_a_card_in_another_name_is_blocked(api: Api) -> None:  # noqa: F811
    tid, auth, sid = _setup(api, api.recording.still_frame())
    url = f"/v1/subjects/{sid}/payout-check"
    own = api.client.post(url, json={"card_number": card(), "phone": PHONE}, headers=auth)
    assert own.status_code == 200, own.text
    assert (own.json()["decision"], own.json()["sandbox"]) == ("allowed", True)
    api.clock.advance(1)  # verdicts are listed by time
    theirs = api.client.post(
        url,
        json={"card_number": card("0001"), "phone": PHONE},
        headers={**auth, "Accept-Language": "en"},
    )
    assert theirs.status_code == 200, theirs.text
    body = theirs.json()
    assert (body["decision"], body["reasons"]) == ("blocked", ["payout.card_not_owner"])
    assert body["mismatched"] == [{"element": "name", "sent": "张*"}]
    assert body["tips"][0]["message"].startswith("The payout card is not")
    assert body["card"] == "**** " + card("0001")[-4:]
    _is_problem(
        api.client.post(
            url, json={"card_number": "6222020000012345", "phone": PHONE}, headers=auth
        ),
        400,
        "input.card_number_invalid",
    )
    _, other = api.tenant("other")
    _is_problem(
        api.client.post(url, json={"card_number": card(), "phone": PHONE}, headers=other), 404
    )
    hooks = _hooks(api, tid, "payout.checked")
    assert sorted(h["decision"] for h in hooks) == ["allowed", "blocked"]
    export = api.client.get(f"/v1/subjects/{sid}/export", headers=auth)
    assert [p["decision"] for p in export.json()["payout_checks"]] == ["allowed", "blocked"]
    assert card("0001") not in export.text
    assert export.json()["payout_checks"][1]["card"] == "**** " + card("0001")[-4:]
    checkpoint_sqlite(api.sql)
    hits = scan_database(api.sql, [ID_NUMBER, NAME, card(), card("0001"), PHONE])
    assert hits == [], hits


def test_fallback_in_review_is_in_the_review_queue(api: Api) -> None:  # noqa: F811
    """A non-face case that ends in manual review is listed by ``GET /v1/reviews`` next to the
    face reviews (``kind``) and decided by ``POST /v1/reviews/{id}`` (issue 6)."""
    tid, auth, sid = _setup(api, api.recording.still_frame())
    event = _event(api, auth, sid)
    fid = api.client.post(
        f"/v1/events/{event['event_id']}/fallback",
        json={"phone": PHONE, "refuse_face": True},
        headers=auth,
    ).json()["id"]
    code = api.client.post(f"/v1/fallbacks/{fid}/sms", headers=auth).json()["sandbox_code"]
    api.client.post(f"/v1/fallbacks/{fid}/sms/verify", json={"code": code}, headers=auth)
    for magic in ("0004", "0009"):  # name/ID mismatch, then unknown: two failures → review
        out = api.client.post(
            f"/v1/fallbacks/{fid}/bank-card", json={"card_number": card(magic)}, headers=auth
        ).json()
    assert out["status"] == "review"
    queue = api.client.get("/v1/reviews", headers=auth).json()["reviews"]
    mine = [r for r in queue if r["id"] == fid]
    assert [(r["kind"], r["status"], r["subject_id"], r["event_id"]) for r in mine] == [
        ("fallback", "open", sid, event["event_id"])
    ]
    assert all(r["kind"] == "face" for r in queue if r["id"] != fid)
    assert "fallback.exhausted" in mine[0]["reasons"]
    _, other = api.tenant("other")
    assert api.client.get("/v1/reviews", headers=other).json()["reviews"] == []
    sneaky = api.client.post(
        f"/v1/reviews/{fid}", json={"outcome": "approve", "reviewer": "x"}, headers=other
    )
    _is_problem(sneaky, 404, "record.not_found")
    decided = api.client.post(
        f"/v1/reviews/{fid}",
        json={"outcome": "reject", "reviewer": "alice", "note": "card not theirs"},
        headers=auth,
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["kind"], decided.json()["outcome"]) == ("fallback", "rejected")
    assert decided.json()["face_bound"] is False
    again = api.client.post(
        f"/v1/reviews/{fid}", json={"outcome": "approve", "reviewer": "bob"}, headers=auth
    )
    _is_problem(again, 409, "review.already_closed")
    assert api.client.get(f"/v1/fallbacks/{fid}", headers=auth).json()["decision"] == "rejected"
    assert fid not in [
        r["id"] for r in api.client.get("/v1/reviews", headers=auth).json()["reviews"]
    ]
    closed = api.client.get("/v1/reviews", params={"status": "closed"}, headers=auth).json()
    assert [r["outcome"] for r in closed["reviews"] if r["id"] == fid] == ["rejected"]
    hooks = _hooks(api, tid, "fallback.decided")
    assert sorted(h["decision"] for h in hooks) == ["rejected", "review"]
