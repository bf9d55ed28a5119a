"""The storage contract: one suite, run against memory, SQLite and PostgreSQL.

The in-memory store is the reference; a behaviour that differs between backends is a bug in one
of them.  Every test opens fresh units of work, so "committed" really means visible to the next.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, timedelta, timezone
from itertools import pairwise

import pytest

from shiren.domain.entities import (
    AUDIT_GENESIS_HASH,
    DeliveryStatus,
    ReviewOutcome,
    ReviewStatus,
    SessionStatus,
    SubjectStatus,
    Template,
    TenantStatus,
)
from shiren.errors import ErrorCode, ServiceError, StateError
from shiren.storage.ports import (
    ErasureCounts,
    RetentionCounts,
    UnitOfWork,
    UnitOfWorkFactory,
    erase_subject_biometrics,
    retry_delay,
    sweep_retention,
)

from . import builders as b
from .builders import T0, at


def _code(exc: pytest.ExceptionInfo[StateError]) -> ErrorCode:
    return exc.value.code


def seed(uow_factory: UnitOfWorkFactory) -> dict[str, str]:
    """One tenant with a subject, a session, a check: the parents most rows need."""
    t = b.tenant()
    s = b.subject(t.id)
    se = b.session(t.id, s.id)
    c = b.check(t.id, se.id, s.id)
    with uow_factory() as uow:
        uow.tenants.add(t)
        uow.subjects.add(s)
        uow.sessions.add(se)
        uow.checks.add(c)
        uow.commit()
    return {"tenant": t.id, "subject": s.id, "session": se.id, "check": c.id, "nonce": se.nonce}


# ---------------------------------------------------------------- unit of work


def test_commit_persists_and_exit_without_commit_rolls_back(uow_factory: UnitOfWorkFactory) -> None:
    t1, t2 = b.tenant(), b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(t1)
        uow.commit()
        uow.tenants.add(t2)  # never committed
    with uow_factory() as uow:
        assert uow.tenants.get(t1.id) == t1
        assert uow.tenants.get(t2.id) is None


def test_exception_rolls_back_and_explicit_rollback(uow_factory: UnitOfWorkFactory) -> None:
    t = b.tenant()

    def fail_midway() -> None:
        with uow_factory() as uow:
            uow.tenants.add(t)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    with uow_factory() as uow:
        assert uow.tenants.get(t.id) is None
        uow.tenants.add(t)
        uow.rollback()
        assert uow.tenants.get(t.id) is None


def test_failed_insert_leaves_the_unit_of_work_usable(uow_factory: UnitOfWorkFactory) -> None:
    t = b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(t)
        with pytest.raises(StateError) as err:
            uow.tenants.add(t)
        assert _code(err) is ErrorCode.RECORD_DUPLICATE
        s = b.subject(t.id)
        uow.subjects.add(s)  # the transaction is still alive
        uow.commit()
    with uow_factory() as uow:
        assert uow.subjects.get(t.id, s.id) == s


def test_repositories_refuse_use_outside_with(uow_factory: UnitOfWorkFactory) -> None:
    uow = uow_factory()
    with pytest.raises(RuntimeError):
        uow.tenants.get("x")


# ---------------------------------------------------------------- tenants


def test_tenant_crud_and_lookup_by_api_key(uow_factory: UnitOfWorkFactory) -> None:
    t1 = b.tenant(created_at=at(1))
    t2 = b.tenant(created_at=at(2), dek_version=3)
    with uow_factory() as uow:
        uow.tenants.add(t2)
        uow.tenants.add(t1)
        uow.commit()
    with uow_factory() as uow:
        assert uow.tenants.get(t1.id) == t1
        assert uow.tenants.get("missing") is None
        assert uow.tenants.get_by_api_key_hash(t2.api_key_hash) == t2
        assert uow.tenants.get_by_api_key_hash("nope") is None
        assert uow.tenants.list_all() == [t1, t2]
        assert (
            uow.tenants.set_status(t1.id, TenantStatus.SUSPENDED).status is TenantStatus.SUSPENDED
        )
        assert uow.tenants.set_api_key_hash(t1.id, "salt$new").api_key_hash == "salt$new"
        with pytest.raises(StateError) as err:
            uow.tenants.set_api_key_hash(t1.id, t2.api_key_hash)
        assert _code(err) is ErrorCode.RECORD_DUPLICATE
        with pytest.raises(StateError) as err:
            uow.tenants.add(b.tenant(api_key_hash=t2.api_key_hash))
        assert _code(err) is ErrorCode.RECORD_DUPLICATE
        with pytest.raises(StateError) as err:
            uow.tenants.set_status("missing", TenantStatus.ACTIVE)
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()
    with uow_factory() as uow:
        got = uow.tenants.get(t1.id)
        assert got is not None
        assert (got.status, got.api_key_hash) == (TenantStatus.SUSPENDED, "salt$new")


def test_dek_rotation_is_optimistic(uow_factory: UnitOfWorkFactory) -> None:
    t = b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(t)
        rotated = uow.tenants.rotate_dek(
            t.id, wrapped_dek=b"\x00new", dek_version=2, expected_version=1
        )
        assert (rotated.wrapped_dek, rotated.dek_version) == (b"\x00new", 2)
        with pytest.raises(StateError) as err:
            uow.tenants.rotate_dek(t.id, wrapped_dek=b"x", dek_version=2, expected_version=1)
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.tenants.rotate_dek("nope", wrapped_dek=b"x", dek_version=2, expected_version=1)
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()


def test_timestamps_round_trip_as_aware_utc(uow_factory: UnitOfWorkFactory) -> None:
    plus8 = timezone(timedelta(hours=8))
    t = b.tenant(created_at=T0.astimezone(plus8))
    with uow_factory() as uow:
        uow.tenants.add(t)
        uow.commit()
    with uow_factory() as uow:
        got = uow.tenants.get(t.id)
    assert got is not None
    assert got.created_at == T0
    assert got.created_at.utcoffset() == timedelta(0)


def test_entities_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        b.tenant(created_at=T0.replace(tzinfo=None))


# ---------------------------------------------------------------- subjects, consents


def test_subject_lookup_uniqueness_and_status(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid = ids["tenant"]
    other = b.tenant()
    s2 = b.subject(tid, id_pseudonym="pseudo-shared", created_at=at(5))
    s3 = b.subject(tid, id_pseudonym="pseudo-shared", created_at=at(6))
    with uow_factory() as uow:
        uow.tenants.add(other)
        uow.subjects.add(s2)
        uow.subjects.add(s3)
        assert uow.subjects.get_by_external_ref(tid, s2.external_ref) == s2
        assert uow.subjects.list_by_pseudonym(tid, "pseudo-shared") == [s2, s3]
        with pytest.raises(StateError) as err:
            uow.subjects.add(b.subject(tid, external_ref=s2.external_ref))
        assert _code(err) is ErrorCode.RECORD_DUPLICATE
        # the same external_ref is fine for another tenant
        uow.subjects.add(b.subject(other.id, external_ref=s2.external_ref))
        with pytest.raises(StateError) as err:
            uow.subjects.add(b.subject("no-such-tenant"))
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND

        enrolled = uow.subjects.set_status(
            tid, s2.id, SubjectStatus.ENROLLED, expected=SubjectStatus.PENDING
        )
        assert enrolled.status is SubjectStatus.ENROLLED
        with pytest.raises(StateError) as err:
            uow.subjects.set_status(
                tid, s2.id, SubjectStatus.LOCKED, expected=SubjectStatus.PENDING
            )
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        updated = uow.subjects.update_identity(
            tid, s2.id, id_pseudonym="p2", id_number_enc=b"\x09", name_enc=None
        )
        assert (updated.id_pseudonym, updated.id_number_enc, updated.name_enc) == (
            "p2",
            b"\x09",
            None,
        )
        uow.commit()


def test_subject_erase_nulls_identity_and_is_final(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, sid = ids["tenant"], ids["subject"]
    with uow_factory() as uow:
        before = uow.subjects.get(tid, sid)
        assert before is not None
        assert before.wrapped_key is not None  # round-trips as bytes
        assert bytes(before.wrapped_key).startswith(b"\x02wrapped-subject-key")
        erased = uow.subjects.erase(tid, sid, at(100))
        assert erased.status is SubjectStatus.ERASED
        assert erased.erased_at == at(100)
        assert (erased.id_pseudonym, erased.id_number_enc, erased.name_enc) == (None, None, None)
        assert erased.wrapped_key is None  # crypto-shredding: the subject key is deleted
        assert uow.subjects.erase(tid, sid, at(200)).erased_at == at(100)  # idempotent
        with pytest.raises(StateError) as err:
            uow.subjects.set_status(tid, sid, SubjectStatus.ENROLLED)
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.subjects.update_identity(
                tid, sid, id_pseudonym="x", id_number_enc=b"x", name_enc=b"x"
            )
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.subjects.erase(tid, "missing", at(1))
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()
    with uow_factory() as uow:
        assert uow.subjects.get(tid, sid) == erased


def test_consents(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, sid = ids["tenant"], ids["subject"]
    c1 = b.consent(tid, sid, granted_at=at(2))
    c2 = b.consent(tid, sid, granted_at=at(1), purpose="evidence")
    with uow_factory() as uow:
        uow.consents.add(c1)
        uow.consents.add(c2)
        uow.commit()
    with uow_factory() as uow:
        assert uow.consents.get(tid, c1.id) == c1
        assert uow.consents.list_for_subject(tid, sid) == [c2, c1]
        assert uow.consents.withdraw(tid, c1.id, at(50)).withdrawn_at == at(50)
        with pytest.raises(StateError) as err:
            uow.consents.withdraw(tid, c1.id, at(60))
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.consents.withdraw(tid, "missing", at(60))
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()


# ---------------------------------------------------------------- biometrics


def test_templates_and_references(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, sid = ids["tenant"], ids["subject"]
    blob = bytes(range(256)) * 4 + b"\x00\x00trailing-zeros\x00"
    t1 = b.template(tid, sid, template_enc=blob, created_at=at(1), expires_at=None)
    t2 = b.template(tid, sid, created_at=at(2))
    r1 = b.reference(tid, sid)
    with uow_factory() as uow:
        uow.templates.add(t1)
        uow.templates.add(t2)
        uow.references.add(r1)
        with pytest.raises(StateError) as err:
            uow.templates.add(t1)
        assert _code(err) is ErrorCode.RECORD_DUPLICATE
        with pytest.raises(StateError) as err:
            uow.templates.add(b.template(tid, "no-such-subject"))
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()
    with uow_factory() as uow:
        got = uow.templates.get(tid, t1.id)
        assert got == t1
        assert got is not None
        assert got.template_enc == blob
        assert got.expires_at is None
        assert uow.templates.list_for_subject(tid, sid) == [t1, t2]
        assert uow.references.get(tid, r1.id) == r1
        assert uow.references.list_for_subject(tid, sid) == [r1]
        assert (uow.templates.count(tid), uow.templates.count_all()) == (2, 2)
        assert uow.templates.delete(tid, t2.id) is True
        assert uow.templates.delete(tid, t2.id) is False
        assert uow.templates.count(tid) == 1
        uow.commit()


def test_template_counts_per_tenant_and_total(uow_factory: UnitOfWorkFactory) -> None:
    a, c = seed(uow_factory), seed(uow_factory)
    with uow_factory() as uow:
        for _ in range(3):
            uow.templates.add(b.template(a["tenant"], a["subject"]))
        uow.templates.add(b.template(c["tenant"], c["subject"]))
        uow.commit()
    with uow_factory() as uow:
        assert uow.templates.count(a["tenant"]) == 3
        assert uow.templates.count(c["tenant"]) == 1
        assert uow.templates.count("nobody") == 0
        assert uow.templates.count_all() == 4


def test_erasure_deletes_only_that_subjects_biometrics(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, sid = ids["tenant"], ids["subject"]
    keep = b.subject(tid)
    with uow_factory() as uow:
        uow.subjects.add(keep)
        keep_session = b.session(tid, keep.id)
        uow.sessions.add(keep_session)
        keep_check = b.check(tid, keep_session.id, keep.id)
        uow.checks.add(keep_check)
        for _ in range(2):
            uow.templates.add(b.template(tid, sid))
        uow.references.add(b.reference(tid, sid))
        for _ in range(3):
            uow.evidence.add(b.evidence(tid, ids["check"]))
        uow.templates.add(b.template(tid, keep.id))
        uow.references.add(b.reference(tid, keep.id))
        kept_evidence = b.evidence(tid, keep_check.id)
        uow.evidence.add(kept_evidence)
        uow.commit()
    with uow_factory() as uow:
        counts = erase_subject_biometrics(uow, tid, sid)
        assert counts == ErasureCounts(templates=2, references=1, evidence=3)
        assert counts.total == 6
        uow.commit()
    with uow_factory() as uow:
        assert erase_subject_biometrics(uow, tid, sid) == ErasureCounts()
        assert uow.templates.list_for_subject(tid, sid) == []
        assert uow.evidence.list_for_check(tid, ids["check"]) == []
        assert len(uow.templates.list_for_subject(tid, keep.id)) == 1
        assert len(uow.references.list_for_subject(tid, keep.id)) == 1
        assert uow.evidence.list_for_check(tid, keep_check.id) == [kept_evidence]


def test_retention_sweep_counts(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, sid, cid = ids["tenant"], ids["subject"], ids["check"]
    other = seed(uow_factory)
    now = at(1000)
    with uow_factory() as uow:
        uow.templates.add(b.template(tid, sid, expires_at=at(999)))
        uow.templates.add(b.template(other["tenant"], other["subject"], expires_at=at(10)))
        uow.templates.add(b.template(tid, sid, expires_at=now))  # not strictly before: kept
        uow.templates.add(b.template(tid, sid, expires_at=None))  # kept until erasure
        uow.evidence.add(b.evidence(tid, cid, expires_at=at(500)))
        uow.evidence.add(b.evidence(tid, cid, expires_at=at(2000)))
        uow.commit()
    with uow_factory() as uow:
        assert sweep_retention(uow, now) == RetentionCounts(templates=2, evidence=1)
        uow.commit()
    with uow_factory() as uow:
        assert sweep_retention(uow, now) == RetentionCounts()
        assert uow.templates.count_all() == 2
        assert [e.expires_at for e in uow.evidence.list_for_check(tid, cid)] == [at(2000)]


def test_retention_sweep_scoped_to_one_tenant(uow_factory: UnitOfWorkFactory) -> None:
    """The service sweeps tenant by tenant, so each tenant's audit chain records its own
    counts: a scoped sweep must leave every other tenant's rows alone."""
    mine, theirs = seed(uow_factory), seed(uow_factory)
    tid, other = mine["tenant"], theirs["tenant"]
    now = at(1000)
    with uow_factory() as uow:
        for ids in (mine, theirs):
            uow.templates.add(b.template(ids["tenant"], ids["subject"], expires_at=at(10)))
            uow.evidence.add(b.evidence(ids["tenant"], ids["check"], expires_at=at(10)))
        uow.commit()
    with uow_factory() as uow:
        assert sweep_retention(uow, now, tenant_id=tid) == RetentionCounts(templates=1, evidence=1)
        assert uow.sessions.expire_due(now, tenant_id=tid) == 1  # seed's session: at(300)
        uow.commit()
    with uow_factory() as uow:
        got = uow.sessions.get(other, theirs["session"])
        assert got is not None
        assert got.status is SessionStatus.OPEN
        assert uow.templates.count(other) == 1
        assert sweep_retention(uow, now, tenant_id=tid) == RetentionCounts()
        assert sweep_retention(uow, now) == RetentionCounts(templates=1, evidence=1)
        assert uow.sessions.expire_due(now) == 1
        uow.commit()


