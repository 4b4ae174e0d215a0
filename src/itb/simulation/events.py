"""Scheduled scenario events for the single-patient course engine.

A scenario schedules two sorts of events:

- :class:`PumpEvent`: a domain pump command (:mod:`itb.domain.pump.commands`,
  the one vocabulary every path uses) at a time, with its reason — a fault, an
  MRI, an injection, a clinician's bolus, a patient's request, an interrogation;
- changes to the clinic's plans that are not pump commands: a refill the
  patient will miss (:class:`MissedRefill`), a refill with a new concentration
  (:class:`ConcentrationChange`, which the clinic carries out as a refill).

Services build them from a scenario file (:mod:`itb.services.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from itb.domain.clinical.complications import ComplicationKind
from itb.domain.pump.commands import PumpCommand

__all__ = [
    "ComplicationOnset",
    "ConcentrationChange",
    "MissedRefill",
    "Priority",
    "PumpEvent",
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
class PumpEvent:
    """A pump command at ``t_h`` (hours since implant), and why."""

    t_h: float
    command: PumpCommand
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


@dataclass(frozen=True, slots=True)
class ComplicationOnset:
    """A complication of the implanted system begins at ``t_h``.

    ``explant``: whether it will need the pump out when the clinic finds it (None: the
    more likely course by the data's explant probability).
    """

    t_h: float
    kind: ComplicationKind
    explant: bool | None = None
    reason: str = ""


ScheduledEvent = PumpEvent | MissedRefill | ConcentrationChange | ComplicationOnset
"""Any scenario event the engine understands."""
