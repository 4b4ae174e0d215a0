"""Exact delivery: rates, accuracy, dead-space transit, boluses, dry reservoir."""

import pytest

from itb.domain.delivery import total_mcg
from itb.domain.errors import (
    ConcentrationMismatch,
    DoseOutOfRange,
    InvalidValue,
    NotAllowedForPump,
    ReservoirOverfill,
    TimeWentBackwards,
)
from itb.domain.pump import (
    AlarmKind,
    Bolus,
    Continuous,
    DiscrepancyTolerance,
    Flex,
    FlexStep,
    Prescription,
    ProgrammingSession,
    Pump,
    perform_refill,
)


def test_continuous_dose_reaches_the_csf_exactly(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    segs = pump.advance_to(72.0)
    assert total_mcg(segs) == pytest.approx(3 * 480.0, rel=1e-12)
    assert pump.ledger.delivered_csf_mcg == pytest.approx(3 * 480.0, rel=1e-12)
    assert pump.reservoir_actual_ml == pytest.approx(20.0 - 3 * 480.0 / 500.0)
    assert pump.balance_error_mcg() == pytest.approx(0.0, abs=1e-9)


def test_accuracy_factor_changes_true_but_not_calculated_delivery(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, accuracy_factor=1.10)
    pump.advance_to(48.0)
    assert pump.ledger.delivered_csf_mcg == pytest.approx(2 * 480.0 * 1.10)
    assert pump.reservoir_calculated_ml == pytest.approx(20.0 - 2 * 480.0 / 500.0)
    assert pump.reservoir_actual_ml == pytest.approx(20.0 - 2 * 480.0 * 1.10 / 500.0)


def test_accuracy_factor_outside_the_rated_band_is_refused(presets, catheter) -> None:
    with pytest.raises(InvalidValue, match="accuracy_factor"):
        Pump(presets["synchromed_ii_20"], catheter, accuracy_factor=1.15)
    Pump(presets["synchromed_ii_20"], catheter, accuracy_factor=1.145)


def test_time_never_runs_backwards(make_pump) -> None:
    pump = make_pump()
    pump.advance_to(10.0)
    with pytest.raises(TimeWentBackwards):
        pump.advance_to(9.0)


def test_concentration_change_reaches_the_tip_after_the_dead_space_transit(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=240.0, concentration=500.0)  # 0.48 mL/day
    pump.advance_to(24.0)
    pump.withdraw_residual(24.0)
    pump.fill(24.0, 20.0, 2000.0)
    session = ProgrammingSession(pump, 24.0)
    session.stage_prescription(Prescription(Continuous(240.0), 2000.0), "concentrate")
    session.commit(24.0)
    segs = pump.advance_to(24.0 + 24 * 10)
    q_ml_per_h = 240.0 / 2000.0 / 24.0
    transit_h = pump.dead_space_ml / q_ml_per_h
    # While the old drug is pushed out at the new (4x slower) rate, the patient gets a quarter dose
    first = segs[0]
    assert first.rate_mcg_per_h == pytest.approx(q_ml_per_h * 500.0)
    assert first.t1_h == pytest.approx(24.0 + transit_h)
    assert segs[-1].rate_mcg_per_h == pytest.approx(10.0)


def test_bridge_bolus_keeps_the_daily_dose_continuous(make_pump, tolerance) -> None:
    pump = make_pump(dose_mcg_per_day=240.0, concentration=500.0)
    pump.advance_to(24.0)
    report = perform_refill(
        pump,
        24.0,
        fill_volume_ml=20.0,
        concentration_mcg_per_ml=2000.0,
        tolerance=tolerance,
        new_prescription=Prescription(Continuous(240.0), 2000.0),
        bridge_bolus=True,
    )
    assert [c.field for c in report.changes] == ["prescription", "bolus"]
    segs = pump.advance_to(24.0 + 24 * 5)
    # the rate into the CSF stays 10 mcg/h throughout: old drug during the bridge, then new
    assert {round(s.rate_mcg_per_h, 9) for s in segs} == {10.0}
    assert total_mcg(segs) == pytest.approx(5 * 240.0, rel=1e-9)


def test_over_infusing_pump_runs_dry_before_its_low_reservoir_alarm(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=500.0, fill_ml=20.0, accuracy_factor=1.0)
    from itb.domain.pump import Fault, FaultKind

    pump.apply_fault(0.0, Fault(FaultKind.OVERINFUSION_DRIFT, factor=1.30))
    pump.advance_to(24 * 40.0)
    dry_h = 20.0 / (1.0 * 1.30 / 24.0)
    low_h = (20.0 - 2.0) / (1.0 / 24.0)
    assert dry_h < low_h
    raised = {r.kind: r.t_h for r in pump.alarm_log if r.action == "raised"}
    assert raised[AlarmKind.LOW_RESERVOIR] == pytest.approx(low_h)
    assert pump.reservoir_actual_ml == 0.0
    assert pump.ledger.delivered_csf_mcg == pytest.approx(
        20.0 * 500.0 + pump.dead_space_ml * 500.0 - pump.dead_space.mass_mcg
    )
    # nothing reached the CSF after the reservoir ran dry
    assert pump.ledger.pumped_ml == pytest.approx(20.0)


def test_priming_bolus_fills_an_empty_catheter(presets, catheter) -> None:
    pump = Pump(presets["synchromed_ii_20"], catheter)
    pump.fill(0.0, 20.0, 500.0)
    session = ProgrammingSession(pump, 0.0)
    session.stage_prescription(Prescription(Continuous(480.0), 500.0), "start")
    session.stage_bolus(Bolus.priming(pump.dead_space_ml, 0.5), "prime")
    session.commit(0.0)
    pump.advance_to(0.5)
    assert pump.dead_space.tip_concentration_mcg_per_ml() == 500.0
    assert pump.ledger.delivered_csf_mcg == 0.0  # only saline left the tip while priming
    segs = pump.advance_to(24.5)
    assert total_mcg(segs) == pytest.approx(480.0)


def test_bolus_faster_than_the_pump_allows_is_refused(make_pump) -> None:
    pump = make_pump()
    with pytest.raises(DoseOutOfRange, match=r"duration_h = .*fastest bolus is 1 mL/h"):
        pump.validate_bolus(Bolus.single(500.0, 0.1, 500.0))  # 10 mL/h


def test_rate_outside_the_pump_range_is_refused_with_the_allowed_range(make_pump) -> None:
    pump = make_pump(concentration=500.0)
    session = ProgrammingSession(pump, 0.0)
    with pytest.raises(
        DoseOutOfRange, match=r"dose_mcg_per_day = 10\.0 .*24 to 1\.2e\+04 mcg/day .*0\.048 to 24"
    ):
        session.stage_prescription(Prescription(Continuous(10.0), 500.0), "too low")


def test_program_at_a_different_concentration_than_the_pump_holds_is_refused(make_pump) -> None:
    pump = make_pump(concentration=500.0)
    session = ProgrammingSession(pump, 0.0)
    with pytest.raises(ConcentrationMismatch, match="allowed: 500"):
        session.stage_prescription(Prescription(Continuous(480.0), 2000.0), "typo")


def test_too_many_flex_steps_for_the_pump_are_refused(make_pump) -> None:
    pump = make_pump(preset="prometra_ii_20")
    steps = tuple(FlexStep(float(h), 10.0) for h in range(0, 24, 4))  # 6 steps > 4
    with pytest.raises(DoseOutOfRange, match="flex steps per day"):
        pump.validate_prescription(Prescription(Flex.every_day(steps), 500.0))


def test_overfill_is_refused_and_nothing_changes(make_pump) -> None:
    pump = make_pump(fill_ml=20.0)
    before = (pump.reservoir_actual_ml, pump.reservoir_calculated_ml, pump.ledger.filled_mcg)
    with pytest.raises(ReservoirOverfill, match=r"volume_ml = 25\.0 .*allowed: <= 20"):
        pump.fill(0.0, 25.0, 500.0)
    assert (
        pump.reservoir_actual_ml,
        pump.reservoir_calculated_ml,
        pump.ledger.filled_mcg,
    ) == before


def test_constant_flow_pump_cannot_be_programmed_and_follows_temperature(presets, catheter) -> None:
    pump = Pump(presets["codman_3000_30"], catheter)
    pump.fill(0.0, 30.0, 500.0)
    with pytest.raises(NotAllowedForPump, match="fixed flow"):
        pump.validate_prescription(Prescription(Continuous(480.0), 500.0))
    pump.advance_to(24.0)
    base = pump.ledger.pumped_ml
    pump.set_environment(24.0, body_temperature_degc=39.0)
    pump.advance_to(48.0)
    factor = 1.0 + presets["codman_3000_30"].flow_change_pct_per_degc / 100.0 * 2.0
    assert pump.ledger.pumped_ml - base == pytest.approx(base * factor)


def test_valve_pump_delivers_whole_strokes(make_pump) -> None:
    pump = make_pump(preset="prometra_ii_20", dose_mcg_per_day=100.0, concentration=500.0)
    stroke = pump.preset.stroke_ml
    pump.advance_to(1.0)  # 0.2/24 mL in an hour = 3.33 strokes
    strokes = pump.ledger.pumped_ml / stroke
    assert strokes == pytest.approx(round(strokes), abs=1e-9)
    assert round(strokes) == 3
    pump.advance_to(24.0)
    assert pump.ledger.pumped_ml == pytest.approx(80 * stroke)


def test_refill_reports_discrepancy_and_next_alarm(make_pump, tolerance) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, fill_ml=20.0, accuracy_factor=1.0)
    from itb.domain.pump import Fault, FaultKind

    pump.apply_fault(0.0, Fault(FaultKind.LEAK, fraction=0.0))
    pump.advance_to(24 * 10.0)
    report = perform_refill(
        pump, 24 * 10.0, fill_volume_ml=20.0, concentration_mcg_per_ml=500.0, tolerance=tolerance
    )
    assert report.withdrawal.expected_ml == pytest.approx(20.0 - 10 * 480 / 500)
    assert report.discrepancy.verdict.value == "within tolerance"
    # new low-reservoir alarm when 18 mL at 0.96 mL/day have gone
    assert report.low_reservoir_alarm_t_h == pytest.approx(24 * 10.0 + 18.0 / (0.96 / 24.0))


