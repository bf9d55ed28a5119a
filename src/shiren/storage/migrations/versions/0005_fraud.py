"""Anti-fraud: blacklists, enrolment signals, fraud findings (issue 6).

``blacklist_entries``: faces a lender put on one of its blacklists (template sealed with the
tenant key; a reason code and a reference to the lender's evidence, never the evidence).
``enrol_signals``: per enrolment attempt, the keyed hashes of device and IP address and the
sealed background descriptor, for the "one device, many faces" and "batch registrations"
checks.  ``fraud_findings``: every anti-fraud reason code raised, with its evidence (ids and
scores only) and the policy action.  New tables only: no data migration.

(The pgvector table of the server-backed face index is created by the index itself,
``shiren.fraud.pgvector``: SQLite deployments never have the extension.)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(length=32), nullable=False)


def _created() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def _subject_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "subject_id"],
        ["subjects.tenant_id", "subjects.id"],
        name=op.f(f"fk_{table}_tenant_id_subject_id_subjects"),
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=False)


def upgrade() -> None:
    op.create_table(
        "blacklist_entries",
        _id(),
        _id("tenant_id"),
        sa.Column("list_name", sa.String(length=64), nullable=False),
        sa.Column("template_enc", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("evidence_ref", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        _created(),
        _tenant_fk("blacklist_entries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blacklist_entries")),
    )
    _index("blacklist_entries", "tenant_id", "list_name", "created_at")
    op.create_table(
        "enrol_signals",
        _id(),
        _id("tenant_id"),
        _id("subject_id"),
        sa.Column("device_hash", sa.String(length=64), nullable=True),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("background_enc", sa.LargeBinary(), nullable=True),
        _created(),
        _tenant_fk("enrol_signals"),
        _subject_fk("enrol_signals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrol_signals")),
    )
    _index("enrol_signals", "tenant_id", "device_hash", "created_at")
    _index("enrol_signals", "tenant_id", "created_at")
    _index("enrol_signals", "tenant_id", "subject_id")
    op.create_table(
        "fraud_findings",
        _id(),
        _id("tenant_id"),
        _id("subject_id"),
        sa.Column("check_id", sa.String(length=32), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _created(),
        sa.CheckConstraint("action IN ('review', 'reject')", name=op.f("ck_fraud_findings_action")),
        _tenant_fk("fraud_findings"),
        _subject_fk("fraud_findings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_findings")),
    )
    _index("fraud_findings", "tenant_id", "subject_id", "created_at")
    _index("fraud_findings", "tenant_id", "check_id")


def downgrade() -> None:
    op.drop_table("fraud_findings")
    op.drop_table("enrol_signals")
    op.drop_table("blacklist_entries")
