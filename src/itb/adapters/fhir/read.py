"""A FHIR R4 Bundle read back into patient records, checked before anything is stored.

Three layers of checks, each refusing the whole Bundle with the resource and field
named (``Patient/P0001.birthDate = '19x' is not allowed; ...``):

1. **Structure**: every resource is parsed by ``fhir.resources`` (its R4B models, the
   R4-compatible ones); a wrong type or a malformed date is refused there.
2. **Bindings and units** the mapping relies on (that library checks structure only):
   the intrathecal route's SNOMED CT code, UCUM units of every dose, rate, volume and
   concentration, references that point at resources in the Bundle.
3. **The registry's rules**, when the use case stores the records: the patient's
   fields, the pump and catheter models, and every pump command replayed through the
   pump and the drug library (:meth:`ClinicService.import_patient_files`).

A Bundle exported by ``itb`` carries every field (local extensions); a hand-written
Bundle needs only the standard elements for a patient with one pump and its program
(documented in ``docs/fhir.md``): what it leaves out takes the registry's defaults.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from itb.adapters.fhir.codes import EXT, LOCAL, MRN_SYSTEM, ROUTE_INTRATHECAL, UCUM
from itb.adapters.fhir.export import (
    ASSESSMENT_STD,
    CHANGE_STD,
    COMMAND_STD,
    CONTACT_STD,
    IMPLANT_STD,
    INTERROGATION_STD,
    PATIENT_STD,
    REFILL_STD,
    SEX_TO_GENDER,
    SURGERY_STD,
    SYMPTOM_STD,
    VISIT_STD,
    VISIT_TO_APPOINTMENT,
    rest,
)
from itb.adapters.fhir.fields import from_extensions, parse_value, read_stamp
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
    Stamp,
    SurgeryRecord,
    SymptomRecord,
    VisitRecord,
)
from itb.domain.errors import InvalidValue
from itb.domain.pump.codec import command_to_data
from itb.domain.pump.commands import FillAtImplant, Reprogram
from itb.services.clinic.exchange import PatientFile, by_id
from itb.services.clinic.inputs import ProgramRequest

__all__ = ["Importer", "from_bundle"]

_GENDER_TO_SEX = {v: k for k, v in SEX_TO_GENDER.items()}
_APPOINTMENT_TO_VISIT = {v: k for k, v in VISIT_TO_APPOINTMENT.items()}
_ID = re.compile(r"[A-Z]{1,4}\d+")


@dataclass(frozen=True, slots=True)
class Importer:
    """Who imports and when: the stamp and authorship of what a hand-written Bundle
    leaves out."""

    username: str
    role: str
    at: datetime

    @property
    def stamp(self) -> Stamp:
        return Stamp.new(self.at, self.username)


def _name(r: Mapping[str, Any]) -> str:
    return f"{r.get('resourceType')}/{r.get('id')}"


def _structure(r: Mapping[str, Any], where: str) -> None:
    from fhir.resources.R4B import get_fhir_model_class  # loaded on an import only

    kind = r.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (KeyError, ValueError):
        raise InvalidValue(f"{where}.resourceType", kind, "an R4 resource type") from None
    try:
        model.model_validate(r)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"] if x != "__root__")
        raise InvalidValue(
            f"{where}.{loc}" if loc else where, err.get("input"), str(err["msg"])
        ) from None
    except (TypeError, KeyError, ValueError, AttributeError):
        # the models' own validators fail this way on some malformed parts (a contained
        # resource without a usable resourceType)
        raise InvalidValue(where, kind, "a resource of the R4 structure") from None


def _without_nulls(node: Any) -> Any:
    """The resource without JSON nulls (FHIR has none; the models let them through)."""
    if isinstance(node, Mapping):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node if v is not None]
    return node


def _ucum(q: Any, code: str, field: str) -> float:
    if not isinstance(q, Mapping):
        raise InvalidValue(field, q, f"a quantity in UCUM {code}")
    if q.get("system") != UCUM or q.get("code") != code:
        raise InvalidValue(f"{field}.code", q.get("code"), f"UCUM {code} (system {UCUM})")
    value = q.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{field}.value", value, "a number")
    return float(value)


def _route(d: Mapping[str, Any], field: str) -> None:
    codings = (d.get("route") or {}).get("coding") or []
    if not any(
        c.get("system") == ROUTE_INTRATHECAL["system"]
        and c.get("code") == ROUTE_INTRATHECAL["code"]
        for c in codings
    ):
        raise InvalidValue(
            f"{field}.route",
            [c.get("code") for c in codings] or None,
            f"SNOMED CT {ROUTE_INTRATHECAL['code']} ({ROUTE_INTRATHECAL['display']})",
        )


def _ref_id(ref: Any, kind: str, field: str) -> str:
    text = ref.get("reference") if isinstance(ref, Mapping) else None
    if not isinstance(text, str) or not text.startswith(f"{kind}/"):
        raise InvalidValue(field, text, f"a reference to a {kind} in the Bundle ({kind}/id)")
    return text.split("/", 1)[1]


def _local_code(concept: Any, system: str, field: str) -> str:
    codings = concept.get("coding", ()) if isinstance(concept, Mapping) else ()
    for c in codings:
        if c.get("system") == LOCAL + system:
            return str(c.get("code"))
    raise InvalidValue(field, None, f"a coding in {LOCAL + system}")


def _ext(r: Mapping[str, Any], name: str) -> Any:
    for e in r.get("extension", ()) or ():
        if e.get("url") == EXT + name:
            return next((v for k, v in e.items() if k.startswith("value")), None)
    return None


def _strength(r: Mapping[str, Any], where: str) -> tuple[float, str, Mapping[str, Any]]:
    """The contained Medication's concentration (ug per 1 mL), product code and itself."""
    ref = (r.get("medicationReference") or {}).get("reference")
    med = next((c for c in r.get("contained", ()) if f"#{c.get('id')}" == ref), None)
    if med is None:
        raise InvalidValue(f"{where}.medicationReference", ref, "a contained Medication (#id)")
    field = f"{where}.contained[{med.get('id')}]"
    try:
        strength = med["ingredient"][0]["strength"]
    except (KeyError, IndexError, TypeError):
        raise InvalidValue(
            f"{field}.ingredient[0].strength", None, "the concentration as ug / 1 mL"
        ) from None
    num = _ucum(strength.get("numerator"), "ug", f"{field}.ingredient[0].strength.numerator")
    den = _ucum(strength.get("denominator"), "mL", f"{field}.ingredient[0].strength.denominator")
    if den != 1.0:
        raise InvalidValue(f"{field}.ingredient[0].strength.denominator.value", den, "1 (mL)")
    product = _local_code(med.get("code"), "drug", f"{field}.code")
    return num, product, med


