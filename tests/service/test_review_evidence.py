"""Reviewer evidence with the real models, on memory and SQLite (issue 17): a check the real
pipeline sends to review keeps up to three keyframes when the tenant's policy asks — sealed with
the subject's key, re-encoded without metadata, expiring after the policy's days — and they go
when the review is decided, when they expire (the retention sweep), or with the subject.

The review is forced as in tests/service/test_reviews.py: a different person's reference and a
``review_margin`` so wide that any live non-match goes to review.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shiren.domain.decisions import RetryRules
from shiren.domain.entities import Evidence
from shiren.domain.review_evidence import ReviewEvidencePolicy
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.retention import sweep
from shiren.service.review_evidence import pick_keyframes
from tests.conftest import lfw
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording

JPEG_START = b"\xff\xd8\xff"


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


def _review(service: ShirenService, tenant: Any, recording: Recording) -> tuple[Any, Any]:
    """A subject enrolled with someone else's reference whose capture went to review."""
    subject, view = service.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=lfw("Jeb_Bush", 1).read_bytes(),
    )
    frames, times = recording.answer(view.challenge)
    check = service.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    assert check.check.decision.value == "review", check.check.reasons
    return subject, check.check


def _kept(service: ShirenService, tenant: Any, check_id: str) -> list[Evidence]:
    with service.store() as uow:
        return uow.evidence.list_for_check(tenant.id, check_id)


def _audit(service: ShirenService, tenant: Any, kind: str) -> list[dict[str, Any]]:
    with service.store() as uow:
        return [json.loads(e.payload) for e in uow.audit.read(tenant.id) if e.kind == kind]


def test_a_review_keeps_sealed_keyframes_until_it_is_decided(
    service: ShirenService, recording: Recording
) -> None:
    service.recorder.evidence = ReviewEvidencePolicy(keyframes=3, days=5)
    tenant, _ = service.create_tenant("lender")
    subject, check = _review(service, tenant, recording)
    kept = _kept(service, tenant, check.id)
    assert len(kept) == 3
    assert {e.expires_at for e in kept} == {check.created_at + timedelta(days=5)}
    with service.store() as uow:
        row = uow.subjects.get(tenant.id, subject.id)
    assert row is not None
    for e in kept:
        jpeg = service.vault.open_field(tenant, row, "evidence", "image_enc", e.id, e.image_enc)
        # sealed, not a JPEG at rest: not the picture's start, nor its first 64 bytes anywhere
        # (any 3 bytes, such as a JPEG's magic, turn up in ~0.6 % of 100-KB ciphertexts)
        assert jpeg.startswith(JPEG_START)
        assert not e.image_enc.startswith(JPEG_START)
        assert jpeg[:64] not in e.image_enc
        with Image.open(io.BytesIO(jpeg)) as picture:
            assert picture.format == "JPEG"
            assert max(picture.size) <= 640
            assert not picture.getexif()  # re-encoded: nothing of the phone's metadata
    (decided,) = [p for p in _audit(service, tenant, "check.decided") if p["check_id"] == check.id]
    assert decided["keyframes_kept"] == 3
    (item,) = service.list_reviews(tenant)
    service.decide_review(tenant, item["id"], outcome="reject", reviewer="alice", note="n")
    assert _kept(service, tenant, check.id) == []
    (closed,) = _audit(service, tenant, "review.closed")
    assert closed["keyframes_deleted"] == 3
    assert service.audit_verify(tenant.id).ok


def test_nothing_is_kept_unless_the_tenants_policy_asks(
    service: ShirenService, recording: Recording
) -> None:
    tenant, _ = service.create_tenant("lender")
    assert service.recorder.evidence.keyframes == 0  # the shipped policy
    _, check = _review(service, tenant, recording)
    assert _kept(service, tenant, check.id) == []
    (decided,) = _audit(service, tenant, "check.decided")
    assert decided["keyframes_kept"] == 0
    service.recorder.evidence = ReviewEvidencePolicy(keyframes=3, tenants=frozenset({"other"}))
    second, _ = service.create_tenant("second lender")
    _, check = _review(service, second, recording)
    assert _kept(service, second, check.id) == []


def test_kept_keyframes_go_with_the_subject_and_at_their_expiry(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    service.recorder.evidence = ReviewEvidencePolicy(keyframes=2, days=1)
    tenant, _ = service.create_tenant("lender")
    subject, check = _review(service, tenant, recording)
    assert len(_kept(service, tenant, check.id)) == 2
    service.erase_subject(tenant, subject.id)
    assert _kept(service, tenant, check.id) == []
    other, _ = service.create_tenant("other lender")
    _, check = _review(service, other, recording)
    assert len(_kept(service, other, check.id)) == 2
    assert sweep(service.store, service.keys.audit_key, clock.now).evidence == 0
    clock.advance(timedelta(days=1).total_seconds() + 1)
    assert sweep(service.store, service.keys.audit_key, clock()).evidence == 2
    assert _kept(service, other, check.id) == []


@pytest.mark.parametrize(
    ("frames", "used", "keep", "picked"),
    [
        (30, (12, 4, 20), 3, [4, 12, 20]),  # the match's frames, in time order
        (30, (12, 4, 20), 2, [4, 12]),
        (30, (7,), 3, [0, 7, 15]),  # topped up with the first and middle frames
        (30, (), 3, [0, 15, 29]),
        (30, (0, 15, 15), 3, [0, 15, 29]),
        (2, (), 3, [0, 1]),
        (0, (), 3, []),
        (30, (40, -1), 1, [0]),  # out of range: ignored
        (30, (1, 2, 3, 4), 9, [1, 2, 3]),  # never more than three
    ],
)
def test_which_keyframes_are_kept(
    frames: int, used: tuple[int, ...], keep: int, picked: list[int]
) -> None:
    assert pick_keyframes(frames, used, keep) == picked
