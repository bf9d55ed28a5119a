"""In-memory card captures (the port in :mod:`shiren.storage.card_ports`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shiren.domain.card_capture import CardCapture, CardCaptureStatus
from shiren.storage.errors import conflict, duplicate, not_found
from shiren.storage.memory_tables import _Repo, _scoped


class MemoryCardCaptureRepository(_Repo):
    def add(self, capture: CardCapture) -> None:
        if capture.tenant_id not in self._t.tenants:
            raise not_found("tenant")
        if capture.id in self._t.card_captures:
            raise duplicate("card capture")
        self._t.card_captures[capture.id] = capture

    def get(self, tenant_id: str, capture_id: str) -> CardCapture | None:
        return _scoped(self._t.card_captures, tenant_id, capture_id)

    def update(self, capture: CardCapture, *, expected_version: int) -> CardCapture:
        current = self.get(capture.tenant_id, capture.id)
        if current is None:
            raise not_found("card capture")
        if current.version != expected_version:
            raise conflict(
                "card capture", f"version {expected_version}", f"version {current.version}"
            )
        new = replace(
            current,
            status=capture.status,
            card_reads=capture.card_reads,
            subject_id=capture.subject_id,
            session_id=capture.session_id,
            enrolled_at=capture.enrolled_at,
            version=expected_version + 1,
        )
        self._t.card_captures[capture.id] = new
        return new

    def delete_ended(self, before: datetime, *, tenant_id: str | None = None) -> int:
        doomed = [
            x.id
            for x in self._t.card_captures.values()
            if (tenant_id is None or x.tenant_id == tenant_id)
            and x.status is not CardCaptureStatus.ENROLLED
            and x.expires_at < before
        ]
        for capture_id in doomed:
            del self._t.card_captures[capture_id]
        return len(doomed)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [
            x.id
            for x in self._t.card_captures.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        ]
        for capture_id in doomed:
            del self._t.card_captures[capture_id]
        return len(doomed)


__all__ = ["MemoryCardCaptureRepository"]
