"""The reservoir forecast's facts: what each refill interval programmed, each pump's
commanded delivery

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 17:20:00

``refill_visits.programmed_ml`` is what the pump was programmed to deliver since the
previous fill and ``filled_ml`` the calculated volume that fill left; with the
withdrawn residual they tell what the pump really used, which the forecast learns each
pump's delivery factor from. Refills recorded before this revision do not know them
(NULL) and are not learned from.

``pump_snapshots.profile`` is the pump's commanded delivery from the snapshot's instant
on. Snapshots are a cache of the command log's replay: the ones written before this
revision are deleted here and rebuilt, with their profile, when next read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild on SQLite), so the radar's triggers stay
    op.add_column("refill_visits", sa.Column("programmed_ml", sa.Double(), nullable=True))
    op.add_column("refill_visits", sa.Column("filled_ml", sa.Double(), nullable=True))
    op.add_column("pump_snapshots", sa.Column("profile", sa.JSON(), nullable=True))
    op.execute("DELETE FROM pump_snapshots")


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+, PostgreSQL): no table rebuild, the triggers stay
    op.execute("DELETE FROM pump_snapshots")
    op.execute("ALTER TABLE pump_snapshots DROP COLUMN profile")
    op.execute("ALTER TABLE refill_visits DROP COLUMN filled_ml")
    op.execute("ALTER TABLE refill_visits DROP COLUMN programmed_ml")
