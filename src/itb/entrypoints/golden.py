"""Golden scenarios: the built-in scenario library checked against pinned key results.

Each built-in scenario (``itb/data/scenarios/<name>.toml``) has its expected
key results in ``tests/golden/expected/<name>.json``: the metrics object and
the key events (day, actor, kind). ``tests/golden/test_scenarios.py`` re-runs
every scenario on every test run and compares.

Regenerate the expectations deliberately, after a behaviour change you have
reviewed::

    python -m itb.entrypoints.golden --update        # rewrite every expected file
    python -m itb.entrypoints.golden                 # check only; exit 1 on a difference
    python -m itb.entrypoints.golden --update NAME   # just one scenario

Review the diff (``git diff tests/golden/expected``) before committing it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from itb import bootstrap
from itb.services.scenario import ScenarioResult
from itb.services.scenario_summary import key_events

__all__ = ["EXPECTED_DIR", "differences", "key_results", "main", "run_builtin"]

EXPECTED_DIR = Path("tests") / "golden" / "expected"
"""Where the expected files live, relative to the repository root."""

_REL = 1e-6
_ABS = 1e-3


def run_builtin(name: str) -> ScenarioResult:
    """Run built-in scenario ``name``."""
    return bootstrap.run_scenario_course(bootstrap.builtin_scenario(name))


def key_results(result: ScenarioResult) -> dict[str, Any]:
    """What is pinned for a scenario: its metrics and its key events."""
    return {
        "metrics": json.loads(json.dumps(result.metrics)),
        "key_events": [
            [round(e.t_h / 24.0, 3), e.actor, e.kind] for e in key_events(result, limit=60)
        ],
    }


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (numbers within 1e-6 relative or 1e-3)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{where}: missing (expected {expected[key]!r})")
            elif key not in expected:
                out.append(f"{where}: unexpected {actual[key]!r}")
            else:
                out.extend(differences(expected[key], actual[key], where))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items, expected {len(expected)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(differences(e, a, f"{path}[{i}]"))
        return out
    numbers = (int, float)
    if (
        isinstance(expected, numbers)
        and isinstance(actual, numbers)
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
    ):
        if math.isclose(expected, actual, rel_tol=_REL, abs_tol=_ABS):
            return []
        return [f"{path}: {actual!r}, expected {expected!r}"]
    return [] if expected == actual else [f"{path}: {actual!r}, expected {expected!r}"]


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Check (or with ``--update`` rewrite) the expected key results; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m itb.entrypoints.golden", description=__doc__)
    parser.add_argument("names", nargs="*", help="built-in scenarios (default: all)")
    parser.add_argument("--update", action="store_true", help="rewrite the expected files")
    parser.add_argument("--dir", type=Path, default=EXPECTED_DIR, help="expected files folder")
    args = parser.parse_args(argv)
    names = args.names or bootstrap.builtin_scenario_names()
    failed = 0
    for name in names:
        actual = key_results(run_builtin(name))
        path = args.dir / f"{name}.json"
        if args.update:
            args.dir.mkdir(parents=True, exist_ok=True)
            _write(path, actual)
            print(f"updated {path}")
            continue
        if not path.exists():
            print(f"{name}: no expected file {path} (run with --update)")
            failed += 1
            continue
        diffs = differences(json.loads(path.read_text(encoding="utf-8")), actual)
        if diffs:
            failed += 1
            print(f"{name}: {len(diffs)} difference(s)")
            for d in diffs[:20]:
                print(f"  {d}")
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
