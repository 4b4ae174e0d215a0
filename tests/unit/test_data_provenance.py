"""Every number in the reviewed data files carries a unit, a status and a source."""

from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.provenance import STATUSES

DATA_FILES = sorted(
    p.name.removesuffix(".toml")
    for p in resources.files("itb.data").iterdir()
    if p.name.endswith(".toml")
)


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
