"""The tables of in-memory storage and the base every in-memory repository builds on.

Why a module of its own: the repositories are split by aggregate (:mod:`.memory_subjects`,
:mod:`.memory_checks`, :mod:`.memory_reviews`, :mod:`.memory_events`, :mod:`.memory_sealed`,
:mod:`.memory_console`, :mod:`.memory_fraud`) and the unit of work in :mod:`.memory` assembles
them; all of them need the tables and the same-tenant helpers, so those sit here, below every
one of them, and a repository only needs "something that hands out the tables"
(:class:`_HasTables`), never the unit of work itself — which keeps the package free of cycles.

Every row is an immutable dataclass keyed by id, so a snapshot of the tables (for rollback) is a
shallow copy of each dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from shiren.domain.card_capture import CardCapture
from shiren.domain.console import ConsoleUser
from shiren.domain.entities import (
    AuditEvent,
    Check,
    Consent,
    Evidence,
    LendingEvent,
    Reference,
    ReviewItem,
    Session,
    Subject,
    Template,
    Tenant,
    WebhookDelivery,
)
from shiren.domain.fallback import FallbackFlow, PayoutCheck
from shiren.domain.fraud import BlacklistEntry, EnrolSignal, FraudFinding
from shiren.storage.errors import not_found


class _TenantRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...


R = TypeVar("R", bound=_TenantRow)


@dataclass(slots=True)
class _Tables:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    subjects: dict[str, Subject] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    references: dict[str, Reference] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    lending_events: dict[str, LendingEvent] = field(default_factory=dict)
    reviews: dict[str, ReviewItem] = field(default_factory=dict)
    webhooks: dict[str, WebhookDelivery] = field(default_factory=dict)
    audit: dict[tuple[str, int], AuditEvent] = field(default_factory=dict)
    console_users: dict[str, ConsoleUser] = field(default_factory=dict)
    fallbacks: dict[str, FallbackFlow] = field(default_factory=dict)  # migration 0006
    payouts: dict[str, PayoutCheck] = field(default_factory=dict)
    # anti-fraud (issue 6): see shiren.storage.memory_fraud
    blacklist: dict[str, BlacklistEntry] = field(default_factory=dict)
    enrol_signals: dict[str, EnrolSignal] = field(default_factory=dict)
    findings: dict[str, FraudFinding] = field(default_factory=dict)
    card_captures: dict[str, CardCapture] = field(default_factory=dict)  # migration 0008

    def copy(self) -> _Tables:
        return _Tables(
            tenants=dict(self.tenants),
            subjects=dict(self.subjects),
            consents=dict(self.consents),
            templates=dict(self.templates),
            references=dict(self.references),
            sessions=dict(self.sessions),
            checks=dict(self.checks),
            evidence=dict(self.evidence),
            lending_events=dict(self.lending_events),
            reviews=dict(self.reviews),
            webhooks=dict(self.webhooks),
            audit=dict(self.audit),
            console_users=dict(self.console_users),
            fallbacks=dict(self.fallbacks),
            payouts=dict(self.payouts),
            blacklist=dict(self.blacklist),
            enrol_signals=dict(self.enrol_signals),
            findings=dict(self.findings),
            card_captures=dict(self.card_captures),
        )


class _HasTables(Protocol):
    """What a repository is given: the unit of work, seen only as the keeper of the tables."""

    def tables(self) -> _Tables: ...


class _Repo:
    def __init__(self, uow: _HasTables) -> None:
        self._uow = uow

    @property
    def _t(self) -> _Tables:
        return self._uow.tables()

    def _parent(self, table: dict[str, R], tenant_id: str, row_id: str, what: str) -> R:
        """The parent row in the same tenant; the in-memory twin of a composite foreign key."""
        if tenant_id not in self._t.tenants:
            raise not_found("tenant")
        row = table.get(row_id)
        if row is None or row.tenant_id != tenant_id:
            raise not_found(what)
        return row


def _scoped(table: dict[str, R], tenant_id: str, row_id: str) -> R | None:
    row = table.get(row_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def _sorted(rows: Iterable[R], key: Callable[[R], tuple[datetime, str]]) -> list[R]:
    return sorted(rows, key=key)


def _by_created(row: Template | Reference | Session | Check | LendingEvent) -> tuple[datetime, str]:
    return (row.created_at, row.id)
