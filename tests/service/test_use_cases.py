"""The use cases end to end with the real models, on the in-memory store and on SQLite.

Same person: the reference is a still frame of the live recording, the capture is other frames
of it answering the session's challenge → pass, and the face template is bound.  Different
person: an LFW photo as the reference → not a pass, nothing bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shiren.domain.decisions import RetryRules
from shiren.domain.entities import SessionStatus, SubjectStatus
from shiren.errors import ErrorCode, InputError, ShirenError, StateError
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from tests.conftest import lfw
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording


@pytest.fixture(params=["memory", "sqlite"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> ShirenService:
    return make_service(request.param, tmp_path / "svc.db", engine, recording, clock)


def _enrol(svc: ShirenService, tenant: Any, reference: bytes, ref: str = "u1") -> Any:
    return svc.enrol(
        tenant,
        external_ref=ref,
        name=NAME,
        id_number=ID_NUMBER if ref == "u1" else OTHER_ID,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=reference,
    )


def _answer(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> Any:
    frames, times = recording.answer(view.challenge)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def test_same_person_enrols_then_passes_step_up(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    subject, view = _enrol(service, tenant, recording.still_frame())
    assert view.session.purpose.value == "enrol"
    check = _answer(service, tenant, view, recording)
    assert check.check.decision.value == "pass", (check.check.reasons, check.check.match_score)
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["status"] == SubjectStatus.ENROLLED.value
    assert exported["subject"]["id_number_masked"].startswith("110")
    assert len(exported["templates"]) == 1
    # a disbursement now needs a step-up check (high amount), which the same person passes
    clock.advance(60)
    step = service.start_step_up(
        tenant, subject.id, event_type="disbursement", amount_minor=5_000_000, device_id="d1"
    )
    assert step.requirement.needed
    assert step.session is not None
    check2 = _answer(service, tenant, step.session, recording)
    assert check2.check.decision.value == "pass", (check2.check.reasons, check2.check.match_score)
    # the used session cannot be replayed
    frames, times = recording.answer(step.session.challenge)
    with pytest.raises(StateError) as err:
        service.submit(
            tenant,
            step.session.session.id,
            nonce=step.session.session.nonce,
            frames=frames,
            times_ms=times,
        )
    assert err.value.code is ErrorCode.SESSION_ALREADY_USED
    assert service.audit_verify(tenant.id).ok


def test_different_person_is_not_bound(service: ShirenService, recording: Recording) -> None:
    tenant, _ = service.create_tenant("lender")
    reference = lfw("Jeb_Bush", 1).read_bytes()
    subject, view = _enrol(service, tenant, reference, ref="u2")
    check = _answer(service, tenant, view, recording)
    assert check.check.decision.value != "pass"
    assert check.check.match_score is not None
    assert check.check.match_score < view.session.threshold
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["status"] == SubjectStatus.PENDING.value
    assert exported["templates"] == []
    if check.check.reasons == ("match.below_threshold",):
        assert check.to_dict("zh-CN")["tips"][0]["message"] == "人脸比对未通过"


def test_expired_session_is_a_typed_error(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    _, view = _enrol(service, tenant, recording.still_frame())
    clock.advance(301)
    frames, times = recording.answer(view.challenge)
    with pytest.raises(StateError) as err:
        service.submit(
            tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
        )
    assert err.value.code is ErrorCode.SESSION_EXPIRED
    assert service.get_session(tenant, view.session.id).session.status is SessionStatus.EXPIRED


def test_bad_inputs_are_typed_and_do_not_burn_the_session(
    service: ShirenService, recording: Recording
) -> None:
    tenant, _ = service.create_tenant("lender")
    with pytest.raises(InputError) as err:
        _enrol(service, tenant, b"not an image")
    assert err.value.code.value.startswith("input.image")
    with pytest.raises(InputError) as err:
        service.enrol(
            tenant,
            external_ref="x",
            name=NAME,
            id_number="110105194912310021",
            consent=ConsentIn(**CONSENT),
            reference_image=b"",
        )  # type: ignore[arg-type]
    assert err.value.code is ErrorCode.ID_NUMBER_INVALID
    _, view = _enrol(service, tenant, recording.still_frame())
    with pytest.raises(InputError):
        service.submit(
            tenant,
            view.session.id,
            nonce=view.session.nonce,
            frames=[b"junk"] * 9,
            times_ms=[i * 66.0 for i in range(9)],
        )
    with pytest.raises(InputError) as err:
        service.submit(tenant, view.session.id, nonce="0" * 32, frames=[], times_ms=[])
    assert err.value.code is ErrorCode.CHALLENGE_INVALID
    assert service.get_session(tenant, view.session.id).session.status is SessionStatus.OPEN
    other, _ = service.create_tenant("other lender")
    with pytest.raises(StateError) as err:
        service.get_session(other, view.session.id)
    assert err.value.code is ErrorCode.RECORD_NOT_FOUND


def test_erasure_removes_biometrics_and_is_audited(
    service: ShirenService, recording: Recording
) -> None:
    tenant, _ = service.create_tenant("lender")
    subject, _ = _enrol(service, tenant, recording.still_frame())
    result = service.erase_subject(tenant, subject.id)
    assert result["deleted"]["references"] == 1
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["status"] == "erased"
    assert exported["subject"]["name"] is None
    assert exported["references"] == []
    with pytest.raises(ShirenError):
        service.start_step_up(tenant, subject.id, event_type="disbursement")
    assert service.audit_verify(tenant.id).ok


def test_same_frames_under_a_new_nonce_are_caught(
    engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    svc = ShirenService(
        store=MemoryStore(),
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
    )
    tenant, _ = svc.create_tenant("lender")
    subject, view = _enrol(svc, tenant, recording.still_frame())
    frames, times = recording.answer(view.challenge)
    first = svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    assert first.check.decision.value == "pass"
    step = svc.start_step_up(tenant, subject.id, event_type="password_reset")
    assert step.session is not None
    again = svc.submit(
        tenant,
        step.session.session.id,
        nonce=step.session.session.nonce,
        frames=frames,
        times_ms=times,
    )
    assert again.check.decision.value == "review"
    assert "liveness.replay_suspected" in again.check.reasons


def test_repeated_failures_lock_the_subject_out(
    engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    """The rule is "N failures in the window → cool-off"; N = 3 here (5 in production) keeps
    the test short, the rule is the same code path."""
    svc = ShirenService(
        store=MemoryStore(),
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
        rules=RetryRules(max_failures=3),
    )
    tenant, _ = svc.create_tenant("lender")
    subject, view = _enrol(svc, tenant, lfw("Jeb_Bush", 1).read_bytes(), ref="u2")
    outcomes = []
    spare = None
    for i in range(3):
        check = _answer(svc, tenant, view, recording)
        outcomes.append((check.check.decision.value, check.retry_after_s, check.check.reasons))
        clock.advance(5)
        if i < 2:
            view = svc.start_step_up(tenant, subject.id, event_type="registration").session
            assert view is not None
        if i == 1:  # a session opened before the lock-out, answered after it
            spare = svc.start_step_up(tenant, subject.id, event_type="registration").session
    # a different person: never a pass; retry or review until the limit
    assert all(o in ("retry", "review") for o, _, _ in outcomes[:2]), outcomes
    assert outcomes[2][:2] == ("fallback", 1800)
    assert "limit.locked" in outcomes[2][2]
    # locked: a new lending event gets no capture link, but the time left and the other routes
    step = svc.start_step_up(tenant, subject.id, event_type="registration")
    assert step.session is None
    assert step.requirement.needed
    assert step.requirement.purpose == "fallback"
    assert step.requirement.reasons == ("limit.locked",)
    assert 0 < (step.requirement.retry_after_s or 0) <= 1800
    assert "sms_otp" in step.requirement.fallbacks
    # a session opened before the lock-out: judged without running the models, with the time left
    assert spare is not None
    late = _answer(svc, tenant, spare, recording)
    assert late.check.decision.value == "fallback"
    assert 0 < (late.retry_after_s or 0) <= 1800
