"""The injection check inside the service (issue 17), with the real models: the tenant's mode
decides what a finding does.  The physics line used here is ``timing.upload_too_early``: the
test's fake clock does not move while the frames claim seconds of filming, so an upload that
arrives the moment the session was opened claims more filming than the server saw pass — what a
script that builds its frames from a recording does.  Moving the clock by the filming time (and
a human's upload delay) makes the same frames honest.

Captures go through ``service.submit`` (a lender's client: the capture page's timer facts are
not judged — the frames here are assembled from a recording, not timed by the page).  The
assembled frames re-use the recording's frames where the challenge's phases are longer than
the recording's (``frames.repeated``, decisive: a camera re-samples its noise every frame), so
the honest capture gets what a camera adds — fresh sensor noise on every frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from shiren.domain.injection_policy import InjectionMode, InjectionPolicy
from shiren.reasons import ReasonCode
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.views import CheckView
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording

SUSPECTED = ReasonCode.LIVENESS_INJECTION_SUSPECTED.value


@pytest.fixture
def service(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> ShirenService:
    return make_service("memory", tmp_path / "svc.db", engine, recording, clock)


def _filmed(frames: list[bytes]) -> list[bytes]:
    """Each frame with its own sensor noise (σ 1.5 grey levels), as a camera delivers it."""
    out = []
    for k, blob in enumerate(frames):
        bgr = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        noise = np.random.default_rng(k).normal(0.0, 1.5, bgr.shape)
        noisy = np.clip(bgr + noise, 0, 255).astype(np.uint8)
        out.append(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes())
    return out


def _capture(
    svc: ShirenService,
    recording: Recording,
    clock: FakeClock,
    mode: InjectionMode,
    *,
    upload_after_s: float | None,
) -> tuple[Any, CheckView]:
    """Enrol the recording's person and submit a capture of them; ``upload_after_s``: seconds
    between the end of the filming and the upload (None: the upload arrives at once)."""
    tenant, _ = svc.create_tenant("lender")
    svc.checks.injection.policy = InjectionPolicy(mode=mode)
    _, view = svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=recording.still_frame(),
    )
    frames, times = recording.answer(view.challenge)
    if upload_after_s is not None:
        frames = _filmed(frames)
        clock.advance(times[-1] / 1000.0 + upload_after_s)
    check = svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    return tenant, check


def _injection_audit(svc: ShirenService, tenant: Any) -> dict[str, Any]:
    with svc.store() as uow:
        lines = [json.loads(e.payload) for e in uow.audit.read(tenant.id)]
    decided = [p for p in lines if "injection" in p and "decision" in p]
    assert len(decided) == 1
    evidence: dict[str, Any] = decided[0]["injection"]
    return evidence


def test_impossible_timing_fails_the_capture_under_enforce(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, check = _capture(service, recording, clock, InjectionMode.ENFORCE, upload_after_s=None)
    assert check.outcome.value == "review", check.check.reasons
    assert SUSPECTED in check.check.reasons
    assert check.fallbacks  # as every attack: the non-face routes are offered
    evidence = _injection_audit(service, tenant)
    assert evidence["mode"] == "enforce"
    assert evidence["effect"] == "fail"
    assert evidence["features"]["upload_deficit_s"]["fired"] is True
    assert "timing.upload_too_early" in evidence["sub_kinds"]
    key = f"{tenant.id}:subject:{check.check.subject_id}"
    assert service.counter.failures(key, 180, clock().timestamp()) == 1  # an attempt counted


def test_the_same_capture_is_only_recorded_under_shadow(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, check = _capture(service, recording, clock, InjectionMode.SHADOW, upload_after_s=None)
    assert check.outcome.value == "pass", check.check.reasons
    assert SUSPECTED not in check.check.reasons
    evidence = _injection_audit(service, tenant)
    assert evidence["mode"] == "shadow"
    assert evidence["effect"] == "none"
    assert evidence["suspected"] is True  # measured and recorded all the same
    assert evidence["features"]["upload_deficit_s"]["fired"] is True
    assert all(isinstance(v["value"], float | int | None) for v in evidence["features"].values())


def test_honest_timing_is_not_suspected(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    """Under ``enforce`` weak evidence alone asks for review; this stand-in's frames come from a
    VP8 webcam video re-encoded by the test (a source chain the grid lines were not fitted on),
    so ``codec.shifted_grid`` fires — the source-chain dependence that made the codec lines
    weak — and the check goes to review with the neutral weak-signal reason, no attack."""
    tenant, check = _capture(service, recording, clock, InjectionMode.ENFORCE, upload_after_s=1.5)
    evidence = _injection_audit(service, tenant)
    assert evidence["suspected"] is False, evidence["sub_kinds"]
    assert evidence["features"]["upload_deficit_s"]["value"] < 0
    assert all(
        k.startswith(("codec.", "flash.", "timing.page_timer")) for k in evidence["sub_kinds"]
    )
    weak = evidence["review_suggested"]
    assert check.outcome.value == ("review" if weak else "pass"), check.check.reasons
    assert SUSPECTED not in check.check.reasons
    if weak:
        assert ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL.value in check.check.reasons


def test_review_mode_only_records_weak_evidence(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, check = _capture(service, recording, clock, InjectionMode.REVIEW, upload_after_s=1.5)
    assert check.outcome.value == "pass", check.check.reasons
    assert _injection_audit(service, tenant)["effect"] == "none"


def test_review_mode_sends_impossible_timing_to_review_without_the_spoof_failure(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, check = _capture(service, recording, clock, InjectionMode.REVIEW, upload_after_s=None)
    assert check.outcome.value == "review"
    assert check.check.reasons == (SUSPECTED,)
    assert _injection_audit(service, tenant)["effect"] == "review"


def test_off_measures_nothing(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, check = _capture(service, recording, clock, InjectionMode.OFF, upload_after_s=None)
    assert check.outcome.value == "pass"
    with service.store() as uow:
        lines = [json.loads(e.payload) for e in uow.audit.read(tenant.id)]
    assert [p["injection"] for p in lines if "decision" in p and "injection" in p] == [None]
