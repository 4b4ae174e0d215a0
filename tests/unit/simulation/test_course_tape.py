"""The single-patient engine steps only at events and reads its sampling grid from the course
tape afterwards: a grid point must show what the course shows when it is stopped right there
(its last sample then comes from the pump and patient themselves, not from the tape)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from itb import bootstrap
from itb.domain.patient import observe
from itb.services.scenario import Scenario, build_setup
from itb.simulation.engine import MemoryRecorder, Sample, run_course


def _scenario(name: str, preset: str | None) -> Scenario:
    scenario = bootstrap.builtin_scenario(name)
    if preset is None:
        return scenario
    return scenario.model_copy(update={"pump": scenario.pump.model_copy(update={"preset": preset})})


def _spread(samples: list[Sample], event_times: list[float], horizon_h: float) -> list[Sample]:
    """Three grid points, not at an event's instant, early, middle and late in the course."""
    free = [
        s
        for s in samples
        if 0.0 < s.t_h < horizon_h and all(abs(s.t_h - t) > 1e-6 for t in event_times)
    ]
    return [free[len(free) // 5], free[len(free) // 2], free[4 * len(free) // 5]]


@pytest.mark.parametrize(
    ("name", "preset", "patient_exact"),
    [
        ("day_night_flex", None, True),  # flex program, peristaltic
        ("missed_refill_withdrawal", None, True),  # low residual, withdrawal signs
        ("gas_pump_fever_altitude", None, True),  # constant flow, temperature and pressure
        ("concentration_change_bridge", None, True),  # two concentrations in the dead space
        # valve-gated: the pump moves whole strokes and spreads a step's strokes evenly over
        # the step, so a course stopped mid-step gives the patient a slightly different
        # input (up to one stroke over the shortened step); its reservoir must still match
        ("stable_maintenance", "prometra_ii_20", False),
    ],
)
def test_a_grid_point_is_the_course_stopped_there(
    name: str, preset: str | None, patient_exact: bool
) -> None:
    setup, _clock, params, _screening = build_setup(_scenario(name, preset), bootstrap.catalog())
    full = MemoryRecorder()
    run_course(setup, full)
    picks = _spread(full.samples, [e.t_h for e in full.timeline], setup.horizon_h)
    for s in picks:
        short = MemoryRecorder()
        run = run_course(replace(setup, horizon_h=s.t_h), short)
        end = short.samples[-1]
        assert end.t_h == s.t_h
        assert s.reservoir_actual_ml == pytest.approx(end.reservoir_actual_ml, abs=1e-9)
        assert s.reservoir_calculated_ml == pytest.approx(end.reservoir_calculated_ml, abs=1e-9)
        assert s.dose_mcg_per_day == end.dose_mcg_per_day
        if not patient_exact:
            continue
        o = observe(params, run.final_state)
        for value, truth in (
            (s.mas, o.mas),
            (s.psfs, o.psfs),
            (s.csf_mcg_per_ml, o.csf_concentration_mcg_per_ml),
            (s.effect_site_mcg_per_ml, o.effect_site_mcg_per_ml),
            (s.withdrawal_severity, o.withdrawal_severity),
        ):
            assert value == pytest.approx(truth, rel=1e-9, abs=1e-12)
        assert s.withdrawal_stage == int(o.withdrawal_stage)
        assert s.overdose_stage == o.overdose_stage
        assert s.signs == "; ".join(o.withdrawal_signs + o.overdose_signs)
        assert s.delivery_mcg_per_h == pytest.approx(end.delivery_mcg_per_h, rel=1e-9)


def test_the_grid_changes_what_is_recorded_never_what_happens() -> None:
    setup, *_ = build_setup(_scenario("seven_years_end_to_end", None), bootstrap.catalog())
    coarse, fine = MemoryRecorder(), MemoryRecorder()
    run_coarse = run_course(replace(setup, sample_every_h=24.0), coarse)
    run_fine = run_course(replace(setup, sample_every_h=0.5), fine)
    assert [(e.t_h, e.kind, e.detail) for e in coarse.timeline] == [
        (e.t_h, e.kind, e.detail) for e in fine.timeline
    ]
    assert run_coarse.final_state == run_fine.final_state
    assert run_coarse.segments == run_fine.segments  # the engine stepped the same pieces
    at_fine = {s.t_h: s for s in fine.samples}
    for s in coarse.samples:  # the delivery is the mean since the previous grid point
        assert replace(s, delivery_mcg_per_h=0.0) == replace(at_fine[s.t_h], delivery_mcg_per_h=0.0)
    assert len(fine.samples) == 48 * len(coarse.samples) - 47


def test_signs_are_named_wherever_the_domain_names_them() -> None:
    setup, *_ = build_setup(_scenario("missed_refill_withdrawal", None), bootstrap.catalog())
    rec = MemoryRecorder()
    run_course(setup, rec)
    with_signs = [s for s in rec.samples if s.signs]
    assert with_signs, "the scenario shows withdrawal signs"
    assert all(s.withdrawal_stage > 0 or s.overdose_stage > 0 for s in with_signs)
    assert not [s for s in rec.samples if not s.signs and s.withdrawal_stage > 0]
