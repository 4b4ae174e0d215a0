"""Complications of the implanted system in the registry, on SQLite and PostgreSQL: who may
record them, entries appended and never changed, an explant through a complication ending
the implant exactly as an explant surgery does (and taking it off the refill radar), bad
input leaving nothing written, the audit trail recording every entry, and a registry at
revision 0005 migrated with its data intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, Clinic, fill, make_clinic, new_implant

from itb import bootstrap
from itb.adapters.registry import open_registry
from itb.adapters.registry.migrate import schema_state, upgrade
from itb.adapters.registry.store import SqlComplications
from itb.adapters.registry.tables import METADATA
from itb.domain.clinic.access import Actor
from itb.domain.clinic.records import ComplicationRecord, ComplicationStatus, ImplantStatus
from itb.domain.clinical.complications import Bridge
from itb.domain.errors import Forbidden, InvalidValue, ITBError, NotFound, StaleVersion
from itb.services.clinic import RefillRequest

ROLES = ("physician", "nurse", "viewer", "patient", "caregiver", "other_patient")


def _counts(handle: bootstrap.ClinicHandle) -> dict[str, int]:
    with handle.registry.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in METADATA.sorted_tables
        }


def _rows(handle: bootstrap.ClinicHandle, table: str) -> list[dict[str, Any]]:
    t = METADATA.tables[table]
    with handle.registry.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]


def _without_audit(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k not in ("audit_log", "audit_head", "id_counters")}


def _infection(c: Clinic, actor: Actor, **extra: Any) -> ComplicationRecord:
    values: dict[str, Any] = {
        "kind": "wound_infection",
        "signs": ["fever", "wound redness or drainage"],
        "treatments": ["antibiotics"],
        "note": "pocket red and warm",
    }
    values.update(extra)
    return c.service.record_complication(actor, c.implant_id, **values)


# ------------------------------------------------------------------ roles


def test_every_role_records_and_reads_complications_as_the_access_rules_say(
    sql_clinic: Clinic,
) -> None:
    c = sql_clinic
    c.clock.advance(days=10)
    may_record = {"physician", "nurse"}
    may_read = {"physician", "nurse", "viewer", "patient", "caregiver"}
    recorded: list[str] = []
    for role in ROLES:
        actor: Actor = getattr(c, role)
        audit_before = len(c.service.audit_trail(c.viewer))
        if role in may_record:
            recorded.append(_infection(c, actor).id)
        else:
            with pytest.raises(NotFound if role == "other_patient" else Forbidden):
                _infection(c, actor)
            trail = c.service.audit_trail(c.viewer)[audit_before:]
            refused = [e for e in trail if e.action == "refused:record_complication"]
            assert [e.actor for e in refused] == [actor.username]
        if role in may_read:
            ids = [x.id for x in c.service.complications(actor, c.patient_id)]
            assert ids == recorded
        else:
            with pytest.raises(NotFound):
                c.service.complications(actor, c.patient_id)
    assert len(recorded) == 2
    # an update: the same roles
    for role in ("viewer", "patient", "caregiver"):
        with pytest.raises(Forbidden):
            c.service.update_complication(getattr(c, role), recorded[0], status="resolved")
    with pytest.raises(NotFound):
        c.service.update_complication(c.other_patient, recorded[0], status="resolved")
    after = c.service.update_complication(c.nurse, recorded[0], status="resolved")
    assert after.follows == recorded[0]
    assert after.stamp.created_by == c.nurse.username


def test_a_nurse_may_not_explant_and_nothing_is_written(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    c = sql_clinic
    c.clock.advance(days=10)
    first = _infection(c, c.nurse)
    before = _counts(registry)
    with pytest.raises(Forbidden, match="may not record surgery"):
        c.service.update_complication(c.nurse, first.id, treatments=["explant"])
    with pytest.raises(Forbidden, match="may not record surgery"):
        _infection(c, c.nurse, treatments=["antibiotics", "explant"])
    after = _counts(registry)
    assert _without_audit(after) == _without_audit(before)
    assert after["audit_log"] == before["audit_log"] + 2  # the two refusals
    assert c.service.chart(c.viewer, c.patient_id).implants[0].status is ImplantStatus.ACTIVE


# ------------------------------------------------------------------ append-only


def test_an_update_is_a_new_entry_and_the_earlier_one_never_changes(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    c = sql_clinic
    c.clock.advance(days=10)
    found = c.clock.now() - timedelta(hours=6)
    first = _infection(c, c.nurse, found_at=found, onset_at=found - timedelta(days=1))
    stored = _rows(registry, "complications")
    c.clock.advance(days=2)
    second = c.service.update_complication(
        c.physician, first.id, treatments=["drainage"], signs=["fever"], note="drained"
    )
    c.clock.advance(days=12)
    third = c.service.update_complication(c.nurse, second.id, status="resolved")
    rows = _rows(registry, "complications")
    assert rows[0] == stored[0]  # the first entry, byte for byte
    assert [r["id"] for r in rows] == [first.id, second.id, third.id]
    assert [r["follows"] for r in rows] == [None, first.id, second.id]
    assert {r["episode_id"] for r in rows} == {first.id}
    # each entry states the whole complication: carried over, treatments added
    assert second.treatments == ("antibiotics", "drainage")
    assert second.signs == ("fever", "wound_redness_or_drainage")
    assert (second.found_at, second.onset_at) == (first.found_at, first.onset_at)
    assert second.status is ComplicationStatus.ONGOING
    assert third.status is ComplicationStatus.RESOLVED
    assert third.treatments == second.treatments
    assert third.note == ""
    # what comes back is what was stored (times aware UTC)
    got = c.service.complications(c.viewer, c.patient_id)
    assert got == [first, second, third]
    assert got[0].found_at == found
    assert c.service.complications(c.viewer, c.patient_id, latest_only=True) == [third]
    # an entry already updated cannot be updated again: nothing written
    before = _counts(registry)
    with pytest.raises(StaleVersion, match=f"updated already by {second.id}"):
        c.service.update_complication(c.physician, first.id, status="ongoing")
    assert _without_audit(_counts(registry)) == _without_audit(before)
    # the entries of the audit trail carry the whole record, before and after
    trail = {(e.action, e.entity_id): e for e in c.service.audit_trail(c.viewer)}
    assert trail[("record_complication", first.id)].after["kind"] == "wound_infection"
    update = trail[("update_complication", third.id)]
    assert update.before["id"] == second.id
    assert update.after["status"] == "resolved"
    assert c.service.verify_audit(c.viewer).ok


def test_two_entries_after_the_same_one_cannot_both_be_stored(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    """The race the service's check cannot see (two writers reading the same latest entry):
    the database's unique ``follows`` refuses the second, as a stale version."""
    c = sql_clinic
    c.clock.advance(days=3)
    first = _infection(c, c.nurse)
    one = replace(first, id="X0901", follows=first.id)
    two = replace(first, id="X0902", follows=first.id)
    with registry.registry.uow() as uow:
        uow.complications.add(one)
        uow.commit()
    with registry.registry.uow() as uow, pytest.raises(StaleVersion, match=first.id):
        uow.complications.add(two)
    assert [r["id"] for r in _rows(registry, "complications")] == [first.id, "X0901"]