def test_refill_discrepancy_flags_over_infusion(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, fill_ml=20.0, accuracy_factor=1.0)
    from itb.domain.pump import Fault, FaultKind

    pump.apply_fault(0.0, Fault(FaultKind.OVERINFUSION_DRIFT, factor=1.25))
    pump.advance_to(24 * 10.0)
    tol = DiscrepancyTolerance(syringe_reading_ml=0.5)
    report = perform_refill(
        pump, 24 * 10.0, fill_volume_ml=20.0, concentration_mcg_per_ml=500.0, tolerance=tol
    )
    assert report.discrepancy.verdict.value == "less withdrawn than expected"
    assert report.discrepancy.implied_rate_error_pct == pytest.approx(25.0)
    # less withdrawn: an over-infusion, an earlier pocket fill or a leak: both watches
    assert report.discrepancy.watch == ("overdose", "withdrawal")
    assert any("pocket fill" in c for c in report.discrepancy.causes)


def test_a_bolus_paused_by_mri_delivers_its_whole_volume_after(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=240.0, concentration=500.0)
    pump.advance_to(10.0)
    session = ProgrammingSession(pump, 10.0)
    session.stage_bolus(Bolus.single(200.0, 2.0, 500.0), "extra relief")
    session.commit(10.0)
    pump.advance_to(10.5)
    pump.begin_mri(10.5)
    pump.advance_to(11.5)
    pump.end_mri(11.5)
    pump.advance_to(14.0)
    # 0.4 mL bolus: 0.1 mL before the scan, 0.3 mL after it; then the basal resumes
    bolus_end = next(e for e in pump.log if e.kind == "bolus_end")
    assert bolus_end.t_h == pytest.approx(13.0)
    expected_ml = 0.4 + (14.0 - 13.0) * 240.0 / 500.0 / 24.0 + 10.0 * 240.0 / 500.0 / 24.0
    assert pump.ledger.commanded_ml == pytest.approx(expected_ml)


