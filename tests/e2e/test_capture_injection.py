"""The injection check's inputs from the real capture page in headless Chromium (issue 17).

The page sends its camera's ``MediaStreamTrack.label`` with the frames (``meta.camera_label``).
Chromium's fake capture device playing a file (``--use-file-for-fake-video-capture``, as every
browser test here films) is labelled with the file's *path*
(``/tmp/pytest-of-…/camera0/real.y4m``), which names none of the virtual-camera rule's words
(``VIRTUAL_CAMERA_WORDS``): the check's audit line says the label names a virtual camera
``false`` — and carries neither the label nor any part of it.  (Without a file, Chromium's own
test pattern is labelled ``fake_device_0``, which the rule *does* name — "fake" — as it should:
that flag is one way to inject a video.  That pattern shows no face, so the page never starts
on it and it is not walked here.)  The same walk shows the page's first fetch of the challenge
recorded on the session, before its consent and the upload.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from shiren.liveness.injection import virtual_camera_label
from shiren.service.capture import start_demo_session
from tests.e2e.conftest import LiveServer, ffmpeg_frame, make_y4m, shot

Browser = Callable[..., AbstractContextManager[Any]]


@pytest.fixture(scope="module")
def live_video(camera_files: Path, real_mov: Path) -> Path:
    return make_y4m(real_mov, camera_files / "real.y4m")


@pytest.fixture(scope="module")
def reference_of_live(camera_files: Path, real_mov: Path) -> bytes:
    return ffmpeg_frame(real_mov, 12.5, camera_files / "reference.jpg")


def _decided(server: LiveServer, tenant_id: str) -> tuple[dict[str, Any], str]:
    with server.service.store() as uow:
        events = uow.audit.read(tenant_id, start_seq=1, limit=1000)
    lines = [json.loads(e.payload) for e in events if e.kind == "check.decided"]
    assert len(lines) == 1, lines
    return lines[0], "".join(e.payload for e in events)


def test_the_pages_camera_label_reaches_the_checks_audit_line(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference_of_live: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = live_server("normal:injection")
    session = start_demo_session(server.service, reference_image=reference_of_live)
    sent: list[str | None] = []
    submit = server.service.submit

    def recording_submit(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("camera_label"))
        return submit(*args, **kwargs)

    monkeypatch.setattr(server.service, "submit", recording_submit)  # this test's own server
    with browser(camera=live_video) as page:
        page.goto(server.url + session.capture_path())
        page.locator("#screen-consent").wait_for(state="visible")
        page.click("#consent-accept")
        page.locator("#start:enabled").wait_for(timeout=20_000)
        label = page.evaluate(
            "async () => (await navigator.mediaDevices.enumerateDevices())"
            ".filter((d) => d.kind === 'videoinput').map((d) => d.label)"
        )
        page.click("#start")
        page.locator("#screen-result").wait_for(state="visible", timeout=90_000)
        shot(page, "injection-label-result")
    assert label == [str(live_video.resolve())], label  # the fake device names its file
    assert virtual_camera_label(label[0]) is False, label
    assert sent == label  # the page sent it with the frames
    assert virtual_camera_label("fake_device_0") is True  # Chromium's pattern, without a file
    line, payloads = _decided(server, session.tenant_id)
    evidence = line["injection"]
    assert evidence["source"] == "page"
    assert evidence["mode"] == "shadow"
    assert evidence["effect"] == "none"
    assert evidence["details"]["virtual_camera_label"] is False  # names a virtual camera: false
    assert "camera.virtual_label" not in evidence["sub_kinds"]
    assert live_video.name not in payloads
    assert "camera0" not in payloads
    with server.service.store() as uow:
        stored = uow.sessions.get(session.tenant_id, session.session_id)
        consents = uow.consents.list_for_subject(session.tenant_id, session.subject_id)
    assert stored is not None
    assert stored.challenge_sent_at is not None
    page_consent = max(c.granted_at for c in consents)
    assert stored.created_at <= stored.challenge_sent_at <= page_consent  # fetch, then consent
    assert evidence["started_from"] == "consent"
