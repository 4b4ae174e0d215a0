"""How a trial arm spreads each patient's daily dose over the day: the pump program shape.

The clinic titrates one number per patient, the daily dose ``D`` (mcg/day). The
arm's :class:`ProgramShape` turns it into the pump program the domain knows
(:mod:`itb.domain.pump.programs`):

- ``continuous``: ``Continuous(D)``;
- ``flex``: the same day program every day, steps ``(start hour, relative rate)``
  scaled so that the day delivers ``D`` (e.g. a higher rate at night);
- ``periodic``: ``PeriodicBolus`` with a share ``f`` of ``D`` given as boluses of
  ``duration_h`` every ``interval_h`` (which must divide 24 h, so every day has the
  same pieces) on a basal of ``(1 - f) D``.

The vectorised engine (:mod:`itb.simulation.vector_engine`) computes the rates of
these programs on arrays with the very same floating-point operations as the
domain objects returned by :meth:`ProgramShape.program`, so a one-patient cohort
and the domain pump command identical volumes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from itb.domain.errors import InvalidValue
from itb.domain.pump import Continuous, Flex, FlexStep, PeriodicBolus, Program, PumpPreset
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.cohort import FloatArray

__all__ = ["PROGRAM_KINDS", "ProgramKind", "ProgramShape"]

ProgramKind = Literal["continuous", "flex", "periodic"]
PROGRAM_KINDS: tuple[ProgramKind, ...] = ("continuous", "flex", "periodic")
_DOSE_INSET = 1e-9
"""Doses are clipped this fraction inside the pump's rate range (so rounding never leaves it)."""


