"""The trial file of ``itb cohort``: valid files parse, every bad field is one line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from itb.bootstrap import catalog
from itb.domain.errors import InvalidValue
from itb.services.cohort_trial import TrialSpec, parse_trial

ROOT = Path(__file__).resolve().parents[3]


def _parse(table: dict[str, Any]) -> TrialSpec:
    return parse_trial(table, catalog())


def _example() -> dict[str, Any]:
    with (ROOT / "examples" / "trials" / "refill_margin.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_the_shipped_example_parses() -> None:
    spec = _parse(_example())
    assert spec.patients == 100_000
    assert spec.horizon_days == 1826
    assert [a.refill_margin_days for a in spec.arms] == [0, 14]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t["arm"].pop(), "arm"),
        (lambda t: t["arm"][0].update(colour="red"), "arm[0].colour"),
        (lambda t: t["arm"][1].update(low_reservoir_alarm_ml=9.0), "arm[1].low_reservoir_alarm_ml"),
        (lambda t: t["arm"][0].update(pump="codman_3000_30"), "arm[0].pump"),
        (lambda t: t["arm"][0].update(concentrations_mcg_per_ml=[750]), "arm[0].concentrations"),
        (lambda t: t["arm"][1].update(name=t["arm"][0]["name"]), "arm[1].name"),
        (lambda t: t["trial"].update(patients=0), "trial.patients"),
        (lambda t: t["trial"].update(horizon_years=11), "trial.horizon_years"),
        (
            lambda t: t.update(population={"cause_weights": {"flu": 1.0}}),
            "population.cause_weights.flu",
        ),
    ],
)
def test_bad_fields_are_named(edit: Any, field: str) -> None:
    table = _example()
    edit(table)
    with pytest.raises(InvalidValue) as info:
        _parse(table)
    message = str(info.value)
    assert field in message
    assert "\n" not in message


def _programs_example() -> dict[str, Any]:
    with (ROOT / "examples" / "trials" / "programs_and_boluses.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_program_shapes_and_boluses_parse() -> None:
    spec = _parse(_programs_example())
    continuous, flex, boluses = spec.arms
    assert continuous.program.kind == "continuous"
    assert flex.program.kind == "flex"
    assert flex.program.day_pieces() == ((0.0, 7.0, 0), (7.0, 21.0, 1), (21.0, 24.0, 2))
    # the flex steps deliver the daily dose: rates scaled to a mean of 1
    factors = flex.program.slot_factors()
    assert sum(
        f * (b - a) for (a, b, _), f in zip(flex.program.day_pieces(), factors, strict=True)
    ) == pytest.approx(24.0)
    assert boluses.bridge_bolus
    assert boluses.patient_bolus is not None
    assert boluses.patient_bolus.max_per_day == 3
    assert boluses.patient_bolus_request_hours == (8.0, 20.0)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda a: a.update(program="pulsed"), "arm[0].program"),
        (lambda a: a.update(program="flex", flex_steps=[[3, 1.0]]), "arm[0].flex_steps"),
        (lambda a: a.update(program="flex", flex_steps=[[0, 1.0], [25, 1.0]]), "arm[0].flex_steps"),
        (lambda a: a.update(program="flex", flex_steps=[[0, 1.0], [6, "x"]]), "arm[0].flex_steps"),
        (
            lambda a: a.update(program="flex", flex_steps=[[h, 1.0] for h in range(14)]),
            "arm[0].flex_steps",
        ),
        (
            lambda a: a.update(program="flex", flex_steps=[[0, 1.0], [6, 1000.0]]),
            "arm[0].flex_steps",
        ),
        (
            lambda a: a.update(program="periodic", periodic_interval_h=5),
            "arm[0].periodic_interval_h",
        ),
        (
            lambda a: a.update(program="periodic", periodic_duration_h=6),
            "arm[0].periodic_duration_h",
        ),
        (lambda a: a.update(program="periodic", periodic_fraction=0), "arm[0].periodic_fraction"),
        (lambda a: a.update(bridge_bolus="yes"), "arm[0].bridge_bolus"),
        (
            lambda a: a.update(patient_bolus={"dose_mcg": 50, "duration_h": 0.5, "lockout_h": 4}),
            "arm[0].patient_bolus.max_per_day",
        ),
        (
            lambda a: a.update(
                patient_bolus={"dose_mcg": 0, "duration_h": 0.5, "lockout_h": 4, "max_per_day": 2}
            ),
            "arm[0].patient_bolus.dose_mcg",
        ),
        (
            lambda a: a.update(
                patient_bolus={
                    "dose_mcg": 50,
                    "duration_h": 0.5,
                    "lockout_h": 4,
                    "max_per_day": 2,
                    "request_hours": [25],
                }
            ),
            "arm[0].patient_bolus.request_hours",
        ),
        (
            lambda a: a.update(
                pump="prometra_ii_20",
                patient_bolus={"dose_mcg": 50, "duration_h": 0.5, "lockout_h": 4, "max_per_day": 2},
            ),
            "arm[0].patient_bolus",
        ),
    ],
)
def test_bad_program_and_bolus_fields_are_named(edit: Any, field: str) -> None:
    table = _programs_example()
    edit(table["arm"][0])
    with pytest.raises(InvalidValue) as info:
        _parse(table)
    message = str(info.value)
    assert message.startswith(field), message
    assert "\n" not in message
