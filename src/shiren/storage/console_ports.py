"""Repository Protocols of the review console (migration 0004): its staff users and its
read-only dashboard queries.

Kept apart from the service's aggregates because the console is a separate audience (staff, not
API clients) with its own rules: sign-in is the one user lookup that cannot be tenant-scoped,
and the dashboard's aggregates are computed by the database rather than by pulling rows into
Python.  Same rules as every port (:mod:`shiren.storage.ports`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from shiren.domain.console import ConsoleRole, ConsoleUser, ConsoleUserStatus, DailyCount
from shiren.domain.entities import AuditEvent, Subject


class ConsoleUserRepository(Protocol):
    """Staff users of the review console (migration 0004)."""

    def add(self, user: ConsoleUser) -> None:
        """``record.duplicate`` when the username exists (in any tenant)."""
        ...

    def get(self, tenant_id: str, user_id: str) -> ConsoleUser | None: ...
    def get_by_username(self, username: str) -> ConsoleUser | None:
        """Sign-in lookup: like the API-key lookup, the one user read that cannot be
        tenant-scoped (the form has no tenant field)."""
        ...

    def list_for_tenant(self, tenant_id: str) -> list[ConsoleUser]:
        """The tenant's users, ordered by ``username``."""
        ...

    def record_failure(
        self, tenant_id: str, user_id: str, *, at: datetime, max_failures: int, lock_for: timedelta
    ) -> ConsoleUser:
        """One more failed sign-in; at ``max_failures`` consecutive failures the user is locked
        until ``at + lock_for`` and the counter restarts.  Atomic per row."""
        ...

    def record_success(self, tenant_id: str, user_id: str, at: datetime) -> ConsoleUser:
        """Reset the failure counter and lock, set ``last_login_at``."""
        ...

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
        """Change the given fields (``None``: unchanged); ``record.not_found`` otherwise."""
        ...


class ConsoleQueries(Protocol):
    """Read-only, tenant-scoped queries of the console: dashboard aggregates (computed by the
    database, ``GROUP BY`` UTC day), subject search and a subject's audit events."""

    def daily_decisions(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        """Checks with ``since <= created_at < until`` counted per UTC day and decision."""
        ...

    def daily_reasons(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        """Reason codes of those checks counted per UTC day and code (a check with two reasons
        counts once under each)."""
        ...

    def find_subjects(self, tenant_id: str, ref_prefix: str, *, limit: int = 50) -> list[Subject]:
        """Subjects whose ``external_ref`` starts with ``ref_prefix`` (literally: ``%`` and
        ``_`` are not wildcards), ordered by ``external_ref``."""
        ...

    def audit_for_subject(
        self, tenant_id: str, subject_id: str, *, limit: int = 200
    ) -> list[AuditEvent]:
        """The subject's audit events in ``seq`` order."""
        ...

    def audit_at(
        self, tenant_id: str, subject_id: str, kind: str, at: datetime
    ) -> list[AuditEvent]:
        """The subject's events of ``kind`` written at exactly ``at`` (a check's own line:
        ``check.decided`` shares the check's ``created_at``), in ``seq`` order."""
        ...


__all__ = ["ConsoleQueries", "ConsoleUserRepository"]
