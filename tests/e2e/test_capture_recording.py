"""The record-and-upload fallback (issue 17) in real headless Chromium against the real service
and models.

A browser without the camera API (``navigator.mediaDevices`` removed, as in an old in-app web
view) gets the explicit environment screen with "录制视频上传"; the borrower consents, the page
switches the session to a fresh recorded one and shows the actions to film, in order; the
"phone video" — the annotated webcam recording answering those actions, filmed 1.3 × slower
than the page's timeline, as an MP4 — goes through the page's file input and the server finds
the actions in the video and passes it.  An unreadable file is refused with a tip and burns
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from shiren.liveness.challenge import Variant, parse_challenge
from shiren.service.capture import start_demo_session
from tests.api.test_capture_recording_api import _video
from tests.e2e.conftest import LiveServer, ffmpeg_frame, shot
from tests.service.support import Recording, load_recording

Browser = Callable[..., AbstractContextManager[Any]]
NO_CAMERA_API = "Object.defineProperty(navigator, 'mediaDevices', {value: undefined})"


@pytest.fixture(scope="module")
def recording(real_mov_frames: Any, e2e_engine: Any) -> Recording:
    return load_recording(real_mov_frames, e2e_engine.checker.tracker)


@pytest.fixture(scope="module")
def server(live_server: Callable[[str], LiveServer], recording: Recording) -> LiveServer:
    """Its own server, drawing only challenges the annotated recording can answer."""
    srv = live_server("normal:recording")
    srv.service.draw = recording.drawer()
    return srv


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_browser_without_the_camera_api_records_and_uploads(
    server: LiveServer,
    browser: Browser,
    recording: Recording,
    camera_files: Path,
    real_mov: Path,
    tmp_path: Path,
    lang: str,
) -> None:
    reference = ffmpeg_frame(real_mov, 12.5, camera_files / "rec-reference.jpg")
    session = start_demo_session(server.service, reference_image=reference, level="normal")
    suffix = "en" if lang == "en" else "zh"
    with browser(locale=lang) as page:
        page.add_init_script(NO_CAMERA_API)
        page.goto(server.url + session.capture_path() + ("?lang=en" if lang == "en" else ""))
        page.locator("#env-record").wait_for(state="visible")
        assert page.evaluate("() => document.body.dataset.environment") == "no_camera_api"
        shot(page, f"recording-01-offered-{suffix}")
        page.click("#env-record")
        page.locator("#screen-consent").wait_for(state="visible")
        page.click("#consent-accept")
        # the page moves to the recorded session's own link and shows what to film
        page.locator("#screen-recording").wait_for(state="visible", timeout=20_000)
        token = page.evaluate("() => location.pathname.split('/').pop()")
        assert token != session.capture_token
        with server.client() as http:
            info = http.get(f"/v1/capture/{token}").json()
        challenge = parse_challenge(info["challenge"])
        assert challenge.variant is Variant.RECORDED
        listed = page.locator("#rec-actions li").all_inner_texts()
        assert len(listed) == len(challenge.actions) == 3
        box = page.locator("#rec-pick").bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= 844  # the record button is on screen
        shot(page, f"recording-02-actions-{suffix}")

        # an unreadable file: a tip, and the session is still open
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000)
        page.set_input_files("#rec-input", str(junk))
        page.wait_for_function("() => document.querySelector('#rec-status').textContent.length > 8")
        assert page.evaluate("() => document.body.dataset.screen") == "recording"
        shot(page, f"recording-03-unreadable-{suffix}")

        frames, times = recording.answer(challenge)
        video = tmp_path / "phone.mp4"
        video.write_bytes(_video(frames, times, tmp_path))
        page.set_input_files("#rec-input", str(video))
        page.locator("#screen-result").wait_for(state="visible", timeout=60_000)
        shot(page, f"recording-04-result-{suffix}")
        with server.client() as http:
            result = http.get(f"/v1/capture/{token}/result").json()
        assert result["decision"] == "pass", result
