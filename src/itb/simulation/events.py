"""Scheduled scenario events for the single-patient course engine.

Plain frozen records with a time (hours since the implant instant) and a
reason; the engine turns each into an action on the pump, the patient or the
clinic's plans. Services build them from a scenario file
(:mod:`itb.services.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from itb.domain.pump import Fault, FaultKind

__all__ = [
    "AccessPortInjection",
    "ClinicianBolus",
    "ConcentrationChange",
    "EnvironmentChange",
    "FaultRepair",
    "FaultStart",
    "Interrogation",
    "MissedRefill",
    "MriEnd",
    "MriStart",
    "PatientBolusRequest",
    "Priority",
    "ScheduledEvent",
]


class Priority(IntEnum):
    """Order of events at the same instant (lower first); ties then go by sequence.

    The world changes first (device faults, MRI, injections), then the
    scenario's changes to the clinic's plans, then the clinic acts, then the
    patient's daily symptom check sees the result.
    """

    DEVICE = 0
    SCENARIO = 1
    CLINIC = 2
    PATIENT = 3


@dataclass(frozen=True, slots=True)
class FaultStart:
    """A device fault starts (catheter, motor, battery, accuracy)."""

    t_h: float
    fault: Fault
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FaultRepair:
    """A fault ends without the clinic (e.g. a kinked catheter straightens)."""

    t_h: float
    kind: FaultKind
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MriStart:
    """MRI exposure begins (a programmable pump's motor stalls)."""

    t_h: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MriEnd:
    """MRI exposure ends; the clinic checks the pump ``post_mri_check_h`` later."""

    t_h: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EnvironmentChange:
    """Fever, heat or altitude (changes a gas-driven pump's flow)."""

    t_h: float
    body_temperature_degc: float | None = None
    ambient_pressure_kpa: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AccessPortInjection:
    """An injection through the catheter access port (flushes the catheter into the CSF)."""

    t_h: float
    volume_ml: float
    concentration_mcg_per_ml: float
    duration_h: float = 1.0 / 60.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClinicianBolus:
    """A single bolus from the reservoir, programmed by a clinician."""

    t_h: float
    dose_mcg: float
    duration_h: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PatientBolusRequest:
    """The patient asks for a bolus (the pump accepts it only within its limits)."""

    t_h: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Interrogation:
    """Someone reads the pump (clears alarms, ends a post-MRI hold)."""

    t_h: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MissedRefill:
    """The first planned refill at or after ``t_h`` does not happen.

    ``late_by_days``: the patient comes that many days later; ``None``: the
    patient does not come back by themselves (only symptoms or alarms bring
    them in).
    """

    t_h: float
    late_by_days: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConcentrationChange:
    """The clinic refills with a new concentration now, keeping the daily dose."""

    t_h: float
    concentration_mcg_per_ml: float
    bridge_bolus: bool
    reason: str = ""


ScheduledEvent = (
    FaultStart
    | FaultRepair
    | MriStart
    | MriEnd
    | EnvironmentChange
    | AccessPortInjection
    | ClinicianBolus
    | PatientBolusRequest
    | Interrogation
    | MissedRefill
    | ConcentrationChange
)
"""Any scenario event the engine understands."""
