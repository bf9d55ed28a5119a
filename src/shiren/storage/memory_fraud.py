"""In-memory anti-fraud repositories (the reference the SQL ones are held to).

They see the unit of work only as the keeper of the tables (:class:`~.memory_tables._HasTables`),
so this module depends on :mod:`.memory_tables`, never on :mod:`.memory` that assembles it.
"""

from __future__ import annotations

from datetime import datetime

from shiren.domain.fraud import BlacklistEntry, EnrolSignal, FraudFinding
from shiren.storage.errors import duplicate, not_found
from shiren.storage.memory_tables import _HasTables, _Tables


class _Repo:
    def __init__(self, uow: _HasTables) -> None:
        self._uow = uow

    @property
    def _t(self) -> _Tables:
        return self._uow.tables()

    def _subject(self, tenant_id: str, subject_id: str) -> None:
        if tenant_id not in self._t.tenants:
            raise not_found("tenant")
        row = self._t.subjects.get(subject_id)
        if row is None or row.tenant_id != tenant_id:
            raise not_found("subject")


def _newest(row: BlacklistEntry | EnrolSignal) -> tuple[datetime, str]:
    return (row.created_at, row.id)


class MemoryBlacklistRepository(_Repo):
    def add(self, entry: BlacklistEntry) -> None:
        if entry.tenant_id not in self._t.tenants:
            raise not_found("tenant")
        if entry.id in self._t.blacklist:
            raise duplicate("blacklist entry")
        self._t.blacklist[entry.id] = entry

    def get(self, tenant_id: str, entry_id: str) -> BlacklistEntry | None:
        row = self._t.blacklist.get(entry_id)
        return row if row is not None and row.tenant_id == tenant_id else None

    def list(
        self, tenant_id: str, list_name: str | None = None, *, limit: int = 100
    ) -> list[BlacklistEntry]:
        rows = [
            x
            for x in self._t.blacklist.values()
            if x.tenant_id == tenant_id and (list_name is None or x.list_name == list_name)
        ]
        return sorted(rows, key=_newest, reverse=True)[: max(0, limit)]

    def delete(self, tenant_id: str, entry_id: str) -> bool:
        if self.get(tenant_id, entry_id) is None:
            return False
        del self._t.blacklist[entry_id]
        return True

    def count(self, tenant_id: str) -> int:
        return sum(1 for x in self._t.blacklist.values() if x.tenant_id == tenant_id)

    def ids(self, tenant_id: str) -> set[str]:
        return {x.id for x in self._t.blacklist.values() if x.tenant_id == tenant_id}


class MemoryEnrolSignalRepository(_Repo):
    def add(self, signal: EnrolSignal) -> None:
        self._subject(signal.tenant_id, signal.subject_id)
        if signal.id in self._t.enrol_signals:
            raise duplicate("enrolment signal")
        self._t.enrol_signals[signal.id] = signal

    def subjects_for_device(self, tenant_id: str, device_hash: str, since: datetime) -> list[str]:
        return sorted(
            {
                x.subject_id
                for x in self._t.enrol_signals.values()
                if x.tenant_id == tenant_id
                and x.device_hash == device_hash
                and x.created_at >= since
            }
        )

    def recent(self, tenant_id: str, since: datetime, *, limit: int) -> list[EnrolSignal]:
        rows = [
            x
            for x in self._t.enrol_signals.values()
            if x.tenant_id == tenant_id and x.created_at >= since
        ]
        return sorted(rows, key=_newest, reverse=True)[: max(0, limit)]

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [
            k
            for k, x in self._t.enrol_signals.items()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        ]
        for k in doomed:
            del self._t.enrol_signals[k]
        return len(doomed)


class MemoryFindingRepository(_Repo):
    def add(self, finding: FraudFinding) -> None:
        self._subject(finding.tenant_id, finding.subject_id)
        if finding.id in self._t.findings:
            raise duplicate("fraud finding")
        self._t.findings[finding.id] = finding

    def _where(self, tenant_id: str, **match: str) -> list[FraudFinding]:
        rows = [
            x
            for x in self._t.findings.values()
            if x.tenant_id == tenant_id and all(getattr(x, k) == v for k, v in match.items())
        ]
        return sorted(rows, key=lambda x: (x.created_at, x.id))

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FraudFinding]:
        return self._where(tenant_id, subject_id=subject_id)

    def list_for_check(self, tenant_id: str, check_id: str) -> list[FraudFinding]:
        return self._where(tenant_id, check_id=check_id)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [x.id for x in self._where(tenant_id, subject_id=subject_id)]
        for k in doomed:
            del self._t.findings[k]
        return len(doomed)


__all__ = ["MemoryBlacklistRepository", "MemoryEnrolSignalRepository", "MemoryFindingRepository"]
