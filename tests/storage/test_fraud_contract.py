"""Storage contract of the anti-fraud tables (migration 0005) on memory, SQLite, PostgreSQL."""

from __future__ import annotations

import pytest

from shiren.domain.entities import SubjectStatus, new_id
from shiren.domain.fraud import BlacklistEntry, EnrolSignal, FraudFinding
from shiren.errors import ErrorCode, StateError
from shiren.storage.ports import ErasureCounts, UnitOfWorkFactory, erase_subject_biometrics
from tests.storage import builders as b
from tests.storage.builders import at


def _entry(tid: str, n: int, list_name: str = "fraud") -> BlacklistEntry:
    return BlacklistEntry(
        id=new_id(),
        tenant_id=tid,
        list_name=list_name,
        template_enc=b"\x01sealed" + bytes([n]),
        reason="confirmed_fraud",
        evidence_ref=f"CASE-{n}",
        added_by="analyst@lender",
        created_at=at(n),
    )


def _signal(tid: str, sid: str, n: int, device: str | None = "dev1") -> EnrolSignal:
    return EnrolSignal(
        id=new_id(),
        tenant_id=tid,
        subject_id=sid,
        created_at=at(n),
        device_hash=device,
        ip_hash="ip1",
        background_enc=b"\x01bg",
    )


def _finding(tid: str, sid: str, n: int, check_id: str | None = None) -> FraudFinding:
    return FraudFinding(
        id=new_id(),
        tenant_id=tid,
        subject_id=sid,
        code="fraud.duplicate_face",
        action="review",
        policy_version="p1",
        created_at=at(n),
        check_id=check_id,
        evidence={"other_subject_id": "x" * 32, "similarity": 0.98},
    )


def _two_tenants(uow_factory: UnitOfWorkFactory) -> tuple[str, str, str, str]:
    ta, tb = b.tenant(), b.tenant()
    sa, sb = b.subject(ta.id), b.subject(tb.id)
    with uow_factory() as uow:
        uow.tenants.add(ta)
        uow.tenants.add(tb)
        uow.subjects.add(sa)
        uow.subjects.add(sb)
        uow.commit()
    return ta.id, sa.id, tb.id, sb.id


def test_blacklist_add_list_delete(uow_factory: UnitOfWorkFactory) -> None:
    ta, _, tb, _ = _two_tenants(uow_factory)
    entries = [_entry(ta, 1), _entry(ta, 2, "internal"), _entry(ta, 3)]
    with uow_factory() as uow:
        for e in entries:
            uow.blacklist.add(e)
        uow.blacklist.add(_entry(tb, 4))
        uow.commit()
    with uow_factory() as uow:
        assert uow.blacklist.get(ta, entries[0].id) == entries[0]
        assert uow.blacklist.get(tb, entries[0].id) is None
        assert [e.id for e in uow.blacklist.list(ta)] == [x.id for x in reversed(entries)]
        assert [e.id for e in uow.blacklist.list(ta, "internal")] == [entries[1].id]
        assert len(uow.blacklist.list(ta, limit=1)) == 1
        assert uow.blacklist.count(ta) == 3
        assert uow.blacklist.delete(tb, entries[0].id) is False  # another tenant's id
        assert uow.blacklist.delete(ta, entries[0].id) is True
        assert uow.blacklist.delete(ta, entries[0].id) is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.blacklist.count(ta) == 2
        with pytest.raises(StateError) as err:
            uow.blacklist.add(entries[1])
        assert err.value.code == ErrorCode.RECORD_DUPLICATE
        assert uow.blacklist.count(ta) == 2  # still usable after the failure


def test_signals_by_device_and_recency(uow_factory: UnitOfWorkFactory) -> None:
    ta, sa, tb, sb = _two_tenants(uow_factory)
    other = b.subject(ta)
    with uow_factory() as uow:
        uow.subjects.add(other)
        uow.enrol_signals.add(_signal(ta, sa, 10))
        uow.enrol_signals.add(_signal(ta, sa, 20))
        uow.enrol_signals.add(_signal(ta, other.id, 30))
        uow.enrol_signals.add(_signal(ta, other.id, 40, device="dev2"))
        uow.enrol_signals.add(_signal(tb, sb, 50))
        uow.commit()
    with uow_factory() as uow:
        assert uow.enrol_signals.subjects_for_device(ta, "dev1", at(0)) == sorted([sa, other.id])
        assert uow.enrol_signals.subjects_for_device(ta, "dev1", at(25)) == [other.id]
        assert uow.enrol_signals.subjects_for_device(tb, "dev2", at(0)) == []
        recent = uow.enrol_signals.recent(ta, at(15), limit=10)
        assert [s.created_at for s in recent] == [at(40), at(30), at(20)]
        assert len(uow.enrol_signals.recent(ta, at(0), limit=2)) == 2
        with pytest.raises(StateError) as err:
            uow.enrol_signals.add(_signal(ta, sb, 60))  # another tenant's subject
        assert err.value.code == ErrorCode.RECORD_NOT_FOUND


