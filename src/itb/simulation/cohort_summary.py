"""Summary statistics of a virtual trial, per arm, with 95 % confidence intervals.

Computed from merged :class:`itb.simulation.cohort_trial.TrialPartial` aggregates
only (exact integers), so a summary depends on the trial and its seed, never on
the chunk size or the executor.

- proportions (patients reaching withdrawal, ...): Wilson score interval;
- means of per-patient quantities (withdrawal days per patient-year, refills
  and alarms per patient-year, maintenance dose): normal interval
  ``mean ± 1.96 sd / sqrt(n)`` from the exact sums and sums of squares;
- medians of the maintenance dose: read from the mergeable log-spaced histogram
  (the geometric middle of the bin holding the median; bins are 6 % wide).
"""

from __future__ import annotations

import math
from typing import Any

from itb.domain.units import DAYS_PER_YEAR
from itb.simulation.cohort_trial import (
    DOSE_BIN_EDGES_MCG_PER_DAY,
    MAINTENANCE_DOSE_DAY,
    ORIGIN_GROUPS,
    WD_DAY_BIN_EDGES,
    ArmPartial,
    TrialPartial,
)
from itb.simulation.vector_engine import ALARM_KINDS

__all__ = ["Z95", "mean_ci", "summarize", "wilson"]

Z95 = 1.959963984540054
"""Two-sided 95 % normal quantile."""
_FIXED = 1_000_000


def wilson(successes: int, n: int, z: float = Z95) -> dict[str, float | int | None]:
    """Proportion with its Wilson score interval (None when n = 0)."""
    if n == 0:
        return {"count": successes, "n": n, "estimate": None, "low": None, "high": None}
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denom
    return {
        "count": successes,
        "n": n,
        "estimate": p,
        # the interval always holds the estimate (at 0 or n the bound equals it exactly;
        # rounding alone must not put it on the wrong side)
        "low": min(p, max(0.0, centre - half)),
        "high": max(p, min(1.0, centre + half)),
    }


def mean_ci(sum_fx: int, sum_fx2: int, n: int, z: float = Z95) -> dict[str, float | int | None]:
    """Mean with a normal 95 % interval from exact fixed-point sums (1e-6 units)."""
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "low": None, "high": None}
    mean = sum_fx / n / _FIXED
    var_num = sum_fx2 * n - sum_fx * sum_fx  # exact integer: n^2 * population variance
    var = var_num / (n * max(n - 1, 1)) / (_FIXED * _FIXED) if n > 1 else 0.0
    sd = math.sqrt(max(var, 0.0))
    half = z * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def _hist_median(counts: list[int]) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    half = (total + 1) / 2
    run = 0
    for i, c in enumerate(counts):
        run += c
        if run >= half:
            lo, hi = DOSE_BIN_EDGES_MCG_PER_DAY[i], DOSE_BIN_EDGES_MCG_PER_DAY[i + 1]
            return math.sqrt(lo * hi)
    return None


def _arm(a: ArmPartial, horizon_years: float) -> dict[str, Any]:
    n = a.implanted
    years = n * horizon_years
    return {
        "implanted": n,
        "patient_years": years,
        "patients_reaching_withdrawal": wilson(a.with_withdrawal, n),
        "patients_reaching_severe_withdrawal": wilson(a.with_severe_withdrawal, n),
        "patients_with_overdose_signs": wilson(a.with_overdose, n),
        "patients_with_reservoir_running_dry": wilson(a.with_dry_reservoir, n),
        "patients_with_critical_alarm": wilson(a.with_critical_alarm, n),
        "withdrawal_days_per_patient_year": mean_ci(a.wd_rate_fx, a.wd_rate_fx2, n),
        "refills_per_patient_year": mean_ci(a.refill_rate_fx, a.refill_rate_fx2, n),
        "alarms_per_patient_year": mean_ci(a.alarm_rate_fx, a.alarm_rate_fx2, n),
        "pumps_reaching_eos_before_replacement": wilson(a.eos_before_replacement, n),
        "complications": {
            "patients_with_complication": wilson(a.with_complication, n),
            "patients_explanted": wilson(a.with_explant, n),
            "explanted_with_withdrawal_while_out": wilson(
                a.with_withdrawal_while_out, a.with_explant
            ),
            "explanted_with_severe_withdrawal_while_out": wilson(
                a.with_severe_withdrawal_while_out, a.with_explant
            ),
            "withdrawal_days_while_out_per_explanted_patient": mean_ci(
                a.out_wd_fx, a.out_wd_fx2, a.with_explant
            ),
            "by_kind": dict(a.complications),
            "explants": a.explants,
            "bridged_explants": a.bridged_explants,
            "reimplants": a.reimplants,
            "failed_refills": a.failed_refills,
            "days_explanted": a.explanted_days,
            "withdrawal_days_while_out": a.explanted_withdrawal_days,
            "severe_withdrawal_days_while_out": a.explanted_severe_withdrawal_days,
        },
        "totals": {
            "withdrawal_days": a.withdrawal_days,
            "severe_withdrawal_days": a.severe_withdrawal_days,
            "overdose_days": a.overdose_days,
            "refills": a.refills,
            "missed_refills": a.missed_refills,
            "reservoir_dry_events": a.dry_events,
            "refill_discrepancies": a.discrepancies,
            "alarms": dict(a.alarms),
            "eri_reached": a.eri_reached,
            "pump_replacements": a.replacements,
            "faults": dict(a.faults),
            "revisions": a.revisions,
            "concentration_changes": a.concentration_changes,
            "patient_boluses": a.patient_boluses,
            "patient_bolus_refusals": a.patient_bolus_refusals,
            "bridge_boluses": a.bridge_boluses,
            "delivered_mcg": a.delivered_fx / _FIXED,
        },
        "maintenance_dose_mcg_per_day": {
            g: {
                **mean_ci(a.dose_fx[g], a.dose_fx2[g], a.dose_n[g]),
                "median": _hist_median(a.dose_hist[g]),
            }
            for g in ORIGIN_GROUPS
        },
        "histograms": {
            "dose_bin_edges_mcg_per_day": list(DOSE_BIN_EDGES_MCG_PER_DAY),
            "dose_counts": {g: list(a.dose_hist[g]) for g in ORIGIN_GROUPS},
            "withdrawal_day_bin_edges": list(WD_DAY_BIN_EDGES),
            "withdrawal_day_counts": list(a.wd_day_hist),
        },
    }


def summarize(
    partial: TrialPartial,
    *,
    name: str,
    seed: int,
    patients: int,
    horizon_days: int,
    arms: list[dict[str, Any]],
) -> dict[str, Any]:
    """The trial's summary as plain JSON-ready data (arms in the trial's order)."""
    horizon_years = horizon_days / DAYS_PER_YEAR
    return {
        "trial": name,
        "seed": seed,
        "patients_screened": partial.screened,
        "patients_implanted": partial.responders,
        "cohort_size": patients,
        "horizon_days": horizon_days,
        "horizon_years": horizon_years,
        "maintenance_dose_day": min(MAINTENANCE_DOSE_DAY, horizon_days),
        "alarm_kinds": list(ALARM_KINDS),
        "arms": [
            {"name": arm["name"], "policy": arm, **_arm(partial.arms[arm["name"]], horizon_years)}
            for arm in arms
        ],
    }
