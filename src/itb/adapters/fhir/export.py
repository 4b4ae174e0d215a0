"""Patient records as a FHIR R4 Bundle (JSON, as plain data).

One Bundle (type ``collection``) holds, per patient: Patient; RelatedPerson per contact;
Device for each pump (serial, UDI, model, reservoir capacity) and for its catheter
(``parent`` = the pump); Procedure for each implant, surgery (revision, replacement)
and the end of an implant (explant, replacement); DeviceUseStatement per implant;
MedicationRequest per program sent to the pump (baclofen, intrathecal, its
concentration as a contained Medication's strength, the dose rate in UCUM ``ug/d``, flex
steps as timed dosage instructions, patient-bolus limits as a maximum dose per period,
``priorPrescription`` pointing at the one it replaced); Task per programming change
with a Provenance for its second-person verification and a DetectedIssue per safety
finding; MedicationAdministration per fill (at implant and at each refill) with an
Observation of the expected vs withdrawn residual; Observation per interrogation
(reservoir volume), per assessment (spasticity scores) and per symptom report;
Appointment per visit; Basic per pump command that is not a program; and a Flag
"implanted ITB pump: risk of abrupt withdrawal" while a pump is in use.

Standard elements carry what they can; every other field of a record travels as a
local extension (:mod:`itb.adapters.fhir.fields`), so an import gets back exactly what
was exported.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from itb.adapters.fhir.codes import (
    EXT,
    FLAG_CATEGORY,
    MRN_SYSTEM,
    OBSERVATION_CATEGORY,
    PROVENANCE_PARTICIPANT,
    ROUTE_INTRATHECAL,
    local,
    quantity,
)
from itb.adapters.fhir.fields import stamp_extension, to_extensions, when
from itb.domain.clinic.records import (
    AssessmentRecord,
    CommandEntry,
    ContactRecord,
    ImplantRecord,
    ImplantStatus,
    InterrogationRecord,
    PatientRecord,
    ProgrammingChange,
    RefillVisitRecord,
    SurgeryRecord,
    SymptomRecord,
    VisitRecord,
    VisitStatus,
)
from itb.services.catalog import Catalog
from itb.services.clinic.exchange import PatientFile

__all__ = ["SEX_TO_GENDER", "VISIT_TO_APPOINTMENT", "BundleContext", "to_bundle"]

SEX_TO_GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
VISIT_TO_APPOINTMENT = {
    VisitStatus.BOOKED: "booked",
    VisitStatus.DONE: "fulfilled",
    VisitStatus.MISSED: "noshow",
    VisitStatus.CANCELLED: "cancelled",
}
CHANGE_TO_TASK = {
    "staged": "requested",
    "verified": "accepted",
    "committed": "completed",
    "cancelled": "cancelled",
}
SEVERITY_TO_FHIR = {"block": "high", "warn": "moderate", "info": "low"}
"""A safety finding's severity as DetectedIssue.severity (high | moderate | low)."""
BASELINE = "baclofen"

# the fields each resource carries in standard elements (the rest go to extensions)
PATIENT_STD = {"id", "mrn", "given_name", "family_name", "birth_date", "sex", "version", "stamp"}
CONTACT_STD = {"id", "patient_id", "name", "relation", "phone", "version", "stamp"}
IMPLANT_STD = {
    "id",
    "patient_id",
    "serial",
    "udi",
    "implanted_at",
    "pump_preset",
    "catheter_family",
    "catheter_length_cm",
    "ended_at",
    "version",
    "stamp",
}
SURGERY_STD = {"id", "implant_id", "at", "kind", "detail", "stamp"}
INTERROGATION_STD = {"id", "implant_id", "at", "reservoir_calculated_ml", "stamp"}
REFILL_STD = {
    "id",
    "implant_id",
    "at",
    "lot",
    "expiry",
    "fill_volume_ml",
    "concentration_mcg_per_ml",
    "version",
    "stamp",
}
CHANGE_STD = {"id", "implant_id", "version", "stamp"}
VISIT_STD = {"id", "patient_id", "at", "kind", "status", "note", "version", "stamp"}
SYMPTOM_STD = {"id", "patient_id", "at", "stamp"}
ASSESSMENT_STD = {"id", "patient_id", "at", "kind", "summary", "stamp"}
COMMAND_STD = {"implant_id", "seq"}