@dataclass(frozen=True, slots=True)
class ProgramShape:
    """The arm's program shape (see the module docstring).

    Attributes:
        kind: ``"continuous"``, ``"flex"`` or ``"periodic"``.
        flex_steps: for ``flex``: ``(start_h, relative_rate)`` pairs, the first at
            0 h, start hours strictly increasing below 24; relative rates >= 0, not
            all 0 (only their ratios matter).
        periodic_fraction: for ``periodic``: share of the daily dose given as
            boluses, 0 < f <= 1.
        periodic_interval_h: hours between bolus starts; divides 24.
        periodic_duration_h: hours each bolus runs, < interval.
        periodic_first_start_h: first bolus start, 0 <= start < interval.

    A periodic shape needs its three numbers given (a trial file's omitted keys take
    the protocol's reviewed defaults, ``protocol.toml``); unset, they are 0 and refused.
    """

    kind: ProgramKind = "continuous"
    flex_steps: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    periodic_fraction: float = 0.0
    periodic_interval_h: float = 0.0
    periodic_duration_h: float = 0.0
    periodic_first_start_h: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PROGRAM_KINDS:
            raise InvalidValue("program", self.kind, ", ".join(PROGRAM_KINDS))
        if self.kind == "flex":
            steps = self.flex_steps
            if not steps or steps[0][0] != 0.0:
                raise InvalidValue("flex_steps", list(steps), "a first step at 0 h")
            starts = [s for s, _ in steps]
            if (
                not all(math.isfinite(s) for s in starts)
                or any(b <= a for a, b in itertools.pairwise(starts))
                or starts[-1] >= 24
            ):
                raise InvalidValue(
                    "flex_steps", starts, "start hours strictly increasing from 0, below 24"
                )
            rel = [r for _, r in steps]
            if any(not math.isfinite(r) or r < 0.0 for r in rel) or max(rel) <= 0.0:
                raise InvalidValue("flex_steps", rel, "relative rates >= 0 (finite, and not all 0)")
        if self.kind == "periodic":
            f, iv, d, s0 = (
                self.periodic_fraction,
                self.periodic_interval_h,
                self.periodic_duration_h,
                self.periodic_first_start_h,
            )
            if not 0.0 < f <= 1.0:
                raise InvalidValue("periodic_fraction", f, "0 < fraction <= 1")
            per_day = HOURS_PER_DAY / iv if iv > 0 else math.nan
            if not (iv > 0 and per_day == round(per_day)):
                raise InvalidValue(
                    "periodic_interval_h", iv, "a divisor of 24 h (1, 2, 3, 4, 6, 8, 12, 24)"
                )
            if not 0.0 < d < iv:
                raise InvalidValue("periodic_duration_h", d, f"0 < duration < interval ({iv:g} h)")
            if not 0.0 <= s0 < iv:
                raise InvalidValue(
                    "periodic_first_start_h", s0, f"0 <= start < interval ({iv:g} h)"
                )

    # ------------------------------------------------------------------ shape

    def _flex_relative(self) -> list[float]:
        """Relative rates scaled so that the day delivers the daily dose (mean 1)."""
        ends = [s for s, _ in self.flex_steps[1:]] + [HOURS_PER_DAY]
        mean = sum(r * (e - s) for (s, r), e in zip(self.flex_steps, ends, strict=True))
        mean /= HOURS_PER_DAY
        return [r / mean for _, r in self.flex_steps]

    def slot_factors(self) -> tuple[float, ...]:
        """Each distinct rate of the program as a multiple of the mean rate ``D / 24``."""
        if self.kind == "flex":
            return tuple(self._flex_relative())
        if self.kind == "periodic":
            f = self.periodic_fraction
            basal = 1.0 - f
            return (basal, basal + f * self.periodic_interval_h / self.periodic_duration_h)
        return (1.0,)

    def day_pieces(self) -> tuple[tuple[float, float, int], ...]:
        """``(start_h, end_h, slot)`` covering one day [0, 24), slot indexing :meth:`slot_factors`."""
        if self.kind == "flex":
            starts = [s for s, _ in self.flex_steps]
            ends = [*starts[1:], HOURS_PER_DAY]
            return tuple((a, b, i) for i, (a, b) in enumerate(zip(starts, ends, strict=True)))
        if self.kind == "periodic":
            iv, d, s0 = (
                self.periodic_interval_h,
                self.periodic_duration_h,
                self.periodic_first_start_h,
            )
            cuts = {0.0, HOURS_PER_DAY}
            for k in range(-1, round(HOURS_PER_DAY / iv) + 1):
                for c in (s0 + k * iv, s0 + k * iv + d):
                    if 0.0 < c < HOURS_PER_DAY:
                        cuts.add(c)
            bounds = sorted(cuts)
            pieces = []
            for a, b in itertools.pairwise(bounds):
                phase = ((a + b) / 2 - s0) % iv
                pieces.append((a, b, 1 if phase < d else 0))
            return tuple(pieces)
        return ((0.0, HOURS_PER_DAY, 0),)

    # ---------------------------------------------------------- the program

    def program(self, dose_mcg_per_day: float) -> Program:
        """The domain program for a daily dose (what a clinician would program)."""
        dose = dose_mcg_per_day
        if self.kind == "flex":
            rel = self._flex_relative()
            return Flex.every_day(
                tuple(
                    FlexStep(s, dose * r / HOURS_PER_DAY)
                    for (s, _), r in zip(self.flex_steps, rel, strict=True)
                )
            )
        if self.kind == "periodic":
            f = self.periodic_fraction
            return PeriodicBolus(
                basal_mcg_per_day=dose * (1.0 - f),
                bolus_mcg=dose * f * self.periodic_interval_h / HOURS_PER_DAY,
                bolus_duration_h=self.periodic_duration_h,
                interval_h=self.periodic_interval_h,
                first_start_h=self.periodic_first_start_h,
            )
        return Continuous(dose)

    def slot_rates_mcg_per_h(self, dose: FloatArray) -> list[FloatArray]:
        """Dose rate (mcg/h) of each slot for daily doses ``dose``, with the same floating-point
        operations as the domain program's ``rate_mcg_per_h``."""
        if self.kind == "flex":
            return [dose * r / HOURS_PER_DAY for r in self._flex_relative()]
        if self.kind == "periodic":
            f = self.periodic_fraction
            basal = dose * (1.0 - f) / HOURS_PER_DAY
            bolus = dose * f * self.periodic_interval_h / HOURS_PER_DAY
            return [basal, basal + bolus / self.periodic_duration_h]
        return [dose / HOURS_PER_DAY]

    def daily_dose_mcg(self, dose: FloatArray) -> FloatArray:
        """The domain program's ``daily_dose_mcg()`` (same arithmetic), for the bridge bolus."""
        if self.kind == "flex":
            rel = self._flex_relative()
            ends = [s for s, _ in self.flex_steps[1:]] + [HOURS_PER_DAY]
            one = np.zeros_like(dose)
            for (s, _), r, e in zip(self.flex_steps, rel, ends, strict=True):
                one = one + (dose * r / HOURS_PER_DAY) * (e - s)
            week = np.zeros_like(dose)
            for _ in range(7):
                week = week + one
            return np.asarray(week / 7, dtype=np.float64)
        if self.kind == "periodic":
            f = self.periodic_fraction
            bolus = dose * f * self.periodic_interval_h / HOURS_PER_DAY
            return np.asarray(
                dose * (1.0 - f) + bolus * HOURS_PER_DAY / self.periodic_interval_h,
                dtype=np.float64,
            )
        return dose

    def dose_bounds_factor(self) -> tuple[float, float]:
        """The smallest non-zero and the largest slot factor (the rates the pump range binds)."""
        nonzero = [r for r in self.slot_factors() if r > 0.0]
        return min(nonzero), max(nonzero)

    def check_pump(self, preset: PumpPreset, where: str) -> None:
        """Refuse a shape the pump cannot carry out at any dose.

        Raises:
            InvalidValue: too many flex steps, or rate ratios wider than the pump's range.
        """
        if self.kind == "flex" and len(self.flex_steps) > preset.max_flex_steps_per_day:
            raise InvalidValue(
                f"{where}.flex_steps",
                len(self.flex_steps),
                f"<= {preset.max_flex_steps_per_day} steps per day on {preset.key}",
            )
        lo, hi = self.dose_bounds_factor()
        if hi / lo > preset.max_rate_ml_per_day / preset.min_rate_ml_per_day:
            shaped_by = {"flex": "flex_steps", "periodic": "periodic_fraction"}
            raise InvalidValue(
                f"{where}.{shaped_by.get(self.kind, 'program')}",
                [list(s) for s in self.flex_steps] if self.kind == "flex" else self.kind,
                f"highest/lowest rate within the pump's range ratio "
                f"{preset.max_rate_ml_per_day / preset.min_rate_ml_per_day:g}",
            )

    def clip_dose(self, dose: FloatArray, conc: FloatArray, preset: PumpPreset) -> FloatArray:
        """Daily doses clipped so that every non-zero rate of the program lies just inside the
        pump's rate range at concentration ``conc``."""
        lo_f, hi_f = self.dose_bounds_factor()
        lo = preset.min_rate_ml_per_day * conc * (1.0 + _DOSE_INSET) / lo_f
        hi = preset.max_rate_ml_per_day * conc * (1.0 - _DOSE_INSET) / hi_f
        return np.asarray(np.minimum(np.maximum(dose, lo), hi), dtype=np.float64)
