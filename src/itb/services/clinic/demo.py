"""A virtual clinic: N virtual patients with years of history, entered through the use cases.

Each patient is drawn from the virtual population and lived through by the
simulation engine (screening, implant, titration, refills with the pump's real
errors, late refills, alarms, a catheter fault, an MRI, battery replacements).
The clinic's side of that history — what a clinic would have written down — is
then entered into the registry **through the same use cases a nurse or a
physician uses**, in time order across all patients, with the registry's clock
set to each moment. So every demo record passed the same checks as a real one,
every refill verdict is the domain's judgement of the engine's true residual
against the record's expected one, and the audit chain covers it all.

What the clinic cannot know stays out: a pump's true accuracy, a fault before
it is found, the drug really in the patient. The demo's own choices (how long
the histories are, the pump mix, how many late refills) are data
(``demo_clinic.toml``, every number marked assumed).
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itb.domain.clinic.access import Actor, Role
from itb.domain.clinic.records import ImplantStatus
from itb.domain.clinic.rules import SPINAL_LEVELS
from itb.domain.clinical.triage import normalise_sign
from itb.domain.errors import DoseOutOfRange, InvalidValue, ITBError
from itb.domain.provenance import sourced_value
from itb.domain.pump.commands import (
    Applied,
    CommandRecord,
    FillAtImplant,
    Interrogate,
    Refill,
    RepairFault,
    Reprogram,
)
from itb.domain.pump.prescription import Prescription
from itb.domain.pump.programs import Continuous, Flex, PeriodicBolus
from itb.domain.units import HOURS_PER_DAY
from itb.services.catalog import Catalog
from itb.services.clinic.inputs import (
    ChangeRequest,
    DrugFill,
    NewImplant,
    NewPatient,
    ProgramRequest,
    Reading,
    RefillRequest,
)
from itb.services.clinic.ports import PasswordHasher, UnitOfWorkFactory
from itb.services.clinic.service import ClinicService
from itb.services.scenario import (
    Scenario,
    ScreeningOutcome,
    parse_scenario,
    run_scenario,
    scenario_patient,
    screen_patient,
)
from itb.services.screening_record import RecordedBolus, ScreeningRecord

__all__ = ["DEMO_CLINIC_NAME", "DemoClinic", "DemoUser", "build_demo_clinic"]

DEMO_TIMEZONE = "Europe/London"
"""The virtual clinic's time zone."""

DEMO_CLINIC_NAME = "Virtual ITB Clinic (itb demo)"
DEMO_CLINIC_PHONE = "+44 20 7946 0000"
"""A number from the range the UK keeps for drama (never a real line)."""

_GIVEN = (
    "Ada", "Ben", "Cara", "Dev", "Elin", "Farid", "Greta", "Hugo", "Iris", "Jonah", "Kemi",
    "Luca", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma",
    "Viktor", "Wen", "Xavi", "Yara", "Zane",
)  # fmt: skip
_FAMILY = (
    "Abbott", "Baker", "Chen", "Dias", "Evans", "Fischer", "Garcia", "Hughes", "Ibrahim",
    "Jensen", "Khan", "Lopez", "Murphy", "Novak", "Owens", "Patel", "Quigley", "Rossi",
    "Singh", "Turner", "Usman", "Varga", "Walsh", "Yilmaz", "Zhou",
)  # fmt: skip
_THORACIC = tuple(level for level in SPINAL_LEVELS if level.startswith("T"))


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo account and its password (printed for the person trying the demo)."""

    username: str
    role: str
    password: str
    display_name: str
    patient_id: str | None = None


@dataclass(frozen=True, slots=True)
class DemoClinic:
    """What the demo built.

    Attributes:
        users: the accounts and their passwords.
        patients: patients registered.
        implanted: patients with a pump.
        not_candidates: patients whose screening found no response (no implant).
        refused: use cases the registry refused while entering the histories (each in
            the audit trail), in words.
        records: rows per kind of record.
    """

    users: tuple[DemoUser, ...]
    patients: int
    implanted: int
    not_candidates: int
    refused: tuple[str, ...]
    records: Mapping[str, int]


class _Clock:
    """The registry's clock during the demo: set to each moment of the history."""

    def __init__(self, start: datetime) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t


