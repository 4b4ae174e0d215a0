"""Input limits shared by the parsers and the command line: plain numbers.

They live here, in a module that imports nothing heavy, so the command line can
check its flags and write its help without loading pydantic, numpy or scipy;
:mod:`itb.services.pump_spec`, :mod:`itb.services.scenario` and
:mod:`itb.services.cohort_trial` use (and re-export) the same objects.
"""

from __future__ import annotations

from itb.domain.units import DAYS_PER_YEAR

__all__ = [
    "MAX_PATIENTS",
    "MAX_RUN_DAYS",
    "MAX_RUN_H",
    "MAX_SEED",
    "PUMP_MAX_YEAR",
    "PUMP_MIN_YEAR",
    "WEIGHT_KG_RANGE",
]

# ------------------------------------------------------------------ pump runs

PUMP_MIN_YEAR, PUMP_MAX_YEAR = 1970, 2200
"""Dates a pump run may be placed in (beyond them calendar arithmetic overflows);
``itb.services.pump_spec.MIN_YEAR`` and ``MAX_YEAR``."""
MAX_RUN_DAYS = 20 * DAYS_PER_YEAR
"""The longest run, days (longer than any pump's battery and any follow-up)."""
MAX_RUN_H = MAX_RUN_DAYS * 24.0
"""The longest run, hours: no time or duration in a spec can be longer."""

# ------------------------------------------------------------------ scenarios and patients

MAX_SEED = 2**63 - 1
"""The largest seed (a 64-bit signed whole number, as a trial's seed)."""
WEIGHT_KG_RANGE = (10.0, 250.0)
"""A patient's body weight, kg: above 10 and at most 250 (the model's scaling range)."""

# ------------------------------------------------------------------ virtual trials

MAX_PATIENTS = 10_000_000
"""The most patients in one virtual trial (``trial.patients``), and the largest chunk."""
