"""Read the digits aloud (issue 18) through the borrower's API with the real models: offered
only where the level allows it, a fresh signed session carrying the digit schedule, the answer
(one recording with sound) decoded before the session is consumed and judged by the audio-visual
check, typed errors that burn nothing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.liveness.challenge import Variant, parse_challenge
from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import Level
from shiren.service.app import Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.test_capture_api import problem
from tests.conftest import REAL_MOV, require
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording


def _allowing_read_digits(engine: Engine) -> Engine:
    base = engine.checker
    levels = dict(base.config.levels)
    levels[Level.NORMAL] = replace(levels[Level.NORMAL], read_digits=True)
    checker = LivenessChecker(
        verifier=base.verifier,
        tracker=base.tracker,
        pad=base.pad,
        config=replace(base.config, levels=levels),
    )
    return Engine(engine.verifier, checker)


@pytest.fixture
def setup(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> Iterator[tuple[TestClient, ShirenService, dict[str, Any], dict[str, str]]]:
    sql = make_engine(f"sqlite:///{tmp_path / 'digits.db'}")
    migrate(sql)
    service = ShirenService(
        store=SqlStore(sql),
        keys=ServiceKeys.generate(),
        engine=_allowing_read_digits(engine),
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
    )
    _tenant, key = service.create_tenant("示例贷款")
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
    try:
        yield client, service, enrolled.json()["session"], auth
    finally:
        client.close()
        sql.dispose()


def _ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    if exe is None:  # scripts/browser-deps.sh installs it; CI must not pass by skipping
        if os.environ.get("CI"):
            pytest.fail("ffmpeg missing in CI")
        pytest.skip("ffmpeg absent")
    subprocess.run([exe, "-loglevel", "error", "-y", *args], check=True)


def test_reading_the_digits_is_a_fresh_session_judged_on_sound_and_face(
    setup: Any, tmp_path: Path
) -> None:
    client, service, session, auth = setup
    base = f"/v1/capture/{session['capture_token']}"
    info = client.get(base).json()
    assert info["recording"]["read_digits"] is True
    receipt = client.post(f"{base}/consent", json={"accepted": True}).json()["receipt"]
    opened = client.post(f"{base}/read-digits/open", headers={"X-Shiren-Consent": receipt})
    assert opened.status_code == 200, opened.text
    rd = opened.json()
    new_base = f"/v1/capture/{rd['capture_token']}"
    challenge = parse_challenge(client.get(new_base).json()["challenge"])
    assert challenge.variant is Variant.READ_DIGITS
    assert challenge.digits is not None
    assert 4 <= len(challenge.digits["steps"]) <= 6
    headers = {"X-Shiren-Consent": rd["receipt"]}

    # the webcam recording with its own sound (a man at his desk, not reading digits), and the
    # same without sound
    source = require(REAL_MOV)
    with_sound, silent = tmp_path / "answer.webm", tmp_path / "mute.webm"
    _ffmpeg("-i", str(source), "-t", "8", "-c", "copy", str(with_sound))
    _ffmpeg("-i", str(source), "-t", "8", "-an", "-c", "copy", str(silent))
    mute = {"video": ("mute.webm", silent.read_bytes(), "video/webm")}
    problem(
        client.post(
            f"{new_base}/recording", data={"nonce": rd["nonce"]}, files=mute, headers=headers
        ),
        400,
        "input.audio_missing",
    )
    bad_lang = {"nonce": rd["nonce"], "lang": "fr"}
    answer = {"video": ("answer.webm", with_sound.read_bytes(), "video/webm")}
    problem(
        client.post(f"{new_base}/recording", data=bad_lang, files=answer, headers=headers),
        400,
        "input.invalid",
    )
    sent = client.post(
        f"{new_base}/recording",
        data={"nonce": rd["nonce"], "lang": "en"},
        files=answer,
        headers=headers,
    )
    assert sent.status_code == 200, sent.text
    # no digits were read: not a pass, and not the borrower's lock-out either
    assert sent.json()["decision"] in ("retry", "review"), sent.json()
    tenant = service.authenticate(auth["Authorization"].split()[1])
    with service.store() as uow:
        decided = [
            json.loads(e.payload) for e in uow.audit.read(tenant.id) if e.kind == "check.decided"
        ]
    assert decided[-1]["liveness_variant"] == "read_digits"
    assert decided[-1]["decision"] != "pass"


def test_reading_the_digits_is_refused_where_the_level_does_not_allow_it(
    setup: Any,
) -> None:
    client, service, session, _ = setup
    levels = dict(service.checker.config.levels)
    levels[Level.NORMAL] = replace(levels[Level.NORMAL], read_digits=False)
    service.checker.config = replace(service.checker.config, levels=levels)
    base = f"/v1/capture/{session['capture_token']}"
    assert client.get(base).json()["recording"]["read_digits"] is False
    receipt = client.post(f"{base}/consent", json={"accepted": True}).json()["receipt"]
    problem(
        client.post(f"{base}/read-digits/open", headers={"X-Shiren-Consent": receipt}),
        409,
        "capture.recording_not_allowed",
    )
