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


def _low_residual_ml(r: ScenarioResult) -> float:
    """The true reservoir volume below which the scenario's pump under-delivers."""
    v = bootstrap.catalog().preset(r.scenario.pump.preset).low_residual_volume_ml
    assert v > 0.0
    return v


def check_missed_refill_withdrawal(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["missed_refills"] == 1
    missed = first(r, "refill_missed")
    # Past the missed refill the reservoir nears empty and the pump under-delivers [C101]:
    # withdrawal begins then, within days, while the pump still calculates more than its
    # low-reservoir alarm volume, and before the reservoir is dry.
    low = first_sample(
        r, lambda s: s.t_h > missed.t_h and s.reservoir_actual_ml < _low_residual_ml(r)
    )
    withdrawal = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert not [s for s in r.samples if s.t_h < low.t_h and s.withdrawal_stage > 0]
    assert low.t_h < withdrawal.t_h <= low.t_h + 7 * 24.0, "signs 1-7 days before empty [C101]"
    alarm_ml = r.scenario.protocol.low_reservoir_alarm_ml or 2.0
    assert withdrawal.reservoir_calculated_ml > alarm_ml
    assert withdrawal.reservoir_actual_ml > 0.0
    visit = first(r, "urgent_visit")
    assert visit.t_h > withdrawal.t_h
    refill_after = next(e for e in r.timeline if e.kind == "refill" and e.t_h >= visit.t_h)
    assert refill_after.t_h == visit.t_h
    # the residual is below the under-delivery volume: the clinic names it, no catheter study
    note = next(e for e in r.timeline if e.kind == "observe" and e.t_h == visit.t_h)
    assert "[C101]" in note.detail
    assert not [e for e in r.timeline if e.kind == "catheter_study"]
    assert m["hours_reservoir_empty"] == 0.0
    assert "empty_reservoir" not in m["alarms_by_kind"]
    # The drug comes back and the signs resolve.
    later = samples_between(r, refill_after.t_h + 7 * 24, r.samples[-1].t_h)
    assert later
    assert all(s.withdrawal_stage == 0 for s in later)


def check_catheter_disconnection(r: ScenarioResult) -> None:
    m = r.metrics
    fault = first(r, "fault")
    revision = first(r, "catheter_revision")
    assert not [s for s in r.samples if s.t_h < fault.t_h and s.withdrawal_stage > 0]
    onset = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert fault.t_h < onset.t_h <= fault.t_h + 24.0, "withdrawal within a day of the disconnection"
    assert m["hours_without_delivery"] >= revision.t_h - fault.t_h - 2.0
    # From the pump nothing looks wrong: it empties as programmed, no alarm, normal residual.
    assert m["alarms_by_kind"] == {}
    assert m["refill_discrepancies_flagged"] == 0
    for s in r.samples:
        assert s.reservoir_actual_ml == pytest.approx(s.reservoir_calculated_ml, abs=1e-6)
    study = first(r, "catheter_study")
    assert "disconnection" in study.detail
    assert m["catheter_revisions"] == 1
    later = samples_between(r, revision.t_h + 7 * 24, r.samples[-1].t_h + 1)
    assert later
    assert all(s.withdrawal_stage == 0 for s in later)


def check_overinfusion_runs_dry(r: ScenarioResult) -> None:
    m = r.metrics
    dry = first_sample(r, lambda s: s.t_h > 24 and s.reservoir_actual_ml <= 1e-9)
    low_alarm_ml = r.scenario.protocol.low_reservoir_alarm_ml or 2.0
    assert dry.reservoir_calculated_ml > low_alarm_ml, "dry while the pump believes it is not low"
    assert "low_reservoir" not in m["alarms_by_kind"], "the low-reservoir alarm never sounded"
    # withdrawal from the under-delivery of the last millilitres [C101] or from the empty
    # reservoir, within a day of running dry, never before the reservoir was nearly empty
    low = first_sample(r, lambda s: s.t_h > 24 and s.reservoir_actual_ml < _low_residual_ml(r))
    onset = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert low.t_h < onset.t_h <= dry.t_h + 24.0
    flagged = [x for x in r.run.clinic.refills if x.flagged]
    assert len(flagged) == 1
    assert flagged[0].verdict in ("reservoir found empty", "less withdrawn than expected")
    assert flagged[0].withdrawn_ml < flagged[0].expected_ml
    assert m["pump_replacements"] == 1
    replaced = first(r, "pump_replacement")
    later = samples_between(r, replaced.t_h + 7 * 24, r.samples[-1].t_h + 1)
    assert later
    assert all(s.withdrawal_stage == 0 for s in later)


def _change(r: ScenarioResult) -> TimelineEntry:
    return next(e for e in r.timeline if e.kind == "refill" and "was 500" in e.detail)


def check_concentration_change_bridge(r: ScenarioResult) -> None:
    m = r.metrics
    change = _change(r)
    assert "bridge bolus yes" in change.detail
    assert m["days_with_withdrawal_signs"] == 0
    assert m["days_with_overdose_signs"] == 0
    dose_h = 400.0 / 24.0
    after = samples_between(r, change.t_h + 1.0, change.t_h + 72.0)
    assert min(s.delivery_mcg_per_h for s in after) >= 0.9 * dose_h, "delivery stays continuous"
    assert max(s.delivery_mcg_per_h for s in after) <= 1.1 * dose_h


def check_concentration_change_no_bridge(r: ScenarioResult) -> None:
    m = r.metrics
    change = _change(r)
    assert "bridge bolus no" in change.detail
    dose_h = 400.0 / 24.0
    after = samples_between(r, change.t_h + 1.0, change.t_h + 24.0)
    assert max(s.delivery_mcg_per_h for s in after) <= 0.3 * dose_h, "a quarter of the dose"
    onset = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert change.t_h < onset.t_h <= change.t_h + 36.0
    assert m["days_with_withdrawal_signs"] >= 1
    assert m["days_with_severe_withdrawal"] == 0
    bridged = result("concentration_change_bridge").metrics
    assert m["delivered_to_csf_mcg"] < bridged["delivered_to_csf_mcg"]
    assert m["time_in_therapeutic_range_pct"] < bridged["time_in_therapeutic_range_pct"]
    late = samples_between(r, change.t_h + 7 * 24, r.samples[-1].t_h + 1)
    assert all(s.withdrawal_stage == 0 for s in late)


def check_access_port_overdose(r: ScenarioResult) -> None:
    m = r.metrics
    injection = first(r, "access_port_injection")
    assert not [s for s in r.samples if s.t_h < injection.t_h and s.overdose_stage > 0]
    onset = first_sample(r, lambda s: s.overdose_stage > 0)
    assert injection.t_h < onset.t_h <= injection.t_h + 2.0, "overdose signs within hours"
    assert m["max_overdose_stage"] >= 2
    observed = first(r, "observation")
    assert "drowsiness" in observed.detail
    assert observed.overdose_stage > 0
    # One bolus: the signs pass within a day and the pump dose is not changed.
    assert m["days_with_overdose_signs"] == 1
    assert m["dose_changes"] == 0
    assert m["days_with_withdrawal_signs"] == 0


def check_mri_motor_stall(r: ScenarioResult) -> None:
    start = first(r, "mri_start")
    blocked = first(r, "stall_recovery_blocked")
    resumed = first(r, "resume")
    assert "low_reservoir" in r.metrics["alarms_by_kind"], "the alarm sounded before the scan"
    assert start.t_h < blocked.t_h < resumed.t_h
    stopped = samples_between(r, start.t_h + 0.5, resumed.t_h)
    assert stopped
    assert all(s.delivery_mcg_per_h == 0.0 for s in stopped), "no drug while stalled / held"
    assert resumed.t_h - blocked.t_h >= 12.0, "held until the interrogation"
    onset = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert start.t_h < onset.t_h < resumed.t_h
    late = samples_between(r, resumed.t_h + 7 * 24, r.samples[-1].t_h + 1)
    assert late
    assert all(s.withdrawal_stage == 0 for s in late)


def check_battery_replacement(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["battery_replacement_day"] is not None
    assert 4 * 365 <= m["battery_replacement_day"] <= 7 * 365
    assert m["battery_replacement_date"] is not None
    assert m["eri_reached_days"] == [], "replaced before the ERI"
    assert m["pumps_implanted"] == 2
    assert "elective_replacement_indicator" not in m["alarms_by_kind"]
    assert "end_of_service" not in m["alarms_by_kind"]
    assert m["days_with_withdrawal_signs"] == 0
    replaced = m["battery_replacement_day"] * 24.0
    after = samples_between(r, replaced + 24.0, r.samples[-1].t_h + 1)
    assert after
    assert all(s.delivery_mcg_per_h > 0 for s in after), "therapy continues on the new pump"


def check_day_night_flex(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["mean_mas_daytime"] > m["mean_mas_night"] + 0.1, "more tone by day"
    assert m["days_with_withdrawal_signs"] == 0
    assert m["days_with_overdose_signs"] == 0
    assert m["titration_days"] is not None
    rates = [s.delivery_mcg_per_h for s in r.samples if s.t_h > 48]
    assert max(rates) > 2 * min(rates) > 0, "a low day rate and a high night rate"


def _dose_at(r: ScenarioResult, t_h: float) -> float:
    return next(s.dose_mcg_per_day for s in reversed(r.samples) if s.t_h <= t_h)


def check_seven_years_end_to_end(r: ScenarioResult) -> None:
    m = r.metrics
    assert r.screening is not None
    assert r.screening.effective_dose_mcg is not None
    assert m["titration_days"] is not None
    assert m["time_in_therapeutic_range_after_titration_pct"] >= 90.0
    # Tolerance: the dose rises mostly in the first year and does not fall back (T15).
    first_year = _dose_at(r, 365 * 24.0) - m["initial_dose_mcg_per_day"]
    later = m["final_dose_mcg_per_day"] - _dose_at(r, 365 * 24.0)
    assert first_year > later >= 0.0
    # Stronger concentrations with bridge boluses keep refills apart without withdrawal.
    stronger = [e for e in r.timeline if e.kind == "refill" and "stronger" in e.detail]
    assert stronger
    for e in stronger:
        assert "bridge bolus yes" in e.detail
        assert all(s.withdrawal_stage == 0 for s in samples_between(r, e.t_h, e.t_h + 72.0))
    # The late refill: the nearly empty reservoir under-delivers [C101]; the withdrawal signs
    # bring the patient in before the low-reservoir alarm would sound and before it runs dry.
    assert m["missed_refills"] == 1
    missed = first(r, "refill_missed")
    visit = next(e for e in r.timeline if e.kind == "urgent_visit" and e.t_h > missed.t_h)
    assert "return of spasticity" in visit.detail
    assert any(e.kind == "refill" and e.t_h == visit.t_h for e in r.timeline)
    assert "low_reservoir" not in m["alarms_by_kind"]
    assert m["hours_reservoir_empty"] == 0.0
    # The MRI stalls the motor for the scan only.
    start, recovery = first(r, "mri_start"), first(r, "stall_recovery")
    assert recovery.t_h - start.t_h == pytest.approx(1.0)
    # The catheter kink: withdrawal within a day, found, revised, resolved.
    fault = first(r, "fault")
    onset = first_sample(r, lambda s: s.t_h >= fault.t_h and s.withdrawal_stage > 0)
    assert onset.t_h - fault.t_h <= 24.0
    revision = first(r, "catheter_revision")
    assert "occlusion" in revision.detail
    assert all(
        s.withdrawal_stage == 0
        for s in samples_between(r, revision.t_h + 7 * 24, r.samples[-1].t_h + 1)
    )
    # Battery: replaced before the ERI, therapy continues.
    assert m["battery_replacement_date"] is not None
    assert m["eri_reached_days"] == []
    assert m["pumps_implanted"] == 2


def check_gas_pump_fever_altitude(r: ScenarioResult) -> None:
    m = r.metrics
    base = 400.0 / 24.0
    envs = [e for e in r.timeline if e.kind == "environment"]
    fever, fever_end, climb, home = (e.t_h for e in envs)
    during_fever = samples_between(r, fever + 12.0, fever_end)
    at_altitude = samples_between(r, climb + 12.0, home)
    assert all(s.delivery_mcg_per_h > 1.2 * base for s in during_fever), "fever: more flow"
    assert all(s.delivery_mcg_per_h > 1.1 * base for s in at_altitude), "altitude: more flow"
    before = samples_between(r, fever - 24.0, fever)
    assert min(s.mas for s in during_fever) < min(s.mas for s in before)
    # The pump cannot tell: no alarms, the programmed dose never changes; less is left.
    assert m["alarms_by_kind"] == {}
    assert {s.dose_mcg_per_day for s in r.samples} == {400.0}
    after_fever = next(x for x in r.run.clinic.refills if x.t_h >= fever)
    assert after_fever.withdrawn_ml < after_fever.expected_ml


# ------------------------------------------------- complications of the system


def _explant_course(r: ScenarioResult) -> tuple[TimelineEntry, TimelineEntry]:
    m = r.metrics
    assert m["complications_found"] == ["wound_infection"]
    assert m["explants"] == 1
    assert m["reimplants"] == 1
    onset = first(r, "complication")
    found = first(r, "complication_found")
    explant = first(r, "explant")
    reimplant = [e for e in r.timeline if e.kind == "implant"][1]
    assert onset.t_h < found.t_h <= onset.t_h + 24.0, "fever and a red wound bring a visit"
    assert "explant" in found.detail
    assert explant.t_h == pytest.approx(found.t_h + r.protocol.revision_delay_h)
    # nothing is delivered by the pump while it is out: only a bridge reaches the CSF
    out = samples_between(r, explant.t_h + 1.0, reimplant.t_h)
    assert out
    assert all(s.dose_mcg_per_day == 0.0 and s.reservoir_calculated_ml == 0.0 for s in out)
    assert not [s for s in r.samples if s.t_h < explant.t_h and s.withdrawal_stage > 0]
    return explant, reimplant


def check_infected_pump_no_bridge(r: ScenarioResult) -> None:
    explant, reimplant = _explant_course(r)
    assert first(r, "bridge").detail.startswith("none")
    out = samples_between(r, explant.t_h + 1.0, reimplant.t_h)
    assert all(s.delivery_mcg_per_h == 0.0 for s in out)
    onset = first_sample(r, lambda s: s.withdrawal_stage > 0)
    assert explant.t_h < onset.t_h <= explant.t_h + 24.0, "withdrawal within a day of the explant"
    # it lasts while the pump is out and ends once the new pump delivers again
    assert r.metrics["days_with_withdrawal_signs"] >= 25
    later = samples_between(r, reimplant.t_h + 7 * 24, r.samples[-1].t_h + 1)
    assert later
    assert all(s.withdrawal_stage == 0 and s.overdose_stage == 0 for s in later)


def check_infected_pump_oral_bridge(r: ScenarioResult) -> None:
    explant, reimplant = _explant_course(r)
    bridge = first(r, "bridge")
    assert bridge.detail.startswith("oral baclofen 50 mg/day")
    out = samples_between(r, explant.t_h + 2.0, reimplant.t_h)
    # the oral bridge makes good a share of the pump's 500 mcg/day (data: effect fraction)
    rules = bootstrap.catalog().complications.bridging
    expected = 500.0 * rules.oral_effect_fraction.value / 24.0
    assert all(s.delivery_mcg_per_h == pytest.approx(expected) for s in out)
    # milder and shorter than without the bridge, same patient and infection
    none = result("infected_pump_no_bridge").metrics
    m = r.metrics
    assert 0 < m["days_with_withdrawal_signs"] < none["days_with_withdrawal_signs"]
    assert max(s.mas for s in out) < max(
        s.mas
        for s in samples_between(result("infected_pump_no_bridge"), explant.t_h, reimplant.t_h)
    )


def check_csf_leak_after_implant(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["complications_found"] == ["csf_leak"]
    assert m["explants"] == 0
    onset = first(r, "complication")
    found = first(r, "complication_found")
    resolved = first(r, "complication_resolved")
    assert "headache on standing" in first(r, "reports", "patient").detail
    assert onset.t_h < found.t_h <= onset.t_h + 24.0
    spec = bootstrap.catalog().complications.spec("csf_leak")
    assert resolved.t_h == pytest.approx(found.t_h + spec.resolves_days.value * 24.0)
    # while it lasts, part of the drug leaves with the leaking fluid; afterwards it all stays
    during = samples_between(r, onset.t_h + 12.0, resolved.t_h)
    after = samples_between(r, resolved.t_h + 12.0, resolved.t_h + 48.0)
    dose_h = [s.dose_mcg_per_day / 24.0 for s in during]
    assert all(
        s.delivery_mcg_per_h == pytest.approx(d * spec.fraction_to_csf.value, rel=1e-6)
        for s, d in zip(during, dose_h, strict=True)
        if s.dose_mcg_per_day == during[0].dose_mcg_per_day
    )
    assert all(s.delivery_mcg_per_h == pytest.approx(s.dose_mcg_per_day / 24.0) for s in after)
    assert m["days_with_withdrawal_signs"] == 0
    assert m["urgent_visits"] == 1, "a leak under treatment is not news at every daily check"


def check_pump_flip_at_refill(r: ScenarioResult) -> None:
    m = r.metrics
    assert m["complications_found"] == ["pump_flip"]
    assert m["failed_refills"] == 1
    onset = first(r, "complication")
    failed = first(r, "refill_failed")
    revision = first(r, "pocket_revision")
    assert "septum cannot be reached" in failed.detail
    assert m["urgent_visits"] == 0, "a turned pump goes on delivering: nothing shows"
    assert not [e for e in r.timeline if onset.t_h < e.t_h < failed.t_h and e.kind == "refill"]
    refill = next(e for e in r.timeline if e.kind == "refill" and e.t_h > failed.t_h)
    assert refill.t_h == pytest.approx(revision.t_h)
    assert revision.t_h == pytest.approx(failed.t_h + 24.0)
    assert m["days_with_withdrawal_signs"] == 0
    assert all(s.reservoir_actual_ml > 0 for s in r.samples)


CHECKS: dict[str, Callable[[ScenarioResult], None]] = {
    "stable_maintenance": check_stable_maintenance,
    "titration_from_screening": check_titration_from_screening,
    "missed_refill_withdrawal": check_missed_refill_withdrawal,
    "catheter_disconnection": check_catheter_disconnection,
    "overinfusion_runs_dry": check_overinfusion_runs_dry,
    "concentration_change_bridge": check_concentration_change_bridge,
    "concentration_change_no_bridge": check_concentration_change_no_bridge,
    "access_port_overdose": check_access_port_overdose,
    "mri_motor_stall": check_mri_motor_stall,
    "battery_replacement": check_battery_replacement,
    "day_night_flex": check_day_night_flex,
    "seven_years_end_to_end": check_seven_years_end_to_end,
    "gas_pump_fever_altitude": check_gas_pump_fever_altitude,
    "infected_pump_no_bridge": check_infected_pump_no_bridge,
    "infected_pump_oral_bridge": check_infected_pump_oral_bridge,
    "csf_leak_after_implant": check_csf_leak_after_implant,
    "pump_flip_at_refill": check_pump_flip_at_refill,
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
