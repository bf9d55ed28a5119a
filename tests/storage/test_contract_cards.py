"""The storage contract for migration 0008 (card captures, a reference's card checks): memory,
SQLite and PostgreSQL behave alike — round trips, tenant isolation, optimistic concurrency,
what the retention sweep and erasure delete."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from shiren.domain.card_capture import CardCapture, CardCaptureStatus
from shiren.domain.entities import new_id
from shiren.errors import ErrorCode, StateError
from shiren.storage.ports import UnitOfWorkFactory, erase_subject_biometrics, sweep_retention

from . import builders as b
from .builders import T0, at


def capture(tenant_id: str, **kw: Any) -> CardCapture:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "external_ref": "loan-42",
        "consent_purpose": "identity_verification",
        "consent_version": "v1",
        "consent_text_sha256": "a" * 64,
        "consent_retention_days": 365,
        "consent_client": "",
        "back_required": True,
        "created_at": T0,
        "expires_at": at(900),
        "id_pseudonym": "p" * 64,
        "name_digest": "n" * 64,
    }
    return CardCapture(**{**defaults, **kw})


def seed(uow_factory: UnitOfWorkFactory) -> str:
    t = b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(t)
        uow.commit()
    return t.id


def test_round_trip_and_tenant_isolation(uow_factory: UnitOfWorkFactory) -> None:
    tid, other = seed(uow_factory), seed(uow_factory)
    row = capture(tid, device_id="dev-1")
    with uow_factory() as uow:
        uow.card_captures.add(row)
        uow.commit()
    with uow_factory() as uow:
        assert uow.card_captures.get(tid, row.id) == row
        assert uow.card_captures.get(other, row.id) is None
        with pytest.raises(StateError) as dup:
            uow.card_captures.add(row)
        assert dup.value.code is ErrorCode.RECORD_DUPLICATE
        with pytest.raises(StateError) as missing:
            uow.card_captures.add(capture(new_id()))  # no such tenant
        assert missing.value.code is ErrorCode.RECORD_NOT_FOUND


def test_update_is_conditional_and_keeps_what_the_lender_sent(
    uow_factory: UnitOfWorkFactory,
) -> None:
    tid = seed(uow_factory)
    row = capture(tid)
    with uow_factory() as uow:
        uow.card_captures.add(row)
        uow.commit()
    done = replace(
        row,
        status=CardCaptureStatus.ENROLLED,
        card_reads=2,
        subject_id=new_id(),
        session_id=new_id(),
        enrolled_at=at(60),
        external_ref="changed",  # identity fields are never rewritten
        id_pseudonym="x" * 64,
    )
    with uow_factory() as uow:
        stored = uow.card_captures.update(done, expected_version=0)
        uow.commit()
    assert stored.version == 1
    assert stored.status is CardCaptureStatus.ENROLLED
    assert stored.external_ref == "loan-42"
    assert stored.id_pseudonym == "p" * 64
    assert (stored.subject_id, stored.enrolled_at) == (done.subject_id, at(60))
    with uow_factory() as uow:
        with pytest.raises(StateError) as stale:
            uow.card_captures.update(done, expected_version=0)
        assert stale.value.code is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as gone:
            uow.card_captures.update(capture(tid), expected_version=0)
        assert gone.value.code is ErrorCode.RECORD_NOT_FOUND


def test_of_two_racing_updates_exactly_one_wins(uow_factory: UnitOfWorkFactory) -> None:
    tid = seed(uow_factory)
    row = capture(tid)
    with uow_factory() as uow:
        uow.card_captures.add(row)
        uow.commit()
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def race(n: int) -> None:
        barrier.wait()
        try:
            with uow_factory() as uow:
                uow.card_captures.update(replace(row, card_reads=n), expected_version=0)
                uow.commit()
            outcomes.append("won")
        except StateError as exc:
            outcomes.append(exc.code.value)

    threads = [threading.Thread(target=race, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["record.conflict", "won"]


def test_sweep_deletes_unused_expired_captures_and_erasure_the_subjects(
    uow_factory: UnitOfWorkFactory,
) -> None:
    tid = seed(uow_factory)
    s = b.subject(tid)
    stale, fresh = capture(tid, expires_at=at(60)), capture(tid, expires_at=at(10 * 86400))
    used = capture(tid, expires_at=at(60), status=CardCaptureStatus.ENROLLED, subject_id=s.id)
    with uow_factory() as uow:
        uow.subjects.add(s)
        for row in (stale, fresh, used):
            uow.card_captures.add(row)
        uow.commit()
    with uow_factory() as uow:
        counts = sweep_retention(uow, at(3 * 86400))
        uow.commit()
    assert counts.card_captures == 1
    with uow_factory() as uow:
        assert uow.card_captures.get(tid, stale.id) is None
        assert uow.card_captures.get(tid, fresh.id) is not None
        assert uow.card_captures.get(tid, used.id) is not None
        erase_subject_biometrics(uow, tid, s.id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.card_captures.get(tid, used.id) is None


def test_a_reference_keeps_its_card_checks(uow_factory: UnitOfWorkFactory) -> None:
    tid = seed(uow_factory)
    s = b.subject(tid)
    checks = '[{"code": "idcard.number_invalid", "passed": true}]'
    ref = b.reference(tid, s.id, card_checks=checks)
    with uow_factory() as uow:
        uow.subjects.add(s)
        uow.references.add(ref)
        uow.commit()
    with uow_factory() as uow:
        stored = uow.references.get(tid, ref.id)
    assert stored is not None
    assert stored.card_checks == checks
