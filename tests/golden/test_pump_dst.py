"""Golden: flex steps follow the pump's clock, so a DST change shifts them in local time
by one hour until the clock is set again ([C17])."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from itb.bootstrap import catalog, load_pump_spec
from itb.services.pump_run import PumpRunResult, run_pump
from itb.services.wall_clock import WallClock

SPEC = Path(__file__).parent / "data" / "dst_flex_shift.toml"


@pytest.fixture(scope="module")
def result() -> PumpRunResult:
    return run_pump(load_pump_spec(SPEC), catalog(), days=None)


def _edges(result: PumpRunResult, rising: bool) -> list[datetime]:
    """Local times at which the delivery rate to the CSF steps up (or down)."""
    spec = load_pump_spec(SPEC)
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    segs = [s for s in result.delivery if s.duration_h > 1e-6]
    out = []
    for a, b in itertools.pairwise(segs):
        if abs(a.t1_h - b.t0_h) > 1e-9 or a.t0_h < 1.0:
            continue  # not touching, or the priming hour
        if (
            (b.rate_mcg_per_h > a.rate_mcg_per_h * 1.5)
            if rising
            else (b.rate_mcg_per_h < a.rate_mcg_per_h / 1.5)
        ):
            out.append(clock.local(b.t0_h))
    return out


LONDON = ZoneInfo("Europe/London")
DST_STARTS = datetime(2026, 3, 29, 2, 0, tzinfo=LONDON)  # 01:00 GMT -> 02:00 BST
CLOCK_SET = datetime(2026, 4, 2, 12, 0, tzinfo=LONDON)


def _expected_hour(edge: datetime, pump_hour: int) -> int:
    if edge < DST_STARTS:
        return pump_hour  # GMT: pump clock = wall clock
    if edge < CLOCK_SET:
        return pump_hour + 1  # BST, pump clock still on GMT
    return pump_hour  # clock set on 2 April: back in step with the wall clock


def test_the_morning_step_moves_an_hour_later_until_set_clock(result: PumpRunResult) -> None:
    ups = _edges(result, rising=True)
    assert [u.date() for u in ups] == [date(2026, 3, 24) + timedelta(days=i) for i in range(14)]
    assert sum(_expected_hour(u, 7) == 8 for u in ups) == 5  # 29 March to 2 April
    for up in ups:
        assert (up.hour, up.minute, up.second) == (_expected_hour(up, 7), 0, 0), up


def test_the_evening_step_moves_too(result: PumpRunResult) -> None:
    downs = _edges(result, rising=False)
    assert [d.date() for d in downs] == [date(2026, 3, 23) + timedelta(days=i) for i in range(14)]
    assert sum(_expected_hour(d, 21) == 22 for d in downs) == 4  # 29 March to 1 April
    for down in downs:
        assert (down.hour, down.minute) == (_expected_hour(down, 21), 0), down


def test_the_daily_dose_is_unchanged_except_on_the_changeover_days(
    result: PumpRunResult,
) -> None:
    full = 14 * 15.0 + 10 * 5.0
    days = result.daily_delivered_mcg
    # Day 5 (28-29 March, 09:00 to 10:00 BST) lasts 23 h of wall time but 24 h of run time;
    # run-time days keep their dose whatever the wall clock does.
    for i, dose in enumerate(days[1:], start=1):
        assert dose == pytest.approx(full), i
    assert result.drug_balance.error_mcg == pytest.approx(0.0, abs=1e-6)


def test_the_set_clock_event_is_logged_with_its_reason(result: PumpRunResult) -> None:
    entries = [e for e in result.events if e.kind == "program" and "pump clock" in e.detail]
    assert [e.time for e in entries] == ["2026-04-02T12:00:00+01:00"]
    assert entries[0].reason == "clock set to summer time at the clinic visit"
