"""The clinic's rules of care, one home each: assessment, stronger concentration, refill day.

Every caller — the simulated clinic of a scenario, the cohort engine (and the
reference clinic it is checked against) and the clinic registry — decides
with these functions, on what a clinic can know: scored spasticity and
reported signs, the pump's calculated reservoir and its programmer forecast,
the drug in the pump and the products on the shelf. No hidden patient
parameter enters any of them.

The comparisons are written with plain operators so that the cohort engine
can apply the same thresholds to whole arrays (``goal.above(mas_array)``);
the rule and its numbers still live here and in ``protocol.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from itb.domain.clinical.titration import Assessment
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import HOURS_PER_DAY

__all__ = [
    "DAY_EDGE_H",
    "ProtocolDefaults",
    "TreatmentGoal",
    "assess",
    "choose_concentration",
    "earliest_dry_t_h",
    "parse_protocol_defaults",
    "refill_day",
    "refill_interval_days",
]


DAY_EDGE_H = 1e-6
"""A time within this of midnight (hours, 3.6 ms) counts as that midnight when whole days
are taken: forecasts computed by different but exact arithmetic differ in the last bits."""


# ------------------------------------------------------------------ assessment


@dataclass(frozen=True, slots=True)
class TreatmentGoal:
    """The spasticity goal the clinic titrates to (Modified Ashworth Scale points).

    Attributes:
        mas_goal: the dose goes up while MAS is above this (and no overdose sign).
        mas_low: below this the patient is too floppy (hypotonia): the dose comes down.
    """

    mas_goal: float
    mas_low: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.mas_low <= self.mas_goal <= 4.0:
            raise InvalidValue(
                "goal_mas", self.mas_goal, f"between therapeutic_mas low ({self.mas_low:g}) and 4"
            )

    def above(self, mas: Any) -> Any:
        """MAS above the goal (a bool for a float, a bool array for an array)."""
        return mas > self.mas_goal

    def too_low(self, mas: Any) -> Any:
        """MAS below the therapeutic band's low end (a bool, or a bool array)."""
        return mas < self.mas_low


def assess(mas: float, overdose_signs: bool, goal: TreatmentGoal) -> Assessment:
    """The clinician's assessment of the present dose.

    Side effects when an overdose sign is present or tone is below the band
    (decrease); inadequate while MAS is above the goal (increase); else
    adequate (keep the lowest dose that works, keeping some tone [C10]).
    Side effects at therapeutic doses without overdose signs are tolerated, as
    in practice.
    """
    if overdose_signs or goal.too_low(mas):
        return Assessment.SIDE_EFFECTS
    if goal.above(mas):
        return Assessment.INADEQUATE
    return Assessment.ADEQUATE


# ----------------------------------------------------------- concentrations


def refill_interval_days(
    dose_mcg_per_day: float,
    concentration_mcg_per_ml: float,
    usable_ml: float,
    margin_days: float,
) -> float:
    """Days between refills at a dose and concentration: the usable volume (reservoir
    minus the low-reservoir alarm volume) at the daily volume, less the refill margin."""
    volume_per_day = dose_mcg_per_day / concentration_mcg_per_ml
    if volume_per_day <= 0.0:
        return math.inf
    return usable_ml / volume_per_day - margin_days


def choose_concentration(
    *,
    dose_mcg_per_day: float,
    concentration_mcg_per_ml: float,
    strengths_mcg_per_ml: Sequence[float],
    usable_ml: float,
    margin_days: float,
    min_interval_days: float | None,
) -> float | None:
    """The stronger product to refill with, or None to keep the present one.

    When refills at the present concentration would come closer than
    ``min_interval_days``, the weakest stronger strength that keeps them at
    least that far apart is chosen (the weakest enough: the least drug per
    millilitre, so a volume error costs least), else the strongest there is.
    A stronger concentration lengthens the refill interval and needs a bridge
    bolus [C17].
    """
    if min_interval_days is None or dose_mcg_per_day <= 0.0:
        return None
    if (
        refill_interval_days(dose_mcg_per_day, concentration_mcg_per_ml, usable_ml, margin_days)
        >= min_interval_days
    ):
        return None
    stronger = sorted(c for c in strengths_mcg_per_ml if c > concentration_mcg_per_ml)
    for c in stronger:
        if refill_interval_days(dose_mcg_per_day, c, usable_ml, margin_days) >= min_interval_days:
            return c
    return stronger[-1] if stronger else None


