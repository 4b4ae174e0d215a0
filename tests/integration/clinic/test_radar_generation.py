"""The radar keeps its facts between reads and reads again only what was written since:
every writer moves the registry's generation and logs whose rows it wrote (the use
cases, another process, a hand-run SQL statement), on SQLite and PostgreSQL; a booked
visit passing, or a log that no longer reaches back, means a full read."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from tests.support.clinic_setup import CHEAP_HASHER, Clinic, fill

from itb import bootstrap
from itb.adapters.registry import store
from itb.adapters.registry.tables import RADAR_TABLES
from itb.services.clinic import ClinicService, RefillRequest


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


def _fresh(registry: bootstrap.ClinicHandle, c: Clinic) -> ClinicService:
    """A service with nothing kept: the radar as the registry says it now."""
    return ClinicService(registry.registry.uow, c.service.catalog, c.clock, CHEAP_HASHER)


def test_the_log_names_the_patient_each_write_touched(
    registry: bootstrap.ClinicHandle, sql_clinic: Clinic
) -> None:
    c = sql_clinic
    c.clock.advance(days=30)
    c.service.record_refill(
        c.nurse, c.implant_id, RefillRequest(None, withdrawn_ml=0.5, fill=fill())
    )
    c.service.book_visit(c.nurse, c.patient_id, at=c.clock.now() + timedelta(days=9), kind="refill")
    for table in RADAR_TABLES:
        before = _generation(registry)
        with registry.registry.engine.begin() as conn:
            if table == "patients":
                where = f"WHERE id = '{c.other_patient_id}'"
            elif table in ("implants", "visits"):
                where = f"WHERE patient_id = '{c.patient_id}'"
            else:
                where = f"WHERE implant_id = '{c.implant_id}'"
            col = _a_column(table)
            conn.execute(sa.text(f"UPDATE {table} SET {col} = {col} {where}"))
        with registry.registry.read_uow() as uow:
            changed = uow.radar.changed_since(before)
        expected = c.other_patient_id if table == "patients" else c.patient_id
        assert changed == frozenset({expected}), table


def test_the_kept_radar_always_equals_a_fresh_read(
    registry: bootstrap.ClinicHandle, sql_clinic: Clinic
) -> None:
    """After every kind of write, by the service or by plain SQL, the radar of a service
    that keeps its facts equals that of one that reads everything."""
    c = sql_clinic
    kept = c.service
    steps = [
        lambda: kept.book_visit(c.nurse, c.patient_id, at=c.clock.now() + timedelta(days=5), kind="refill"),
        lambda: c.clock.advance(days=30),
        lambda: kept.record_refill(c.nurse, c.implant_id, RefillRequest(None, withdrawn_ml=0.4, fill=fill())),
        lambda: _sql(registry, f"UPDATE refill_visits SET resolved = {_true(registry)}"),
        lambda: _sql(registry, f"UPDATE patients SET family_name = 'Changed' WHERE id = '{c.other_patient_id}'"),
        lambda: _sql(registry, f"UPDATE implants SET status = 'explanted' WHERE id = '{c.implant_id}'"),
        lambda: _sql(registry, f"UPDATE implants SET status = 'active' WHERE id = '{c.implant_id}'"),
        lambda: _sql(registry, f"DELETE FROM visits WHERE patient_id = '{c.patient_id}'"),
        lambda: _sql(registry, "DELETE FROM radar_changes"),  # the log lost: a full read
        lambda: _sql(registry, f"UPDATE patients SET given_name = 'Once' WHERE id = '{c.patient_id}'"),
        lambda: (  # a registry put back to an older state (counter and log start again)
            _sql(registry, "UPDATE radar_generation SET n = 0"),
            _sql(registry, "DELETE FROM radar_changes"),
            _sql(registry, f"UPDATE patients SET family_name = 'Back' WHERE id = '{c.patient_id}'"),
        ),
        lambda: _sql(registry, f"UPDATE patients SET given_name = 'Twice' WHERE id = '{c.patient_id}'"),
        lambda: _sql(registry, f"UPDATE patients SET given_name = 'Again' WHERE id = '{c.patient_id}'"),
    ]  # fmt: skip
    for k, step in enumerate(steps):
        kept.radar(c.nurse)  # something kept from before the step
        step()
        assert kept.radar(c.nurse) == _fresh(registry, c).radar(c.nurse), f"after step {k}"


def _sql(registry: bootstrap.ClinicHandle, statement: str) -> None:
    with registry.registry.engine.begin() as conn:
        conn.execute(sa.text(statement))


def _true(registry: bootstrap.ClinicHandle) -> str:
    return "true" if registry.registry.engine.dialect.name == "postgresql" else "1"


def test_after_one_write_only_that_patient_is_read_again(
    registry: bootstrap.ClinicHandle, sql_clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = sql_clinic
    c.service.radar(c.nurse)
    asked: list[object] = []
    real = store.SqlRadar.facts

    def spy(self: store.SqlRadar, now: datetime, patient_ids: object = None) -> object:
        asked.append(patient_ids)
        return real(self, now, patient_ids)  # type: ignore[arg-type]

    monkeypatch.setattr(store.SqlRadar, "facts", spy)
    c.service.radar(c.nurse)
    assert asked == []  # nothing written: nothing read
    c.service.book_visit(c.nurse, c.patient_id, at=c.clock.now() + timedelta(days=4), kind="refill")
    rows = c.service.radar(c.nurse)
    assert asked == [frozenset({c.patient_id})]
    assert next(r for r in rows if r.pump.patient_id == c.patient_id).pump.next_visit_at is not None
