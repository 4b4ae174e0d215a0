"""docs/hazards.md names the test that proves each control: every one of them exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "docs" / "hazards.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_hazard_names_tests_that_exist() -> None:
    text = LOG.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"\| H\d+ \|", line)]
    assert len(rows) >= 20
    missing = []
    for row in rows:
        refs = REF.findall(row)
        assert refs, f"no test named for {row[:40]}"
        for file, name in refs:
            path = ROOT / file
            if not path.is_file() or name not in _tests_in(path):
                missing.append(f"{file}::{name}")
    assert missing == []


def test_hazard_ids_are_unique_and_in_order() -> None:
    ids = [int(m) for m in re.findall(r"^\| H(\d+) \|", LOG.read_text(encoding="utf-8"), re.M)]
    assert ids == list(range(1, len(ids) + 1))