def test_a_reservoir_found_empty_is_never_within_tolerance(tolerance) -> None:
    from itb.domain.pump import Verdict, judge_discrepancy

    found = judge_discrepancy(
        1.66, 0.0, tolerance, programmed_since_fill_ml=18.3, accuracy_band_pct=14.5
    )
    assert found.verdict is Verdict.FOUND_EMPTY
    assert "withdrawal" in found.advice
    assert found.watch == ("withdrawal",)
    # empty is empty: even a residual within the syringe's reading hides how long the pump
    # has been dry (it may have run without drug for weeks)
    small = judge_discrepancy(0.3, 0.0, tolerance, accuracy_band_pct=14.5)
    assert small.verdict is Verdict.FOUND_EMPTY
    # the pump calculated it empty 60 days ago: still a finding, and it says for how long
    late = judge_discrepancy(
        0.0, 0.0, tolerance, accuracy_band_pct=14.5, calculated_empty_for_h=60 * 24.0
    )
    assert late.verdict is Verdict.FOUND_EMPTY
    assert "60.0 days" in late.advice
    # nothing expected and nothing there, and the pump never read empty: as expected
    assert (
        judge_discrepancy(0.0, 0.0, tolerance, accuracy_band_pct=14.5).verdict
        is Verdict.WITHIN_TOLERANCE
    )


