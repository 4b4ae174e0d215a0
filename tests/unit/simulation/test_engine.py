"""The course engine: event ordering, exactness whatever the sampling grid, what the clinic sees."""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from typing import Any

import pytest

from itb import bootstrap
from itb.domain.errors import InvalidValue
from itb.services.catalog import Catalog
from itb.services.scenario import ScenarioResult, parse_scenario, run_scenario
from itb.simulation.clinic import ClinicReading, Exam
from itb.simulation.engine import Environment
from itb.simulation.events import Priority


@cache
def _catalog() -> Catalog:
    return bootstrap.catalog()


def _scenario(**changes: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "unit",
        "seed": 5,
        "horizon_days": 60,
        "patient": {"cause": "spinal_cord_injury", "age_years": 40, "baseline_mas": 3.5},
        "pump": {
            "preset": "synchromed_ii_20",
            "accuracy_factor": 1.0,
            "implanted_at": "2026-01-05T09:00:00",
            "timezone": "Europe/London",
        },
        "catheter": {"family": "ascenda_like", "implanted_length_cm": 60.0},
        "drug": {"concentration_mcg_per_ml": 500.0},
        "protocol": {"screening": {"effective_dose_mcg": 50.0, "effect_duration_h": 6.0}},
        "events": [
            {"kind": "fault", "day": 20, "fault": "disconnection"},
            {
                "kind": "access_port_injection",
                "day": 45.3,
                "volume_ml": 0.5,
                "concentration_mcg_per_ml": 500.0,
                "acknowledge_overdose_hazard": True,
            },
        ],
        "output": {"sample_every_h": 1.0},
    }
    for key, value in changes.items():
        if key == "protocol":
            table[key] = value
        elif isinstance(value, dict) and isinstance(table.get(key), dict):
            table[key] = {**table[key], **value}
        else:
            table[key] = value
    return table


def _run(table: dict[str, Any], sample_every_h: float | None = None) -> ScenarioResult:
    return run_scenario(parse_scenario(table), _catalog(), sample_every_h=sample_every_h)


# ------------------------------------------------------------------ ordering


def test_simultaneous_events_resolve_by_priority_then_scheduling_order() -> None:
    env = Environment()
    seen: list[str] = []
    for name, priority in [
        ("symptom check", Priority.PATIENT),
        ("refill", Priority.CLINIC),
        ("alarm-causing fault", Priority.DEVICE),
        ("dose change", Priority.CLINIC),
        ("missed refill", Priority.SCENARIO),
    ]:
        env.schedule(10.0, priority, name, lambda t, n=name: seen.append(n))
    env.schedule(5.0, Priority.PATIENT, "earlier", lambda t: seen.append("earlier"))
    env.run(20.0, lambda t: None)
    assert seen == [
        "earlier",
        "alarm-causing fault",
        "missed refill",
        "refill",
        "dose change",
        "symptom check",
    ]


def test_same_events_scheduled_again_resolve_the_same_way() -> None:
    def order() -> list[int]:
        env = Environment()
        seen: list[int] = []
        for i in range(20):
            env.schedule(float(i % 3), Priority(i % 4), "x", lambda t, i=i: seen.append(i))
        env.run(10.0, lambda t: None)
        return seen

    assert order() == order()


def test_cancelled_actions_do_not_run_and_the_world_moves_before_each_action() -> None:
    env = Environment()
    moved: list[float] = []
    ran: list[float] = []
    handle = env.schedule(3.0, Priority.CLINIC, "cancelled", ran.append)
    env.schedule(4.0, Priority.CLINIC, "kept", ran.append)
    env.cancel(handle)
    env.run(6.0, moved.append)
    assert ran == [4.0]
    assert moved == [4.0, 6.0]


def test_actions_can_schedule_at_the_present_instant_but_not_in_the_past() -> None:
    env = Environment()
    seen: list[str] = []

    def first(t: float) -> None:
        seen.append("first")
        env.schedule(t, Priority.PATIENT, "now", lambda _t: seen.append("now"))
        with pytest.raises(InvalidValue):
            env.schedule(t - 1.0, Priority.PATIENT, "past", lambda _t: None)

    env.schedule(2.0, Priority.CLINIC, "first", first)
    env.run(5.0, lambda t: None)
    assert seen == ["first", "now"]


