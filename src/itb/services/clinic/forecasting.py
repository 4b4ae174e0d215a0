"""The reservoir forecast of many registry pumps at once, from their records alone.

Each pump's snapshot keeps its commanded delivery from the snapshot's instant on
(:class:`~itb.domain.clinic.forecast.DeliveryProfile`); its refill visits say what it
really used. :func:`forecast_pumps` learns every pump's delivery factor and forecasts
its times in one vectorised pass (:mod:`itb.simulation.forecast`), and gives back the
domain's :class:`~itb.domain.clinic.forecast.PumpForecast` per pump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from itb.domain.clinic.forecast import (
    DeliveryProfile,
    ForecastRules,
    Observed,
    PumpForecast,
    RefillObservation,
    learned_summary,
)
from itb.domain.pump.refill import FORECAST_HORIZON_H

__all__ = ["ForecastInput", "forecast_pumps"]

_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ForecastInput:
    """What the forecast of one pump reads.

    Attributes:
        at: the instant the profile starts (the pump snapshot's).
        profile: the commanded delivery from ``at`` on (None: the pump delivers nothing).
        refills: the implant's refills, oldest first.
        by_at: the date the probabilities are for.
        by_visit: ``by_at`` is a booked visit (else the radar's look-ahead).
        margin_days: the clinic's refill margin before a date, days.
    """

    at: datetime
    profile: DeliveryProfile | None
    refills: tuple[RefillObservation, ...]
    by_at: datetime
    by_visit: bool
    margin_days: float


def forecast_pumps(
    rules: ForecastRules, items: Sequence[ForecastInput]
) -> list[PumpForecast | None]:
    """Every pump's forecast (None where it delivers nothing)."""
    from itb.simulation.forecast import forecast_profiles

    live = [k for k, it in enumerate(items) if it.profile is not None]
    out: list[PumpForecast | None] = [None] * len(items)
    if not live:
        return out
    pumps: list[int] = []
    programmed: list[float] = []
    used: list[float] = []
    empty: list[bool] = []
    for j, k in enumerate(live):
        for o in items[k].refills:
            kind = o.observed
            if kind is not Observed.NOT_LEARNED:
                pumps.append(j)
                programmed.append(o.programmed_ml)
                used.append(o.used_ml)
                empty.append(kind is Observed.FOUND_EMPTY)
    beliefs, times = forecast_profiles(
        [p for k in live if (p := items[k].profile) is not None],
        (pumps, programmed, used, empty),
        [(items[k].by_at - items[k].at).total_seconds() / _SECONDS_PER_HOUR for k in live],
        prior_mean=rules.prior_mean.value,
        prior_sd=rules.prior_sd.value,
        reading_sd_ml=rules.reading_sd_ml.value,
        interval_sd=rules.interval_sd.value,
        probabilities=rules.band_quantiles,
        advise_probability=rules.advise_dry_probability.value,
    )
    columns = _Columns(
        beliefs.mean.tolist(), beliefs.predictive_sd(rules.interval_sd.value).tolist(),
        times.low_h.tolist(), times.empty_h.tolist(), times.p_low.tolist(),
        times.p_dry.tolist(), times.advise_h.tolist(),
    )  # fmt: skip
    for j, k in enumerate(live):
        out[k] = _one(rules, items[k], columns, j)
    return out


@dataclass(frozen=True, slots=True)
class _Columns:
    """The vectorised pass's results as plain lists (one item per pump)."""

    mean: list[float]
    sd: list[float]
    low_h: list[list[float]]
    empty_h: list[list[float]]
    p_low: list[float]
    p_dry: list[float]
    advise_h: list[float]


def _one(rules: ForecastRules, it: ForecastInput, c: _Columns, j: int) -> PumpForecast:
    def when(hours: float) -> datetime | None:
        return None if not hours < FORECAST_HORIZON_H else it.at + timedelta(hours=hours)

    def band(row: Sequence[float]) -> tuple[datetime | None, datetime | None, datetime | None]:
        return (when(row[0]), when(row[1]), when(row[2]))

    learned, found_empty, delivered = learned_summary(it.refills)
    advise = when(c.advise_h[j])
    return PumpForecast(
        factor_mean=c.mean[j],
        factor_sd=c.sd[j],
        refills_learned=learned,
        found_empty=found_empty,
        delivered_pct=delivered,
        band_probability=rules.band_probability.value,
        low_at=band(c.low_h[j]),
        empty_at=band(c.empty_h[j]),
        by_at=it.by_at,
        by_visit=it.by_visit,
        p_low=c.p_low[j],
        p_dry=c.p_dry[j],
        advised_by=None if advise is None else advise - timedelta(days=it.margin_days),
    )
