"""The SQL unit of work: one connection, one transaction, every repository.

It sits at the top of :mod:`shiren.storage.sql`: it imports every repository module, and none of
them imports it back (a repository sees the unit of work only through
:class:`~shiren.storage.sql.base._HasConnection`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from shiren.storage.sql.base import unavailable
from shiren.storage.sql.cards import SqlCardCaptureRepository
from shiren.storage.sql.checks import (
    SqlCheckRepository,
    SqlEvidenceRepository,
    SqlLendingEventRepository,
    SqlSessionRepository,
)
from shiren.storage.sql.console import SqlConsoleQueries, SqlConsoleUserRepository
from shiren.storage.sql.events import SqlAuditLog, SqlWebhookOutbox
from shiren.storage.sql.fraud_repositories import (
    SqlBlacklistRepository,
    SqlEnrolSignalRepository,
    SqlFindingRepository,
)
from shiren.storage.sql.reviews import (
    SqlFallbackRepository,
    SqlPayoutCheckRepository,
    SqlReviewRepository,
)
from shiren.storage.sql.sealed import SqlSealedFields
from shiren.storage.sql.subjects import (
    SqlConsentRepository,
    SqlReferenceRepository,
    SqlSubjectRepository,
    SqlTemplateRepository,
    SqlTenantRepository,
)


class SqlUnitOfWork:
    """A transaction on one pooled connection.

    The transaction begins lazily at the first statement ("commit as you go"), so a unit of work
    that only decides it has nothing to do never takes SQLite's writer lock; :meth:`commit` ends
    it and the next statement begins a new one.  Leaving the ``with`` block rolls back whatever
    was not committed and returns the connection to the pool.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self.tenants = SqlTenantRepository(self)
        self.subjects = SqlSubjectRepository(self)
        self.consents = SqlConsentRepository(self)
        self.templates = SqlTemplateRepository(self)
        self.references = SqlReferenceRepository(self)
        self.sessions = SqlSessionRepository(self)
        self.checks = SqlCheckRepository(self)
        self.evidence = SqlEvidenceRepository(self)
        self.lending_events = SqlLendingEventRepository(self)
        self.reviews = SqlReviewRepository(self)
        self.webhooks = SqlWebhookOutbox(self)
        self.audit = SqlAuditLog(self)
        self.console_users = SqlConsoleUserRepository(self)
        self.console = SqlConsoleQueries(self)
        self.sealed = SqlSealedFields(self)
        self.fallbacks = SqlFallbackRepository(self)
        self.payouts = SqlPayoutCheckRepository(self)
        # anti-fraud (issue 6)
        self.blacklist = SqlBlacklistRepository(self)
        self.enrol_signals = SqlEnrolSignalRepository(self)
        self.findings = SqlFindingRepository(self)
        self.card_captures = SqlCardCaptureRepository(self)  # migration 0008

    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._conn

    def __enter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("unit of work is already open")
        try:
            self._conn = self._engine.connect()
        except OperationalError as exc:
            raise unavailable(exc) from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.rollback()
            finally:
                conn.close()

    def commit(self) -> None:
        try:
            self.connection().commit()
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def rollback(self) -> None:
        self.connection().rollback()


class SqlStore:
    """A :class:`~shiren.storage.ports.UnitOfWorkFactory` over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def dispose(self) -> None:
        """Close pooled connections (tests, shutdown)."""
        self.engine.dispose()


__all__ = ["SqlStore", "SqlUnitOfWork"]
