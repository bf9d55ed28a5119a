"""The storage contract of ``sessions.challenge_sent_at`` (migration 0009, issue 17): when the
capture page first fetched a session's challenge — written once, the first caller wins, on
memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shiren.errors import ErrorCode, StateError
from shiren.storage.ports import UnitOfWorkFactory

from . import builders as b
from .builders import at
from .test_contract import _race, seed


def test_a_new_session_has_no_fetch_recorded(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    with uow_factory() as uow:
        got = uow.sessions.get(ids["tenant"], ids["session"])
    assert got is not None
    assert got.challenge_sent_at is None


def test_the_first_fetch_is_kept_and_later_ones_change_nothing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    ids = seed(uow_factory)
    tid, sid = ids["tenant"], ids["session"]
    with uow_factory() as uow:
        before = uow.sessions.get(tid, sid)
        first = uow.sessions.mark_challenge_sent(tid, sid, at(5))
        assert first == replace(before, challenge_sent_at=at(5))  # type: ignore[type-var]
        assert uow.sessions.mark_challenge_sent(tid, sid, at(9)) == first
        uow.commit()
    with uow_factory() as uow:  # committed, microseconds and all
        assert uow.sessions.get(tid, sid) == first
        assert uow.sessions.mark_challenge_sent(tid, sid, at(20)).challenge_sent_at == at(5)
        assert uow.sessions.list_for_subject(tid, ids["subject"]) == [first]
        # the nonce is still consumed exactly once, and keeps the fetch
        used = uow.sessions.mark_used(tid, sid, ids["nonce"])
        assert used.challenge_sent_at == at(5)
        uow.commit()


def test_an_uncommitted_fetch_is_not_kept(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    with uow_factory() as uow:
        uow.sessions.mark_challenge_sent(ids["tenant"], ids["session"], at(5))
    with uow_factory() as uow:
        got = uow.sessions.get(ids["tenant"], ids["session"])
    assert got is not None
    assert got.challenge_sent_at is None


def test_a_missing_or_foreign_session_is_not_found(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    other = b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(other)
        for tid, sid in ((ids["tenant"], "missing"), (other.id, ids["session"])):
            with pytest.raises(StateError) as err:
                uow.sessions.mark_challenge_sent(tid, sid, at(5))
            assert err.value.code is ErrorCode.RECORD_NOT_FOUND
        uow.commit()
    with uow_factory() as uow:
        got = uow.sessions.get(ids["tenant"], ids["session"])
    assert got is not None
    assert got.challenge_sent_at is None


def test_concurrent_fetches_record_one_moment(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)

    def fetch(i: int) -> object:
        with uow_factory() as uow:
            got = uow.sessions.mark_challenge_sent(ids["tenant"], ids["session"], at(10 + i))
            uow.commit()
        return got.challenge_sent_at

    results = _race(8, fetch)
    with uow_factory() as uow:
        stored = uow.sessions.get(ids["tenant"], ids["session"])
    assert stored is not None
    assert stored.challenge_sent_at in {at(10 + i) for i in range(8)}
    assert results == [stored.challenge_sent_at] * 8, results


def test_a_checks_own_audit_line_is_found_by_kind_and_moment(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """``ConsoleQueries.audit_at``: the review console reads a check's ``check.decided`` line
    (its injection evidence) by the subject, the kind and the check's moment."""
    ids = seed(uow_factory)
    tid, subj = ids["tenant"], ids["subject"]
    other = b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(other)
        uow.audit.append(b.draft(tid, 4, subject_id=subj), b.chain_hash)  # seq 1: the one
        uow.audit.append(b.draft(tid, 4, subject_id=subj, kind="review.queued"), b.chain_hash)
        uow.audit.append(b.draft(tid, 5, subject_id=subj), b.chain_hash)  # another moment
        uow.audit.append(b.draft(tid, 4), b.chain_hash)  # no subject
        uow.audit.append(b.draft(other.id, 4, subject_id=subj), b.chain_hash)  # another tenant
        uow.commit()
    with uow_factory() as uow:
        found = uow.console.audit_at(tid, subj, "check.decided", at(4))
        assert uow.console.audit_at(tid, subj, "check.decided", at(6)) == []
        assert uow.console.audit_at(other.id, "nobody", "check.decided", at(4)) == []
    assert [(e.seq, e.kind, e.created_at) for e in found] == [(1, "check.decided", at(4))]
    assert found[0].payload == '{"n":4}'
