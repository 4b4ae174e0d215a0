"""Label titration rules at and around their boundaries."""

from __future__ import annotations

import copy

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.titration import (
    Action,
    Assessment,
    Phase,
    TitrationRules,
    TitrationStep,
    initial_daily_dose,
    parse_titration_rules,
    plan_next_step,
    rule_group,
)
from itb.domain.errors import InvalidValue

RULES = parse_titration_rules(load_data_table("titration"))


def _next(**kw: object) -> TitrationStep:
    args: dict[str, object] = {
        "origin": "spinal",
        "age_years": 40.0,
        "phase": Phase.TITRATION,
        "current_dose_mcg_per_day": 100.0,
        "assessment": Assessment.INADEQUATE,
        "hours_since_implant": 72.0,
        "hours_since_last_change": 24.0,
    }
    args.update(kw)
    return plan_next_step(RULES, **args)  # type: ignore[arg-type]


# Initial dose: the 8-hour rule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration_h", "multiplier"), [(4.0, 2.0), (8.0, 2.0), (8.01, 1.0), (12.0, 1.0)]
)
def test_initial_dose_follows_the_eight_hour_rule(duration_h: float, multiplier: float) -> None:
    step = initial_daily_dose(RULES, 50.0, duration_h)
    assert step.action is Action.START
    assert step.dose_mcg_per_day == pytest.approx(50.0 * multiplier)
    assert step.rate_mcg_per_h == pytest.approx(50.0 * multiplier / 24.0)
    assert "[C12]" in step.source
    assert step.reason


def test_initial_dose_scales_with_the_effective_screening_dose() -> None:
    assert initial_daily_dose(RULES, 75.0, 6.0).dose_mcg_per_day == pytest.approx(150.0)


@pytest.mark.parametrize(("dose", "duration"), [(0.0, 6.0), (-50.0, 6.0), (50.0, -1.0)])
def test_initial_dose_refuses_bad_input(dose: float, duration: float) -> None:
    with pytest.raises(InvalidValue):
        initial_daily_dose(RULES, dose, duration)


# Timing ------------------------------------------------------------------------------------


def test_no_increase_in_the_first_24_h() -> None:
    step = _next(hours_since_implant=23.99, hours_since_last_change=23.99)
    assert step.action is Action.HOLD
    assert step.dose_mcg_per_day == 100.0
    assert "24 h" in step.reason


def test_increase_allowed_from_24_h() -> None:
    assert _next(hours_since_implant=24.0, hours_since_last_change=24.0).action is Action.INCREASE


def test_at_most_one_change_per_24_h() -> None:
    assert _next(hours_since_last_change=23.9).action is Action.HOLD
    assert _next(hours_since_last_change=24.0).action is Action.INCREASE


def test_decrease_for_side_effects_is_allowed_at_once() -> None:
    step = _next(
        assessment=Assessment.SIDE_EFFECTS, hours_since_implant=2.0, hours_since_last_change=1.0
    )
    assert step.action is Action.DECREASE
    assert step.dose_mcg_per_day < 100.0


def test_adequate_response_holds_the_dose() -> None:
    step = _next(assessment=Assessment.ADEQUATE)
    assert step.action is Action.HOLD
    assert step.change_fraction == 0.0


# Step sizes by group and phase --------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "age", "phase", "low", "high"),
    [
        ("spinal", 40.0, Phase.TITRATION, 0.10, 0.30),
        ("cerebral", 40.0, Phase.TITRATION, 0.05, 0.15),
        ("spinal", 8.0, Phase.TITRATION, 0.05, 0.15),
        ("spinal", 40.0, Phase.MAINTENANCE, 0.10, 0.40),
        ("cerebral", 40.0, Phase.MAINTENANCE, 0.05, 0.20),
        ("spinal", 8.0, Phase.MAINTENANCE, 0.05, 0.20),
    ],
)
def test_increase_ranges_at_and_beyond_their_edges(
    origin: str, age: float, phase: Phase, low: float, high: float
) -> None:
    for fraction in (low, high):
        step = _next(origin=origin, age_years=age, phase=phase, requested_change_fraction=fraction)
        assert step.action is Action.INCREASE
        assert step.dose_mcg_per_day == pytest.approx(100.0 * (1 + fraction))
        assert step.allowed_min_mcg_per_day == pytest.approx(100.0 * (1 + low))
        assert step.allowed_max_mcg_per_day == pytest.approx(100.0 * (1 + high))
    for fraction in (low - 0.001, high + 0.001):
        with pytest.raises(InvalidValue, match="requested_change_fraction") as err:
            _next(origin=origin, age_years=age, phase=phase, requested_change_fraction=fraction)
        assert "allowed" in str(err.value)


@pytest.mark.parametrize("fraction", [0.10, 0.15, 0.20])
def test_decrease_range_inside(fraction: float) -> None:
    step = _next(assessment=Assessment.SIDE_EFFECTS, requested_change_fraction=fraction)
    assert step.dose_mcg_per_day == pytest.approx(100.0 * (1 - fraction))
    assert step.change_fraction == pytest.approx(-fraction)


@pytest.mark.parametrize("fraction", [0.099, 0.201])
def test_decrease_range_outside(fraction: float) -> None:
    with pytest.raises(InvalidValue):
        _next(assessment=Assessment.SIDE_EFFECTS, requested_change_fraction=fraction)


def test_default_steps_lie_inside_their_ranges() -> None:
    for phase in Phase:
        for origin, age in (("spinal", 40.0), ("cerebral", 40.0), ("spinal", 6.0)):
            step = _next(origin=origin, age_years=age, phase=phase)
            assert step.allowed_min_mcg_per_day <= step.dose_mcg_per_day
            assert step.dose_mcg_per_day <= step.allowed_max_mcg_per_day


def test_children_follow_paediatric_rules_below_the_age_limit() -> None:
    limit = RULES.pediatric_age_below_years.value
    assert rule_group(RULES, "spinal", limit - 0.01) == "pediatric"
    assert rule_group(RULES, "spinal", limit) == "spinal"
    assert rule_group(RULES, "cerebral", limit) == "cerebral"


# Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"origin": "lumbar"}, "origin"),
        ({"current_dose_mcg_per_day": 0.0}, "current_dose_mcg_per_day"),
        ({"current_dose_mcg_per_day": -5.0}, "current_dose_mcg_per_day"),
        ({"hours_since_implant": -1.0, "hours_since_last_change": 0.0}, "hours_since_implant"),
        ({"hours_since_last_change": 100.0}, "hours_since_last_change"),
        ({"age_years": 0.0}, "age_years"),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as err:
        _next(**kw)
    assert err.value.field == field
    assert "\n" not in str(err.value)


def test_every_step_has_reason_and_source() -> None:
    for assessment in Assessment:
        for t in (12.0, 48.0):
            step = _next(assessment=assessment, hours_since_implant=t, hours_since_last_change=t)
            assert isinstance(step, TitrationStep)
            assert step.reason
            assert step.source
            assert step.status in ("confirmed", "assumed")


def test_malformed_rules_are_refused() -> None:
    table = copy.deepcopy(load_data_table("titration"))
    table["titration"]["spinal_default_increase"]["value"] = 0.5
    with pytest.raises(InvalidValue, match=r"titration\.spinal"):
        parse_titration_rules(table)
    assert isinstance(RULES, TitrationRules)
