"""In-memory access to the sealed columns, for tenant-key rotation (the port in
:mod:`shiren.storage.sealed_ports`).

The port names columns by their SQL table; :data:`_SEALED_TABLES` maps each table to the
in-memory dict that plays it, so the rotation job runs unchanged on every backend.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shiren.storage.memory_tables import _Repo
from shiren.storage.sealed_ports import check_sealed_column

_SEALED_TABLES = {
    "tenants": "tenants",
    "subjects": "subjects",
    "templates": "templates",
    "references": "references",
    "review_items": "reviews",
    "evidence": "evidence",
    "blacklist_entries": "blacklist",
    "enrol_signals": "enrol_signals",
}


class MemorySealedFields(_Repo):
    def _rows(self, tenant_id: str, table: str, column: str) -> dict[str, Any]:
        check_sealed_column(table, column)
        rows: dict[str, Any] = getattr(self._t, _SEALED_TABLES[table])
        return {
            k: r
            for k, r in rows.items()
            if (r.id if table == "tenants" else r.tenant_id) == tenant_id
            and getattr(r, column) is not None
        }

    def scan(
        self, tenant_id: str, table: str, column: str, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, bytes]]:
        rows = self._rows(tenant_id, table, column)
        ids = sorted(k for k in rows if k > after_id)[:limit]
        return [(k, getattr(rows[k], column)) for k in ids]

    def replace(
        self, tenant_id: str, table: str, column: str, row_id: str, *, expected: bytes, new: bytes
    ) -> bool:
        row = self._rows(tenant_id, table, column).get(row_id)
        if row is None or getattr(row, column) != expected:
            return False
        getattr(self._t, _SEALED_TABLES[table])[row_id] = replace(row, **{column: new})
        return True


__all__ = ["MemorySealedFields"]
