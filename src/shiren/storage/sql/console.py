"""SQL repositories of the review console: staff users and the dashboard's aggregates.

The aggregates run in the database (``GROUP BY`` UTC day): a dashboard over a month of checks
must not pull every row into Python.  The two backends spell "the UTC day of a timestamp" and
"the elements of a JSON array" differently, so those two expressions are chosen per dialect;
everything else is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, func, select, true, update
from sqlalchemy.sql.functions import count

from shiren.domain.console import (
    ConsoleRole,
    ConsoleUser,
    ConsoleUserStatus,
    DailyCount,
)
from shiren.domain.entities import AuditEvent, Subject
from shiren.storage.errors import not_found
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _loader, _SqlRepo, _values
from shiren.storage.sql.events import _audit
from shiren.storage.sql.subjects import _subject

_user = _loader(ConsoleUser, role=ConsoleRole, status=ConsoleUserStatus)


class SqlConsoleUserRepository(_SqlRepo):
    t = s.console_users

    def add(self, user: ConsoleUser) -> None:
        self._insert(self.t, _values(user), "console user")

    def get(self, tenant_id: str, user_id: str) -> ConsoleUser | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == user_id)
        return self._one(stmt, _user)

    def get_by_username(self, username: str) -> ConsoleUser | None:
        return self._one(select(self.t).where(self.t.c.username == username), _user)

    def list_for_tenant(self, tenant_id: str) -> list[ConsoleUser]:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id).order_by(self.t.c.username)
        return self._all(stmt, _user)

    def _update(self, tenant_id: str, user_id: str, **values: Any) -> ConsoleUser:
        stmt = (
            update(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.id == user_id)
            .values(**values)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _user)
        if new is None:
            raise not_found("console user")
        return new

    def record_failure(
        self, tenant_id: str, user_id: str, *, at: datetime, max_failures: int, lock_for: timedelta
    ) -> ConsoleUser:
        # The increment is one UPDATE: its row lock (held to commit) serialises concurrent
        # failures, so N wrong passwords at once count N (no lost read-modify-write update).
        new = self._update(tenant_id, user_id, failed_logins=self.t.c.failed_logins + 1)
        if new.failed_logins < max_failures:
            return new
        return self._update(tenant_id, user_id, failed_logins=0, locked_until=at + lock_for)

    def record_success(self, tenant_id: str, user_id: str, at: datetime) -> ConsoleUser:
        return self._update(
            tenant_id, user_id, failed_logins=0, locked_until=None, last_login_at=at
        )

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
        values: dict[str, Any] = {
            "role": None if role is None else role.value,
            "status": None if status is None else status.value,
            "password_hash": password_hash,
            "sessions_valid_after": sessions_valid_after,
        }
        changed = {k: v for k, v in values.items() if v is not None}
        if password_hash is not None:  # a new password also lifts a lock-out
            changed.update(failed_logins=0, locked_until=None)
        if not changed:
            current = self.get(tenant_id, user_id)
            if current is None:
                raise not_found("console user")
            return current
        return self._update(tenant_id, user_id, **changed)


def _cells(rows: Sequence[Any]) -> list[DailyCount]:
    return [DailyCount(str(day), str(key), int(n)) for day, key, n in rows]


class SqlConsoleQueries(_SqlRepo):
    def _day(self, column: Any) -> ColumnElement[str]:
        if self._uow.connection().dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD", type_=String)
        return func.substr(column, 1, 10, type_=String)  # SQLite stores naive UTC text

    def _reasons(self) -> Any:
        col = s.checks.c.reasons
        if self._uow.connection().dialect.name == "postgresql":
            return func.json_array_elements_text(col).table_valued("value").alias("reason")
        return func.json_each(col).table_valued("value").alias("reason")

    def _range(self, tenant_id: str, since: datetime, until: datetime) -> list[Any]:
        c = s.checks.c
        return [c.tenant_id == tenant_id, c.created_at >= since, c.created_at < until]

    def daily_decisions(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        day = self._day(s.checks.c.created_at).label("day")
        stmt = (
            select(day, s.checks.c.decision, count())
            .where(*self._range(tenant_id, since, until))
            .group_by(day, s.checks.c.decision)
            .order_by(day, s.checks.c.decision)
        )
        return _cells(self._exec(stmt).all())

    def daily_reasons(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        day = self._day(s.checks.c.created_at).label("day")
        reason = self._reasons()
        code = reason.c.value
        stmt = (
            select(day, code, count())
            .select_from(s.checks.join(reason, true()))
            .where(*self._range(tenant_id, since, until))
            .group_by(day, code)
            .order_by(day, code)
        )
        return _cells(self._exec(stmt).all())

    def find_subjects(self, tenant_id: str, ref_prefix: str, *, limit: int = 50) -> list[Subject]:
        ref = s.subjects.c.external_ref
        # substr = prefix rather than LIKE: LIKE is case-insensitive on SQLite and would treat
        # % and _ in a reference as wildcards; this is exact and case-sensitive everywhere.
        stmt = (
            select(s.subjects)
            .where(
                s.subjects.c.tenant_id == tenant_id,
                func.substr(ref, 1, len(ref_prefix)) == ref_prefix,
            )
            .order_by(ref)
            .limit(limit)
        )
        return self._all(stmt, _subject)

    def audit_for_subject(
        self, tenant_id: str, subject_id: str, *, limit: int = 200
    ) -> list[AuditEvent]:
        t = s.audit_events
        stmt = (
            select(t)
            .where(t.c.tenant_id == tenant_id, t.c.subject_id == subject_id)
            .order_by(t.c.seq)
            .limit(limit)
        )
        return self._all(stmt, _audit)

    def audit_at(
        self, tenant_id: str, subject_id: str, kind: str, at: datetime
    ) -> list[AuditEvent]:
        t = s.audit_events
        stmt = (
            select(t)
            .where(
                t.c.tenant_id == tenant_id,
                t.c.subject_id == subject_id,
                t.c.kind == kind,
                t.c.created_at == at,
            )
            .order_by(t.c.seq)
        )
        return self._all(stmt, _audit)


__all__ = ["SqlConsoleQueries", "SqlConsoleUserRepository"]
