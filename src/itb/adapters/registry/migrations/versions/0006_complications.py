"""Complications of the implanted system: append-only entries per complication

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00

``complications`` holds one row per entry: the first says what was found; an update
(a treatment added, the pump out, resolved) is a new row that ``follows`` the one
before (unique, so an entry is followed at most once). A new table only: the rows of
the earlier revisions are not touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import itb.adapters.registry.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = itb.adapters.registry.tables.UtcDateTime
    op.create_table(
        "complications",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=False),
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("episode_id", sa.String(length=16), nullable=False),
        sa.Column("follows", sa.String(length=16), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("onset_at", utc(timezone=True), nullable=True),
        sa.Column("found_at", utc(timezone=True), nullable=False),
        sa.Column("at", utc(timezone=True), nullable=False),
        sa.Column("signs", sa.JSON(), nullable=False),
        sa.Column("treatments", sa.JSON(), nullable=False),
        sa.Column("bridge", sa.String(length=16), nullable=False),
        sa.Column("oral_bridge_mg_per_day", sa.Double(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("explant_surgery_id", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", utc(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("modified_at", utc(timezone=True), nullable=False),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["explant_surgery_id"], ["surgeries.id"]),
        sa.ForeignKeyConstraint(["implant_id"], ["implants.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("follows"),
    )
    with op.batch_alter_table("complications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complications_episode_id"), ["episode_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_complications_implant_id"), ["implant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_complications_patient_id"), ["patient_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("complications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complications_patient_id"))
        batch_op.drop_index(batch_op.f("ix_complications_implant_id"))
        batch_op.drop_index(batch_op.f("ix_complications_episode_id"))
    op.drop_table("complications")
