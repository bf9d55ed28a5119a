"""Generic access to every column sealed with a tenant's keys, for tenant-key rotation.

A rotation re-seals every ciphertext of a tenant, whichever table holds it; rather than one
method per table on every repository, :data:`SEALED_COLUMNS` names the columns once and
:class:`SealedFieldRepository` scans and compare-and-sets them generically.  A new sealed column
must be added here, or a rotation would leave it sealed with a retired key.  Same rules as every
port (:mod:`shiren.storage.ports`).
"""

from __future__ import annotations

from typing import Protocol

SEALED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenants", "webhook_secret_enc"),
    ("subjects", "wrapped_key"),
    ("subjects", "name_enc"),
    ("subjects", "id_number_enc"),
    ("templates", "template_enc"),
    ("references", "template_enc"),
    ("review_items", "candidate_enc"),
    ("evidence", "image_enc"),
    ("blacklist_entries", "template_enc"),
    ("enrol_signals", "background_enc"),
)
"""Every column holding ciphertext made with a tenant's keys, named as the service names them in
a ``CipherContext`` (table, column): what a tenant-key rotation has to re-seal."""


class SealedFieldRepository(Protocol):
    """Generic access to the ciphertext columns of :data:`SEALED_COLUMNS`, for key rotation.

    ``table``/``column`` must be one of :data:`SEALED_COLUMNS` (``ValueError`` otherwise); for
    ``tenants`` the row id is the tenant id itself."""

    def scan(
        self, tenant_id: str, table: str, column: str, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, bytes]]:
        """``(row id, blob)`` of the tenant's rows with a non-NULL ``column``, ids greater than
        ``after_id``, in id order (a resumable cursor)."""
        ...

    def replace(
        self, tenant_id: str, table: str, column: str, row_id: str, *, expected: bytes, new: bytes
    ) -> bool:
        """Set ``column`` to ``new`` if it still holds ``expected`` (compare-and-set, so a
        concurrent change — an erasure, a new value — is never overwritten); whether it did."""
        ...


def check_sealed_column(table: str, column: str) -> None:
    if (table, column) not in SEALED_COLUMNS:
        raise ValueError(f"not a sealed column: {table}.{column}")


__all__ = ["SEALED_COLUMNS", "SealedFieldRepository", "check_sealed_column"]
