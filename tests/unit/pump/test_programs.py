"""Infusion programs: rates, step boundaries and daily doses."""

import math

import pytest

from itb.domain.errors import InvalidValue
from itb.domain.pump import Continuous, Flex, FlexStep, PeriodicBolus, Stopped

DAY_PROGRAM = (FlexStep(0.0, 20.0), FlexStep(7.0, 10.0), FlexStep(21.0, 25.0))


def test_continuous_rate_is_daily_dose_over_24_hours() -> None:
    assert Continuous(480.0).rate_mcg_per_h(123.4) == pytest.approx(20.0)
    assert Continuous(480.0).next_change_h(5.0) == math.inf


def test_stopped_delivers_nothing() -> None:
    assert Stopped().rate_mcg_per_h(0.0) == 0.0
    assert Stopped().daily_dose_mcg() == 0.0


def test_flex_rate_follows_steps_and_wraps_each_day() -> None:
    flex = Flex.every_day(DAY_PROGRAM)
    assert flex.rate_mcg_per_h(6.999) == 20.0
    assert flex.rate_mcg_per_h(7.0) == 10.0
    assert flex.rate_mcg_per_h(21.5) == 25.0
    assert flex.rate_mcg_per_h(24.0 + 3.0) == 20.0  # Tuesday 03:00
    assert flex.rate_mcg_per_h(7 * 24.0 + 8.0) == 10.0  # next Monday


def test_flex_next_change_is_the_next_boundary_including_midnight() -> None:
    flex = Flex.every_day(DAY_PROGRAM)
    assert flex.next_change_h(0.0) == pytest.approx(7.0)
    assert flex.next_change_h(7.0) == pytest.approx(21.0)
    assert flex.next_change_h(22.0) == pytest.approx(24.0)
    assert flex.next_change_h(6 * 24.0 + 22.0) == pytest.approx(7 * 24.0)


def test_flex_daily_dose_integrates_the_steps() -> None:
    flex = Flex.every_day(DAY_PROGRAM)
    assert flex.daily_dose_mcg() == pytest.approx(20 * 7 + 10 * 14 + 25 * 3)


def test_flex_per_weekday_programs_differ() -> None:
    weekday = (FlexStep(0.0, 10.0),)
    weekend = (FlexStep(0.0, 20.0),)
    flex = Flex(days=(weekday,) * 5 + (weekend,) * 2)
    assert flex.rate_mcg_per_h(2 * 24.0 + 1.0) == 10.0
    assert flex.rate_mcg_per_h(5 * 24.0 + 1.0) == 20.0
    assert flex.daily_dose_mcg(5) == pytest.approx(480.0)
    assert flex.daily_dose_mcg() == pytest.approx((5 * 240 + 2 * 480) / 7)


def test_flex_rejects_a_day_not_starting_at_midnight_or_unsorted_steps() -> None:
    with pytest.raises(InvalidValue, match="first start_h"):
        Flex.every_day((FlexStep(1.0, 10.0),))
    with pytest.raises(InvalidValue, match="strictly increasing"):
        Flex.every_day((FlexStep(0.0, 1.0), FlexStep(5.0, 1.0), FlexStep(5.0, 2.0)))
    with pytest.raises(InvalidValue, match="start_h"):
        FlexStep(24.0, 1.0)


def test_periodic_bolus_adds_to_basal_during_the_bolus() -> None:
    prog = PeriodicBolus(
        basal_mcg_per_day=240.0, bolus_mcg=50.0, bolus_duration_h=0.5, interval_h=6.0
    )
    assert prog.rate_mcg_per_h(0.25) == pytest.approx(10.0 + 100.0)
    assert prog.rate_mcg_per_h(0.5) == pytest.approx(10.0)
    assert prog.next_change_h(0.1) == pytest.approx(0.5)
    assert prog.next_change_h(1.0) == pytest.approx(6.0)
    assert prog.daily_dose_mcg() == pytest.approx(240.0 + 4 * 50.0)


def test_periodic_bolus_must_be_shorter_than_its_interval() -> None:
    with pytest.raises(InvalidValue, match="bolus_duration_h"):
        PeriodicBolus(100.0, 10.0, 6.0, 6.0)
