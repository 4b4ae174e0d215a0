"""Golden scenarios: every built-in scenario re-run and checked, by numbers and by behaviour.

Pinned key results live in tests/golden/expected/<name>.json; regenerate them
deliberately with ``python -m itb.entrypoints.golden --update`` and review the diff.
The clinical assertions below must hold whatever the pinned numbers say.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from itb import bootstrap
from itb.entrypoints.golden import differences, key_results, run_builtin
from itb.services.scenario import ScenarioResult
from itb.simulation.engine import Sample, TimelineEntry

EXPECTED = Path(__file__).parent / "expected"
NAMES = bootstrap.builtin_scenario_names()


@cache
def result(name: str) -> ScenarioResult:
    return run_builtin(name)


def first(r: ScenarioResult, kind: str, actor: str | None = None) -> TimelineEntry:
    return next(e for e in r.timeline if e.kind == kind and (actor is None or e.actor == actor))


def samples_between(r: ScenarioResult, t0_h: float, t1_h: float) -> list[Sample]:
    return [s for s in r.samples if t0_h <= s.t_h < t1_h]


def first_sample(r: ScenarioResult, pred: Callable[[Sample], bool]) -> Sample:
    return next(s for s in r.samples if pred(s))


def test_every_scenario_has_pinned_results_and_a_behaviour_check() -> None:
    assert sorted(p.stem for p in EXPECTED.glob("*.json")) == NAMES
    assert set(CHECKS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_key_results_match_the_pinned_expectation(name: str) -> None:
    expected = json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))
    diffs = differences(expected, key_results(result(name)))
    assert not diffs, (
        f"{name} changed (review, then python -m itb.entrypoints.golden --update): "
        + "; ".join(diffs[:10])
    )


# ------------------------------------------------------ clinical behaviour


def check_stable_maintenance(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["days_with_withdrawal_signs"] == 0
    assert m["days_with_overdose_signs"] == 0
    assert m["time_in_therapeutic_range_pct"] >= 95.0
    assert m["refill_discrepancies_flagged"] == 0
    assert m["alarms_by_kind"] == {}, "refills come before the low-reservoir alarm"
    assert m["refills"] >= 8
    assert all(s.reservoir_actual_ml > 0 for s in r.samples)


def check_titration_from_screening(r: ScenarioResult) -> None:
    m = r.metrics
    assert r.screening is not None
    assert r.screening.effective_dose_mcg is not None
    start = 2 * r.screening.effective_dose_mcg  # 8-hour rule: short effect -> 2 x per 24 h
    assert r.screening.effect_duration_h is not None
    assert r.screening.effect_duration_h <= 8
    assert m["initial_dose_mcg_per_day"] == pytest.approx(start)
    changes = r.run.clinic.dose_changes
    assert changes
    assert changes[0].t_h >= 24.0, "no increase in the first 24 h"
    for a, b in itertools.pairwise(changes):
        assert b.t_h - a.t_h >= 24.0, "at most one change per 24 h"
    for c in changes:
        assert 1.10 - 1e-9 <= c.dose_mcg_per_day / c.previous_mcg_per_day <= 1.40 + 1e-9
    assert m["titration_days"] is not None
    assert 1 <= m["titration_days"] <= 30
    end = m["titration_days"] * 24.0
    mas_at_end = next(s.mas for s in r.samples if s.t_h >= end)
    assert mas_at_end <= r.scenario.protocol.goal_mas
    assert m["days_with_overdose_signs"] == 0
    assert m["days_with_withdrawal_signs"] == 0
    # Tolerance develops: the dose keeps rising at the maintenance check-ups.
    assert m["final_dose_mcg_per_day"] > changes[0].dose_mcg_per_day


def check_missed_refill_withdrawal(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["missed_refills"] == 1
    empty = first_sample(r, lambda s: s.t_h > 24 and s.reservoir_actual_ml <= 1e-9)
    withdrawal = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert withdrawal.t_h > empty.t_h, "withdrawal follows the empty reservoir"
    assert withdrawal.t_h - empty.t_h <= 24.0, "early signs within a day (T14)"
    assert not [s for s in r.samples if s.t_h < empty.t_h and s.withdrawal_stage > 0]
    visit = first(r, "urgent_visit")
    assert visit.t_h > withdrawal.t_h
    refill_after = next(e for e in r.timeline if e.kind == "refill" and e.t_h >= visit.t_h)
    assert refill_after.t_h == visit.t_h
    # The drug comes back and the signs resolve.
    later = samples_between(r, refill_after.t_h + 7 * 24, r.samples[-1].t_h)
    assert later
    assert all(s.withdrawal_stage == 0 for s in later)
    assert m["alarms_by_kind"].get("empty_reservoir") == 1


CHECKS: dict[str, Callable[[ScenarioResult], None]] = {
    "stable_maintenance": check_stable_maintenance,
    "titration_from_screening": check_titration_from_screening,
    "missed_refill_withdrawal": check_missed_refill_withdrawal,
}


@pytest.mark.parametrize("name", NAMES)
def test_clinical_behaviour(name: str) -> None:
    CHECKS[name](result(name))


def test_same_seed_gives_byte_identical_metrics(tmp_path: Path) -> None:
    name = "missed_refill_withdrawal"
    a = bootstrap.write_course_report(run_builtin(name), tmp_path / "a")
    b = bootstrap.write_course_report(run_builtin(name), tmp_path / "b")
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert (a / "timeline.csv").read_bytes() == (b / "timeline.csv").read_bytes()
    assert (a / "trajectories.csv").read_bytes() == (b / "trajectories.csv").read_bytes()
