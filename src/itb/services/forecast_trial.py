"""``itb forecast-trial``: the reservoir forecast scored in a virtual clinic, and a virtual
trial of booking visits by the radar's advice against the pump's own alarm date.

The clinic's pumps come from ``forecast.toml [virtual_clinic]`` (presets, a log-normal
maintenance dose), each filled at the weakest strength that keeps refills at least the
protocol's minimum interval apart (the domain's rule); the care numbers (refill margin,
drug stability, missed visits) are the ones every other trial uses. The simulation is
:mod:`itb.simulation.virtual_clinic`; ``docs/forecast.md`` shows a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import sourced_value
from itb.services.catalog import Catalog

__all__ = ["MAX_PUMPS", "ForecastTrial", "run_forecast_trial"]

MAX_PUMPS = 1_000_000
"""The most pumps one run follows (memory: a few hundred bytes per pump-interval)."""


@dataclass(frozen=True, slots=True)
class ForecastTrial:
    """A run: what was asked, the per-rule outcomes, the trial's effect, the calibration."""

    summary: Mapping[str, Any]
    """JSON-ready: inputs, provenance, policies, effect, calibration, sensitivity."""
    plots: Mapping[str, Any]
    """Arrays the plots are drawn from (coverage and factor error by refills learned,
    reliability, one pump's learned factor over its refills)."""


def _presets(table: Mapping[str, Any], catalog: Catalog) -> tuple[str, ...]:
    where = "forecast.virtual_clinic.presets"
    entry = table.get("presets")
    names = entry.get("value") if isinstance(entry, Mapping) else None
    if not isinstance(names, list) or not names:
        raise InvalidValue(where, names, "a non-empty list of pump presets")
    for name in names:
        catalog.preset(str(name), field=where)
    return tuple(str(n) for n in names)


def run_forecast_trial(
    catalog: Catalog,
    forecast_table: Mapping[str, Any],
    *,
    pumps: int,
    years: float,
    seed: int,
    resamples: int = 1000,
    misspecified_interval_sd: float | None = None,
    misspecified_spread_sd: float | None = None,
) -> ForecastTrial:
    """Run the virtual clinic under every booking rule and score the forecast.

    Args:
        catalog: the reviewed tables.
        forecast_table: ``forecast.toml`` as read (its ``[virtual_clinic]`` section).
        pumps, years, seed: the clinic's size, follow-up and random seed.
        resamples: bootstrap resamples of the trial's effect.
        misspecified_interval_sd, misspecified_spread_sd: a truth the forecast does not
            assume (the calibration is scored again under it); None: not run.

    Raises:
        InvalidValue: a size, a follow-up or a table entry out of range.
    """
    from itb.simulation import virtual_clinic as vc

    if isinstance(pumps, bool) or not 1 <= pumps <= MAX_PUMPS:
        raise InvalidValue("--pumps", pumps, f"1 to {MAX_PUMPS:,}")
    if isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise InvalidValue("--seed", seed, "a whole number from 0 to 2^63 - 1")
    if not (math.isfinite(years) and 0.0 < years <= 50.0):
        raise InvalidValue("--years", years, "more than 0 and at most 50")
    for name, value in (
        ("--misspecified-interval-sd", misspecified_interval_sd),
        ("--misspecified-spread-sd", misspecified_spread_sd),
    ):
        if value is not None and not (math.isfinite(value) and 0.0 < value < 0.5):
            raise InvalidValue(name, value, "more than 0 and less than 0.5")
    rules = catalog.forecast
    section = forecast_table.get("virtual_clinic", {})
    presets = _presets(section, catalog)
    where = "forecast.virtual_clinic"
    median = sourced_value(section, "dose_median_mcg_per_day", where=where)
    log_sd = sourced_value(section, "dose_log_sd", where=where)
    protocol = catalog.protocol
    cohort = catalog.cohort_table.get("care", {})
    care = vc.Care(
        margin_days=float(protocol["refill_margin_days"]),
        stability_days=catalog.drugs.max_days_in_pump,
        missed_probability=sourced_value(cohort, "missed_refill_probability", where="cohort.care"),
        missed_delay_days=sourced_value(cohort, "missed_refill_delay_days", where="cohort.care"),
        syringe_floor_ml=catalog.refill_tolerance.syringe_reading_ml,
    )
    chosen = [catalog.preset(name) for name in presets]
    summary, plots = vc.run_trial(
        chosen,
        {p.kind.value: sorted(catalog.library.pump_strengths(p.kind.value)) for p in chosen},
        rules=rules,
        care=care,
        dose_median_mcg_per_day=median,
        dose_log_sd=log_sd,
        min_interval_days=protocol["min_refill_interval_days"],
        pumps=pumps,
        years=years,
        seed=seed,
        resamples=resamples,
        misspecified_interval_sd=misspecified_interval_sd,
        misspecified_spread_sd=misspecified_spread_sd,
    )
    return ForecastTrial(summary, plots)
