"""The review queue and webhook events with the real models (memory and SQLite).

A review is forced two ways: a different person's reference with a huge ``review_margin`` (live
face, borderline match → review, liveness passed), and a liveness result overridden to a spoof
(attack → review, liveness failed).  Approving the first binds the face; approving the second
must not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shiren.domain.decisions import RetryRules
from shiren.domain.entities import ReviewStatus, SubjectStatus
from shiren.errors import ErrorCode, InputError, StateError
from shiren.reasons import ReasonCode
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.webhooks import SIGNATURE_HEADER, WebhookDeliverer, verify_signature
from tests.conftest import lfw
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording
from tests.service.test_webhooks import Receiver


@pytest.fixture(params=["memory", "sqlite"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> ShirenService:
    return make_service(
        request.param,
        tmp_path / "svc.db",
        engine,
        recording,
        clock,
        rules=RetryRules(review_margin=2.0),  # any live non-match goes to review
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _enrol_and_answer(
    svc: ShirenService, tenant: Any, recording: Recording, reference: bytes
) -> tuple[Any, Any]:
    subject, view = svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=reference,
    )
    frames, times = recording.answer(view.challenge)
    check = svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    return subject, check


def _spoof(service: ShirenService, monkeypatch: pytest.MonkeyPatch) -> None:
    real = service.checker.check

    def check(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        return replace(result, passed=False, reasons=(ReasonCode.LIVENESS_SPOOF_SUSPECTED,))

    monkeypatch.setattr(service.checker, "check", check)


def test_approved_live_review_binds_the_face_and_is_announced(
    service: ShirenService, recording: Recording, receiver: Receiver
) -> None:
    tenant, _ = service.create_tenant("lender")
    hook = service.set_webhook(tenant, receiver.url)
    secret = hook["secret"].encode()
    subject, check = _enrol_and_answer(service, tenant, recording, lfw("Jeb_Bush", 1).read_bytes())
    assert check.check.decision.value == "review", check.check.reasons
    (item,) = service.list_reviews(tenant, "open")
    assert item["check_id"] == check.check.id
    assert item["liveness_passed"] is True
    closed = service.decide_review(
        tenant, item["id"], outcome="approve", reviewer="alice", note="looks fine"
    )
    assert (closed["status"], closed["outcome"], closed["face_bound"]) == (
        "closed",
        "approved",
        True,
    )
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["status"] == SubjectStatus.ENROLLED.value
    assert len(exported["templates"]) == 1
    assert service.list_reviews(tenant, "open") == []
    with pytest.raises(StateError) as err:
        service.decide_review(tenant, item["id"], outcome="reject", reviewer="bob")
    assert err.value.code is ErrorCode.REVIEW_ALREADY_CLOSED
    service.erase_subject(tenant, subject.id)
    assert service.audit_verify(tenant.id).ok
    # three events, signed, with ids and codes only
    assert WebhookDeliverer(service.store, service.keys).deliver_once().delivered == 3
    bodies = []
    for headers, body in receiver.received:
        assert verify_signature(secret, body, headers[SIGNATURE_HEADER])
        assert NAME.encode() not in body
        assert ID_NUMBER.encode() not in body
        bodies.append(json.loads(body))
    # same created_at (frozen clock): delivery order is not promised, receivers use ids
    by_event = {b["event"]: b for b in bodies}
    assert set(by_event) == {"check.decided", "review.closed", "subject.erased"}
    assert by_event["review.closed"]["decision"] == "approved"
    assert by_event["check.decided"]["decision"] == "review"
    assert {b["subject_id"] for b in bodies} == {subject.id}


def test_approval_never_binds_a_face_that_failed_liveness(
    service: ShirenService, recording: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spoof(service, monkeypatch)
    tenant, _ = service.create_tenant("lender")
    subject, check = _enrol_and_answer(service, tenant, recording, recording.still_frame())
    assert check.check.decision.value == "review", check.check.reasons
    (item,) = service.list_reviews(tenant)
    assert item["liveness_passed"] is False
    closed = service.decide_review(tenant, item["id"], outcome="approve", reviewer="alice")
    assert closed["outcome"] == "approved"
    assert closed["face_bound"] is False
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["status"] == SubjectStatus.PENDING.value
    assert exported["templates"] == []


def test_reviews_are_tenant_isolated_and_validated(
    service: ShirenService, recording: Recording
) -> None:
    tenant, _ = service.create_tenant("lender")
    other, _ = service.create_tenant("other")
    _enrol_and_answer(service, tenant, recording, lfw("Jeb_Bush", 1).read_bytes())
    (item,) = service.list_reviews(tenant)
    assert service.list_reviews(other) == []
    with pytest.raises(StateError) as err:
        service.decide_review(other, item["id"], outcome="approve", reviewer="mallory")
    assert err.value.code is ErrorCode.RECORD_NOT_FOUND
    with pytest.raises(InputError):
        service.decide_review(tenant, item["id"], outcome="maybe", reviewer="alice")
    with pytest.raises(InputError):
        service.list_reviews(tenant, "bogus")
    rejected = service.decide_review(tenant, item["id"], outcome="reject", reviewer="alice")
    assert rejected["face_bound"] is False
    assert [r["id"] for r in service.list_reviews(tenant, ReviewStatus.CLOSED.value)] == [
        item["id"]
    ]


def test_erasure_shreds_a_pending_review_candidate(
    service: ShirenService, recording: Recording
) -> None:
    tenant, _ = service.create_tenant("lender")
    subject, _ = _enrol_and_answer(service, tenant, recording, lfw("Jeb_Bush", 1).read_bytes())
    (item,) = service.list_reviews(tenant)
    with service.store() as uow:
        assert uow.reviews.get(tenant.id, item["id"]).candidate_enc is not None  # type: ignore[union-attr]
    service.erase_subject(tenant, subject.id)
    with service.store() as uow:
        assert uow.reviews.get(tenant.id, item["id"]).candidate_enc is None  # type: ignore[union-attr]
    closed = service.decide_review(tenant, item["id"], outcome="approve", reviewer="alice")
    assert closed["face_bound"] is False


def test_production_requires_https(service: ShirenService) -> None:
    tenant, _ = service.create_tenant("lender")
    service.production = True
    service.resolver = lambda host, port: {"lender.example": ["93.184.216.34"]}[host]
    with pytest.raises(InputError) as err:
        service.set_webhook(tenant, "http://127.0.0.1:9/hook")
    assert err.value.code is ErrorCode.WEBHOOK_URL_INVALID
    out = service.set_webhook(tenant, "https://lender.example/hook", "s" * 20)
    assert out == {"url": "https://lender.example/hook"}  # a given secret is not echoed