# ----------------------------------------------------------------- exactness


def test_sampling_grid_does_not_change_the_course() -> None:
    fine = _run(_scenario(), sample_every_h=1.0)
    coarse = _run(_scenario(), sample_every_h=7.0)
    a, b = fine.run.final_state, coarse.run.final_state
    for name in (
        "central_mcg",
        "peripheral_mcg",
        "effect_site_mcg_per_ml",
        "adaptation_mcg_per_ml",
        "withdrawal_drive_mcg_per_ml",
        "delivered_mcg",
    ):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9, abs=1e-12), name
    assert [(e.t_h, e.kind, e.detail) for e in fine.timeline] == [
        (e.t_h, e.kind, e.detail) for e in coarse.timeline
    ]
    by_t = {s.t_h: s for s in fine.samples}
    common = [s for s in coarse.samples if s.t_h in by_t]
    assert len(common) > 100
    for s in common:
        f = by_t[s.t_h]
        assert s.mas == pytest.approx(f.mas, rel=1e-9, abs=1e-12)
        assert s.effect_site_mcg_per_ml == pytest.approx(f.effect_site_mcg_per_ml, rel=1e-9)
        assert s.reservoir_actual_ml == pytest.approx(f.reservoir_actual_ml, abs=1e-9)
        assert s.withdrawal_stage == f.withdrawal_stage
    for key in (
        "refills",
        "urgent_visits",
        "catheter_revisions",
        "alarms_by_kind",
        "dose_changes",
        "final_dose_mcg_per_day",
        "delivered_to_csf_mcg",
    ):
        assert fine.metrics[key] == coarse.metrics[key], key


def test_the_patient_receives_exactly_what_the_pumps_delivered() -> None:
    result = _run(_scenario())
    assert result.run.final_state.delivered_mcg == pytest.approx(
        result.run.delivered_csf_mcg, rel=1e-12
    )
    assert result.run.delivered_csf_mcg > 0


def test_catheter_disconnection_is_found_and_revised_by_the_clinic() -> None:
    result = _run(_scenario())
    kinds = [e.kind for e in result.timeline]
    assert "catheter_study" in kinds
    assert result.metrics["catheter_revisions"] == 1
    fault_t = next(e.t_h for e in result.timeline if e.kind == "fault")
    revised_t = next(e.t_h for e in result.timeline if e.kind == "catheter_revision")
    assert fault_t < revised_t


# --------------------------------------------------------- what the clinic sees


def test_clinic_reading_and_exam_hold_no_hidden_truth() -> None:
    hidden = (
        "actual",
        "accuracy",
        "concentration_mcg_per_ml_true",
        "effect_site",
        "csf",
        "occupancy",
        "severity",
        "ec50",
    )
    fields = [f.name for f in dataclasses.fields(ClinicReading)] + [
        f.name for f in dataclasses.fields(Exam)
    ]
    for name in fields:
        assert not any(h in name for h in hidden), name


def test_clinic_plans_from_the_calculated_reservoir_not_the_true_one() -> None:
    base: dict[str, Any] = {
        "events": [],
        "horizon_days": 120,
        "protocol": {"established": {"dose_mcg_per_day": 450.0}, "goal_mas": 2.0},
    }
    exact = _run(_scenario(**base))
    fast = _run(_scenario(pump={"accuracy_factor": 1.12}, **base))
    assert exact.metrics["dose_changes"] == fast.metrics["dose_changes"] == 0
    refills = [e.t_h for e in exact.timeline if e.kind == "refill"]
    assert refills
    assert refills == [e.t_h for e in fast.timeline if e.kind == "refill"]
    # ... while the truth differs: the faster pump really holds less at each refill.
    by_t = {s.t_h: s for s in exact.samples}
    differs = [
        s
        for s in fast.samples
        if s.t_h in by_t
        and not math.isclose(s.reservoir_actual_ml, by_t[s.t_h].reservoir_actual_ml)
    ]
    assert differs
    for s in fast.samples:
        assert s.reservoir_calculated_ml == pytest.approx(by_t[s.t_h].reservoir_calculated_ml)


def test_bad_sampling_grid_is_refused() -> None:
    with pytest.raises(InvalidValue, match="sample_every_h"):
        _run(_scenario(), sample_every_h=0.0)
