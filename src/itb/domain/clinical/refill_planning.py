"""Refill planning: when the reservoir runs low, when to refill, how much to fill.

Pure rules on a :class:`~itb.domain.pump.Pump` at its present time; the caller
passes the wall-clock date-time of that instant (``now``): the domain has no
clock. Aware date-times are shifted in absolute time (through UTC), so a DST
change inside the horizon moves the local clock time, never the interval.

Rules:

* **Days to the low-reservoir alarm**, **to the empty-reservoir alarm** and
  **to empty** follow the pump's *calculated* volume under the present program,
  flex steps included, with every allowed patient bolus taken (the
  conservative convention of the Prometra controller's refill date, [D73]).
  The empty-reservoir alarm is the preset's critical alarm volume; "empty" is
  0 mL. A pump over-infusing at the top of its rated accuracy band could run
  dry earlier: that instant is the *earliest dry* time ([D46][D48]).
* **Refill-by date**: the alarm date minus the margin (3-5 days [D35b]; a week
  when travel or weather risks a missed visit [C17][C37]), never after the
  drug-stability limit (last fill date + max days in the pump, 180 days
  [C40][D94]) and never on or after the earliest day the pump could be dry
  within its rated accuracy, then moved *earlier* to the previous clinic
  working day (weekdays by default, holidays excluded). A date already past is
  reported as it is, with ``overdue`` set: refill as soon as possible.
* **Fill volume**: the reservoir capacity, unless a full reservoir would
  outlast the drug's stability. Then just enough that the *next* low-reservoir
  alarm falls ``margin`` days after the stability limit, so that the next
  refill comes due at the stability limit, not earlier: low-alarm volume +
  forecast use (after the refill, every allowed patient bolus taken, any
  bridge bolus included) over ``max_days_in_pump + margin`` days, rounded up
  to the clinic's fill step and never above the capacity.
* **Concentration change**: the bridge bolus (:meth:`Bolus.bridge`) pushes the
  old drug out of the pump path and catheter (the dead space) at the present
  daily dose, so the dose stays continuous ([C17]).

Every output carries its reasons.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from itb.domain.clinical.reasons import Reason
from itb.domain.errors import DoseOutOfRange, InvalidValue
from itb.domain.provenance import STATUSES, Sourced, Status, sourced
from itb.domain.pump.prescription import Bolus, Prescription
from itb.domain.pump.programs import WEEKDAYS
from itb.domain.pump.pump import Pump
from itb.domain.pump.refill import calculated_volume_at, time_calculated_volume_reaches
from itb.domain.units import HOURS_PER_DAY, require_non_negative, require_positive

__all__ = [
    "BridgePlan",
    "ClinicCalendar",
    "RefillPlan",
    "RefillPolicy",
    "parse_refill_policy",
    "plan_refill",
    "residual_at",
    "shift",
]

_MAX_CALENDAR_SEARCH_DAYS = 3660
"""Give up looking for a working day after this many days (a calendar with none)."""


# ------------------------------------------------------------------ policy


@dataclass(frozen=True, slots=True)
class RefillPolicy:
    """The clinic's refill-planning numbers (``itb/data/refill_planning.toml``)."""

    margin_days: Sourced
    min_margin_days: Sourced
    travel_margin_days: Sourced
    visit_hour_of_day: Sourced
    reduced_fill_step_ml: Sourced
    working_weekdays: tuple[int, ...]
    """Clinic working days, 0 = Monday."""
    working_weekdays_source: str
    working_weekdays_status: Status


