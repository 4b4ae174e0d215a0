"""The vectorised cohort engine: chunking, reproducibility, dry reservoirs, missed refills."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from itb import bootstrap
from itb.domain.provenance import Sourced
from itb.domain.pump import PatientBolusSettings
from itb.services.cohort_trial import default_arm
from itb.simulation.arm_program import ProgramShape
from itb.simulation.cohort_runner import run_chunks_local
from itb.simulation.cohort_summary import summarize
from itb.simulation.cohort_trial import TrialSetup, implant, run_implanted
from itb.simulation.vector_engine import (
    ArmPolicy,
    EngineResult,
    PumpDraws,
    draw_pump_randomness,
)

CAT = bootstrap.catalog()


def ArmPolicy_(name: str, **kw: object) -> ArmPolicy:
    """An arm with the protocol's defaults, overridden by keyword."""
    return default_arm(CAT, name, **kw)


ARMS = (
    ArmPolicy_("alarm day", refill_margin_days=0),
    ArmPolicy_(
        "interval 40 d", refill="interval", refill_interval_days=40, pump="synchromed_ii_40"
    ),
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
    return run_implanted(
        setup,
        imp,
        arm,
        draws,  # type: ignore[arg-type]
        data=kw.pop("data", setup.data),  # type: ignore[arg-type]
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
        complication_e=np.ones((1, 8)),
        complication_u=np.ones((1, 8)),
    )


def _first(result: EngineResult, kind: str) -> float:
    return min(t for _, t, e in result.events if e == kind)


def _without_low_residual(setup: TrialSetup, pump: str) -> TrialSetup:
    presets = dict(setup.presets)
    presets[pump] = replace(presets[pump], low_residual_volume_ml=0.0)
    return replace(setup, presets=presets)


def test_over_infusing_pump_runs_dry_before_its_low_reservoir_alarm(setup: TrialSetup) -> None:
    never = ArmPolicy_("no refill", refill="interval", refill_interval_days=365, titration="hold")
    # the accuracy factor alone (a nearly empty reservoir's under-delivery is tested below)
    s = replace(_without_low_residual(setup, never.pump), horizon_days=120)
    over = _run(s, 3, 1, never, draws=_draws(0.999), data=_quiet_data(setup, 0.0))
    assert _first(over, "reservoir_dry") < _first(over, "low_reservoir")
    under = _run(s, 3, 1, never, draws=_draws(0.001), data=_quiet_data(setup, 0.0))
    assert _first(under, "low_reservoir") < _first(under, "reservoir_dry")
    assert over.withdrawal_days[0] > 0


def test_a_nearly_empty_reservoir_under_delivers_and_runs_dry_later(setup: TrialSetup) -> None:
    never = ArmPolicy_("no refill", refill="interval", refill_interval_days=365, titration="hold")
    s = replace(setup, horizon_days=150)
    preset = s.presets[never.pump]
    assert preset.low_residual_volume_ml > 0.0
    assert preset.low_residual_flow_fraction < 1.0
    with_effect = _run(s, 3, 1, never, draws=_draws(0.5), data=_quiet_data(setup, 0.0))
    plain = _run(
        replace(_without_low_residual(setup, never.pump), horizon_days=150),
        3,
        1,
        never,
        draws=_draws(0.5),
        data=_quiet_data(setup, 0.0),
    )
    dry, dry_plain = _first(with_effect, "reservoir_dry"), _first(plain, "reservoir_dry")
    # the last low_residual_volume_ml take 1 / fraction as long to leave the reservoir
    assert dry > dry_plain
    assert _first(with_effect, "low_reservoir") == _first(plain, "low_reservoir")


def test_missed_refill_leads_to_withdrawal(setup: TrialSetup) -> None:
    arm = ArmPolicy_("alarm day", refill_margin_days=0, titration="hold")
    s = replace(setup, horizon_days=120)
    kept = _run(s, 5, 1, arm, draws=_draws(0.5), data=_quiet_data(setup, 0.0))
    missed = _run(s, 5, 1, arm, draws=_draws(0.5), data=_quiet_data(setup, 0.999))
    assert kept.withdrawal_days[0] == 0
    assert kept.dry_events[0] == 0
    assert missed.missed_refills[0] >= 1
    assert missed.dry_events[0] >= 1
    assert missed.withdrawal_days[0] > 0
    assert _first(missed, "refill_missed") < _first(missed, "reservoir_dry")


def _cohort_run(setup: TrialSetup, n: int, arm: ArmPolicy, data: object) -> EngineResult:
    imp = implant(setup, 0, n)
    return run_implanted(setup, imp, arm, data=data, record_events=True)  # type: ignore[arg-type]


def test_patient_boluses_keep_the_lockout_and_the_daily_maximum(setup: TrialSetup) -> None:
    pb = PatientBolusSettings(dose_mcg=50.0, duration_h=0.5, lockout_h=5.0, max_per_day=2)
    arm = ArmPolicy_("ptm", patient_bolus=pb, patient_bolus_request_hours=(8.0, 12.0, 16.0, 20.0))
    r = _cohort_run(setup, 40, arm, _quiet_data(setup, 0.0))
    assert r.patient_boluses.sum() > 0
    assert r.patient_bolus_refusals.sum() > 0  # 4 requests a day meet a maximum of 2
    for p in range(40):
        starts = [t for q, t, e in r.events if q == p and e == "patient_bolus"]
        assert all(b - a >= pb.lockout_h for a, b in itertools.pairwise(starts))
        assert all(sum(1 for s in starts if t - 24.0 < s <= t) <= pb.max_per_day for t in starts)
        ends = [t for q, t, e in r.events if q == p and e == "bolus_end"]
        assert len(ends) >= len(starts) - 1
        for start, end in zip(starts, ends, strict=False):
            assert end - start == pytest.approx(pb.duration_h, abs=1e-9)


def test_a_bridge_bolus_keeps_the_dose_across_a_concentration_step_up(setup: TrialSetup) -> None:
    # 40 mL at 1000 mcg/day lasts 19 days at 500 mcg/mL (< 28: the first refill steps up to
    # 1000 mcg/mL) and 38 days at 1000 mcg/mL (no further step)
    s = replace(setup, horizon_days=60)
    base = ArmPolicy_(
        "no bridge",
        pump="synchromed_ii_40",
        titration="hold",
        refill="interval",
        refill_interval_days=10,
    )
    bridged = replace(base, name="bridge", bridge_bolus=True)
    imp = implant(s, 0, 20)
    dose = np.full(len(imp.ks), 1000.0)
    results = []
    for arm in (base, bridged):
        results.append(
            run_implanted(
                s,
                imp,
                arm,
                data=_quiet_data(s, 0.0),  # type: ignore[arg-type]
                initial_dose_mcg_per_day=dose,
                trace=True,
            )
        )
    plain, bridge = results
    assert (plain.concentration_changes == 1).all()
    assert (bridge.bridge_boluses == 1).all()
    assert plain.trace_delivered is not None
    assert bridge.trace_delivered is not None

    # drug over the 3 days after the change (day 10) against 3 ordinary days (5-8) of the
    # same patient (same pump accuracy): the bridge keeps it, plug flow alone does not
    def gap(r: EngineResult) -> np.ndarray:
        d = r.trace_delivered
        assert d is not None
        return np.abs((d[13] - d[10]) - (d[8] - d[5]))

    assert (gap(bridge) < gap(plain)).all()
    assert (gap(bridge) < 0.01 * 3000.0).all()


def test_leak_and_migration_lose_drug_until_revision(setup: TrialSetup) -> None:
    # every patient's leak (or migration) starts on day 40, once the dose is established
    s = replace(setup, horizon_days=90)
    arm = ArmPolicy_("hold", titration="hold")
    quiet = replace(
        _quiet_data(s, 0.0), leak_per_year=_sourced(0.0), migration_per_year=_sourced(0.0)
    )  # type: ignore[type-var]
    imp = implant(s, 0, 30)
    base = draw_pump_randomness(s.seed, imp.ks)
    day40 = replace(base, fault_e2=np.full((len(imp.ks), 2), 40 / 365.25))

    def run(data: object) -> EngineResult:
        return run_implanted(s, imp, arm, day40, data=data)  # type: ignore[arg-type]

    none = run(quiet)
    leak = run(replace(quiet, leak_per_year=_sourced(1.0)))  # type: ignore[type-var]
    mig = run(replace(quiet, migration_per_year=_sourced(1.0)))  # type: ignore[type-var]
    assert (leak.faults[:, 3] == 1).all()
    assert (mig.faults[:, 4] == 1).all()
    assert (leak.delivered_mcg < none.delivered_mcg).all()
    assert mig.withdrawal_days.sum() > none.withdrawal_days.sum()
    # withdrawal signs lead to a revision, which ends the fault: delivery resumes
    assert (mig.revisions[mig.withdrawal_days > 0] == 1).all()
    assert (mig.delivered_mcg > 0.5 * none.delivered_mcg).all()


def test_flex_delivers_the_daily_dose_with_a_different_day_profile(setup: TrialSetup) -> None:
    s = replace(setup, horizon_days=30)
    cont = ArmPolicy_("continuous", titration="hold")
    flex = replace(
        cont,
        name="flex",
        program=ProgramShape("flex", flex_steps=((0.0, 1.5), (8.0, 0.5), (20.0, 1.5))),
    )
    quiet = _quiet_data(s, 0.0)
    a = _cohort_run(s, 20, cont, quiet)
    b = _cohort_run(s, 20, flex, quiet)
    # same drug over the month (rate rounding to the pump's resolution aside), different state
    np.testing.assert_allclose(b.delivered_mcg, a.delivered_mcg, rtol=0.01)
    assert not np.allclose(b.final_x, a.final_x, rtol=1e-6)


def test_a_trial_of_alarm_volumes_shows_withdrawal_before_the_reservoir_is_empty(
    setup: TrialSetup,
) -> None:
    # refills on the alarm day itself: the lower the alarm, the longer below 4 mL first
    def arm(alarm_ml: float) -> ArmPolicy:
        return ArmPolicy_(
            f"alarm {alarm_ml:g} mL", refill_margin_days=0, low_reservoir_alarm_ml=alarm_ml
        )

    s = replace(setup, horizon_days=500)
    quiet = _quiet_data(setup, 0.0)
    plain = _without_low_residual(s, arm(1.0).pump)
    low = _run(s, 0, 30, arm(1.0), data=quiet)
    high = _run(s, 0, 30, arm(5.0), data=quiet)
    low_plain = _run(plain, 0, 30, arm(1.0), data=quiet)
    # withdrawal while the reservoir still holds drug: no patient's ran dry
    assert low.dry_events.sum() == 0
    assert low.withdrawal_days.sum() > low_plain.withdrawal_days.sum()
    # an alarm above the under-delivery volume prevents it
    assert high.withdrawal_days.sum() < low.withdrawal_days.sum()
