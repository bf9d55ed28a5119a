"""Consent withdrawal (PIPL art. 15) with the real models, on memory, SQLite and PostgreSQL:
face data deleted and sessions expired in one unit of work, audited and announced; step-ups fall
back to non-face methods; idempotent; a fresh consent re-enrols the same person."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiren.domain.entities import SessionStatus, SubjectStatus
from shiren.errors import ErrorCode, StateError
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.service.webhooks import WebhookDeliverer
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording
from tests.service.test_webhooks import Receiver
from tests.storage.conftest import open_backend


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> Iterator[ShirenService]:
    with open_backend(request.param, tmp_path) as backend:
        yield ShirenService(
            store=backend.factory,
            keys=ServiceKeys.generate(),
            engine=engine,
            clock=clock,
            draw=recording.drawer(),
            detect_replays=False,  # every capture here is assembled from one recording
        )


def _enrol(svc: ShirenService, tenant: Any, image: bytes, id_number: str = ID_NUMBER) -> Any:
    return svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=id_number,
        consent=ConsentIn(**{**CONSENT, "version": "2026-02"}),  # type: ignore[arg-type]
        reference_image=image,
    )


def _answer(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> Any:
    frames, times = recording.answer(view.challenge)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def _audits(svc: ShirenService, tenant_id: str, kind: str) -> list[dict[str, Any]]:
    with svc.store() as uow:
        return [json.loads(e.payload) for e in uow.audit.read(tenant_id) if e.kind == kind]


def test_withdrawal_stops_face_processing_and_a_fresh_consent_reenrols(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    receiver = Receiver()
    try:
        _scenario(service, recording, clock, receiver)
    finally:
        receiver.close()


def _scenario(
    service: ShirenService, recording: Recording, clock: FakeClock, receiver: Receiver
) -> None:
    tenant, _ = service.create_tenant("lender")
    service.set_webhook(tenant, receiver.url)
    subject, view = _enrol(service, tenant, recording.still_frame())
    assert _answer(service, tenant, view, recording).check.decision.value == "pass"
    clock.advance(60)
    step = service.start_step_up(
        tenant, subject.id, event_type="disbursement", amount_minor=5_000_000, device_id="d1"
    )
    assert step.session is not None  # an open session when consent is withdrawn

    with pytest.raises(StateError) as err:  # no such consent: a typed 404
        service.withdraw_consent(tenant, subject.id, purpose="marketing", version=None)
    assert err.value.code is ErrorCode.RECORD_NOT_FOUND
    clock.advance(5)
    out = service.withdraw_consent(
        tenant, subject.id, purpose=CONSENT["purpose"], version="2026-02"
    )
    assert out["already_withdrawn"] is False
    assert out["face_data_deleted"] is True
    assert out["sessions_expired"] == 1
    assert out["deleted"]["face_rows"] == 1
    assert out["deleted"]["reference_rows"] == 1
    withdrawn_at = out["consents"][0]["withdrawn_at"]
    assert withdrawn_at == clock().isoformat()

    # everything face-related is gone; identity stays (non-face methods need it)
    exported = service.export_subject(tenant, subject.id)
    assert exported["templates"] == []
    assert exported["references"] == []
    assert exported["subject"]["status"] == SubjectStatus.PENDING.value
    assert exported["subject"]["name"] == NAME
    assert [c["withdrawn_at"] for c in exported["consents"]] == [withdrawn_at]
    old = service.get_session(tenant, step.session.session.id).session
    assert old.status is SessionStatus.EXPIRED
    with pytest.raises(StateError) as err:
        _answer(service, tenant, step.session, recording)
    assert err.value.code is ErrorCode.CONSENT_WITHDRAWN

    # step-up: no face session, the fallback with a stable reason
    clock.advance(60)
    after = service.start_step_up(tenant, subject.id, event_type="disbursement", amount_minor=1)
    assert after.session is None
    assert after.requirement.needed is True
    assert after.requirement.purpose == "fallback"
    assert after.requirement.reasons == ("consent.withdrawn",)
    assert "sms_otp" in after.requirement.fallbacks

    # idempotent: same answer, nothing audited twice
    again = service.withdraw_consent(tenant, subject.id, purpose=CONSENT["purpose"], version=None)
    assert again["already_withdrawn"] is True
    assert again["consents"][0]["withdrawn_at"] == withdrawn_at
    (audited,) = _audits(service, tenant.id, "consent.withdrawn")
    assert audited["sessions_expired"] == 1
    assert audited["deleted"]["face_rows"] == 1

    # announced once by webhook (ids and codes only)
    assert WebhookDeliverer(service.store, service.keys, clock=clock).deliver_once().delivered == 2
    events = [json.loads(body) for _, body in receiver.received]
    withdrawn = [e for e in events if e["event"] == "consent.withdrawn"]
    assert [(e["subject_id"], e["reasons"]) for e in withdrawn] == [
        (subject.id, ["consent.withdrawn"])
    ]
    assert not any(NAME.encode() in body for _, body in receiver.received)

    # another person cannot take over the external_ref; the same person re-enrols
    with pytest.raises(StateError) as err:
        _enrol(service, tenant, recording.still_frame(), OTHER_ID)
    assert err.value.code is ErrorCode.RECORD_DUPLICATE
    again_subject, reenrol = _enrol(service, tenant, recording.still_frame())
    assert again_subject.id == subject.id
    assert _answer(service, tenant, reenrol, recording).check.decision.value == "pass"
    clock.advance(60)
    back = service.start_step_up(
        tenant, subject.id, event_type="disbursement", amount_minor=5_000_000, device_id="d2"
    )
    assert back.session is not None
    assert back.requirement.purpose == "step_up"
    with pytest.raises(StateError) as err:  # active consent again: a second enrolment is a dup
        _enrol(service, tenant, recording.still_frame())
    assert err.value.code is ErrorCode.RECORD_DUPLICATE
    assert service.audit_verify(tenant.id).ok


def test_a_capture_in_flight_during_withdrawal_binds_nothing(
    service: ShirenService, recording: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, _ = service.create_tenant("lender")
    subject, view = _enrol(service, tenant, recording.still_frame())
    real = service.checker.check

    def check_while_withdrawing(*args: Any, **kwargs: Any) -> Any:
        service.withdraw_consent(tenant, subject.id, purpose=CONSENT["purpose"], version=None)
        return real(*args, **kwargs)

    monkeypatch.setattr(service.checker, "check", check_while_withdrawing)
    check = _answer(service, tenant, view, recording)
    exported = service.export_subject(tenant, subject.id)
    assert exported["templates"] == [], check.check.decision
    assert exported["subject"]["status"] == SubjectStatus.PENDING.value
    (decided,) = _audits(service, tenant.id, "check.decided")
    assert decided["face_bound"] is False
