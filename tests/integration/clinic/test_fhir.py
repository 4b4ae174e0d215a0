"""FHIR R4: the virtual clinic exported as a Bundle, validated (fhir.resources' R4B
models for structure, the project's own checks for the bindings and units it relies
on) and imported into an empty registry on SQLite and PostgreSQL with nothing lost; a
hand-written Bundle imported; a Bundle with a bad value refused whole, naming it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from tests.support.clinic_setup import CHEAP_HASHER, PASSWORD

from itb import bootstrap
from itb.adapters.fhir import Importer, context_for, from_bundle, to_bundle
from itb.adapters.fhir.codes import ROUTE_INTRATHECAL, UCUM
from itb.domain.clinic.access import Actor
from itb.domain.errors import HardLimitExceeded, InvalidValue
from itb.services.clinic.demo import build_demo_clinic
from itb.services.clinic.exchange import PatientFile

TODAY = datetime(2026, 12, 1, 8, tzinfo=UTC)
HAND_WRITTEN = Path(__file__).resolve().parents[3] / "docs" / "fhir" / "hand-written-bundle.json"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[PatientFile], dict[str, Any]]:
    """A four-patient virtual clinic (years of history) and its export."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fhir') / 'source.db'}"
    handle = bootstrap.clinic(url, create=True, hasher=CHEAP_HASHER)
    try:
        demo = build_demo_clinic(
            handle.registry.uow, bootstrap.catalog(), CHEAP_HASHER, patients=4, seed=7, today=TODAY
        )
        lead = handle.service.actor(demo.users[0].username)
        files = handle.service.patient_files(lead)
        bundle = to_bundle(files, context_for(handle.service.catalog, "Source clinic", TODAY))
    finally:
        handle.close()
    return files, json.loads(json.dumps(bundle))  # as a file would carry it


@pytest.fixture
def target(db_url: str) -> Iterator[tuple[bootstrap.ClinicHandle, Actor]]:
    """An empty registry on the backend under test, with one physician to import."""
    handle = bootstrap.clinic(db_url, create=True, hasher=CHEAP_HASHER)
    handle.service.initialise(
        clinic_name="Target clinic", clinic_phone="+44 20 7946 0000", nurses_may_verify=False,
        admin_username="drlee", admin_display_name="Dr Lee", admin_password=PASSWORD,
    )  # fmt: skip
    yield handle, handle.service.actor("drlee")
    handle.close()


def _importer(actor: Actor) -> Importer:
    return Importer(actor.username, actor.role.value, TODAY)


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _walk(v, f"{path}[{k}]")


def test_the_export_is_a_valid_r4_bundle_with_the_bindings_itb_relies_on(
    exported: tuple[list[PatientFile], dict[str, Any]],
) -> None:
    files, bundle = exported
    Bundle.model_validate(bundle)  # structure, every resource (R4B models)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds >= {
        "Patient", "RelatedPerson", "Device", "Procedure", "DeviceUseStatement",
        "MedicationRequest", "MedicationAdministration", "Observation", "Task", "Provenance",
        "Appointment", "Flag", "Basic",
    }  # fmt: skip
    names = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    for e in bundle["entry"]:
        r = e["resource"]
        for path, node in _walk(r):
            ref = node.get("reference")
            if isinstance(ref, str) and not ref.startswith("#"):
                assert ref in names, f"{r['id']}{path}: {ref} not in the Bundle"
            if "value" in node and "unit" in node:  # every Quantity is UCUM
                assert (node["system"], node["code"]) == (UCUM, node["unit"]), (r["id"], path)
        if r["resourceType"] == "MedicationRequest":
            assert r["dosageInstruction"], r["id"]
            for d in r["dosageInstruction"]:
                assert ROUTE_INTRATHECAL in d["route"]["coding"]
                for dr in d.get("doseAndRate", ()):
                    assert dr.get("rateQuantity", dr.get("doseQuantity"))["code"] in (
                        "ug/d",
                        "ug/h",
                        "ug",
                    )
    catalog = bootstrap.catalog()
    for f in files:
        for i in f.implants:
            pump = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == i.id)
            assert pump["manufacturer"] == catalog.preset(i.pump_preset).modelled_on_maker
            assert (
                pump["property"][0]["valueQuantity"][0]["value"]
                == catalog.preset(i.pump_preset).reservoir_ml
            )
            catheter = next(
                e["resource"] for e in bundle["entry"] if e["resource"]["id"] == f"{i.id}-catheter"
            )
            assert catheter["parent"] == {"reference": f"Device/{i.id}"}
            first = next(
                e["resource"] for e in bundle["entry"] if e["resource"]["id"] == f"{i.id}-fill"
            )
            assert first["contained"][0]["batch"]["lotNumber"] == i.fill_lot  # as for refills
    # each program change points at the one it replaced, in order, per pump
    for f in files:
        for i in f.implants:
            rx = [e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "MedicationRequest"
                  and e["resource"]["id"].startswith(f"{i.id}-")]  # fmt: skip
            assert [r.get("priorPrescription") for r in rx[1:]] == [
                {"reference": f"MedicationRequest/{r['id']}"} for r in rx[:-1]
            ]
            if rx:
                assert [r["status"] for r in rx].count("active") == 1
    verified = sum(1 for f in files for c in f.changes if c.verified_by)
    assert verified == sum(
        1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"
    )
    active = sum(1 for f in files if any(i.status.value == "active" for i in f.implants))
    flags = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag"]
    assert len(flags) == active
    assert all("abrupt withdrawal" in x["code"]["text"] for x in flags)


