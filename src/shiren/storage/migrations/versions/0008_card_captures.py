"""Issue 16: card captures, and the ID card's checks on the reference cut from it.

``card_captures``: an enrolment the lender starts without a photo; the borrower's phone sends
the ID card and the service enrols from it (:mod:`shiren.domain.card_capture`).  It holds what
the lender expects only as keyed digests.  ``subject_references.card_checks``: the card's check
codes and outcomes (JSON, no value read) for the review console; NULL for every other reference.
No data is rewritten.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    with op.batch_alter_table("subject_references") as batch:
        batch.add_column(sa.Column("card_checks", sa.Text(), nullable=True))
    op.create_table(
        "card_captures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("external_ref", sa.String(length=128), nullable=False),
        sa.Column("consent_purpose", sa.String(length=64), nullable=False),
        sa.Column("consent_version", sa.String(length=64), nullable=False),
        sa.Column("consent_text_sha256", sa.String(length=64), nullable=False),
        sa.Column("consent_retention_days", sa.Integer(), nullable=False),
        sa.Column("consent_client", sa.String(length=256), nullable=False),
        sa.Column("back_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("id_pseudonym", sa.String(length=128), nullable=True),
        sa.Column("name_digest", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("card_reads", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=True),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("enrolled_at", ts, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'enrolled', 'expired')", name=op.f("ck_card_captures_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_card_captures_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_captures")),
    )
    op.create_index(
        op.f("ix_card_captures_tenant_id_subject_id"),
        "card_captures",
        ["tenant_id", "subject_id"],
    )
    op.create_index(
        op.f("ix_card_captures_status_expires_at"), "card_captures", ["status", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_card_captures_status_expires_at"), table_name="card_captures")
    op.drop_index(op.f("ix_card_captures_tenant_id_subject_id"), table_name="card_captures")
    op.drop_table("card_captures")
    with op.batch_alter_table("subject_references") as batch:
        batch.drop_column("card_checks")
