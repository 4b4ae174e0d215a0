"""The refill radar: every pump against its next booked visit, sorted by urgency, in words.

For each active implant the registry computes, from the record alone, when the
calculated reservoir reaches the low-reservoir alarm and empty, the earliest it
could really be dry within the pump's rated accuracy, when the drug's stability
ends and when the battery reaches its elective replacement indicator. The radar
puts those dates against the next booked visit and says, in words (never by
colour alone), what needs action first:

- **stopped** — the pump is not running (critical);
- **runs dry before the visit** — it could be empty before the visit (or has no
  visit and could be empty within the look-ahead);
- **alarm before the visit** — the low-reservoir alarm comes first;
- **drug expires before the visit** — the drug's stability ends first;
- **due this week** — the refill-by date (alarm minus the refill margin) is
  within the window;
- **no visit booked**;
- **battery** — ERI reached, or due before the visit;
- **open alarms** and **unresolved refill discrepancies** (the attention rail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from itb.domain.clinic.forecast import (
    ForecastRules,
    PumpForecast,
    band_words,
    history_words,
    pct_words,
)

__all__ = [
    "URGENCY_WORDS",
    "Flag",
    "RadarInput",
    "RadarRow",
    "assess_pump",
    "forecast_flag",
    "sort_radar",
]

URGENCY_WORDS: dict[int, str] = {4: "act now", 3: "act soon", 2: "plan", 1: "note", 0: "ok"}
"""A pump's urgency in words, the same on every screen (0: nothing to do)."""


@dataclass(frozen=True, slots=True)
class Flag:
    """One thing the radar says about a pump: a code, its urgency (0-4) and the words."""

    code: str
    urgency: int
    text: str


@dataclass(frozen=True, slots=True)
class RadarInput:
    """What the radar knows of one pump (all times aware; None: not within the forecast)."""

    patient_id: str
    patient_name: str
    implant_id: str
    pump_label: str
    running: bool
    stop_reason: str
    reservoir_calculated_ml: float
    low_alarm_at: datetime | None
    empty_at: datetime | None
    earliest_dry_at: datetime | None
    stability_until: datetime | None
    eri_at: datetime | None
    eri_reached: bool
    next_visit_at: datetime | None
    active_alarms: tuple[str, ...]
    critical_alarms: tuple[str, ...]
    unresolved_discrepancies: int
    refill_margin_days: float
    withdrawal_risk: tuple[str, ...]
    forecast: PumpForecast | None
    """The reservoir forecast learned from the pump's refills (None: not forecast; the
    radar then takes the top of the rated band as the earliest the pump could be dry)."""


