"""The capture page in the wild (issue 17), in real headless Chromium against the real service.

* The result screen's buttons follow the server's answer: "Try again" only when ``can_retry``
  (a ``review`` used to show it, because ``.actions{display:flex}`` beat the ``hidden``
  attribute), and the attempts line only for a ``retry``.  The decision is the real server's
  JSON shape with each outcome filled in (the page is what is under test here; the decisions
  themselves are tested against the real models elsewhere).
* The start button and the flash-sensitive way out are on screen without scrolling at
  360 × 640 and 390 × 844.
* No "action 1 of 3" while the colour flash runs, before any action.
* English texts have no "time(s)".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from shiren.service.capture import DemoSession, start_demo_session
from tests.e2e.conftest import LiveServer, ffmpeg_frame, make_y4m, shot

Browser = Callable[..., AbstractContextManager[Any]]

OUTCOMES: dict[str, dict[str, Any]] = {
    "pass": {"can_retry": False, "attempts": {"failed": 0, "max": 5}},
    "retry": {"can_retry": True, "attempts": {"failed": 1, "max": 5}},
    "review": {"can_retry": False, "attempts": {"failed": 1, "max": 5}},
    "fallback": {"can_retry": False, "attempts": {"failed": 5, "max": 5}},
}


@pytest.fixture(scope="module")
def live_video(camera_files: Path, real_mov: Path) -> Path:
    return make_y4m(real_mov, camera_files / "real.y4m")


@pytest.fixture(scope="module")
def reference(camera_files: Path, real_mov: Path) -> bytes:
    return ffmpeg_frame(real_mov, 12.5, camera_files / "reference.jpg")


def _session(server: LiveServer, reference: bytes, level: str = "normal") -> DemoSession:
    return start_demo_session(server.service, reference_image=reference, level=level)


def _answer(decision: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "used",
        "decision": decision,
        "tips": [],
        "advice": [],
        "retry_after_s": None,
        "fallbacks": [],
        **OUTCOMES[decision],
    }
    if decision == "fallback":
        body["fallbacks"] = [{"code": "sms_otp", "label": "短信验证码"}]
        body["retry_after_s"] = 1800
    return body


@pytest.mark.parametrize("decision", list(OUTCOMES))
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_result_buttons_follow_the_answer(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    reference: bytes,
    decision: str,
    lang: str,
) -> None:
    server = live_server("normal")
    session = _session(server, reference)
    token = session.capture_token

    def info(route: Any) -> None:
        response = route.fetch()
        doc = response.json()
        doc.update(status="used", nonce=None, challenge=None, result_ready=True)
        route.fulfill(response=response, body=json.dumps(doc))

    with browser(locale=lang) as page:
        page.route(f"**/v1/capture/{token}?*", info)
        page.route(
            f"**/v1/capture/{token}/result*",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(_answer(decision))
            ),
        )
        page.goto(server.url + session.capture_path() + ("?lang=en" if lang == "en" else ""))
        page.locator("#screen-result").wait_for(state="visible")
        retry_visible = page.locator("#result-retry").is_visible()
        attempts = page.locator("#result-attempts").inner_text()
        shot(page, f"wild-result-{decision}-{lang}")
    assert retry_visible is OUTCOMES[decision]["can_retry"], decision
    if decision == "retry":
        assert attempts
    else:
        assert "4" not in attempts, attempts  # no "you can try 4 more times" beside a review
    assert "(s)" not in attempts


@pytest.mark.parametrize("size", [(360, 640), (390, 844)])
def test_the_start_button_is_on_screen_without_scrolling(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference: bytes,
    size: tuple[int, int],
) -> None:
    server = live_server("normal")
    session = _session(server, reference)
    with browser(camera=live_video) as page:
        page.set_viewport_size({"width": size[0], "height": size[1]})
        page.goto(server.url + session.capture_path())
        page.click("#consent-accept")
        page.locator("#screen-capture").wait_for(state="visible")
        for selector in ("#start", "#flash-fallback", "#prompt"):
            box = page.locator(selector).bounding_box()
            assert box is not None, selector
            assert box["y"] >= 0
            assert box["y"] + box["height"] <= size[1], (selector, box, size)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= size[0]
        shot(page, f"wild-framing-{size[0]}x{size[1]}")


def test_no_action_step_is_shown_during_the_colour_flash(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference: bytes,
) -> None:
    server = live_server("normal")
    session = _session(server, reference)
    with browser(camera=live_video) as page:
        page.goto(server.url + session.capture_path())
        page.click("#consent-accept")
        page.locator("#start:enabled").wait_for(timeout=20_000)
        page.click("#start")
        page.locator("#flash").wait_for(state="visible", timeout=10_000)
        label = page.locator("#step-label").inner_text()
        current = page.locator("#steps li.current").count()
        shot(page, "wild-flash")
    assert "动作 1" not in label, label
    assert current == 0
