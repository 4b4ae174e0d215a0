"""The radar keeps its facts between reads only while the registry's generation stands
still: every writer moves it (the use cases, another process, a hand-run SQL statement),
on SQLite and PostgreSQL, and a booked visit passing ends the kept facts too."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from tests.support.clinic_setup import Clinic, fill

from itb import bootstrap
from itb.adapters.registry.tables import RADAR_TABLES
from itb.services.clinic import RefillRequest


def _generation(registry: bootstrap.ClinicHandle) -> int:
    with registry.registry.engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT n FROM radar_generation WHERE id = 1")).scalar_one()
        )


def test_every_write_to_a_table_the_radar_reads_moves_the_generation(
    registry: bootstrap.ClinicHandle, sql_clinic: Clinic
) -> None:
    """A plain SQL update of each table (as another program would write it) moves the
    counter; a write elsewhere (the audit trail) does not."""
    c = sql_clinic
    c.clock.advance(days=30)
    c.service.record_refill(
        c.nurse, c.implant_id, RefillRequest(None, withdrawn_ml=0.5, fill=fill())
    )
    c.service.book_visit(c.nurse, c.patient_id, at=c.clock.now() + timedelta(days=9), kind="refill")
    for table in RADAR_TABLES:
        before = _generation(registry)
        with registry.registry.engine.begin() as conn:
            done = conn.execute(
                sa.text(f"UPDATE {table} SET {_a_column(table)} = {_a_column(table)}")
            )
            assert done.rowcount >= 1, table
        assert _generation(registry) > before, table
    before = _generation(registry)
    with registry.registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET reason = reason"))
    assert _generation(registry) == before


def _a_column(table: str) -> str:
    return {"pump_snapshots": "seq", "refill_visits": "id"}.get(table, "id")


def test_the_radar_sees_a_write_from_outside_the_service(
    registry: bootstrap.ClinicHandle, sql_clinic: Clinic
) -> None:
    c = sql_clinic
    first = {r.pump.patient_id: r.pump.patient_name for r in c.service.radar(c.nurse)}
    assert first[c.patient_id] != "Renamed Outside"
    with registry.registry.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE patients SET given_name = 'Renamed', family_name = 'Outside' WHERE id = :p"
            ),
            {"p": c.patient_id},
        )
    again = {r.pump.patient_id: r.pump.patient_name for r in c.service.radar(c.nurse)}
    assert again[c.patient_id] == "Renamed Outside"


def test_kept_facts_give_the_same_radar_and_a_passed_visit_is_seen(sql_clinic: Clinic) -> None:
    """Two reads with nothing written give the same rows; once the next booked visit has
    passed, the radar reads again and finds the patient without a visit."""
    c = sql_clinic
    visit_at = c.clock.now() + timedelta(days=3)
    c.service.book_visit(c.nurse, c.patient_id, at=visit_at, kind="refill")
    now = c.clock.now()
    one = c.service.radar(c.nurse, on=now)
    two = c.service.radar(c.nurse, on=now)
    assert one == two
    row = next(r for r in one if r.pump.patient_id == c.patient_id)
    assert row.pump.next_visit_at == visit_at
    later = c.service.radar(c.nurse, on=visit_at + timedelta(hours=1))
    row = next(r for r in later if r.pump.patient_id == c.patient_id)
    assert row.pump.next_visit_at is None
    assert "no_visit" in {f.code for f in row.flags}
    # and an earlier date than the kept read is answered from the registry, not the kept facts
    back = c.service.radar(c.nurse, on=now)
    assert next(r for r in back if r.pump.patient_id == c.patient_id).pump.next_visit_at == visit_at
