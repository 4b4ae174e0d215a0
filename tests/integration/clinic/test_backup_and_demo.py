"""Backups round-trip (on each backend, and from SQLite into PostgreSQL), and the virtual
clinic builds a plausible history through the use cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, Clinic

from itb import bootstrap
from itb.domain.errors import InvalidValue
from itb.services.clinic.demo import build_demo_clinic


def test_a_backup_restores_to_the_same_registry(
    sql_clinic: Clinic,
    registry: bootstrap.ClinicHandle,
    postgres_url: str,
    sqlite_url: str,
    db_url: str,
) -> None:
    data = json.loads(json.dumps(registry.registry.dump()))  # through a file's JSON
    target_url = postgres_url if db_url.startswith("sqlite") else sqlite_url
    target = bootstrap.clinic(target_url, create=True, clock=FakeClock(), hasher=CHEAP_HASHER)
    try:
        counts = target.registry.load(data)
        assert counts["audit_log"] == len(data["tables"]["audit_log"]) > 10
        again = target.registry.dump()
        assert again["tables"] == data["tables"]
        svc = target.service
        doc = svc.actor("drlee")
        assert svc.verify_audit(doc).ok
        assert svc.pump_now(doc, sql_clinic.implant_id) == sql_clinic.service.pump_now(
            sql_clinic.nurse, sql_clinic.implant_id
        )
        # and the restored registry goes on: new ids continue after the restored ones
        p = svc.register_patient(
            doc,
            __import__("tests.support.clinic_setup", fromlist=["new_patient"]).new_patient(
                "MRN-NEW"
            ),
        )
        assert p.id == "P0003"
        with pytest.raises(InvalidValue, match="empty registry"):
            target.registry.load(data)
    finally:
        target.close()


def test_a_damaged_backup_is_refused_whole(
    registry: bootstrap.ClinicHandle, sql_clinic: Clinic, tmp_path: Path
) -> None:
    data = registry.registry.dump()
    assert data["tables"]["contacts"]
    data["tables"]["contacts"] = []  # cut a table
    target = bootstrap.clinic(
        f"sqlite:///{tmp_path / 'target.db'}", create=True, hasher=CHEAP_HASHER
    )
    try:
        with pytest.raises(InvalidValue, match="digest"):
            target.registry.load(data)
        assert target.registry.dump()["tables"]["patients"] == []
    finally:
        target.close()


def test_the_virtual_clinic(db_url: str) -> None:
    handle = bootstrap.clinic(db_url, create=True, hasher=CHEAP_HASHER)
    try:
        today = datetime(2026, 12, 1, 8, tzinfo=UTC)
        demo = build_demo_clinic(
            handle.registry.uow, bootstrap.catalog(), CHEAP_HASHER, patients=4, seed=7, today=today
        )
        assert demo.patients == 4
        assert demo.refused == ()
        assert demo.records["refill visits"] >= 4
        assert demo.records["pump commands"] > demo.records["refill visits"]
        svc = handle.service
        lead = svc.authenticate(demo.users[0].username, demo.users[0].password)
        rows = svc.radar(lead, on=today)
        assert len(rows) == demo.implanted
        assert svc.verify_audit(lead).ok
        patient_user = next(u for u in demo.users if u.role == "patient")
        me = svc.authenticate(patient_user.username, patient_user.password)
        assert [p.id for p in svc.patients(me)] == [patient_user.patient_id]
        with pytest.raises(InvalidValue, match="already"):
            build_demo_clinic(
                handle.registry.uow,
                bootstrap.catalog(),
                CHEAP_HASHER,
                patients=1,
                seed=7,
                today=today,
            )
    finally:
        handle.close()
