"""Drug library: soft vs hard limits at their boundaries, concentrations per pump kind."""

from __future__ import annotations

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.drug_library import (
    DrugLibrary,
    LibraryDecision,
    check_bolus_against_library,
    check_dose_against_library,
    parse_drug_library,
    population_for,
)
from itb.domain.errors import HardLimitExceeded, InvalidValue, SoftLimitNeedsReason


@pytest.fixture(scope="module")
def lib() -> DrugLibrary:
    return __import__("itb.bootstrap").bootstrap.catalog().library


def _dose(
    lib: DrugLibrary,
    dose: float,
    reason: str | None = None,
    *,
    previous_dose_mcg_per_day: float | None = None,
) -> LibraryDecision:
    return check_dose_against_library(
        lib,
        "adult_spinal",
        2000.0,
        "peristaltic",
        dose,
        reason,
        previous_dose_mcg_per_day=previous_dose_mcg_per_day,
    )


def test_every_limit_has_unit_status_and_source(lib: DrugLibrary) -> None:
    for pop in lib.populations.values():
        for name in type(pop).__slots__:
            value = getattr(pop, name)
            if hasattr(value, "source"):
                assert "[C" in value.source, name
                assert value.unit
                assert value.status in ("confirmed", "assumed")


@pytest.mark.parametrize("dose", [12.0, 500.0, 1000.0])
def test_within_soft_limits_needs_no_reason(lib: DrugLibrary, dose: float) -> None:
    decision = _dose(lib, dose)
    assert decision.within_all_limits
    assert decision.override_reason is None
    assert {c.kind for c in decision.checks} == {"soft", "hard"}


def test_soft_max_passed_without_reason_is_refused(lib: DrugLibrary) -> None:
    with pytest.raises(SoftLimitNeedsReason) as info:
        _dose(lib, 1000.5)
    assert info.value.field == "dose_mcg_per_day"
    assert "1000 mcg/day" in str(info.value)


@pytest.mark.parametrize("reason", ["", "   "])
def test_blank_reason_is_no_reason(lib: DrugLibrary, reason: str) -> None:
    with pytest.raises(SoftLimitNeedsReason):
        _dose(lib, 1500.0, reason)


def test_soft_max_passed_with_reason_is_recorded(lib: DrugLibrary) -> None:
    decision = _dose(lib, 1500.0, "  tolerance documented, catheter checked ")
    assert decision.override_reason == "tolerance documented, catheter checked"
    assert [c.limit.value for c in decision.overridden] == [1000.0]
    assert not decision.within_all_limits


def test_reason_not_recorded_when_nothing_was_overridden(lib: DrugLibrary) -> None:
    assert _dose(lib, 400.0, "because").override_reason is None


@pytest.mark.parametrize("dose", [2000.0])
def test_hard_max_is_inclusive(lib: DrugLibrary, dose: float) -> None:
    assert _dose(lib, dose, "reason").value == dose


@pytest.mark.parametrize("reason", [None, "any reason at all"])
def test_hard_max_cannot_be_passed_even_with_a_reason(lib: DrugLibrary, reason: str | None) -> None:
    with pytest.raises(HardLimitExceeded) as info:
        _dose(lib, 2000.01, reason)
    assert info.value.field == "dose_mcg_per_day"
    assert "hard limit" in str(info.value)


def test_soft_min_below_needs_reason(lib: DrugLibrary) -> None:
    with pytest.raises(SoftLimitNeedsReason):
        _dose(lib, 11.9)
    assert _dose(lib, 0.0, "stopping for an MRI-incompatible procedure").overridden


@pytest.mark.parametrize(
    ("prev", "new", "outcome"),
    [
        (100.0, 130.0, "ok"),  # +30 %: at the spinal soft limit
        (100.0, 131.0, "soft"),
        (100.0, 140.0, "soft"),  # +40 %: at the hard limit, still needs a reason
        (100.0, 140.1, "hard"),
        (100.0, 80.0, "ok"),  # -20 %
        (100.0, 79.0, "soft"),
    ],
)
def test_daily_change_limits_spinal(
    lib: DrugLibrary, prev: float, new: float, outcome: str
) -> None:
    if outcome == "ok":
        assert _dose(lib, new, previous_dose_mcg_per_day=prev).within_all_limits
    elif outcome == "soft":
        with pytest.raises(SoftLimitNeedsReason, match=r"dose_(in|de)crease_pct"):
            _dose(lib, new, previous_dose_mcg_per_day=prev)
        assert _dose(lib, new, "documented", previous_dose_mcg_per_day=prev).overridden
    else:
        with pytest.raises(HardLimitExceeded, match="dose_increase_pct"):
            _dose(lib, new, "documented", previous_dose_mcg_per_day=prev)


