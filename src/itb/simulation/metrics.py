"""Course metrics: what a clinician would ask of a simulated course.

Definitions (also in docs/scenarios.md):

- **time in the therapeutic range**: share of the sampled time in which MAS is
  inside the protocol's therapeutic band (default 1 to 2) with no withdrawal
  sign and no overdose sign;
- **days with withdrawal (overdose) signs**: days since implant (24-hour
  blocks from the implant instant) in which any sample shows such a sign;
- **mean MAS by day / by night**: local 08:00-21:00 against the rest;
- sample-based metrics use the scenario's sampling grid (each sample stands
  for ``sample_every_h`` hours); event counts (alarms, refills, visits) do not
  depend on it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from itb.domain.units import HOURS_PER_DAY
from itb.simulation.clinic import ClinicProtocol
from itb.simulation.engine import CourseRun, Sample

__all__ = ["compute_metrics", "in_therapeutic_range", "rounded"]

_DIGITS = 4
_DAY_START_H = 8.0
_NIGHT_START_H = 21.0
"""The patient's waking day for the day/night MAS means: 08:00 to 21:00 local."""


def rounded(value: Any) -> Any:
    """Floats rounded to 4 decimals (recursively), so metrics read well and compare exactly."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        r = round(value, _DIGITS)
        return 0.0 if r == 0.0 else r
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def in_therapeutic_range(sample: Sample, protocol: ClinicProtocol) -> bool:
    """MAS inside the therapeutic band with no withdrawal and no overdose sign."""
    return (
        protocol.therapeutic_mas_low <= sample.mas <= protocol.therapeutic_mas_high
        and sample.withdrawal_stage == 0
        and sample.overdose_stage == 0
    )


def _day(t_h: float) -> int:
    return int(t_h // HOURS_PER_DAY)


def _first_day(samples: Sequence[Sample], pred: Any) -> float | None:
    for s in samples:
        if pred(s):
            return s.t_h / HOURS_PER_DAY
    return None


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def compute_metrics(
    samples: Sequence[Sample],
    run: CourseRun,
    protocol: ClinicProtocol,
    *,
    horizon_h: float,
    sample_every_h: float,
    pump_clock_offset_h: float,
) -> dict[str, Any]:
    """The metrics object (plain JSON-ready data, times in days since implant).

    Args:
        samples: the recorder's samples, in time order.
        run: the engine's record of the course.
        protocol: the clinic protocol (therapeutic band, flex window).
        horizon_h: length of the course, h.
        sample_every_h: sampling grid, h.
        pump_clock_offset_h: pump clock minus run time at implant (local hour of day).
    """
    clinic = run.clinic
    # The last sample (at the horizon) closes the course; it stands for no time.
    body = [s for s in samples if s.t_h < horizon_h - 1e-9]
    in_range = [in_therapeutic_range(s, protocol) for s in body]
    titration_end = clinic.titration_end_t_h
    after = [
        ok
        for s, ok in zip(body, in_range, strict=True)
        if titration_end is not None and s.t_h >= titration_end
    ]

    def is_day(s: Sample) -> bool:
        hour = (s.t_h + pump_clock_offset_h) % HOURS_PER_DAY
        return _DAY_START_H <= hour < _NIGHT_START_H

    day_mas = [s.mas for s in body if is_day(s)]
    night_mas = [s.mas for s in body if not is_day(s)]
    alarms = Counter(a.kind for a in run.alarms)
    # between an explant and the new pump there is no reservoir to be empty (a sample at an
    # event's instant is taken before the event acts)
    outs = [
        (t, clinic.reimplants[i] if i < len(clinic.reimplants) else math.inf)
        for i, (t, _) in enumerate(clinic.explants)
    ]

    def pump_out(s: Sample) -> bool:
        return any(a < s.t_h <= b for a, b in outs)

    final_dose = (
        clinic.dose_changes[-1].dose_mcg_per_day
        if clinic.dose_changes
        else clinic.initial_dose_mcg_per_day
    )
    metrics: dict[str, Any] = {
        "horizon_days": horizon_h / HOURS_PER_DAY,
        "sample_every_h": sample_every_h,
        "therapeutic_range": {
            "definition": (
                "MAS within the therapeutic band, with no withdrawal sign and no overdose sign"
            ),
            "mas_low": protocol.therapeutic_mas_low,
            "mas_high": protocol.therapeutic_mas_high,
        },
        "time_in_therapeutic_range_pct": _pct(sum(in_range), len(in_range)),
        "time_in_therapeutic_range_after_titration_pct": _pct(sum(after), len(after)),
        "days_with_withdrawal_signs": len({_day(s.t_h) for s in body if s.withdrawal_stage > 0}),
        "days_with_severe_withdrawal": len({_day(s.t_h) for s in body if s.withdrawal_stage > 1}),
        "days_with_overdose_signs": len({_day(s.t_h) for s in body if s.overdose_stage > 0}),
        "first_withdrawal_sign_day": _first_day(body, lambda s: s.withdrawal_stage > 0),
        "first_overdose_sign_day": _first_day(body, lambda s: s.overdose_stage > 0),
        "max_withdrawal_stage": max((s.withdrawal_stage for s in body), default=0),
        "max_overdose_stage": max((s.overdose_stage for s in body), default=0),
        "hours_reservoir_empty": sample_every_h
        * sum(1 for s in body if s.reservoir_actual_ml <= 1e-9 and not pump_out(s)),
        "hours_pump_out": sample_every_h * sum(1 for s in body if pump_out(s)),
        "hours_without_delivery": sample_every_h
        * sum(1 for s in body if s.delivery_mcg_per_h <= 0.0 and s.t_h > 0),
        "alarms_by_kind": dict(sorted(alarms.items())),
        "critical_alarms": sum(1 for a in run.alarms if a.critical),
        "refills": len(clinic.refills),
        "refill_discrepancies_flagged": sum(1 for r in clinic.refills if r.flagged),
        "missed_refills": len(clinic.missed_refills),
        "urgent_visits": len(clinic.urgent_visits),
        "catheter_revisions": len(clinic.catheter_revisions),
        "pump_replacements": len(clinic.pump_replacements),
        "complications_found": [c.kind for c in clinic.complications],
        "explants": len(clinic.explants),
        "reimplants": len(clinic.reimplants),
        "failed_refills": len(clinic.failed_refills),
        "titration_days": None
        if titration_end is None or protocol.start.kind == "established"
        else titration_end / HOURS_PER_DAY,
        "initial_dose_mcg_per_day": clinic.initial_dose_mcg_per_day,
        "final_dose_mcg_per_day": final_dose,
        "dose_changes": len(clinic.dose_changes),
        "delivered_to_csf_mcg": run.delivered_csf_mcg,
        "mean_mas": sum(s.mas for s in body) / len(body) if body else None,
        "final_mas": samples[-1].mas if samples else None,
        "mean_mas_daytime": sum(day_mas) / len(day_mas) if day_mas else None,
        "mean_mas_night": sum(night_mas) / len(night_mas) if night_mas else None,
        "battery_replacement_day": None
        if clinic.battery_replacement_t_h is None
        else clinic.battery_replacement_t_h / HOURS_PER_DAY,
        "eri_reached_days": [t / HOURS_PER_DAY for t in run.eri_t_h],
        "pumps_implanted": run.pumps_implanted,
    }
    return rounded(metrics)  # type: ignore[no-any-return]
