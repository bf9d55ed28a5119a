"""Retention of pending review candidates: the sweep clears the captured face of reviews older
than the TTL (from ``created_at``), audits the count, and approving such a review afterwards
binds nothing and says why (``review.candidate_expired``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shiren.domain.decisions import RetryRules
from shiren.domain.entities import SubjectStatus
from shiren.service.app import Engine, ShirenService
from tests.conftest import lfw
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import Recording
from tests.service.test_reviews import _enrol_and_answer


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
        review_candidate_ttl_days=10,
    )


def test_sweep_clears_stale_review_candidates_and_approval_then_binds_nothing(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    subject, check = _enrol_and_answer(service, tenant, recording, lfw("Jeb_Bush", 1).read_bytes())
    assert check.check.decision.value == "review", check.check.reasons
    (item,) = service.list_reviews(tenant)
    assert item["liveness_passed"] is True
    clock.advance(10 * 86400 - 60)  # not yet 10 days old
    assert service.sweep().review_candidates == 0
    clock.advance(120)
    result = service.sweep()
    assert result.review_candidates == 1
    assert result.to_dict()["review_candidates"] == 1
    assert service.sweep().review_candidates == 0  # idempotent
    with service.store() as uow:
        stored = uow.reviews.get(tenant.id, item["id"])
        events = [json.loads(e.payload) for e in uow.audit.read(tenant.id)]
    assert stored is not None
    assert stored.candidate_enc is None
    assert [e["review_candidate_rows"] for e in events if "review_candidate_rows" in e][-1] == 1
    closed = service.decide_review(tenant, item["id"], outcome="approve", reviewer="alice")
    assert closed["outcome"] == "approved"
    assert closed["face_bound"] is False
    assert closed["not_bound_reason"] == "review.candidate_expired"
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["status"] == SubjectStatus.PENDING.value
    assert exported["templates"] == []
    assert service.audit_verify(tenant.id).ok


def test_a_fresh_review_is_untouched_and_still_binds(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    _enrol_and_answer(service, tenant, recording, lfw("Jeb_Bush", 1).read_bytes())
    (item,) = service.list_reviews(tenant)
    clock.advance(9 * 86400)
    assert service.sweep().review_candidates == 0
    closed = service.decide_review(tenant, item["id"], outcome="approve", reviewer="alice")
    assert (closed["face_bound"], closed["not_bound_reason"]) == (True, None)
