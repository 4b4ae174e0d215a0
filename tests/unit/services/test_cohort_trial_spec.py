"""The trial file of ``itb cohort``: valid files parse, every bad field is one line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.errors import InvalidValue
from itb.domain.pump import parse_presets
from itb.services.cohort_trial import TrialSpec, parse_trial

ROOT = Path(__file__).resolve().parents[3]
PRESETS = parse_presets(load_data_table("pumps"))
PRODUCTS = (50.0, 500.0, 1000.0, 2000.0)


def _parse(table: dict[str, Any]) -> TrialSpec:
    return parse_trial(table, presets=PRESETS, products_mcg_per_ml=PRODUCTS)


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
