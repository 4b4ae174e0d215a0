"""Population reproducibility and agreement of the cohort engine with the domain engine."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.patient import PatientState, advance, observe
from itb.simulation import cohort as vec
from itb.simulation.population import Population, draw_cohort, draw_patient, patient_seed_sequence

POP = Population.from_table(load_data_table("patient"))
SEEDS = st.integers(0, 2**63 - 1)


@settings(max_examples=40)
@given(seed=SEEDS, k=st.integers(0, 30), extra=st.integers(1, 5))
def test_patient_k_alone_equals_patient_k_in_the_cohort(seed: int, k: int, extra: int) -> None:
    alone = draw_patient(POP, seed, k)
    assert draw_cohort(POP, k + extra, seed)[k] == alone


@settings(max_examples=20)
@given(seed=SEEDS, n=st.integers(1, 10))
def test_patient_streams_are_the_spawned_children(seed: int, n: int) -> None:
    children = np.random.SeedSequence(seed).spawn(n)
    for k, child in enumerate(children):
        assert (patient_seed_sequence(seed, k).generate_state(4) == child.generate_state(4)).all()


@settings(max_examples=25)
@given(
    seed=SEEDS,
    steps=st.lists(st.tuples(st.floats(0.01, 500.0), st.floats(0.0, 80.0)), min_size=1, max_size=6),
)
def test_cohort_engine_agrees_with_the_domain(seed: int, steps: list[tuple[float, float]]) -> None:
    patients = draw_cohort(POP, 4, seed)
    arrays = vec.CohortArrays.from_patients(patients)
    vstate = vec.CohortState.zeros(arrays.n)
    states = [PatientState() for _ in patients]
    for dt, rate in steps:
        rates = rate * np.arange(1, arrays.n + 1) / arrays.n
        vstate = vec.advance(arrays, vstate, rates, dt)
        states = [
            advance(p, s, float(r), dt) for p, s, r in zip(patients, states, rates, strict=True)
        ]
    vobs = vec.observe(arrays, vstate)
    for i, (p, s) in enumerate(zip(patients, states, strict=True)):
        # Relative 1e-9, with an absolute floor of 1e-12 of the amount delivered (the
        # scale of every state): the two engines round differently near zero.
        scale = max(s.delivered_mcg, 1e-9)
        v1 = p.pk.central_volume_ml
        floor = 1e-12 * np.array([scale, scale, scale / v1, scale / v1, scale / v1])
        assert (np.abs(vstate.x[i] - np.array(s.vector)) <= 1e-9 * np.abs(s.vector) + floor).all()
        o = observe(p, s)
        assert vobs.mas[i] == np.float64(o.mas) or abs(vobs.mas[i] - o.mas) < 1e-9
        assert abs(vobs.psfs[i] - o.psfs) < 1e-9
        assert int(vobs.withdrawal_stage[i]) == int(o.withdrawal_stage)
        assert int(vobs.overdose_stage[i]) == o.overdose_stage
        names = [a.name for a in p.signs.adverse_reactions]
        assert [n for n, x in zip(names, vobs.adverse[i], strict=True) if x] == list(
            o.adverse_reactions
        )
