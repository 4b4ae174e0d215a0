"""Who runs dry before their visit: the reservoir forecast's facts, rules and words.

A programmer's dates assume the pump delivers exactly as programmed. A real
pump draws ``f`` mL from its reservoir per mL programmed, within its rated band
([D45][D46][D72]), and its refills tell how: at each refill the residual the
pump calculated (``expected``) and the residual withdrawn are known, so the
pump drew ``filled - withdrawn`` from its reservoir while programmed to deliver
``programmed``
and ``used / programmed`` measures ``f`` for that interval (``used`` is what the
fill left less what was withdrawn).

This module holds what the forecast is made of and what it says, in plain
Python: the reviewed numbers (``itb/data/forecast.toml``), a refill as an
observation of ``f`` (measured, censored when the reservoir was found empty, or
not learned from), a pump's commanded delivery from its present instant on (a
lead piece and a repeating period of constant-rate pieces, worst-case patient
boluses included), the forecast of one pump and the radar's flag and words.
The arithmetic over many pumps at once (the Bayesian update and the times) is
vectorised in :mod:`itb.simulation.forecast`; ``docs/forecast.md`` gives the
method and shows it calibrated.

The low-reservoir *alarm* follows the pump's calculated volume, so its date is
the programmer's date and is not uncertain; what is uncertain is when the real
reservoir reaches the low-reservoir volume and when it is empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from itb.domain.clinic.records import RefillVisitRecord
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.pump.programs import Flex, PeriodicBolus
from itb.domain.pump.pump import Pump
from itb.domain.pump.refill import Verdict
from itb.domain.units import HOURS_PER_DAY

__all__ = [
    "PROFILE_VERSION",
    "Band",
    "DeliveryProfile",
    "ForecastRules",
    "Observed",
    "PumpForecast",
    "RefillObservation",
    "band_words",
    "delivery_profile",
    "history_words",
    "learned_summary",
    "parse_forecast_rules",
    "pct_words",
]

PROFILE_VERSION = 2
"""The layout of :meth:`DeliveryProfile.to_data` (another layout is rebuilt)."""

_WEEK_H = 7 * HOURS_PER_DAY


# ------------------------------------------------------------------ rules


@dataclass(frozen=True, slots=True)
class ForecastRules:
    """``forecast.toml``: the prior, what a refill measurement is worth, the risk classes."""

    prior_mean: Sourced
    """Mean delivery factor between pumps, x programmed."""
    prior_sd: Sourced
    """Spread of delivery factors between pumps (sd), x programmed."""
    reading_sd_ml: Sourced
    """sd of a residual read from the syringe, mL."""
    interval_sd: Sourced
    """sd of a pump's factor from one refill interval to the next, x programmed."""
    band_probability: Sourced
    """The central band stated for the times (0.90: from 5 % to 95 %)."""
    dry_act_now: Sourced
    dry_act_soon: Sourced
    low_act_soon: Sourced
    low_plan: Sourced
    advise_dry_probability: Sourced

    @property
    def band_quantiles(self) -> tuple[float, float, float]:
        """The probabilities of the band's low end, median and high end."""
        tail = (1.0 - self.band_probability.value) / 2.0
        return (tail, 0.5, 1.0 - tail)


