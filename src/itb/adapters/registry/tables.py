"""The registry's tables (SQLAlchemy Core): what is stored, not what the domain means.

One table per kind of record. Columns carry their unit in their name. Times are
stored in UTC (:class:`UtcDateTime`: ``timestamptz`` on PostgreSQL, a naive UTC
text on SQLite) and come back aware. Tuples and mappings are JSON. A record's
``created_*``/``modified_*`` columns are its :class:`~itb.domain.clinic.records.Stamp`.

The schema is created and changed only by the Alembic migrations in
``migrations/``; a test checks that the migrated schema equals this metadata.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["METADATA", "RADAR_TABLES", "TABLES", "UtcDateTime", "json_dumps"]

METADATA = sa.MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An aware date-time stored in UTC; a naive one is refused (never guessed)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive date-time {value.isoformat()} (the registry keeps UTC)")
        out = value.astimezone(UTC)
        return out.replace(tzinfo=None) if dialect.name == "sqlite" else out

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_dumps(value: Any) -> str:
    """JSON for the JSON columns: no NaN or infinity (PostgreSQL refuses them)."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def _stamp() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("modified_at", UtcDateTime(), nullable=False),
        sa.Column("modified_by", sa.String(120), nullable=False),
    ]


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.String(16), primary_key=True)


Text = sa.Text
Name = sa.String(120)
Float: sa.Double[float] = sa.Double()
Json = sa.JSON()