def rest(cls: type, standard: set[str]) -> list[str]:
    """The fields of ``cls`` that travel as extensions."""
    return [f.name for f in dataclasses.fields(cls) if f.name not in standard]


@dataclass(frozen=True, slots=True)
class BundleContext:
    """What the Bundle says beyond the records: the labels of pump and catheter models,
    pump reservoir capacities, the clinic's name and when the Bundle was made."""

    pump_label: Callable[[str], str]
    pump_reservoir_ml: Callable[[str], float]
    pump_maker: Callable[[str], str]
    catheter_label: Callable[[str], str]
    clinic_name: str
    made_at: datetime


def _ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def _meta(version: int | None) -> dict[str, Any]:
    return {} if version is None else {"meta": {"versionId": str(version)}}


def _resource(
    kind: str, rid: str, version: int | None, exts: list[dict[str, Any]], **body: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": kind, "id": rid, **_meta(version)}
    if exts:
        out["extension"] = exts
    out.update({k: v for k, v in body.items() if v is not None and v != [] and v != ""})
    return out


def _exts(record: Any, kind: str, standard: set[str]) -> list[dict[str, Any]]:
    out = to_extensions(record, kind, rest(type(record), standard))
    stamp = getattr(record, "stamp", None)
    if stamp is not None:
        out.append(stamp_extension(stamp))
    return out


def _text_note(text: str) -> list[dict[str, str]] | None:
    return [{"text": text}] if text else None


def _patient(p: PatientRecord) -> dict[str, Any]:
    return _resource(
        "Patient",
        p.id,
        p.version,
        _exts(p, "patient", PATIENT_STD),
        identifier=[{"system": MRN_SYSTEM, "value": p.mrn}],
        name=[{"family": p.family_name, "given": [p.given_name]}],
        gender=SEX_TO_GENDER[p.sex],
        birthDate=p.birth_date.isoformat(),
    )


def _contact(c: ContactRecord) -> dict[str, Any]:
    return _resource(
        "RelatedPerson",
        c.id,
        c.version,
        _exts(c, "contact", CONTACT_STD),
        patient=_ref("Patient", c.patient_id),
        relationship=[{"text": c.relation}] if c.relation else None,
        name=[{"text": c.name}],
        telecom=[{"system": "phone", "value": c.phone}] if c.phone else None,
    )


def _devices(i: ImplantRecord, ctx: BundleContext) -> list[dict[str, Any]]:
    status = "active" if i.status is ImplantStatus.ACTIVE else "inactive"
    pump = _resource(
        "Device",
        i.id,
        i.version,
        _exts(i, "implant", IMPLANT_STD),
        udiCarrier=[{"deviceIdentifier": i.udi}] if i.udi else None,
        status=status,
        serialNumber=i.serial or None,
        manufacturer=ctx.pump_maker(i.pump_preset) or None,
        deviceName=[{"name": ctx.pump_label(i.pump_preset), "type": "model-name"}],
        modelNumber=i.pump_preset,
        type={"coding": [local("device-type", "itb-pump", "Implanted intrathecal drug pump")]},
        patient=_ref("Patient", i.patient_id),
        property=[
            {
                "type": {
                    "coding": [local("device-property", "reservoir-capacity", "Reservoir capacity")]
                },
                "valueQuantity": [quantity(ctx.pump_reservoir_ml(i.pump_preset), "mL")],
            }
        ],
    )
    catheter = _resource(
        "Device",
        f"{i.id}-catheter",
        None,
        [],
        status=status,
        deviceName=[{"name": ctx.catheter_label(i.catheter_family), "type": "model-name"}],
        modelNumber=i.catheter_family,
        type={"coding": [local("device-type", "itb-catheter", "Intrathecal catheter")]},
        patient=_ref("Patient", i.patient_id),
        parent=_ref("Device", i.id),
        property=[
            {
                "type": {
                    "coding": [local("device-property", "implanted-length", "Implanted length")]
                },
                "valueQuantity": [quantity(i.catheter_length_cm, "cm")],
            }
        ],
    )
    return [pump, catheter]


def _implant_procedures(i: ImplantRecord) -> list[dict[str, Any]]:
    out = [
        _resource(
            "Procedure",
            f"{i.id}-implant",
            None,
            [],
            status="completed",
            code={
                "coding": [
                    local(
                        "procedure", "pump-implant", "Implant of an intrathecal pump and catheter"
                    )
                ]
            },
            subject=_ref("Patient", i.patient_id),
            performedDateTime=when(i.implanted_at),
            focalDevice=[{"manipulated": _ref("Device", i.id)}],
        )
    ]
    if i.ended_at is not None:
        out.append(
            _resource(
                "Procedure",
                f"{i.id}-end",
                None,
                [],
                status="completed",
                code={
                    "coding": [
                        local("procedure", f"pump-{i.status.value}", f"Pump {i.status.value}")
                    ]
                },
                subject=_ref("Patient", i.patient_id),
                performedDateTime=when(i.ended_at),
                focalDevice=[{"manipulated": _ref("Device", i.id)}],
                note=_text_note(i.end_reason),
            )
        )
    return out


def _use_statement(i: ImplantRecord) -> dict[str, Any]:
    period = {"start": when(i.implanted_at)}
    if i.ended_at is not None:
        period["end"] = when(i.ended_at)
    return _resource(
        "DeviceUseStatement",
        f"{i.id}-use",
        None,
        [],
        status="active" if i.status is ImplantStatus.ACTIVE else "completed",
        subject=_ref("Patient", i.patient_id),
        timingPeriod=period,
        device=_ref("Device", i.id),
        bodySite={"text": "intrathecal space (catheter); abdominal wall (pump)"},
    )


def _surgery(s: SurgeryRecord, patient_id: str) -> dict[str, Any]:
    return _resource(
        "Procedure",
        s.id,
        None,
        _exts(s, "surgery", SURGERY_STD),
        status="completed",
        code={"coding": [local("procedure", s.kind, s.kind.replace("_", " "))]},
        subject=_ref("Patient", patient_id),
        performedDateTime=when(s.at),
        focalDevice=[{"manipulated": _ref("Device", s.implant_id)}],
        note=_text_note(s.detail),
    )


def _medication(concentration: float, code: str = BASELINE) -> dict[str, Any]:
    return {
        "resourceType": "Medication",
        "id": "drug",
        "code": {"coding": [local("drug", code)], "text": "baclofen injection (intrathecal)"},
        "ingredient": [
            {
                "itemCodeableConcept": {"text": "baclofen"},
                "isActive": True,
                "strength": {
                    "numerator": quantity(concentration, "ug"),
                    "denominator": quantity(1.0, "mL"),
                },
            }
        ],
    }


def _dosages(prescription: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The program as FHIR dosage instructions (what a reader of the record needs)."""
    program = prescription.get("program") or {}
    mode = program.get("mode")
    route = {"coding": [ROUTE_INTRATHECAL]}
    out: list[dict[str, Any]] = []
    if mode == "continuous":
        out.append(
            {
                "sequence": 1,
                "text": f"{program['dose_mcg_per_day']:g} mcg/day continuous",
                "route": route,
                "doseAndRate": [{"rateQuantity": quantity(program["dose_mcg_per_day"], "ug/d")}],
            }
        )
    elif mode == "flex":
        days = program.get("days", ())
        k = 0
        for d, day in enumerate(days, start=1):
            for start_h, rate in day:
                k += 1
                minutes = round(float(start_h) * 60)
                hh, mm = divmod(minutes, 60)
                on = f"day {d} of {len(days)}, " if len(days) > 1 else ""
                out.append(
                    {
                        "sequence": k,
                        "text": f"{on}from {hh:02d}:{mm:02d}: {rate:g} mcg/h",
                        "timing": {"repeat": {"timeOfDay": [f"{hh:02d}:{mm:02d}:00"]}},
                        "route": route,
                        "doseAndRate": [{"rateQuantity": quantity(rate, "ug/h")}],
                    }
                )
    elif mode == "periodic":
        out.append(
            {
                "sequence": 1,
                "text": f"basal {program['basal_mcg_per_day']:g} mcg/day",
                "route": route,
                "doseAndRate": [{"rateQuantity": quantity(program["basal_mcg_per_day"], "ug/d")}],
            }
        )
        out.append(
            {
                "sequence": 2,
                "text": f"{program['bolus_mcg']:g} mcg bolus every {program['interval_h']:g} h",
                "timing": {
                    "repeat": {
                        "period": program["interval_h"],
                        "periodUnit": "h",
                        "duration": program["bolus_duration_h"],
                        "durationUnit": "h",
                    }
                },
                "route": route,
                "doseAndRate": [{"doseQuantity": quantity(program["bolus_mcg"], "ug")}],
            }
        )
    else:
        out.append({"sequence": 1, "text": "pump stopped", "route": route})
    pb = prescription.get("patient_bolus")
    if pb:
        per_day = pb.get("max_per_day")
        most = pb.get("dose_mcg", 0.0) * (per_day or 0)
        if per_day:
            out[0]["maxDosePerPeriod"] = {
                "numerator": quantity(float(most), "ug"),
                "denominator": quantity(1.0, "d"),
            }
        out[0]["text"] += (
            f"; patient boluses {pb.get('dose_mcg', 0):g} mcg, at most {per_day} a day"
        )
    return out


def _command_json(entry: CommandEntry) -> str:
    return json.dumps(entry.command, sort_keys=True, separators=(",", ":"))


def _command_exts(e: CommandEntry) -> list[dict[str, Any]]:
    exts = to_extensions(e, "command", rest(CommandEntry, COMMAND_STD | {"command"}))
    exts.append({"url": f"{EXT}pump-command", "valueString": _command_json(e)})
    exts.append({"url": f"{EXT}command-seq", "valueInteger": e.seq})
    return exts


def _command_id(e: CommandEntry) -> str:
    return f"{e.implant_id}-{e.seq}"


def _program_requests(entries: Sequence[CommandEntry], patient_id: str) -> list[dict[str, Any]]:
    out = []
    previous: str | None = None
    programs = [e for e in entries if e.command.get("kind") == "reprogram"]
    for k, e in enumerate(programs):
        rx = e.command["prescription"]
        rid = _command_id(e)
        contained = _medication(float(rx["concentration_mcg_per_ml"]))
        out.append(
            _resource(
                "MedicationRequest",
                rid,
                None,
                _command_exts(e),
                contained=[contained],
                status="active" if k == len(programs) - 1 else "stopped",
                intent="order",
                medicationReference={"reference": "#drug"},
                subject=_ref("Patient", patient_id),
                authoredOn=when(e.at),
                requester={"display": e.entered_by},
                reasonCode=[{"text": e.reason}] if e.reason else None,
                dosageInstruction=_dosages(rx),
                priorPrescription=None if previous is None else _ref("MedicationRequest", previous),
            )
        )
        previous = rid
    return out


def _other_commands(entries: Sequence[CommandEntry], patient_id: str) -> list[dict[str, Any]]:
    return [
        _resource(
            "Basic",
            _command_id(e),
            None,
            _command_exts(e),
            code={"coding": [local("pump-command", str(e.command.get("kind")))]},
            subject=_ref("Patient", patient_id),
            created=e.at.date().isoformat(),
            author={"display": e.entered_by},
        )
        for e in entries
        if e.command.get("kind") != "reprogram"
    ]


def _administration(
    rid: str,
    version: int | None,
    exts: list[dict[str, Any]],
    i: ImplantRecord,
    at: datetime,
    fill: tuple[str, str, date | None, float, float],
    text: str,
) -> dict[str, Any]:
    """A fill of the pump's reservoir: ``fill`` is (product, lot, expiry, volume mL,
    concentration mcg/mL), the drug a contained Medication with its batch."""
    product, lot, expiry, volume_ml, concentration = fill
    med = _medication(concentration, product)
    batch = {"lotNumber": lot} if lot else {}
    if expiry is not None:
        batch["expirationDate"] = expiry.isoformat()
    if batch:
        med["batch"] = batch
    return _resource(
        "MedicationAdministration", rid, version, exts,
        contained=[med], status="completed", medicationReference={"reference": "#drug"},
        subject=_ref("Patient", i.patient_id), effectiveDateTime=when(at),
        device=[_ref("Device", i.id)],
        dosage={"text": text, "route": {"coding": [ROUTE_INTRATHECAL]},
                "dose": quantity(volume_ml, "mL")},
    )  # fmt: skip


def _fills(i: ImplantRecord, refills: Sequence[RefillVisitRecord]) -> list[dict[str, Any]]:
    first = (i.fill_product, i.fill_lot, i.fill_expiry, i.fill_volume_ml,
             i.fill_concentration_mcg_per_ml)  # fmt: skip
    out = [
        _administration(
            f"{i.id}-fill", None, [], i, i.implanted_at, first, "first fill of the pump's reservoir"
        )
    ]
    for r in refills:
        fill = (r.product, r.lot, r.expiry, r.fill_volume_ml, r.concentration_mcg_per_ml)
        out.append(
            _administration(
                r.id,
                r.version,
                _exts(r, "refill", REFILL_STD),
                i,
                r.at,
                fill,
                "refill of the pump's reservoir",
            )
        )
        out.append(
            _resource(
                "Observation",
                f"{r.id}-residual",
                None,
                [],
                status="final",
                category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "device"}]}],
                code={
                    "coding": [
                        local(
                            "observation",
                            "refill-residual",
                            "Reservoir residual at refill: expected vs withdrawn",
                        )
                    ]
                },
                subject=_ref("Patient", i.patient_id),
                effectiveDateTime=when(r.at),
                device=_ref("Device", r.implant_id),
                valueCodeableConcept={"text": r.verdict},
                component=[
                    {
                        "code": {"coding": [local("observation", "expected-residual")]},
                        "valueQuantity": quantity(r.expected_ml, "mL"),
                    },
                    {
                        "code": {"coding": [local("observation", "withdrawn-residual")]},
                        "valueQuantity": quantity(r.withdrawn_ml, "mL"),
                    },
                    {
                        "code": {"coding": [local("observation", "allowed-difference")]},
                        "valueQuantity": quantity(r.allowed_ml, "mL"),
                    },
                ],
                derivedFrom=[_ref("MedicationAdministration", r.id)],
            )
        )
    return out


def _interrogation(q: InterrogationRecord, patient_id: str) -> dict[str, Any]:
    return _resource(
        "Observation",
        q.id,
        None,
        _exts(q, "interrogation", INTERROGATION_STD),
        status="final",
        category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "device"}]}],
        code={
            "coding": [
                local(
                    "observation", "reservoir-volume", "Calculated reservoir volume (interrogation)"
                )
            ]
        },
        subject=_ref("Patient", patient_id),
        effectiveDateTime=when(q.at),
        device=_ref("Device", q.implant_id),
        valueQuantity=quantity(q.reservoir_calculated_ml, "mL"),
    )


def _assessment(a: AssessmentRecord) -> dict[str, Any]:
    components = []
    for key in ("mas", "psfs"):
        value = a.detail.get(key) if a.kind == "follow_up" else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            components.append(
                {
                    "code": {
                        "coding": [
                            local(
                                "observation",
                                key,
                                {
                                    "mas": "Modified Ashworth Scale (0-4)",
                                    "psfs": "Penn Spasm Frequency Scale (0-4)",
                                }[key],
                            )
                        ]
                    },
                    "valueQuantity": {
                        "value": float(value),
                        "unit": "{score}",
                        "system": "http://unitsofmeasure.org",
                        "code": "{score}",
                    },
                }
            )
    return _resource(
        "Observation",
        a.id,
        None,
        _exts(a, "assessment", ASSESSMENT_STD),
        status="final",
        category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "exam"}]}],
        code={"coding": [local("assessment", a.kind)]},
        subject=_ref("Patient", a.patient_id),
        effectiveDateTime=when(a.at),
        valueString=a.summary or None,
        component=components,
    )


def _symptoms(s: SymptomRecord) -> dict[str, Any]:
    return _resource(
        "Observation",
        s.id,
        None,
        _exts(s, "symptom", SYMPTOM_STD),
        status="final",
        category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        code={"coding": [local("observation", "symptom-report", "Signs reported (triage)")]},
        subject=_ref("Patient", s.patient_id),
        effectiveDateTime=when(s.at),
        valueString="; ".join(s.signs) or None,
    )


def _visit(v: VisitRecord) -> dict[str, Any]:
    return _resource(
        "Appointment",
        v.id,
        v.version,
        _exts(v, "visit", VISIT_STD),
        status=VISIT_TO_APPOINTMENT[v.status],
        appointmentType={"coding": [local("visit-kind", v.kind)]},
        description=v.note or None,
        start=when(v.at),
        participant=[{"actor": _ref("Patient", v.patient_id), "status": "accepted"}],
    )


def _change(c: ProgrammingChange, patient_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    task = _resource(
        "Task",
        c.id,
        c.version,
        _exts(c, "change", CHANGE_STD),
        status=CHANGE_TO_TASK[c.state.value],
        intent="order",
        code={
            "coding": [
                local(
                    "task",
                    "pump-programming-change",
                    "Programming change, verified by a second person",
                )
            ]
        },
        focus=_ref("Device", c.implant_id),
        **{"for": _ref("Patient", patient_id)},
        authoredOn=when(c.staged_at),
        requester={"display": c.staged_by},
        description=c.reason or None,
    )
    out.append(task)
    if c.verified_by is not None and c.verified_at is not None:
        out.append(
            _resource(
                "Provenance",
                f"{c.id}-verification",
                None,
                [],
                target=[_ref("Task", c.id)],
                recorded=when(c.verified_at),
                activity={"text": "second-person verification of a programming change"},
                agent=[
                    {
                        "type": {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": "author"}]},
                        "who": {"display": c.staged_by},
                    },
                    {
                        "type": {
                            "coding": [{"system": PROVENANCE_PARTICIPANT, "code": "verifier"}]
                        },
                        "who": {"display": c.verified_by},
                    },
                ],
            )
        )
    for k, finding in enumerate(c.review.get("findings", ()) or (), start=1):
        if not isinstance(finding, Mapping):
            continue
        out.append(
            _resource(
                "DetectedIssue",
                f"{c.id}-finding-{k}",
                None,
                [],
                status="final",
                severity=SEVERITY_TO_FHIR.get(str(finding.get("severity")), "low"),
                code={"coding": [local("safety-finding", str(finding.get("code", "finding")))]},
                patient=_ref("Patient", patient_id),
                identifiedDateTime=when(c.staged_at),
                implicated=[_ref("Task", c.id)],
                detail=str(finding.get("message", "")) or None,
                reference=None,
            )
        )
    return out


def _flag(p: PatientRecord, active: ImplantRecord) -> dict[str, Any]:
    return _resource(
        "Flag",
        f"{p.id}-withdrawal-risk",
        None,
        [],
        status="active",
        category=[{"coding": [{"system": FLAG_CATEGORY, "code": "safety"}]}],
        code={
            "coding": [local("flag", "itb-withdrawal-risk")],
            "text": "Implanted ITB pump: risk of abrupt withdrawal",
        },
        subject=_ref("Patient", p.id),
        period={"start": when(active.implanted_at)},
    )


def file_resources(f: PatientFile, ctx: BundleContext) -> list[dict[str, Any]]:
    """Every resource of one patient's record."""
    p = f.patient
    out: list[dict[str, Any]] = [_patient(p)]
    out += [_contact(c) for c in f.contacts]
    for i in f.implants:
        out += _devices(i, ctx)
        out += _implant_procedures(i)
        out.append(_use_statement(i))
        out += _fills(i, [r for r in f.refills if r.implant_id == i.id])
        entries = [e for e in f.commands if e.implant_id == i.id]
        out += _program_requests(entries, p.id)
        out += _other_commands(entries, p.id)
    out += [_surgery(s, p.id) for s in f.surgeries]
    out += [_interrogation(q, p.id) for q in f.interrogations]
    for c in f.changes:
        out += _change(c, p.id)
    out += [_assessment(a) for a in f.assessments]
    out += [_symptoms(s) for s in f.symptoms]
    out += [_visit(v) for v in f.visits]
    active = next((i for i in f.implants if i.status is ImplantStatus.ACTIVE), None)
    if active is not None:
        out.append(_flag(p, active))
    return out


def to_bundle(files: Sequence[PatientFile], ctx: BundleContext) -> dict[str, Any]:
    """One Bundle (``collection``) with every resource of every file."""
    entries = []
    for f in files:
        for r in file_resources(f, ctx):
            entries.append({"fullUrl": f"{ctx_base()}{r['resourceType']}/{r['id']}", "resource": r})
    return {
        "resourceType": "Bundle",
        "id": f"itb-export-{ctx.made_at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
        "meta": {"tag": [local("source", "itb", ctx.clinic_name)]},
        "type": "collection",
        "timestamp": when(ctx.made_at),
        "entry": entries,
    }


def ctx_base() -> str:
    """The base of every entry's ``fullUrl`` (the registry's own resource space)."""
    return "https://itb.invalid/fhir/"


def context_for(catalog: Catalog, clinic_name: str, made_at: datetime) -> BundleContext:
    """The Bundle's labels and capacities from the reviewed tables."""
    return BundleContext(
        pump_label=lambda key: catalog.preset(key).label,
        pump_reservoir_ml=lambda key: catalog.preset(key).reservoir_ml,
        pump_maker=lambda key: catalog.preset(key).modelled_on_maker,
        catheter_label=lambda key: (
            catalog.catheters[key].label if key in catalog.catheters else key
        ),
        clinic_name=clinic_name,
        made_at=made_at,
    )
