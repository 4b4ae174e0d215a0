"""Refill planning: alarm dates, refill-by date, fill volume, bridge bolus."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.refill_planning import (
    ClinicCalendar,
    RefillPlan,
    RefillPolicy,
    parse_refill_policy,
    plan_refill,
    residual_at,
)
from itb.domain.errors import DoseOutOfRange, InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.pump import (
    CatheterSpec,
    Continuous,
    Flex,
    FlexStep,
    PatientBolusSettings,
    Prescription,
    ProgrammingSession,
    Pump,
    PumpPreset,
    Stopped,
    parse_catheters,
    parse_presets,
)
from itb.domain.pump.programs import Program

PRESETS: dict[str, PumpPreset] = parse_presets(load_data_table("pumps"))
_LABEL, _PER_CM, _ = parse_catheters(load_data_table("catheters"))["prometra_catheter"]
CATHETER = CatheterSpec("prometra_catheter", _LABEL, 60.0, _PER_CM)
POLICY: RefillPolicy = parse_refill_policy(load_data_table("refill_planning"))
STABILITY: Sourced = sourced(load_data_table("drugs")["stability"], "max_days_in_pump")
MONDAY = datetime(2026, 1, 5, 0, 0)  # a Monday; the test pumps' clocks read Monday 00:00 at t = 0


def make_pump(
    program: Program | None = None,
    *,
    preset: str = "synchromed_ii_40",
    concentration: float = 500.0,
    fill_ml: float = 20.0,
    patient_bolus: PatientBolusSettings | None = None,
) -> Pump:
    pump = Pump(PRESETS[preset], CATHETER)
    pump.fill(0.0, fill_ml, concentration)
    if pump.preset.programmable:
        session = ProgrammingSession(pump, 0.0)
        rx = Prescription(program or Continuous(480.0), concentration, patient_bolus)
        session.stage_prescription(rx, "test")
        session.commit(0.0)
    return pump


def plan(pump: Pump, now: datetime = MONDAY, **kw: object) -> RefillPlan:
    last = kw.pop("last_fill_at", now)
    assert isinstance(last, datetime)
    return plan_refill(
        pump,
        now=now,
        last_fill_at=last,
        policy=POLICY,
        max_days_in_pump=STABILITY,
        **kw,  # type: ignore[arg-type]
    )


def rules(p: RefillPlan) -> set[str]:
    return {r.rule for r in p.reasons}


# ------------------------------------------------------------ alarm and empty


def test_days_to_alarm_and_empty_follow_the_calculated_volume() -> None:
    # 480 mcg/day at 500 mcg/mL = 0.96 mL/day; 20 mL down to 2 mL (low-reservoir alarm),
    # 0.5 mL (the empty-reservoir alarm) and 0 mL (empty: empty means empty).
    p = plan(make_pump())
    assert p.days_to_low_reservoir_alarm == pytest.approx(18.0 / 0.96)
    assert p.days_to_empty_alarm == pytest.approx(19.5 / 0.96)
    assert p.days_to_empty == pytest.approx(20.0 / 0.96)
    assert p.low_reservoir_alarm_at == MONDAY + timedelta(days=18.0 / 0.96)
    assert p.low_reservoir_alarm_date == date(2026, 1, 23)
    assert p.empty_date == date(2026, 1, 25)
    assert p.reasons
    assert all(r.source for r in p.reasons)


def test_max_patient_boluses_shorten_the_days_to_alarm() -> None:
    pb = PatientBolusSettings(dose_mcg=50.0, duration_h=0.5, lockout_h=4.0, max_per_day=4)
    assert pb.max_extra_mcg_per_day == 200.0
    without = plan(make_pump())
    with_pb = plan(make_pump(patient_bolus=pb))
    # (480 + 200) mcg/day at 500 mcg/mL = 1.36 mL/day.
    assert with_pb.days_to_low_reservoir_alarm == pytest.approx(18.0 / 1.36)
    assert without.days_to_low_reservoir_alarm is not None
    assert with_pb.days_to_low_reservoir_alarm < without.days_to_low_reservoir_alarm
    assert with_pb.residual_at_refill_min_ml < with_pb.residual_at_refill_ml


def _hourly_days_to_consume(rates_mcg_per_h: list[float], conc: float, volume_ml: float) -> float:
    """Independent oracle: walk a 24-hour step program hour by hour (steps on whole hours)."""
    used, hour = 0.0, 0
    while True:
        rate_ml = rates_mcg_per_h[hour % 24] / conc
        if used + rate_ml >= volume_ml:
            return (hour + (volume_ml - used) / rate_ml) / 24.0
        used += rate_ml
        hour += 1


def test_flex_steps_are_walked_exactly_and_a_higher_step_shortens_the_days() -> None:
    steps = (FlexStep(0.0, 10.0), FlexStep(8.0, 60.0), FlexStep(20.0, 10.0))  # 840 mcg/day
    flex = Flex.every_day(steps)
    hourly = [10.0] * 8 + [60.0] * 12 + [10.0] * 4
    p = plan(make_pump(flex))
    assert p.days_to_low_reservoir_alarm == pytest.approx(
        _hourly_days_to_consume(hourly, 500.0, 18.0)
    )
    base = plan(make_pump(Continuous(480.0)))
    assert base.days_to_low_reservoir_alarm is not None
    assert p.days_to_low_reservoir_alarm is not None
    assert p.days_to_low_reservoir_alarm < base.days_to_low_reservoir_alarm


# ----------------------------------------------------------- refill-by date


def test_refill_by_is_alarm_date_minus_margin_on_a_working_day() -> None:
    # Alarm 2026-01-23 (Fri) 03:00; minus 5 days = Sun 18th -> Fri 16th.
    p = plan(make_pump())
    assert p.margin_days == 5
    assert p.refill_by_date == date(2026, 1, 16)
    assert "working_day" in rules(p)
    assert p.refill_by_date.weekday() < 5


@pytest.mark.parametrize(
    ("margin", "expected"),
    [
        (3, date(2026, 1, 20)),  # Tue: a working day, unchanged
        (4, date(2026, 1, 19)),  # Mon: unchanged
        (5, date(2026, 1, 16)),  # Sun 18th -> Fri 16th
        (6, date(2026, 1, 16)),  # Sat 17th -> Fri 16th
        (7, date(2026, 1, 16)),  # Fri 16th: unchanged
    ],
)
def test_margin_landing_on_a_weekend_moves_to_the_previous_working_day(
    margin: int, expected: date
) -> None:
    p = plan(make_pump(), margin_days=margin)
    assert p.refill_by_date == expected
    assert ("working_day" in rules(p)) == (margin in (5, 6))


def test_holiday_moves_the_date_earlier_again() -> None:
    p = plan(make_pump(), margin_days=7, holidays=[date(2026, 1, 16)])
    assert p.refill_by_date == date(2026, 1, 15)


def test_travel_risk_means_a_week_early() -> None:
    p = plan(make_pump(), travel_risk=True)
    assert p.margin_days == 7
    assert p.refill_by_date == date(2026, 1, 16)
    assert "travel_margin" in rules(p)
    # a larger margin asked for is kept
    assert plan(make_pump(), travel_risk=True, margin_days=10).margin_days == 10


def test_a_margin_below_three_days_is_flagged() -> None:
    assert "margin_small" in rules(plan(make_pump(), margin_days=2))
    assert "margin_small" not in rules(plan(make_pump(), margin_days=3))
    with pytest.raises(InvalidValue, match="margin_days"):
        plan(make_pump(), margin_days=-1)


def test_stability_limit_caps_the_date_and_reduces_the_fill() -> None:
    # 100 mcg/day at 2000 mcg/mL = 0.05 mL/day: 18 mL last 360 days, past the 180-day limit.
    pump = make_pump(Continuous(100.0), concentration=2000.0)
    p = plan(pump)
    assert p.days_to_low_reservoir_alarm == pytest.approx(360.0)
    assert p.stability_limit_date == date(2026, 7, 4)  # Sat
    assert p.refill_by_date == date(2026, 7, 3)  # Fri
    assert "stability_limit" in rules(p)
    # fill = 2 mL alarm + 0.05 mL/day x (180 + 5) days = 11.25 -> 12 mL (1 mL step)
    assert p.fill_limited_by_stability
    assert p.fill_volume_ml == 12.0
    assert p.next_low_reservoir_alarm_date is not None
    assert p.next_low_reservoir_alarm_date - timedelta(days=5) >= p.refill_by_date + timedelta(
        days=180
    )


def test_stability_counts_from_the_last_fill_not_from_now() -> None:
    pump = make_pump(Continuous(100.0), concentration=2000.0)
    p = plan(pump, last_fill_at=MONDAY - timedelta(days=100))
    assert p.stability_limit_date == date(2026, 1, 5) + timedelta(days=80)
    assert p.refill_by_date <= p.stability_limit_date


def test_a_full_reservoir_is_filled_when_it_does_not_outlast_stability() -> None:
    p = plan(make_pump())
    assert p.fill_volume_ml == 40.0
    assert not p.fill_limited_by_stability
    assert "fill_full" in rules(p)


def test_a_date_already_past_is_overdue() -> None:
    pump = make_pump(fill_ml=2.0)  # at the alarm volume already
    p = plan(pump)
    assert p.days_to_low_reservoir_alarm == 0.0
    assert p.overdue
    assert p.refill_by_at == MONDAY  # the visit is now
    assert "overdue" in rules(p)


def test_a_stopped_pump_has_no_alarm_date_and_follows_stability() -> None:
    pump = make_pump(Stopped())
    p = plan(pump)
    assert p.days_to_low_reservoir_alarm is None
    assert p.low_reservoir_alarm_date is None
    assert p.refill_by_date == date(2026, 7, 3)
    assert "pump_stopped" in rules(p)
    assert p.fill_volume_ml == 40.0  # nothing is used: the fill is not cut to the alarm volume
    assert "no_delivery" in rules(p)


def test_dates_across_a_dst_change_keep_elapsed_time() -> None:
    london = ZoneInfo("Europe/London")
    now = datetime(2026, 3, 20, 9, 0, tzinfo=london)  # GMT; BST starts 29 March
    p = plan(make_pump(), now=now)
    assert p.low_reservoir_alarm_at is not None
    elapsed = p.low_reservoir_alarm_at.astimezone(UTC) - now.astimezone(UTC)
    elapsed_h = elapsed.total_seconds() / 3600.0
    assert elapsed_h == pytest.approx(18.0 / 0.96 * 24.0)
    assert p.low_reservoir_alarm_at.utcoffset() == timedelta(hours=1)
    # 09:00 GMT + 450 h = 8 April 03:00 UTC = 04:00 BST
    assert p.low_reservoir_alarm_at.hour == 4


def test_residual_at_uses_elapsed_time_across_dst() -> None:
    london = ZoneInfo("Europe/London")
    now = datetime(2026, 3, 28, 12, 0, tzinfo=london)
    visit = datetime(2026, 3, 29, 12, 0, tzinfo=london)  # 23 h later (clocks go forward)
    assert residual_at(make_pump(), now, visit) == pytest.approx(20.0 - 0.96 * 23.0 / 24.0)


def test_naive_and_aware_date_times_are_not_mixed() -> None:
    london = ZoneInfo("Europe/London")
    with pytest.raises(InvalidValue):
        plan(make_pump(), now=datetime(2026, 3, 20, 9, tzinfo=london), last_fill_at=MONDAY)


def test_refill_by_is_never_after_the_earliest_day_the_pump_could_be_dry() -> None:
    # 100 mcg/day at 500 mcg/mL: 0.2 mL/day; 40 mL reach 2 mL in 190 days, stability says
    # 180 days; at +14.5 % (the rated band) 40 mL last 40 / (0.2 x 1.145) = 174.7 days.
    pump = make_pump(Continuous(100.0), fill_ml=40.0)
    p = plan(pump)
    assert p.earliest_dry_at is not None
    assert p.earliest_dry_at == MONDAY + timedelta(days=40.0 / (0.2 * 1.145))
    assert p.refill_by_at < p.earliest_dry_at
    assert p.refill_by_date < MONDAY.date() + timedelta(days=180)
    assert "earliest_dry" in rules(p)
    assert "dry_before_refill" not in rules(p)
    # when the alarm minus the margin comes first, that rule decides
    assert "earliest_dry" not in rules(plan(make_pump()))


# ----------------------------------------------------- residual and bridge


def test_residual_at_a_visit() -> None:
    pump = make_pump()
    assert residual_at(pump, MONDAY, MONDAY + timedelta(days=10)) == pytest.approx(20.0 - 9.6)
    with pytest.raises(InvalidValue, match="visit date"):
        residual_at(pump, MONDAY, MONDAY - timedelta(hours=1))


def test_concentration_change_plans_a_bridge_bolus_keeping_the_dose() -> None:
    pump = make_pump()
    p = plan(pump, new_concentration_mcg_per_ml=2000.0)
    b = p.bridge
    assert b is not None
    assert b.volume_ml == pytest.approx(pump.dead_space_ml)
    # old drug leaves the dead space at the present daily dose
    assert b.rate_ml_per_h * 24.0 * b.old_concentration_mcg_per_ml == pytest.approx(480.0)
    assert b.duration_h == pytest.approx(pump.dead_space_ml / (480.0 / 24.0 / 500.0))
    assert b.rate_after_ml_per_day == pytest.approx(480.0 / 2000.0)
    assert p.fill_concentration_mcg_per_ml == 2000.0
    assert "bridge_bolus" in rules(p)
    assert plan(pump).bridge is None


def test_a_concentration_the_pump_cannot_run_the_dose_at_is_refused() -> None:
    # 480 mcg/day at 50000 mcg/mL = 0.0096 mL/day: below the pump's minimum rate.
    with pytest.raises(DoseOutOfRange):
        plan(make_pump(), new_concentration_mcg_per_ml=50000.0)


def test_constant_flow_pump_concentration_change_changes_the_dose() -> None:
    pump = make_pump(preset="codman_3000_30", fill_ml=20.0)
    p = plan(pump, new_concentration_mcg_per_ml=1000.0)
    assert p.bridge is None
    assert "constant_flow_concentration" in rules(p)
    assert "no_alarms" in rules(p)
    assert p.days_to_low_reservoir_alarm is not None


# ------------------------------------------------------------ policy data


def test_policy_file_parses_with_provenance() -> None:
    assert POLICY.working_weekdays == (0, 1, 2, 3, 4)
    assert POLICY.margin_days.value == 5
    assert POLICY.travel_margin_days.value == 7
    assert POLICY.margin_days.source


def test_bad_working_days_are_refused() -> None:
    table = load_data_table("refill_planning")
    table["working_days"]["weekdays"]["value"] = ["mon", "funday"]
    with pytest.raises(InvalidValue, match="weekdays"):
        parse_refill_policy(table)
    with pytest.raises(InvalidValue):
        ClinicCalendar(frozenset())


# --------------------------------------------------------------- property


@given(
    dose=st.floats(min_value=20.0, max_value=1500.0),
    conc=st.sampled_from([500.0, 1000.0, 2000.0]),
    fill_ml=st.floats(min_value=0.5, max_value=40.0),
    start_day=st.integers(min_value=0, max_value=400),
    start_hour=st.integers(min_value=0, max_value=23),
    filled_days_ago=st.integers(min_value=0, max_value=200),
    margin=st.integers(min_value=0, max_value=14),
    holidays=st.lists(st.integers(min_value=-30, max_value=400), max_size=12),
)
def test_refill_by_never_after_alarm_minus_margin_nor_stability(
    dose: float,
    conc: float,
    fill_ml: float,
    start_day: int,
    start_hour: int,
    filled_days_ago: int,
    margin: int,
    holidays: list[int],
) -> None:
    preset = PRESETS["synchromed_ii_40"]
    if not preset.min_rate_ml_per_day <= dose / conc <= preset.max_rate_ml_per_day:
        return
    pump = make_pump(Continuous(dose), concentration=conc, fill_ml=fill_ml)
    now = datetime(2026, 1, 1) + timedelta(days=start_day, hours=start_hour)
    hol = [now.date() + timedelta(days=d) for d in holidays]
    p = plan(
        pump,
        now=now,
        last_fill_at=now - timedelta(days=filled_days_ago),
        margin_days=margin,
        holidays=hol,
    )
    calendar = ClinicCalendar(frozenset(POLICY.working_weekdays), frozenset(hol))
    assert calendar.is_working_day(p.refill_by_date)
    assert p.refill_by_date <= p.stability_limit_date
    assert p.stability_limit_date == (now - timedelta(days=filled_days_ago)).date() + timedelta(
        days=180
    )
    assert p.low_reservoir_alarm_date is not None
    assert p.refill_by_date <= p.low_reservoir_alarm_date - timedelta(days=margin)
    assert p.overdue == (p.refill_by_date < now.date())
    assert 0.0 < p.fill_volume_ml <= 40.0
    assert p.residual_at_refill_min_ml <= p.residual_at_refill_ml <= pump.reservoir_calculated_ml
