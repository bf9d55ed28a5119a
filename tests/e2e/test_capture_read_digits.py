"""Read the digits aloud (issue 18) in real headless Chromium against the real service and
models: a fake camera (the webcam recording) and a fake microphone (a GRID speaker's WAV, so
real speech, though not these digits) feed the page; where the level allows it the framing
screen offers "不方便转头？改为念数字", the page switches to a fresh read-the-digits session, asks
for the camera and microphone, shows the server's digits one by one on its schedule while
MediaRecorder records sound and picture, and uploads the recording, which the server decodes and
judges.  The voice is not the face's and does not read these digits, so it must not pass."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shiren.liveness.challenge import Variant, parse_challenge
from shiren.liveness.config import Level
from shiren.service.capture import start_demo_session
from tests.conftest import SHARED, require
from tests.e2e.conftest import LiveServer, ffmpeg_frame, make_y4m, shot

Browser = Callable[..., AbstractContextManager[Any]]
GRID_CLIP = SHARED / "grid_talking_faces" / "P08_bbaf2n.mpg"


@pytest.fixture(scope="module")
def server(live_server: Callable[[str], LiveServer]) -> LiveServer:
    """Its own server, whose normal level allows reading the digits (shipped: off)."""
    srv = live_server("normal:digits")
    config = srv.service.checker.config
    levels = dict(config.levels)
    levels[Level.NORMAL] = replace(levels[Level.NORMAL], read_digits=True)
    srv.service.checker.config = replace(config, levels=levels)
    return srv


@pytest.fixture(scope="module")
def microphone(camera_files: Path) -> Path:
    out = camera_files / "speech.wav"
    if not out.exists():
        subprocess.run(
            [
                *("ffmpeg", "-y", "-loglevel", "error", "-i", str(require(GRID_CLIP))),
                *("-vn", "-ac", "1", "-ar", "48000", str(out)),
            ],
            check=True,
        )
    return out


def test_the_page_reads_the_digits_with_camera_and_microphone(
    server: LiveServer,
    browser: Browser,
    camera_files: Path,
    real_mov: Path,
    microphone: Path,
) -> None:
    camera = make_y4m(real_mov, camera_files / "digits.y4m")
    reference = ffmpeg_frame(real_mov, 12.5, camera_files / "digits-reference.jpg")
    session = start_demo_session(server.service, reference_image=reference, level="normal")
    with browser(camera=camera, microphone=microphone) as page:
        page.goto(server.url + session.capture_path())
        page.click("#consent-accept")
        offer = page.locator("#digits-offer")
        offer.wait_for(state="visible", timeout=20_000)
        shot(page, "digits-01-offered")
        offer.click()
        page.locator("#screen-digits").wait_for(state="visible", timeout=20_000)
        token = page.evaluate("() => location.pathname.split('/').pop()")
        assert token != session.capture_token
        with server.client() as http:
            challenge = parse_challenge(http.get(f"/v1/capture/{token}").json()["challenge"])
        assert challenge.variant is Variant.READ_DIGITS
        assert challenge.digits is not None
        shown = [str(s["digit"]) for s in challenge.digits["steps"]]
        page.locator("#digits-start:enabled").wait_for(timeout=20_000)
        shot(page, "digits-02-ready")
        page.evaluate(_WATCH_PROMPT)
        page.click("#digits-start")
        page.wait_for_function(
            "() => document.querySelector('#digits-big').textContent.length === 1"
        )
        first = page.locator("#digits-big").inner_text()
        assert first == shown[0]
        shot(page, "digits-03-reading")
        prompts = page.evaluate("() => window.__prompts")
        page.locator("#screen-result").wait_for(state="visible", timeout=60_000)
        shot(page, "digits-04-result")
    # the lead-in asks for quiet (the check hears the room there), then the digits for voice
    assert [p for p in prompts if p] in ([_WAIT["zh"], _READ["zh"]], [_WAIT["en"], _READ["en"]])
    rows = _judged_not_passed(server, token, session.tenant_id)
    assert any(r.get("liveness_variant") == "read_digits" for r in rows)


_WATCH_PROMPT = """() => {
  const el = document.querySelector('#digits-prompt');
  window.__prompts = [];
  new MutationObserver(() => {
    const text = el.textContent;
    if (window.__prompts[window.__prompts.length - 1] !== text) window.__prompts.push(text);
  }).observe(el, {childList: true, characterData: true, subtree: true});
}"""
_WAIT = {"zh": "请保持安静，数字马上出现", "en": "Stay quiet: the first digit is about to appear"}
_READ = {"zh": "请大声读出出现的数字", "en": "Read each digit aloud as it appears"}


def test_an_event_whose_policy_requires_the_digits_goes_straight_to_them(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    camera_files: Path,
    real_mov: Path,
    microphone: Path,
) -> None:
    """``challenge = "read_digits"`` on a lending event (the shipped levels do not offer it):
    the lender's event answer carries a read-the-digits session, and the page goes from the
    consent straight to the camera-and-microphone step — no framing screen, no recording
    fallback — then judges the recording like any read-the-digits answer."""
    import tomllib
    from importlib import resources

    from shiren.domain.policy import parse_policy

    srv = live_server("normal:required-digits")
    assert srv.service.checker.config.level(Level.NORMAL).read_digits is False
    raw = tomllib.loads(resources.files("shiren.data").joinpath("policy.toml").read_text("utf-8"))
    raw["events"]["new_device"]["challenge"] = "read_digits"
    srv.service.step_up.policy = parse_policy(raw, "test")
    camera = make_y4m(real_mov, camera_files / "digits.y4m")
    reference = ffmpeg_frame(real_mov, 12.5, camera_files / "digits-reference.jpg")
    demo = start_demo_session(srv.service, reference_image=reference, level="normal")
    event = {"subject_id": demo.subject_id, "type": "new_device", "device_id": "phone-2"}
    with srv.client() as http:
        answer = http.post(
            "/v1/events", json=event, headers={"Authorization": f"Bearer {demo.api_key}"}
        ).json()
    assert answer["requirement"]["challenge"] == "read_digits"
    token = answer["session"]["capture_token"]
    with browser(camera=camera, microphone=microphone) as page:
        page.goto(f"{srv.url}/capture/{token}")
        page.click("#consent-accept")
        page.locator("#screen-digits").wait_for(state="visible", timeout=20_000)
        assert page.locator("#screen-capture").is_hidden()
        page.locator("#digits-start:enabled").wait_for(timeout=20_000)
        shot(page, "digits-required-01-ready")
        page.click("#digits-start")
        page.locator("#screen-result").wait_for(state="visible", timeout=60_000)
        shot(page, "digits-required-02-result")
    rows = _judged_not_passed(srv, token, demo.tenant_id)
    assert rows[-1]["liveness_variant"] == "read_digits"


def _judged_not_passed(server: LiveServer, token: str, tenant_id: str) -> list[dict[str, Any]]:
    """The capture was judged, and not a pass (the voice is not the face's and reads no digits);
    the tenant's ``check.decided`` audit lines."""
    with server.client() as http:
        result = http.get(f"/v1/capture/{token}/result").json()
    assert result["decision"] in ("retry", "review", "fallback"), result
    with server.service.store() as uow:
        return [
            json.loads(e.payload) for e in uow.audit.read(tenant_id) if e.kind == "check.decided"
        ]