def test_more_withdrawn_than_expected_points_to_under_delivery_not_pocket_fill(tolerance) -> None:
    from itb.domain.pump import Verdict, judge_discrepancy

    more = judge_discrepancy(
        2.0, 5.0, tolerance, programmed_since_fill_ml=10.0, accuracy_band_pct=14.5
    )
    assert more.verdict is Verdict.MORE_THAN_EXPECTED
    assert more.watch == ("withdrawal",)
    assert not any("pocket" in c for c in more.causes)
    assert any("occlusion" in c for c in more.causes)


def test_a_nearly_empty_reservoir_under_delivers_below_its_low_residual_volume(make_pump) -> None:
    pump = make_pump("synchromed_ii_20", dose_mcg_per_day=480.0, fill_ml=10.0)
    v, f = pump.preset.low_residual_volume_ml, pump.preset.low_residual_flow_fraction
    assert v > 0.0
    assert 0.0 < f < 1.0
    q = 480.0 / 500.0 / 24.0  # mL/h
    t_low = (10.0 - v) / q
    pump.advance_to(t_low)
    assert pump.reservoir_actual_ml == pytest.approx(v, abs=1e-9)
    assert pump.ledger.delivered_csf_mcg == pytest.approx((10.0 - v) * 500.0, rel=1e-9)
    pump.advance_to(t_low + 24.0)
    # a day below the low-residual volume: only the fraction reaches the CSF ...
    assert pump.ledger.delivered_csf_mcg == pytest.approx((10.0 - v) * 500.0 + 480.0 * f, rel=1e-9)
    assert pump.reservoir_actual_ml == pytest.approx(v - 24.0 * q * f, rel=1e-9)
    # ... while the calculated volume, which the alarms follow, goes on as programmed
    assert pump.reservoir_calculated_ml == pytest.approx(10.0 - (t_low + 24.0) * q, rel=1e-9)
    pump.advance_to(t_low + v / (q * f) + 1.0)
    assert pump.ledger.pumped_ml == pytest.approx(10.0, rel=1e-12)
    assert pump.reservoir_actual_ml == 0.0
    assert pump.balance_error_mcg() == pytest.approx(0.0, abs=1e-9)


def test_the_low_residual_effect_is_a_preset_number_checked_like_the_others(presets) -> None:
    from itb.adapters.datafiles import load_data_table
    from itb.domain.pump import parse_presets

    table = {k: dict(v) for k, v in load_data_table("pumps").items()}
    entry = dict(table["synchromed_ii_20"]["low_residual_flow_fraction"])
    for bad in (0.0, 1.5):
        table["synchromed_ii_20"]["low_residual_flow_fraction"] = {**entry, "value": bad}
        with pytest.raises(InvalidValue) as err:
            parse_presets(table)
        assert err.value.field == "pumps.synchromed_ii_20.low_residual_flow_fraction"
    # a preset with no such effect delivers as programmed down to empty
    codman = presets["codman_3000_30"]
    assert codman.low_residual_volume_ml == 0.0
    assert codman.low_residual_flow_fraction == 1.0
