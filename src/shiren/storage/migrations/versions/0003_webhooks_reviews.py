"""Webhooks and the review queue: tenant webhook settings and review candidates.

``tenants.webhook_url`` / ``tenants.webhook_secret_enc``: where a tenant's events go and the
HMAC secret that signs them (sealed with the tenant key: a database dump alone cannot forge a
webhook).  ``review_items.candidate_enc`` / ``review_items.liveness_passed``: an enrolment sent
to manual review keeps its captured template (sealed with the subject key, so erasure shreds it)
until a reviewer decides, and whether liveness passed, because a face that failed liveness must
never be bound, whatever the reviewer says.  All nullable or defaulted: no data migration.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("webhook_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("webhook_secret_enc", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("candidate_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("liveness_passed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("liveness_passed")
        batch.drop_column("candidate_enc")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("webhook_secret_enc")
        batch.drop_column("webhook_url")
