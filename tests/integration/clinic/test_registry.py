"""Every use case against a real database, on SQLite and PostgreSQL: what is stored comes
back exactly (times in UTC, floats to the bit), the schema is the migrated one, and a
reopened registry tells the same story."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tests.support.clinic_setup import CHEAP_HASHER, Clinic, fill, new_implant, new_patient

from itb import bootstrap
from itb.adapters.registry.tables import METADATA
from itb.domain.clinic.records import ChangeState, VisitStatus
from itb.domain.errors import InvalidValue, StaleVersion
from itb.services.clinic import ChangeRequest, ProgramRequest, Reading, RefillRequest


def test_the_migrated_schema_is_the_tables_module(registry: bootstrap.ClinicHandle) -> None:
    with registry.registry.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), METADATA)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    handle = bootstrap.clinic(sqlite_url, create=True, hasher=CHEAP_HASHER)
    try:
        with handle.registry.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        handle.close()


def test_a_registry_without_the_schema_is_refused(db_url: str) -> None:
    with pytest.raises(InvalidValue, match="itb clinic init"):
        bootstrap.clinic(db_url)


def test_the_whole_clinic_day_round_trips(sql_clinic: Clinic, db_url: str) -> None:
    c = sql_clinic
    svc = c.service
    c.clock.advance(days=1)
    svc.record_interrogation(c.nurse, c.implant_id, reading=Reading(reservoir_ml=19.7, note="ok"))
    c.clock.advance(days=40)
    visit = svc.book_visit(
        c.nurse, c.patient_id, at=c.clock.now() + timedelta(hours=2), kind="refill"
    )
    c.clock.advance(hours=2)
    refill = svc.record_refill(
        c.nurse, c.implant_id, RefillRequest(at=c.clock.now(), withdrawn_ml=11.6, fill=fill())
    )
    change = svc.stage_change(
        c.nurse,
        c.implant_id,
        ChangeRequest(program=ProgramRequest(dose_mcg_per_day=125.0), reason="tone"),
    )
    svc.verify_change(c.physician, change.id)
    svc.commit_change(c.nurse, change.id)
    svc.record_symptoms(c.caregiver, c.patient_id, signs=["itching"])
    card = svc.wallet_card(c.patient, c.patient_id)
    before = svc.pump_now(c.nurse, c.implant_id)

    # a second registry handle on the same database sees exactly the same
    other = bootstrap.clinic(db_url, clock=c.clock, hasher=CHEAP_HASHER)
    try:
        svc2 = other.service
        doc = svc2.actor("drlee")
        chart = svc2.chart(doc, c.patient_id)
        (r,) = chart.refills
        assert r == refill.visit
        assert r.at.tzinfo is not None
        assert r.at.utcoffset() == timedelta(0)
        assert chart.changes[0].state is ChangeState.COMMITTED
        assert next(v for v in chart.visits if v.id == visit.id).status is VisitStatus.DONE
        after = svc2.pump_now(doc, c.implant_id, at=before.at)
        assert after.reservoir_calculated_ml == before.reservoir_calculated_ml
        assert after.snapshot == before.snapshot
        log = svc2.command_log(doc, c.implant_id)
        assert [e.command["kind"] for e in log] == [
            "fill_at_implant",
            "reprogram",
            "interrogate",
            "refill",
            "reprogram",
        ]
        assert svc2.wallet_card(doc, c.patient_id).panels == card.panels
        assert svc2.verify_audit(doc).ok
        assert svc2.authenticate("nina", "correct-horse-battery").username == "nina"
    finally:
        other.close()


def test_identifiers_sort_by_number_past_9999(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    with registry.registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE id_counters SET value = 9998 WHERE prefix = 'P'"))
    svc = sql_clinic.service
    for k in range(3):
        svc.register_patient(sql_clinic.nurse, new_patient(f"MRN-N{k}"))
    ids = [p.id for p in svc.patients(sql_clinic.viewer)]
    assert ids[-3:] == ["P9999", "P10000", "P10001"]


def test_a_unique_medical_record_number_and_a_stale_edit_are_refused_by_the_database(
    sql_clinic: Clinic,
) -> None:
    svc = sql_clinic.service
    with pytest.raises(InvalidValue, match="mrn"):
        svc.register_patient(sql_clinic.nurse, new_patient("MRN-1"))
    svc.edit_patient(sql_clinic.nurse, sql_clinic.patient_id, expected_version=1, notes="a")
    with pytest.raises(StaleVersion):
        svc.edit_patient(sql_clinic.nurse, sql_clinic.patient_id, expected_version=1, notes="b")


def test_a_refused_use_case_leaves_no_row_but_its_audit_entry(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    def counts() -> dict[str, int]:
        with registry.registry.engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in METADATA.sorted_tables
            }

    before = counts()
    with pytest.raises(InvalidValue):
        sql_clinic.service.record_implant(
            sql_clinic.physician,
            sql_clinic.other_patient_id,
            new_implant(sql_clinic.clock, fill=fill(40.0)),
        )
    after = counts()
    assert after["audit_log"] == before["audit_log"] + 1
    assert {k: v for k, v in after.items() if k not in ("audit_log", "audit_head")} == {
        k: v for k, v in before.items() if k not in ("audit_log", "audit_head")
    }


def test_the_radar_query_reads_what_the_records_hold(sql_clinic: Clinic) -> None:
    """The radar's one query reads the driver's values without the type layer: it must
    give exactly what the records give (aware UTC times, booleans, alarm lists), on both
    backends, with a booked visit and a refill left unresolved."""
    c = sql_clinic
    c.clock.advance(days=30)
    c.service.record_refill(
        c.nurse, c.implant_id, RefillRequest(None, withdrawn_ml=0.5, fill=fill())
    )
    visit_at = c.clock.now() + timedelta(days=12, minutes=7)
    c.service.book_visit(c.nurse, c.patient_id, at=visit_at, kind="refill")
    now = c.clock.now()
    uow = c.service._read_uow()
    with uow:
        facts = {f.implant_id: f for f in uow.radar.facts(now)}
        implants = [i for i in uow.implants.all() if i.status.value == "active"]
        assert set(facts) == {i.id for i in implants}
        for implant in implants:
            f = facts[implant.id]
            p = uow.patients.get(implant.patient_id)
            assert p is not None
            assert (f.patient_id, f.given_name, f.family_name, f.pump_preset) == (
                p.id, p.given_name, p.family_name, implant.pump_preset,
            )  # fmt: skip
            assert (f.sci_at_or_above_t6, f.communication_difficulty, f.previous_withdrawal) == (
                p.sci_at_or_above_t6, p.communication_difficulty, p.previous_withdrawal,
            )  # fmt: skip
            snap = uow.snapshots.get(implant.id)
            if snap is None:
                assert f.snapshot is None
            else:
                assert f.snapshot == replace(snap, state={})
                assert f.snapshot.at.tzinfo is not None
            booked = [
                v.at for v in uow.visits.find(patient_id=p.id, status="booked") if v.at >= now
            ]
            assert f.next_visit_at == min(booked, default=None)
            open_ = [r for r in uow.refills.find(implant_id=implant.id) if not r.resolved]
            assert f.unresolved_discrepancies == len(open_)
    assert facts[c.implant_id].next_visit_at == visit_at
    assert facts[c.implant_id].unresolved_discrepancies == 1
