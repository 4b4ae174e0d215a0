"""patient.toml: every number sourced, every assumption says what it was calibrated to."""

from __future__ import annotations

import copy

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.errors import InvalidValue
from itb.domain.patient import (
    Cause,
    WeightForAge,
    sign_model_from_table,
    sourced_numbers,
    typical_parameters,
    typical_values_from_table,
)
from itb.simulation.population import Population, draw_cohort

TABLE = load_data_table("patient")


def test_every_assumption_has_a_note() -> None:
    numbers = sourced_numbers(TABLE)
    assert len(numbers) > 50
    missing = [path for path, s in numbers if s.assumed and not s.note.strip()]
    assert missing == []


def test_label_facts_are_marked_confirmed() -> None:
    numbers = dict(sourced_numbers(TABLE))
    assert not numbers["model.pd.response_threshold_mas_drop"].assumed
    assert not numbers["population.age_limits.min_age_years"].assumed
    assert numbers["model.pk.clearance_ml_per_h"].assumed  # secondary source only


def test_typical_parameters_scale_with_weight() -> None:
    adult = typical_parameters(TABLE, Cause.CEREBRAL_PALSY)
    child = typical_parameters(TABLE, Cause.CEREBRAL_PALSY, age_years=8.0, weight_kg=25.0)
    assert child.pk.clearance_ml_per_h < adult.pk.clearance_ml_per_h
    # Half-lives do not depend on size: every volume and clearance scales alike.
    ratio = child.pk.clearance_ml_per_h / adult.pk.clearance_ml_per_h
    assert child.pk.central_volume_ml / adult.pk.central_volume_ml == pytest.approx(ratio)


def test_typical_values_per_origin() -> None:
    typical = typical_values_from_table(TABLE)
    assert typical.ec50(Cause.SPINAL_CORD_INJURY) == typical.ec50_spinal_mcg_per_ml
    assert typical.ec50(Cause.CEREBRAL_PALSY) == typical.ec50_cerebral_mcg_per_ml
    assert typical.ec50(Cause.STROKE) == typical.ec50_cerebral_mcg_per_ml
    # people with multiple sclerosis are more sensitive than spinal cord injury [C97]
    factor = typical.ec50_cause_factor[Cause.MULTIPLE_SCLEROSIS]
    assert 0.0 < factor < 1.0
    assert typical.ec50(Cause.MULTIPLE_SCLEROSIS) == typical.ec50_spinal_mcg_per_ml * factor


def test_a_cause_factor_for_an_unknown_cause_is_refused() -> None:
    table = copy.deepcopy(dict(TABLE))
    table["model"]["pd"]["ec50_cause_factor"]["spinal_cord_injry"] = {
        "value": 0.5,
        "unit": "1",
        "status": "assumed",
        "source": "test",
        "note": "test",
    }
    with pytest.raises(InvalidValue) as err:
        typical_values_from_table(table)
    assert err.value.field == "model.pd.ec50_cause_factor.spinal_cord_injry"


def test_sign_model_orders_overdose_stages() -> None:
    signs = sign_model_from_table(TABLE)
    thresholds = [s.threshold for s in signs.overdose_stages]
    assert thresholds == sorted(thresholds)
    assert signs.pruritus_sign
    assert Cause.MULTIPLE_SCLEROSIS in signs.pruritus_excluded_causes


def test_a_number_without_source_is_refused() -> None:
    table = copy.deepcopy(TABLE)
    del table["model"]["pd"]["hill"]["source"]
    with pytest.raises(InvalidValue, match=r"hill\.source"):
        typical_values_from_table(table)


def test_unknown_cause_in_the_table_is_refused() -> None:
    table = copy.deepcopy(TABLE)
    table["model"]["withdrawal"]["pruritus_excluded_causes"] = ["gout"]
    with pytest.raises(InvalidValue, match="pruritus_excluded_causes"):
        sign_model_from_table(table)


def test_weight_for_age_follows_the_rule_of_thumb_and_refuses_the_implausible() -> None:
    w = WeightForAge.from_table(TABLE)
    assert w.expected_kg(6.0) == pytest.approx(2.0 * (6.0 + 4.0))
    assert w.expected_kg(40.0) == w.adult_median_kg
    assert w.expected_kg(10.0) < w.expected_kg(14.0) < w.expected_kg(18.0)
    lo, hi = w.allowed_kg(6.0)
    assert lo == pytest.approx(20.0 / w.plausible_factor)
    assert hi == pytest.approx(20.0 * w.plausible_factor)
    w.check(6.0, 25.0)
    w.check(40.0, 140.0)
    with pytest.raises(InvalidValue) as err:
        w.check(6.0, 120.0, field="patient.weight_kg")
    assert err.value.field == "patient.weight_kg"
    assert "at age 6" in str(err.value)


def test_the_population_never_draws_an_implausible_weight() -> None:
    population = Population.from_table(TABLE)
    w = WeightForAge.from_table(TABLE)
    for p in draw_cohort(population, 3000, 5):
        w.check(p.age_years, p.weight_kg)