def parse_refill_policy(table: Mapping[str, Any]) -> RefillPolicy:
    """Parse ``refill_planning.toml``.

    Raises:
        InvalidValue: a number is missing or malformed, or the working days are not
            a non-empty list of weekday names.
    """
    margin = table.get("margin", {})
    visit = table.get("visit", {})
    fill = table.get("fill", {})
    days = table.get("working_days", {}).get("weekdays")
    where = "refill_planning.working_days.weekdays"
    if not isinstance(days, Mapping):
        raise InvalidValue(where, days, "a table with value, unit, status and source")
    names = days.get("value")
    if (
        not isinstance(names, list)
        or not names
        or any(n not in WEEKDAYS for n in names)
        or len(set(names)) != len(names)
    ):
        raise InvalidValue(f"{where}.value", names, f"a non-empty list of {', '.join(WEEKDAYS)}")
    status = days.get("status")
    if status not in STATUSES:
        raise InvalidValue(f"{where}.status", status, " or ".join(STATUSES))
    source = days.get("source")
    if not isinstance(source, str) or not source:
        raise InvalidValue(f"{where}.source", source, "a non-empty source string")
    policy = RefillPolicy(
        margin_days=sourced(margin, "days", where="refill_planning.margin"),
        min_margin_days=sourced(margin, "min_days", where="refill_planning.margin"),
        travel_margin_days=sourced(margin, "travel_days", where="refill_planning.margin"),
        visit_hour_of_day=sourced(visit, "hour_of_day", where="refill_planning.visit"),
        reduced_fill_step_ml=sourced(fill, "reduced_fill_step_ml", where="refill_planning.fill"),
        working_weekdays=tuple(sorted(WEEKDAYS.index(n) for n in names)),
        working_weekdays_source=source,
        working_weekdays_status=status,
    )
    for name in ("margin_days", "min_margin_days", "travel_margin_days"):
        value = getattr(policy, name).value
        if value < 0 or value != int(value):
            raise InvalidValue(f"refill_planning.{name}", value, "a whole number of days >= 0")
    if not 0.0 <= policy.visit_hour_of_day.value < HOURS_PER_DAY:
        raise InvalidValue(
            "refill_planning.visit.hour_of_day", policy.visit_hour_of_day.value, "0 <= h < 24"
        )
    require_positive("refill_planning.fill.reduced_fill_step_ml", policy.reduced_fill_step_ml.value)
    return policy


@dataclass(frozen=True, slots=True)
class ClinicCalendar:
    """The clinic's working days: weekdays (0 = Monday) minus holidays."""

    working_weekdays: frozenset[int]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.working_weekdays or not self.working_weekdays <= set(range(7)):
            raise InvalidValue(
                "working_weekdays", sorted(self.working_weekdays), "a non-empty subset of 0-6"
            )

    def is_working_day(self, day: date) -> bool:
        """True when the clinic is open on ``day``."""
        return day.weekday() in self.working_weekdays and day not in self.holidays

    def working_day_on_or_before(self, day: date) -> date:
        """The last working day on or before ``day``.

        Raises:
            InvalidValue: no working day in the ten years before ``day``.
        """
        d = day
        for _ in range(_MAX_CALENDAR_SEARCH_DAYS):
            if self.is_working_day(d):
                return d
            d -= timedelta(days=1)
        raise InvalidValue("holidays", len(self.holidays), "a calendar with working days")


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class BridgePlan:
    """The bridge bolus for a concentration change at the refill ([C17]).

    The bolus pumps ``volume_ml`` (the dead space) of *new* drug, pushing the
    old drug ahead of it into the CSF at ``dose_mcg_per_day``; when it ends the
    new concentration reaches the catheter tip and the program resumes.
    """

    old_concentration_mcg_per_ml: float
    new_concentration_mcg_per_ml: float
    dead_space_ml: float
    dose_mcg_per_day: float
    volume_ml: float
    rate_ml_per_h: float
    duration_h: float
    rate_after_ml_per_day: float
    """The program's mean volume rate at the new concentration, mL/day."""


