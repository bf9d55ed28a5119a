"""In-memory twins of :mod:`shiren.storage.sql.console` (the contract's reference behaviour).

Kept apart from :mod:`shiren.storage.memory` so that module stays about the service's core
aggregates; the classes here work on the same tables through the unit of work they are given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from shiren.domain.console import ConsoleRole, ConsoleUser, ConsoleUserStatus, DailyCount
from shiren.domain.entities import AuditEvent, Check, Subject, Tenant
from shiren.storage.errors import duplicate, not_found

if TYPE_CHECKING:
    from collections.abc import Iterable


class _ConsoleTables(Protocol):
    @property
    def tenants(self) -> dict[str, Tenant]: ...
    @property
    def subjects(self) -> dict[str, Subject]: ...
    @property
    def checks(self) -> dict[str, Check]: ...
    @property
    def audit(self) -> dict[tuple[str, int], AuditEvent]: ...
    @property
    def console_users(self) -> dict[str, ConsoleUser]: ...


class _HasTables(Protocol):
    def tables(self) -> _ConsoleTables: ...


class MemoryConsoleUserRepository:
    def __init__(self, uow: _HasTables) -> None:
        self._uow = uow

    @property
    def _users(self) -> dict[str, ConsoleUser]:
        return self._uow.tables().console_users

    def add(self, user: ConsoleUser) -> None:
        if user.tenant_id not in self._uow.tables().tenants:
            raise not_found("parent of console user")
        if user.id in self._users or any(u.username == user.username for u in self._users.values()):
            raise duplicate("console user")
        self._users[user.id] = user

    def get(self, tenant_id: str, user_id: str) -> ConsoleUser | None:
        user = self._users.get(user_id)
        return user if user is not None and user.tenant_id == tenant_id else None

    def get_by_username(self, username: str) -> ConsoleUser | None:
        return next((u for u in self._users.values() if u.username == username), None)

    def list_for_tenant(self, tenant_id: str) -> list[ConsoleUser]:
        rows = (u for u in self._users.values() if u.tenant_id == tenant_id)
        return sorted(rows, key=lambda u: u.username)

    def _require(self, tenant_id: str, user_id: str) -> ConsoleUser:
        user = self.get(tenant_id, user_id)
        if user is None:
            raise not_found("console user")
        return user

    def _put(self, user: ConsoleUser) -> ConsoleUser:
        self._users[user.id] = user
        return user

    def record_failure(
        self, tenant_id: str, user_id: str, *, at: datetime, max_failures: int, lock_for: timedelta
    ) -> ConsoleUser:
        user = self._require(tenant_id, user_id)
        failures = user.failed_logins + 1
        if failures < max_failures:
            return self._put(replace(user, failed_logins=failures))
        return self._put(replace(user, failed_logins=0, locked_until=at + lock_for))

    def record_success(self, tenant_id: str, user_id: str, at: datetime) -> ConsoleUser:
        user = self._require(tenant_id, user_id)
        return self._put(replace(user, failed_logins=0, locked_until=None, last_login_at=at))

    def update(
        self,
        tenant_id: str,
        user_id: str,
        *,
        role: ConsoleRole | None = None,
        status: ConsoleUserStatus | None = None,
        password_hash: str | None = None,
        sessions_valid_after: datetime | None = None,
    ) -> ConsoleUser:
        user = self._require(tenant_id, user_id)
        if role is not None:
            user = replace(user, role=role)
        if status is not None:
            user = replace(user, status=status)
        if password_hash is not None:
            user = replace(user, password_hash=password_hash, failed_logins=0, locked_until=None)
        if sessions_valid_after is not None:
            user = replace(user, sessions_valid_after=sessions_valid_after)
        return self._put(user)


class MemoryConsoleQueries:
    def __init__(self, uow: _HasTables) -> None:
        self._uow = uow

    def _checks(self, tenant_id: str, since: datetime, until: datetime) -> Iterable[Check]:
        return (
            c
            for c in self._uow.tables().checks.values()
            if c.tenant_id == tenant_id and since <= c.created_at < until
        )

    @staticmethod
    def _cells(counter: Counter[tuple[str, str]]) -> list[DailyCount]:
        return [DailyCount(day, key, n) for (day, key), n in sorted(counter.items())]

    def daily_decisions(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        counter = Counter(
            (c.created_at.date().isoformat(), c.decision.value)
            for c in self._checks(tenant_id, since, until)
        )
        return self._cells(counter)

    def daily_reasons(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        counter = Counter(
            (c.created_at.date().isoformat(), reason)
            for c in self._checks(tenant_id, since, until)
            for reason in c.reasons
        )
        return self._cells(counter)

    def find_subjects(self, tenant_id: str, ref_prefix: str, *, limit: int = 50) -> list[Subject]:
        rows = (
            x
            for x in self._uow.tables().subjects.values()
            if x.tenant_id == tenant_id and x.external_ref.startswith(ref_prefix)
        )
        return sorted(rows, key=lambda x: x.external_ref)[:limit]

    def audit_for_subject(
        self, tenant_id: str, subject_id: str, *, limit: int = 200
    ) -> list[AuditEvent]:
        rows = (
            e
            for (tid, _), e in self._uow.tables().audit.items()
            if tid == tenant_id and e.subject_id == subject_id
        )
        return sorted(rows, key=lambda e: e.seq)[:limit]

    def audit_at(
        self, tenant_id: str, subject_id: str, kind: str, at: datetime
    ) -> list[AuditEvent]:
        rows = (
            e
            for (tid, _), e in self._uow.tables().audit.items()
            if tid == tenant_id
            and e.subject_id == subject_id
            and e.kind == kind
            and e.created_at == at
        )
        return sorted(rows, key=lambda e: e.seq)


__all__ = ["MemoryConsoleQueries", "MemoryConsoleUserRepository"]
