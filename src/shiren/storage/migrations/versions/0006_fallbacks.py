"""The non-face path and payout ownership (issue 6): ``fallback_flows`` and ``payout_checks``.

``fallback_flows``: one row per fallback case of a lending event (SMS code + bank-card check,
…), its state-machine position, the phone sealed with the subject key (``phone_enc``: erasure
shreds it) and only its last four digits in clear, a keyed hash of the current one-time code
(never the code), and a ``version`` for optimistic concurrency.  ``payout_checks``: every
payout-ownership verdict, the card only as a keyed pseudonym and its last four digits.
New tables only: no data migration.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _subject_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "subject_id"],
        ["subjects.tenant_id", "subjects.id"],
        name=op.f(f"fk_{table}_tenant_id_subject_id_subjects"),
    )


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "fallback_flows",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_failures", sa.Integer(), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_last4", sa.String(length=4), nullable=False),
        sa.Column("otp_hash", sa.String(length=128), nullable=True),
        sa.Column("otp_expires_at", ts, nullable=True),
        sa.Column("otp_sent_at", ts, nullable=True),
        sa.Column("otp_attempts", sa.Integer(), nullable=False),
        sa.Column("otp_sends", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("closed_at", ts, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'passed', 'review', 'approved', 'rejected', 'expired')",
            name=op.f("ck_fallback_flows_status"),
        ),
        sa.CheckConstraint(
            "cause IN ('face_failed', 'face_locked', 'face_refused')",
            name=op.f("ck_fallback_flows_cause"),
        ),
        _subject_fk("fallback_flows"),
        _tenant_fk("fallback_flows"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fallback_flows")),
    )
    op.create_index(
        op.f("ix_fallback_flows_tenant_id_event_id"), "fallback_flows", ["tenant_id", "event_id"]
    )
    op.create_index(
        op.f("ix_fallback_flows_tenant_id_status_created_at"),
        "fallback_flows",
        ["tenant_id", "status", "created_at"],
    )
    op.create_table(
        "payout_checks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=True),
        sa.Column("card_pseudonym", sa.String(length=128), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("mismatched", sa.JSON(), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('allowed', 'blocked')", name=op.f("ck_payout_checks_outcome")
        ),
        _subject_fk("payout_checks"),
        _tenant_fk("payout_checks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_checks")),
    )
    op.create_index(
        op.f("ix_payout_checks_tenant_id_subject_id"), "payout_checks", ["tenant_id", "subject_id"]
    )


def downgrade() -> None:
    op.drop_table("payout_checks")
    op.drop_table("fallback_flows")