def parse_forecast_rules(table: Mapping[str, Any]) -> ForecastRules:
    """Parse ``forecast.toml``.

    Raises:
        InvalidValue: a number is missing or malformed, or out of its range.
    """

    def get(section: str, key: str) -> Sourced:
        return sourced(table.get(section, {}), key, where=f"forecast.{section}")

    rules = ForecastRules(
        prior_mean=get("prior", "mean"),
        prior_sd=get("prior", "sd"),
        reading_sd_ml=get("observation", "reading_sd_ml"),
        interval_sd=get("observation", "interval_sd"),
        band_probability=get("band", "probability"),
        dry_act_now=get("risk", "dry_act_now"),
        dry_act_soon=get("risk", "dry_act_soon"),
        low_act_soon=get("risk", "low_act_soon"),
        low_plan=get("risk", "low_plan"),
        advise_dry_probability=get("advice", "dry_probability"),
    )
    for name in ("prior_mean", "prior_sd", "reading_sd_ml", "interval_sd"):
        if not getattr(rules, name).value > 0.0:
            raise InvalidValue(f"forecast.{name}", getattr(rules, name).value, "> 0")
    for name in (
        "band_probability",
        "dry_act_now",
        "dry_act_soon",
        "low_act_soon",
        "low_plan",
        "advise_dry_probability",
    ):
        value = getattr(rules, name).value
        if not 0.0 < value < 1.0:
            raise InvalidValue(f"forecast.{name}", value, "a probability between 0 and 1")
    if rules.dry_act_soon.value > rules.dry_act_now.value:
        raise InvalidValue("forecast.risk.dry_act_soon", rules.dry_act_soon.value, "<= dry_act_now")
    if rules.low_plan.value > rules.low_act_soon.value:
        raise InvalidValue("forecast.risk.low_plan", rules.low_plan.value, "<= low_act_soon")
    return rules


# ---------------------------------------------------------- observations


class Observed(StrEnum):
    """What a refill tells about the pump's delivery factor."""

    MEASURED = "measured"
    """The residual was withdrawn and measured: ``used / programmed``."""
    FOUND_EMPTY = "found empty"
    """Censored: the pump used at least all it held, so ``f >= filled / programmed``."""
    NOT_LEARNED = "not learned"
    """Nothing programmed since the fill, or more withdrawn than the rated band allows:
    under-delivery is worked up as a catheter or motor problem, not learned as the pump's
    rate (ignoring it can only make the forecast earlier, the safe side)."""


_FOUND_EMPTY = Verdict.FOUND_EMPTY.value
_MORE_THAN_EXPECTED = Verdict.MORE_THAN_EXPECTED.value


@dataclass(frozen=True, slots=True)
class RefillObservation:
    """One refill as the forecast reads it (oldest first in a pump's history).

    Attributes:
        programmed_ml: volume the pump was programmed to deliver since the previous
            fill, boluses included, mL.
        filled_ml: the calculated volume the previous fill left, mL.
        withdrawn_ml: the residual withdrawn, mL.
        verdict: the refill's verdict (:class:`~itb.domain.pump.refill.Verdict` value).
    """

    programmed_ml: float
    filled_ml: float
    withdrawn_ml: float
    verdict: str

    @property
    def observed(self) -> Observed:
        """What this refill tells (:class:`Observed`)."""
        if not self.programmed_ml > 0.0 or self.verdict == _MORE_THAN_EXPECTED:
            return Observed.NOT_LEARNED
        if self.verdict == _FOUND_EMPTY:
            return Observed.FOUND_EMPTY
        return Observed.MEASURED

    @staticmethod
    def of(visits: Iterable[RefillVisitRecord]) -> tuple[RefillObservation, ...]:
        """The refill visits that know what was programmed, oldest first."""
        return tuple(
            RefillObservation(v.programmed_ml, v.filled_ml, v.withdrawn_ml, v.verdict)
            for v in sorted(visits, key=lambda v: (v.at, v.id))
            if v.programmed_ml is not None and v.filled_ml is not None
        )

    @property
    def used_ml(self) -> float:
        """Volume really drawn from the reservoir over the interval (a lower bound when
        found empty), mL."""
        return self.filled_ml - self.withdrawn_ml


# ---------------------------------------------------------------- profile