def test_findings_and_erasure(uow_factory: UnitOfWorkFactory) -> None:
    ta, sa, tb, sb = _two_tenants(uow_factory)
    f1, f2 = _finding(ta, sa, 1, check_id="c" * 32), _finding(ta, sa, 2)
    with uow_factory() as uow:
        uow.findings.add(f1)
        uow.findings.add(f2)
        uow.findings.add(_finding(tb, sb, 3))
        uow.enrol_signals.add(_signal(ta, sa, 4))
        uow.commit()
    with uow_factory() as uow:
        assert uow.findings.list_for_subject(ta, sa) == [f1, f2]
        assert uow.findings.list_for_check(ta, "c" * 32) == [f1]
        assert uow.findings.list_for_subject(tb, sa) == []
        counts = erase_subject_biometrics(uow, ta, sa)
        assert counts == ErasureCounts(fraud_signals=3)
        uow.commit()
    with uow_factory() as uow:
        assert uow.findings.list_for_subject(ta, sa) == []
        assert uow.enrol_signals.recent(ta, at(0), limit=10) == []
        assert len(uow.findings.list_for_subject(tb, sb)) == 1
        with pytest.raises(StateError) as err:
            uow.findings.add(_finding(ta, sb, 5))
        assert err.value.code == ErrorCode.RECORD_NOT_FOUND


def test_templates_page_through_a_tenant(uow_factory: UnitOfWorkFactory) -> None:
    ta, sa, tb, sb = _two_tenants(uow_factory)
    with uow_factory() as uow:
        mine = [b.template(ta, sa) for _ in range(5)]
        for t in mine:
            uow.templates.add(t)
        uow.templates.add(b.template(tb, sb))
        uow.commit()
    with uow_factory() as uow:
        seen, after = [], ""
        while page := uow.templates.list_for_tenant(ta, after_id=after, limit=2):
            assert len(page) <= 2
            seen += [t.id for t in page]
            after = page[-1].id
    assert seen == sorted(t.id for t in mine)


def test_gallery_id_sets(uow_factory: UnitOfWorkFactory) -> None:
    """The ids the 1:N galleries must hold (issue 6): enrolled subjects with a template,
    pending subjects with a reference photo, blacklist entries; and who a sweep would touch."""
    ta, sa, tb, sb = _two_tenants(uow_factory)
    with uow_factory() as uow:
        pending = b.subject(ta)
        uow.subjects.add(pending)
        uow.subjects.set_status(ta, sa, SubjectStatus.ENROLLED)
        uow.subjects.set_status(tb, sb, SubjectStatus.ENROLLED)
        uow.templates.add(b.template(ta, sa, expires_at=at(10)))
        uow.templates.add(b.template(ta, sa, expires_at=at(100)))
        uow.templates.add(b.template(tb, sb, expires_at=None))
        uow.references.add(b.reference(ta, sa))  # bound since: not in the references gallery
        uow.references.add(b.reference(ta, pending.id))
        uow.references.add(b.reference(ta, pending.id))
        entry = _entry(ta, 1)
        uow.blacklist.add(entry)
        uow.blacklist.add(_entry(tb, 2))
        uow.commit()
    with uow_factory() as uow:
        assert uow.templates.enrolled_subject_ids(ta) == {sa}
        assert uow.templates.enrolled_subject_ids(tb) == {sb}
        assert uow.references.pending_subject_ids(ta) == {pending.id}
        assert uow.references.pending_subject_ids(tb) == set()
        assert uow.blacklist.ids(ta) == {entry.id}
        assert uow.templates.expired_subject_ids(at(5)) == set()
        assert uow.templates.expired_subject_ids(at(50), tenant_id=ta) == {sa}
        assert uow.templates.expired_subject_ids(at(50), tenant_id=tb) == set()
    with uow_factory() as uow:
        uow.subjects.erase(ta, sa, at(60))
        uow.commit()
    with uow_factory() as uow:
        assert uow.templates.enrolled_subject_ids(ta) == set()  # erased is not enrolled


def test_enrolled_ids_per_network(uow_factory: UnitOfWorkFactory) -> None:
    """The enrolled gallery of one network follows that network's templates only (matched on
    the name before ``@``, never on a prefix of another name or a LIKE wildcard)."""
    ta, sa, _tb, _sb = _two_tenants(uow_factory)
    with uow_factory() as uow:
        other, both, odd = b.subject(ta), b.subject(ta), b.subject(ta)
        for s in (other, both, odd):
            uow.subjects.add(s)
        for sid in (sa, other.id, both.id, odd.id):
            uow.subjects.set_status(ta, sid, SubjectStatus.ENROLLED)
        dlib = "dlib-resnet-v1-onnx@sha256:" + "0" * 64
        mfn = "mobilefacenet-onnx@sha256:" + "1" * 64
        uow.templates.add(b.template(ta, sa, embedder=dlib))
        uow.templates.add(b.template(ta, other.id, embedder=mfn))
        uow.templates.add(b.template(ta, both.id, embedder=dlib))
        uow.templates.add(b.template(ta, both.id, embedder=mfn))
        uow.templates.add(b.template(ta, odd.id, embedder="mobilefacenet-onnx2@sha256:00"))
        uow.commit()
    with uow_factory() as uow:
        everyone = {sa, other.id, both.id, odd.id}
        assert uow.templates.enrolled_subject_ids(ta) == everyone
        assert uow.templates.enrolled_subject_ids(ta, network="dlib-resnet-v1-onnx") == {
            sa,
            both.id,
        }
        assert uow.templates.enrolled_subject_ids(ta, network="mobilefacenet-onnx") == {
            other.id,
            both.id,
        }
        assert uow.templates.enrolled_subject_ids(ta, network="mobilefacenet_onnx") == set()
        assert uow.templates.enrolled_subject_ids(ta, network="mobilefacenet") == set()
