"""What a use case is asked to do: plain, typed inputs (the edges build them).

The command line, the API and the demo clinic all build these from what a user
typed; the use cases check every value with the domain's rules (the registry's
bounds in :mod:`itb.domain.clinic.rules`, the pump and the drug library), so a
value refused in one place is refused in every place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from itb.domain.errors import InvalidValue
from itb.domain.pump.prescription import PatientBolusSettings, Prescription
from itb.domain.pump.programs import Continuous, PeriodicBolus, Program
from itb.services.safety_review import flex_every_day

__all__ = [
    "ChangeRequest",
    "DrugFill",
    "NewImplant",
    "NewPatient",
    "ProgramRequest",
    "Reading",
    "RefillRequest",
]


@dataclass(frozen=True, slots=True)
class NewPatient:
    """A patient to register (see :class:`~itb.domain.clinic.records.PatientRecord`)."""

    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    cause: str
    weight_kg: float | None = None
    injury_level: str | None = None
    sci_at_or_above_t6: bool = False
    communication_difficulty: bool = False
    previous_withdrawal: bool = False
    timezone: str = "UTC"
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ProgramRequest:
    """A prescription as a user states it.

    Exactly one program: ``dose_mcg_per_day`` alone (simple continuous), with
    ``flex_steps`` (the same day program every day: ``(start_h, rate_mcg_per_h)``
    pairs; before the first step the last step's rate runs on; ``dose_mcg_per_day``
    is then the intended dose the steps are checked against), or ``periodic`` (``basal_mcg_per_day``,
    ``bolus_mcg``, ``bolus_duration_h``, ``interval_h``, ``first_start_h``).
    The patient-bolus settings are optional.
    """

    dose_mcg_per_day: float | None = None
    flex_steps: tuple[tuple[float, float], ...] = ()
    periodic: tuple[float, float, float, float, float] | None = None
    patient_bolus: PatientBolusSettings | None = None

    def program(self) -> Program:
        """The program (the domain checks its numbers).

        Raises:
            InvalidValue: no program, two programs, or a number the program refuses.
        """
        if self.periodic is not None:
            if self.flex_steps:
                raise InvalidValue("periodic", "...", "either periodic or flex steps, not both")
            basal, bolus, duration, interval, first = self.periodic
            return PeriodicBolus(basal, bolus, duration, interval, first)
        if self.flex_steps:
            return flex_every_day(self.flex_steps, field="flex_steps")
        if self.dose_mcg_per_day is None:
            raise InvalidValue(
                "dose_mcg_per_day", None, "a daily dose (or flex steps, or a periodic program)"
            )
        return Continuous(self.dose_mcg_per_day)

    def prescription(self, concentration_mcg_per_ml: float) -> Prescription:
        """The prescription at the concentration the pump will hold."""
        return Prescription(self.program(), concentration_mcg_per_ml, self.patient_bolus)

    @property
    def intended_dose_mcg_per_day(self) -> float | None:
        """The dose flex steps are checked against (None: not given separately)."""
        return self.dose_mcg_per_day if (self.flex_steps or self.periodic) else None


@dataclass(frozen=True, slots=True)
class DrugFill:
    """Drug put into a pump: how much, how strong, which product and lot.

    ``product`` is a product key of the drug catalog (``baclofen_2000``); a
    concentration below the product's strength is a dilution of it.
    """

    volume_ml: float
    concentration_mcg_per_ml: float
    product: str
    lot: str
    expiry: date | None = None


@dataclass(frozen=True, slots=True)
class NewImplant:
    """An implanted system: the pump, the catheter, the first fill and program (``at``:
    None is now; without an offset, the patient's local time)."""

    at: datetime | None
    pump_preset: str
    serial: str
    catheter_family: str
    catheter_length_cm: float
    fill: DrugFill
    program: ProgramRequest | None
    udi: str | None = None
    tip_level: str | None = None
    low_reservoir_alarm_ml: float | None = None
    prime: bool = True
    reason: str = ""
    override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What a programmer showed at an interrogation (None: not read; the record's model
    stands in)."""

    reservoir_ml: float | None = None
    alarms: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class RefillRequest:
    """A refill visit as the nurse records it (``at``: None is now; without an offset, the
    patient's local time)."""

    at: datetime | None
    withdrawn_ml: float
    fill: DrugFill
    program: ProgramRequest | None = None
    bridge_bolus: bool = False
    low_reservoir_alarm_ml: float | None = None
    reason: str = ""
    override_reason: str | None = None
    verified_by: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """A programming change to stage: a new prescription, alarm volume or bolus."""

    program: ProgramRequest | None = None
    low_reservoir_alarm_ml: float | None = None
    bolus_mcg: float | None = None
    bolus_duration_h: float | None = None
    reason: str = ""
    override_reason: str | None = None