def test_the_virtual_clinic_round_trips_into_an_empty_registry(
    exported: tuple[list[PatientFile], dict[str, Any]],
    target: tuple[bootstrap.ClinicHandle, Actor],
) -> None:
    files, bundle = exported
    handle, actor = target
    read = from_bundle(bundle, _importer(actor))
    assert read == files  # every record, field by field, from the Bundle alone
    counts = handle.service.import_patient_files(actor, read)
    assert counts["patients"] == len(files)
    assert handle.service.patient_files(actor) == files  # stored exactly
    again = to_bundle(
        handle.service.patient_files(actor),
        context_for(handle.service.catalog, "Source clinic", TODAY),
    )
    assert again == bundle
    # the pump models rebuilt from the logs say what the source's said
    rows = handle.service.radar(actor, on=TODAY)
    assert len(rows) == sum(1 for f in files for i in f.implants if i.status.value == "active")
    # a second import finds the identifiers taken and changes nothing
    with pytest.raises(InvalidValue, match=r"Patient/P0001\.id"):
        handle.service.import_patient_files(actor, read)
    assert handle.service.patient_files(actor) == files
    # new records get identifiers after the imported ones
    soon = datetime.now(UTC) + timedelta(days=30)
    nxt = handle.service.book_visit(actor, files[0].patient.id, at=soon, kind="checkup")
    assert nxt.id not in {v.id for f in files for v in f.visits}


def _resource(bundle: dict[str, Any], kind: str, pred: Any = None) -> dict[str, Any]:
    return next(
        e["resource"] for e in bundle["entry"]
        if e["resource"]["resourceType"] == kind and (pred is None or pred(e["resource"]))
    )  # fmt: skip


def test_a_bundle_with_a_bad_value_is_refused_whole_naming_the_resource_and_field(
    exported: tuple[list[PatientFile], dict[str, Any]],
    target: tuple[bootstrap.ClinicHandle, Actor],
) -> None:
    _, bundle = exported
    handle, actor = target

    def refused(change: Any, match: str, error: type[Exception] = InvalidValue) -> None:
        bad = copy.deepcopy(bundle)
        change(bad)
        with pytest.raises(error, match=match):
            handle.service.import_patient_files(actor, from_bundle(bad, _importer(actor)))
        assert handle.service.patients(actor) == []  # nothing written

    refused(lambda b: _resource(b, "Patient").update(birthDate="19x"), r"Patient/P0001\.birthDate")
    refused(lambda b: _resource(b, "Patient").update(gender="woman"), r"Patient/P0001\.gender")
    refused(
        lambda b: _resource(b, "MedicationAdministration")["dosage"]["dose"].update(code="L"),
        r"MedicationAdministration/\S+\.dosage\.dose\.code = 'L'.*UCUM mL",
    )
    refused(
        lambda b: _resource(b, "MedicationAdministration")["dosage"]["route"]["coding"][0].update(
            code="26643006"
        ),
        r"MedicationAdministration/\S+\.dosage\.route.*72607000",
    )
    refused(
        lambda b: _resource(b, "Appointment").update(status="maybe"), r"Appointment/V\d+\.status"
    )

    def sky_high(b: dict[str, Any]) -> None:
        rx = _resource(b, "MedicationRequest")
        ext = next(x for x in rx["extension"] if x["url"].endswith("/pump-command"))
        command = json.loads(ext["valueString"])
        command["prescription"]["program"] = {"mode": "continuous", "dose_mcg_per_day": 9000.0}
        ext["valueString"] = json.dumps(command)

    refused(sky_high, r"command log of Implant/I\d+", HardLimitExceeded)
    refused(lambda b: _resource(b, "Patient").update(id="patient-1"), r"Patient/patient-1\.id")


