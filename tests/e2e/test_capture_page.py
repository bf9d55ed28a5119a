"""The borrower's capture page in real headless Chromium, against the real service and models.

The camera is Chromium's fake capture device playing a file made at test time with ffmpeg:
the live webcam video (``real.mov``) or a still photo.  A recording cannot answer a random
challenge nor reflect the page's colour flash, so:

* at the documented test level *passive-only* (``SHIREN_TEST_PASSIVE_ONLY``) the live video
  passes — proving consent, camera, guidance, the challenge UI, the upload and the decision;
* at the normal level the same video fails, on liveness (not on the face match), and the test
  asserts that;
* a still photo fails at the low, normal and high levels, and (a printed photo) passive-only;
* a connection dropped mid-upload, after the server got the frames, is recovered: the page
  retries, learns the session is used, polls, and the server holds exactly one check.

Screenshots of every screen go to ``out/screenshots/`` (see the README for what each shows).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from shiren.service.capture import DemoSession, start_demo_session
from tests.conftest import SHARED, require
from tests.e2e.conftest import LiveServer, ffmpeg_frame, make_y4m, shot

Browser = Callable[..., AbstractContextManager[Any]]
LIVENESS_FAILURES = {
    "liveness.action_missing",
    "liveness.unexpected_action",
    "liveness.colour_mismatch",
    "liveness.colour_inconclusive",
    "liveness.flat_motion",
    "liveness.insufficient_motion",
    "liveness.spoof_suspected",
    "liveness.face_lost",
    "liveness.challenge_failed",
}


@dataclass
class Outcome:
    page_result: dict[str, Any]
    check: dict[str, Any]


@pytest.fixture(scope="module")
def live_video(camera_files: Path, real_mov: Path) -> Path:
    return make_y4m(real_mov, camera_files / "real.y4m")


@pytest.fixture(scope="module")
def reference_of_live(camera_files: Path, real_mov: Path) -> bytes:
    """The reference photo of the man in the video: a frame from near its END (the capture
    starts filming the looped video from its beginning, so the two are different images)."""
    return ffmpeg_frame(real_mov, 12.5, camera_files / "reference.jpg")


@pytest.fixture(scope="module")
def still_of_live(camera_files: Path, real_mov: Path) -> Path:
    """A still photo of the same man (a frame from the start) looped as the camera."""
    frame = camera_files / "still.jpg"
    ffmpeg_frame(real_mov, 1.0, frame)
    return make_y4m(frame, camera_files / "still.y4m", still_seconds=1)


@pytest.fixture(scope="module")
def printed_photo(camera_files: Path) -> tuple[Path, bytes]:
    """Silent-Face's printed-poster attack photo (upright), as camera and as reference."""
    source = require(SHARED / "silent_face_samples" / "image_F1.jpg")
    upright = camera_files / "poster.jpg"
    ImageOps.exif_transpose(Image.open(source)).convert("RGB").save(upright, quality=95)
    return make_y4m(upright, camera_files / "poster.y4m", still_seconds=1), upright.read_bytes()


def demo(server: LiveServer, reference: bytes, level: str = "normal") -> DemoSession:
    return start_demo_session(server.service, reference_image=reference, level=level)


def lender_check(server: LiveServer, session: DemoSession) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {session.api_key}"}
    with server.client() as http:
        view = http.get(f"/v1/sessions/{session.session_id}", headers=auth).json()
        assert view["check_id"], view
        check: dict[str, Any] = http.get(f"/v1/checks/{view['check_id']}", headers=auth).json()
        export = http.get(f"/v1/subjects/{session.subject_id}/export", headers=auth).json()
    check["checks_for_subject"] = len(export["checks"])
    return check


