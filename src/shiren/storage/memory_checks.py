"""In-memory repositories of a verification: sessions, checks, evidence and lending events (the
ports in :mod:`shiren.storage.check_ports`).

The one subtle rule is the session nonce: unique across every tenant and consumed exactly once
(``session.already_used`` for every later attempt); the serialised unit of work makes that
trivially atomic here, where SQL needs a conditional ``UPDATE``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shiren.domain.entities import Check, Evidence, LendingEvent, Session, SessionStatus
from shiren.storage.errors import already_used, conflict, duplicate, nonce_mismatch, not_found
from shiren.storage.memory_tables import _by_created, _Repo, _scoped, _sorted


class MemorySessionRepository(_Repo):
    def add(self, session: Session) -> None:
        self._parent(self._t.subjects, session.tenant_id, session.subject_id, "subject")
        if session.id in self._t.sessions:
            raise duplicate("session")
        if any(x.nonce == session.nonce for x in self._t.sessions.values()):
            raise duplicate("session nonce")
        self._t.sessions[session.id] = session

    def get(self, tenant_id: str, session_id: str) -> Session | None:
        return _scoped(self._t.sessions, tenant_id, session_id)

    def get_by_nonce(self, tenant_id: str, nonce: str) -> Session | None:
        return next(
            (x for x in self._t.sessions.values() if x.tenant_id == tenant_id and x.nonce == nonce),
            None,
        )

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Session]:
        rows = (
            x
            for x in self._t.sessions.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)

    def mark_used(self, tenant_id: str, session_id: str, nonce: str) -> Session:
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.nonce != nonce:
            raise nonce_mismatch()
        if current.status is SessionStatus.USED:
            raise already_used()
        if current.status is not SessionStatus.OPEN:
            raise conflict("session", str(SessionStatus.OPEN), str(current.status))
        new = replace(current, status=SessionStatus.USED)
        self._t.sessions[session_id] = new
        return new

    def expire(self, tenant_id: str, session_id: str) -> Session:
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.status is not SessionStatus.OPEN:
            raise conflict("session", str(SessionStatus.OPEN), str(current.status))
        new = replace(current, status=SessionStatus.EXPIRED)
        self._t.sessions[session_id] = new
        return new

    def mark_challenge_sent(self, tenant_id: str, session_id: str, at: datetime) -> Session:
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.challenge_sent_at is not None:
            return current
        new = replace(current, challenge_sent_at=at)
        self._t.sessions[session_id] = new
        return new

    def expire_due(self, now: datetime, *, tenant_id: str | None = None) -> int:
        due = [
            x
            for x in self._t.sessions.values()
            if x.status is SessionStatus.OPEN
            and x.expires_at < now
            and (tenant_id is None or x.tenant_id == tenant_id)
        ]
        for x in due:
            self._t.sessions[x.id] = replace(x, status=SessionStatus.EXPIRED)
        return len(due)


class MemoryCheckRepository(_Repo):
    def add(self, check: Check) -> None:
        self._parent(self._t.sessions, check.tenant_id, check.session_id, "session")
        self._parent(self._t.subjects, check.tenant_id, check.subject_id, "subject")
        if check.id in self._t.checks:
            raise duplicate("check")
        self._t.checks[check.id] = check

    def get(self, tenant_id: str, check_id: str) -> Check | None:
        return _scoped(self._t.checks, tenant_id, check_id)

    def list_for_session(self, tenant_id: str, session_id: str) -> list[Check]:
        rows = (
            x
            for x in self._t.checks.values()
            if x.tenant_id == tenant_id and x.session_id == session_id
        )
        return _sorted(rows, _by_created)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Check]:
        rows = (
            x
            for x in self._t.checks.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)


class MemoryEvidenceRepository(_Repo):
    def add(self, evidence: Evidence) -> None:
        self._parent(self._t.checks, evidence.tenant_id, evidence.check_id, "check")
        if evidence.id in self._t.evidence:
            raise duplicate("evidence")
        self._t.evidence[evidence.id] = evidence

    def get(self, tenant_id: str, evidence_id: str) -> Evidence | None:
        return _scoped(self._t.evidence, tenant_id, evidence_id)

    def list_for_check(self, tenant_id: str, check_id: str) -> list[Evidence]:
        rows = (
            x
            for x in self._t.evidence.values()
            if x.tenant_id == tenant_id and x.check_id == check_id
        )
        return sorted(rows, key=lambda x: (x.created_at, x.id))

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = {
            c.id
            for c in self._t.checks.values()
            if c.tenant_id == tenant_id and c.subject_id == subject_id
        }
        doomed = [
            x.id
            for x in self._t.evidence.values()
            if x.tenant_id == tenant_id and x.check_id in checks
        ]
        for evidence_id in doomed:
            del self._t.evidence[evidence_id]
        return len(doomed)

    def delete_for_check(self, tenant_id: str, check_id: str) -> int:
        doomed = [
            x.id
            for x in self._t.evidence.values()
            if x.tenant_id == tenant_id and x.check_id == check_id
        ]
        for evidence_id in doomed:
            del self._t.evidence[evidence_id]
        return len(doomed)

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        doomed = [
            x.id
            for x in self._t.evidence.values()
            if x.expires_at < now and (tenant_id is None or x.tenant_id == tenant_id)
        ]
        for evidence_id in doomed:
            del self._t.evidence[evidence_id]
        return len(doomed)


class MemoryLendingEventRepository(_Repo):
    def add(self, event: LendingEvent) -> None:
        self._parent(self._t.subjects, event.tenant_id, event.subject_id, "subject")
        if event.id in self._t.lending_events:
            raise duplicate("lending event")
        self._t.lending_events[event.id] = event

    def get(self, tenant_id: str, event_id: str) -> LendingEvent | None:
        return _scoped(self._t.lending_events, tenant_id, event_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[LendingEvent]:
        rows = (
            x
            for x in self._t.lending_events.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)


__all__ = [
    "MemoryCheckRepository",
    "MemoryEvidenceRepository",
    "MemoryLendingEventRepository",
    "MemorySessionRepository",
]