def _when(raw: Any, field: str) -> datetime:
    value: datetime = parse_value(datetime, raw, field)
    return value


class _Reader:
    def __init__(self, resources: list[Mapping[str, Any]], importer: Importer) -> None:
        self.by_key = {_name(r): r for r in resources}
        self.importer = importer

    def all(self, kind: str) -> list[Mapping[str, Any]]:
        return [r for k, r in self.by_key.items() if k.startswith(f"{kind}/")]

    def fields(
        self,
        r: Mapping[str, Any],
        cls: type,
        kind: str,
        std: set[str],
        defaults: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The record's fields its extensions carry (``defaults``: what a hand-written
        resource may leave out), its stamp and version."""
        where = _name(r)
        names = [
            f
            for f in rest(cls, std)
            if not (defaults and f in defaults and _ext(r, f"{kind}-{f}") is None)
        ]
        out = from_extensions(r, cls, kind, names, where)
        for name, value in (defaults or {}).items():
            out.setdefault(name, value)
        stamp = read_stamp(r, where)
        names_all = {f.name for f in dataclasses.fields(cls)}
        if "stamp" in names_all:
            out["stamp"] = stamp or self.importer.stamp
        if "version" in names_all:
            raw = (r.get("meta") or {}).get("versionId", "1")
            if not str(raw).isdigit():
                raise InvalidValue(f"{where}.meta.versionId", raw, "a whole number >= 1")
            out["version"] = int(raw)
        return out

    # ------------------------------------------------------------ per record

    def patient(self, r: Mapping[str, Any]) -> PatientRecord:
        where = _name(r)
        values = self.fields(r, PatientRecord, "patient", PATIENT_STD, {"timezone": "UTC"})
        mrn = next(
            (i.get("value") for i in r.get("identifier", ()) if i.get("system") == MRN_SYSTEM),
            None,
        )
        if not mrn:
            raise InvalidValue(
                f"{where}.identifier", None, f"a medical record number ({MRN_SYSTEM})"
            )
        name = (r.get("name") or [{}])[0]
        gender = r.get("gender", "unknown")
        if gender not in _GENDER_TO_SEX:
            raise InvalidValue(f"{where}.gender", gender, ", ".join(_GENDER_TO_SEX))
        return PatientRecord(
            id=r["id"],
            mrn=str(mrn),
            given_name=" ".join(name.get("given", ())),
            family_name=str(name.get("family", "")),
            birth_date=parse_value(date, r.get("birthDate"), f"{where}.birthDate"),
            sex=_GENDER_TO_SEX[gender],
            **values,
        )

    def contact(self, r: Mapping[str, Any]) -> ContactRecord:
        where = _name(r)
        phones = [t.get("value", "") for t in r.get("telecom", ()) if t.get("system") == "phone"]
        return ContactRecord(
            id=r["id"],
            patient_id=_ref_id(r.get("patient"), "Patient", f"{where}.patient"),
            name=str((r.get("name") or [{}])[0].get("text", "")),
            relation=str((r.get("relationship") or [{}])[0].get("text", "")),
            phone=phones[0] if phones else "",
            **self.fields(r, ContactRecord, "contact", CONTACT_STD),
        )

    def implant(self, r: Mapping[str, Any]) -> tuple[ImplantRecord, list[CommandEntry]]:
        """The implant, and for a hand-written Bundle the fill command its first fill
        implies (an exported one carries its whole command log)."""
        where = _name(r)
        iid = r["id"]
        catheter = self.by_key.get(f"Device/{iid}-catheter")
        if catheter is None:
            raise InvalidValue(
                f"{where}", iid, f"a catheter Device/{iid}-catheter with parent Device/{iid}"
            )
        cwhere = _name(catheter)
        if _ref_id(catheter.get("parent"), "Device", f"{cwhere}.parent") != iid:
            raise InvalidValue(f"{cwhere}.parent", catheter.get("parent"), f"Device/{iid}")
        length = next(
            (
                p.get("valueQuantity", [None])[0]
                for p in catheter.get("property", ())
                if _local_code(p.get("type"), "device-property", f"{cwhere}.property.type")
                == "implanted-length"
            ),
            None,
        )
        procedure = self.by_key.get(f"Procedure/{iid}-implant")
        if procedure is None:
            raise InvalidValue(where, iid, f"an implant Procedure/{iid}-implant")
        fill = self.by_key.get(f"MedicationAdministration/{iid}-fill")
        if fill is None:
            raise InvalidValue(where, iid, f"a first fill MedicationAdministration/{iid}-fill")
        fwhere = _name(fill)
        strength, product, med = _strength(fill, fwhere)
        _route(fill.get("dosage") or {}, f"{fwhere}.dosage")
        volume = _ucum((fill.get("dosage") or {}).get("dose"), "mL", f"{fwhere}.dosage.dose")
        batch = med.get("batch") or {}
        implanted_at = _when(
            procedure.get("performedDateTime"), f"{_name(procedure)}.performedDateTime"
        )
        hand_written = _ext(r, "implant-status") is None
        values = self.fields(
            r,
            ImplantRecord,
            "implant",
            IMPLANT_STD,
            {
                "status": ImplantStatus.ACTIVE
                if r.get("status") == "active"
                else ImplantStatus.EXPLANTED,
                "fill_product": product,
                "fill_lot": str(batch.get("lotNumber", "")),
                "fill_expiry": parse_value(
                    date, batch["expirationDate"], f"{fwhere}.batch.expirationDate"
                )
                if "expirationDate" in batch
                else None,
                "fill_volume_ml": volume,
                "fill_concentration_mcg_per_ml": strength,
            }
            if hand_written
            else None,
        )
        ended = self.by_key.get(f"Procedure/{iid}-end")
        record = ImplantRecord(
            id=iid,
            patient_id=_ref_id(r.get("patient"), "Patient", f"{where}.patient"),
            pump_preset=str(r.get("modelNumber", "")),
            serial=str(r.get("serialNumber", "")),
            udi=(r.get("udiCarrier") or [{}])[0].get("deviceIdentifier"),
            implanted_at=implanted_at,
            catheter_family=str(catheter.get("modelNumber", "")),
            catheter_length_cm=_ucum(
                length, "cm", f"{cwhere}.property[implanted-length].valueQuantity"
            ),
            ended_at=None
            if ended is None
            else _when(ended.get("performedDateTime"), f"{_name(ended)}.performedDateTime"),
            **values,
        )
        commands = []
        if hand_written:
            commands.append(
                CommandEntry(
                    iid,
                    0,
                    implanted_at,
                    command_to_data(FillAtImplant(volume, strength)),
                    self.importer.username,
                    self.importer.role,
                    "implant",
                    None,
                    None,
                    self.importer.at,
                )
            )
        return record, commands

    def command(self, r: Mapping[str, Any]) -> CommandEntry | None:
        """A command as itb exported it (None: a hand-written MedicationRequest)."""
        where = _name(r)
        raw = _ext(r, "pump-command")
        if raw is None:
            return None
        try:
            command = json.loads(raw)
        except json.JSONDecodeError:
            command = None
        if not isinstance(command, dict):
            raise InvalidValue(
                f"{where}.extension[{EXT}pump-command]", raw, "a pump command as JSON"
            )
        seq = _ext(r, "command-seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise InvalidValue(f"{where}.extension[{EXT}command-seq]", seq, "a whole number")
        values = from_extensions(
            r, CommandEntry, "command", rest(CommandEntry, COMMAND_STD | {"command"}), where
        )
        implant_id, _, _ = str(r["id"]).rpartition("-")
        return CommandEntry(implant_id=implant_id, seq=seq, command=command, **values)

    def written_program(self, r: Mapping[str, Any], implant_id: str) -> CommandEntry:
        """A hand-written MedicationRequest as the reprogram command it states."""
        where = _name(r)
        strength, _, _ = _strength(r, where)
        dosages = sorted(r.get("dosageInstruction", ()), key=lambda d: d.get("sequence", 0))
        if not dosages:
            raise InvalidValue(
                f"{where}.dosageInstruction",
                None,
                "the program (a rate in ug/d, or flex steps in ug/h)",
            )
        for k, d in enumerate(dosages):
            _route(d, f"{where}.dosageInstruction[{k}]")
        rates = [(d.get("doseAndRate") or [{}])[0].get("rateQuantity") for d in dosages]
        if len(dosages) == 1 and "timing" not in dosages[0]:
            asked = ProgramRequest(
                dose_mcg_per_day=_ucum(
                    rates[0], "ug/d", f"{where}.dosageInstruction[0].doseAndRate[0].rateQuantity"
                )
            )
        else:
            steps = []
            for k, (d, q) in enumerate(zip(dosages, rates, strict=True)):
                times = ((d.get("timing") or {}).get("repeat") or {}).get("timeOfDay") or []
                if len(times) != 1:
                    raise InvalidValue(
                        f"{where}.dosageInstruction[{k}].timing.repeat.timeOfDay",
                        times,
                        "one start time (HH:MM:SS)",
                    )
                hh, mm, *_ = (int(x) for x in str(times[0]).split(":"))
                rate = _ucum(
                    q, "ug/h", f"{where}.dosageInstruction[{k}].doseAndRate[0].rateQuantity"
                )
                steps.append((hh + mm / 60.0, rate))
            asked = ProgramRequest(flex_steps=tuple(steps))
        try:  # the program as the domain reads one typed in (its own checks)
            command = command_to_data(Reprogram(prescription=asked.prescription(strength)))
        except InvalidValue as exc:
            raise exc.within(f"{where}.dosageInstruction") from None
        requester = (r.get("requester") or {}).get("display") or self.importer.username
        reason = " ".join(c.get("text", "") for c in r.get("reasonCode", ()))
        return CommandEntry(
            implant_id,
            0,
            _when(r.get("authoredOn"), f"{where}.authoredOn"),
            command,
            str(requester),
            self.importer.role,
            reason or "imported program",
            None,
            None,
            self.importer.at,
        )

    def surgery(self, r: Mapping[str, Any]) -> SurgeryRecord:
        where = _name(r)
        return SurgeryRecord(
            id=r["id"],
            implant_id=_ref_id(
                (r.get("focalDevice") or [{}])[0].get("manipulated"),
                "Device",
                f"{where}.focalDevice[0].manipulated",
            ),
            at=_when(r.get("performedDateTime"), f"{where}.performedDateTime"),
            kind=_local_code(r.get("code"), "procedure", f"{where}.code"),
            detail=str((r.get("note") or [{}])[0].get("text", "")),
            **self.fields(r, SurgeryRecord, "surgery", SURGERY_STD),
        )

    def interrogation(self, r: Mapping[str, Any]) -> InterrogationRecord:
        where = _name(r)
        return InterrogationRecord(
            id=r["id"],
            implant_id=_ref_id(r.get("device"), "Device", f"{where}.device"),
            at=_when(r.get("effectiveDateTime"), f"{where}.effectiveDateTime"),
            reservoir_calculated_ml=_ucum(r.get("valueQuantity"), "mL", f"{where}.valueQuantity"),
            **self.fields(r, InterrogationRecord, "interrogation", INTERROGATION_STD),
        )

    def refill(self, r: Mapping[str, Any]) -> RefillVisitRecord:
        where = _name(r)
        strength, product, med = _strength(r, where)
        dosage = r.get("dosage") or {}
        _route(dosage, f"{where}.dosage")
        batch = med.get("batch") or {}
        values = self.fields(r, RefillVisitRecord, "refill", REFILL_STD)
        values["product"] = product
        return RefillVisitRecord(
            id=r["id"],
            implant_id=_ref_id((r.get("device") or [None])[0], "Device", f"{where}.device[0]"),
            at=_when(r.get("effectiveDateTime"), f"{where}.effectiveDateTime"),
            lot=str(batch.get("lotNumber", "")),
            expiry=parse_value(date, batch["expirationDate"], f"{where}.batch.expirationDate")
            if "expirationDate" in batch
            else None,
            fill_volume_ml=_ucum(dosage.get("dose"), "mL", f"{where}.dosage.dose"),
            concentration_mcg_per_ml=strength,
            **values,
        )

    def change(self, r: Mapping[str, Any]) -> ProgrammingChange:
        where = _name(r)
        return ProgrammingChange(
            id=r["id"],
            implant_id=_ref_id(r.get("focus"), "Device", f"{where}.focus"),
            **self.fields(r, ProgrammingChange, "change", CHANGE_STD),
        )

    def visit(self, r: Mapping[str, Any]) -> VisitRecord:
        where = _name(r)
        status = r.get("status")
        if status not in _APPOINTMENT_TO_VISIT:
            raise InvalidValue(f"{where}.status", status, ", ".join(_APPOINTMENT_TO_VISIT))
        actor = (r.get("participant") or [{}])[0].get("actor")
        return VisitRecord(
            id=r["id"],
            patient_id=_ref_id(actor, "Patient", f"{where}.participant[0].actor"),
            at=_when(r.get("start"), f"{where}.start"),
            kind=_local_code(r.get("appointmentType"), "visit-kind", f"{where}.appointmentType"),
            status=_APPOINTMENT_TO_VISIT[status],
            note=str(r.get("description", "")),
            **self.fields(r, VisitRecord, "visit", VISIT_STD),
        )

    def assessment(self, r: Mapping[str, Any]) -> AssessmentRecord:
        where = _name(r)
        values = self.fields(r, AssessmentRecord, "assessment", ASSESSMENT_STD)
        kind = _local_code(r.get("code"), "assessment", f"{where}.code")
        if _ext(r, "assessment-detail") is None:  # hand-written: the scores as components
            detail: dict[str, Any] = {}
            for k, c in enumerate(r.get("component", ())):
                key = _local_code(c.get("code"), "observation", f"{where}.component[{k}].code")
                q = c.get("valueQuantity") or {}
                detail[key] = _ucum(q, "{score}", f"{where}.component[{k}].valueQuantity")
            values["detail"] = detail
        return AssessmentRecord(
            id=r["id"],
            patient_id=_ref_id(r.get("subject"), "Patient", f"{where}.subject"),
            at=_when(r.get("effectiveDateTime"), f"{where}.effectiveDateTime"),
            kind=kind,
            summary=str(r.get("valueString", "")),
            **values,
        )

    def symptom(self, r: Mapping[str, Any]) -> SymptomRecord:
        where = _name(r)
        return SymptomRecord(
            id=r["id"],
            patient_id=_ref_id(r.get("subject"), "Patient", f"{where}.subject"),
            at=_when(r.get("effectiveDateTime"), f"{where}.effectiveDateTime"),
            **self.fields(r, SymptomRecord, "symptom", SYMPTOM_STD),
        )


def _observation_kind(r: Mapping[str, Any]) -> str:
    for c in (r.get("code") or {}).get("coding", ()):
        system = str(c.get("system", ""))
        if system.startswith(LOCAL):
            return f"{system[len(LOCAL) :]}:{c.get('code')}"
    return ""


def from_bundle(bundle: Any, importer: Importer) -> list[PatientFile]:
    """The patient records a Bundle holds, checked (structure, bindings, units).

    Raises:
        InvalidValue: not a Bundle, a resource that fails its checks (named with its
            field), an identifier not of the registry's form, or a reference to a
            resource the Bundle lacks.
    """
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InvalidValue(
            "resourceType",
            bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle).__name__,
            "Bundle",
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidValue("Bundle.entry", type(entries).__name__, "a list of entries")
    resources: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for k, e in enumerate(entries):
        r = e.get("resource") if isinstance(e, Mapping) else None
        if not isinstance(r, Mapping):
            raise InvalidValue(f"Bundle.entry[{k}].resource", None, "a resource")
        where = f"{r.get('resourceType')}/{r.get('id')}"
        if not isinstance(r.get("id"), str):
            raise InvalidValue(
                f"Bundle.entry[{k}].resource({r.get('resourceType')}).id",
                r.get("id"),
                "the resource's id",
            )
        _structure(r, where)
        r = _without_nulls(r)
        if where in seen:
            raise InvalidValue(f"Bundle.entry[{k}]", where, "each resource once")
        seen.add(where)
        resources.append(r)
    read = _Reader(resources, importer)
    patients = {r["id"]: read.patient(r) for r in read.all("Patient")}
    for pid in patients:
        if not _ID.fullmatch(pid):
            raise InvalidValue(f"Patient/{pid}.id", pid, "a registry identifier such as P0001")
    files: dict[str, dict[str, list[Any]]] = {pid: {} for pid in patients}

    def put(pid: str, kind: str, record: Any, where: str) -> None:
        if pid not in files:
            raise InvalidValue(f"{where}", pid, "a reference to a Patient in the Bundle")
        files[pid].setdefault(kind, []).append(record)

    implant_patient: dict[str, str] = {}
    for r in read.all("Device"):
        if str(r["id"]).endswith("-catheter"):
            continue
        _local_code(r.get("type"), "device-type", f"{_name(r)}.type")
        implant, fills = read.implant(r)
        if not _ID.fullmatch(implant.id):
            raise InvalidValue(
                f"Device/{implant.id}.id", implant.id, "a registry identifier such as I0001"
            )
        implant_patient[implant.id] = implant.patient_id
        put(implant.patient_id, "implants", implant, f"Device/{implant.id}.patient")
        for c in fills:
            put(implant.patient_id, "commands", c, f"Device/{implant.id}")

    def of_implant(iid: str, where: str) -> str:
        if iid not in implant_patient:
            raise InvalidValue(where, f"Device/{iid}", "a pump Device in the Bundle")
        return implant_patient[iid]

    for r in read.all("RelatedPerson"):
        contact = read.contact(r)
        put(contact.patient_id, "contacts", contact, f"{_name(r)}.patient")
    written: dict[str, list[CommandEntry]] = {}
    for kind in ("MedicationRequest", "Basic"):
        for r in read.all(kind):
            entry = read.command(r)
            if entry is None:
                if kind != "MedicationRequest":
                    raise InvalidValue(
                        f"{_name(r)}.extension[{EXT}pump-command]",
                        None,
                        "the pump command it records",
                    )
                pid = _ref_id(r.get("subject"), "Patient", f"{_name(r)}.subject")
                active = [
                    i
                    for i in files.get(pid, {}).get("implants", [])
                    if i.status is ImplantStatus.ACTIVE
                ]
                if not active:
                    raise InvalidValue(
                        f"{_name(r)}.subject",
                        pid,
                        "a patient with a pump in use (Device status active)",
                    )
                written.setdefault(active[0].id, []).append(read.written_program(r, active[0].id))
                continue
            put(of_implant(entry.implant_id, f"{_name(r)}.id"), "commands", entry, _name(r))
    for iid, entries in written.items():
        for e in sorted(entries, key=lambda e: e.at):
            put(implant_patient[iid], "commands", e, f"Device/{iid}")
    for r in read.all("Procedure"):
        rid = str(r["id"])
        if rid.endswith(("-implant", "-end")):
            continue
        s = read.surgery(r)
        put(of_implant(s.implant_id, f"{_name(r)}.focalDevice"), "surgeries", s, _name(r))
    for r in read.all("MedicationAdministration"):
        if str(r["id"]).endswith("-fill"):
            continue
        refill = read.refill(r)
        put(of_implant(refill.implant_id, f"{_name(r)}.device"), "refills", refill, _name(r))
    for r in read.all("Observation"):
        kind = _observation_kind(r)
        if kind == "observation:reservoir-volume":
            q = read.interrogation(r)
            put(of_implant(q.implant_id, f"{_name(r)}.device"), "interrogations", q, _name(r))
        elif kind.startswith("assessment:"):
            a = read.assessment(r)
            put(a.patient_id, "assessments", a, f"{_name(r)}.subject")
        elif kind == "observation:symptom-report":
            sy = read.symptom(r)
            put(sy.patient_id, "symptoms", sy, f"{_name(r)}.subject")
    for r in read.all("Task"):
        ch = read.change(r)
        put(of_implant(ch.implant_id, f"{_name(r)}.focus"), "changes", ch, _name(r))
    for r in read.all("Appointment"):
        v = read.visit(r)
        put(v.patient_id, "visits", v, f"{_name(r)}.participant")
    out = []
    for pid, p in patients.items():
        got = files[pid]
        commands = _numbered(got.get("commands", []))
        out.append(
            PatientFile(
                patient=p,
                contacts=by_id(got.get("contacts", [])),
                assessments=by_id(got.get("assessments", [])),
                implants=by_id(got.get("implants", [])),
                surgeries=by_id(got.get("surgeries", [])),
                commands=commands,
                interrogations=by_id(got.get("interrogations", [])),
                refills=by_id(got.get("refills", [])),
                changes=by_id(got.get("changes", [])),
                visits=by_id(got.get("visits", [])),
                symptoms=by_id(got.get("symptoms", [])),
            )
        )
    return sorted(out, key=lambda f: (len(f.patient.id), f.patient.id))


def _numbered(entries: list[CommandEntry]) -> tuple[CommandEntry, ...]:
    """The command log per implant in its order; a hand-written Bundle's commands (seq 0)
    numbered after the implant's fill, in time order."""
    out: list[CommandEntry] = []
    for iid in sorted({e.implant_id for e in entries}, key=lambda x: (len(x), x)):
        mine = [e for e in entries if e.implant_id == iid]
        if all(e.seq == 0 for e in mine):
            mine = [
                CommandEntry(
                    e.implant_id,
                    k,
                    e.at,
                    e.command,
                    e.entered_by,
                    e.role,
                    e.reason,
                    e.verified_by,
                    e.override_reason,
                    e.recorded_at,
                )
                for k, e in enumerate(mine, start=1)
            ]
        elif any(e.seq == 0 for e in mine):
            raise InvalidValue(
                f"Device/{iid}",
                "programs without itb's command log",
                "a Bundle from itb or a hand-written one, not both for one pump",
            )
        out += sorted(mine, key=lambda e: e.seq)
    return tuple(out)
