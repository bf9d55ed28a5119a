"""The storage contract for migration 0006 (fallback cases, payout checks): memory, SQLite and
PostgreSQL behave alike — round trips, tenant isolation, same-tenant parents, optimistic
concurrency on updates, ordering."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from shiren.domain.entities import new_id
from shiren.domain.fallback import (
    FallbackFlow,
    FallbackStatus,
    FallbackTrigger,
    PayoutCheck,
    PayoutOutcome,
)
from shiren.errors import ErrorCode, StateError
from shiren.storage.ports import UnitOfWorkFactory

from . import builders as b
from .builders import T0, at


def seed(uow_factory: UnitOfWorkFactory) -> tuple[str, str]:
    t = b.tenant()
    s = b.subject(t.id)
    with uow_factory() as uow:
        uow.tenants.add(t)
        uow.subjects.add(s)
        uow.commit()
    return t.id, s.id


def flow(tenant_id: str, subject_id: str, **kw: Any) -> FallbackFlow:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "event_id": new_id(),
        "cause": FallbackTrigger.FACE_FAILED,
        "steps": ("sms_otp", "bank_card_4"),
        "policy_version": "p1",
        "created_at": T0,
        "expires_at": at(1800),
        "phone_enc": b"\x00sealed-phone\xff",
        "phone_last4": "5678",
    }
    return FallbackFlow(**{**defaults, **kw})


def payout(tenant_id: str, subject_id: str, **kw: Any) -> PayoutCheck:
    defaults: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "subject_id": subject_id,
        "card_pseudonym": "c" * 64,
        "card_last4": "1234",
        "outcome": PayoutOutcome.BLOCKED,
        "created_at": T0,
        "reasons": ("payout.card_not_owner",),
        "mismatched": ("name",),
        "provider_ref": "ref-1",
        "sandbox": True,
    }
    return PayoutCheck(**{**defaults, **kw})


def test_fallback_round_trip_and_isolation(uow_factory: UnitOfWorkFactory) -> None:
    tid, sid = seed(uow_factory)
    other, _ = seed(uow_factory)
    f = flow(tid, sid, reasons=("fallback.face_failed",))
    with uow_factory() as uow:
        uow.fallbacks.add(f)
        uow.commit()
    with uow_factory() as uow:
        assert uow.fallbacks.get(tid, f.id) == f
        assert uow.fallbacks.get(other, f.id) is None
        assert uow.fallbacks.list_for_event(tid, f.event_id) == [f]
        assert uow.fallbacks.list_for_event(other, f.event_id) == []
        assert uow.fallbacks.list_for_subject(tid, sid) == [f]
        assert uow.fallbacks.list_for_subject(other, sid) == []
        with pytest.raises(StateError) as exc:
            uow.fallbacks.add(flow(other, sid))  # the subject is another tenant's
        assert exc.value.code is ErrorCode.RECORD_NOT_FOUND
        with pytest.raises(StateError) as exc:
            uow.fallbacks.add(f)
        assert exc.value.code is ErrorCode.RECORD_DUPLICATE
        with pytest.raises(StateError) as exc:
            uow.fallbacks.update(replace(f, tenant_id=other), expected_version=0)
        assert exc.value.code is ErrorCode.RECORD_NOT_FOUND


def test_fallback_update_is_versioned_and_keeps_identity(uow_factory: UnitOfWorkFactory) -> None:
    tid, sid = seed(uow_factory)
    f = flow(tid, sid)
    with uow_factory() as uow:
        uow.fallbacks.add(f)
        uow.commit()
    changed = replace(
        f,
        step_index=1,
        otp_hash="h" * 64,
        otp_expires_at=at(300),
        otp_sent_at=at(1),
        otp_sends=1,
        reasons=("fallback.sms_verified",),
        event_id="e" * 32,  # identity fields are not updated
    )
    with uow_factory() as uow:
        new = uow.fallbacks.update(changed, expected_version=0)
        uow.commit()
    assert new.version == 1
    assert new.event_id == f.event_id
    assert (new.step_index, new.otp_sends, new.otp_expires_at) == (1, 1, at(300))
    with uow_factory() as uow:
        assert uow.fallbacks.get(tid, f.id) == new
        with pytest.raises(StateError) as exc:
            uow.fallbacks.update(replace(new, step_index=2), expected_version=0)
        assert exc.value.code is ErrorCode.RECORD_CONFLICT
        uow.fallbacks.update(replace(new, step_index=2), expected_version=1)  # still usable


def test_concurrent_updates_one_wins(uow_factory: UnitOfWorkFactory) -> None:
    tid, sid = seed(uow_factory)
    f = flow(tid, sid)
    with uow_factory() as uow:
        uow.fallbacks.add(f)
        uow.commit()
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            with uow_factory() as uow:
                uow.fallbacks.update(replace(f, step_failures=i + 1), expected_version=0)
                uow.commit()
            outcomes.append("won")
        except StateError as exc:
            outcomes.append(str(exc.code))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    assert sorted(set(outcomes) - {"won"}) == ["record.conflict"]


def test_fallback_list_by_status_oldest_first(uow_factory: UnitOfWorkFactory) -> None:
    tid, sid = seed(uow_factory)
    older = flow(tid, sid, status=FallbackStatus.REVIEW, created_at=at(5), closed_at=at(9))
    newer = flow(tid, sid, status=FallbackStatus.REVIEW, created_at=at(10))
    open_ = flow(tid, sid)
    with uow_factory() as uow:
        for x in (newer, open_, older):
            uow.fallbacks.add(x)
        uow.commit()
    with uow_factory() as uow:
        assert uow.fallbacks.list_by_status(tid, FallbackStatus.REVIEW) == [older, newer]
        assert uow.fallbacks.list_by_status(tid, FallbackStatus.REVIEW, limit=1) == [older]
        assert uow.fallbacks.list_by_status(tid, FallbackStatus.OPEN) == [open_]


def test_payout_checks_round_trip(uow_factory: UnitOfWorkFactory) -> None:
    tid, sid = seed(uow_factory)
    other, _ = seed(uow_factory)
    p2 = payout(tid, sid, created_at=at(2), outcome=PayoutOutcome.ALLOWED, mismatched=())
    p1 = payout(tid, sid, event_id=new_id())
    with uow_factory() as uow:
        uow.payouts.add(p2)
        uow.payouts.add(p1)
        uow.commit()
    with uow_factory() as uow:
        assert uow.payouts.get(tid, p1.id) == p1
        assert uow.payouts.get(other, p1.id) is None
        assert uow.payouts.list_for_subject(tid, sid) == [p1, p2]
        with pytest.raises(StateError) as exc:
            uow.payouts.add(payout(other, sid))
        assert exc.value.code is ErrorCode.RECORD_NOT_FOUND
