"""Infusion programs: piecewise-constant dose rates on the pump's own clock.

A program answers two questions for any pump-clock instant ``clock_h`` (hours
since Monday 00:00 of the pump's clock): the dose rate now (mcg/h) and when it
next changes. The pump converts doses to volume with the programmed
concentration. Flex steps follow the pump's clock, so a daylight-saving change
in the patient's wall time shifts them until the pump is reprogrammed
([C17]).

Modes ([D50][D12]): stopped; simple continuous; flex (up to a
preset number of steps per day, a different day program per weekday allowed);
periodic boluses on top of a basal rate. One-off boluses (single, priming,
bridge, patient-activated) are overlays handled by the pump, not programs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

from itb.domain.errors import InvalidValue
from itb.domain.units import HOURS_PER_DAY, require_non_negative, require_positive

__all__ = [
    "HOURS_PER_WEEK",
    "WEEKDAYS",
    "Continuous",
    "Flex",
    "FlexStep",
    "PeriodicBolus",
    "Program",
    "Stopped",
    "describe_program",
]

HOURS_PER_WEEK = 7 * HOURS_PER_DAY
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EPS_H = 1e-9
"""Boundary tolerance, hours (3.6 µs): absorbs float rounding of long clocks."""


@dataclass(frozen=True, slots=True)
class Stopped:
    """Stopped-pump mode: no delivery."""

    mode: Literal["stopped"] = "stopped"

    def rate_mcg_per_h(self, clock_h: float) -> float:
        """Dose rate at pump-clock time ``clock_h``: always 0."""
        return 0.0

    def next_change_h(self, clock_h: float) -> float:
        """Never changes."""
        return math.inf

    def daily_dose_mcg(self) -> float:
        """Average daily dose, mcg/day."""
        return 0.0


@dataclass(frozen=True, slots=True)
class Continuous:
    """Simple continuous mode at ``dose_mcg_per_day``."""

    dose_mcg_per_day: float
    mode: Literal["continuous"] = "continuous"

    def __post_init__(self) -> None:
        require_non_negative("dose_mcg_per_day", self.dose_mcg_per_day)

    def rate_mcg_per_h(self, clock_h: float) -> float:
        """Dose rate, mcg/h."""
        return self.dose_mcg_per_day / HOURS_PER_DAY

    def next_change_h(self, clock_h: float) -> float:
        """Never changes."""
        return math.inf

    def daily_dose_mcg(self) -> float:
        """Daily dose, mcg/day."""
        return self.dose_mcg_per_day


@dataclass(frozen=True, slots=True)
class FlexStep:
    """One flex step: from ``start_h`` (hour of the day, 0 <= start < 24) at ``rate_mcg_per_h``."""

    start_h: float
    rate_mcg_per_h: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.start_h < HOURS_PER_DAY:
            raise InvalidValue("flex step start_h", self.start_h, "0 <= start_h < 24")
        require_non_negative("flex step rate_mcg_per_h", self.rate_mcg_per_h)


@dataclass(frozen=True, slots=True)
class Flex:
    """Flex dosing: a day program for each weekday (Monday first).

    Each day program is a tuple of :class:`FlexStep`, sorted, the first
    starting at 00:00; the last step runs to midnight.
    """

    days: tuple[tuple[FlexStep, ...], ...]
    mode: Literal["flex"] = "flex"

    def __post_init__(self) -> None:
        if len(self.days) != len(WEEKDAYS):
            raise InvalidValue("flex days", len(self.days), "7 day programs, Monday first")
        for name, steps in zip(WEEKDAYS, self.days, strict=True):
            if not steps:
                raise InvalidValue(f"flex {name} steps", 0, "at least one step")
            if steps[0].start_h != 0.0:
                raise InvalidValue(f"flex {name} first start_h", steps[0].start_h, "0 (00:00)")
            starts = [s.start_h for s in steps]
            if any(b <= a for a, b in itertools.pairwise(starts)):
                raise InvalidValue(f"flex {name} start_h", starts, "strictly increasing times")

    @staticmethod
    def every_day(steps: tuple[FlexStep, ...]) -> Flex:
        """The same day program on all seven days."""
        return Flex(days=(steps,) * len(WEEKDAYS))

    def max_steps_per_day(self) -> int:
        """The largest number of steps in any day program."""
        return max(len(d) for d in self.days)

    def _locate(self, clock_h: float) -> tuple[float, int, int]:
        week_start = math.floor((clock_h + _EPS_H) / HOURS_PER_WEEK) * HOURS_PER_WEEK
        in_week = clock_h - week_start
        day = min(int((in_week + _EPS_H) // HOURS_PER_DAY), 6)
        hod = in_week - day * HOURS_PER_DAY
        steps = self.days[day]
        idx = 0
        for i, step in enumerate(steps):
            if step.start_h <= hod + _EPS_H:
                idx = i
        return week_start, day, idx

    def rate_mcg_per_h(self, clock_h: float) -> float:
        """Dose rate of the step in force at ``clock_h``, mcg/h."""
        _, day, idx = self._locate(clock_h)
        return self.days[day][idx].rate_mcg_per_h

    def next_change_h(self, clock_h: float) -> float:
        """Pump-clock time of the next step boundary (midnight counts as one)."""
        week_start, day, idx = self._locate(clock_h)
        steps = self.days[day]
        day_start = week_start + day * HOURS_PER_DAY
        if idx + 1 < len(steps):
            return day_start + steps[idx + 1].start_h
        return day_start + HOURS_PER_DAY

    def daily_dose_mcg(self, weekday: int | None = None) -> float:
        """Dose delivered over one day program, mcg (weekday 0 = Monday; default: mean)."""

        def one(steps: tuple[FlexStep, ...]) -> float:
            ends = [s.start_h for s in steps[1:]] + [HOURS_PER_DAY]
            return sum(s.rate_mcg_per_h * (e - s.start_h) for s, e in zip(steps, ends, strict=True))

        if weekday is not None:
            return one(self.days[weekday])
        return sum(one(d) for d in self.days) / len(self.days)


@dataclass(frozen=True, slots=True)
class PeriodicBolus:
    """Periodic boluses on top of a basal rate.

    A bolus of ``bolus_mcg`` over ``bolus_duration_h`` starts every
    ``interval_h`` from pump-clock time ``first_start_h``; between boluses the
    basal rate ``basal_mcg_per_day`` runs (during a bolus the two add).
    """

    basal_mcg_per_day: float
    bolus_mcg: float
    bolus_duration_h: float
    interval_h: float
    first_start_h: float = 0.0
    mode: Literal["periodic"] = "periodic"

    def __post_init__(self) -> None:
        require_non_negative("basal_mcg_per_day", self.basal_mcg_per_day)
        require_non_negative("bolus_mcg", self.bolus_mcg)
        require_positive("bolus_duration_h", self.bolus_duration_h)
        require_positive("interval_h", self.interval_h)
        if self.bolus_duration_h >= self.interval_h:
            raise InvalidValue("bolus_duration_h", self.bolus_duration_h, "< interval_h")

    def _phase(self, clock_h: float) -> tuple[float, float]:
        k = math.floor((clock_h - self.first_start_h + _EPS_H) / self.interval_h)
        start = self.first_start_h + k * self.interval_h
        return start, clock_h - start

    def rate_mcg_per_h(self, clock_h: float) -> float:
        """Basal rate, plus the bolus rate while a bolus runs, mcg/h."""
        basal = self.basal_mcg_per_day / HOURS_PER_DAY
        _, phase = self._phase(clock_h)
        if phase < self.bolus_duration_h - _EPS_H:
            return basal + self.bolus_mcg / self.bolus_duration_h
        return basal

    def next_change_h(self, clock_h: float) -> float:
        """The next bolus start or end."""
        start, phase = self._phase(clock_h)
        if phase < self.bolus_duration_h - _EPS_H:
            return start + self.bolus_duration_h
        return start + self.interval_h

    def daily_dose_mcg(self) -> float:
        """Average daily dose, mcg/day."""
        return self.basal_mcg_per_day + self.bolus_mcg * HOURS_PER_DAY / self.interval_h


Program = Stopped | Continuous | Flex | PeriodicBolus


def describe_program(program: Program) -> str:
    """A one-line human summary of a program."""
    match program:
        case Stopped():
            return "stopped"
        case Continuous(dose_mcg_per_day=d):
            return f"simple continuous {d:g} mcg/day"
        case Flex():
            return (
                f"flex, up to {program.max_steps_per_day()} steps/day, "
                f"mean {program.daily_dose_mcg():.4g} mcg/day"
            )
        case PeriodicBolus():
            return (
                f"periodic: basal {program.basal_mcg_per_day:g} mcg/day + "
                f"{program.bolus_mcg:g} mcg over {program.bolus_duration_h:g} h "
                f"every {program.interval_h:g} h"
            )