@dataclass(frozen=True, slots=True)
class DeliveryProfile:
    """A pump's commanded delivery from its present instant on, as the forecast needs it.

    The commanded rate is a lead piece (a running bolus; zero hours without one), then
    ``pieces`` repeated every ``period_h``; every rate includes the patient boluses
    allowed per day, all taken (the programmer's conservative convention, [D73]).

    Attributes:
        start_ml: the calculated volume the last fill left, mL.
        programmed_ml: the volume programmed since the last fill, mL.
        volume_ml: the calculated volume now, mL.
        low_ml: the low-reservoir alarm volume, mL.
        lead_h, lead_ml_per_h: the lead piece.
        period_h: the period of ``pieces``, h.
        pieces: ``(hours, mL/h)`` pieces that fill one period.
    """

    start_ml: float
    programmed_ml: float
    volume_ml: float
    low_ml: float
    lead_h: float
    lead_ml_per_h: float
    period_h: float
    pieces: tuple[tuple[float, float], ...]

    @property
    def period_ml(self) -> float:
        """Volume commanded per period, mL."""
        return math.fsum(h * r for h, r in self.pieces)

    def commanded_ml(self, hours: float) -> float:
        """Volume commanded over the next ``hours`` (the forward map the forecast inverts)."""
        if hours <= 0.0:
            return 0.0
        lead = min(hours, self.lead_h)
        out = lead * self.lead_ml_per_h
        rest = hours - lead
        if rest <= 0.0:
            return out
        periods = math.floor(rest / self.period_h)
        out += periods * self.period_ml
        rest -= periods * self.period_h
        for h, r in self.pieces:
            take = min(rest, h)
            out += take * r
            rest -= take
            if rest <= 0.0:
                break
        return out

    def to_data(self) -> dict[str, Any]:
        """The profile as JSON-ready data (kept with the pump's snapshot)."""
        return {
            "version": PROFILE_VERSION,
            "start_ml": self.start_ml,
            "programmed_ml": self.programmed_ml,
            "volume_ml": self.volume_ml,
            "low_ml": self.low_ml,
            "lead": [self.lead_h, self.lead_ml_per_h],
            "period_h": self.period_h,
            "pieces": [[h, r] for h, r in self.pieces],
        }

    @staticmethod
    def from_data(data: Mapping[str, Any]) -> DeliveryProfile | None:
        """A profile read back (None: another layout; rebuild it from the pump)."""
        if data.get("version") != PROFILE_VERSION:
            return None
        lead = data["lead"]
        return DeliveryProfile(
            float(data["start_ml"]),
            float(data["programmed_ml"]),
            float(data["volume_ml"]),
            float(data["low_ml"]),
            float(lead[0]),
            float(lead[1]),
            float(data["period_h"]),
            tuple((float(h), float(r)) for h, r in data["pieces"]),
        )


def _period_h(pump: Pump) -> float:
    program = pump.prescription.program
    if isinstance(program, Flex) and len(set(program.days)) > 1:
        return _WEEK_H
    if isinstance(program, PeriodicBolus):
        return program.interval_h
    return HOURS_PER_DAY


def delivery_profile(pump: Pump) -> DeliveryProfile | None:
    """The commanded delivery of ``pump`` from its present time on (None: it delivers
    nothing: stopped, or a program of no dose)."""
    if not pump.running:
        return None
    rx = pump.prescription
    extra = 0.0
    if pump.preset.programmable and rx.patient_bolus is not None:
        extra = rx.patient_bolus.max_extra_mcg_per_day / rx.concentration_mcg_per_ml / HOURS_PER_DAY
    t0 = pump.t_h
    lead_h = lead_rate = 0.0
    if pump.bolus is not None:
        lead_h = pump.bolus.remaining_ml / pump.bolus.bolus.rate_ml_per_h
        lead_rate = pump.bolus.bolus.rate_ml_per_h + extra
    period = _period_h(pump)
    start = t0 + lead_h
    pieces = tuple(
        (b - a, r + extra)
        for a, b, r in pump.forecast_commanded(start, start + period, rx)
        if b > a
    )
    profile = DeliveryProfile(
        start_ml=pump.calculated_at_last_fill_ml,
        programmed_ml=pump.ledger.commanded_ml - pump.commanded_at_last_fill_ml,
        volume_ml=pump.reservoir_calculated_ml,
        low_ml=pump.low_reservoir_alarm_ml,
        lead_h=lead_h,
        lead_ml_per_h=lead_rate,
        period_h=period,
        pieces=pieces,
    )
    if profile.period_ml <= 0.0 and lead_h == 0.0:
        return None
    return profile


