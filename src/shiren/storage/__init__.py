"""Storage: repositories and a unit of work behind Protocols (:mod:`shiren.storage.ports`).

Implementations: :mod:`shiren.storage.memory` (the in-memory reference, used by unit tests and
as the behaviour the others are tested against) and :mod:`shiren.storage.sql` (SQLite,
PostgreSQL; Alembic migrations in ``shiren/storage/migrations``).  Storage only ever sees
ciphertext for biometrics and ID numbers: ``*_enc`` fields are opaque bytes.

Importing this package does not import SQLAlchemy; import :mod:`shiren.storage.sql` for that.
"""

from __future__ import annotations

from shiren.storage.ports import (
    ChainHasher,
    ChainLink,
    ErasureCounts,
    RetentionCounts,
    UnitOfWork,
    UnitOfWorkFactory,
    erase_subject_biometrics,
    sweep_retention,
)

__all__ = [
    "ChainHasher",
    "ChainLink",
    "ErasureCounts",
    "RetentionCounts",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "erase_subject_biometrics",
    "sweep_retention",
]
