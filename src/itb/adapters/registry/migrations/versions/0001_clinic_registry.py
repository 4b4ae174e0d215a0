"""The clinic registry: patients, implants, command logs, refills, programming
changes, visits, symptoms, users, the clinic and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-12-01 09:23:08.847295
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import itb.adapters.registry.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=120), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_entity", ["entity", "entity_id"], unique=False)

    op.create_table(
        "clinic",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=120), nullable=False),
        sa.Column("nurses_may_verify", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "id_counters",
        sa.Column("prefix", sa.String(length=4), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix"),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("mrn", sa.String(length=120), nullable=False),
        sa.Column("given_name", sa.String(length=120), nullable=False),
        sa.Column("family_name", sa.String(length=120), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("weight_kg", sa.Double(), nullable=True),
        sa.Column("cause", sa.String(length=40), nullable=False),
        sa.Column("injury_level", sa.String(length=4), nullable=True),
        sa.Column("sci_at_or_above_t6", sa.Boolean(), nullable=False),
        sa.Column("communication_difficulty", sa.Boolean(), nullable=False),
        sa.Column("previous_withdrawal", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mrn"),
    )
    op.create_table(
        "assessments",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=40), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessments_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("relation", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=120), nullable=False),
        sa.Column("caregiver", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "implants",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=False),
        sa.Column("pump_preset", sa.String(length=40), nullable=False),
        sa.Column("serial", sa.String(length=120), nullable=False),
        sa.Column("udi", sa.String(length=120), nullable=True),
        sa.Column(
            "implanted_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("catheter_family", sa.String(length=40), nullable=False),
        sa.Column("catheter_length_cm", sa.Double(), nullable=False),
        sa.Column("tip_level", sa.String(length=4), nullable=True),
        sa.Column("fill_product", sa.String(length=40), nullable=False),
        sa.Column("fill_lot", sa.String(length=120), nullable=False),
        sa.Column("fill_expiry", sa.Date(), nullable=True),
        sa.Column("fill_volume_ml", sa.Double(), nullable=False),
        sa.Column("fill_concentration_mcg_per_ml", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "ended_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("end_reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("implants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_implants_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_implants_status"), ["status"], unique=False)

    op.create_table(
        "symptom_reports",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("signs", sa.JSON(), nullable=False),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("causes", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("symptom_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_symptom_reports_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=16), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_status"), ["status"], unique=False)

    op.create_table(
        "commands",
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("entered_by", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("verified_by", sa.String(length=120), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column(
            "recorded_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["implant_id"],
            ["implants.id"],
        ),
        sa.PrimaryKeyConstraint("implant_id", "seq"),
    )
    op.create_table(
        "interrogations",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reservoir_calculated_ml", sa.Double(), nullable=False),
        sa.Column("expected_ml", sa.Double(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("active_alarms", sa.JSON(), nullable=False),
        sa.Column("eri_reached", sa.Boolean(), nullable=False),
        sa.Column(
            "predicted_eri_at",
            itb.adapters.registry.tables.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["implant_id"],
            ["implants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("interrogations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interrogations_implant_id"), ["implant_id"], unique=False
        )

    op.create_table(
        "programming_changes",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("review", sa.JSON(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("needs_verification", sa.Boolean(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("staged_by", sa.String(length=120), nullable=False),
        sa.Column(
            "staged_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("verified_by", sa.String(length=120), nullable=True),
        sa.Column(
            "verified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("committed_by", sa.String(length=120), nullable=True),
        sa.Column(
            "committed_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["implant_id"],
            ["implants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("programming_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_programming_changes_implant_id"), ["implant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_programming_changes_state"), ["state"], unique=False)

    op.create_table(
        "pump_snapshots",
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("reservoir_calculated_ml", sa.Double(), nullable=False),
        sa.Column("concentration_mcg_per_ml", sa.Double(), nullable=False),
        sa.Column("dose_mcg_per_day", sa.Double(), nullable=True),
        sa.Column(
            "low_alarm_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "empty_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "earliest_dry_at",
            itb.adapters.registry.tables.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "stability_until",
            itb.adapters.registry.tables.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("eri_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("eri_reached", sa.Boolean(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("active_alarms", sa.JSON(), nullable=False),
        sa.Column("critical_alarms", sa.JSON(), nullable=False),
        sa.Column(
            "last_fill_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["implant_id"],
            ["implants.id"],
        ),
        sa.PrimaryKeyConstraint("implant_id"),
    )
    op.create_table(
        "refill_visits",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expected_ml", sa.Double(), nullable=False),
        sa.Column("withdrawn_ml", sa.Double(), nullable=False),
        sa.Column("allowed_ml", sa.Double(), nullable=False),
        sa.Column("verdict", sa.String(length=40), nullable=False),
        sa.Column("watch", sa.JSON(), nullable=False),
        sa.Column("advice", sa.Text(), nullable=False),
        sa.Column("product", sa.String(length=40), nullable=False),
        sa.Column("lot", sa.String(length=120), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("fill_volume_ml", sa.Double(), nullable=False),
        sa.Column("concentration_mcg_per_ml", sa.Double(), nullable=False),
        sa.Column("bridge_bolus", sa.Boolean(), nullable=False),
        sa.Column(
            "low_alarm_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "empty_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "earliest_dry_at",
            itb.adapters.registry.tables.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["implant_id"],
            ["implants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refill_visits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refill_visits_implant_id"), ["implant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_refill_visits_resolved"), ["resolved"], unique=False)

    op.create_table(
        "surgeries",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("implant_id", sa.String(length=16), nullable=False),
        sa.Column("at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column(
            "created_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column(
            "modified_at", itb.adapters.registry.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("modified_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["implant_id"],
            ["implants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("surgeries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_surgeries_implant_id"), ["implant_id"], unique=False)

    counters = sa.table(
        "id_counters", sa.column("prefix", sa.String), sa.column("value", sa.Integer)
    )
    op.bulk_insert(counters, [{"prefix": p, "value": 0} for p in "PKAISQRCVY"])


def downgrade() -> None:
    with op.batch_alter_table("surgeries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_surgeries_implant_id"))

    op.drop_table("surgeries")
    with op.batch_alter_table("refill_visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refill_visits_resolved"))
        batch_op.drop_index(batch_op.f("ix_refill_visits_implant_id"))

    op.drop_table("refill_visits")
    op.drop_table("pump_snapshots")
    with op.batch_alter_table("programming_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programming_changes_state"))
        batch_op.drop_index(batch_op.f("ix_programming_changes_implant_id"))

    op.drop_table("programming_changes")
    with op.batch_alter_table("interrogations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interrogations_implant_id"))

    op.drop_table("interrogations")
    op.drop_table("commands")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_status"))
        batch_op.drop_index(batch_op.f("ix_visits_patient_id"))

    op.drop_table("visits")
    op.drop_table("users")
    with op.batch_alter_table("symptom_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_symptom_reports_patient_id"))

    op.drop_table("symptom_reports")
    with op.batch_alter_table("implants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_implants_status"))
        batch_op.drop_index(batch_op.f("ix_implants_patient_id"))

    op.drop_table("implants")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_patient_id"))

    op.drop_table("contacts")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessments_patient_id"))

    op.drop_table("assessments")
    op.drop_table("patients")
    op.drop_table("id_counters")
    op.drop_table("clinic")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_entity")

    op.drop_table("audit_log")
    op.drop_table("audit_head")