@dataclass(frozen=True, slots=True)
class RefillPlan:
    """A refill plan made at ``planned_at`` (the pump's present time).

    Dates are local dates of ``planned_at``'s time zone; ``None`` means "not
    within the forecast horizon" (a stopped pump, or more than three years).
    """

    planned_at: datetime
    reservoir_calculated_ml: float
    low_reservoir_alarm_ml: float
    empty_reservoir_alarm_ml: float
    concentration_mcg_per_ml: float
    daily_dose_mcg_per_day: float
    max_patient_bolus_mcg_per_day: float
    days_to_low_reservoir_alarm: float | None
    low_reservoir_alarm_at: datetime | None
    low_reservoir_alarm_date: date | None
    days_to_empty_alarm: float | None
    """Days until the calculated volume reaches the empty-reservoir *alarm* volume."""
    empty_alarm_at: datetime | None
    days_to_empty: float | None
    """Days until the calculated volume reaches 0 mL."""
    empty_at: datetime | None
    empty_date: date | None
    earliest_dry_at: datetime | None
    """Calculated volume exhausted at the top of the rated accuracy band."""
    last_fill_at: datetime
    stability_limit_date: date
    margin_days: int
    refill_by_date: date
    refill_by_at: datetime
    """``refill_by_date`` at the clinic's visit hour (or ``planned_at`` if overdue)."""
    overdue: bool
    residual_at_refill_ml: float
    """Calculated volume expected at the visit (programmed delivery only), mL."""
    residual_at_refill_min_ml: float
    """The same if every allowed patient bolus is taken, mL."""
    fill_volume_ml: float
    fill_limited_by_stability: bool
    fill_concentration_mcg_per_ml: float
    next_low_reservoir_alarm_date: date | None
    """Low-reservoir alarm date after a refill of ``fill_volume_ml`` on the refill-by date."""
    bridge: BridgePlan | None
    reasons: tuple[Reason, ...]


# ------------------------------------------------------------------ helpers


def shift(start: datetime, hours: float) -> datetime:
    """``start`` plus ``hours`` of elapsed time (through UTC when ``start`` is aware)."""
    delta = timedelta(hours=hours)
    if start.tzinfo is None:
        return start + delta
    return (start.astimezone(UTC) + delta).astimezone(start.tzinfo)


