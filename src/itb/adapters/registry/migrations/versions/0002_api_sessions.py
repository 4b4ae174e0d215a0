"""Signed-in sessions of the API and the dashboard

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:11:05.651996
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import itb.adapters.registry.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
        ),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("api_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_sessions_username"), ["username"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("api_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_sessions_username"))

    op.drop_table("api_sessions")
