"""The radar's generation and change log, written by triggers on the tables it reads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:00:00

``radar_generation`` holds one counter; ``radar_changes`` says, per generation, which
patient's or implant's rows were written. Triggers on the tables the radar reads write
both, whoever writes (this itb, another process, a restore, a hand-run SQL statement),
so a server keeps the radar's facts between requests and reads again only the patients
written since. The counter's one row serialises the writers of those tables, so a
reader that sees generation G sees every change up to G. The log keeps its last
100,000 generations (pruned every 1,000).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, whose rows: "patient" or "implant", the column naming them), as at this revision
_TABLES = (
    ("patients", "patient", "id"),
    ("implants", "patient", "patient_id"),
    ("visits", "patient", "patient_id"),
    ("pump_snapshots", "implant", "implant_id"),
    ("refill_visits", "implant", "implant_id"),
)
_KEEP = 100_000
_PRUNE_EVERY = 1_000

_PG_LOG = f"""
CREATE FUNCTION itb_radar_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  g bigint;
  rec jsonb;
BEGIN
  -- one generation per transaction: its first write moves the counter (and locks its
  -- row until the commit, so generations become visible in order)
  IF current_setting('itb.radar_tx', true) IS DISTINCT FROM txid_current()::text THEN
    UPDATE radar_generation SET n = n + 1 WHERE id = 1 RETURNING n INTO g;
    g := coalesce(g, 0);
    PERFORM set_config('itb.radar_tx', txid_current()::text, true);
    PERFORM set_config('itb.radar_gen', g::text, true);
    IF g % {_PRUNE_EVERY} = 0 THEN
      DELETE FROM radar_changes WHERE gen <= g - {_KEEP};
    END IF;
  ELSE
    g := current_setting('itb.radar_gen')::bigint;
  END IF;
  IF TG_LEVEL = 'STATEMENT' THEN  -- TRUNCATE: everything changed
    INSERT INTO radar_changes (gen, patient_id, implant_id) VALUES (g, NULL, NULL);
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN rec := to_jsonb(OLD); ELSE rec := to_jsonb(NEW); END IF;
  IF TG_ARGV[0] = 'patient' THEN
    INSERT INTO radar_changes (gen, patient_id) VALUES (g, rec ->> TG_ARGV[1]);
  ELSE
    INSERT INTO radar_changes (gen, implant_id) VALUES (g, rec ->> TG_ARGV[1]);
  END IF;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "radar_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        comment="One row: the generation of the tables the radar reads, moved by triggers",
    )
    op.create_table(
        "radar_changes",
        sa.Column("gen", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=True),
        sa.Column("implant_id", sa.String(length=16), nullable=True),
        comment="Whose rows each generation wrote (both empty: everything), by triggers",
    )
    op.create_index("ix_radar_changes_gen", "radar_changes", ["gen"])
    op.execute("INSERT INTO radar_generation (id, n) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_LOG)
        for table, whose, column in _TABLES:
            op.execute(
                f"CREATE TRIGGER radar_log_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION itb_radar_log('{whose}', '{column}')"
            )
            op.execute(
                f"CREATE TRIGGER radar_log_{table}_truncate AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION itb_radar_log()"
            )
        return
    # SQLite: row triggers; writers are serialised by the database lock
    for table, whose, column in _TABLES:
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            op.execute(
                f"CREATE TRIGGER radar_log_{table}_{event.lower()} AFTER {event} ON {table} "
                "BEGIN UPDATE radar_generation SET n = n + 1 WHERE id = 1; "
                f"INSERT INTO radar_changes (gen, {whose}_id) "
                f"SELECT n, {row}.{column} FROM radar_generation WHERE id = 1; END"
            )
    op.execute(
        "CREATE TRIGGER radar_changes_prune AFTER UPDATE ON radar_generation "
        f"WHEN NEW.n % {_PRUNE_EVERY} = 0 "
        f"BEGIN DELETE FROM radar_changes WHERE gen <= NEW.n - {_KEEP}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _, _ in _TABLES:
            op.execute(f"DROP TRIGGER radar_log_{table} ON {table}")
            op.execute(f"DROP TRIGGER radar_log_{table}_truncate ON {table}")
        op.execute("DROP FUNCTION itb_radar_log()")
    else:
        for table, _, _ in _TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER radar_log_{table}_{event}")
        op.execute("DROP TRIGGER radar_changes_prune")
    op.drop_index("ix_radar_changes_gen", table_name="radar_changes")
    op.drop_table("radar_changes")
    op.drop_table("radar_generation")
