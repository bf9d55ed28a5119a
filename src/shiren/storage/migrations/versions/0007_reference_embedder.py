"""Issue 14: a reference records the network that made it (``subject_references.embedder``).

Templates rows have always carried ``embedder`` ("<network>@sha256:<hex>"); references did not.
With a second network (MobileFaceNet) beside dlib's ResNet, a check must know which network a
stored reference belongs to, so it can embed the live face with the same one.  The column is
nullable: rows written before this migration hold NULL, read as dlib's ResNet (the only network
shiren had until then).  No data is rewritten.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subject_references") as batch:
        batch.add_column(sa.Column("embedder", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subject_references") as batch:
        batch.drop_column("embedder")
