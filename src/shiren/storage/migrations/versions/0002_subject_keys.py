"""Subject keys (crypto-shredding): ``subjects.wrapped_key``.

Each subject enrolled from now on gets its own data key, wrapped by its tenant's key and stored
here; erasure deletes it, so the subject's ciphertext can no longer be opened wherever copies of
it live (replicas, WAL, backups — a backup taken *before* the erasure still holds the wrapped key
until that backup itself expires).  Nullable on purpose: subjects enrolled before this revision
keep ``NULL`` and their fields stay sealed with the tenant key — no data migration, no downtime.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # Dropping the column drops every subject key and so makes everything they sealed
    # unreadable: downgrade past this revision only on an empty or throwaway database.
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("wrapped_key")