@dataclass(frozen=True, slots=True)
class RadarRow:
    """A pump on the radar: the input, its flags and the refill-by date."""

    pump: RadarInput
    flags: tuple[Flag, ...]
    refill_by: datetime | None
    urgency: int = field(init=False)
    """The highest urgency of its flags (0: nothing to do)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "urgency", max((f.urgency for f in self.flags), default=0))

    @property
    def urgency_words(self) -> str:
        """The urgency in words (:data:`URGENCY_WORDS`)."""
        return URGENCY_WORDS[self.urgency]

    @property
    def words(self) -> str:
        """The flags in words, most urgent first."""
        return "; ".join(f.text for f in sorted(self.flags, key=lambda f: -f.urgency)) or "ok"


_NEVER = datetime.max.replace(tzinfo=UTC)
"""Later than any date on the radar (a pump with no date that matters sorts last)."""


def _d(t: datetime) -> str:
    return t.date().isoformat()


def assess_pump(
    pump: RadarInput,
    *,
    now: datetime,
    due_window_days: float,
    look_ahead_days: float,
    battery_window_days: float,
    forecast_rules: ForecastRules,
) -> RadarRow:
    """The radar's flags for one pump on ``now``.

    Args:
        pump: what the registry knows.
        now: the date the radar is for (aware).
        due_window_days: "due this week": the refill-by date within this, days.
        look_ahead_days: without a booked visit, dates within this count as before it.
        battery_window_days: ERI within this (or before the visit) is flagged, days.
        forecast_rules: the thresholds of the forecast's risk classes.

    With a forecast, the chance of running dry before the visit comes from it (the
    pump's own refills) and so does the refill-by date's "before it could be dry"
    bound; without one, the top of the rated band.
    """
    flags: list[Flag] = []
    horizon = pump.next_visit_at or (now + timedelta(days=look_ahead_days))
    visit_words = (
        f"the {_d(pump.next_visit_at)} visit" if pump.next_visit_at else "any booked visit"
    )
    if not pump.running:
        flags.append(Flag("stopped", 4, f"pump STOPPED ({pump.stop_reason or 'unknown'})"))
    if pump.critical_alarms:
        flags.append(
            Flag("critical_alarm", 4, f"critical alarm: {', '.join(pump.critical_alarms)}")
        )
    fc = pump.forecast
    alarm_due = pump.running and pump.low_alarm_at is not None and pump.low_alarm_at <= horizon
    if fc is not None:
        said = forecast_flag(fc, forecast_rules) if pump.running else None
        if said is not None:
            flags.append(said)
    else:
        dry = pump.earliest_dry_at or pump.empty_at
        if pump.running and dry is not None and dry <= horizon:
            when = "now" if dry <= now else f"from {_d(dry)}"
            flags.append(Flag("dry_before_visit", 4, f"could run dry {when}, before {visit_words}"))
            alarm_due = False
    if alarm_due and pump.low_alarm_at is not None:
        when = "sounding" if pump.low_alarm_at <= now else f"on {_d(pump.low_alarm_at)}"
        flags.append(
            Flag("alarm_before_visit", 3, f"low-reservoir alarm {when}, before {visit_words}")
        )
    if pump.stability_until is not None and pump.stability_until <= horizon:
        flags.append(
            Flag(
                "drug_expires",
                3,
                f"drug stability ends {_d(pump.stability_until)}, before {visit_words}",
            )
        )
    refill_by = None
    if pump.low_alarm_at is not None:
        refill_by = pump.low_alarm_at - timedelta(days=pump.refill_margin_days)
    if pump.stability_until is not None and (refill_by is None or pump.stability_until < refill_by):
        refill_by = pump.stability_until
    could_be_dry = pump.earliest_dry_at if fc is None else fc.advised_by
    if could_be_dry is not None and (refill_by is None or could_be_dry < refill_by):
        refill_by = could_be_dry
    if refill_by is not None and refill_by <= now + timedelta(days=due_window_days):
        what = "overdue" if refill_by < now else f"due by {_d(refill_by)}"
        flags.append(Flag("due_this_week", 2, f"refill {what}"))
    if pump.next_visit_at is None:
        flags.append(Flag("no_visit", 2, "no visit booked"))
    if pump.eri_reached:
        flags.append(Flag("battery_eri", 2, "battery at its elective replacement indicator"))
    elif pump.eri_at is not None and (
        pump.eri_at <= now + timedelta(days=battery_window_days) or pump.eri_at <= horizon
    ):
        flags.append(Flag("battery_soon", 1, f"battery ERI expected {_d(pump.eri_at)}"))
    other_alarms = [a for a in pump.active_alarms if a not in pump.critical_alarms]
    if other_alarms:
        flags.append(Flag("open_alarm", 2, f"open alarm: {', '.join(other_alarms)}"))
    if pump.unresolved_discrepancies:
        flags.append(
            Flag(
                "discrepancy",
                3,
                f"{pump.unresolved_discrepancies} unresolved refill discrepanc"
                + ("y" if pump.unresolved_discrepancies == 1 else "ies"),
            )
        )
    return RadarRow(pump, tuple(flags), refill_by)


def forecast_flag(f: PumpForecast, rules: ForecastRules) -> Flag | None:
    """The radar's flag of a forecast (None: nothing likely before the visit).

    Urgency follows the thresholds of ``forecast.toml``: the chance of running dry first
    (act now, act soon), then of the reservoir reaching its low-reservoir volume (act
    soon, plan). The words say the probability, the date it is for and why.
    """
    if f.p_dry >= rules.dry_act_now.value:
        code, urgency, what, p = "forecast_dry", 4, "dry", f.p_dry
    elif f.p_dry >= rules.dry_act_soon.value:
        code, urgency, what, p = "forecast_dry", 3, "dry", f.p_dry
    elif f.p_low >= rules.low_act_soon.value:
        code, urgency, what, p = "forecast_low", 3, "low reservoir", f.p_low
    elif f.p_low >= rules.low_plan.value:
        code, urgency, what, p = "forecast_low", 2, "low reservoir", f.p_low
    else:
        return None
    by = (
        f"before the {f.by_at.date().isoformat()} visit"
        if f.by_visit
        else f"by {f.by_at.date().isoformat()}, no visit booked"
    )
    band = f"empty {round(100 * f.band_probability)} % band {band_words(f.empty_at)}"
    return Flag(code, urgency, f"P({what} {by}) {pct_words(p)}: {history_words(f)}; {band}")


def sort_radar(rows: Sequence[RadarRow]) -> list[RadarRow]:
    """Most urgent first; then the earliest date that matters; then the patient."""

    def key(r: RadarRow) -> tuple[int, datetime, int, str]:
        p = r.pump
        soonest = _NEVER
        for t in (p.earliest_dry_at, p.low_alarm_at, r.refill_by):
            if t is not None and t < soonest:
                soonest = t
        return (-r.urgency, soonest, -len(p.withdrawal_risk), p.patient_id)

    return sorted(rows, key=key)
