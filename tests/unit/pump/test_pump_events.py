"""Faults, alarms, MRI, programming sessions, patient boluses, access port, battery."""

import pytest

from itb.domain.errors import NotAllowedForPump, SessionError
from itb.domain.pump import (
    CRITICAL,
    AlarmKind,
    Continuous,
    Fault,
    FaultKind,
    Flex,
    FlexStep,
    PatientBolusSettings,
    Prescription,
    ProgrammingSession,
    StopReason,
)
from itb.domain.units import DAYS_PER_YEAR


def raised(pump) -> dict[AlarmKind, float]:
    return {r.kind: r.t_h for r in pump.alarm_log if r.action == "raised"}


def test_disconnection_sends_nothing_to_the_csf_but_empties_the_reservoir(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    pump.apply_fault(0.0, Fault(FaultKind.DISCONNECTION))
    segs = pump.advance_to(48.0)
    assert segs == []
    assert pump.ledger.lost_tissue_mcg == pytest.approx(2 * 480.0)
    assert pump.reservoir_actual_ml == pytest.approx(pump.reservoir_calculated_ml)


def test_occlusion_stops_flow_and_the_reservoir_keeps_its_drug(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, fill_ml=20.0)
    pump.apply_fault(0.0, Fault(FaultKind.OCCLUSION))
    assert pump.advance_to(48.0) == []
    assert pump.reservoir_actual_ml == 20.0
    assert pump.reservoir_calculated_ml == pytest.approx(20.0 - 2 * 480 / 500)
    pump.repair(48.0, FaultKind.OCCLUSION)
    assert pump.advance_to(72.0) != []


def test_leak_and_migration_deliver_partial_doses(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    pump.apply_fault(0.0, Fault(FaultKind.LEAK, fraction=0.25))
    pump.advance_to(24.0)
    assert pump.ledger.delivered_csf_mcg == pytest.approx(0.75 * 480.0)
    pump.repair(24.0, FaultKind.LEAK)
    pump.apply_fault(24.0, Fault(FaultKind.MIGRATION, fraction=0.5))
    pump.advance_to(48.0)
    assert pump.ledger.delivered_csf_mcg == pytest.approx(0.75 * 480.0 + 0.5 * 480.0)
    assert pump.balance_error_mcg() == pytest.approx(0.0, abs=1e-9)


def test_motor_stall_is_a_critical_alarm_cleared_by_repair(make_pump) -> None:
    pump = make_pump()
    pump.advance_to(5.0)
    pump.apply_fault(5.0, Fault(FaultKind.MOTOR_STALL))
    assert AlarmKind.MOTOR_STALL in pump.active_alarms
    assert AlarmKind.MOTOR_STALL in CRITICAL
    assert pump.advance_to(10.0) == []
    pump.repair(10.0, FaultKind.MOTOR_STALL)
    assert AlarmKind.MOTOR_STALL not in pump.active_alarms
    assert pump.alarm_log[-1].action == "cleared_cause_fixed"


def test_pump_stopped_over_48_hours_raises_a_critical_alarm(make_pump) -> None:
    pump = make_pump()
    pump.apply_fault(0.0, Fault(FaultKind.MOTOR_STALL))
    pump.advance_to(100.0)
    assert raised(pump)[AlarmKind.PUMP_STOPPED] == pytest.approx(48.0)


def test_mri_stalls_the_motor_which_resumes_after(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    pump.advance_to(10.0)
    pump.begin_mri(10.0)
    assert pump.advance_to(11.0) == []
    pump.end_mri(11.0)
    assert pump.running
    assert [e.kind for e in pump.log][-2:] == ["motor_stall", "stall_recovery"]


def test_mri_while_alarming_leaves_the_pump_stopped_until_interrogated(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, fill_ml=2.5)  # low-reservoir alarm within a day
    pump.advance_to(20.0)
    assert AlarmKind.LOW_RESERVOIR in pump.active_alarms
    pump.begin_mri(20.0)
    pump.advance_to(21.0)
    pump.end_mri(21.0)
    assert StopReason.TELEMETRY_HOLD in pump.stop_reasons
    assert pump.advance_to(30.0) == []
    pump.interrogate(30.0)
    assert pump.running
    assert pump.advance_to(31.0) != []


def test_interrogation_silences_an_alarm_but_never_ends_a_condition_that_holds(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, fill_ml=2.5)
    pump.advance_to(20.0)
    assert "low_reservoir" in pump.sounding_alarms()
    status = pump.interrogate(20.0)
    assert AlarmKind.LOW_RESERVOIR in pump.active_alarms
    assert "low_reservoir" in status.active_alarms
    assert "low_reservoir" not in status.sounding_alarms
    pump.advance_to(22.0)
    assert AlarmKind.LOW_RESERVOIR in pump.active_alarms
    assert "low_reservoir" not in pump.sounding_alarms()
    assert [r.action for r in pump.alarm_log if r.kind is AlarmKind.LOW_RESERVOIR] == [
        "raised",
        "acknowledged_by_interrogation",
    ]


def test_unfinished_session_leaves_the_pump_stopped_and_says_so(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    pump.advance_to(24.0)
    session = ProgrammingSession(pump, 24.0, clinician="A")
    session.stage_prescription(Prescription(Continuous(520.0), 500.0), "more tone control")
    rows = session.review()
    assert (rows[0].field, rows[0].reason) == ("prescription", "more tone control")
    assert "480" in rows[0].old
    assert "520" in rows[0].new
    session.begin_update(24.0)
    pump.advance_to(24.1)
    session.abandon(24.1)
    assert StopReason.UNFINISHED_SESSION in pump.stop_reasons
    assert "unfinished" in pump.status().stop_reason
    assert pump.advance_to(80.0) == []
    assert AlarmKind.PUMP_STOPPED in pump.active_alarms
    assert any("HAZARD" in e.detail for e in pump.log)
    # the old program is still the one in the pump (nothing half-applied)
    assert "480" in pump.prescription.describe()


def test_session_commit_is_atomic_and_logged_with_reasons(make_pump) -> None:
    pump = make_pump()
    session = ProgrammingSession(pump, 0.0)
    session.stage_prescription(Prescription(Continuous(600.0), 500.0), "titration step")
    session.stage_low_reservoir_alarm(3.0, "earlier warning")
    session.verify("Nurse B")
    session.commit(0.0)
    assert pump.low_reservoir_alarm_ml == 3.0
    assert pump.prescription.program.daily_dose_mcg() == 600.0
    reasons = {e.reason for e in pump.log if e.kind == "program"}
    assert "titration step; earlier warning" in reasons
    with pytest.raises(SessionError):
        session.stage_low_reservoir_alarm(2.0, "again")


def test_event_log_is_append_only(make_pump) -> None:
    pump = make_pump()
    entries = pump.log.entries
    assert isinstance(entries, tuple)
    n = len(pump.log)
    pump.interrogate(0.0)
    assert len(pump.log) == n + 1
    assert pump.log.entries[:n] == entries


def test_patient_bolus_respects_lockout_and_daily_maximum(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    session = ProgrammingSession(pump, 0.0)
    settings = PatientBolusSettings(dose_mcg=20.0, duration_h=0.25, lockout_h=3.0, max_per_day=2)
    session.stage_prescription(Prescription(Continuous(480.0), 500.0, settings), "PTM")
    session.commit(0.0)
    pump.advance_to(1.0)
    assert pump.request_patient_bolus(1.0).accepted
    pump.advance_to(2.0)
    refused = pump.request_patient_bolus(2.0)
    assert not refused.accepted
    assert "lockout" in refused.reason
    pump.advance_to(4.0)
    assert pump.request_patient_bolus(4.0).accepted
    pump.advance_to(8.0)
    out = pump.request_patient_bolus(8.0)
    assert not out.accepted
    assert "daily maximum" in out.reason
    pump.advance_to(25.5)
    assert pump.request_patient_bolus(25.5).accepted  # rolling 24 h passed


def test_patient_bolus_is_refused_where_the_pump_kind_does_not_allow_it(make_pump) -> None:
    pump = make_pump(preset="prometra_ii_20")
    settings = PatientBolusSettings(dose_mcg=20.0, duration_h=0.25, lockout_h=3.0, max_per_day=2)
    with pytest.raises(NotAllowedForPump, match="not allowed"):
        pump.validate_prescription(Prescription(Continuous(480.0), 500.0, settings))
    out = pump.request_patient_bolus(0.0)
    assert not out.accepted


def test_access_port_injection_is_guarded_and_flushes_the_catheter(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, concentration=2000.0)
    with pytest.raises(NotAllowedForPump, match="acknowledge"):
        pump.inject_access_port(0.0, 20.0, 2000.0)
    segs = pump.inject_access_port(0.0, 20.0, 2000.0, acknowledge_overdose_hazard=True)
    catheter_mcg = pump.catheter.volume_ml * 2000.0
    delivered = sum(s.amount_mcg for s in segs)
    assert delivered == pytest.approx(catheter_mcg + (20.0 - pump.catheter.volume_ml) * 2000.0)
    assert delivered > 100 * 480.0 / 24.0  # a massive overdose compared with an hour's dose
    assert pump.balance_error_mcg() == pytest.approx(0.0, abs=1e-6)


def test_pocket_fill_looks_full_to_the_pump_but_the_reservoir_stays_empty(make_pump) -> None:
    pump = make_pump(fill_ml=5.0)
    pump.withdraw_residual(0.0)
    pump.fill(0.0, 20.0, 500.0, into_pocket=True)
    assert pump.reservoir_calculated_ml == 20.0
    assert pump.reservoir_actual_ml == 0.0
    assert pump.ledger.pocket_mcg == 20.0 * 500.0
    assert "pocket_fill" in pump.status().faults


def test_battery_eri_and_eos_follow_the_prediction(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0, fill_ml=40.0)
    spec = pump.preset.battery
    assert spec is not None
    predicted = pump.predicted_eri_eos_t_h()
    assert predicted is not None
    t_eri, t_eos = predicted
    # closed form at a constant 0.96 mL/day from a fresh battery (pump started at t = 0)
    assert t_eri == pytest.approx(spec.days_to_eri(0.96) * 24.0, rel=1e-9)
    pump.apply_fault(0.0, Fault(FaultKind.OCCLUSION))  # the motor still runs: drain unchanged
    pump.advance_to(t_eos + 24.0)
    got = raised(pump)
    assert got[AlarmKind.ELECTIVE_REPLACEMENT] == pytest.approx(t_eri, rel=1e-12)
    assert got[AlarmKind.END_OF_SERVICE] == pytest.approx(t_eri + 90 * 24.0, rel=1e-12)
    assert StopReason.END_OF_SERVICE in pump.stop_reasons


def test_battery_life_is_5_to_7_years_and_never_beyond_the_hard_limit(presets) -> None:
    spec = presets["synchromed_ii_40"].battery
    assert spec is not None
    eos_years_low = (spec.days_to_eri(0.0) + spec.eri_to_eos_days) / DAYS_PER_YEAR
    eos_years_ref = (spec.days_to_eri(1.0) + spec.eri_to_eos_days) / DAYS_PER_YEAR
    eos_years_high = (spec.days_to_eri(5.0) + spec.eri_to_eos_days) / DAYS_PER_YEAR
    assert eos_years_low == pytest.approx(7.0)
    assert eos_years_ref == pytest.approx(5.0)
    assert eos_years_high < eos_years_ref < eos_years_low <= 7.0


def test_flex_steps_follow_the_pump_clock_so_a_dst_change_shifts_them(make_pump) -> None:
    pump = make_pump(dose_mcg_per_day=480.0)
    night_day = (FlexStep(0.0, 30.0), FlexStep(8.0, 10.0), FlexStep(20.0, 30.0))
    session = ProgrammingSession(pump, 0.0)
    session.stage_prescription(Prescription(Flex.every_day(night_day), 500.0), "night")
    session.stage_clock(0.0, "pump clock = local time")
    session.commit(0.0)
    segs = pump.advance_to(48.0)
    # the day step starts at 08:00 pump time: day 2 at t = 32 h
    starts = [s.t0_h for s in segs if s.rate_mcg_per_h == pytest.approx(10.0)]
    assert starts[-1] == pytest.approx(32.0)
    # local clocks spring forward one hour; the pump does not: its 08:00 is now 09:00 local
    # until the clinician re-syncs the clock (offset +1 h)
    session = ProgrammingSession(pump, 48.0)
    session.stage_clock(1.0, "re-sync after daylight-saving change")
    session.commit(48.0)
    segs = pump.advance_to(72.0)
    starts = [s.t0_h for s in segs if s.rate_mcg_per_h == pytest.approx(10.0)]
    assert starts[-1] == pytest.approx(48.0 + 7.0)  # 08:00 local = 07:00 on the run's clock


@pytest.mark.parametrize(
    ("critical", "kind"),
    [(True, AlarmKind.MEMORY_ERROR_CRITICAL), (False, AlarmKind.MEMORY_ERROR)],
)
def test_memory_error_raises_its_alarm_until_repaired(make_pump, critical, kind) -> None:
    pump = make_pump()
    pump.apply_fault(0.0, Fault(FaultKind.MEMORY_ERROR, critical=critical))
    assert kind in pump.active_alarms
    assert (kind in CRITICAL) is critical
    pump.repair(0.0, FaultKind.MEMORY_ERROR)
    assert kind not in pump.active_alarms


def test_premature_battery_depletion_brings_eri_forward(make_pump) -> None:
    normal = make_pump(fill_ml=40.0)
    weak = make_pump(fill_ml=40.0)
    weak.apply_fault(0.0, Fault(FaultKind.BATTERY_DEPLETION, factor=3.0))
    normal_pred, weak_pred = normal.predicted_eri_eos_t_h(), weak.predicted_eri_eos_t_h()
    assert normal_pred is not None
    assert weak_pred is not None
    assert weak_pred[0] < normal_pred[0] / 2.5
    weak.advance_to(weak_pred[0] + 1.0)
    assert weak.eri_t_h == pytest.approx(weak_pred[0])