patients = sa.Table(
    "patients",
    METADATA,
    _id(),
    sa.Column("mrn", Name, nullable=False, unique=True),
    sa.Column("given_name", Name, nullable=False),
    sa.Column("family_name", Name, nullable=False),
    sa.Column("birth_date", sa.Date(), nullable=False),
    sa.Column("sex", sa.String(16), nullable=False),
    sa.Column("weight_kg", Float),
    sa.Column("cause", sa.String(40), nullable=False),
    sa.Column("injury_level", sa.String(4)),
    sa.Column("sci_at_or_above_t6", sa.Boolean(), nullable=False),
    sa.Column("communication_difficulty", sa.Boolean(), nullable=False),
    sa.Column("previous_withdrawal", sa.Boolean(), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("notes", Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

contacts = sa.Table(
    "contacts",
    METADATA,
    _id(),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column("name", Name, nullable=False),
    sa.Column("relation", Name, nullable=False),
    sa.Column("phone", Name, nullable=False),
    sa.Column("caregiver", sa.Boolean(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

assessments = sa.Table(
    "assessments",
    METADATA,
    _id(),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("verdict", sa.String(40), nullable=False),
    sa.Column("summary", Text(), nullable=False),
    sa.Column("detail", Json, nullable=False),
    *_stamp(),
)

implants = sa.Table(
    "implants",
    METADATA,
    _id(),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column("pump_preset", sa.String(40), nullable=False),
    sa.Column("serial", Name, nullable=False),
    sa.Column("udi", Name),
    sa.Column("implanted_at", UtcDateTime(), nullable=False),
    sa.Column("catheter_family", sa.String(40), nullable=False),
    sa.Column("catheter_length_cm", Float, nullable=False),
    sa.Column("tip_level", sa.String(4)),
    sa.Column("fill_product", sa.String(40), nullable=False),
    sa.Column("fill_lot", Name, nullable=False),
    sa.Column("fill_expiry", sa.Date()),
    sa.Column("fill_volume_ml", Float, nullable=False),
    sa.Column("fill_concentration_mcg_per_ml", Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("ended_at", UtcDateTime()),
    sa.Column("end_reason", Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

surgeries = sa.Table(
    "surgeries",
    METADATA,
    _id(),
    sa.Column(
        "implant_id", sa.String(16), sa.ForeignKey("implants.id"), nullable=False, index=True
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("detail", Text(), nullable=False),
    *_stamp(),
)

complications = sa.Table(
    "complications",
    METADATA,
    _id(),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column(
        "implant_id", sa.String(16), sa.ForeignKey("implants.id"), nullable=False, index=True
    ),
    sa.Column("episode_id", sa.String(16), nullable=False, index=True),
    sa.Column("follows", sa.String(16), unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("onset_at", UtcDateTime()),
    sa.Column("found_at", UtcDateTime(), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("signs", Json, nullable=False),
    sa.Column("treatments", Json, nullable=False),
    sa.Column("bridge", sa.String(16), nullable=False),
    sa.Column("oral_bridge_mg_per_day", Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("explant_surgery_id", sa.String(16), sa.ForeignKey("surgeries.id")),
    sa.Column("note", Text(), nullable=False),
    *_stamp(),
)
"""Complication entries, append-only: an update is a new row that ``follows`` the one before
(unique: an entry is followed at most once, so two updates of the same entry cannot both
commit)."""

commands = sa.Table(
    "commands",
    METADATA,
    sa.Column("implant_id", sa.String(16), sa.ForeignKey("implants.id"), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("command", Json, nullable=False),
    sa.Column("entered_by", Name, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("reason", Text(), nullable=False),
    sa.Column("verified_by", Name),
    sa.Column("override_reason", Text()),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)

snapshots = sa.Table(
    "pump_snapshots",
    METADATA,
    sa.Column("implant_id", sa.String(16), sa.ForeignKey("implants.id"), primary_key=True),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("state", Json, nullable=False),
    sa.Column("reservoir_calculated_ml", Float, nullable=False),
    sa.Column("concentration_mcg_per_ml", Float, nullable=False),
    sa.Column("dose_mcg_per_day", Float),
    sa.Column("low_alarm_at", UtcDateTime()),
    sa.Column("empty_at", UtcDateTime()),
    sa.Column("earliest_dry_at", UtcDateTime()),
    sa.Column("stability_until", UtcDateTime()),
    sa.Column("eri_at", UtcDateTime()),
    sa.Column("eri_reached", sa.Boolean(), nullable=False),
    sa.Column("running", sa.Boolean(), nullable=False),
    sa.Column("stop_reason", Text(), nullable=False),
    sa.Column("active_alarms", Json, nullable=False),
    sa.Column("critical_alarms", Json, nullable=False),
    sa.Column("last_fill_at", UtcDateTime()),
    sa.Column("profile", Json),
)

interrogations = sa.Table(
    "interrogations",
    METADATA,
    _id(),
    sa.Column(
        "implant_id", sa.String(16), sa.ForeignKey("implants.id"), nullable=False, index=True
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("reservoir_calculated_ml", Float, nullable=False),
    sa.Column("expected_ml", Float, nullable=False),
    sa.Column("running", sa.Boolean(), nullable=False),
    sa.Column("stop_reason", Text(), nullable=False),
    sa.Column("active_alarms", Json, nullable=False),
    sa.Column("eri_reached", sa.Boolean(), nullable=False),
    sa.Column("predicted_eri_at", UtcDateTime()),
    sa.Column("note", Text(), nullable=False),
    *_stamp(),
)

refills = sa.Table(
    "refill_visits",
    METADATA,
    _id(),
    sa.Column(
        "implant_id", sa.String(16), sa.ForeignKey("implants.id"), nullable=False, index=True
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("expected_ml", Float, nullable=False),
    sa.Column("withdrawn_ml", Float, nullable=False),
    sa.Column("programmed_ml", Float),
    sa.Column("filled_ml", Float),
    sa.Column("allowed_ml", Float, nullable=False),
    sa.Column("verdict", sa.String(40), nullable=False),
    sa.Column("watch", Json, nullable=False),
    sa.Column("advice", Text(), nullable=False),
    sa.Column("product", sa.String(40), nullable=False),
    sa.Column("lot", Name, nullable=False),
    sa.Column("expiry", sa.Date()),
    sa.Column("fill_volume_ml", Float, nullable=False),
    sa.Column("concentration_mcg_per_ml", Float, nullable=False),
    sa.Column("bridge_bolus", sa.Boolean(), nullable=False),
    sa.Column("low_alarm_at", UtcDateTime()),
    sa.Column("empty_at", UtcDateTime()),
    sa.Column("earliest_dry_at", UtcDateTime()),
    sa.Column("resolved", sa.Boolean(), nullable=False, index=True),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

changes = sa.Table(
    "programming_changes",
    METADATA,
    _id(),
    sa.Column(
        "implant_id", sa.String(16), sa.ForeignKey("implants.id"), nullable=False, index=True
    ),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("command", Json, nullable=False),
    sa.Column("review", Json, nullable=False),
    sa.Column("blocked", sa.Boolean(), nullable=False),
    sa.Column("needs_verification", sa.Boolean(), nullable=False),
    sa.Column("override_reason", Text()),
    sa.Column("staged_by", Name, nullable=False),
    sa.Column("staged_at", UtcDateTime(), nullable=False),
    sa.Column("verified_by", Name),
    sa.Column("verified_at", UtcDateTime()),
    sa.Column("committed_by", Name),
    sa.Column("committed_at", UtcDateTime()),
    sa.Column("reason", Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

visits = sa.Table(
    "visits",
    METADATA,
    _id(),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("note", Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

symptoms = sa.Table(
    "symptom_reports",
    METADATA,
    _id(),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("signs", Json, nullable=False),
    sa.Column("urgency", sa.String(20), nullable=False),
    sa.Column("causes", Json, nullable=False),
    sa.Column("actions", Json, nullable=False),
    *_stamp(),
)

users = sa.Table(
    "users",
    METADATA,
    sa.Column("username", Name, primary_key=True),
    sa.Column("display_name", Name, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("patient_id", sa.String(16), sa.ForeignKey("patients.id")),
    sa.Column("password_hash", Text(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

clinic = sa.Table(
    "clinic",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", Name, nullable=False),
    sa.Column("phone", Name, nullable=False),
    sa.Column("nurses_may_verify", sa.Boolean(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    *_stamp(),
)

sessions = sa.Table(
    "api_sessions",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", Name, sa.ForeignKey("users.username"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", Name, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("entity_id", Name, nullable=False),
    sa.Column("before", Json),
    sa.Column("after", Json),
    sa.Column("reason", Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_entity", "entity", "entity_id"),
)

audit_head = sa.Table(
    "audit_head",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

calendar_feeds = sa.Table(
    "calendar_feeds",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "patient_id", sa.String(16), sa.ForeignKey("patients.id"), nullable=False, index=True
    ),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", Name, nullable=False),
)

radar_generation = sa.Table(
    "radar_generation",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger(), nullable=False),
    comment="One row: the generation of the tables the radar reads, moved by triggers",
)

radar_changes = sa.Table(
    "radar_changes",
    METADATA,
    sa.Column("gen", sa.BigInteger(), nullable=False, index=True),
    sa.Column("patient_id", sa.String(16)),
    sa.Column("implant_id", sa.String(16)),
    comment="Whose rows each generation wrote (both empty: everything), by triggers",
)
"""Written only by the triggers of migration 0003 (on RADAR_TABLES); read by the radar."""

id_counters = sa.Table(
    "id_counters",
    METADATA,
    sa.Column("prefix", sa.String(4), primary_key=True),
    sa.Column("value", sa.Integer(), nullable=False),
)

RADAR_TABLES = tuple(x.name for x in (patients, implants, snapshots, visits, refills))
"""The tables the radar's facts come from: a write to any of them moves the generation."""

TABLES = {
    "patients": patients,
    "contacts": contacts,
    "assessments": assessments,
    "implants": implants,
    "surgeries": surgeries,
    "complications": complications,
    "commands": commands,
    "snapshots": snapshots,
    "interrogations": interrogations,
    "refills": refills,
    "changes": changes,
    "visits": visits,
    "symptoms": symptoms,
    "users": users,
    "clinic": clinic,
    "sessions": sessions,
    "calendar_feeds": calendar_feeds,
    "audit_log": audit_log,
    "audit_head": audit_head,
    "id_counters": id_counters,
}
"""Every table by the name the unit of work gives its repository."""