# --------------------------------------------------------------- forecast


@dataclass(frozen=True, slots=True)
class PumpForecast:
    """One pump's forecast, from its record alone.

    Attributes:
        factor_mean: the delivery factor expected over the coming interval, x programmed.
        factor_sd: its predictive sd (the belief's sd and the interval-to-interval
            spread together).
        refills_learned: refills measured since the implant.
        found_empty: refills found empty (censored observations).
        delivered_pct: how much more (+) or less (-) than programmed the pump used over
            the measured refills, % (None: none measured).
        band_probability: the central probability of the bands below.
        low_at: when the real reservoir reaches the low-reservoir volume: band low end,
            median, band high end (None: beyond the forecast).
        empty_at: when it is empty, the same way.
        by_at: the date the probabilities are for (the next booked visit, or the
            radar's look-ahead without one).
        by_visit: ``by_at`` is a booked visit.
        p_low: probability the real reservoir is at the low-reservoir volume by ``by_at``.
        p_dry: probability it is empty by ``by_at``.
        advised_by: the radar's refill-by date (None: no forecast date).
    """

    factor_mean: float
    factor_sd: float
    refills_learned: int
    found_empty: int
    delivered_pct: float | None
    band_probability: float
    low_at: Band
    empty_at: Band
    by_at: datetime
    by_visit: bool
    p_low: float
    p_dry: float
    advised_by: datetime | None


def pct_words(p: float) -> str:
    """A probability in words as a clinic reads it: "<1 %", "7 %", ">99 %"."""
    if p < 0.005:
        return "<1 %" if p > 0.0 else "0 %"
    if p > 0.995:
        return ">99 %" if p < 1.0 else "100 %"
    return f"{100.0 * p:.0f} %"


Band = tuple[datetime | None, datetime | None, datetime | None]
"""A forecast band: its low end, median and high end (None: beyond the forecast)."""


def band_words(times: Band) -> str:
    """A band's low and high end as dates, the same on every screen: "2027-01-08 to 01-13"
    (the high end's year only when it differs), "on 2027-01-08", "beyond the forecast"."""
    lo, _, hi = times
    if lo is None:
        return "beyond the forecast"
    a = lo.astimezone(UTC).date()
    if hi is None:
        return f"from {a.isoformat()} (its high end beyond the forecast)"
    b = hi.astimezone(UTC).date()
    if a == b:
        return f"on {a.isoformat()}"
    return f"{a.isoformat()} to {b.isoformat() if b.year != a.year else b.strftime('%m-%d')}"


def history_words(f: PumpForecast) -> str:
    """What the pump's refills say about it, in words."""
    n = f.refills_learned
    empty = (
        f"; found empty {f.found_empty} time{'s' if f.found_empty != 1 else ''}"
        if f.found_empty
        else ""
    )
    if n == 0 or f.delivered_pct is None:
        if f.found_empty:
            return f"no refill measured yet{empty}"
        return "no refill measured yet: the spread between pumps is assumed"
    refills = "refill" if n == 1 else f"{n} refills"
    last = "its refill" if n == 1 else f"its last {refills}"
    d = f.delivered_pct
    if abs(d) < 0.5:
        return f"this pump has delivered as programmed over {last}{empty}"
    more = "more" if d > 0 else "less"
    return f"this pump has delivered {abs(d):.0f} % {more} than programmed over {last}{empty}"


def learned_summary(observations: Sequence[RefillObservation]) -> tuple[int, int, float | None]:
    """Refills measured, refills found empty, and how much more (+) than programmed the
    measured refills used, %."""
    measured = [o for o in observations if o.observed is Observed.MEASURED]
    empty = sum(1 for o in observations if o.observed is Observed.FOUND_EMPTY)
    programmed = math.fsum(o.programmed_ml for o in measured)
    if not measured or programmed <= 0.0:
        return 0, empty, None
    used = math.fsum(o.used_ml for o in measured)
    return len(measured), empty, 100.0 * (used / programmed - 1.0)