# ---------------------------------------------------------------- sessions, checks, events


def test_sessions_single_use_nonce(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, sid, nonce = ids["tenant"], ids["session"], ids["nonce"]
    with uow_factory() as uow:
        got = uow.sessions.get(tid, sid)
        assert got is not None
        assert got.status is SessionStatus.OPEN
        assert uow.sessions.get_by_nonce(tid, nonce) == got
        assert uow.sessions.list_for_subject(tid, ids["subject"]) == [got]
        with pytest.raises(StateError) as err:
            uow.sessions.mark_used(tid, sid, "wrong-nonce")
        assert _code(err) is ErrorCode.CHALLENGE_INVALID
        used = uow.sessions.mark_used(tid, sid, nonce)
        assert used.status is SessionStatus.USED
        assert used == replace(got, status=SessionStatus.USED)
        with pytest.raises(StateError) as err:
            uow.sessions.mark_used(tid, sid, nonce)
        assert _code(err) is ErrorCode.SESSION_ALREADY_USED
        with pytest.raises(StateError) as err:
            uow.sessions.mark_used(tid, "missing", nonce)
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        # a nonce is unique across tenants, forever
        other = b.tenant()
        uow.tenants.add(other)
        s_other = b.subject(other.id)
        uow.subjects.add(s_other)
        with pytest.raises(StateError) as err:
            uow.sessions.add(b.session(other.id, s_other.id, nonce=nonce))
        assert _code(err) is ErrorCode.RECORD_DUPLICATE
        uow.commit()
    with uow_factory() as uow:
        with pytest.raises(StateError) as err:
            uow.sessions.mark_used(tid, sid, nonce)
        assert _code(err) is ErrorCode.SESSION_ALREADY_USED


def test_session_expiry(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, subj = ids["tenant"], ids["subject"]
    s_due = b.session(tid, subj, expires_at=at(10))
    s_later = b.session(tid, subj, expires_at=at(10_000))
    with uow_factory() as uow:
        uow.sessions.add(s_due)
        uow.sessions.add(s_later)
        # seed's session expires at at(300): due as well
        assert uow.sessions.expire_due(at(500)) == 2
        assert uow.sessions.expire_due(at(500)) == 0
        with pytest.raises(StateError) as err:
            uow.sessions.mark_used(tid, s_due.id, s_due.nonce)
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        assert uow.sessions.expire(tid, s_later.id).status is SessionStatus.EXPIRED
        with pytest.raises(StateError) as err:
            uow.sessions.expire(tid, s_later.id)
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.sessions.expire(tid, "missing")
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()


def test_checks_evidence_and_lending_events(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, subj, sess = ids["tenant"], ids["subject"], ids["session"]
    c2 = b.check(
        tid,
        sess,
        subj,
        created_at=at(20),
        reasons=("quality.too_dark", "liveness.spoof_suspected"),
        liveness_score=None,
        match_score=None,
    )
    e1 = b.evidence(tid, c2.id)
    ev = b.lending_event(tid, subj, amount_minor=2**40, device_id=None)
    with uow_factory() as uow:
        uow.checks.add(c2)
        uow.evidence.add(e1)
        uow.lending_events.add(ev)
        with pytest.raises(StateError) as err:
            uow.checks.add(b.check(tid, "no-session", subj))
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        with pytest.raises(StateError) as err:
            uow.evidence.add(b.evidence(tid, "no-check"))
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        uow.commit()
    with uow_factory() as uow:
        first = uow.checks.get(tid, ids["check"])
        assert first is not None
        assert uow.checks.get(tid, c2.id) == c2
        assert uow.checks.list_for_session(tid, sess) == [first, c2]
        assert uow.checks.list_for_subject(tid, subj) == [first, c2]
        assert uow.evidence.get(tid, e1.id) == e1
        assert uow.evidence.list_for_check(tid, c2.id) == [e1]
        assert uow.lending_events.get(tid, ev.id) == ev
        assert uow.lending_events.list_for_subject(tid, subj) == [ev]


def test_evidence_of_one_check_is_deleted_alone(uow_factory: UnitOfWorkFactory) -> None:
    """A decided review deletes its check's kept frames (issue 17) and nothing else: not
    another check's, and never through another tenant's id."""
    ids, them = seed(uow_factory), seed(uow_factory)
    tid = ids["tenant"]
    other_check = b.check(tid, ids["session"], ids["subject"], created_at=at(20))
    kept = b.evidence(tid, other_check.id)
    theirs = b.evidence(them["tenant"], them["check"])
    with uow_factory() as uow:
        uow.checks.add(other_check)
        for _ in range(3):
            uow.evidence.add(b.evidence(tid, ids["check"]))
        uow.evidence.add(kept)
        uow.evidence.add(theirs)
        uow.commit()
    with uow_factory() as uow:
        assert uow.evidence.delete_for_check(them["tenant"], ids["check"]) == 0
        assert uow.evidence.delete_for_check(tid, ids["check"]) == 3
        uow.commit()
    with uow_factory() as uow:
        assert uow.evidence.list_for_check(tid, ids["check"]) == []
        assert uow.evidence.list_for_check(tid, other_check.id) == [kept]
        assert uow.evidence.get(them["tenant"], theirs.id) == theirs
        assert uow.evidence.delete_for_check(tid, ids["check"]) == 0


def test_review_queue(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, cid = ids["tenant"], ids["check"]
    r1 = b.review(tid, cid, created_at=at(1))
    r2 = b.review(tid, cid, created_at=at(2))
    with uow_factory() as uow:
        uow.reviews.add(r2)
        uow.reviews.add(r1)
        assert uow.reviews.list_by_status(tid, ReviewStatus.OPEN) == [r1, r2]
        assert uow.reviews.list_by_status(tid, ReviewStatus.OPEN, limit=1) == [r1]
        assigned = uow.reviews.assign(tid, r1.id, "alice")
        assert (assigned.status, assigned.reviewer) == (ReviewStatus.IN_REVIEW, "alice")
        with pytest.raises(StateError) as err:
            uow.reviews.assign(tid, r1.id, "bob")
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        closed = uow.reviews.close(
            tid, r1.id, reviewer="alice", outcome=ReviewOutcome.APPROVED, at=at(9)
        )
        assert (closed.status, closed.outcome, closed.closed_at) == (
            ReviewStatus.CLOSED,
            ReviewOutcome.APPROVED,
            at(9),
        )
        with pytest.raises(StateError) as err:
            uow.reviews.close(tid, r1.id, reviewer="bob", outcome=ReviewOutcome.REJECTED, at=at(10))
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.reviews.assign(tid, "missing", "bob")
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        # closing straight from open is allowed
        uow.reviews.close(tid, r2.id, reviewer="bob", outcome=ReviewOutcome.REJECTED, at=at(11))
        uow.commit()
    with uow_factory() as uow:
        assert uow.reviews.get(tid, r1.id) == closed
        assert uow.reviews.list_by_status(tid, ReviewStatus.OPEN) == []
        assert len(uow.reviews.list_by_status(tid, ReviewStatus.CLOSED)) == 2


# ---------------------------------------------------------------- webhook outbox


def test_outbox_claim_deliver_and_back_off(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid = ids["tenant"]
    d1 = b.delivery(tid, next_attempt_at=at(0))
    d2 = b.delivery(tid, next_attempt_at=at(5))
    d_later = b.delivery(tid, next_attempt_at=at(1000))
    lease = timedelta(seconds=60)
    with uow_factory() as uow:
        for d in (d_later, d2, d1):
            uow.webhooks.enqueue(d)
        uow.commit()
    with uow_factory() as uow:
        claimed = uow.webhooks.claim_due(at(10), limit=10, lease=lease)
        assert [c.id for c in claimed] == [d1.id, d2.id]
        assert all(c.status is DeliveryStatus.IN_FLIGHT and c.attempts == 1 for c in claimed)
        assert all(c.next_attempt_at == at(10) + lease for c in claimed)
        assert uow.webhooks.claim_due(at(11), limit=10, lease=lease) == []  # leased
        uow.commit()
    with uow_factory() as uow:
        done = uow.webhooks.mark_delivered(tid, d1.id, at(12))
        assert (done.status, done.delivered_at) == (DeliveryStatus.DELIVERED, at(12))
        with pytest.raises(StateError) as err:
            uow.webhooks.mark_delivered(tid, d1.id, at(13))
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        failed = uow.webhooks.mark_failed(tid, d2.id, now=at(12), error="HTTP 503")
        assert failed.status is DeliveryStatus.PENDING
        assert failed.last_error == "HTTP 503"
        assert failed.next_attempt_at == at(12) + retry_delay(1)
        with pytest.raises(StateError) as err:
            uow.webhooks.mark_failed(tid, d2.id, now=at(12), error="again")
        assert _code(err) is ErrorCode.RECORD_CONFLICT
        with pytest.raises(StateError) as err:
            uow.webhooks.mark_failed(tid, "missing", now=at(12), error="x")
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND
        assert uow.webhooks.list_for_tenant(tid, status=DeliveryStatus.DELIVERED) == [done]
        assert len(uow.webhooks.list_for_tenant(tid)) == 3
        uow.commit()
    # second attempt fails for good with max_attempts=2
    with uow_factory() as uow:
        (again,) = uow.webhooks.claim_due(at(12) + retry_delay(1), limit=10, lease=lease)
        assert (again.id, again.attempts) == (d2.id, 2)
        dead = uow.webhooks.mark_failed(tid, d2.id, now=at(40), error="HTTP 500", max_attempts=2)
        assert dead.status is DeliveryStatus.FAILED
        assert uow.webhooks.get(tid, d2.id) == dead
        uow.commit()


def test_outbox_reclaims_rows_whose_lease_ran_out(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    d = b.delivery(ids["tenant"])
    with uow_factory() as uow:
        uow.webhooks.enqueue(d)
        (first,) = uow.webhooks.claim_due(at(0), limit=1, lease=timedelta(seconds=30))
        assert uow.webhooks.claim_due(at(29), limit=1, lease=timedelta(seconds=30)) == []
        (second,) = uow.webhooks.claim_due(at(30), limit=1, lease=timedelta(seconds=30))
        assert (first.attempts, second.attempts) == (1, 2)
        uow.commit()


def test_retry_delay_is_exponential_and_capped() -> None:
    base, cap = timedelta(seconds=10), timedelta(minutes=5)
    assert [retry_delay(n, base, cap).total_seconds() for n in range(1, 7)] == [
        10,
        20,
        40,
        80,
        160,
        300,
    ]
    assert retry_delay(0, base, cap) == base
    assert retry_delay(10_000, base, cap) == cap


# ---------------------------------------------------------------- audit chain


def test_audit_chain_append_head_and_range(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid, other = ids["tenant"], seed(uow_factory)["tenant"]
    with uow_factory() as uow:
        assert uow.audit.head(tid) is None
        events = [uow.audit.append(b.draft(tid, n), b.chain_hash) for n in range(5)]
        uow.audit.append(b.draft(other, 0, subject_id="s1"), b.chain_hash)
        uow.commit()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == AUDIT_GENESIS_HASH
    for prev, cur in pairwise(events):
        assert cur.prev_hash == prev.hash
    with uow_factory() as uow:
        assert uow.audit.head(tid) == events[-1]
        assert uow.audit.read(tid) == events
        assert uow.audit.read(tid, start_seq=2, end_seq=3) == events[1:3]
        assert uow.audit.read(tid, start_seq=4, limit=1) == events[3:4]
        other_events = uow.audit.read(other)
        assert [(e.seq, e.subject_id) for e in other_events] == [(1, "s1")]
        assert other_events[0].prev_hash == AUDIT_GENESIS_HASH
        with pytest.raises(StateError) as err:
            uow.audit.append(b.draft("no-such-tenant"), b.chain_hash)
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND


def test_audit_append_rolled_back_leaves_no_gap(uow_factory: UnitOfWorkFactory) -> None:
    tid = seed(uow_factory)["tenant"]
    with uow_factory() as uow:
        uow.audit.append(b.draft(tid, 0), b.chain_hash)
        uow.commit()
        uow.audit.append(b.draft(tid, 1), b.chain_hash)
        uow.rollback()
    with uow_factory() as uow:
        nxt = uow.audit.append(b.draft(tid, 2), b.chain_hash)
        uow.commit()
    assert nxt.seq == 2


# ---------------------------------------------------------------- tenant isolation


def test_tenant_isolation(uow_factory: UnitOfWorkFactory) -> None:
    """Tenant A can never read, update or delete tenant B's rows, nor attach rows to them."""
    a, bb = seed(uow_factory), seed(uow_factory)
    ta, tb = a["tenant"], bb["tenant"]
    with uow_factory() as uow:
        tpl = b.template(tb, bb["subject"], expires_at=None)
        ref = b.reference(tb, bb["subject"])
        con = b.consent(tb, bb["subject"])
        evi = b.evidence(tb, bb["check"], expires_at=at(10**8))
        ev = b.lending_event(tb, bb["subject"])
        rev = b.review(tb, bb["check"])
        dlv = b.delivery(tb)
        uow.templates.add(tpl)
        uow.references.add(ref)
        uow.consents.add(con)
        uow.evidence.add(evi)
        uow.lending_events.add(ev)
        uow.reviews.add(rev)
        uow.webhooks.enqueue(dlv)
        uow.audit.append(b.draft(tb, 0), b.chain_hash)
        uow.commit()

    def nf(fn: object, *args: object, **kw: object) -> None:
        with pytest.raises(StateError) as err:
            fn(*args, **kw)  # type: ignore[operator]
        assert _code(err) is ErrorCode.RECORD_NOT_FOUND, fn

    with uow_factory() as uow:
        # reads
        assert uow.subjects.get(ta, bb["subject"]) is None
        assert uow.subjects.get_by_external_ref(ta, uow_get_ref(uow, tb, bb["subject"])) is None
        assert uow.subjects.list_by_pseudonym(ta, "pseudo-" + bb["subject"][:8]) == []
        assert uow.consents.get(ta, con.id) is None
        assert uow.consents.list_for_subject(ta, bb["subject"]) == []
        assert uow.templates.get(ta, tpl.id) is None
        assert uow.templates.list_for_subject(ta, bb["subject"]) == []
        assert uow.references.get(ta, ref.id) is None
        assert uow.references.list_for_subject(ta, bb["subject"]) == []
        assert uow.sessions.get(ta, bb["session"]) is None
        assert uow.sessions.get_by_nonce(ta, bb["nonce"]) is None
        assert uow.sessions.list_for_subject(ta, bb["subject"]) == []
        assert uow.checks.get(ta, bb["check"]) is None
        assert uow.checks.list_for_session(ta, bb["session"]) == []
        assert uow.checks.list_for_subject(ta, bb["subject"]) == []
        assert uow.evidence.get(ta, evi.id) is None
        assert uow.evidence.list_for_check(ta, bb["check"]) == []
        assert uow.lending_events.get(ta, ev.id) is None
        assert uow.lending_events.list_for_subject(ta, bb["subject"]) == []
        assert uow.reviews.get(ta, rev.id) is None
        assert uow.reviews.list_by_status(ta, ReviewStatus.OPEN) == []
        assert uow.webhooks.get(ta, dlv.id) is None
        assert uow.webhooks.list_for_tenant(ta) == []
        assert uow.audit.head(ta) is None
        assert uow.audit.read(ta) == []
        assert uow.templates.count(ta) == 0
        # updates
        nf(uow.subjects.set_status, ta, bb["subject"], SubjectStatus.LOCKED)
        nf(
            uow.subjects.update_identity,
            ta,
            bb["subject"],
            id_pseudonym=None,
            id_number_enc=None,
            name_enc=None,
        )
        nf(uow.subjects.erase, ta, bb["subject"], at(1))
        nf(uow.consents.withdraw, ta, con.id, at(1))
        nf(uow.sessions.mark_used, ta, bb["session"], bb["nonce"])
        nf(uow.sessions.expire, ta, bb["session"])
        nf(uow.reviews.assign, ta, rev.id, "mallory")
        nf(uow.reviews.close, ta, rev.id, reviewer="m", outcome=ReviewOutcome.APPROVED, at=at(1))
        nf(uow.webhooks.mark_delivered, ta, dlv.id, at(1))
        nf(uow.webhooks.mark_failed, ta, dlv.id, now=at(1), error="x")
        # deletes
        assert uow.templates.delete(ta, tpl.id) is False
        assert erase_subject_biometrics(uow, ta, bb["subject"]) == ErasureCounts()
        # attaching rows to another tenant's parents
        nf(uow.templates.add, b.template(ta, bb["subject"]))
        nf(uow.references.add, b.reference(ta, bb["subject"]))
        nf(uow.consents.add, b.consent(ta, bb["subject"]))
        nf(uow.sessions.add, b.session(ta, bb["subject"]))
        nf(uow.checks.add, b.check(ta, bb["session"], a["subject"]))
        nf(uow.checks.add, b.check(ta, a["session"], bb["subject"]))
        nf(uow.evidence.add, b.evidence(ta, bb["check"]))
        nf(uow.lending_events.add, b.lending_event(ta, bb["subject"]))
        nf(uow.reviews.add, b.review(ta, bb["check"]))
        uow.commit()
    with uow_factory() as uow:  # B's rows are untouched
        subj = uow.subjects.get(tb, bb["subject"])
        assert subj is not None
        assert subj.status is SubjectStatus.PENDING
        assert uow.templates.get(tb, tpl.id) == tpl
        assert uow.references.get(tb, ref.id) == ref
        assert uow.evidence.get(tb, evi.id) == evi
        assert uow.consents.get(tb, con.id) == con
        sess = uow.sessions.get(tb, bb["session"])
        assert sess is not None
        assert sess.status is SessionStatus.OPEN
        assert uow.reviews.get(tb, rev.id) == rev
        assert uow.webhooks.get(tb, dlv.id) == dlv


def uow_get_ref(uow: UnitOfWork, tenant_id: str, subject_id: str) -> str:
    subj = uow.subjects.get(tenant_id, subject_id)
    assert subj is not None
    return subj.external_ref


# ---------------------------------------------------------------- concurrency


def _race(n: int, work: object) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)  # type: ignore[operator]
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_session_nonce_single_use_under_concurrency(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)

    def use(_: int) -> str:
        with uow_factory() as uow:
            uow.sessions.mark_used(ids["tenant"], ids["session"], ids["nonce"])
            uow.commit()
        return "won"

    results = _race(10, use)
    assert results.count("won") == 1, results
    losers = [r for r in results if r != "won"]
    assert all(isinstance(r, StateError) for r in losers), losers
    assert {r.code for r in losers if isinstance(r, StateError)} == {ErrorCode.SESSION_ALREADY_USED}


def test_audit_append_under_concurrency_is_gap_free(uow_factory: UnitOfWorkFactory) -> None:
    tid = seed(uow_factory)["tenant"]
    per_thread = 5

    def append(i: int) -> list[int]:
        seqs = []
        for k in range(per_thread):
            with uow_factory() as uow:
                seqs.append(uow.audit.append(b.draft(tid, i * 100 + k), b.chain_hash).seq)
                uow.commit()
        return seqs

    results = _race(8, append)
    assert not [r for r in results if isinstance(r, Exception)], results
    with uow_factory() as uow:
        events = uow.audit.read(tid)
    assert [e.seq for e in events] == list(range(1, 8 * per_thread + 1))
    assert events[0].prev_hash == AUDIT_GENESIS_HASH
    for prev, cur in pairwise(events):
        assert cur.prev_hash == prev.hash
        link = b.chain_hash(
            seq=cur.seq, prev_hash=prev.hash, draft=b.draft(tid, 0, payload=cur.payload)
        )
        assert (cur.hash, cur.mac) == (link.hash, link.mac)


def test_outbox_workers_claim_disjoint_rows(uow_factory: UnitOfWorkFactory) -> None:
    tid = seed(uow_factory)["tenant"]
    deliveries = [b.delivery(tid, next_attempt_at=at(i)) for i in range(20)]
    with uow_factory() as uow:
        for d in deliveries:
            uow.webhooks.enqueue(d)
        uow.commit()

    def worker(_: int) -> list[str]:
        got: list[str] = []
        while True:
            with uow_factory() as uow:
                batch = uow.webhooks.claim_due(at(100), limit=3, lease=timedelta(minutes=5))
                uow.commit()
            if not batch:
                return got
            got.extend(d.id for d in batch)

    results = _race(2, worker)
    assert not [r for r in results if isinstance(r, Exception)], results
    first, second = (set(r) for r in results)  # type: ignore[call-overload]
    assert not first & second
    assert first | second == {d.id for d in deliveries}


def test_template_type_is_frozen() -> None:
    tpl = b.template("t", "s")
    with pytest.raises(AttributeError):
        tpl.embedder = "x"  # type: ignore[misc]
    assert isinstance(tpl, Template)
    assert tpl.created_at.tzinfo is UTC


def test_storage_unavailable_is_a_retryable_service_error() -> None:
    from shiren.storage.sql import SqlStore, make_engine

    engine = make_engine(
        "postgresql://nobody@127.0.0.1:1/nothing", connect_args={"connect_timeout": 1}
    )
    with pytest.raises(ServiceError) as err, SqlStore(engine)():
        pass
    assert err.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert err.value.retryable
    engine.dispose()


# ---------------------------------------------------------------- review console (0004)


def test_console_users_crud_lockout_and_isolation(uow_factory: UnitOfWorkFactory) -> None:
    from shiren.domain.console import ConsoleRole, ConsoleUserStatus

    ids = seed(uow_factory)
    other = b.tenant()
    alice = b.console_user(ids["tenant"], username="alice")
    with uow_factory() as uow:
        uow.tenants.add(other)
        uow.console_users.add(alice)
        uow.console_users.add(b.console_user(ids["tenant"], username="bob"))
        uow.commit()
    with uow_factory() as uow, pytest.raises(StateError) as dup:
        uow.console_users.add(b.console_user(other.id, username="alice"))  # global username
    assert _code(dup) is ErrorCode.RECORD_DUPLICATE
    with uow_factory() as uow, pytest.raises(StateError) as orphan:
        uow.console_users.add(b.console_user(b.tenant().id))
    assert _code(orphan) is ErrorCode.RECORD_NOT_FOUND
    with uow_factory() as uow:
        assert uow.console_users.get(ids["tenant"], alice.id) == alice
        assert uow.console_users.get(other.id, alice.id) is None
        assert uow.console_users.get_by_username("alice") == alice
        assert uow.console_users.get_by_username("nobody") is None
        assert [u.username for u in uow.console_users.list_for_tenant(ids["tenant"])] == [
            "alice",
            "bob",
        ]
        assert uow.console_users.list_for_tenant(other.id) == []
        for n in (1, 2):
            u = uow.console_users.record_failure(
                ids["tenant"], alice.id, at=at(n), max_failures=3, lock_for=timedelta(minutes=15)
            )
            assert (u.failed_logins, u.locked_until) == (n, None)
        locked = uow.console_users.record_failure(
            ids["tenant"], alice.id, at=at(3), max_failures=3, lock_for=timedelta(minutes=15)
        )
        assert (locked.failed_logins, locked.locked_until) == (0, at(3) + timedelta(minutes=15))
        uow.commit()
    with uow_factory() as uow:
        back = uow.console_users.record_success(ids["tenant"], alice.id, at(1000))
        assert (back.failed_logins, back.locked_until, back.last_login_at) == (0, None, at(1000))
        changed = uow.console_users.update(
            ids["tenant"],
            alice.id,
            role=ConsoleRole.ADMIN,
            status=ConsoleUserStatus.DISABLED,
            sessions_valid_after=at(2000),
        )
        assert (changed.role, changed.status, changed.sessions_valid_after) == (
            ConsoleRole.ADMIN,
            ConsoleUserStatus.DISABLED,
            at(2000),
        )
        assert uow.console_users.update(ids["tenant"], alice.id) == changed
        with pytest.raises(StateError) as missing:
            uow.console_users.update(other.id, alice.id, role=ConsoleRole.AUDITOR)
        assert _code(missing) is ErrorCode.RECORD_NOT_FOUND
        with pytest.raises(StateError):
            uow.console_users.record_failure(
                other.id, alice.id, at=at(1), max_failures=3, lock_for=timedelta(minutes=1)
            )
        uow.commit()
    with uow_factory() as uow:
        assert uow.console_users.get(ids["tenant"], alice.id) == changed


def test_console_dashboard_aggregates_by_utc_day(uow_factory: UnitOfWorkFactory) -> None:
    from shiren.domain.console import DailyCount
    from shiren.domain.entities import Decision

    ids = seed(uow_factory)  # one pass check at T0 + 10 s (2025-03-01)
    other = b.tenant()
    os_ = b.subject(other.id)
    ose = b.session(other.id, os_.id)
    day2 = T0 + timedelta(days=1)
    # 23:59:59.5 at UTC+8 on 03-02 is 15:59 UTC on 03-02: bucketed by the UTC day
    late = day2.replace(hour=23, minute=59, second=59).astimezone(timezone(timedelta(hours=8)))
    rows = [
        (day2, Decision.RETRY, ("liveness.challenge_failed", "quality.too_dark")),
        (day2, Decision.FALLBACK, ("limit.locked",)),
        (late, Decision.PASS, ("match.above_threshold",)),
        (T0 + timedelta(days=9), Decision.REVIEW, ("liveness.challenge_failed",)),  # out of range
    ]
    with uow_factory() as uow:
        uow.tenants.add(other)
        uow.subjects.add(os_)
        uow.sessions.add(ose)
        uow.checks.add(b.check(other.id, ose.id, os_.id, created_at=day2))  # other tenant
        for when, decision, reasons in rows:
            uow.checks.add(
                b.check(
                    ids["tenant"],
                    ids["session"],
                    ids["subject"],
                    created_at=when,
                    decision=decision,
                    reasons=reasons,
                )
            )
        uow.commit()
    since, until = T0.replace(hour=0, minute=0, second=0, microsecond=0), T0 + timedelta(days=7)
    with uow_factory() as uow:
        decisions = uow.console.daily_decisions(ids["tenant"], since, until)
        reasons = uow.console.daily_reasons(ids["tenant"], since, until)
        empty = uow.console.daily_decisions(b.tenant().id, since, until)
    assert decisions == [
        DailyCount("2025-03-01", "pass", 1),
        DailyCount("2025-03-02", "fallback", 1),
        DailyCount("2025-03-02", "pass", 1),
        DailyCount("2025-03-02", "retry", 1),
    ]
    assert reasons == [
        DailyCount("2025-03-01", "match.above_threshold", 1),
        DailyCount("2025-03-02", "limit.locked", 1),
        DailyCount("2025-03-02", "liveness.challenge_failed", 1),
        DailyCount("2025-03-02", "match.above_threshold", 1),
        DailyCount("2025-03-02", "quality.too_dark", 1),
    ]
    assert empty == []


def test_console_subject_search_and_subject_audit(uow_factory: UnitOfWorkFactory) -> None:
    ids = seed(uow_factory)
    tid = ids["tenant"]
    other = b.tenant()
    with uow_factory() as uow:
        uow.tenants.add(other)
        for ref in ("loan-10", "loan-11", "LOAN-12", "loan_1%", "x-loan-1"):
            uow.subjects.add(b.subject(tid, external_ref=ref))
        uow.subjects.add(b.subject(other.id, external_ref="loan-13"))
        uow.audit.append(b.draft(tid, 0, subject_id=ids["subject"]), b.chain_hash)
        uow.audit.append(b.draft(tid, 1), b.chain_hash)
        uow.audit.append(b.draft(tid, 2, subject_id=ids["subject"]), b.chain_hash)
        uow.commit()
    with uow_factory() as uow:
        found = [x.external_ref for x in uow.console.find_subjects(tid, "loan-1")]
        literal = [x.external_ref for x in uow.console.find_subjects(tid, "loan_1%")]
        limited = uow.console.find_subjects(tid, "loan", limit=1)
        events = uow.console.audit_for_subject(tid, ids["subject"])
        foreign = uow.console.audit_for_subject(other.id, ids["subject"])
    assert found == ["loan-10", "loan-11"]
    assert literal == ["loan_1%"]
    assert [x.external_ref for x in limited] == ["loan-10"]
    assert [e.seq for e in events] == [1, 3]
    assert foreign == []