def _hours_between(a: datetime, b: datetime) -> float:
    """Elapsed hours from ``a`` to ``b``."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        raise InvalidValue("date-time", b.isoformat(), f"the same kind as {a.isoformat()} (aware)")
    if a.tzinfo is not None:
        # Same-zone subtraction would give wall-clock time; elapsed time goes through UTC.
        a, b = a.astimezone(UTC), b.astimezone(UTC)
    return (b - a).total_seconds() / 3600.0


def _at_hour(day: date, hour: float, like: datetime) -> datetime:
    """Local ``day`` at ``hour`` in the time zone of ``like`` (first occurrence if repeated)."""
    naive = datetime(day.year, day.month, day.day) + timedelta(hours=hour)
    return naive if like.tzinfo is None else naive.replace(tzinfo=like.tzinfo, fold=0)


def _with_max_boluses(
    pieces: Iterable[tuple[float, float, float]], prescription: Prescription, programmable: bool
) -> Iterator[tuple[float, float, float]]:
    pb = prescription.patient_bolus
    extra = (
        0.0
        if pb is None or not programmable
        else pb.max_extra_mcg_per_day / prescription.concentration_mcg_per_ml / HOURS_PER_DAY
    )
    return ((a, b, r + extra) for a, b, r in pieces)


def _time_to_reach(
    pieces: Iterable[tuple[float, float, float]], volume_ml: float, target_ml: float
) -> float | None:
    """First time the volume falls to ``target_ml`` along constant-rate pieces (mL/h)."""
    for t0, t1, rate in pieces:
        if volume_ml <= target_ml:
            return t0
        used = rate * (t1 - t0)
        if rate > 0.0 and volume_ml - used <= target_ml:
            return t0 + (volume_ml - target_ml) / rate
        volume_ml -= used
    return None


def _used_ml(pieces: Iterable[tuple[float, float, float]]) -> float:
    return math.fsum(r * (b - a) for a, b, r in pieces)


def _after_refill_pieces(
    pump: Pump,
    t_from_h: float,
    t_to_h: float,
    prescription: Prescription,
    bridge: Bolus | None,
) -> Iterator[tuple[float, float, float]]:
    """Commanded volume rate (mL/h) after a refill at ``t_from_h``: bridge, then program."""
    t = t_from_h
    if bridge is not None:
        end = min(t + bridge.duration_h, t_to_h)
        yield (t, end, bridge.rate_ml_per_h)
        t = end
    if t < t_to_h:
        yield from _with_max_boluses(
            pump.forecast_commanded(t, t_to_h, prescription),
            prescription,
            pump.preset.programmable,
        )


def _round_up(volume_ml: float, step_ml: float) -> float:
    # A hair of tolerance so that 12.0000000001 stays 12.
    return math.ceil(volume_ml / step_ml - 1e-9) * step_ml


def residual_at(
    pump: Pump, now: datetime, visit_at: datetime, *, include_max_patient_boluses: bool = False
) -> float:
    """The calculated reservoir volume (mL) expected at ``visit_at``.

    ``now`` is the wall-clock date-time of the pump's present time.

    Raises:
        InvalidValue: ``visit_at`` is before ``now``.
    """
    hours = _hours_between(now, visit_at)
    if hours < 0:
        raise InvalidValue("visit date", visit_at.isoformat(), f"at or after {now.isoformat()}")
    return calculated_volume_at(
        pump, pump.t_h + hours, include_max_patient_boluses=include_max_patient_boluses
    )


# ------------------------------------------------------------------ planning


def plan_refill(
    pump: Pump,
    *,
    now: datetime,
    last_fill_at: datetime,
    policy: RefillPolicy,
    max_days_in_pump: Sourced,
    holidays: Sequence[date] = (),
    margin_days: int | None = None,
    travel_risk: bool = False,
    new_concentration_mcg_per_ml: float | None = None,
) -> RefillPlan:
    """Plan the next refill of ``pump`` as it stands at ``now``.

    Args:
        pump: the pump at its present time ``pump.t_h`` (not changed).
        now: wall-clock date-time of ``pump.t_h`` (naive or aware; all date-times
            given must be of the same kind).
        last_fill_at: when the drug now in the reservoir was filled.
        policy: the clinic's numbers (:func:`parse_refill_policy`).
        max_days_in_pump: drug stability in the pump, days (drugs.toml).
        holidays: dates the clinic is closed, besides non-working weekdays.
        margin_days: days before the alarm date (default: the policy's).
        travel_risk: travel or weather risks a missed visit: at least the policy's
            travel margin (a week).
        new_concentration_mcg_per_ml: the concentration to fill with, when it
            changes; the plan then includes the bridge bolus.

    Raises:
        InvalidValue: a negative margin, a last fill after ``now``, a
            non-positive concentration.
        DoseOutOfRange: the present dose cannot be programmed at the new
            concentration on this pump.
    """
    reasons: list[Reason] = []

    def say(rule: str, outcome: str, text: str, source: str, status: Status) -> None:
        reasons.append(Reason(rule, outcome, text, source, status))

    def src(s: Sourced) -> tuple[str, Status]:
        return s.source, s.status

    if _hours_between(last_fill_at, now) < 0:
        raise InvalidValue("last_fill_at", last_fill_at.isoformat(), f"<= {now.isoformat()}")
    preset = pump.preset
    rx = pump.prescription
    conc = pump.labelled_concentration_mcg_per_ml
    calendar = ClinicCalendar(frozenset(policy.working_weekdays), frozenset(holidays))

    # ------------------------------------------------------------- margin
    margin_src = policy.margin_days
    if margin_days is None:
        margin = int(policy.margin_days.value)
    else:
        if isinstance(margin_days, bool) or margin_days < 0:
            raise InvalidValue("margin_days", margin_days, "a whole number of days >= 0")
        margin = int(margin_days)
    if travel_risk and margin < policy.travel_margin_days.value:
        margin = int(policy.travel_margin_days.value)
        margin_src = policy.travel_margin_days
        say(
            "travel_margin",
            "plan",
            f"travel or weather risks a missed visit: margin {margin} days before the alarm date",
            *src(margin_src),
        )
    else:
        say(
            "margin",
            "plan",
            f"refill {margin} days before the low-reservoir alarm date (practice: 3-5 days)",
            *src(margin_src),
        )
    if margin < policy.min_margin_days.value:
        say(
            "margin_small",
            "warn",
            f"a margin of {margin} days is below the usual {policy.min_margin_days.value:g} days",
            *src(policy.min_margin_days),
        )

    # -------------------------------------------------------- alarm dates
    programmable = preset.programmable
    pb = rx.patient_bolus if programmable else None
    daily_dose = rx.program.daily_dose_mcg() if programmable else 0.0
    if not programmable:
        daily_dose = preset.nominal_flow_ml_per_day * conc
    extra = pb.max_extra_mcg_per_day if pb is not None else 0.0
    low_ml = pump.low_reservoir_alarm_ml
    empty_ml = preset.empty_reservoir_alarm_ml
    t_low = time_calculated_volume_reaches(pump, low_ml)
    t_empty_alarm = time_calculated_volume_reaches(pump, empty_ml)
    t_empty = time_calculated_volume_reaches(pump, 0.0)

    def when(t_h: float | None) -> datetime | None:
        return None if t_h is None else shift(now, t_h - pump.t_h)

    def days_to(t_h: float | None) -> float | None:
        return None if t_h is None else (t_h - pump.t_h) / HOURS_PER_DAY

    low_at, empty_alarm_at, empty_at = when(t_low), when(t_empty_alarm), when(t_empty)
    days_low, days_empty_alarm, days_empty = (
        days_to(t_low),
        days_to(t_empty_alarm),
        days_to(t_empty),
    )
    if not pump.running:
        why = "; ".join(sorted(r.value for r in pump.stop_reasons))
        say(
            "pump_stopped",
            "warn",
            f"the pump is stopped ({why}): no alarm date; the plan follows the drug's stability",
            "[D24]",
            "confirmed",
        )
    elif low_at is not None:
        mode = "flex steps included; " if rx.program.mode == "flex" else ""
        bolus_text = (
            f"every allowed patient bolus taken: +{extra:g} mcg/day"
            if extra > 0
            else "no patient boluses programmed"
        )
        say(
            "low_reservoir_alarm",
            "plan",
            f"calculated volume {pump.reservoir_calculated_ml:.2f} mL reaches the {low_ml:g} mL "
            f"low-reservoir alarm in {days_low:.1f} days ({mode}{bolus_text})",
            "[D73][D44]",
            "confirmed",
        )
    if not preset.has_alarms:
        say(
            "no_alarms",
            "note",
            f"{preset.label} has no reservoir alarms: the dates are when its calculated volume "
            f"reaches {low_ml:g} mL and {empty_ml:g} mL",
            "[D80]",
            "confirmed",
        )
    earliest_dry_at: datetime | None = None
    if pump.running and pump.reservoir_calculated_ml > 0:
        factor = 1.0 + preset.accuracy_band_pct / 100.0
        pieces = _with_max_boluses(
            pump.forecast_commanded(pump.t_h, pump.t_h + 3 * 366 * HOURS_PER_DAY),
            rx,
            programmable,
        )
        t_dry = _time_to_reach(
            ((a, b, r * factor) for a, b, r in pieces), pump.reservoir_calculated_ml, 0.0
        )
        earliest_dry_at = when(t_dry)
        if earliest_dry_at is not None:
            say(
                "accuracy_band",
                "note",
                f"a pump delivering {preset.accuracy_band_pct:g} % above program could run dry "
                f"by {earliest_dry_at.date().isoformat()} without its alarm sounding",
                "[D45][D46][D48]",
                "confirmed",
            )

    # --------------------------------------------------- refill-by date
    max_days = max_days_in_pump.value
    stability_limit = last_fill_at.date() + timedelta(days=int(max_days))
    low_date = None if low_at is None else low_at.date()
    candidates = [stability_limit]
    if low_date is not None:
        candidates.append(low_date - timedelta(days=margin))
    dry_limit: date | None = None
    if earliest_dry_at is not None:
        # The visit must come before the pump could be dry: the day before, unless the
        # visit hour on that day is still earlier than the earliest dry instant.
        day = earliest_dry_at.date()
        if _hours_between(_at_hour(day, policy.visit_hour_of_day.value, now), earliest_dry_at) <= 0:
            day -= timedelta(days=1)
        dry_limit = day
        candidates.append(dry_limit)
    latest = min(candidates)
    refill_by = calendar.working_day_on_or_before(latest)
    if dry_limit is not None and latest == dry_limit and dry_limit < min(candidates[:-1]):
        say(
            "earliest_dry",
            "plan",
            f"refill by {latest.isoformat()}: a pump delivering {preset.accuracy_band_pct:g} % "
            f"above program could be dry on {earliest_dry_at.date().isoformat() if earliest_dry_at else ''}, "
            "before the alarm date minus the margin",
            "[D45][D46][D48]",
            "confirmed",
        )
    elif low_date is not None and low_date - timedelta(days=margin) <= stability_limit:
        say(
            "alarm_minus_margin",
            "plan",
            f"refill by {latest.isoformat()}: {margin} days before the low-reservoir alarm on "
            f"{low_date.isoformat()}",
            *src(margin_src),
        )
    else:
        say(
            "stability_limit",
            "plan",
            f"refill by {stability_limit.isoformat()}: the drug filled on "
            f"{last_fill_at.date().isoformat()} may stay in the pump at most {max_days:g} days",
            *src(max_days_in_pump),
        )
    if refill_by != latest:
        say(
            "working_day",
            "plan",
            f"{latest.isoformat()} ({WEEKDAYS[latest.weekday()]}) is not a clinic working day: "
            f"moved earlier to {refill_by.isoformat()} ({WEEKDAYS[refill_by.weekday()]})",
            policy.working_weekdays_source,
            policy.working_weekdays_status,
        )
    today = now.date()
    overdue = refill_by < today
    visit_at = _at_hour(refill_by, policy.visit_hour_of_day.value, now)
    if _hours_between(now, visit_at) < 0:
        visit_at = now
    if overdue:
        say(
            "overdue",
            "warn",
            f"the latest safe refill date {refill_by.isoformat()} has passed: refill as soon "
            "as possible",
            *src(margin_src),
        )
    if earliest_dry_at is not None and earliest_dry_at < visit_at:
        say(
            "dry_before_refill",
            "warn",
            f"at the top of the rated accuracy band (+{preset.accuracy_band_pct:g} %) the "
            f"reservoir could run dry on {earliest_dry_at.date().isoformat()}, before the visit: "
            "compare the residuals withdrawn at past refills, or refill earlier",
            "[D45][D46][D48]",
            "confirmed",
        )
    residual = residual_at(pump, now, visit_at)
    residual_min = residual_at(pump, now, visit_at, include_max_patient_boluses=True)
    text = f"expected residual at the visit {residual:.2f} mL (calculated, programmed delivery)"
    if pb is not None:
        text += f"; {residual_min:.2f} mL if every allowed patient bolus is taken"
    say("residual", "plan", text, "[D58]", "confirmed")

    # ------------------------------------------------ concentration change
    new_conc = conc if new_concentration_mcg_per_ml is None else new_concentration_mcg_per_ml
    require_positive("new_concentration_mcg_per_ml", new_conc)
    after_rx = rx
    bridge_plan: BridgePlan | None = None
    bridge: Bolus | None = None
    if new_conc != conc:
        if not programmable:
            new_dose = preset.nominal_flow_ml_per_day * new_conc
            say(
                "constant_flow_concentration",
                "warn",
                f"{preset.label} has a fixed flow: {new_conc:g} mcg/mL changes the daily dose "
                f"from {daily_dose:g} to {new_dose:g} mcg/day; no bridge bolus is possible",
                "[C17]; [D80]",
                "confirmed",
            )
        else:
            after_rx = Prescription(rx.program, new_conc, rx.patient_bolus)
            pump.validate_prescription(after_rx, held_concentration_mcg_per_ml=new_conc)
            if daily_dose > 0:
                bridge = Bolus.bridge(pump.dead_space_ml, conc, daily_dose)
                if bridge.rate_ml_per_h > preset.max_bolus_rate_ml_per_h + 1e-12:
                    raise DoseOutOfRange(
                        "bridge bolus rate_ml_per_h",
                        round(bridge.rate_ml_per_h, 6),
                        f"<= {preset.max_bolus_rate_ml_per_h:g}",
                    )
                bridge_plan = BridgePlan(
                    old_concentration_mcg_per_ml=conc,
                    new_concentration_mcg_per_ml=new_conc,
                    dead_space_ml=pump.dead_space_ml,
                    dose_mcg_per_day=daily_dose,
                    volume_ml=bridge.volume_ml,
                    rate_ml_per_h=bridge.rate_ml_per_h,
                    duration_h=bridge.duration_h,
                    rate_after_ml_per_day=daily_dose / new_conc,
                )
                say(
                    "bridge_bolus",
                    "plan",
                    f"concentration {conc:g} -> {new_conc:g} mcg/mL: bridge bolus of "
                    f"{bridge.volume_ml:.3f} mL (the dead space) at {bridge.rate_ml_per_h:.4f} "
                    f"mL/h for {bridge.duration_h:.1f} h keeps {daily_dose:g} mcg/day continuous",
                    "[C17]",
                    "confirmed",
                )
            else:
                say(
                    "bridge_bolus",
                    "note",
                    "no bridge bolus: the present program delivers no drug",
                    "[C17]",
                    "confirmed",
                )

    # -------------------------------------------------------- fill volume
    capacity = preset.reservoir_ml
    t_refill = pump.t_h + _hours_between(now, visit_at)
    horizon_h = (max_days + margin) * HOURS_PER_DAY
    used = _used_ml(_after_refill_pieces(pump, t_refill, t_refill + horizon_h, after_rx, bridge))
    needed = low_ml + used
    step = policy.reduced_fill_step_ml.value
    if used <= 0.0:
        fill, limited = capacity, False
        say(
            "no_delivery",
            "warn",
            "the program delivers no drug: the fill is not sized by use; program a dose before "
            "the pump is restarted",
            "[D50]",
            "confirmed",
        )
    elif needed < capacity:
        fill = min(capacity, _round_up(needed, step))
        limited = fill < capacity
    else:
        fill, limited = capacity, False
    if limited:
        say(
            "fill_reduced",
            "plan",
            f"fill {fill:g} mL, not the full {capacity:g} mL: a full reservoir would outlast the "
            f"{max_days:g}-day stability; {fill:g} mL lasts {max_days:g} + {margin} days to the "
            "low-reservoir alarm",
            *src(max_days_in_pump),
        )
    elif used > 0.0:
        say(
            "fill_full",
            "plan",
            f"fill the reservoir: {capacity:g} mL ({preset.label})",
            "[D30][D70][D80]",
            "confirmed",
        )
    after = _time_to_reach(
        _after_refill_pieces(pump, t_refill, t_refill + 3 * 366 * HOURS_PER_DAY, after_rx, bridge),
        fill,
        low_ml,
    )
    next_low = None if after is None else shift(now, after - pump.t_h).date()

    return RefillPlan(
        planned_at=now,
        reservoir_calculated_ml=pump.reservoir_calculated_ml,
        low_reservoir_alarm_ml=low_ml,
        empty_reservoir_alarm_ml=empty_ml,
        concentration_mcg_per_ml=conc,
        daily_dose_mcg_per_day=daily_dose,
        max_patient_bolus_mcg_per_day=extra,
        days_to_low_reservoir_alarm=days_low,
        low_reservoir_alarm_at=low_at,
        low_reservoir_alarm_date=low_date,
        days_to_empty_alarm=days_empty_alarm,
        empty_alarm_at=empty_alarm_at,
        days_to_empty=days_empty,
        empty_at=empty_at,
        empty_date=None if empty_at is None else empty_at.date(),
        earliest_dry_at=earliest_dry_at,
        last_fill_at=last_fill_at,
        stability_limit_date=stability_limit,
        margin_days=margin,
        refill_by_date=refill_by,
        refill_by_at=visit_at,
        overdue=overdue,
        residual_at_refill_ml=residual,
        residual_at_refill_min_ml=residual_min,
        fill_volume_ml=require_non_negative("fill_volume_ml", fill),
        fill_limited_by_stability=limited,
        fill_concentration_mcg_per_ml=new_conc,
        next_low_reservoir_alarm_date=next_low,
        bridge=bridge_plan,
        reasons=tuple(reasons),
    )
