"""SQL anti-fraud repositories (issue 6): the twins of :mod:`shiren.storage.memory_fraud`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select

from shiren.domain.fraud import BlacklistEntry, EnrolSignal, FraudFinding
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _loader, _SqlRepo, _values

_entry = _loader(BlacklistEntry)
_signal = _loader(EnrolSignal)
_finding = _loader(FraudFinding)


class SqlBlacklistRepository(_SqlRepo):
    t = s.blacklist_entries

    def add(self, entry: BlacklistEntry) -> None:
        self._insert(self.t, _values(entry), "blacklist entry")

    def get(self, tenant_id: str, entry_id: str) -> BlacklistEntry | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == entry_id)
        return self._one(stmt, _entry)

    def list(
        self, tenant_id: str, list_name: str | None = None, *, limit: int = 100
    ) -> list[BlacklistEntry]:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id)
        if list_name is not None:
            stmt = stmt.where(self.t.c.list_name == list_name)
        stmt = stmt.order_by(self.t.c.created_at.desc(), self.t.c.id.desc()).limit(max(0, limit))
        return self._all(stmt, _entry)

    def delete(self, tenant_id: str, entry_id: str) -> bool:
        stmt = delete(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == entry_id)
        return self._rowcount(stmt) > 0

    def count(self, tenant_id: str) -> int:
        stmt = select(func.count()).select_from(self.t).where(self.t.c.tenant_id == tenant_id)
        return int(self._exec(stmt).scalar_one())

    def ids(self, tenant_id: str) -> set[str]:
        stmt = select(self.t.c.id).where(self.t.c.tenant_id == tenant_id)
        return set(self._exec(stmt).scalars().all())


class SqlEnrolSignalRepository(_SqlRepo):
    t = s.enrol_signals

    def add(self, signal: EnrolSignal) -> None:
        self._insert(self.t, _values(signal), "enrolment signal")

    def subjects_for_device(self, tenant_id: str, device_hash: str, since: datetime) -> list[str]:
        stmt = (
            select(self.t.c.subject_id)
            .distinct()
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.device_hash == device_hash,
                self.t.c.created_at >= since,
            )
            .order_by(self.t.c.subject_id)
        )
        return [str(x) for x in self._exec(stmt).scalars().all()]

    def recent(self, tenant_id: str, since: datetime, *, limit: int) -> list[EnrolSignal]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.created_at >= since)
            .order_by(self.t.c.created_at.desc(), self.t.c.id.desc())
            .limit(max(0, limit))
        )
        return self._all(stmt, _signal)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        stmt = delete(self.t).where(
            self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id
        )
        return self._rowcount(stmt)


class SqlFindingRepository(_SqlRepo):
    t = s.fraud_findings

    def add(self, finding: FraudFinding) -> None:
        self._insert(self.t, _values(finding), "fraud finding")

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FraudFinding]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _finding)

    def list_for_check(self, tenant_id: str, check_id: str) -> list[FraudFinding]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.check_id == check_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _finding)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        stmt = delete(self.t).where(
            self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id
        )
        return self._rowcount(stmt)


__all__ = ["SqlBlacklistRepository", "SqlEnrolSignalRepository", "SqlFindingRepository"]