@dataclass
class _Course:
    """One virtual patient's simulated course, as the clinic would have recorded it."""

    index: int
    new: NewPatient
    registered_at: datetime
    screening: ScreeningRecord | None
    steps: list[tuple[datetime, str, Any]]
    patient_id: str = ""
    implants: dict[int, str] = field(default_factory=dict)
    implanted: bool = False


def _v(demo: Mapping[str, Any], section: str, key: str) -> float:
    return sourced_value(demo[section], key, where=f"demo_clinic.{section}")


def _pick(rng: random.Random, demo: Mapping[str, Any], section: str) -> str:
    keys = [str(k) for k in demo[section]]
    return rng.choices(keys, weights=[_v(demo, section, k) for k in keys], k=1)[0]


def _local(day: date, hour: float) -> datetime:
    naive = datetime.combine(day, time()) + timedelta(hours=hour)
    return naive.replace(tzinfo=ZoneInfo(DEMO_TIMEZONE)).astimezone(UTC)


def _demo_users(seed: int) -> tuple[DemoUser, ...]:
    rng = random.Random(f"itb-demo-users-{seed}")
    words = ("tide", "fern", "lumen", "quartz", "maple", "orbit", "cedar", "pixel", "amber")

    def password() -> str:
        return "-".join(rng.sample(words, 3)) + f"-{rng.randrange(10, 99)}"

    return (
        DemoUser("dr.ahmed", Role.PHYSICIAN.value, password(), "Dr Sana Ahmed"),
        DemoUser("dr.berg", Role.PHYSICIAN.value, password(), "Dr Lars Berg"),
        DemoUser("nurse.cole", Role.NURSE.value, password(), "Nurse Jo Cole"),
        DemoUser("nurse.diaz", Role.NURSE.value, password(), "Nurse Ana Diaz"),
        DemoUser("viewer", Role.VIEWER.value, password(), "Clinic viewer"),
    )


def _program(rx: Prescription) -> ProgramRequest:
    p = rx.program
    match p:
        case Continuous():
            return ProgramRequest(
                dose_mcg_per_day=p.dose_mcg_per_day, patient_bolus=rx.patient_bolus
            )
        case Flex():
            steps = tuple((s.start_h, s.rate_mcg_per_h) for s in p.days[0])
            return ProgramRequest(
                dose_mcg_per_day=p.daily_dose_mcg(),
                flex_steps=steps,
                patient_bolus=rx.patient_bolus,
            )
        case PeriodicBolus():
            return ProgramRequest(
                dose_mcg_per_day=p.daily_dose_mcg(),
                periodic=(
                    p.basal_mcg_per_day,
                    p.bolus_mcg,
                    p.bolus_duration_h,
                    p.interval_h,
                    p.first_start_h,
                ),
                patient_bolus=rx.patient_bolus,
            )
    raise InvalidValue("program", p.mode, "continuous, flex or periodic")


def _events(
    rng: random.Random, demo: Mapping[str, Any], days: int, programmable: bool
) -> list[dict[str, Any]]:
    margin = _v(demo, "events", "event_margin_days")
    if days <= 2 * margin:
        return []

    def day() -> float:
        return rng.uniform(margin, days - margin)

    out: list[dict[str, Any]] = []
    if rng.random() < _v(demo, "events", "late_refill_fraction"):
        late = rng.uniform(
            _v(demo, "events", "late_by_days_min"), _v(demo, "events", "late_by_days_max")
        )
        out.append(
            {
                "kind": "late_refill",
                "day": day(),
                "late_by_days": round(late, 1),
                "reason": "refill rebooked late",
            }
        )
    if rng.random() < _v(demo, "events", "catheter_fault_fraction"):
        out.append({"kind": "fault", "day": day(), "fault": "occlusion", "reason": "catheter kink"})
    if programmable and rng.random() < _v(demo, "events", "mri_fraction"):
        out.append({"kind": "mri", "day": day(), "duration_h": 1.0, "reason": "MRI scan"})
    return out


