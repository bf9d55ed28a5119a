"""In-memory storage: the reference implementation of :mod:`shiren.storage.ports`.

Why it exists: unit tests of the service run against it in microseconds, and the contract tests
hold SQLite and PostgreSQL to *its* behaviour, so it must enforce everything the databases do —
unique keys, same-tenant parents, conditional updates — not just store dicts.

Concurrency model: one re-entrant lock per :class:`MemoryStore`, held by a unit of work from
``__enter__`` to ``__exit__``.  Units of work are therefore serialised (like SQLite's single
writer), which makes every operation trivially atomic and isolated.  Rollback restores a
snapshot taken at the start (and after each commit); snapshots are shallow copies of the tables,
cheap because every row is an immutable dataclass.

The repositories live in modules of their own, one per group of aggregates (subjects, checks,
reviews, events, sealed columns, console, fraud), over the tables of :mod:`.memory_tables`; this
module holds the store and the unit of work that assembles them, and re-exports the repository
classes so that ``shiren.storage.memory`` stays the one import for the in-memory backend.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from shiren.storage.memory_cards import MemoryCardCaptureRepository
from shiren.storage.memory_checks import (
    MemoryCheckRepository,
    MemoryEvidenceRepository,
    MemoryLendingEventRepository,
    MemorySessionRepository,
)
from shiren.storage.memory_console import MemoryConsoleQueries, MemoryConsoleUserRepository
from shiren.storage.memory_events import MemoryAuditLog, MemoryWebhookOutbox
from shiren.storage.memory_fraud import (
    MemoryBlacklistRepository,
    MemoryEnrolSignalRepository,
    MemoryFindingRepository,
)
from shiren.storage.memory_reviews import (
    MemoryFallbackRepository,
    MemoryPayoutCheckRepository,
    MemoryReviewRepository,
)
from shiren.storage.memory_sealed import MemorySealedFields
from shiren.storage.memory_subjects import (
    MemoryConsentRepository,
    MemoryReferenceRepository,
    MemorySubjectRepository,
    MemoryTemplateRepository,
    MemoryTenantRepository,
)
from shiren.storage.memory_tables import _Tables


class MemoryStore:
    """The shared state of in-memory storage; calling it opens a unit of work (it is a
    :class:`~shiren.storage.ports.UnitOfWorkFactory`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables = _Tables()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)


class MemoryUnitOfWork:
    """A serialised transaction over a :class:`MemoryStore` (see the module docstring)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._snapshot: _Tables | None = None
        self.tenants = MemoryTenantRepository(self)
        self.subjects = MemorySubjectRepository(self)
        self.consents = MemoryConsentRepository(self)
        self.templates = MemoryTemplateRepository(self)
        self.references = MemoryReferenceRepository(self)
        self.sessions = MemorySessionRepository(self)
        self.checks = MemoryCheckRepository(self)
        self.evidence = MemoryEvidenceRepository(self)
        self.lending_events = MemoryLendingEventRepository(self)
        self.reviews = MemoryReviewRepository(self)
        self.webhooks = MemoryWebhookOutbox(self)
        self.audit = MemoryAuditLog(self)
        self.console_users = MemoryConsoleUserRepository(self)
        self.console = MemoryConsoleQueries(self)
        self.sealed = MemorySealedFields(self)
        self.fallbacks = MemoryFallbackRepository(self)
        self.payouts = MemoryPayoutCheckRepository(self)
        # anti-fraud (issue 6)
        self.blacklist = MemoryBlacklistRepository(self)
        self.enrol_signals = MemoryEnrolSignalRepository(self)
        self.findings = MemoryFindingRepository(self)
        self.card_captures = MemoryCardCaptureRepository(self)  # migration 0008

    def tables(self) -> _Tables:
        if self._snapshot is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._store.tables

    def __enter__(self) -> Self:
        if self._snapshot is not None:
            raise RuntimeError("unit of work is already open")
        self._store.lock.acquire()
        self._snapshot = self._store.tables.copy()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._snapshot = None
            self._store.lock.release()

    def commit(self) -> None:
        self._snapshot = self.tables().copy()

    def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.tables = self._snapshot.copy()


__all__ = [
    "MemoryAuditLog",
    "MemoryBlacklistRepository",
    "MemoryCheckRepository",
    "MemoryConsentRepository",
    "MemoryConsoleQueries",
    "MemoryConsoleUserRepository",
    "MemoryEnrolSignalRepository",
    "MemoryEvidenceRepository",
    "MemoryFallbackRepository",
    "MemoryFindingRepository",
    "MemoryLendingEventRepository",
    "MemoryPayoutCheckRepository",
    "MemoryReferenceRepository",
    "MemoryReviewRepository",
    "MemorySealedFields",
    "MemorySessionRepository",
    "MemoryStore",
    "MemorySubjectRepository",
    "MemoryTemplateRepository",
    "MemoryTenantRepository",
    "MemoryUnitOfWork",
    "MemoryWebhookOutbox",
]
