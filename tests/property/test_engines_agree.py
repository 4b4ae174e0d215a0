"""Two engines, one truth: a one-patient cohort of the vector engine matches the domain path.

The reference is a plain single-patient driver written here on the domain
objects only: ``Pump`` (fill, ProgrammingSession, perform_refill, faults,
``advance_to``) -> ``DeliverySegment`` list -> ``itb.domain.patient.simulate``
(exact per constant segment), with the same clinic rules (refill policy, missed
refills, label titration through ``plan_next_step``, revisions, restarts) and
the same random draws (the patient's and its pump stream). Hypothesis draws the
patient (seed, index) and the schedule (pump, policy, doses, hazards, horizon).

Checked: CSF and effect-site concentrations and delivered amounts at every day
end to 1e-9 relative; alarm kinds and dates exactly (times to 1e-6 h); refill
dates exactly; counts of withdrawal and overdose days exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.titration import Assessment, Phase, parse_titration_rules, plan_next_step
from itb.domain.patient import PatientParameters, PatientState, observe, simulate
from itb.domain.provenance import Sourced
from itb.domain.pump import (
    CatheterSpec,
    Continuous,
    DiscrepancyTolerance,
    Fault,
    FaultKind,
    Prescription,
    ProgrammingSession,
    Pump,
    PumpPreset,
    Verdict,
    parse_catheters,
    parse_discrepancy_tolerance,
    parse_presets,
    perform_refill,
    time_calculated_volume_reaches,
)
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.cohort import CohortArrays
from itb.simulation.population import Population, draw_patient
from itb.simulation.vector_engine import (
    MAX_REFILL_ATTEMPTS,
    ArmPolicy,
    CohortData,
    PumpDraws,
    accuracy_factors,
    catheter_lengths_cm,
    draw_pump_randomness,
    fault_days,
    run_arm,
)

PATIENT = load_data_table("patient")
POPULATION = Population.from_table(PATIENT)
RULES = parse_titration_rules(load_data_table("titration"))
DATA = CohortData.from_table(load_data_table("cohort"))
PRESETS = parse_presets(load_data_table("pumps"))
ML_PER_CM = parse_catheters(load_data_table("catheters"))["prometra_catheter"][1]
TOLERANCE = parse_discrepancy_tolerance(load_data_table("refill"))
GOAL_MARGIN = 0.4
ALARM_EVENT = {
    "low_reservoir": "low_reservoir",
    "empty_reservoir": "empty_reservoir",
    "motor_stall_alarm": "motor_stall",
    "pump_stopped_over_48h": "pump_stopped_over_48h",
    "elective_replacement_indicator": "elective_replacement_indicator",
    "end_of_service": "end_of_service",
}


def _clip(dose: float, conc: float, preset: PumpPreset) -> float:
    lo = preset.min_rate_ml_per_day * conc * (1.0 + 1e-9)
    hi = preset.max_rate_ml_per_day * conc * (1.0 - 1e-9)
    return min(max(dose, lo), hi)


def domain_run(
    params: PatientParameters,
    dose0: float,
    draws: PumpDraws,
    policy: ArmPolicy,
    data: CohortData,
    horizon_days: int,
) -> dict[str, Any]:
    """The single-patient domain path under the same clinic rules and draws."""
    preset = PRESETS[policy.pump]
    tolerance: DiscrepancyTolerance = TOLERANCE
    acc = float(accuracy_factors(draws, data, preset)[0])
    length = float(catheter_lengths_cm(draws, data)[0])
    fday = fault_days(draws, data)[0]
    pump = Pump(preset, CatheterSpec("c", "catheter", length, ML_PER_CM), accuracy_factor=acc)
    cap = preset.reservoir_ml
    thr = policy.low_reservoir_alarm_ml
    conc = policy.initial_concentration_mcg_per_ml
    dose = _clip(dose0, conc, preset)
    pump.fill(0.0, cap, conc)
    pump.dead_space.replace(conc)  # primed at implant, as in the vector engine
    session = ProgrammingSession(pump, 0.0)
    session.stage_prescription(Prescription(Continuous(dose), conc), "start")
    session.stage_low_reservoir_alarm(thr, "policy")
    session.commit(0.0)
    concs = sorted(policy.concentrations_mcg_per_ml)

    def schedule(day: int) -> float:
        if policy.refill == "interval":
            nxt = float(day + policy.refill_interval_days)
        else:
            t = time_calculated_volume_reaches(pump, thr)
            nxt = (
                math.inf if t is None else math.floor(t / HOURS_PER_DAY) - policy.refill_margin_days
            )
        return min(max(nxt, day + 1.0), day + data.max_refill_interval_days.value)

    next_refill = schedule(0)
    attempt = 0
    state = PatientState()
    last_change = 0.0
    revision_day = math.inf
    restart_day = math.inf
    occluded = disconnected = False
    trace: list[tuple[float, float, float, float]] = []
    refill_days: list[int] = []
    wd_days = od_days = 0
    for day in range(horizon_days + 1):
        t0 = day * HOURS_PER_DAY
        trace.append(
            (
                state.central_mcg / params.pk.central_volume_ml,
                state.effect_site_mcg_per_ml,
                state.delivered_mcg,
                state.withdrawal_drive_mcg_per_ml,
            )
        )
        obs = None
        if day > 0:
            obs = observe(params, state)
            wd_days += obs.withdrawal_stage >= 1
            od_days += obs.overdose_stage >= 1
            if (
                (occluded or disconnected)
                and obs.withdrawal_stage >= 1
                and revision_day == math.inf
            ):
                revision_day = day + data.revision_delay_days.value
        if day == horizon_days:
            break
        if restart_day == day:
            pump.repair(t0, FaultKind.MOTOR_STALL)
            restart_day = math.inf
        if revision_day == day:
            if occluded:
                pump.repair(t0, FaultKind.OCCLUSION)
            if disconnected:
                pump.repair(t0, FaultKind.DISCONNECTION)
            occluded = disconnected = False
            revision_day = math.inf
        for j, kind in enumerate((FaultKind.OCCLUSION, FaultKind.DISCONNECTION)):
            if fday[j] == day:
                pump.apply_fault(t0, Fault(kind))
                occluded = occluded or j == 0
                disconnected = disconnected or j == 1
        if fday[2] == day:
            pump.apply_fault(t0, Fault(FaultKind.MOTOR_STALL))
            restart_day = day + data.stall_restart_days.value
        if next_refill == day:
            u = draws.missed_u[0, min(attempt, MAX_REFILL_ATTEMPTS - 1)]
            attempt += 1
            if u < data.missed_refill_probability.value:
                next_refill = day + data.missed_refill_delay_days.value
            else:
                q_cmd = pump.program_rate_ml_per_h(pump.prescription.program, conc, pump.clock_h)
                new_conc = conc
                if (
                    policy.step_up_below_days > 0
                    and (cap - thr) / (q_cmd * HOURS_PER_DAY) < policy.step_up_below_days
                ):
                    new_conc = min((c for c in concs if c > conc), default=conc)
                rx = None
                if new_conc != conc:
                    dose = _clip(dose, new_conc, preset)
                    rx = Prescription(Continuous(dose), new_conc)
                report = perform_refill(
                    pump,
                    t0,
                    fill_volume_ml=cap,
                    concentration_mcg_per_ml=new_conc,
                    tolerance=tolerance,
                    new_prescription=rx,
                )
                assert report.discrepancy.verdict in Verdict
                conc = new_conc
                refill_days.append(day)
                next_refill = schedule(day)
        if policy.titration == "label" and obs is not None and _visit(policy, day, horizon_days):
            side = obs.overdose_stage > 0
            adequate = obs.mas <= params.pd.mas_floor + GOAL_MARGIN
            step = plan_next_step(
                RULES,
                origin=params.origin,
                age_years=params.age_years,
                phase=Phase.TITRATION
                if day <= policy.inpatient_titration_days
                else Phase.MAINTENANCE,
                current_dose_mcg_per_day=dose,
                assessment=Assessment.SIDE_EFFECTS
                if side
                else Assessment.ADEQUATE
                if adequate
                else Assessment.INADEQUATE,
                hours_since_implant=t0,
                hours_since_last_change=t0 - last_change,
            )
            if step.dose_mcg_per_day != dose:
                last_change = t0
                dose = _clip(step.dose_mcg_per_day, conc, preset)
                s = ProgrammingSession(pump, t0)
                s.stage_prescription(Prescription(Continuous(dose), conc), "titration")
                s.commit(t0)
                if policy.refill == "margin" and next_refill > day:
                    next_refill = schedule(day)
        segments = pump.advance_to(t0 + HOURS_PER_DAY)
        state = simulate(params, segments, [t0 + HOURS_PER_DAY], state)[-1]
    alarms = [(a.t_h, a.kind.value) for a in pump.alarm_log if a.action == "raised"]
    return {
        "trace": np.array(trace),
        "alarms": sorted(alarms),
        "refill_days": refill_days,
        "withdrawal_days": wd_days,
        "overdose_days": od_days,
        "delivered": state.delivered_mcg,
    }


def _visit(policy: ArmPolicy, day: int, horizon: int) -> bool:
    d = policy.inpatient_titration_days
    if 1 <= day <= d:
        return True
    return day >= d + policy.visit_interval_days and (day - d) % policy.visit_interval_days == 0


def _sourced(value: float) -> Sourced:
    return Sourced(value, "test", "assumed", "test")


schedules = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "k": st.integers(0, 10**6),
        "pump": st.sampled_from(["synchromed_ii_20", "synchromed_ii_40"]),
        "refill": st.sampled_from(["interval", "margin"]),
        "interval": st.integers(10, 120),
        "margin": st.integers(0, 14),
        "threshold": st.sampled_from([1.0, 2.0, 3.5, 5.0]),
        "titration": st.sampled_from(["label", "hold"]),
        "conc": st.sampled_from([500.0, 1000.0, 2000.0]),
        "step_up": st.sampled_from([0.0, 20.0, 40.0]),
        "dose": st.floats(60.0, 6000.0),
        "horizon": st.integers(20, 420),
        "miss": st.sampled_from([0.0, 0.2, 0.5]),
        "hazard": st.sampled_from([0.0, 1.0, 4.0]),
        "visit": st.integers(7, 60),
    }
)


def _vector_and_domain(s: dict[str, Any]) -> tuple[Any, dict[str, Any], PatientParameters]:
    params = draw_patient(POPULATION, s["seed"], s["k"])
    policy = ArmPolicy(
        name="test",
        pump=s["pump"],
        refill=s["refill"],
        refill_interval_days=s["interval"],
        refill_margin_days=s["margin"],
        low_reservoir_alarm_ml=s["threshold"],
        titration=s["titration"],
        visit_interval_days=s["visit"],
        initial_concentration_mcg_per_ml=s["conc"],
        step_up_below_days=s["step_up"],
        replacement_after_eri_days=10_000,
    )
    data = replace(
        DATA,
        missed_refill_probability=_sourced(s["miss"]),
        occlusion_per_year=_sourced(s["hazard"]),
        disconnection_per_year=_sourced(s["hazard"] / 2),
        stall_per_year=_sourced(s["hazard"]),
    )
    draws = draw_pump_randomness(s["seed"], [s["k"]])
    result = run_arm(
        CohortArrays.from_patients([params]),
        np.array([params.age_years]),
        np.array([s["dose"]]),
        draws,
        policy=policy,
        preset=PRESETS[s["pump"]],
        catheter_ml_per_cm=ML_PER_CM,
        rules=RULES,
        goal_margin_mas=GOAL_MARGIN,
        data=data,
        tolerance=TOLERANCE,
        horizon_days=s["horizon"],
        record_events=True,
        trace=True,
    )
    ref = domain_run(params, s["dose"], draws, policy, data, s["horizon"])
    return result, ref, params


@settings(max_examples=30)
@given(schedules)
def test_one_patient_cohort_matches_the_domain_path(s: dict[str, Any]) -> None:
    result, ref, params = _vector_and_domain(s)
    assert result.trace_x is not None
    assert result.trace_delivered is not None
    vec = np.column_stack(
        [
            result.trace_x[:, 0, 0] / params.pk.central_volume_ml,
            result.trace_x[:, 0, 2],
            result.trace_delivered[:, 0],
            result.trace_x[:, 0, 4],
        ]
    )
    dom = ref["trace"]
    for col in range(4):
        scale = max(float(np.abs(dom[:, col]).max()), 1e-300)
        np.testing.assert_allclose(vec[:, col], dom[:, col], rtol=1e-9, atol=1e-9 * scale)
    assert result.delivered_mcg[0] == _approx(ref["delivered"])
    refill_days = [int(t // HOURS_PER_DAY) for _, t, kind in result.events if kind == "refill"]
    assert refill_days == ref["refill_days"]
    alarms = sorted((t, ALARM_EVENT[k]) for _, t, k in result.events if k in ALARM_EVENT)
    assert [k for _, k in alarms] == [k for _, k in ref["alarms"]]
    assert [math.floor(t / 24) for t, _ in alarms] == [math.floor(t / 24) for t, _ in ref["alarms"]]
    for (tv, _), (td, _) in zip(alarms, ref["alarms"], strict=True):
        assert abs(tv - td) <= 1e-6
    assert int(result.withdrawal_days[0]) == ref["withdrawal_days"]
    assert int(result.overdose_days[0]) == ref["overdose_days"]


def _approx(x: float) -> Any:
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-9)
