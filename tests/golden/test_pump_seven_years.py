"""Golden: a 40 mL pump on a flex program, refilled every 90 days for 7 years.

Computed event by event through the pump-run service. The battery's elective
replacement indicator (ERI) and end of service (EOS) alarms must sound exactly
when the battery model predicts them at implant, EOS = ERI + 90 days, and the
drug balance must close. Key results are pinned so that any change of
behaviour shows as a visible diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from itb.bootstrap import catalog, load_pump_spec
from itb.domain.pump import Bolus, ProgrammingSession, Pump
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.services.pump_plan import to_prescription
from itb.services.pump_run import PumpRunResult, run_pump
from itb.services.pump_spec import FlexRx, PumpSpec
from itb.services.wall_clock import WallClock

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pump" / "seven_years_flex.toml"
SECONDS = 1.0 / 3600.0
"""Alarm times must agree to well within a second (float rounding of long sums only)."""


@pytest.fixture(scope="module")
def spec() -> PumpSpec:
    return load_pump_spec(SPEC)


@pytest.fixture(scope="module")
def result(spec: PumpSpec) -> PumpRunResult:
    return run_pump(spec, catalog(), days=None)


def _predicted_at_start(spec: PumpSpec) -> tuple[float, float]:
    """Build the same pump with the domain API alone and ask its battery model."""
    preset = catalog().presets[spec.pump.preset]
    catheter = catalog().catheter(spec.catheter.family, spec.catheter.implanted_length_cm)
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    pump = Pump(preset, catheter, pump_clock_offset_h=clock.pump_clock_offset_h(0.0))
    pump.fill(0.0, spec.fill.volume_ml, spec.fill.concentration_mcg_per_ml)
    assert spec.prescription is not None
    assert spec.priming_bolus is not None
    session = ProgrammingSession(pump, 0.0)
    session.stage_prescription(
        to_prescription(spec.prescription, spec.fill.concentration_mcg_per_ml), "start"
    )
    session.stage_bolus(Bolus.priming(pump.dead_space_ml, spec.priming_bolus.duration_h), "prime")
    session.commit(0.0)
    predicted = pump.predicted_eri_eos_t_h()
    assert predicted is not None
    return predicted


def _raised(result: PumpRunResult, kind: str) -> list[float]:
    return [a.t_h for a in result.alarms if a.kind == kind and a.action == "raised"]


def test_the_scenario_is_what_it_says(spec: PumpSpec, result: PumpRunResult) -> None:
    assert spec.pump.preset == "synchromed_ii_40"
    assert isinstance(spec.prescription, FlexRx)
    assert result.days == 2557
    assert result.t_end_h >= 7 * DAYS_PER_YEAR * HOURS_PER_DAY - HOURS_PER_DAY
    gaps = [b.t_h - a.t_h for a, b in zip(result.refills, result.refills[1:], strict=False)]
    assert len(result.refills) == 28
    assert all(g == pytest.approx(90 * HOURS_PER_DAY) for g in gaps)
    assert result.refills[0].t_h == pytest.approx(90 * HOURS_PER_DAY)


def test_eri_and_eos_sound_when_the_battery_model_predicts(
    spec: PumpSpec, result: PumpRunResult
) -> None:
    eri_pred, eos_pred = _predicted_at_start(spec)
    (eri,) = _raised(result, "elective_replacement_indicator")
    (eos,) = _raised(result, "end_of_service")
    assert eri == pytest.approx(eri_pred, abs=SECONDS)
    assert eos == pytest.approx(eos_pred, abs=SECONDS)
    assert result.battery.predicted_eri_t_h == pytest.approx(eri_pred, abs=SECONDS)
    assert result.battery.eri_t_h == pytest.approx(eri, abs=SECONDS)
    assert eos - eri == pytest.approx(90 * HOURS_PER_DAY, abs=1e-9)
    assert result.battery.eri_time == result.battery.predicted_eri_time
    assert result.battery.eos_time == result.battery.predicted_eos_time


def test_eri_agrees_with_the_battery_closed_form(spec: PumpSpec, result: PumpRunResult) -> None:
    """Drain per day = d0 + d1 * mL/day: ERI when the priming volume plus the flex
    program's mean volume have used the capacity (within the flex cycle's phase)."""
    battery = catalog().presets[spec.pump.preset].battery
    assert battery is not None
    assert isinstance(spec.prescription, FlexRx)
    conc = spec.fill.concentration_mcg_per_ml
    steps = spec.prescription.every_day
    assert steps is not None
    ends = [s.start for s in steps[1:]] + [24.0]
    q = sum(s.rate_mcg_per_h * (e - s.start) for s, e in zip(steps, ends, strict=True)) / conc
    priming_ml = 0.2 + spec.catheter.implanted_length_cm * 0.0026
    days = (1.0 - battery.drain_per_ml * priming_ml) / (
        battery.drain_base_per_day + battery.drain_per_ml * q
    )
    assert result.battery.eri_t_h == pytest.approx(days * HOURS_PER_DAY, abs=1.0)


def test_after_end_of_service_nothing_is_delivered(result: PumpRunResult) -> None:
    eos = result.battery.eos_t_h
    assert eos is not None
    assert all(s.t1_h <= eos + 1e-9 for s in result.delivery)
    assert not result.final["running"]
    assert result.final["stop_reason"] == "end of service (battery)"
    assert result.no_delivery[-1].start_t_h == pytest.approx(eos)
    assert [a.critical for a in result.alarms if a.action == "raised"] == [False, True]


def test_the_drug_balance_closes(result: PumpRunResult) -> None:
    d = result.drug_balance
    drug_in = d.filled_mcg + d.pocket_mcg + d.access_port_mcg
    out = (
        d.delivered_csf_mcg
        + d.lost_tissue_mcg
        + d.pocket_mcg
        + d.withdrawn_mcg
        + d.in_reservoir_mcg
        + d.in_dead_space_mcg
    )
    assert drug_in - out == pytest.approx(0.0, abs=1e-6)
    assert d.error_mcg == pytest.approx(0.0, abs=1e-6)
    assert sum(result.daily_delivered_mcg) == pytest.approx(result.delivered_mcg, rel=1e-12)
    assert sum(s.amount_mcg for s in result.delivery) == pytest.approx(result.delivered_mcg)
    assert all(r.verdict == "within tolerance" for r in result.refills)


def test_pinned_key_results(result: PumpRunResult) -> None:
    """Golden values: a change here is a change of behaviour, to be reviewed."""
    assert result.battery.eri_time == "2031-10-05T14:35:43+01:00"
    assert result.battery.eos_time == "2032-01-03T13:35:43+00:00"
    # a nearly empty reservoir under-delivers before each refill (pumps.toml low_residual_*)
    assert result.delivered_mcg == pytest.approx(451_509.39, abs=0.01)
    assert result.drug_balance.filled_mcg == pytest.approx(29 * 40 * 500)
    assert result.reservoir_calculated_ml == pytest.approx(40.0)
    assert result.reservoir_actual_ml == pytest.approx(40.0)
