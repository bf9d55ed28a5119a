"""Repository Protocols of a verification: the session, its checks, their evidence, and the
lending events a step-up check answers.

A session is a one-time challenge (its nonce is consumed exactly once); a check is the decision
taken on it, evidence the sealed images kept for a while to justify that decision.  What follows
when a check cannot decide alone (manual review, the non-face fallback) lives in
:mod:`shiren.storage.review_ports`.  Same rules as every port (:mod:`shiren.storage.ports`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shiren.domain.entities import Check, Evidence, LendingEvent, Session


class SessionRepository(Protocol):
    def add(self, session: Session) -> None:
        """``record.duplicate`` when the nonce was ever used before (by any tenant)."""
        ...

    def get(self, tenant_id: str, session_id: str) -> Session | None: ...
    def get_by_nonce(self, tenant_id: str, nonce: str) -> Session | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Session]: ...
    def mark_used(self, tenant_id: str, session_id: str, nonce: str) -> Session:
        """Consume the session's nonce: succeeds exactly once among any number of concurrent
        callers.  ``session.already_used`` for the losers and every later call;
        ``input.challenge_invalid`` when ``nonce`` is not the session's; ``record.conflict``
        when the session is expired.  Whether it *should* have expired is the service's call."""
        ...

    def expire(self, tenant_id: str, session_id: str) -> Session:
        """``open`` → ``expired`` (``record.conflict`` from any other status)."""
        ...

    def mark_challenge_sent(self, tenant_id: str, session_id: str, at: datetime) -> Session:
        """Record ``at`` as ``challenge_sent_at`` if none is recorded yet (the first of any
        number of concurrent callers wins; later calls change nothing) and return the session
        as stored.  ``record.not_found`` for a missing session.  The status is not checked:
        the service calls it only while the session is open."""
        ...

    def expire_due(self, now: datetime, *, tenant_id: str | None = None) -> int:
        """Sweep (all tenants, or ``tenant_id`` only): mark ``open`` sessions with
        ``expires_at < now`` expired."""
        ...


class CheckRepository(Protocol):
    def add(self, check: Check) -> None: ...
    def get(self, tenant_id: str, check_id: str) -> Check | None: ...
    def list_for_session(self, tenant_id: str, session_id: str) -> list[Check]: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Check]: ...


class EvidenceRepository(Protocol):
    def add(self, evidence: Evidence) -> None: ...
    def get(self, tenant_id: str, evidence_id: str) -> Evidence | None: ...
    def list_for_check(self, tenant_id: str, check_id: str) -> list[Evidence]: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        """Delete the evidence of every check of the subject."""
        ...

    def delete_for_check(self, tenant_id: str, check_id: str) -> int:
        """Delete the evidence of one check (its review was decided); how many rows."""
        ...

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        """Retention sweep (all tenants, or ``tenant_id`` only): delete evidence whose
        ``expires_at < now``."""
        ...


class LendingEventRepository(Protocol):
    def add(self, event: LendingEvent) -> None: ...
    def get(self, tenant_id: str, event_id: str) -> LendingEvent | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[LendingEvent]: ...


__all__ = ["CheckRepository", "EvidenceRepository", "LendingEventRepository", "SessionRepository"]
