"""Population draws: inside their documented limits, reproducible from the seed."""

from __future__ import annotations

import numpy as np

from itb.adapters.datafiles import load_data_table
from itb.domain.patient import Cause
from itb.simulation.population import Population, draw_cohort, draw_patient

POP = Population.from_table(load_data_table("patient"))


def test_draws_respect_the_documented_limits() -> None:
    cohort = draw_cohort(POP, 400, seed=7)
    assert all(POP.min_age_years <= p.age_years <= POP.max_age_years for p in cohort)
    assert all(2.5 <= p.baseline_mas <= 4.0 for p in cohort)
    assert all(0.0 <= p.baseline_psfs <= 4.0 for p in cohort)
    assert all(p.weight_kg > 0 for p in cohort)
    assert {p.cause for p in cohort} == set(Cause)
    assert not any(
        p.risk.sci_at_or_above_t6 for p in cohort if p.cause is not Cause.SPINAL_CORD_INJURY
    )


def test_same_seed_same_patients_other_seed_other_patients() -> None:
    assert draw_cohort(POP, 5, seed=11) == draw_cohort(POP, 5, seed=11)
    assert draw_cohort(POP, 5, seed=11) != draw_cohort(POP, 5, seed=12)


def test_refractory_share_is_near_the_documented_fraction() -> None:
    cohort = draw_cohort(POP, 2000, seed=3)
    share = np.mean([p.adaptation.refractory for p in cohort])
    expected = POP.variability["refractory_fraction"]
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / 2000)


def test_children_are_lighter_than_adults() -> None:
    cohort = draw_cohort(POP, 600, seed=5)
    kids = [p.weight_kg for p in cohort if p.age_years < 10]
    adults = [p.weight_kg for p in cohort if p.age_years >= 18]
    assert kids
    assert adults
    assert np.median(kids) < np.median(adults) / 2


def test_patient_k_of_a_cohort_equals_patient_k_alone() -> None:
    cohort = draw_cohort(POP, 6, seed=99)
    assert draw_patient(POP, 99, 4) == cohort[4]
    assert draw_cohort(POP, 2, seed=99, start=4) == cohort[4:6]
