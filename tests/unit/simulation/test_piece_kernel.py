"""The cohort engine's compiled kernel: the patients' modes and the dead space's slots.

Agreement of whole courses with the single-patient domain path is
tests/property/test_engines_agree.py; these check the kernel's own set-up and limits.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from itb import bootstrap
from itb.domain.errors import InvalidValue
from itb.domain.patient import modes
from itb.services.cohort_trial import default_arm
from itb.simulation.cohort import CohortArrays, CohortState, observe
from itb.simulation.cohort_trial import implant
from itb.simulation.piece_kernel import day_end_observation, modal_forms, propagators
from itb.simulation.population import Population, draw_patient
from itb.simulation.vector_engine import MAX_SLUGS, _ArmRun, draw_pump_randomness

CATALOG = bootstrap.catalog()
POPULATION = Population.from_table(CATALOG.patient_table)


def test_the_modes_rebuild_every_drawn_patients_system_and_match_the_domain() -> None:
    patients = [draw_patient(POPULATION, 7, k) for k in range(400)]
    m = CohortArrays.from_patients(patients).system_matrices()
    lam, vec, vinv, well = modal_forms(m)
    assert well.all()  # the population's rates are distinct: every patient goes modal
    rebuilt = np.einsum("nij,nj,njk->nik", vec, lam, vinv)
    scale = np.abs(m).max(axis=(1, 2), keepdims=True)
    assert np.abs(rebuilt - m).max() <= 1e-12 * scale.max()
    for k, p in enumerate(patients[:50]):
        domain = modes(p)
        assert domain is not None
        assert sorted(lam[k]) == pytest.approx(sorted(domain.rates), rel=1e-12)


def test_whole_piece_factors_are_the_matrix_exponential() -> None:
    patients = [draw_patient(POPULATION, 3, k) for k in range(20)]
    m = CohortArrays.from_patients(patients).system_matrices()
    lam, _vec, vinv, _well = modal_forms(m)
    lengths = np.array([0.25, 7.0, 24.0])
    phi, gamma = propagators(m, lengths)
    x0 = np.linspace(0.5, 3.0, 5)
    for j, dt in enumerate(lengths):
        # in modal coordinates a piece is exp(lambda dt) and dt phi1(lambda dt) V^-1 b
        z = lam * dt
        modal_x = np.einsum("nij,nj->ni", np.linalg.inv(vinv), np.exp(z) * (vinv @ x0))
        modal_g = np.einsum("nij,nj->ni", np.linalg.inv(vinv), np.expm1(z) / lam * vinv[:, :, 0])
        exact_x = phi[:, j] @ x0
        np.testing.assert_allclose(modal_x, exact_x, rtol=1e-10, atol=1e-12 * abs(x0).max())
        np.testing.assert_allclose(
            modal_g, gamma[:, j], rtol=1e-10, atol=1e-12 * np.abs(gamma[:, j]).max()
        )


def test_coinciding_rates_are_not_stepped_in_modes() -> None:
    p = draw_patient(POPULATION, 5, 0)
    same = replace(p, adaptation=replace(p.adaptation, dependence_rate_per_h=p.pd.ke0_per_h))
    m = CohortArrays.from_patients([p, same]).system_matrices()
    assert list(modal_forms(m)[3]) == [True, False]


def test_more_concentrations_than_the_dead_space_holds_is_refused() -> None:
    """The kernel keeps at most MAX_SLUGS concentrations per dead space; one more is refused
    with the arm's field named, not written past the end."""
    setup = replace(bootstrap.cohort_setup(), seed=2, patients=4, horizon_days=3)
    imp = implant(setup, 0, 4)
    arm = default_arm(CATALOG, "slots")
    run = _ArmRun(
        imp.cohort,
        imp.ages_years,
        imp.initial_dose_mcg_per_day,
        draw_pump_randomness(setup.seed, imp.ks),
        policy=arm,
        preset=setup.presets[arm.pump],
        catheter_ml_per_cm=setup.catheter_ml_per_cm[arm.catheter],
        rules=setup.rules,
        goal=setup.goal,
        dose_hard_max_mcg_per_day=setup.dose_hard_max_mcg_per_day,
        data=setup.data,
        tolerance=setup.tolerance,
        horizon_days=3,
        dose_snapshot_day=1,
        complications=setup.complications,
        record_events=False,
        trace=False,
    )
    # every slot holds its own strength (tip first, more than a day's flow at the tip),
    # and the reservoir a seventh
    run.slug_v[:] = 0.1
    run.slug_v[:, 0] = 10.0
    run.slug_c[:] = np.arange(1.0, MAX_SLUGS + 1.0) * 100.0
    run.conc[:] = 5000.0
    with pytest.raises(InvalidValue, match="arm concentrations"):
        run._run_pieces(0.0, 0, len(run.day_pieces))


def test_the_day_end_observation_is_the_observation_map() -> None:
    """The kernel's compiled copy of the observation map's MAS and stages equals
    itb.simulation.cohort.observe (itself checked against the domain's) on states spread
    from drug-naive to overdose and deep withdrawal."""
    patients = [draw_patient(POPULATION, 11, k) for k in range(300)]
    cohort = CohortArrays.from_patients(patients)
    rng = np.random.default_rng(4)
    ec50 = cohort.ec50_mcg_per_ml
    x = np.zeros((300, 5))
    x[:, 0] = rng.uniform(0.0, 50.0, 300)
    x[:, 2] = ec50 * rng.choice([0.0, 0.3, 1.0, 3.0, 30.0, 300.0], 300) * rng.uniform(0.5, 2, 300)
    x[:, 4] = ec50 * rng.uniform(-1.0, 4.0, 300)
    therapy = rng.choice([0.0, 5.0, 2000.0, 90_000.0], 300)
    mas, stage, od = day_end_observation(cohort, x, therapy)
    ref = observe(cohort, CohortState(0.0, x, np.ones(300), therapy))
    np.testing.assert_allclose(mas, ref.mas, rtol=1e-13, atol=1e-13)
    assert (stage == ref.withdrawal_stage).all()
    assert (od == ref.overdose_stage).all()
    assert set(stage.tolist()) == {0, 1, 2}
    assert len(set(od.tolist())) >= 3