# --------------------------------------------------------------- refill day


def earliest_dry_t_h(
    now_h: float, calculated_ml: float, commanded_ml_per_h: float, accuracy_band_pct: float
) -> float:
    """The earliest time the reservoir could be empty if the pump runs at the top of its
    rated accuracy band (the calculated volume assumes it runs exactly as programmed)."""
    top = commanded_ml_per_h * (1.0 + accuracy_band_pct / 100.0)
    if top <= 0.0:
        return math.inf
    return now_h + max(calculated_ml, 0.0) / top


def refill_day(
    *,
    now_h: float,
    last_fill_h: float,
    low_alarm_t_h: float | None,
    margin_days: float,
    max_days_in_pump: float,
    rate_factor: float = 1.0,
    earliest_dry_h: float = math.inf,
) -> int:
    """The day (whole days after the run's start) of the next planned refill.

    ``margin_days`` before the programmer's low-reservoir alarm date; sooner in
    proportion when the pump was found to deliver ``rate_factor`` times what it
    was programmed to; never after the drug's stability limit from the last fill,
    nor after the earliest day the pump could be dry within its rated accuracy;
    always at least the next day.
    """
    target = math.inf if low_alarm_t_h is None else low_alarm_t_h - margin_days * HOURS_PER_DAY
    if rate_factor > 1.0 and math.isfinite(target):
        target = now_h + (target - now_h) / rate_factor
    target = min(target, last_fill_h + max_days_in_pump * HOURS_PER_DAY, earliest_dry_h)
    if not math.isfinite(target):
        raise InvalidValue("refill day", target, "a finite time (no stability limit?)")
    # A target a rounding hair below midnight is that midnight (both engines agree on it).
    day = math.floor((target + DAY_EDGE_H) / HOURS_PER_DAY)
    return max(day, math.floor(now_h / HOURS_PER_DAY) + 1)


# --------------------------------------------------------- protocol defaults


@dataclass(frozen=True, slots=True)
class ProtocolDefaults:
    """The clinic's protocol defaults (``protocol.toml``): every number with its source.

    A scenario or a trial arm overrides any of them; nothing clinical is a code default.
    """

    values: Mapping[str, Sourced]

    def __getitem__(self, key: str) -> float:
        try:
            return self.values[key].value
        except KeyError:
            raise InvalidValue("protocol default", key, ", ".join(sorted(self.values))) from None

    def sourced(self, key: str) -> Sourced:
        """The default with its unit, status and source."""
        try:
            return self.values[key]
        except KeyError:
            raise InvalidValue("protocol default", key, ", ".join(sorted(self.values))) from None

    def goal(self) -> TreatmentGoal:
        """The default treatment goal."""
        return TreatmentGoal(self["goal_mas"], self["therapeutic_mas_low"])


def parse_protocol_defaults(table: Mapping[str, Any]) -> ProtocolDefaults:
    """Parse ``protocol.toml``: sections of sourced numbers, flattened by key.

    Raises:
        InvalidValue: a malformed entry, or a key defined in two sections.
    """
    values: dict[str, Sourced] = {}
    for section, entries in table.items():
        if not isinstance(entries, Mapping):
            raise InvalidValue(f"protocol.{section}", entries, "a table of sourced numbers")
        for key in entries:
            if key in values:
                raise InvalidValue(f"protocol.{section}.{key}", key, "a key defined once")
            values[key] = sourced(entries, key, where=f"protocol.{section}")
    return ProtocolDefaults(values)
