"""The radar's generation: a counter moved by triggers on the tables the radar reads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:00:00

Any writer (this itb, another process, a restore, a hand-run SQL statement) moves it, so
a server may keep the radar's facts between requests and read them again only when the
counter has moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# the tables of itb.adapters.registry.tables.RADAR_TABLES, as they stood at this revision
_TABLES = ("patients", "implants", "pump_snapshots", "visits", "refill_visits")
_EVENTS = ("INSERT", "UPDATE", "DELETE")
_BUMP = "UPDATE radar_generation SET n = n + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "radar_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        comment=(
            "One row, counted up by triggers on every insert, update or delete of the "
            "tables the radar reads (RADAR_TABLES), whoever writes: the radar's facts are "
            "read again only when it has moved"
        ),
    )
    op.execute("INSERT INTO radar_generation (id, n) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        # once per transaction: a transaction of many statements (an import, a bulk load)
        # would otherwise stack one row version per statement on the counter's one row
        op.execute(
            "CREATE FUNCTION itb_radar_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "IF current_setting('itb.radar_bumped', true) IS DISTINCT FROM "
            "txid_current()::text THEN "
            f"{_BUMP}; "
            "PERFORM set_config('itb.radar_bumped', txid_current()::text, true); "
            "END IF; RETURN NULL; END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER radar_bump_{table} AFTER INSERT OR UPDATE OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION itb_radar_bump()"
            )
    else:  # SQLite: row triggers only
        for table in _TABLES:
            for event in _EVENTS:
                op.execute(
                    f"CREATE TRIGGER radar_bump_{table}_{event.lower()} AFTER {event} "
                    f"ON {table} BEGIN {_BUMP}; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER radar_bump_{table} ON {table}")
        op.execute("DROP FUNCTION itb_radar_bump()")
    else:
        for table in _TABLES:
            for event in _EVENTS:
                op.execute(f"DROP TRIGGER radar_bump_{table}_{event.lower()}")
    op.drop_table("radar_generation")
