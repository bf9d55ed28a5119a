"""SQL repositories of a verification: sessions, checks, evidence and lending events (the
twins of :mod:`shiren.storage.memory_checks`).

A session's nonce is consumed by one ``UPDATE … WHERE status = 'open' AND nonce = :nonce``:
exactly one of any number of concurrent callers gets the row back, and only the losers read the
session again to learn why (wrong nonce, already used, expired).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from shiren.domain.entities import (
    Check,
    Decision,
    Evidence,
    LendingEvent,
    Session,
    SessionPurpose,
    SessionStatus,
    StepUpDecided,
)
from shiren.storage.errors import already_used, conflict, nonce_mismatch, not_found
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _loader, _SqlRepo, _values

_session = _loader(Session, purpose=SessionPurpose, status=SessionStatus)
_check = _loader(Check, decision=Decision, reasons=tuple)
_evidence = _loader(Evidence)
_lending_event = _loader(LendingEvent, decided=StepUpDecided)


class SqlSessionRepository(_SqlRepo):
    t = s.sessions

    def add(self, session: Session) -> None:
        self._insert(self.t, _values(session), "session")

    def get(self, tenant_id: str, session_id: str) -> Session | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == session_id)
        return self._one(stmt, _session)

    def get_by_nonce(self, tenant_id: str, nonce: str) -> Session | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.nonce == nonce)
        return self._one(stmt, _session)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Session]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _session)

    def _transition(
        self, tenant_id: str, session_id: str, *where: Any, status: SessionStatus
    ) -> Session | None:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == session_id,
                self.t.c.status == SessionStatus.OPEN.value,
                *where,
            )
            .values(status=status.value)
            .returning(*self.t.c)
        )
        return self._one(stmt, _session)

    def mark_used(self, tenant_id: str, session_id: str, nonce: str) -> Session:
        new = self._transition(
            tenant_id, session_id, self.t.c.nonce == nonce, status=SessionStatus.USED
        )
        if new is not None:
            return new
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.nonce != nonce:
            raise nonce_mismatch()
        if current.status is SessionStatus.USED:
            raise already_used()
        raise conflict("session", str(SessionStatus.OPEN), str(current.status))

    def expire(self, tenant_id: str, session_id: str) -> Session:
        new = self._transition(tenant_id, session_id, status=SessionStatus.EXPIRED)
        if new is not None:
            return new
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        raise conflict("session", str(SessionStatus.OPEN), str(current.status))

    def mark_challenge_sent(self, tenant_id: str, session_id: str, at: datetime) -> Session:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == session_id,
                self.t.c.challenge_sent_at.is_(None),
            )
            .values(challenge_sent_at=at)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _session) or self.get(tenant_id, session_id)
        if new is None:
            raise not_found("session")
        return new

    def expire_due(self, now: datetime, *, tenant_id: str | None = None) -> int:
        stmt = (
            update(self.t)
            .where(self.t.c.status == SessionStatus.OPEN.value, self.t.c.expires_at < now)
            .values(status=SessionStatus.EXPIRED.value)
        )
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)


class SqlCheckRepository(_SqlRepo):
    t = s.checks

    def add(self, check: Check) -> None:
        self._insert(self.t, _values(check, reasons=list(check.reasons)), "check")

    def get(self, tenant_id: str, check_id: str) -> Check | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == check_id)
        return self._one(stmt, _check)

    def _list(self, tenant_id: str, column: str, value: str) -> list[Check]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c[column] == value)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _check)

    def list_for_session(self, tenant_id: str, session_id: str) -> list[Check]:
        return self._list(tenant_id, "session_id", session_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Check]:
        return self._list(tenant_id, "subject_id", subject_id)


class SqlEvidenceRepository(_SqlRepo):
    t = s.evidence

    def add(self, evidence: Evidence) -> None:
        self._insert(self.t, _values(evidence), "evidence")

    def get(self, tenant_id: str, evidence_id: str) -> Evidence | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == evidence_id)
        return self._one(stmt, _evidence)

    def list_for_check(self, tenant_id: str, check_id: str) -> list[Evidence]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.check_id == check_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _evidence)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = (
            select(s.checks.c.id)
            .where(s.checks.c.tenant_id == tenant_id, s.checks.c.subject_id == subject_id)
            .scalar_subquery()
        )
        stmt = delete(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.check_id.in_(checks))
        return self._rowcount(stmt)

    def delete_for_check(self, tenant_id: str, check_id: str) -> int:
        stmt = delete(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.check_id == check_id)
        return self._rowcount(stmt)

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        stmt = delete(self.t).where(self.t.c.expires_at < now)
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)


class SqlLendingEventRepository(_SqlRepo):
    t = s.lending_events

    def add(self, event: LendingEvent) -> None:
        self._insert(self.t, _values(event), "lending event")

    def get(self, tenant_id: str, event_id: str) -> LendingEvent | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == event_id)
        return self._one(stmt, _lending_event)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[LendingEvent]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _lending_event)


__all__ = [
    "SqlCheckRepository",
    "SqlEvidenceRepository",
    "SqlLendingEventRepository",
    "SqlSessionRepository",
]
