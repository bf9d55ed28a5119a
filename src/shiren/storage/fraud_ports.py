"""Repository Protocols of the anti-fraud tables (issue 6; migration 0005).  Same rules as
:mod:`shiren.storage.ports`: tenant-scoped, typed errors, ciphertext only."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shiren.domain.fraud import BlacklistEntry, EnrolSignal, FraudFinding


class BlacklistRepository(Protocol):
    def add(self, entry: BlacklistEntry) -> None: ...
    def get(self, tenant_id: str, entry_id: str) -> BlacklistEntry | None: ...
    def list(
        self, tenant_id: str, list_name: str | None = None, *, limit: int = 100
    ) -> list[BlacklistEntry]:
        """Newest first; every list when ``list_name`` is ``None``."""
        ...

    def delete(self, tenant_id: str, entry_id: str) -> bool: ...
    def count(self, tenant_id: str) -> int: ...
    def ids(self, tenant_id: str) -> set[str]:
        """Every entry id of the tenant (the blacklist index is compared with it)."""
        ...


class EnrolSignalRepository(Protocol):
    def add(self, signal: EnrolSignal) -> None:
        """``record.not_found`` when the subject is missing."""
        ...

    def subjects_for_device(self, tenant_id: str, device_hash: str, since: datetime) -> list[str]:
        """Distinct subjects that enrolled from ``device_hash`` at or after ``since``."""
        ...

    def recent(self, tenant_id: str, since: datetime, *, limit: int) -> list[EnrolSignal]:
        """Signals at or after ``since``, newest first."""
        ...

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int: ...


class FindingRepository(Protocol):
    def add(self, finding: FraudFinding) -> None:
        """``record.not_found`` when the subject is missing."""
        ...

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FraudFinding]: ...
    def list_for_check(self, tenant_id: str, check_id: str) -> list[FraudFinding]: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int: ...


__all__ = ["BlacklistRepository", "EnrolSignalRepository", "FindingRepository"]
