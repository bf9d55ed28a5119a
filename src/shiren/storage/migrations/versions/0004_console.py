"""The review console's staff users.

``console_users``: one row per staff member of a tenant, with a role (reviewer / auditor /
admin), an scrypt password hash (never the password), the sign-in lock-out state
(``failed_logins``, ``locked_until``) and ``sessions_valid_after`` (session cookies issued before
it are refused: sign-out, password change).  Usernames are unique across the deployment so the
sign-in form needs no tenant field.  A new table only: no data migration.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('reviewer', 'auditor', 'admin')", name=op.f("ck_console_users_role")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'disabled')", name=op.f("ck_console_users_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_console_users_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
    )
    op.create_index(
        op.f("ix_console_users_tenant_id_username"),
        "console_users",
        ["tenant_id", "username"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("console_users")  # drops its index and constraints
