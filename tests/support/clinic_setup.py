"""A clinic set up through the use cases — on the in-memory fakes of the registry's ports or
on a real registry: users of every role, two patients, one with a pump."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tests.support.clinic_memory import FakeClock, MemoryStore, PlainHasher

from itb import bootstrap
from itb.adapters.passwords import Argon2Hasher
from itb.domain.clinic.access import Actor
from itb.services.clinic import (
    ClinicService,
    DrugFill,
    NewImplant,
    NewPatient,
    ProgramRequest,
)
from itb.services.clinic.ports import PasswordHasher, UnitOfWorkFactory

PASSWORD = "correct-horse-battery"

CHEAP_HASHER = Argon2Hasher(time_cost=1, memory_cost_kib=8)
"""Real Argon2id with cheap parameters (the tests create many accounts)."""


@dataclass
class Clinic:
    """A service on fakes, its store and clock, and one actor per role."""

    service: ClinicService
    store: MemoryStore
    clock: FakeClock
    physician: Actor
    second_physician: Actor
    nurse: Actor
    second_nurse: Actor
    viewer: Actor
    patient: Actor
    caregiver: Actor
    other_patient: Actor
    patient_id: str
    other_patient_id: str
    implant_id: str

    def state(self) -> object:
        """The committed state (to show that a refusal changed nothing)."""
        return self.store.state


def new_patient(mrn: str = "MRN-1", **overrides: object) -> NewPatient:
    values: dict[str, object] = {
        "mrn": mrn,
        "given_name": "Ada",
        "family_name": "Jones",
        "birth_date": date(1970, 3, 1),
        "sex": "female",
        "cause": "spinal_cord_injury",
        "weight_kg": 70.0,
        "injury_level": "T4",
        "sci_at_or_above_t6": True,
        "timezone": "Europe/London",
    }
    values.update(overrides)
    return NewPatient(**values)  # type: ignore[arg-type]


def fill(
    volume_ml: float = 20.0, concentration: float = 500.0, product: str = "baclofen_500"
) -> DrugFill:
    return DrugFill(volume_ml, concentration, product, "LOT-1", date(2028, 1, 1))


def new_implant(clock: FakeClock, dose: float = 100.0, **overrides: object) -> NewImplant:
    values: dict[str, object] = {
        "at": clock.now(),
        "pump_preset": "synchromed_ii_20",
        "serial": "NGP-0001",
        "catheter_family": "ascenda_like",
        "catheter_length_cm": 60.0,
        "fill": fill(),
        "program": ProgramRequest(dose_mcg_per_day=dose),
        "low_reservoir_alarm_ml": 2.0,
        "tip_level": "T10",
    }
    values.update(overrides)
    return NewImplant(**values)  # type: ignore[arg-type]


def make_clinic(
    *,
    nurses_may_verify: bool = False,
    uow: UnitOfWorkFactory | None = None,
    hasher: PasswordHasher | None = None,
    clock: FakeClock | None = None,
) -> Clinic:
    """A set-up clinic: on the in-memory fakes, or on a real registry's ``uow``."""
    store = MemoryStore()
    clock = clock or FakeClock()
    service = ClinicService(uow or store.uow, bootstrap.catalog(), clock, hasher or PlainHasher())
    service.initialise(
        clinic_name="Test ITB Clinic",
        clinic_phone="+44 20 7946 0999",
        nurses_may_verify=nurses_may_verify,
        admin_username="drlee",
        admin_display_name="Dr Lee",
        admin_password=PASSWORD,
    )
    doc = service.actor("drlee")
    for name, role in (
        ("drkim", "physician"),
        ("nina", "nurse"),
        ("ned", "nurse"),
        ("vic", "viewer"),
    ):
        service.create_user(doc, username=name, role=role, password=PASSWORD)
    nurse = service.actor("nina")
    p = service.register_patient(nurse, new_patient())
    q = service.register_patient(nurse, new_patient("MRN-2", given_name="Bo", family_name="Lind"))
    service.add_contact(
        nurse, p.id, name="Bob Jones", relation="husband", phone="+44 7700 900001", caregiver=True
    )
    service.create_user(doc, username="ada", role="patient", password=PASSWORD, patient_id=p.id)
    service.create_user(doc, username="bob", role="caregiver", password=PASSWORD, patient_id=p.id)
    service.create_user(doc, username="bo", role="patient", password=PASSWORD, patient_id=q.id)
    implant = service.record_implant(doc, p.id, new_implant(clock))
    return Clinic(
        service=service,
        store=store,
        clock=clock,
        physician=doc,
        second_physician=service.actor("drkim"),
        nurse=nurse,
        second_nurse=service.actor("ned"),
        viewer=service.actor("vic"),
        patient=service.actor("ada"),
        caregiver=service.actor("bob"),
        other_patient=service.actor("bo"),
        patient_id=p.id,
        other_patient_id=q.id,
        implant_id=implant.id,
    )