def test_a_hand_written_bundle_imports_and_exports_what_it_said(
    target: tuple[bootstrap.ClinicHandle, Actor],
) -> None:
    handle, actor = target
    written = json.loads(HAND_WRITTEN.read_text(encoding="utf-8"))
    Bundle.model_validate(written)
    counts = handle.service.import_patient_files(actor, from_bundle(written, _importer(actor)))
    assert (counts["patients"], counts["commands"]) == (1, 2)
    [f] = handle.service.patient_files(actor)
    p, [i], [c], [v] = f.patient, f.implants, f.contacts, f.visits
    assert (p.mrn, p.given_name, p.family_name, p.sex, p.cause, p.weight_kg, p.timezone) == (
        "HOSP-000123", "Ana", "Rivera", "female", "multiple_sclerosis", 61.5, "Europe/Madrid",
    )  # fmt: skip
    assert (i.pump_preset, i.serial, i.udi, i.catheter_family, i.catheter_length_cm) == (
        "synchromed_ii_20", "NGP123456H", "00643169007222", "ascenda_like", 55.0,
    )  # fmt: skip
    assert (i.fill_product, i.fill_lot, i.fill_volume_ml, i.fill_concentration_mcg_per_ml) == (
        "baclofen_2000", "L2026-0815", 20.0, 2000.0,
    )  # fmt: skip
    assert (c.name, c.relation, c.phone, c.caregiver) == (
        "Luis Rivera",
        "husband",
        "+34 600 000 001",
        True,
    )
    assert (v.kind, v.status.value, v.at) == (
        "refill",
        "booked",
        datetime(2026, 12, 15, 9, tzinfo=UTC),
    )
    now = handle.service.pump_now(actor, i.id, at=datetime(2026, 9, 2, tzinfo=UTC))
    assert now.snapshot.dose_mcg_per_day == pytest.approx(100.0)
    # and what it said comes back out in the standard elements
    out = to_bundle([f], context_for(handle.service.catalog, "Target clinic", TODAY))
    rx = _resource(out, "MedicationRequest")
    assert rx["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"]["value"] == 100.0
    assert rx["requester"] == {"display": "Dr Ortega"}


def test_a_hand_written_flex_program_is_read_step_by_step(
    target: tuple[bootstrap.ClinicHandle, Actor],
) -> None:
    """Two timed instructions in ug/h: a day program of 8 h at 10 and 16 h at 5 mcg/h
    (160 mcg/day); a step without its start time is refused, naming it."""
    handle, actor = target
    written = json.loads(HAND_WRITTEN.read_text(encoding="utf-8"))
    rx = _resource(written, "MedicationRequest")
    route = rx["dosageInstruction"][0]["route"]

    def step(k: int, at: str, rate: float) -> dict[str, Any]:
        return {
            "sequence": k, "route": route, "timing": {"repeat": {"timeOfDay": [at]}},
            "doseAndRate": [{"rateQuantity": {"value": rate, "unit": "ug/h", "system": UCUM, "code": "ug/h"}}],
        }  # fmt: skip

    rx["dosageInstruction"] = [step(1, "07:00:00", 10.0), step(2, "15:00:00", 5.0)]
    broken = copy.deepcopy(written)
    del _resource(broken, "MedicationRequest")["dosageInstruction"][1]["timing"]
    with pytest.raises(InvalidValue, match=r"dosageInstruction\[1\]\.timing"):
        from_bundle(broken, _importer(actor))
    handle.service.import_patient_files(actor, from_bundle(written, _importer(actor)))
    [f] = handle.service.patient_files(actor)
    now = handle.service.pump_now(actor, f.implants[0].id, at=datetime(2026, 9, 2, tzinfo=UTC))
    assert now.snapshot.dose_mcg_per_day == pytest.approx(8 * 10.0 + 16 * 5.0)
