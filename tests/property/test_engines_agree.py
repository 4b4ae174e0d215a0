"""Two engines, one truth: a one-patient cohort of the vector engine matches the domain path.

The reference is a plain single-patient driver written here on the domain
objects only: ``Pump`` (fill, ProgrammingSession, perform_refill with its bridge
bolus, request_patient_bolus, faults, ``advance_to``) -> ``DeliverySegment``
list -> ``itb.domain.patient.simulate`` (exact per constant segment), with the
same clinic rules — the production ones of :mod:`itb.domain.clinical.care`
(``assess`` on the scored MAS and signs, ``choose_concentration``,
``refill_day``) and ``plan_next_step`` with the drug library's cap — plus the
arm's policy (fixed-interval refills, missed refills, revisions, restarts,
patients asking for boluses at set hours when above goal) and the same random
draws (the patient's and its pump stream). Complications of the implanted
system, made frequent, go the same way: the domain's pump faults for a mass at
the tip, a spinal fluid leak and a pump turned in its pocket (whose refill
``perform_refill`` refuses), the explant that takes the ``Pump`` away, the
domain's bridge rate while it is out, and a new ``Pump`` at the re-implant.
Hypothesis draws the patient (seed, index) and the schedule (pump, program
shape, boluses, policy, doses, hazards of all five fault kinds, complications
on or off, the bridge, the explant probability, horizon).

Checked: CSF and effect-site concentrations and delivered amounts at every day
end to 1e-9 relative; alarm kinds and dates exactly (times to 1e-6 h); refill
dates exactly; accepted patient-bolus times exactly; counts of withdrawal and
overdose days, explants, re-implants, failed refills and withdrawal days with
the pump out exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from itb import bootstrap
from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.care import assess, choose_concentration, refill_day
from itb.domain.clinical.complications import (
    Bridge,
    ComplicationKind,
    ComplicationRules,
    Treatment,
    bridge_rate_mcg_per_h,
    pump_fault,
)
from itb.domain.clinical.titration import Phase, plan_next_step, rule_group
from itb.domain.delivery import DeliverySegment
from itb.domain.errors import SeptumUnreachable
from itb.domain.patient import PatientParameters, PatientState, modes, observe, simulate
from itb.domain.provenance import Sourced
from itb.domain.pump import (
    CatheterSpec,
    DiscrepancyTolerance,
    Fault,
    FaultKind,
    PatientBolusSettings,
    Prescription,
    ProgrammingSession,
    Pump,
    PumpPreset,
    Verdict,
    perform_refill,
    time_calculated_volume_reaches,
)
from itb.domain.units import HOURS_PER_DAY
from itb.services.cohort_trial import default_arm
from itb.simulation.arm_program import ProgramShape
from itb.simulation.cohort import CohortArrays
from itb.simulation.piece_kernel import modal_forms
from itb.simulation.population import Population, draw_patient
from itb.simulation.vector_engine import (
    MAX_REFILL_ATTEMPTS,
    ArmPolicy,
    CohortData,
    PumpDraws,
    accuracy_factors,
    catheter_lengths_cm,
    complication_days,
    draw_pump_randomness,
    fault_days,
    run_arm,
)

CATALOG = bootstrap.catalog()
POPULATION = Population.from_table(CATALOG.patient_table)
RULES = CATALOG.titration
DATA = CohortData.from_table(load_data_table("cohort"))
PRESETS = CATALOG.presets
TOLERANCE = CATALOG.refill_tolerance
GOAL = CATALOG.protocol.goal()
HARD_MAX = CATALOG.library.hard_max_by_rule_group()
COMPLICATIONS = CATALOG.complications
ALARM_EVENT = {
    "low_reservoir": "low_reservoir",
    "empty_reservoir": "empty_reservoir",
    "motor_stall_alarm": "motor_stall",
    "pump_stopped_over_48h": "pump_stopped_over_48h",
    "elective_replacement_indicator": "elective_replacement_indicator",
    "end_of_service": "end_of_service",
}


def _clip(dose: float, conc: float, preset: PumpPreset, shape: ProgramShape) -> float:
    return float(shape.clip_dose(np.array([dose]), np.array([conc]), preset)[0])


def domain_run(
    params: PatientParameters,
    dose0: float,
    draws: PumpDraws,
    policy: ArmPolicy,
    data: CohortData,
    horizon_days: int,
    complications: ComplicationRules = COMPLICATIONS,
) -> dict[str, Any]:
    """The single-patient domain path under the same clinic rules and draws."""
    preset = PRESETS[policy.pump]
    shape = policy.program
    pb = policy.patient_bolus
    tolerance: DiscrepancyTolerance = TOLERANCE
    acc = float(accuracy_factors(draws, data, preset)[0])
    length = float(catheter_lengths_cm(draws, data)[0])
    fday = fault_days(draws, data)[0]
    ml_per_cm = CATALOG.catheters[policy.catheter].volume_ml_per_cm
    cap = preset.reservoir_ml
    thr = policy.low_reservoir_alarm_ml
    conc = policy.initial_concentration_mcg_per_ml
    dose = _clip(dose0, conc, preset, shape)

    def new_pump(t0: float) -> Pump:
        """A new system: filled, catheter primed, programmed (the implant, or a re-implant)."""
        pump = Pump(
            preset, CatheterSpec("c", "catheter", length, ml_per_cm), t_h=t0, accuracy_factor=acc
        )
        pump.fill(t0, cap, conc)
        pump.dead_space.replace(conc)  # primed, as in the vector engine
        session = ProgrammingSession(pump, t0)
        session.stage_prescription(Prescription(shape.program(dose), conc, pb), "start")
        session.stage_low_reservoir_alarm(thr, "policy")
        session.commit(t0)
        return pump

    pump: Pump | None = new_pump(0.0)
    retired: list[Pump] = []
    concs = sorted(policy.concentrations_mcg_per_ml)
    hours = sorted(set(policy.patient_bolus_request_hours)) if pb is not None else []

    last_fill_day = 0
    max_days = data.max_refill_interval_days.value

    def schedule(day: int) -> float:
        assert pump is not None
        if policy.refill == "interval":
            # the arm's fixed interval (a policy under study), within the drug's stability
            nxt = min(float(day + policy.refill_interval_days), last_fill_day + max_days)
            return max(nxt, day + 1.0)
        return float(
            refill_day(
                now_h=day * HOURS_PER_DAY,
                last_fill_h=last_fill_day * HOURS_PER_DAY,
                low_alarm_t_h=time_calculated_volume_reaches(pump, thr),
                margin_days=policy.refill_margin_days,
                max_days_in_pump=max_days,
            )
        )

    next_refill = schedule(0)
    attempt = 0
    state = PatientState()
    last_change = 0.0
    revision_day = math.inf
    restart_day = math.inf
    catheter_faults: set[FaultKind] = set()
    fault_kinds = (
        Fault(FaultKind.OCCLUSION),
        Fault(FaultKind.DISCONNECTION),
        Fault(FaultKind.MOTOR_STALL),
        Fault(FaultKind.LEAK, fraction=data.leak_fraction_lost.value),
        Fault(FaultKind.MIGRATION, fraction=data.migration_fraction_to_csf.value),
    )
    # complications: the onset day of each kind from the same draws, the domain's rules
    kinds = list(ComplicationKind)
    cday = (
        complication_days(draws, complications)[0]
        if policy.complications
        else [math.inf] * len(kinds)
    )
    on: set[ComplicationKind] = set()
    found_day: dict[ComplicationKind, float] = {}
    end_day: dict[ComplicationKind, float] = {}
    explant_day = reimplant_day = flip_fix_day = math.inf
    bridge_rate = 0.0
    explants = reimplants = failed_refills = out_wd_days = 0
    bridging = complications.bridging
    trace: list[tuple[float, float, float, float]] = []
    refill_days: list[int] = []
    wd_days = od_days = 0

    def refill(day: int, t0: float) -> bool:
        """The refill procedure; False when the pump cannot be refilled (turned over)."""
        nonlocal conc, dose, last_fill_day, next_refill
        assert pump is not None
        stronger = choose_concentration(
            dose_mcg_per_day=shape.program(dose).daily_dose_mcg(),
            concentration_mcg_per_ml=conc,
            strengths_mcg_per_ml=concs,
            usable_ml=cap - thr,
            margin_days=policy.refill_margin_days,
            min_interval_days=policy.min_refill_interval_days,
        )
        new_conc = conc if stronger is None else stronger
        new_dose = _clip(dose, new_conc, preset, shape) if new_conc != conc else dose
        rx = None if new_conc == conc else Prescription(shape.program(new_dose), new_conc, pb)
        try:
            report = perform_refill(
                pump,
                t0,
                fill_volume_ml=cap,
                concentration_mcg_per_ml=new_conc,
                tolerance=tolerance,
                new_prescription=rx,
                bridge_bolus=policy.bridge_bolus and pump.bolus is None,
            )
        except SeptumUnreachable:
            return False
        assert report.discrepancy.verdict in Verdict
        conc, dose = new_conc, new_dose
        refill_days.append(day)
        last_fill_day = day
        next_refill = schedule(day)
        return True

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
            out_wd_days += pump is None and obs.withdrawal_stage >= 1
            catheter = catheter_faults or ComplicationKind.CATHETER_TIP_MASS in on
            if (
                pump is not None
                and catheter
                and obs.withdrawal_stage >= 1
                and revision_day == math.inf
            ):
                revision_day = day + data.revision_delay_days.value
        if day == horizon_days:
            break
        if pump is not None:
            pump.advance_to(t0)
        if restart_day == day:
            assert pump is not None
            pump.repair(t0, FaultKind.MOTOR_STALL)
            restart_day = math.inf
        if revision_day == day:
            assert pump is not None
            for kind in sorted(catheter_faults):
                pump.repair(t0, kind)
            catheter_faults.clear()
            on.discard(ComplicationKind.CATHETER_TIP_MASS)
            revision_day = math.inf
        forced = False
        if reimplant_day == day:
            pump = new_pump(t0)
            bridge_rate = 0.0
            catheter_faults.clear()
            on -= {ComplicationKind.CATHETER_TIP_MASS, ComplicationKind.PUMP_FLIP}
            last_change = t0
            last_fill_day = day
            reimplant_day = math.inf
            reimplants += 1
            next_refill = schedule(day)
        if explant_day == day and pump is not None:
            retired.append(pump)
            pump = None
            explant_day = math.inf
            next_refill = revision_day = restart_day = flip_fix_day = math.inf
            on -= {
                ComplicationKind.CATHETER_TIP_MASS,
                ComplicationKind.PUMP_FLIP,
                ComplicationKind.CSF_LEAK,
            }
            bridge_rate = bridge_rate_mcg_per_h(
                bridging, policy.bridge, shape.program(dose).daily_dose_mcg()
            )
            explants += 1
            reimplant_day = day + math.ceil(bridging.reimplant_after_days.value)
        for kind, end in list(end_day.items()):
            if end == day:
                del end_day[kind]
                if kind in on:
                    on.discard(kind)
                    fault = pump_fault(complications.spec(kind))
                    if fault is not None and pump is not None:
                        pump.repair(t0, fault.kind)
        if flip_fix_day == day:
            assert pump is not None
            pump.repair(t0, FaultKind.POCKET_FLIP)
            on.discard(ComplicationKind.PUMP_FLIP)
            flip_fix_day = math.inf
            forced = True
        for j, kind in enumerate(kinds):
            if cday[j] == day and pump is not None and kind not in on:
                on.add(kind)
                spec = complications.spec(kind)
                fault = pump_fault(spec)
                if fault is not None:
                    pump.apply_fault(t0, fault)
                if kind is ComplicationKind.CATHETER_TIP_MASS:
                    catheter_faults.add(FaultKind.TIP_MASS)
                if spec.found_by == "signs":
                    found_day[kind] = day + data.complication_found_days.value
        for j, kind in enumerate(kinds):
            if found_day.get(kind) != day:
                continue
            del found_day[kind]
            if kind not in on:
                continue
            spec = complications.spec(kind)
            delay = data.revision_delay_days.value
            out = draws.complication_u[0, j] < spec.explant_probability.value
            out = out and explant_day == math.inf
            if out:
                explant_day = day + delay
            resolves = math.ceil(spec.resolves_days.value)
            if spec.treatment is Treatment.POCKET_REVISION:
                end_day[kind] = day + delay
            else:
                end_day[kind] = day + delay + resolves if out else day + resolves
        for j, fault in enumerate(fault_kinds):
            if fday[j] == day and pump is not None:
                pump.apply_fault(t0, fault)
                if fault.kind is FaultKind.MOTOR_STALL:
                    restart_day = day + data.stall_restart_days.value
                else:
                    catheter_faults.add(fault.kind)
        if (next_refill == day or forced) and pump is not None:
            missed = False
            if not forced:
                u = draws.missed_u[0, min(attempt, MAX_REFILL_ATTEMPTS - 1)]
                attempt += 1
                missed = bool(u < data.missed_refill_probability.value)
            if missed:
                next_refill = day + data.missed_refill_delay_days.value
            elif not refill(day, t0):
                failed_refills += 1
                spec = complications.spec(ComplicationKind.PUMP_FLIP)
                flip_fix_day = day + math.ceil(spec.resolves_days.value)
                next_refill = math.inf
        wants_bolus = obs is not None and GOAL.above(obs.mas) and obs.overdose_stage == 0
        if (
            pump is not None
            and policy.titration == "label"
            and obs is not None
            and _visit(policy, day, horizon_days)
        ):
            step = plan_next_step(
                RULES,
                origin=params.origin,
                age_years=params.age_years,
                phase=Phase.TITRATION
                if day <= policy.inpatient_titration_days
                else Phase.MAINTENANCE,
                current_dose_mcg_per_day=dose,
                assessment=assess(obs.mas, obs.overdose_stage > 0, GOAL),
                hours_since_implant=t0,
                hours_since_last_change=t0 - last_change,
                max_dose_mcg_per_day=HARD_MAX[rule_group(RULES, params.origin, params.age_years)],
            )
            if step.dose_mcg_per_day != dose:
                last_change = t0
                dose = _clip(step.dose_mcg_per_day, conc, preset, shape)
                s = ProgrammingSession(pump, t0)
                s.stage_prescription(Prescription(shape.program(dose), conc, pb), "titration")
                s.commit(t0)
                if policy.refill == "margin" and next_refill > day:
                    next_refill = schedule(day)
        segments: list[DeliverySegment] = []
        if pump is None:
            if bridge_rate > 0.0:
                segments.append(DeliverySegment(t0, t0 + HOURS_PER_DAY, bridge_rate))
        else:
            for h in hours:
                segments += pump.advance_to(t0 + h)
                if wants_bolus:
                    pump.request_patient_bolus(t0 + h)
            segments += pump.advance_to(t0 + HOURS_PER_DAY)
        state = simulate(params, segments, [t0 + HOURS_PER_DAY], state)[-1]
    pumps = [*retired, *([pump] if pump is not None else [])]
    alarms = [(a.t_h, a.kind.value) for p in pumps for a in p.alarm_log if a.action == "raised"]
    return {
        "trace": np.array(trace),
        "alarms": sorted(alarms),
        "refill_days": refill_days,
        "withdrawal_days": wd_days,
        "overdose_days": od_days,
        "delivered": state.delivered_mcg,
        "patient_boluses": [t for p in pumps for t in p.patient_bolus_starts_t_h],
        "explants": explants,
        "reimplants": reimplants,
        "failed_refills": failed_refills,
        "explanted_withdrawal_days": out_wd_days,
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
        "step_up": st.sampled_from([None, 20.0, 40.0]),
        "dose": st.floats(60.0, 1199.0),
        "horizon": st.integers(20, 420),
        "miss": st.sampled_from([0.0, 0.2, 0.5]),
        "hazard": st.sampled_from([0.0, 1.0, 4.0]),
        "visit": st.integers(7, 60),
        "program": st.sampled_from(["continuous", "flex", "periodic"]),
        "flex": st.lists(
            st.tuples(st.integers(1, 95), st.floats(0.25, 4.0)), min_size=0, max_size=5
        ),
        "flex0": st.floats(0.25, 4.0),
        "periodic": st.tuples(
            st.sampled_from([3.0, 4.0, 6.0, 8.0, 12.0, 24.0]),
            st.one_of(st.floats(0.1, 0.9), st.just(1.0)),
            st.sampled_from([0.125, 0.25, 0.5]),
            st.sampled_from([0.0, 0.25, 0.5]),
        ),
        "bridge": st.booleans(),
        "patient_bolus": st.one_of(
            st.none(),
            st.tuples(
                st.sampled_from([25.0, 50.0, 100.0]),
                st.sampled_from([0.25, 1.0, 2.5]),
                st.sampled_from([0.0, 4.0, 12.0]),
                st.integers(1, 4),
            ),
        ),
        "hours": st.sampled_from([(8.0,), (8.0, 20.0), (2.5, 9.0, 14.25, 22.0)]),
        "catheter_hazard": st.sampled_from([0.0, 1.0, 4.0]),
        "complications": st.booleans(),
        "bridging": st.sampled_from(list(Bridge)),
        "explant": st.sampled_from([0.0, 0.5, 1.0]),
    }
)


def _frequent(explant_probability: float) -> ComplicationRules:
    """Every complication common enough to happen within a short horizon."""
    kinds = {
        kind: replace(
            spec,
            early_probability=_sourced(0.3),
            early_window_days=_sourced(30.0),
            late_per_year=_sourced(2.0),
            explant_probability=_sourced(explant_probability),
        )
        for kind, spec in COMPLICATIONS.kinds.items()
    }
    bridging = replace(COMPLICATIONS.bridging, reimplant_after_days=_sourced(20.0))
    return ComplicationRules(kinds=kinds, bridging=bridging)


def _shape(s: dict[str, Any]) -> ProgramShape:
    if s["program"] == "flex":
        starts = sorted({q for q, _ in s["flex"]})
        rel = dict(s["flex"])
        return ProgramShape(
            "flex", flex_steps=((0.0, s["flex0"]), *((q / 4, rel[q]) for q in starts))
        )
    if s["program"] == "periodic":
        interval, fraction, duration, first = s["periodic"]
        return ProgramShape(
            "periodic",
            periodic_fraction=fraction,
            periodic_interval_h=interval,
            periodic_duration_h=duration * interval,
            periodic_first_start_h=first * interval,
        )
    return ProgramShape()


def _vector_and_domain(
    s: dict[str, Any], params: PatientParameters | None = None
) -> tuple[Any, dict[str, Any], PatientParameters]:
    params = draw_patient(POPULATION, s["seed"], s["k"]) if params is None else params
    policy = default_arm(
        CATALOG,
        "test",
        pump=s["pump"],
        refill=s["refill"],
        refill_interval_days=s["interval"],
        refill_margin_days=s["margin"],
        low_reservoir_alarm_ml=s["threshold"],
        titration=s["titration"],
        visit_interval_days=s["visit"],
        initial_concentration_mcg_per_ml=s["conc"],
        min_refill_interval_days=s["step_up"],
        replacement_after_eri_days=10_000,
        program=_shape(s),
        bridge_bolus=s["bridge"],
        patient_bolus=None
        if s["patient_bolus"] is None
        else PatientBolusSettings(*s["patient_bolus"]),
        patient_bolus_request_hours=s["hours"],
        complications=s["complications"],
        bridge=s["bridging"],
    )
    rules = _frequent(s["explant"])
    data = replace(
        DATA,
        missed_refill_probability=_sourced(s["miss"]),
        occlusion_per_year=_sourced(s["hazard"]),
        disconnection_per_year=_sourced(s["hazard"] / 2),
        stall_per_year=_sourced(s["hazard"]),
        leak_per_year=_sourced(s["catheter_hazard"]),
        migration_per_year=_sourced(s["catheter_hazard"] / 2),
    )
    draws = draw_pump_randomness(s["seed"], [s["k"]])
    result = run_arm(
        CohortArrays.from_patients([params]),
        np.array([params.age_years]),
        np.array([s["dose"]]),
        draws,
        policy=policy,
        preset=PRESETS[s["pump"]],
        catheter_ml_per_cm=CATALOG.catheters[policy.catheter].volume_ml_per_cm,
        rules=RULES,
        goal=GOAL,
        dose_hard_max_mcg_per_day=HARD_MAX,
        data=data,
        tolerance=TOLERANCE,
        horizon_days=s["horizon"],
        dose_snapshot_day=365,
        complications=rules,
        record_events=True,
        trace=True,
    )
    ref = domain_run(params, s["dose"], draws, policy, data, s["horizon"], rules)
    return result, ref, params


@settings(max_examples=30)
@given(schedules)
def test_one_patient_cohort_matches_the_domain_path(s: dict[str, Any]) -> None:
    check_agreement(s)


@settings(max_examples=8)
@given(schedules)
def test_a_patient_without_distinct_modes_matches_too(s: dict[str, Any]) -> None:
    """Two of the patient's rates coincide (dependence as fast as the effect site): the
    domain and the compiled kernel then both step the states themselves with the matrix
    exponential of the augmented system, not the eigen-modes."""
    params = draw_patient(POPULATION, s["seed"], s["k"])
    same = replace(
        params, adaptation=replace(params.adaptation, dependence_rate_per_h=params.pd.ke0_per_h)
    )
    assert modes(same) is None
    system = CohortArrays.from_patients([same]).system_matrices()
    assert not modal_forms(system)[3][0]
    check_agreement(s, same)


def check_agreement(s: dict[str, Any], params: PatientParameters | None = None) -> Any:
    """Both engines on schedule ``s`` (patient ``params``, else drawn), compared; returns
    the vector engine's result."""
    result, ref, params = _vector_and_domain(s, params)
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
    boluses = [t for _, t, kind in result.events if kind == "patient_bolus"]
    assert boluses == ref["patient_boluses"]
    assert int(result.patient_boluses[0]) == len(ref["patient_boluses"])
    assert int(result.withdrawal_days[0]) == ref["withdrawal_days"]
    assert int(result.overdose_days[0]) == ref["overdose_days"]
    assert int(result.explants[0]) == ref["explants"]
    assert int(result.reimplants[0]) == ref["reimplants"]
    assert int(result.failed_refills[0]) == ref["failed_refills"]
    assert int(result.explanted_withdrawal_days[0]) == ref["explanted_withdrawal_days"]
    return result


def _approx(x: float) -> Any:
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-9)