@pytest.mark.parametrize("population", ["adult_cerebral", "child"])
def test_cerebral_and_child_change_limits_are_tighter(lib: DrugLibrary, population: str) -> None:
    ok = check_dose_against_library(
        lib, population, 500.0, "peristaltic", 115.0, previous_dose_mcg_per_day=100.0
    )
    assert ok.within_all_limits
    with pytest.raises(HardLimitExceeded):
        check_dose_against_library(
            lib, population, 500.0, "peristaltic", 121.0, "x", previous_dose_mcg_per_day=100.0
        )


@pytest.mark.parametrize("kind", ["peristaltic", "valve", "constant_flow"])
def test_screening_strength_never_goes_in_a_pump(lib: DrugLibrary, kind: str) -> None:
    with pytest.raises(HardLimitExceeded, match="screening boluses only"):
        check_dose_against_library(lib, "adult_spinal", 50.0, kind, 100.0, "reason")


@pytest.mark.parametrize("conc", [500.0, 1000.0, 2000.0])
def test_marketed_strengths_are_allowed_in_every_pump_kind(lib: DrugLibrary, conc: float) -> None:
    for kind in ("peristaltic", "valve", "constant_flow"):
        check_dose_against_library(lib, "adult_spinal", conc, kind, 300.0)


@pytest.mark.parametrize("conc", [3000.0, 50.0, 40.0, 0.0])
def test_concentration_outside_what_can_be_made_is_a_hard_stop(
    lib: DrugLibrary, conc: float
) -> None:
    with pytest.raises(HardLimitExceeded, match="concentration_mcg_per_ml"):
        check_dose_against_library(lib, "adult_spinal", conc, "peristaltic", 300.0, "reason")


@pytest.mark.parametrize("conc", [250.0, 750.0, 1500.0, 2000.0])
def test_a_saline_dilution_between_the_strengths_is_allowed(lib: DrugLibrary, conc: float) -> None:
    # other concentrations are made by dilution with preservative-free saline [C3][C15]
    decision = check_dose_against_library(lib, "adult_spinal", conc, "peristaltic", 300.0)
    assert decision.within_all_limits


def test_unknown_pump_kind_and_population(lib: DrugLibrary) -> None:
    with pytest.raises(InvalidValue, match="pump_kind"):
        check_dose_against_library(lib, "adult_spinal", 500.0, "syringe", 300.0)
    with pytest.raises(InvalidValue, match="population"):
        check_dose_against_library(lib, "adult", 500.0, "peristaltic", 300.0)
    with pytest.raises(InvalidValue, match="dose_mcg_per_day"):
        check_dose_against_library(lib, "adult_spinal", 500.0, "peristaltic", -1.0)


def test_bolus_limits(lib: DrugLibrary) -> None:
    assert check_bolus_against_library(lib, "adult_spinal", 50.0, None, 50.0).within_all_limits
    with pytest.raises(SoftLimitNeedsReason):
        check_bolus_against_library(lib, "adult_spinal", 50.0, None, 75.0)
    assert check_bolus_against_library(lib, "adult_spinal", 50.0, None, 100.0, "step 3").overridden
    with pytest.raises(HardLimitExceeded):
        check_bolus_against_library(lib, "adult_spinal", 50.0, None, 100.5, "step 4")
    with pytest.raises(SoftLimitNeedsReason):
        check_bolus_against_library(lib, "child", 50.0, None, 50.0)
    with pytest.raises(HardLimitExceeded):
        check_bolus_against_library(lib, "adult_spinal", 50.0, "peristaltic", 25.0)


@pytest.mark.parametrize(
    ("age", "origin", "population"),
    [
        (11.99, "spinal", "child"),
        (12.0, "spinal", "adult_spinal"),
        (40.0, "cerebral", "adult_cerebral"),
        (5.0, "cerebral", "child"),
    ],
)
def test_population_for(lib: DrugLibrary, age: float, origin: str, population: str) -> None:
    assert population_for(lib, age_years=age, origin=origin) == population


def test_soft_above_hard_in_data_is_refused() -> None:
    table = load_data_table("drug_library")
    table["populations"]["child"]["daily_dose_soft_max_mcg_per_day"]["value"] = 5000.0
    cat = __import__("itb.bootstrap").bootstrap.catalog()
    with pytest.raises(InvalidValue, match="daily_dose_soft_max"):
        parse_drug_library(table, drugs=cat.drugs, titration=cat.titration, screening=cat.screening)
