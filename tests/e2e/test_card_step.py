"""The capture page's card step (issue 16) in real headless Chromium, against the real service,
the real OCR and face models.

The lender opens a card capture; the fake camera plays a phone photo of a generated ID card (a
fictional holder, the man of the webcam video as its portrait).  The page asks for consent —
with the paragraph on reading the card — shows the card-shaped guide, turns it green when the
server's framing guidance passes, takes the photo, sends it, and moves on to the selfie session
the card opened, with the consent carried (no second consent screen).  A photo that is not a
card comes back with tips and the page asks again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, ffmpeg_frame, make_y4m, shot
from tests.service.support import CONSENT
from tests.support import id_cards

Browser = Callable[..., AbstractContextManager[Any]]


@pytest.fixture(scope="module")
def card_camera(camera_files: Path, real_mov: Path) -> tuple[Path, str]:
    """A 1280-px camera file of the card's front, and the holder's ID number."""
    face = ffmpeg_frame(real_mov, 12.5, camera_files / "card-face.jpg")
    person = id_cards.holder(31, date.today())
    photo = camera_files / "card-front.jpg"
    photo.write_bytes(id_cards.front_photo(id_cards.painter(), face, person))
    out = make_y4m(photo, camera_files / "card.y4m", still_seconds=1, width=1280)
    return out, person.id_number


def _open(server: LiveServer, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    _, key = server.service.create_tenant("card-lender")
    auth = {"Authorization": f"Bearer {key}"}
    body = {"external_ref": "phone-card", "consent": CONSENT, "back_required": False, **extra}
    with server.client() as http:
        resp = http.post("/v1/enrolments/id-card/captures", json=body, headers=auth)
    assert resp.status_code == 201, resp.text
    return resp.json(), auth


def _fits_phone(page: Any) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth") <= 360)


def test_the_card_step_reads_the_card_and_moves_on_to_the_selfie(
    browser: Browser, live_server: Callable[[str], LiveServer], card_camera: tuple[Path, str]
) -> None:
    camera, id_number = card_camera
    server = live_server("normal:card")
    opened, auth = _open(server, id_number=id_number)
    with browser(camera=camera) as page:
        page.goto(server.url + f"/capture/{opened['capture_token']}")
        page.locator("#screen-consent").wait_for(state="visible")
        assert page.locator('[data-consent="id_card"]').is_visible()
        shot(page, "card-01-consent")
        page.click("#consent-accept")
        page.locator("#screen-card").wait_for(state="visible", timeout=20_000)
        assert page.locator("#card-side").text_content() == "第 1 面，共 1 面：人像面"
        page.locator("#card-ring.good").wait_for(state="attached", timeout=30_000)
        page.locator("#card-shoot:enabled").wait_for(timeout=10_000)
        assert "很好" in (page.locator("#card-prompt").text_content() or "")
        assert _fits_phone(page)
        shot(page, "card-02-framed")
        page.click("#card-shoot")
        page.locator("#screen-capture").wait_for(state="visible", timeout=90_000)
        assert opened["capture_token"] not in page.url
        assert page.locator("#screen-consent").is_hidden()  # the consent carried over
        shot(page, "card-03-selfie")
    with server.client() as http:
        got = http.get(f"/v1/enrolments/id-card/captures/{opened['id']}", headers=auth).json()
        assert got["status"] == "enrolled", got
        subject = http.get(f"/v1/subjects/{got['subject_id']}/export", headers=auth).json()
    purposes = {c["purpose"] for c in subject["consents"]}
    assert purposes == {CONSENT["purpose"], "face_capture"}


def test_a_photo_that_is_not_a_card_is_asked_again_with_tips(
    browser: Browser,
    live_server: Callable[[str], LiveServer],
    camera_files: Path,
    real_mov: Path,
) -> None:
    camera = make_y4m(real_mov, camera_files / "real.y4m")  # a face, not a card
    server = live_server("normal:card")
    opened, auth = _open(server, external_ref="phone-face")
    with browser(camera=camera, locale="en") as page:
        page.goto(server.url + f"/capture/{opened['capture_token']}?lang=en")
        page.locator("#screen-consent").wait_for(state="visible")
        page.click("#consent-accept")
        page.locator("#screen-card").wait_for(state="visible", timeout=20_000)
        page.locator("#card-shoot:enabled").wait_for(timeout=20_000)  # "take photo anyway"
        assert page.locator("#card-shoot").text_content() == "Take photo anyway"
        page.click("#card-shoot")
        page.locator("#card-tips li").first.wait_for(timeout=60_000)
        assert page.locator("#screen-card").is_visible()
        shot(page, "card-04-retake")
    with server.client() as http:
        got = http.get(f"/v1/enrolments/id-card/captures/{opened['id']}", headers=auth).json()
    assert got["status"] == "open"
    assert got["card_reads"] == 1


def test_the_example_script_enrols_both_ways(live_server: Callable[[str], LiveServer]) -> None:
    """``examples/enrol_with_id_card.py`` against the live server (generated card photos)."""
    import sys

    server = live_server("normal:card")
    _, key = server.service.create_tenant("example-lender")
    script = Path(__file__).resolve().parents[2] / "examples" / "enrol_with_id_card.py"
    run = subprocess.run(
        [sys.executable, str(script), "--base-url", server.url, "--api-key", key, "--seed", "9"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sides read: ['front', 'back']" in run.stdout
    assert "the capture is now enrolled" in run.stdout
    assert "FAILED" not in run.stdout
