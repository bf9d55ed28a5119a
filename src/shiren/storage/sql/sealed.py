"""SQL access to the sealed columns, for tenant-key rotation (the twin of
:mod:`shiren.storage.memory_sealed`).

The port names columns by table; :data:`_SEALED_TABLES` maps each name to its SQLAlchemy table,
and every write is a compare-and-set (``… WHERE column = :expected``), so a concurrent erasure
or new value is never overwritten by a rotation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select, update

from shiren.storage.sealed_ports import check_sealed_column
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _SqlRepo

_SEALED_TABLES = {
    "tenants": s.tenants,
    "subjects": s.subjects,
    "templates": s.templates,
    "references": s.subject_references,
    "review_items": s.review_items,
    "evidence": s.evidence,
    "blacklist_entries": s.blacklist_entries,
    "enrol_signals": s.enrol_signals,
}


class SqlSealedFields(_SqlRepo):
    @staticmethod
    def _where(tenant_id: str, table: str, column: str) -> tuple[Table, list[Any]]:
        check_sealed_column(table, column)
        t = _SEALED_TABLES[table]
        owner = t.c.id if table == "tenants" else t.c.tenant_id
        return t, [owner == tenant_id, t.c[column].is_not(None)]

    def scan(
        self, tenant_id: str, table: str, column: str, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, bytes]]:
        t, where = self._where(tenant_id, table, column)
        stmt = (
            select(t.c.id, t.c[column])
            .where(*where, t.c.id > after_id)
            .order_by(t.c.id)
            .limit(limit)
        )
        rows: list[Any] = list(self._exec(stmt))
        return [(str(row[0]), bytes(row[1])) for row in rows]

    def replace(
        self, tenant_id: str, table: str, column: str, row_id: str, *, expected: bytes, new: bytes
    ) -> bool:
        t, where = self._where(tenant_id, table, column)
        stmt = update(t).where(*where, t.c.id == row_id, t.c[column] == expected)
        return self._rowcount(stmt.values({column: new})) == 1


__all__ = [
    "SqlSealedFields",
]
