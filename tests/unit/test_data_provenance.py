"""Every number in the reviewed data files carries a unit, a status and a source."""

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from itb.adapters.datafiles import data_table_names, load_data_table, read_raw_data_table
from itb.domain.provenance import STATUSES

DATA_FILES = list(data_table_names())


def _numeric_tables(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key, value in node.items():
        where = f"{path}.{key}"
        if isinstance(value, Mapping):
            if "value" in value and isinstance(value["value"], (int, float)):
                yield where, value
            else:
                yield from _numeric_tables(value, where)


def test_there_are_reviewed_data_files() -> None:
    assert {"pumps", "catheters", "drugs", "refill"} <= set(DATA_FILES)


@pytest.mark.parametrize("name", DATA_FILES)
def test_every_number_has_unit_status_and_source(name: str) -> None:
    table = load_data_table(name)
    numbers = list(_numeric_tables(table, name))
    for where, entry in numbers:
        assert entry.get("status") in STATUSES, where
        assert isinstance(entry.get("unit"), str), where
        assert entry["unit"], where
        assert isinstance(entry.get("source"), str), where
        assert entry["source"], where


def test_bare_numbers_are_not_hidden_in_pump_presets() -> None:
    for key, preset in load_data_table("pumps").items():
        bare = [k for k, v in preset.items() if isinstance(v, (int, float))]
        assert bare == [], f"{key}: {bare} need value/unit/status/source"


# ------------------------------------------------------------ one home per fact

_TAG = re.compile(r"\[([CDF]\d+[a-z]?)\]")

DISTINCT_FACTS: dict[frozenset[str], str] = {
    frozenset({"screening.protocol.min_interval_h", "titration.titration.min_interval_h"}): (
        "24 h between two screening boluses is not the titration rule of one change per 24 h"
    ),
    frozenset({"screening.protocol.min_interval_h", "titration.initial.no_increase_h"}): (
        "24 h between screening boluses is not the first 24 h without an increase after implant"
    ),
    frozenset({"screening.protocol.observation_max_h", "titration.initial.long_effect_h"}): (
        "observing 4-8 h after a bolus is not the 8-hour rule for the starting dose"
    ),
    frozenset(
        {"candidacy.thresholds.max_implant_depth_cm", "patient.population.baseline.mas_min"}
    ): ("a 2.5 cm implant depth and a lowest baseline MAS of 2.5 share a value by chance"),
    frozenset(
        {
            "drug_library.populations.adult_spinal.daily_dose_soft_min_mcg_per_day",
            "titration.titration.pediatric_age_below_years",
        }
    ): "12 mcg/day and 12 years share a value by chance",
    frozenset({"patient.model.pd.mas_floor", "protocol.goal.therapeutic_mas_low"}): (
        "the tone the drug cannot remove (a model parameter) is not the clinic's lower bound"
    ),
    frozenset({"patient.model.pd.mas_plus_code", "protocol.goal.goal_mas"}): (
        "the numeric code of MAS grade 1+ is not the clinic's goal"
    ),
    frozenset(
        {"patient.validation.screening_dose_step_mcg", "screening.sequences.reduced.dose_1_mcg"}
    ): "the 25 mcg step between screening doses is not the 25 mcg reduced first dose",
}
"""Entries that share a value and a source but state different facts, and why."""


def _facts() -> Iterator[tuple[str, str, float, frozenset[str]]]:
    """(file, path, value normalised to a fraction for %, source tags) of every number."""
    for name in DATA_FILES:
        for where, entry in _numeric_tables(read_raw_data_table(name), name):
            value = float(entry["value"])
            if "%" in str(entry.get("unit", "")):
                value /= 100.0
            yield name, where, round(value, 9), frozenset(_TAG.findall(entry.get("source", "")))


def test_no_fact_is_defined_in_two_data_files() -> None:
    """A number with the same value and the same key name, or the same value and a shared
    source, in two data files is one fact written twice: one file must refer to the other
    (``{ same_as = "file.section.key" }``)."""
    facts = list(_facts())
    clashes = []
    for i, (f1, w1, v1, t1) in enumerate(facts):
        for f2, w2, v2, t2 in facts[i + 1 :]:
            if f1 == f2 or v1 != v2:
                continue
            same_key = w1.rsplit(".", 1)[-1] == w2.rsplit(".", 1)[-1]
            if (same_key or t1 & t2) and frozenset({w1, w2}) not in DISTINCT_FACTS:
                clashes.append(f"{w1} = {w2} = {v1:g}")
    assert clashes == [], clashes


def test_references_name_a_sourced_entry_and_resolve() -> None:
    for name in DATA_FILES:
        raw = read_raw_data_table(name)
        refs = list(_references(raw, name))
        resolved = load_data_table(name)
        for where, target in refs:
            node: Any = resolved
            for part in where.split(".")[1:]:
                node = node[part]
            assert node["status"] in STATUSES, where
            assert node["note"].startswith(f"same fact as {target}"), where


def _references(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
    for key, value in node.items():
        if isinstance(value, Mapping):
            if isinstance(value.get("same_as"), str):
                yield f"{path}.{key}", value["same_as"]
            else:
                yield from _references(value, f"{path}.{key}")
