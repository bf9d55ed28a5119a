"""``POST /v1/enrolments/id-card`` (issue 16): enrolment from the borrower's ID card over HTTP —
the card read and checked, its portrait the reference, the fields and checks in the answer, the
ID number only masked; the same person's capture then passes.  Bad cards are 400 problems with
stable codes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.idcard import CardReader
from shiren.liveness.challenge import parse_challenge
from shiren.service.app import Engine, ShirenService
from shiren.service.id_cards import IdCards
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, Recording
from tests.support import id_cards


@pytest.fixture(scope="module")
def cards() -> IdCards:
    return IdCards(CardReader.load())


@pytest.fixture
def client(
    engine: Engine, recording: Recording, clock: FakeClock, cards: IdCards
) -> Iterator[tuple[TestClient, dict[str, str]]]:
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
        yield c, {"Authorization": f"Bearer {key}"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_enrol_with_the_card_then_pass(
    client: tuple[TestClient, dict[str, str]], recording: Recording, clock: FakeClock
) -> None:
    c, auth = client
    paint = id_cards.painter()
    person = id_cards.holder(11, clock().date())
    body = {
        "external_ref": "card-1",
        "consent": CONSENT,
        "id_card_front": _b64(id_cards.front_photo(paint, recording.still_frame(), person)),
        "id_card_back": _b64(id_cards.back_photo(paint, person)),
    }
    resp = c.post("/v1/enrolments/id-card", json=body, headers=auth)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert person.id_number not in resp.text  # only masked
    card = out["id_card"]
    assert card["fields"]["name"]["value"] == person.name
    assert card["id_number_masked"].endswith(person.id_number[-1])
    assert card["sides"] == ["front", "back"]
    assert all(ch["passed"] is not False for ch in card["checks"]), card["checks"]
    session = out["session"]
    frames, times = recording.answer(parse_challenge(session["challenge"]))
    checked = c.post(
        f"/v1/sessions/{session['id']}/frames",
        data={"meta": json.dumps({"nonce": session["nonce"], "t_ms": times})},
        files=[("frames", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)],
        headers=auth,
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["decision"] == "pass", checked.json()["reasons"]


def test_bad_cards_are_problems_with_stable_codes(
    client: tuple[TestClient, dict[str, str]], recording: Recording, clock: FakeClock
) -> None:
    c, auth = client
    paint = id_cards.painter()
    person = id_cards.holder(12, clock().date())
    other = id_cards.holder(13, clock().date())
    front = _b64(id_cards.front_photo(paint, recording.still_frame(), person))
    cases = [
        ({"id_card_front": front, "id_number": other.id_number}, "input.idcard_rejected"),
        ({"id_card_front": _b64(id_cards.back_photo(paint, person))}, "input.idcard_unreadable"),
        ({"id_card_front": "not base64!"}, "input.invalid"),
    ]
    for extra, code in cases:
        body = {"external_ref": "card-2", "consent": CONSENT, **extra}
        resp = c.post("/v1/enrolments/id-card", json=body, headers=auth)
        assert resp.status_code == 400, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == code
    assert c.post("/v1/enrolments/id-card", json={}, headers={}).status_code == 401


def test_the_operation_is_published(client: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = client
    op = c.get("/openapi.json").json()["paths"]["/v1/enrolments/id-card"]["post"]
    assert op["operationId"] == "enrol_with_id_card"
    assert op.get("security"), "the Bearer key is declared"
    assert "201" in op["responses"]
    assert "400" in op["responses"]