# ------------------------------------------------------------------ explant


def test_an_explant_through_a_complication_ends_the_implant_like_an_explant_surgery(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    c = sql_clinic
    svc = c.service
    c.clock.advance(days=20)
    assert [r.pump.implant_id for r in svc.radar(c.viewer)] == [c.implant_id]
    first = _infection(c, c.nurse)
    c.clock.advance(days=2)
    version = svc.pump_now(c.physician, c.implant_id).implant.version
    out = svc.update_complication(
        c.physician,
        first.id,
        treatments=["explant"],
        bridge="oral",
        oral_bridge_mg_per_day=120.0,  # above the oral label's 80 mg/day, as bridges go [C89]
        note="pocket infection did not settle",
        expected_version=version,
    )
    assert out.status is ComplicationStatus.EXPLANTED
    assert out.bridge is Bridge.ORAL
    assert out.oral_bridge_mg_per_day == 120.0
    chart = svc.chart(c.viewer, c.patient_id)
    (implant,) = chart.implants
    assert implant.status is ImplantStatus.EXPLANTED
    assert implant.ended_at == out.at == c.clock.now()
    assert implant.version == version + 1
    assert chart.active_implant is None
    (surgery,) = chart.surgeries
    assert (surgery.id, surgery.kind, surgery.at) == (out.explant_surgery_id, "explant", out.at)
    assert first.id in surgery.detail
    # off the refill radar, but on the list of pumps out with its bridge
    assert svc.radar(c.viewer) == []
    c.clock.advance(days=3)
    (gone,) = svc.pumps_out(c.viewer)
    assert (gone.patient_id, gone.implant_id, gone.kind) == (
        c.patient_id,
        c.implant_id,
        "wound_infection",
    )
    assert (gone.bridge, gone.oral_bridge_mg_per_day, gone.since) == ("oral", 120.0, out.at)
    assert gone.days_out == pytest.approx(3.0)
    c.clock.advance(days=-3)
    # the pump takes no more commands
    with pytest.raises(InvalidValue, match="in use"):
        svc.record_refill(c.nurse, c.implant_id, RefillRequest(None, withdrawn_ml=5.0, fill=fill()))
    # the audit trail: the surgery and the end of the implant with the complication's entry
    actions = [e.action for e in svc.audit_trail(c.viewer) if not e.action.startswith("read:")]
    assert actions[-4:-1] == ["record_surgery", "explant", "update_complication"]
    assert svc.verify_audit(c.viewer).ok
    # later entries keep the link; the pump out: a second explant is refused
    c.clock.advance(days=14)
    done = svc.update_complication(c.nurse, out.id, status="resolved", bridge="none")
    assert done.explant_surgery_id == surgery.id
    assert done.oral_bridge_mg_per_day is None
    before = _counts(registry)
    with pytest.raises(InvalidValue, match="not in use"):
        svc.record_complication(
            c.physician, c.implant_id, kind="meningitis", treatments=["explant"]
        )
    assert _without_audit(_counts(registry)) == _without_audit(before)
    # resolved, still out: listed with no bridge until a new pump is in
    (gone,) = svc.pumps_out(c.viewer)
    assert (gone.complication_id, gone.bridge) == (done.id, "none")
    svc.record_implant(c.physician, c.patient_id, new_implant(c.clock, serial="NGP-0002"))
    assert svc.pumps_out(c.viewer) == []


def test_a_first_entry_can_explant_at_once_and_matches_record_surgery(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    """The same implant ended through record_surgery(explant) and through a complication:
    the implant rows differ only in their reason."""
    c = sql_clinic
    c.clock.advance(days=30)
    rec = _infection(c, c.physician, treatments=["antibiotics", "explant"], bridge="intrathecal")
    assert rec.status is ComplicationStatus.EXPLANTED
    via_complication = _rows(registry, "implants")[0]
    # the other patient gets an implant, ended by an explant surgery at the same instant
    implant = c.service.record_implant(
        c.physician, c.other_patient_id, new_implant(c.clock, serial="NGP-0002")
    )
    c.service.record_surgery(
        c.physician, implant.id, kind="explant", detail=f"explant for a complication: Wound "
        f"or pump-pocket infection ({rec.id})"
    )  # fmt: skip
    via_surgery = next(r for r in _rows(registry, "implants") if r["id"] == implant.id)
    differ = {k for k in via_complication if via_complication[k] != via_surgery[k]}
    assert differ <= {"id", "patient_id", "serial", "implanted_at", "created_at", "created_by",
                      "modified_by", "modified_at"}  # fmt: skip
    assert via_complication["status"] == via_surgery["status"] == "explanted"
    assert via_complication["end_reason"] == via_surgery["end_reason"]
    assert via_complication["version"] == via_surgery["version"]


def test_an_explant_refused_half_way_leaves_nothing(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal before the explant (a stale implant version, a bad bridge dose) and one
    after its surgery was written (another writer's entry got in first: the database's
    unique ``follows``) both leave the implant in use and nothing written."""
    c = sql_clinic
    c.clock.advance(days=5)
    first = _infection(c, c.nurse)
    implant_before = _rows(registry, "implants")
    with pytest.raises(StaleVersion):
        c.service.update_complication(
            c.physician, first.id, treatments=["explant"], expected_version=0
        )
    with pytest.raises(InvalidValue, match="oral_bridge_mg_per_day"):
        c.service.update_complication(
            c.physician,
            first.id,
            treatments=["explant"],
            bridge="oral",
            oral_bridge_mg_per_day=900.0,
        )
    # the race: another writer's update of the same entry commits while this one explants
    racer = replace(first, id="X0900", follows=first.id, note="the other writer")
    with registry.registry.uow() as uow:
        uow.complications.add(racer)
        uow.commit()
    monkeypatch.setattr(SqlComplications, "find", lambda self, **equals: [])
    before = _counts(registry)
    with pytest.raises(StaleVersion, match=first.id):
        c.service.update_complication(c.physician, first.id, treatments=["explant"])
    monkeypatch.undo()
    after = _counts(registry)
    assert _without_audit(after) == _without_audit(before)
    assert after["audit_log"] == before["audit_log"] + 1
    assert _rows(registry, "implants") == implant_before
    assert _rows(registry, "surgeries") == []
    assert [r.pump.implant_id for r in c.service.radar(c.viewer)] == [c.implant_id]
    assert c.service.verify_audit(c.viewer).ok


# ------------------------------------------------------------------ bad input

BAD: dict[str, tuple[dict[str, Any], str]] = {
    "unknown kind": ({"kind": "flu"}, "kind"),
    "kind not text": ({"kind": 3}, "kind"),
    "unknown treatment": ({"treatments": ["leeches"]}, "treatment"),
    "unknown sign": ({"signs": ["sneezing loudly"]}, "sign"),
    "unknown bridge": ({"bridge": "iv"}, "bridge"),
    "a bridge while the pump is in": ({"bridge": "oral", "oral_bridge_mg_per_day": 50.0}, "bridge"),
    "unknown status": ({"status": "better"}, "status"),
    "explanted with the pump in": ({"status": "explanted"}, "status"),
    "reimplant with the pump in": ({"treatments": ["reimplant"]}, "treatment"),
    "oral bridge without its dose": (
        {"treatments": ["explant"], "bridge": "oral"}, "oral_bridge_mg_per_day"),
    "oral bridge dose too high": (
        {"treatments": ["explant"], "bridge": "oral", "oral_bridge_mg_per_day": 241.0},
        "oral_bridge_mg_per_day"),
    "oral bridge dose zero": (
        {"treatments": ["explant"], "bridge": "oral", "oral_bridge_mg_per_day": 0.0},
        "oral_bridge_mg_per_day"),
    "oral bridge dose nan": (
        {"treatments": ["explant"], "bridge": "oral", "oral_bridge_mg_per_day": float("nan")},
        "oral_bridge_mg_per_day"),
    "a dose without an oral bridge": (
        {"treatments": ["explant"], "bridge": "intrathecal", "oral_bridge_mg_per_day": 40.0},
        "oral_bridge_mg_per_day"),
    "found in the future": ({"found_at": "future"}, "found_at"),
    "found before the implant": ({"found_at": "before implant"}, "found_at"),
    "onset after found": ({"onset_at": "after found"}, "onset_at"),
    "at before found": ({"at": "before found"}, "at"),
    "a note too long": ({"note": "x" * 2001}, "note"),
    "a note with control characters": ({"note": "a\x00b"}, "note"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_names_its_field_and_writes_nothing(
    name: str, sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    c = sql_clinic
    c.clock.advance(days=5)
    now = c.clock.now()
    times: dict[str, Callable[[], Any]] = {
        "future": lambda: now + timedelta(days=1),
        "before implant": lambda: now - timedelta(days=30),
        "after found": lambda: now - timedelta(hours=1),
        "before found": lambda: now - timedelta(days=2),
    }
    values, field = BAD[name]
    values = {k: times[v]() if isinstance(v, str) and v in times else v for k, v in values.items()}
    if name == "onset after found":
        values["found_at"] = now - timedelta(days=1)
    if name == "at before found":
        values["found_at"] = now - timedelta(days=1)
    before = _counts(registry)
    with pytest.raises(InvalidValue) as info:
        c.service.record_complication(
            c.physician, c.implant_id, **{"kind": "wound_infection", **values}
        )
    assert info.value.field == field
    assert "\n" not in str(info.value)
    after = _counts(registry)
    assert _without_audit(after) == _without_audit(before)
    assert after["audit_log"] == before["audit_log"] + 1
    assert c.service.verify_audit(c.viewer).ok


def test_an_update_with_nothing_to_say_or_bad_values_writes_nothing(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    c = sql_clinic
    c.clock.advance(days=5)
    first = _infection(c, c.nurse)
    before = _counts(registry)
    for kwargs, field in (
        ({}, "update"),
        ({"status": "gone"}, "status"),
        ({"treatments": ["prayer"]}, "treatment"),
        ({"at": first.at - timedelta(minutes=1), "status": "resolved"}, "at"),
    ):
        with pytest.raises(InvalidValue) as info:
            c.service.update_complication(c.nurse, first.id, **kwargs)
        assert info.value.field == field
    with pytest.raises(NotFound):
        c.service.update_complication(c.nurse, "X9999", status="resolved")
    assert _without_audit(_counts(registry)) == _without_audit(before)


# ------------------------------------------------------------------ backup and migration


def test_complications_travel_in_a_backup(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle, sqlite_url: str, postgres_url: str,
    db_url: str,
) -> None:  # fmt: skip
    c = sql_clinic
    c.clock.advance(days=5)
    first = _infection(c, c.nurse)
    c.service.update_complication(c.physician, first.id, treatments=["explant"])
    data = registry.registry.dump()
    assert len(data["tables"]["complications"]) == 2
    target_url = postgres_url if db_url.startswith("sqlite") else sqlite_url
    target = bootstrap.clinic(target_url, create=True, clock=FakeClock(), hasher=CHEAP_HASHER)
    try:
        target.registry.load(json.loads(json.dumps(data)))
        doc = target.service.actor("drlee")
        assert target.service.complications(doc, c.patient_id) == c.service.complications(
            c.viewer, c.patient_id
        )
        assert target.service.verify_audit(doc).ok
    finally:
        target.close()


def _alembic(engine: sa.engine.Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("itb.adapters.registry").joinpath("migrations"))
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_a_registry_at_0005_migrates_with_its_data_intact(db_url: str) -> None:
    reg = open_registry(db_url)
    try:
        _alembic(reg.engine, "0005")
        assert schema_state(reg.engine) == "older"
        clock = FakeClock()
        c = make_clinic(uow=reg.uow, hasher=CHEAP_HASHER, clock=clock)  # the clinic at 0005
        clock.advance(days=40)
        c.service.record_refill(
            c.nurse, c.implant_id, RefillRequest(None, withdrawn_ml=12.0, fill=fill())
        )
        old_tables = [t for t in METADATA.sorted_tables if t.name != "complications"]
        with reg.engine.connect() as conn:
            assert "complications" not in sa.inspect(conn).get_table_names()
            before = {
                t.name: [dict(r) for r in conn.execute(sa.select(t)).mappings()] for t in old_tables
            }
        upgrade(reg.engine)
        assert schema_state(reg.engine) == "current"
        with reg.engine.connect() as conn:
            after = {
                t.name: [dict(r) for r in conn.execute(sa.select(t)).mappings()] for t in old_tables
            }
        assert after == before
        assert sum(len(v) for v in before.values()) > 20
    finally:
        reg.close()
    handle = bootstrap.clinic(db_url, clock=clock, hasher=CHEAP_HASHER)
    try:
        svc = handle.service
        assert svc.verify_audit(c.viewer).ok
        x = svc.record_complication(c.nurse, c.implant_id, kind="csf_leak", treatments=["bed_rest"])
        assert svc.complications(c.viewer, c.patient_id) == [x]
        assert [r.pump.implant_id for r in svc.radar(c.viewer)] == [c.implant_id]
    finally:
        handle.close()


def test_every_failure_is_an_itb_error(sql_clinic: Clinic) -> None:
    """No refusal escapes as anything but the domain's errors (the CLI and API map them)."""
    c = sql_clinic
    for kwargs in ({"kind": None}, {"kind": "csf_leak", "signs": [None]},
                   {"kind": "csf_leak", "treatments": [7]}, {"kind": "csf_leak", "bridge": None}):  # fmt: skip
        with pytest.raises(ITBError):
            c.service.record_complication(c.nurse, c.implant_id, **kwargs)
