"""Issue 17 through the borrower's API with the real models: the record-and-upload fallback
(bound to a fresh signed session, the actions found in order in a real recording, typed errors
that burn nothing) and the light ladder (an unseen flash is retried motion-only)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.liveness.challenge import Variant, parse_challenge
from tests.api.test_capture_api import problem, setup
from tests.service.support import Recording

__all__ = ["setup"]


def _video(frames: list[bytes], times: list[float], folder: Path, stretch: float = 1.3) -> bytes:
    """The answer's frames as a phone video (MP4, 25 fps), filmed ``stretch`` × slower than the
    page's timeline: the server must find the actions, not read them from windows."""
    images = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in frames]
    h, w = images[0].shape[:2]
    path = folder / "rec.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, (w, h))
    k = 0
    stretched = [t * stretch for t in times]
    for i in range(int(stretched[-1] / 40) + 1):
        while k + 1 < len(stretched) and stretched[k + 1] <= i * 40:
            k += 1
        out.write(images[k])
    out.release()
    return path.read_bytes()


def _consent(client: Any, base: str) -> dict[str, str]:
    return {
        "X-Shiren-Consent": client.post(f"{base}/consent", json={"accepted": True}).json()[
            "receipt"
        ]
    }


def test_a_recording_answers_a_fresh_recorded_session(
    setup: Any, recording: Recording, tmp_path: Path
) -> None:
    client, service, session, auth = setup
    base = f"/v1/capture/{session['capture_token']}"
    info = client.get(base).json()
    assert info["recording"]["allowed"] is True
    problem(client.post(f"{base}/recording/open"), 403, "capture.consent_required")
    headers = _consent(client, base)
    opened = client.post(f"{base}/recording/open", headers=headers)
    assert opened.status_code == 200, opened.text
    rec = opened.json()
    assert client.post(f"{base}/recording/open", headers=headers).json() == rec  # idempotent
    assert rec["nonce"] != session["nonce"]
    assert len(rec["actions"]) == 3
    # the old session is expired: one open attempt at a time
    assert client.get(f"/v1/sessions/{session['id']}", headers=auth).json()["status"] == "expired"
    new_base = f"/v1/capture/{rec['capture_token']}"
    new_info = client.get(new_base).json()
    challenge = parse_challenge(new_info["challenge"])
    assert challenge.variant is Variant.RECORDED
    assert challenge.colours == ()
    assert [s.action.value for s in challenge.actions] == rec["actions"]
    rec_headers = {"X-Shiren-Consent": rec["receipt"]}
    # the recorded link opened again is the same session
    again = client.post(f"{new_base}/recording/open", headers=rec_headers).json()
    assert again["capture_token"] == rec["capture_token"]

    frames, times = recording.answer(challenge)
    video = _video(frames, times, tmp_path)
    # live frames do not answer a recorded session, nor does garbage: nothing is burned
    meta = json.dumps({"nonce": rec["nonce"], "t_ms": times})
    files = [("frames", (f"{i:04d}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    problem(
        client.post(f"{new_base}/frames", data={"meta": meta}, files=files, headers=rec_headers),
        400,
        "input.challenge_invalid",
    )
    bad = {"video": ("rec.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 5000, "video/mp4")}
    problem(
        client.post(
            f"{new_base}/recording", data={"nonce": rec["nonce"]}, files=bad, headers=rec_headers
        ),
        400,
        "input.video_unreadable",
    )
    problem(
        client.post(f"{new_base}/recording", content=b"{}", headers=rec_headers),
        400,
        "input.invalid",
    )
    files_ok = {"video": ("rec.mp4", video, "video/mp4")}
    wrong_nonce = client.post(
        f"{new_base}/recording", data={"nonce": "f" * 32}, files=files_ok, headers=rec_headers
    )
    problem(wrong_nonce, 400, "input.challenge_invalid")
    sent = client.post(
        f"{new_base}/recording", data={"nonce": rec["nonce"]}, files=files_ok, headers=rec_headers
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["decision"] == "pass", sent.json()
    problem(
        client.post(
            f"{new_base}/recording",
            data={"nonce": rec["nonce"]},
            files=files_ok,
            headers=rec_headers,
        ),
        409,
        "session.already_used",
    )
    # the old link still leads to the one recorded attempt, now used
    assert client.post(f"{base}/recording/open", headers=headers).json()["nonce"] == rec["nonce"]
    # the audit names the variant and the signals that carried the decision
    tenant = service.authenticate(auth["Authorization"].split()[1])
    with service.store() as uow:
        decided = [
            json.loads(e.payload) for e in uow.audit.read(tenant.id) if e.kind == "check.decided"
        ]
    assert decided[-1]["liveness_variant"] == "recorded"
    assert "colour" not in decided[-1]["carried_by"]
    assert {"challenge", "parallax", "passive", "identity"} <= set(decided[-1]["carried_by"])


def test_a_judged_session_cannot_switch_and_a_live_one_takes_no_recording(
    setup: Any, recording: Recording
) -> None:
    client, _, session, _ = setup
    base = f"/v1/capture/{session['capture_token']}"
    headers = _consent(client, base)
    video = {"video": ("rec.mp4", b"\x00" * 1000, "video/mp4")}
    problem(
        client.post(
            f"{base}/recording", data={"nonce": session["nonce"]}, files=video, headers=headers
        ),
        400,
        "input.challenge_invalid",
    )
    frames, times = recording.answer(parse_challenge(session["challenge"]))
    meta = json.dumps({"nonce": session["nonce"], "t_ms": times})
    files = [("frames", (f"{i:04d}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    sent = client.post(f"{base}/frames", data={"meta": meta}, files=files, headers=headers)
    assert sent.json()["decision"] == "pass"  # the refused recording burned nothing
    problem(
        client.post(f"{base}/recording/open", headers=headers), 409, "capture.recording_not_allowed"
    )


def test_an_unseen_flash_is_retried_motion_only(setup: Any, recording: Recording) -> None:
    """The light ladder: the face matched and every signal passed but the flash, whose
    reflection is not in the frames (direct sun) → retry; the next attempt is drawn motion-only
    and passes on the motion-only rules."""
    client, service, session, auth = setup
    base = f"/v1/capture/{session['capture_token']}"
    headers = _consent(client, base)
    in_the_sun = Recording(recording.source, replace(recording.params, colour_gain=0.0))
    frames, times = in_the_sun.answer(parse_challenge(session["challenge"]))
    meta = json.dumps({"nonce": session["nonce"], "t_ms": times})
    files = [("frames", (f"{i:04d}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    judged = client.post(f"{base}/frames", data={"meta": meta}, files=files, headers=headers)
    assert judged.json()["decision"] == "retry", judged.json()
    assert judged.json()["can_retry"] is True
    assert any("闪光" in tip for tip in judged.json()["tips"])
    nxt = client.post(f"{base}/retry", headers=headers).json()
    nxt_base = f"/v1/capture/{nxt['capture_token']}"
    challenge = parse_challenge(client.get(nxt_base).json()["challenge"])
    assert challenge.variant is Variant.MOTION
    assert challenge.colours == ()
    assert len(challenge.actions) == 3
    frames, times = in_the_sun.answer(challenge)
    meta = json.dumps({"nonce": challenge.nonce, "t_ms": times})
    files = [("frames", (f"{i:04d}.jpg", b, "image/jpeg")) for i, b in enumerate(frames)]
    sent = client.post(
        f"{nxt_base}/frames",
        data={"meta": meta},
        files=files,
        headers={"X-Shiren-Consent": nxt["receipt"]},
    )
    assert sent.json()["decision"] == "pass", sent.json()
    first, second = _decided(service, auth)[-2:]
    assert first["liveness_variant"] == "live"
    assert "liveness.flash_unseen" in first["reasons"]
    assert second["liveness_variant"] == "motion"
    assert "colour" not in second["carried_by"]


def _decided(service: Any, auth: dict[str, str]) -> list[dict[str, Any]]:
    """The ``check.decided`` audit payloads (reasons, variant, what carried it)."""
    tenant = service.authenticate(auth["Authorization"].split()[1])
    with service.store() as uow:
        return [
            json.loads(e.payload) for e in uow.audit.read(tenant.id) if e.kind == "check.decided"
        ]
