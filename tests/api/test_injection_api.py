"""The capture page's camera label and the injection check through the HTTP API (issue 17): the
page's ``meta`` may carry ``camera_label`` (bounded), the check's audit line carries the
injection evidence — whether the label names a virtual camera, never the label itself — and
which upload path it came by (the page's timer facts are judged only for the page)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.liveness.challenge import parse_challenge
from shiren.service.app import Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording

LABEL = "OBS Virtual Camera"


@pytest.fixture
def setup(
    engine: Engine, recording: Recording, clock: FakeClock
) -> Iterator[tuple[TestClient, ShirenService, dict[str, Any], dict[str, str]]]:
    service = ShirenService(
        store=MemoryStore(),
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
    )
    _tenant, key = service.create_tenant("lender")
    auth = {"Authorization": f"Bearer {key}"}
    client = TestClient(create_app(service))
    body = {
        "external_ref": "u1",
        "name": NAME,
        "id_number": ID_NUMBER,
        "consent": CONSENT,
        "reference_image": base64.b64encode(recording.still_frame()).decode("ascii"),
    }
    enrolled = client.post("/v1/subjects", json=body, headers=auth)
    assert enrolled.status_code == 201, enrolled.text
    with client:
        yield client, service, enrolled.json()["session"], auth


def _upload(session: dict[str, Any], recording: Recording, **meta: Any) -> dict[str, Any]:
    frames, times = recording.answer(parse_challenge(session["challenge"]))
    files = [("frames", (f"{i:04d}.jpg", blob, "image/jpeg")) for i, blob in enumerate(frames)]
    body = json.dumps({"nonce": session["nonce"], "t_ms": times, **meta})
    return {"data": {"meta": body}, "files": files}


def _injection(service: ShirenService) -> tuple[dict[str, Any], str]:
    (tid,) = service.tenant_ids()
    with service.store() as uow:
        events = uow.audit.read(tid, start_seq=1, limit=1000)
    decided = [json.loads(e.payload) for e in events if e.kind == "check.decided"]
    assert len(decided) == 1
    return decided[0]["injection"], "".join(e.payload for e in events)


def test_the_page_sends_its_camera_label(setup: Any, recording: Recording) -> None:
    client, service, session, _ = setup
    base = f"/v1/capture/{session['capture_token']}"
    receipt = client.post(f"{base}/consent", json={"accepted": True}).json()["receipt"]
    upload = _upload(session, recording, camera_label=LABEL)
    answer = client.post(f"{base}/frames", headers={"X-Shiren-Consent": receipt}, **upload)
    assert answer.status_code == 200, answer.text
    evidence, payloads = _injection(service)
    assert evidence["source"] == "page"
    assert evidence["started_from"] == "consent"  # the page's consent came after the session
    assert evidence["details"]["virtual_camera_label"] is True
    assert "camera.virtual_label" in evidence["sub_kinds"]
    assert LABEL not in payloads  # whether it names a virtual camera, never the label


def test_a_lenders_client_may_send_it_too(setup: Any, recording: Recording) -> None:
    client, service, session, auth = setup
    upload = _upload(session, recording, camera_label="FaceTime HD Camera")
    answer = client.post(f"/v1/sessions/{session['id']}/frames", headers=auth, **upload)
    assert answer.status_code == 200, answer.text
    evidence, _ = _injection(service)
    assert evidence["source"] == "api"
    assert evidence["started_from"] == "session"
    assert evidence["details"]["virtual_camera_label"] is False
    assert evidence["features"]["jitter_ms"]["threshold"] is None  # the page's timer: not judged


def test_an_overlong_label_is_refused(setup: Any, recording: Recording) -> None:
    client, _, session, auth = setup
    upload = _upload(session, recording, camera_label="x" * 257)
    answer = client.post(f"/v1/sessions/{session['id']}/frames", headers=auth, **upload)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "input.invalid"