def fits_360px(page: Any) -> bool:
    """Nothing wider than the 360-px phone screen (no sideways scrolling)."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    return bool(width <= 360)


def capture(
    page: Any,
    server: LiveServer,
    session: DemoSession,
    name: str,
    *,
    english: bool = False,
    screenshots: bool = True,
) -> Outcome:
    """Walk the page like a borrower: consent → camera → framing → challenge → result."""

    def snap(step: str) -> None:
        if screenshots:
            shot(page, f"{name}-{step}")

    page.goto(server.url + session.capture_path())
    page.locator("#screen-consent").wait_for(state="visible")
    if english:
        page.click("#lang-switch")
        page.get_by_role("button", name="Agree and start").wait_for()
        assert page.locator("html").get_attribute("lang") == "en"
    assert fits_360px(page)
    snap("01-consent")
    page.click("#consent-accept")
    page.locator("#screen-capture").wait_for(state="visible")
    page.locator("#start:enabled").wait_for(timeout=20_000)
    assert page.locator("#prompt").get_attribute("aria-live") == "assertive"
    assert fits_360px(page)
    snap("02-framing")
    page.click("#start")
    if session.level != "low":
        page.locator("#flash").wait_for(state="visible", timeout=10_000)
        snap("03-flash")
    page.locator("#steps li.current").first.wait_for(state="attached", timeout=15_000)
    snap("04-action")
    page.locator("#screen-result").wait_for(state="visible", timeout=90_000)
    assert fits_360px(page)
    snap("05-result")
    with server.client() as http:
        result = http.get(f"/v1/capture/{session.capture_token}/result").json()
    check = lender_check(server, session)
    print(f"{name}: {check['decision']} {check['reasons']} liveness={check['liveness_score']}")
    return Outcome(result, check)


# -- the tests -------------------------------------------------------------------------------


def test_live_video_passes_at_the_passive_only_test_level(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference_of_live: bytes,
) -> None:
    server = live_server("passive_only")
    session = demo(server, reference_of_live)
    with browser(camera=live_video) as page:
        out = capture(page, server, session, "pass-passive-only")
        assert page.locator("#result-title").inner_text() == "验证通过"
    assert out.page_result["decision"] == "pass", out.check
    assert out.check["decision"] == "pass"
    assert out.check["checks_for_subject"] == 1


def test_live_video_fails_at_the_normal_level_it_cannot_answer_the_challenge(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference_of_live: bytes,
) -> None:
    server = live_server("normal")
    session = demo(server, reference_of_live)
    with browser(camera=live_video) as page:
        out = capture(page, server, session, "fail-normal-en", english=True)
        assert page.locator("#result-title").inner_text() != "Verified"
    assert out.check["decision"] != "pass", out.check
    reasons = set(out.check["reasons"])
    # Liveness failed (the recording answered no random challenge / reflected no colours)...
    assert reasons & LIVENESS_FAILURES, reasons
    # ... while the face itself matched: it is the video's own man.
    assert "match.below_threshold" not in reasons, out.check
    assert out.page_result["decision"] == out.check["decision"]
    assert any(a["code"] == "not_live" for a in out.page_result["advice"])


@pytest.mark.parametrize("level", ["low", "normal", "high"])
def test_still_photo_fails_at_every_level(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    still_of_live: Path,
    reference_of_live: bytes,
    level: str,
) -> None:
    server = live_server(f"normal:{level}")  # its own replay guard: the level's signals judge
    session = demo(server, reference_of_live, level=level)
    assert session.level == level
    with browser(camera=still_of_live) as page:
        out = capture(page, server, session, f"still-{level}", screenshots=level == "normal")
        if level == "low" and out.page_result.get("can_retry"):
            # "再试一次": the next attempt opens on a new session, consent carried over
            shot(page, "still-low-05-result-with-retry")
            page.click("#result-retry")
            page.locator("#screen-capture").wait_for(state="visible")
            assert session.capture_token not in page.url
            shot(page, "still-low-06-next-attempt")
    assert out.check["decision"] != "pass", out.check
    assert set(out.check["reasons"]) & LIVENESS_FAILURES, out.check


def test_printed_photo_fails_even_passive_only(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    printed_photo: tuple[Path, bytes],
) -> None:
    camera, reference = printed_photo
    server = live_server("passive_only")
    session = demo(server, reference)
    with browser(camera=camera) as page:
        out = capture(page, server, session, "poster-passive-only", screenshots=False)
    assert out.check["decision"] != "pass", out.check
    assert "liveness.spoof_suspected" in out.check["reasons"] or any(
        r.startswith("liveness.") for r in out.check["reasons"]
    ), out.check


def test_dropped_connection_mid_upload_recovers_without_a_second_submission(
    live_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference_of_live: bytes,
) -> None:
    server = live_server("passive_only:network")
    session = demo(server, reference_of_live, level="low")
    posts: list[str] = []

    def drop_first_answer(route: Any) -> None:
        posts.append(route.request.method)
        if len(posts) == 1:
            route.fetch(timeout=120_000)  # the server receives and judges the capture ...
            route.abort("connectionreset")  # ... and the answer is lost on the way back
        else:
            route.continue_()

    with browser(camera=live_video) as page:
        page.route("**/v1/capture/*/frames*", drop_first_answer)
        page.goto(server.url + session.capture_path())
        page.click("#consent-accept")
        page.locator("#start:enabled").wait_for(timeout=20_000)
        page.click("#start")
        page.locator("#upload-text").filter(has_text="重试").wait_for(timeout=90_000)
        shot(page, "network-drop-01-retrying")
        page.locator("#screen-result").wait_for(state="visible", timeout=90_000)
        shot(page, "network-drop-02-result")
    check = lender_check(server, session)
    assert len(posts) == 2, posts  # the lost one and exactly one retry (409 → poll)
    assert check["checks_for_subject"] == 1, check


def test_consent_refused_shows_the_non_face_path_and_a_bad_link_is_explained(
    live_server: Callable[[str], LiveServer], browser: Browser, reference_of_live: bytes
) -> None:
    server = live_server("normal")
    session = demo(server, reference_of_live, level="low")
    with browser() as page:
        page.goto(server.url + session.capture_path())
        page.click("#consent-decline")
        page.locator("#screen-alternatives").wait_for(state="visible")
        assert "短信验证码" in page.locator("#screen-alternatives").inner_text()
        shot(page, "declined-alternatives")
        forged = session.capture_token[:-4] + (
            "AAAA" if session.capture_token[-4:] != "AAAA" else "BBBB"
        )
        response = page.goto(f"{server.url}/capture/{forged}")
        assert response is not None
        assert response.status == 404
        page.locator("#screen-link-error").wait_for(state="visible")
        assert "链接无效" in page.locator("#link-error-text").inner_text()
        shot(page, "link-invalid")


def test_a_blocked_camera_is_explained_with_a_retry_and_the_alternatives(
    live_server: Callable[[str], LiveServer], browser: Browser, reference_of_live: bytes
) -> None:
    server = live_server("normal")
    session = demo(server, reference_of_live, level="low")
    with browser(allow_camera=False) as page:
        page.goto(server.url + session.capture_path())
        page.click("#consent-accept")
        page.locator("#camera-error").wait_for(state="visible")
        assert "没有摄像头权限" in page.locator("#camera-error").inner_text()
        assert page.locator("#camera-retry").is_visible()
        assert page.get_by_role("button", name="使用其他方式").is_visible()
        shot(page, "camera-blocked")
