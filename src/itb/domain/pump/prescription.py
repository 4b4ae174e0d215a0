"""What the clinician programs: the prescription, boluses and patient-bolus limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from itb.domain.errors import InvalidValue
from itb.domain.pump.programs import Program, describe_program
from itb.domain.units import HOURS_PER_DAY, require_non_negative, require_positive

__all__ = [
    "Bolus",
    "BolusKind",
    "PatientBolusSettings",
    "Prescription",
]


@dataclass(frozen=True, slots=True)
class PatientBolusSettings:
    """Patient-activated bolus limits set by the clinician ([D90]).

    Attributes:
        dose_mcg: drug per activation, mcg.
        duration_h: time over which one bolus runs, hours.
        lockout_h: minimum time between the starts of two accepted boluses, hours.
        max_per_day: most boluses accepted in any rolling 24 hours.
    """

    dose_mcg: float
    duration_h: float
    lockout_h: float
    max_per_day: int

    def __post_init__(self) -> None:
        require_positive("patient_bolus dose_mcg", self.dose_mcg)
        require_positive("patient_bolus duration_h", self.duration_h)
        require_non_negative("patient_bolus lockout_h", self.lockout_h)
        if self.max_per_day < 1:
            raise InvalidValue("patient_bolus max_per_day", self.max_per_day, ">= 1")

    @property
    def max_extra_mcg_per_day(self) -> float:
        """Most extra drug the patient can take in 24 h, mcg."""
        by_lockout = (
            int(HOURS_PER_DAY // self.lockout_h) + 1 if self.lockout_h > 0 else self.max_per_day
        )
        return self.dose_mcg * min(self.max_per_day, by_lockout)


@dataclass(frozen=True, slots=True)
class Prescription:
    """The program, the concentration it assumes, and optional patient-bolus limits."""

    program: Program
    concentration_mcg_per_ml: float
    patient_bolus: PatientBolusSettings | None = None

    def __post_init__(self) -> None:
        require_positive("concentration_mcg_per_ml", self.concentration_mcg_per_ml)

    def describe(self) -> str:
        """One-line summary."""
        text = f"{describe_program(self.program)} at {self.concentration_mcg_per_ml:g} mcg/mL"
        if self.patient_bolus is not None:
            pb = self.patient_bolus
            text += (
                f"; patient bolus {pb.dose_mcg:g} mcg, lockout {pb.lockout_h:g} h, "
                f"max {pb.max_per_day}/day"
            )
        return text


class BolusKind(StrEnum):
    """Why a one-off bolus is given."""

    SINGLE = "single"
    PRIMING = "priming"
    BRIDGE = "bridge"
    PATIENT = "patient"


@dataclass(frozen=True, slots=True)
class Bolus:
    """A one-off bolus: ``volume_ml`` of reservoir drug pumped at ``rate_ml_per_h``.

    While it runs it replaces the program's rate; the program resumes after it.
    """

    kind: BolusKind
    volume_ml: float
    rate_ml_per_h: float

    def __post_init__(self) -> None:
        require_positive("bolus volume_ml", self.volume_ml)
        require_positive("bolus rate_ml_per_h", self.rate_ml_per_h)

    @property
    def duration_h(self) -> float:
        """How long the bolus runs, hours."""
        return self.volume_ml / self.rate_ml_per_h

    @staticmethod
    def single(dose_mcg: float, duration_h: float, concentration_mcg_per_ml: float) -> Bolus:
        """A single bolus of ``dose_mcg`` over ``duration_h`` from the reservoir."""
        require_positive("bolus dose_mcg", dose_mcg)
        require_positive("bolus duration_h", duration_h)
        volume = dose_mcg / concentration_mcg_per_ml
        return Bolus(BolusKind.SINGLE, volume, volume / duration_h)

    @staticmethod
    def priming(volume_ml: float, duration_h: float) -> Bolus:
        """A priming bolus that fills ``volume_ml`` of pump path and/or catheter."""
        require_positive("priming duration_h", duration_h)
        return Bolus(BolusKind.PRIMING, volume_ml, volume_ml / duration_h)

    @staticmethod
    def bridge(
        dead_space_ml: float, old_concentration_mcg_per_ml: float, dose_mcg_per_day: float
    ) -> Bolus:
        """The bridge bolus after a concentration change ([C17]).

        Pushes the dead space's old-concentration drug out at the rate that keeps
        the daily dose continuous: ``dose / old concentration``; the new
        concentration then arrives at the tip just as the bolus ends.
        """
        require_positive("dose_mcg_per_day", dose_mcg_per_day)
        rate = dose_mcg_per_day / HOURS_PER_DAY / old_concentration_mcg_per_ml
        return Bolus(BolusKind.BRIDGE, dead_space_ml, rate)
