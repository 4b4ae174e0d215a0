"""The vectorised cohort engine: chunking, reproducibility, dry reservoirs, missed refills."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from itb import bootstrap
from itb.domain.provenance import Sourced
from itb.simulation.cohort_runner import run_chunks_local
from itb.simulation.cohort_summary import summarize
from itb.simulation.cohort_trial import TrialSetup, implant
from itb.simulation.vector_engine import ArmPolicy, EngineResult, PumpDraws, run_arm

ARMS = (
    ArmPolicy("alarm day", refill_margin_days=0),
    ArmPolicy("interval 40 d", refill="interval", refill_interval_days=40, pump="synchromed_ii_40"),
)


def _sourced(value: float) -> Sourced:
    return Sourced(value, "test", "assumed", "test")


@pytest.fixture(scope="module")
def setup() -> TrialSetup:
    base = bootstrap.cohort_setup()
    return replace(base, seed=11, patients=70, horizon_days=150, arms=ARMS)


def _summary(setup: TrialSetup, chunk_size: int) -> dict[str, object]:
    partial = run_chunks_local(setup, chunk_size=chunk_size)
    return summarize(
        partial,
        name="t",
        seed=setup.seed,
        patients=setup.patients,
        horizon_days=setup.horizon_days,
        arms=[{"name": a.name} for a in setup.arms],
    )


def test_summary_does_not_depend_on_the_chunk_size(setup: TrialSetup) -> None:
    s7 = _summary(setup, 7)
    assert s7 == _summary(setup, 64)
    assert s7 == _summary(setup, 1000)
    assert s7["patients_screened"] == 70


def _run(setup: TrialSetup, start: int, size: int, arm: ArmPolicy, **kw: object) -> EngineResult:
    from itb.simulation.vector_engine import draw_pump_randomness

    imp = implant(setup, start, size)
    draws = kw.pop("draws", None) or draw_pump_randomness(setup.seed, imp.ks)
    return run_arm(
        imp.cohort,
        imp.ages_years,
        imp.initial_dose_mcg_per_day,
        draws,  # type: ignore[arg-type]
        policy=arm,
        preset=setup.presets[arm.pump],
        catheter_ml_per_cm=setup.catheter_ml_per_cm,
        rules=setup.rules,
        goal_margin_mas=setup.course.goal_margin_mas,
        data=kw.pop("data", setup.data),  # type: ignore[arg-type]
        tolerance=setup.tolerance,
        horizon_days=setup.horizon_days,
        record_events=True,
    )


def test_patient_k_is_reproducible_on_its_own(setup: TrialSetup) -> None:
    imp = implant(setup, 0, 30)
    k = int(imp.ks[17])
    whole = _run(setup, 0, 30, ARMS[0])
    alone = _run(setup, k, 1, ARMS[0])
    i = 17
    assert alone.delivered_mcg[0] == whole.delivered_mcg[i]
    np.testing.assert_array_equal(alone.final_x[0], whole.final_x[i])
    assert alone.withdrawal_days[0] == whole.withdrawal_days[i]
    assert alone.refills[0] == whole.refills[i]
    assert [(t, e) for _, t, e in alone.events] == [(t, e) for p, t, e in whole.events if p == i]


def _quiet_data(setup: TrialSetup, miss: float) -> object:
    return replace(
        setup.data,
        missed_refill_probability=_sourced(miss),
        occlusion_per_year=_sourced(0.0),
        disconnection_per_year=_sourced(0.0),
        stall_per_year=_sourced(0.0),
    )


def _draws(accuracy_u: float) -> PumpDraws:
    return PumpDraws(
        accuracy_u=np.array([accuracy_u]),
        catheter_u=np.array([0.5]),
        fault_e=np.ones((1, 3)),
        missed_u=np.zeros((1, 400)),
        fault_e2=np.ones((1, 2)),
    )


def _first(result: EngineResult, kind: str) -> float:
    return min(t for _, t, e in result.events if e == kind)


def test_over_infusing_pump_runs_dry_before_its_low_reservoir_alarm(setup: TrialSetup) -> None:
    never = ArmPolicy("no refill", refill="interval", refill_interval_days=365, titration="hold")
    s = replace(setup, horizon_days=120)
    over = _run(s, 3, 1, never, draws=_draws(0.999), data=_quiet_data(setup, 0.0))
    assert _first(over, "reservoir_dry") < _first(over, "low_reservoir")
    under = _run(s, 3, 1, never, draws=_draws(0.001), data=_quiet_data(setup, 0.0))
    assert _first(under, "low_reservoir") < _first(under, "reservoir_dry")
    assert over.withdrawal_days[0] > 0


def test_missed_refill_leads_to_withdrawal(setup: TrialSetup) -> None:
    arm = ArmPolicy("alarm day", refill_margin_days=0, titration="hold")
    s = replace(setup, horizon_days=120)
    kept = _run(s, 5, 1, arm, draws=_draws(0.5), data=_quiet_data(setup, 0.0))
    missed = _run(s, 5, 1, arm, draws=_draws(0.5), data=_quiet_data(setup, 0.999))
    assert kept.withdrawal_days[0] == 0
    assert kept.dry_events[0] == 0
    assert missed.missed_refills[0] >= 1
    assert missed.dry_events[0] >= 1
    assert missed.withdrawal_days[0] > 0
    assert _first(missed, "refill_missed") < _first(missed, "reservoir_dry")
