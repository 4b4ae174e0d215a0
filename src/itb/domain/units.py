"""Units, conversions and the time base.

House rules: every quantity carries its unit in its name
(``dose_mcg_per_day``, ``rate_ml_per_day``, ``t_h``). Time inside the model is
hours since the start of a run (``t_h``), a float; calendar dates are only
formed at the edges from a start datetime.

Most real pump accidents are unit or concentration mistakes (per-hour vs
per-day, wrong concentration; ISMP [D56]), so the conversions
live here, once, and nowhere else.
"""

from __future__ import annotations

import math

from itb.domain.errors import InvalidValue

__all__ = [
    "DAYS_PER_YEAR",
    "HOURS_PER_DAY",
    "HOURS_PER_YEAR",
    "MINUTES_PER_HOUR",
    "days",
    "dose_mcg_per_day_from_rate",
    "mcg_from_volume",
    "rate_ml_per_day_from_dose",
    "require_finite",
    "require_non_negative",
    "require_positive",
    "volume_ml_from_mcg",
    "years",
]

HOURS_PER_DAY = 24.0
MINUTES_PER_HOUR = 60.0
DAYS_PER_YEAR = 365.25
"""Julian year, days. Used for battery life in years."""
HOURS_PER_YEAR = HOURS_PER_DAY * DAYS_PER_YEAR


def days(n_days: float) -> float:
    """Hours in ``n_days`` days."""
    return n_days * HOURS_PER_DAY


def years(n_years: float) -> float:
    """Hours in ``n_years`` Julian years."""
    return n_years * HOURS_PER_YEAR


def require_finite(field: str, value: float) -> float:
    """Return ``value`` if it is a finite number, else raise :class:`InvalidValue`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidValue(field, value, "a finite number")
    return float(value)


def require_positive(field: str, value: float) -> float:
    """Return ``value`` if it is finite and > 0, else raise :class:`InvalidValue`."""
    v = require_finite(field, value)
    if v <= 0.0:
        raise InvalidValue(field, value, "> 0")
    return v


def require_non_negative(field: str, value: float) -> float:
    """Return ``value`` if it is finite and >= 0, else raise :class:`InvalidValue`."""
    v = require_finite(field, value)
    if v < 0.0:
        raise InvalidValue(field, value, ">= 0")
    return v


def rate_ml_per_day_from_dose(dose_mcg_per_day: float, concentration_mcg_per_ml: float) -> float:
    """Volume rate (mL/day) that delivers ``dose_mcg_per_day`` at a concentration (mcg/mL)."""
    require_non_negative("dose_mcg_per_day", dose_mcg_per_day)
    require_positive("concentration_mcg_per_ml", concentration_mcg_per_ml)
    return dose_mcg_per_day / concentration_mcg_per_ml


def dose_mcg_per_day_from_rate(rate_ml_per_day: float, concentration_mcg_per_ml: float) -> float:
    """Dose (mcg/day) delivered by a volume rate (mL/day) at a concentration (mcg/mL)."""
    require_non_negative("rate_ml_per_day", rate_ml_per_day)
    require_non_negative("concentration_mcg_per_ml", concentration_mcg_per_ml)
    return rate_ml_per_day * concentration_mcg_per_ml


def volume_ml_from_mcg(amount_mcg: float, concentration_mcg_per_ml: float) -> float:
    """Volume (mL) holding ``amount_mcg`` at a concentration (mcg/mL)."""
    require_non_negative("amount_mcg", amount_mcg)
    require_positive("concentration_mcg_per_ml", concentration_mcg_per_ml)
    return amount_mcg / concentration_mcg_per_ml


def mcg_from_volume(volume_ml: float, concentration_mcg_per_ml: float) -> float:
    """Amount (mcg) in ``volume_ml`` at a concentration (mcg/mL)."""
    return volume_ml * concentration_mcg_per_ml
