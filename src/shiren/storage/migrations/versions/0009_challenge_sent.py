"""Issue 17: when the capture page first fetched a session's challenge.

``sessions.challenge_sent_at``: the moment ``GET /v1/capture/{token}`` first handed the open
session's challenge to the capture page, written once (the first fetch; later ones change
nothing).  The injection check bounds how much filming a page upload may claim by the latest
moment the server knows to precede the filming; the first fetch is one (the page cannot film an
answer to a challenge it has not seen).  Nullable: sessions opened before this migration, and
sessions whose challenge went only to the lender's own client, hold NULL.  No data is rewritten.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("challenge_sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("challenge_sent_at")
