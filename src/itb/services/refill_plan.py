"""Use cases ``itb refill plan`` and ``itb refill check``: plain data in, plain data out.

The reviewed tables (``refill_planning.toml``, the drugs' stability from
``drugs.toml``, the refill tolerance) arrive as arguments from the entrypoint
or the composition root; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from itb.domain.clinical.reasons import Reason
from itb.domain.clinical.refill_planning import RefillPlan, plan_refill
from itb.domain.errors import InvalidValue
from itb.domain.pump import Discrepancy, DiscrepancyTolerance, judge_discrepancy
from itb.domain.units import require_finite, require_non_negative
from itb.services.catalog import Catalog
from itb.services.pump_at import pump_at
from itb.services.pump_spec import PumpSpec

__all__ = [
    "check_refill",
    "discrepancy_to_dict",
    "plan_refill_for_spec",
    "refill_plan_to_dict",
]


def plan_refill_for_spec(
    spec: PumpSpec,
    catalog: Catalog,
    *,
    at: datetime | date | None = None,
    margin_days: int | None = None,
    holidays: Sequence[date] = (),
    travel_risk: bool = False,
    new_concentration_mcg_per_ml: float | None = None,
) -> dict[str, Any]:
    """Plan the next refill of the spec's pump as it stands at ``at``; JSON-ready dict.

    Raises:
        InvalidValue, DoseOutOfRange, ...: one-line domain errors (bad spec, date,
            margin or concentration).
    """
    stability = catalog.drugs_stability()
    if margin_days is not None and not 0 <= margin_days <= stability.value:
        raise InvalidValue(
            "margin_days",
            margin_days,
            f"0 to {stability.value:g} days (the drug's stability in the pump)",
        )
    state = pump_at(spec, catalog, at)
    if new_concentration_mcg_per_ml is not None:
        require_finite("new_concentration_mcg_per_ml", new_concentration_mcg_per_ml)
        try:
            catalog.library.require_pump_concentration(
                new_concentration_mcg_per_ml, state.pump.preset.kind.value
            )
        except InvalidValue as exc:
            raise exc.renamed("new_concentration_mcg_per_ml") from None
    plan = plan_refill(
        state.pump,
        now=state.clock.local(state.t_h),
        last_fill_at=state.clock.local(state.last_fill_t_h),
        policy=catalog.refill_policy,
        max_days_in_pump=catalog.drugs_stability(),
        holidays=holidays,
        margin_days=margin_days,
        travel_risk=travel_risk,
        new_concentration_mcg_per_ml=new_concentration_mcg_per_ml,
    )
    return {
        "name": spec.name,
        "preset": state.pump.preset.key,
        "preset_label": state.pump.preset.label,
        "prescription": state.pump.prescription.describe(),
        "events_applied": state.events_applied,
        **refill_plan_to_dict(plan),
    }


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat()


def _reason(r: Reason) -> dict[str, str]:
    return {
        "rule": r.rule,
        "outcome": r.outcome,
        "text": r.text,
        "source": r.source,
        "status": r.status,
    }


def refill_plan_to_dict(plan: RefillPlan) -> dict[str, Any]:
    """A refill plan as JSON-ready data (dates as ISO strings)."""
    return {
        "planned_at": _iso(plan.planned_at),
        "reservoir_calculated_ml": plan.reservoir_calculated_ml,
        "concentration_mcg_per_ml": plan.concentration_mcg_per_ml,
        "daily_dose_mcg_per_day": plan.daily_dose_mcg_per_day,
        "max_patient_bolus_mcg_per_day": plan.max_patient_bolus_mcg_per_day,
        "low_reservoir_alarm_ml": plan.low_reservoir_alarm_ml,
        "empty_reservoir_alarm_ml": plan.empty_reservoir_alarm_ml,
        "days_to_low_reservoir_alarm": plan.days_to_low_reservoir_alarm,
        "low_reservoir_alarm_at": _iso(plan.low_reservoir_alarm_at),
        "low_reservoir_alarm_date": _iso(plan.low_reservoir_alarm_date),
        "days_to_empty_alarm": plan.days_to_empty_alarm,
        "empty_alarm_at": _iso(plan.empty_alarm_at),
        "days_to_empty": plan.days_to_empty,
        "empty_at": _iso(plan.empty_at),
        "empty_date": _iso(plan.empty_date),
        "earliest_dry_at": _iso(plan.earliest_dry_at),
        "last_fill_at": _iso(plan.last_fill_at),
        "stability_limit_date": _iso(plan.stability_limit_date),
        "margin_days": plan.margin_days,
        "refill_by_date": _iso(plan.refill_by_date),
        "refill_by_at": _iso(plan.refill_by_at),
        "overdue": plan.overdue,
        "residual_at_refill_ml": plan.residual_at_refill_ml,
        "residual_at_refill_min_ml": plan.residual_at_refill_min_ml,
        "fill_volume_ml": plan.fill_volume_ml,
        "fill_limited_by_stability": plan.fill_limited_by_stability,
        "fill_concentration_mcg_per_ml": plan.fill_concentration_mcg_per_ml,
        "next_low_reservoir_alarm_date": _iso(plan.next_low_reservoir_alarm_date),
        "bridge_bolus": None if plan.bridge is None else asdict(plan.bridge),
        "reasons": [_reason(r) for r in plan.reasons],
    }


def check_refill(
    catalog: Catalog,
    *,
    expected_ml: float,
    withdrawn_ml: float,
    pump: str,
    programmed_since_fill_ml: float | None = None,
) -> Discrepancy:
    """Judge a refill's residual discrepancy (:func:`judge_discrepancy`) for a pump model.

    Raises:
        InvalidValue: a negative or non-finite volume, or an unknown pump.
    """
    preset = catalog.preset(pump, field="pump")
    for name, v in (
        ("expected_ml", expected_ml),
        ("withdrawn_ml", withdrawn_ml),
        ("programmed_since_fill_ml", programmed_since_fill_ml),
    ):
        if v is None:
            continue
        require_non_negative(name, v)
        if v > preset.reservoir_ml:
            raise InvalidValue(
                name, v, f"0 to {preset.reservoir_ml:g} mL (the {preset.key} reservoir holds)"
            )
    return judge_discrepancy(
        expected_ml,
        withdrawn_ml,
        catalog.refill_tolerance,
        programmed_since_fill_ml,
        accuracy_band_pct=preset.accuracy_band_pct,
    )


def discrepancy_to_dict(
    d: Discrepancy, tolerance: DiscrepancyTolerance, accuracy_band_pct: float
) -> dict[str, Any]:
    """A discrepancy as JSON-ready data, with the tolerance it was judged by."""
    out = asdict(d)
    out["verdict"] = d.verdict.value
    out["causes"] = list(d.causes)
    out["watch"] = list(d.watch)
    out["tolerance"] = {**asdict(tolerance), "accuracy_band_pct": accuracy_band_pct}
    return out
