"""Card captures (issue 16): enrolment that starts with the ID card on the borrower's phone.

The lender opens a card capture (``POST /v1/enrolments/id-card/captures``); the capture page,
with only the link's token, reads the consent texts (with what reading the card means), records
the consent, gets framing guidance, and sends the card; the card enrols the subject and the page
moves to the selfie session with the consent carried.  The real OCR reads generated cards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.domain.card_capture import MAX_CARD_READS
from shiren.idcard import CardReader
from shiren.liveness.challenge import parse_challenge
from shiren.service.app import Engine, ShirenService
from shiren.service.id_cards import IdCards
from shiren.service.keys import ServiceKeys
from shiren.service.webhooks import seal_secret
from shiren.storage.memory import MemoryStore
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, Recording
from tests.support import id_cards


@pytest.fixture(scope="module")
def cards() -> IdCards:
    return IdCards(CardReader.load())


@pytest.fixture
def world(
    engine: Engine, recording: Recording, clock: FakeClock, cards: IdCards
) -> Iterator[tuple[TestClient, dict[str, str], ShirenService]]:
    service = ShirenService(
        store=MemoryStore(),
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
        id_cards=cards,
    )
    _, key = service.create_tenant("lender")
    with TestClient(create_app(service)) as c:
        yield c, {"Authorization": f"Bearer {key}"}, service


def _open(c: TestClient, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"external_ref": "phone-1", "consent": CONSENT, **extra}
    resp = c.post("/v1/enrolments/id-card/captures", json=body, headers=auth)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    assert out["status"] == "open"
    assert out["capture_url"].endswith(f"/capture/{out['capture_token']}")
    return out


def _consent(c: TestClient, token: str) -> str:
    resp = c.post(f"/v1/capture/{token}/consent", json={"accepted": True, "lang": "en"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["receipt"])


def _send(c: TestClient, token: str, receipt: str, front: bytes, back: bytes | None = None) -> Any:
    files = [("front", ("front.jpg", front, "image/jpeg"))]
    if back is not None:
        files.append(("back", ("back.jpg", back, "image/jpeg")))
    return c.post(
        f"/v1/capture/{token}/id-card?lang=en",
        files=files,
        headers={"X-Shiren-Consent": receipt},
    )


def _small(jpeg: bytes) -> bytes:
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    scale = 640 / max(pixels.shape[:2])
    small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


def test_the_card_enrols_and_the_page_goes_on_to_the_selfie(
    world: tuple[TestClient, dict[str, str], ShirenService],
    recording: Recording,
    clock: FakeClock,
) -> None:
    c, auth, service = world
    paint = id_cards.painter()
    person = id_cards.holder(21, clock().date())
    opened = _open(c, auth, name=person.name, id_number=person.id_number)
    token = opened["capture_token"]
    info = c.get(f"/v1/capture/{token}").json()
    assert info["step"] == "id_card"
    assert info["back_required"] is True
    assert info["challenge"] is None
    assert "ID card" in info["consent"]["texts"]["en"]["id_card"]
    # nothing before consent
    assert c.post(f"/v1/capture/{token}/id-card/guide", content=b"x").status_code == 403
    receipt = _consent(c, token)
    front = id_cards.front_photo(paint, recording.still_frame(), person)
    back = id_cards.back_photo(paint, person)
    guided = c.post(
        f"/v1/capture/{token}/id-card/guide?lang=en",
        content=_small(back),
        headers={"X-Shiren-Consent": receipt, "Content-Type": "image/jpeg"},
    )
    assert guided.status_code == 200, guided.text
    assert guided.json()["passed"] is True, guided.json()
    missing_back = _send(c, token, receipt, front)
    assert missing_back.status_code == 400
    assert missing_back.json()["extra"]["field"] == "id_card_back"
    resp = _send(c, token, receipt, front, back)
    assert resp.status_code == 200, resp.text
    step = resp.json()
    assert person.id_number not in resp.text
    assert step["sides"] == ["front", "back"]
    assert step["review"] is False
    assert step["capture_path"] == f"/capture/{step['capture_token']}"
    # the lender sees the enrolled subject and its selfie session
    got = c.get(f"/v1/enrolments/id-card/captures/{opened['id']}", headers=auth).json()
    assert got["status"] == "enrolled"
    assert got["capture_token"] is None
    assert got["card_reads"] == 1  # the try without a back was refused before any read
    assert {c["code"] for c in got["checks"]} >= {"idcard.number_invalid", "idcard.expired"}
    assert all(c["passed"] is not False for c in got["checks"])
    subject_id, session_id = got["subject_id"], got["session_id"]
    # the card link now leads to the selfie; a second card is refused
    again = c.get(f"/v1/capture/{token}").json()
    assert again["status"] == "used"
    assert again["next_capture_path"] == step["capture_path"]
    assert _send(c, token, receipt, front, back).json()["code"] == "session.already_used"
    # the selfie session accepts the carried receipt and passes with the same face
    selfie = step["capture_token"]
    session = c.get(f"/v1/capture/{selfie}").json()
    assert session["step"] == "face"
    frames, times = recording.answer(parse_challenge(session["challenge"]))
    submitted = c.post(
        f"/v1/capture/{selfie}/frames",
        data={"meta": json.dumps({"nonce": session["nonce"], "t_ms": times})},
        files=[("frames", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)],
        headers={"X-Shiren-Consent": step["receipt"]},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["decision"] == "pass"
    tenant = service.authenticate(auth["Authorization"].removeprefix("Bearer "))
    with service.store() as uow:
        consents = uow.consents.list_for_subject(tenant.id, subject_id)
        refs = uow.references.list_for_subject(tenant.id, subject_id)
        assert uow.sessions.get(tenant.id, session_id) is not None
    assert {x.purpose for x in consents} == {CONSENT["purpose"], "face_capture"}
    assert refs[0].kind.value == "id_card"
    assert refs[0].card_checks is not None
    assert person.id_number not in refs[0].card_checks
    assert "idcard.number_invalid" in refs[0].card_checks


def test_a_different_number_is_refused_and_a_different_name_goes_to_review(
    world: tuple[TestClient, dict[str, str], ShirenService],
    recording: Recording,
    clock: FakeClock,
) -> None:
    c, auth, service = world
    paint = id_cards.painter()
    person = id_cards.holder(22, clock().date())
    other = id_cards.holder(23, clock().date())
    front = id_cards.front_photo(paint, recording.still_frame(), person)
    wrong_number = _open(c, auth, id_number=other.id_number, back_required=False)
    token = wrong_number["capture_token"]
    refused = _send(c, token, _consent(c, token), front)
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["code"] == "input.idcard_rejected"
    assert problem["extra"]["checks"] == ["idcard.number_mismatch"]
    assert problem["extra"]["tips"], "the borrower is told why"
    assert other.id_number not in refused.text
    assert person.id_number not in refused.text
    tenant = service.authenticate(auth["Authorization"].removeprefix("Bearer "))
    with service.store() as uow:  # the lender listens for webhooks
        uow.tenants.set_webhook(
            tenant.id,
            url="https://lender.example/hook",
            secret_enc=seal_secret(service.keys, tenant, "whsec_" + "x" * 32),
        )
        uow.commit()
    wrong_name = _open(c, auth, external_ref="phone-2", name=other.name, back_required=False)
    token = wrong_name["capture_token"]
    sent = _send(c, token, _consent(c, token), front)
    assert sent.status_code == 200, sent.text
    assert sent.json()["review"] is True
    with service.store() as uow:
        hooks = [json.loads(d.payload) for d in uow.webhooks.list_for_tenant(tenant.id)]
    enrolled = [h for h in hooks if h["event"] == "card_capture.enrolled"]
    assert len(enrolled) == 1
    assert enrolled[0]["reasons"] == ["idcard.name_mismatch"]
    assert other.name not in json.dumps(hooks)


def test_bad_links_and_floods_get_stable_codes(
    world: tuple[TestClient, dict[str, str], ShirenService],
    recording: Recording,
    clock: FakeClock,
) -> None:
    c, auth, _ = world
    opened = _open(c, auth, back_required=False)
    token = opened["capture_token"]
    receipt = _consent(c, token)
    # a card link is not a session link
    assert c.get(f"/v1/capture/{token}/result").json()["code"] == "capture.token_invalid"
    assert _send(c, token, "0" * 32, b"x").json()["code"] == "capture.consent_required"
    not_a_card = _send(c, token, receipt, recording.still_frame())
    assert not_a_card.status_code == 400
    assert not_a_card.json()["code"] == "input.idcard_unreadable"
    for _ in range(MAX_CARD_READS - 1):
        _send(c, token, receipt, b"not an image")
    flooded = _send(c, token, receipt, recording.still_frame())
    assert flooded.status_code == 429
    assert flooded.json()["code"] == "capture.rate_limited"
    late = _open(c, auth, external_ref="phone-3")
    clock.advance(16 * 60)
    expired = c.get(f"/v1/enrolments/id-card/captures/{late['id']}", headers=auth).json()
    assert expired["status"] == "expired"
    assert c.get(f"/v1/capture/{late['capture_token']}").status_code == 410
    assert (
        c.get(f"/v1/enrolments/id-card/captures/{'f' * 32}", headers=auth).json()["code"]
        == "record.not_found"
    )
    bad = c.post(
        "/v1/enrolments/id-card/captures",
        json={"external_ref": "x", "consent": CONSENT, "id_number": "123456789012345678"},
        headers=auth,
    )
    assert bad.status_code == 400


def test_hostile_card_uploads_get_typed_errors(
    world: tuple[TestClient, dict[str, str], ShirenService],
) -> None:
    c, auth, _ = world
    opened = _open(c, auth, back_required=False)
    token = opened["capture_token"]
    receipt = {"X-Shiren-Consent": _consent(c, token)}
    url = f"/v1/capture/{token}/id-card"
    cases = [
        c.post(url, content=b"not a form", headers=receipt),  # not multipart
        c.post(url, files=[("back", ("b.jpg", b"x", "image/jpeg"))], headers=receipt),  # no front
        c.post(
            url,
            files=[
                ("front", ("a.jpg", b"x", "image/jpeg")),
                ("front", ("b.jpg", b"y", "image/jpeg")),
            ],
            headers=receipt,
        ),  # two fronts
        c.post(
            url,
            files=[("front", ("a.jpg", b"\xff\xd8" + b"\0" * 7_000_000, "image/jpeg"))],
            headers=receipt,
        ),  # over the part limit
        c.post(url, files=[("front", ("a.jpg", b"\xff\xd8broken", "image/jpeg"))], headers=receipt),
        c.post(f"{url}/guide", content=b"\x89PNG broken", headers=receipt),
        c.get(f"/capture/{token}x/qr.svg"),
    ]
    for resp in cases:
        assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:200])
        assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
        assert resp.json()["code"]
