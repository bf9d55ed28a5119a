"""SQL card captures (the twin of :mod:`shiren.storage.memory_cards`): one conditional
``UPDATE … WHERE version = ?`` per state change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from shiren.domain.card_capture import CardCapture, CardCaptureStatus
from shiren.storage.errors import conflict, not_found
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _loader, _SqlRepo, _values

_capture = _loader(CardCapture, status=CardCaptureStatus)
_MUTABLE = ("status", "card_reads", "subject_id", "session_id", "enrolled_at")


class SqlCardCaptureRepository(_SqlRepo):
    t = s.card_captures

    def add(self, capture: CardCapture) -> None:
        self._insert(self.t, _values(capture), "card capture")

    def get(self, tenant_id: str, capture_id: str) -> CardCapture | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == capture_id)
        return self._one(stmt, _capture)

    def update(self, capture: CardCapture, *, expected_version: int) -> CardCapture:
        values = _values(capture, version=expected_version + 1)
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == capture.tenant_id,
                self.t.c.id == capture.id,
                self.t.c.version == expected_version,
            )
            .values(**{k: values[k] for k in (*_MUTABLE, "version")})
            .returning(*self.t.c)
        )
        new = self._one(stmt, _capture)
        if new is None:
            current = self.get(capture.tenant_id, capture.id)
            if current is None:
                raise not_found("card capture")
            raise conflict(
                "card capture", f"version {expected_version}", f"version {current.version}"
            )
        return new

    def delete_ended(self, before: datetime, *, tenant_id: str | None = None) -> int:
        stmt = delete(self.t).where(
            self.t.c.status != CardCaptureStatus.ENROLLED.value, self.t.c.expires_at < before
        )
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        stmt = delete(self.t).where(
            self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id
        )
        return self._rowcount(stmt)


__all__ = ["SqlCardCaptureRepository"]