def _screening_record(outcome: ScreeningOutcome, start: datetime) -> ScreeningRecord | None:
    boluses = outcome.run.boluses
    if not boluses:
        return None
    first = boluses[0].given_at_h
    local = start.astimezone(ZoneInfo(DEMO_TIMEZONE)).replace(tzinfo=None)
    return ScreeningRecord(
        reduced_start=False,
        criterion=None,
        boluses=tuple(
            RecordedBolus(b.dose_mcg, local + timedelta(hours=b.given_at_h - first), b.observations)
            for b in boluses
        ),
    )


def _product(catalog: Catalog, concentration: float, pump_kind: str) -> str:
    """The product a concentration is (or is diluted from)."""
    fits = [
        p
        for p in catalog.drugs.products
        if not p.screening_only
        and pump_kind in p.pump_kinds
        and p.concentration_mcg_per_ml >= concentration
    ]
    return min(fits, key=lambda p: p.concentration_mcg_per_ml).key


def _simulate(k: int, seed: int, today: datetime, catalog: Catalog) -> _Course:
    """Run patient ``k``'s course and turn it into the clinic's steps."""
    demo = catalog.demo_table
    rng = random.Random(f"itb-demo-{seed}-{k}")
    years = rng.uniform(
        _v(demo, "history", "years_on_therapy_min"), _v(demo, "history", "years_on_therapy_max")
    )
    first_hour = _v(demo, "history", "clinic_day_first_hour")
    last_hour = _v(demo, "history", "clinic_day_last_hour")
    implanted_at = _local(
        (today - timedelta(days=years * 365.25)).date(), rng.uniform(first_hour, last_hour)
    )
    days = max(1, int((today - implanted_at).total_seconds() // (HOURS_PER_DAY * 3600)))
    preset = catalog.preset(_pick(rng, demo, "pump_mix"))
    product_key = _pick(rng, demo, "concentration_mix")
    product = next(p for p in catalog.drugs.products if p.key == product_key)
    band = preset.accuracy_band_pct / 100.0
    pump_table = catalog.cohort_table["pump"]
    mean = sourced_value(pump_table, "accuracy_factor_mean", where="cohort.pump")
    sd = sourced_value(pump_table, "accuracy_factor_sd", where="cohort.pump")
    accuracy = min(1 + band, max(1 - band, rng.gauss(mean, sd)))
    catheter = preset.default_catheter or sorted(catalog.catheters)[0]
    length = round(
        rng.uniform(
            _v(demo, "history", "catheter_length_min_cm"),
            _v(demo, "history", "catheter_length_max_cm"),
        ),
        1,
    )
    events = _events(rng, demo, days, preset.programmable)

    def scenario_at(concentration: float) -> Scenario:
        return parse_scenario(
            {
                "name": f"virtual clinic patient {k}",
                "seed": seed,
                "horizon_days": days,
                "patient": {"population": {"index": k}},
                "pump": {
                    "preset": preset.key,
                    "accuracy_factor": round(accuracy, 4),
                    "implanted_at": implanted_at.replace(tzinfo=None),
                    "timezone": "UTC",
                },
                "catheter": {"family": catheter, "implanted_length_cm": length},
                "drug": {"concentration_mcg_per_ml": concentration},
                "protocol": {
                    "screening": {"run": True},
                    "min_refill_interval_days": catalog.protocol["min_refill_interval_days"],
                },
                "events": events,
                "output": {"sample_every_h": HOURS_PER_DAY},
            }
        )

    scenario = scenario_at(product.concentration_mcg_per_ml)
    patient = scenario_patient(scenario, catalog)
    registered_at = implanted_at - timedelta(
        days=_v(demo, "history", "registered_days_before_implant")
    )
    screening_at = registered_at + timedelta(
        days=_v(demo, "history", "screening_days_after_registration")
    )
    level = rng.choice(_THORACIC) if patient.cause == "spinal_cord_injury" else None
    new = NewPatient(
        mrn=f"DEMO-{seed}-{k:05d}",
        given_name=rng.choice(_GIVEN),
        family_name=rng.choice(_FAMILY),
        birth_date=(implanted_at - timedelta(days=patient.age_years * 365.25)).date(),
        sex=rng.choice(("female", "male")),
        cause=patient.cause,
        weight_kg=round(patient.weight_kg, 1),
        injury_level=level,
        sci_at_or_above_t6=level is not None and _THORACIC.index(level) < 6,
        communication_difficulty=patient.origin == "cerebral"
        and rng.random() < _v(demo, "history", "communication_difficulty_fraction"),
        timezone=DEMO_TIMEZONE,
        notes="virtual patient (itb clinic demo)",
    )
    commands: list[tuple[int, CommandRecord, Applied]] = []
    weakest = min(catalog.library.pump_strengths(preset.kind.value))
    try:
        try:
            result = run_scenario(
                scenario, catalog, on_command=lambda n, r, a: commands.append((n, r, a))
            )
        except DoseOutOfRange:
            # The starting dose is below what the pump can deliver at this strength: the
            # clinic starts with the weakest one instead.
            commands.clear()
            result = run_scenario(
                scenario_at(weakest),
                catalog,
                on_command=lambda n, r, a: commands.append((n, r, a)),
            )
    except InvalidValue as exc:
        if exc.field != "protocol.screening.run":
            raise
        outcome = screen_patient(patient, catalog)
        return _Course(k, new, registered_at, _screening_record(outcome, screening_at), [])
    assert result.screening is not None
    course = _Course(k, new, registered_at, _screening_record(result.screening, screening_at), [])
    course.steps = _clinic_steps(commands, implanted_at, preset.key, catheter, length, catalog, rng)
    # the clinician scores spasticity at each refill visit: the virtual patient's scores
    # on that day (the course is sampled daily)
    times = [x.t_h for x in result.samples]
    for at, kind, _ in list(course.steps):
        if kind != "refill" or not times:
            continue
        t_h = (at - implanted_at).total_seconds() / 3600.0
        x = result.samples[min(len(times) - 1, bisect.bisect_left(times, t_h))]
        course.steps.append((at, "scores", (round(x.mas, 1), round(x.psfs, 1))))
    for t_h, why in result.run.clinic.urgent_visits:
        signs = [
            s.strip()
            for part in why.split(";")
            if part.strip().startswith("signs:")
            for s in part.split(":", 1)[1].split(",")
        ]
        known = [s for s in signs if normalise_sign(s) in catalog.triage.aliases]
        if known:
            course.steps.append((implanted_at + timedelta(hours=t_h), "symptoms", tuple(known)))
    course.steps.sort(key=lambda s: s[0])
    return course


def _clinic_steps(
    commands: list[tuple[int, CommandRecord, Applied]],
    implanted_at: datetime,
    preset: str,
    catheter: str,
    length: float,
    catalog: Catalog,
    rng: random.Random,
) -> list[tuple[datetime, str, Any]]:
    """The clinic's record of the engine's commands (what a clinic knows of them)."""
    kind = catalog.preset(preset).kind.value
    steps: list[tuple[datetime, str, Any]] = []
    last_visit: datetime | None = None
    i = 0
    while i < len(commands):
        n, rec, applied = commands[i]
        at = implanted_at + timedelta(hours=rec.t_h)
        cmd = rec.command
        lot = f"L{at.year}{rng.randrange(1000, 9999)}"
        expiry = at.date() + timedelta(days=365)
        if isinstance(cmd, FillAtImplant):
            program = None
            alarm = None
            override = None
            if (
                i + 1 < len(commands)
                and isinstance(commands[i + 1][1].command, Reprogram)
                and commands[i + 1][1].t_h == rec.t_h
            ):
                nxt = commands[i + 1][1]
                assert isinstance(nxt.command, Reprogram)
                program = (
                    None if nxt.command.prescription is None else _program(nxt.command.prescription)
                )
                alarm = nxt.command.low_reservoir_alarm_ml
                override = nxt.by.override_reason
                i += 1
            steps.append(
                (
                    at,
                    "implant",
                    (
                        n,
                        NewImplant(
                            at=at,
                            pump_preset=preset,
                            serial=f"SN{rng.randrange(100000, 999999)}",
                            catheter_family=catheter,
                            catheter_length_cm=length,
                            fill=DrugFill(
                                cmd.volume_ml,
                                cmd.concentration_mcg_per_ml,
                                _product(catalog, cmd.concentration_mcg_per_ml, kind),
                                lot,
                                expiry,
                            ),
                            program=program,
                            low_reservoir_alarm_ml=alarm,
                            tip_level="T10",
                            reason="implant" if n == 0 else "pump replacement",
                            override_reason=override,
                        ),
                    ),
                )
            )
            last_visit = at
        elif isinstance(cmd, Refill) and applied.refill is not None:
            if last_visit is not None:
                steps.append((last_visit, "book", (at, "refill")))
            steps.append(
                (
                    at,
                    "refill",
                    (
                        n,
                        RefillRequest(
                            at=at,
                            withdrawn_ml=round(applied.refill.withdrawal.withdrawn_ml, 1),
                            fill=DrugFill(
                                cmd.volume_ml,
                                cmd.concentration_mcg_per_ml,
                                _product(catalog, cmd.concentration_mcg_per_ml, kind),
                                lot,
                                expiry,
                            ),
                            program=None
                            if cmd.prescription is None
                            else _program(cmd.prescription),
                            bridge_bolus=cmd.bridge_bolus,
                            low_reservoir_alarm_ml=cmd.low_reservoir_alarm_ml,
                            reason=rec.by.reason or "refill",
                            override_reason=rec.by.override_reason,
                        ),
                    ),
                )
            )
            last_visit = at
        elif isinstance(cmd, Reprogram) and cmd.prescription is not None:
            steps.append(
                (
                    at,
                    "program",
                    (
                        n,
                        ChangeRequest(
                            program=_program(cmd.prescription),
                            reason=rec.by.reason or "dose adjustment",
                            override_reason=rec.by.override_reason,
                        ),
                    ),
                )
            )
        elif isinstance(cmd, Interrogate) and applied.status is not None:
            st = applied.status
            steps.append(
                (
                    at,
                    "interrogate",
                    (
                        n,
                        Reading(
                            reservoir_ml=round(st.reservoir_calculated_ml, 2),
                            alarms=st.active_alarms,
                        ),
                    ),
                )
            )
        elif isinstance(cmd, RepairFault):
            steps.append((at, "revision", (n, f"catheter revision ({cmd.kind.value})")))
        i += 1
    return steps


def build_demo_clinic(
    uow: UnitOfWorkFactory,
    catalog: Catalog,
    hasher: PasswordHasher,
    *,
    patients: int,
    seed: int,
    today: datetime,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoClinic:
    """Build the virtual clinic in an empty registry.

    Args:
        uow: the registry's units of work (its schema already created).
        catalog: the reviewed data.
        hasher: password hashing for the demo accounts.
        patients: how many virtual patients.
        seed: the population and history seed.
        today: the end of every history (aware).
        progress: ``progress(stage, done, total)`` now and then.

    Raises:
        InvalidValue: a bad patient count or date, or a registry that is not empty.
    """
    if isinstance(patients, bool) or not 1 <= patients <= 10_000:
        raise InvalidValue("patients", patients, "1 to 10000")
    if today.tzinfo is None:
        raise InvalidValue("today", today.isoformat(), "a date-time with a time zone")
    courses = []
    for k in range(patients):
        courses.append(_simulate(k, seed, today, catalog))
        if progress:
            progress("simulating", k + 1, patients)
    start = min(c.registered_at for c in courses) - timedelta(days=1)
    clock = _Clock(start)
    service = ClinicService(uow, catalog, clock, hasher)
    users = list(_demo_users(seed))
    lead = users[0]
    service.initialise(
        clinic_name=DEMO_CLINIC_NAME,
        clinic_phone=DEMO_CLINIC_PHONE,
        nurses_may_verify=False,
        admin_username=lead.username,
        admin_display_name=lead.display_name,
        admin_password=lead.password,
    )
    actors: dict[str, Actor] = {lead.username: service.actor(lead.username)}
    for u in users[1:]:
        service.create_user(
            actors[lead.username],
            username=u.username,
            role=u.role,
            password=u.password,
            display_name=u.display_name,
        )
        actors[u.username] = service.actor(u.username)
    doctor, second, nurses = (
        actors["dr.ahmed"],
        actors["dr.berg"],
        (actors["nurse.cole"], actors["nurse.diaz"]),
    )
    heap: list[tuple[datetime, int, int, str, Any]] = []
    order = 0
    for c in courses:
        entries: list[tuple[datetime, str, Any]] = [(c.registered_at, "register", None)]
        if c.screening is not None:
            entries.append(
                (
                    c.registered_at
                    + timedelta(
                        days=_v(catalog.demo_table, "history", "screening_days_after_registration")
                    ),
                    "screening",
                    c.screening,
                )
            )
        entries += c.steps
        for at, kind, payload in entries:
            heapq.heappush(heap, (at, order, c.index, kind, payload))
            order += 1
    refused: list[str] = []
    total = len(heap)
    done = 0
    while heap:
        at, _, k, kind, payload = heapq.heappop(heap)
        c = courses[k]
        clock.t = max(clock.t, at)
        nurse = nurses[done % 2]
        try:
            _enter(service, c, kind, payload, at, doctor, second, nurse)
        except ITBError as exc:
            refused.append(f"{c.new.mrn} {kind} {at.date().isoformat()}: {exc}")
        done += 1
        if progress and (done % 200 == 0 or done == total):
            progress("recording", done, total)
    clock.t = today
    _book_next(service, courses, catalog, today, nurses[0], random.Random(f"itb-demo-next-{seed}"))
    implanted = [c for c in courses if c.implanted]
    for c, role in zip(implanted[:2], (Role.PATIENT, Role.CAREGIVER), strict=False):
        name = f"{role.value}.{c.new.given_name.lower()}"
        pw = f"{c.new.family_name.lower()}-{seed}-itb"
        service.create_user(
            doctor,
            username=name,
            role=role.value,
            password=pw,
            display_name=f"{c.new.given_name} {c.new.family_name}"
            + (" (caregiver)" if role is Role.CAREGIVER else ""),
            patient_id=c.patient_id,
        )
        users.append(DemoUser(name, role.value, pw, name, c.patient_id))
    with uow() as store:
        records = {
            "patients": len(store.patients.all()),
            "implants": len(store.implants.all()),
            "pump commands": store.commands.count(),
            "refill visits": len(store.refills.all()),
            "interrogations": len(store.interrogations.all()),
            "programming changes": len(store.changes.all()),
            "visits": len(store.visits.all()),
            "symptom reports": len(store.symptoms.all()),
            "audit entries": store.audit.recorded_head().seq,
        }
    return DemoClinic(
        users=tuple(users),
        patients=len(courses),
        implanted=len(implanted),
        not_candidates=sum(1 for c in courses if not c.steps),
        refused=tuple(refused),
        records=records,
    )


def _enter(
    service: ClinicService,
    c: _Course,
    kind: str,
    payload: Any,
    at: datetime,
    doctor: Actor,
    second: Actor,
    nurse: Actor,
) -> None:
    """Enter one step of a course through its use case."""
    if kind == "register":
        c.patient_id = service.register_patient(nurse, c.new).id
        service.add_contact(
            nurse,
            c.patient_id,
            name=f"{c.new.family_name} family",
            relation="family",
            phone="+44 7700 900" + f"{c.index % 1000:03d}",
            caregiver=True,
        )
        return
    if not c.patient_id:
        return
    if kind == "screening":
        service.record_screening(doctor, c.patient_id, payload)
        return
    if kind == "symptoms":
        service.record_symptoms(nurse, c.patient_id, signs=payload, at=at)
        return
    if kind == "scores":
        mas, psfs = payload
        service.record_follow_up(doctor, c.patient_id, mas=mas, psfs=psfs, at=at)
        return
    if kind == "book":
        visit_at, visit_kind = payload
        service.book_visit(nurse, c.patient_id, at=visit_at, kind=visit_kind)
        return
    n, item = payload
    if kind == "implant":
        c.implants[n] = service.record_implant(doctor, c.patient_id, item).id
        c.implanted = True
        return
    implant_id = c.implants.get(n)
    if implant_id is None:
        return
    if kind == "refill":
        service.record_refill(nurse, implant_id, item)
    elif kind == "interrogate":
        service.record_interrogation(nurse, implant_id, at=at, reading=item)
    elif kind == "program":
        change = service.stage_change(doctor, implant_id, item)
        if change.needs_verification:
            service.verify_change(second, change.id)
        service.commit_change(doctor, change.id)
    elif kind == "revision":
        service.record_surgery(doctor, implant_id, kind="catheter_revision", at=at, detail=item)


def _book_next(
    service: ClinicService,
    courses: list[_Course],
    catalog: Catalog,
    today: datetime,
    nurse: Actor,
    rng: random.Random,
) -> None:
    """Book each pump's next refill from the record's forecast (a few late, a few not at
    all: the radar is there to catch them)."""
    demo = catalog.demo_table
    margin = timedelta(days=catalog.protocol["refill_margin_days"])
    hour = _v(demo, "history", "clinic_day_first_hour")
    for c in courses:
        active = [i for n, i in sorted(c.implants.items())]
        if not active:
            continue
        chart = service.chart(nurse, c.patient_id)
        implant = chart.active_implant
        if implant is None or implant.status is not ImplantStatus.ACTIVE:
            continue
        if any(v.at >= today and v.status.value == "booked" for v in chart.visits):
            continue
        roll = rng.random()
        if roll < _v(demo, "next_visit", "missing_fraction"):
            continue
        snap = service.pump_now(nurse, implant.id, at=today).snapshot
        dates = [d for d in (snap.stability_until, snap.earliest_dry_at) if d is not None]
        if snap.low_alarm_at is not None:
            dates.append(snap.low_alarm_at - margin)
        if not dates:
            continue
        target = min(dates)
        if (
            roll
            < _v(demo, "next_visit", "missing_fraction") + _v(demo, "next_visit", "late_fraction")
            and snap.low_alarm_at is not None
        ):
            target = snap.low_alarm_at + timedelta(days=_v(demo, "next_visit", "late_by_days"))
        day = max(target, today + timedelta(days=1)).astimezone(ZoneInfo(DEMO_TIMEZONE)).date()
        service.book_visit(nurse, c.patient_id, at=_local(day, hour), kind="refill")
