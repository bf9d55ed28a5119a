"""The capture page's first fetch of the challenge bounds a page upload (issue 17).

``GET /v1/capture/{token}`` (:meth:`CaptureService.info`) records, once, when the open session's
challenge first reached the capture page (``Session.challenge_sent_at``).  The injection check
bounds how much filming a page upload may claim by the latest moment known to precede it: a
script that consents at once, fetches the challenge a minute later and uploads sooner after the
fetch than its frames claim to have filmed is ``timing.upload_too_early`` — where the consent
alone (a minute earlier) would have let it through.  A lender's own client had the challenge
from the session's creation, so the page's fetch does not bound its uploads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shiren.domain.injection_policy import InjectionMode, InjectionPolicy
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.capture import CaptureService
from shiren.service.console_injection import injection_evidence
from shiren.service.views import SessionView
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording

FETCH_DELAY_S = 60.0
EARLY_S = 2.0
"""The upload arrives this much sooner after the fetch than its frames claim to have filmed."""


@pytest.fixture
def service(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> ShirenService:
    svc = make_service("sqlite", tmp_path / "svc.db", engine, recording, clock)
    svc.checks.injection.policy = InjectionPolicy(mode=InjectionMode.SHADOW)
    return svc


def _enrol(svc: ShirenService, recording: Recording) -> tuple[Any, SessionView]:
    tenant, _ = svc.create_tenant("lender")
    _, view = svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=recording.still_frame(),
    )
    return tenant, view


def _sent_at(svc: ShirenService, tenant: Any, view: SessionView) -> Any:
    with svc.store() as uow:
        stored = uow.sessions.get(tenant.id, view.session.id)
    assert stored is not None
    return stored.challenge_sent_at


def _injection(svc: ShirenService, tenant: Any) -> dict[str, Any]:
    with svc.store() as uow:
        lines = [json.loads(e.payload) for e in uow.audit.read(tenant.id)]
    (evidence,) = [p["injection"] for p in lines if "injection" in p and "decision" in p]
    assert isinstance(evidence, dict)
    return evidence


def test_the_first_fetch_is_recorded_once_and_the_lenders_read_is_not_a_fetch(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, view = _enrol(service, recording)
    capture = CaptureService(service)
    assert view.capture_token is not None
    clock.advance(3)
    service.get_session(tenant, view.session.id)  # the lender's read: its copy left at creation
    assert _sent_at(service, tenant, view) is None
    first = clock()
    assert capture.info(view.capture_token)["challenge"] is not None
    clock.advance(5)
    capture.info(view.capture_token)  # a reload: nothing changes
    assert _sent_at(service, tenant, view) == first


def test_a_late_fetch_bounds_the_upload(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, view = _enrol(service, recording)
    capture = CaptureService(service)
    token = view.capture_token
    assert token is not None
    receipt = capture.consent(token, lang="en", accepted=True)["receipt"]
    clock.advance(FETCH_DELAY_S)
    capture.info(token)  # the script fetches the challenge only now
    frames, times = recording.answer(view.challenge)
    clock.advance(times[-1] / 1000.0 - EARLY_S)  # more filming claimed than passed since
    capture.submit(token, receipt=receipt, nonce=view.session.nonce, frames=frames, times_ms=times)
    evidence = _injection(service, tenant)
    assert evidence["source"] == "page"
    assert evidence["started_from"] == "fetch"
    deficit = evidence["features"]["upload_deficit_s"]
    assert deficit["fired"] is True
    assert deficit["value"] == pytest.approx(EARLY_S, abs=0.5)
    assert "timing.upload_too_early" in evidence["sub_kinds"]
    with service.store() as uow:  # the review console finds the same line by the check
        (check,) = uow.checks.list_for_session(tenant.id, view.session.id)
        shown = injection_evidence(uow, tenant.id, check)
    assert shown is not None
    assert shown.started_from == "fetch"
    assert "timing.upload_too_early" in shown.sub_kinds


def test_fetch_then_consent_is_bounded_by_the_consent(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    """The page's own order: it fetches the challenge with the consent text, the borrower
    reads and agrees, the page films — honest timing is not suspected."""
    tenant, view = _enrol(service, recording)
    capture = CaptureService(service)
    token = view.capture_token
    assert token is not None
    capture.info(token)
    clock.advance(4)
    receipt = capture.consent(token, lang="en", accepted=True)["receipt"]
    frames, times = recording.answer(view.challenge)
    clock.advance(times[-1] / 1000.0 + 1.5)
    capture.submit(token, receipt=receipt, nonce=view.session.nonce, frames=frames, times_ms=times)
    evidence = _injection(service, tenant)
    assert evidence["started_from"] == "consent"
    assert evidence["features"]["upload_deficit_s"]["fired"] is False


def test_a_lenders_client_is_not_bounded_by_the_pages_fetch(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, view = _enrol(service, recording)
    token = view.capture_token
    assert token is not None
    CaptureService(service).info(token)  # fetched at once, but the lender's client
    frames, times = recording.answer(view.challenge)
    clock.advance(FETCH_DELAY_S)
    service.submit(tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times)
    evidence = _injection(service, tenant)
    assert evidence["source"] == "api"
    assert evidence["started_from"] == "session"
    assert evidence["features"]["upload_deficit_s"]["fired"] is False
