"""Complications of the implanted system: the rules, the pump side, and both engines."""

from __future__ import annotations

import math
import typing
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb import bootstrap
from itb.domain.clinical.complications import (
    Bridge,
    ComplicationKind,
    ComplicationRules,
    bridge_rate_mcg_per_h,
    onset_after_procedure_h,
    oral_bridge_mg_per_day,
    parse_complication_rules,
    pump_fault,
)
from itb.domain.errors import InvalidValue, SeptumUnreachable
from itb.domain.provenance import Sourced
from itb.domain.pump import CatheterSpec, Fault, FaultKind, Prescription, Pump, perform_refill
from itb.domain.pump.codec import pump_state, restore_pump
from itb.domain.pump.programs import Continuous
from itb.domain.units import HOURS_PER_DAY
from itb.services.cohort_trial import default_arm
from itb.services.scenario import ComplicationEvent
from itb.simulation.cohort_trial import implant, run_implanted
from itb.simulation.vector_engine import COMPLICATION_KINDS, complication_days

CAT = bootstrap.catalog()
RULES = CAT.complications


def _table() -> dict[str, Any]:
    from itb.adapters.datafiles import load_data_table

    return load_data_table("complications")


def _sourced(value: float) -> Sourced:
    return Sourced(value, "test", "assumed", "test")


# ------------------------------------------------------------------- the data


def test_every_kind_is_in_the_data_and_the_scenario_file_knows_them_all() -> None:
    assert set(RULES.kinds) == set(ComplicationKind)
    literal = typing.get_args(ComplicationEvent.model_fields["complication"].annotation)
    assert set(literal) == {k.value for k in ComplicationKind}
    assert tuple(k.value for k in ComplicationKind) == COMPLICATION_KINDS


def test_every_number_is_sourced_and_unconfirmed_ones_say_so() -> None:
    for spec in RULES.kinds.values():
        for name in ("early_probability", "early_window_days", "late_per_year"):
            value = getattr(spec, name)
            assert value.source
            assert value.status in ("confirmed", "assumed")
    # the placeholders with no source at all are flagged as assumptions
    assert RULES.bridging.oral_effect_fraction.assumed
    assert RULES.spec("haematoma").early_probability.assumed


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("kinds", "wound_infection", "fraction_to_csf", "value"), 0.5, "fraction_to_csf"),
        (("kinds", "meningitis", "blocks_refill"), True, "blocks_refill"),
        (("kinds", "pump_flip", "blocks_refill"), False, "blocks_refill"),
        (("kinds", "csf_leak", "treatment"), "prayer", "csf_leak.treatment"),
        (("kinds", "csf_leak", "found_by"), "luck", "csf_leak.found_by"),
        (("kinds", "csf_leak", "early_probability", "value"), 1.5, "early_probability"),
        (("kinds", "csf_leak", "resolves_days", "value"), 0.0, "resolves_days"),
        (("bridging", "bridge"), "hope", "bridging.bridge"),
        (("bridging", "oral_effect_fraction", "value"), -0.1, "oral_effect_fraction"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(path: tuple[str, ...], value: object, field: str) -> None:
    table = _table()
    node: Any = table
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(InvalidValue) as info:
        parse_complication_rules(table)
    assert field in info.value.field


def test_a_missing_kind_is_refused() -> None:
    table = _table()
    del table["kinds"]["pump_flip"]
    with pytest.raises(InvalidValue, match="pump_flip"):
        parse_complication_rules(table)


# ------------------------------------------------------------------- timing


@given(st.floats(0.0, 50.0))
def test_the_onset_is_where_the_cumulative_hazard_reaches_the_draw(e: float) -> None:
    spec = RULES.spec("wound_infection")
    t_d = onset_after_procedure_h(spec, e) / HOURS_PER_DAY
    window = spec.early_window_days.value
    early, late = spec.early_rate_per_day, spec.late_per_year.value / 365.25
    cumulative = early * min(t_d, window) + late * max(t_d - window, 0.0)
    assert cumulative == pytest.approx(e, rel=1e-9, abs=1e-12)


def test_the_early_window_holds_the_stated_probability() -> None:
    spec = RULES.spec("csf_leak")
    p = spec.early_probability.value
    # a unit exponential falls below -ln(1 - p) with probability p: exactly those draws
    # start within the early window
    edge = -math.log1p(-p)
    window_h = spec.early_window_days.value * HOURS_PER_DAY
    assert onset_after_procedure_h(spec, edge * 0.999) < window_h
    assert onset_after_procedure_h(spec, edge * 1.001) == math.inf  # no late leak


def test_the_cohort_draws_the_same_onset_as_the_domain() -> None:
    rng = np.random.default_rng(3)
    draws = _draws(rng.standard_exponential((500, len(COMPLICATION_KINDS))) * 0.05)
    days = complication_days(draws, RULES)
    for j, kind in enumerate(ComplicationKind):
        spec = RULES.spec(kind)
        for i in range(500):
            h = onset_after_procedure_h(spec, float(draws.complication_e[i, j]))
            want = math.inf if math.isinf(h) else max(math.ceil(h / HOURS_PER_DAY - 1e-9), 1)
            assert days[i, j] == want


def _draws(ce: np.ndarray) -> Any:
    from itb.simulation.vector_engine import PumpDraws

    n = ce.shape[0]
    return PumpDraws(
        accuracy_u=np.full(n, 0.5),
        catheter_u=np.full(n, 0.5),
        fault_e=np.full((n, 3), 50.0),
        missed_u=np.ones((n, 400)),
        fault_e2=np.full((n, 2), 50.0),
        complication_e=ce,
        complication_u=np.zeros_like(ce),
    )


# ------------------------------------------------------------------- bridging


def test_an_oral_bridge_is_the_equivalent_dose_capped_at_the_oral_maximum() -> None:
    b = RULES.bridging
    assert oral_bridge_mg_per_day(b, 500.0) == pytest.approx(50.0)
    assert oral_bridge_mg_per_day(b, 5000.0) == b.oral_max_mg_per_day.value
    assert bridge_rate_mcg_per_h(b, Bridge.NONE, 500.0) == 0.0
    assert bridge_rate_mcg_per_h(b, Bridge.INTRATHECAL, 480.0) == pytest.approx(
        20.0 * b.intrathecal_effect_fraction.value
    )
    oral = bridge_rate_mcg_per_h(b, Bridge.ORAL, 480.0)
    assert oral == pytest.approx(20.0 * b.oral_effect_fraction.value)
    capped = bridge_rate_mcg_per_h(b, Bridge.ORAL, 2400.0)
    assert capped == pytest.approx(800.0 * b.oral_effect_fraction.value / 24.0)


# ------------------------------------------------------------------- the pump side


def _pump() -> Pump:
    preset = CAT.preset("synchromed_ii_20")
    pump = Pump(preset, CatheterSpec("c", "catheter", 50.0, 0.0026))
    pump.fill(0.0, preset.reservoir_ml, 1000.0)
    pump.dead_space.replace(1000.0)
    from itb.domain.pump import ProgrammingSession

    s = ProgrammingSession(pump, 0.0)
    s.stage_prescription(Prescription(Continuous(480.0), 1000.0), "start")
    s.commit(0.0)
    return pump


def test_a_turned_pump_refuses_every_fill_until_it_is_fixed() -> None:
    pump = _pump()
    pump.advance_to(240.0)
    spec = RULES.spec("pump_flip")
    fault = pump_fault(spec)
    assert fault == Fault(FaultKind.POCKET_FLIP)
    pump.apply_fault(240.0, fault)
    before = (pump.reservoir_actual_ml, pump.reservoir_calculated_ml, len(pump.log))
    with pytest.raises(SeptumUnreachable, match="septum"):
        perform_refill(
            pump, 240.0, fill_volume_ml=20.0, concentration_mcg_per_ml=1000.0,
            tolerance=CAT.refill_tolerance,
        )  # fmt: skip
    assert (pump.reservoir_actual_ml, pump.reservoir_calculated_ml, len(pump.log)) == before
    # it goes on delivering meanwhile
    segs = pump.advance_to(264.0)
    assert sum(s.amount_mcg for s in segs) == pytest.approx(480.0, rel=0.05)
    pump.repair(264.0, FaultKind.POCKET_FLIP)
    report = perform_refill(
        pump, 264.0, fill_volume_ml=15.0, concentration_mcg_per_ml=1000.0,
        tolerance=CAT.refill_tolerance,
    )  # fmt: skip
    assert report.fill_volume_ml == 15.0


@pytest.mark.parametrize("kind", ["catheter_tip_mass", "csf_leak"])
def test_a_mass_or_a_leak_lets_only_its_fraction_reach_the_csf(kind: str) -> None:
    spec = RULES.spec(kind)
    fault = pump_fault(spec)
    assert fault is not None
    plain, hit = _pump(), _pump()
    plain.advance_to(48.0)
    hit.advance_to(48.0)
    hit.apply_fault(48.0, fault)
    a = sum(s.amount_mcg for s in plain.advance_to(96.0))
    b = sum(s.amount_mcg for s in hit.advance_to(96.0))
    assert b == pytest.approx(a * spec.fraction_to_csf.value, rel=1e-12)
    assert hit.reservoir_actual_ml == pytest.approx(plain.reservoir_actual_ml)


def test_complication_faults_survive_the_pump_state_codec() -> None:
    pump = _pump()
    pump.advance_to(10.0)
    pump.apply_fault(10.0, Fault(FaultKind.TIP_MASS, fraction=0.3))
    pump.apply_fault(10.0, Fault(FaultKind.CSF_LEAK, fraction=0.9))
    pump.apply_fault(10.0, Fault(FaultKind.POCKET_FLIP))
    again = restore_pump(pump_state(pump), pump.preset, pump.catheter)
    assert again.faults.fraction_to_csf == pytest.approx(0.27)
    assert again.faults.flipped


# ------------------------------------------------------------------- the cohort engine


def _frequent(rules: ComplicationRules) -> ComplicationRules:
    """Infections early and always explanted; nothing else."""
    kinds = {
        k: replace(
            s,
            early_probability=_sourced(0.6 if k is ComplicationKind.WOUND_INFECTION else 0.0),
            late_per_year=_sourced(0.0),
            explant_probability=_sourced(1.0),
        )
        for k, s in rules.kinds.items()
    }
    return ComplicationRules(kinds=kinds, bridging=rules.bridging)


def test_a_bridge_lowers_withdrawal_while_the_pump_is_out() -> None:
    setup = replace(
        bootstrap.cohort_setup(), seed=5, patients=120, horizon_days=150,
        complications=_frequent(CAT.complications),
    )  # fmt: skip
    imp = implant(setup, 0, 120)
    out = {}
    for bridge in Bridge:
        arm = default_arm(CAT, bridge.value, complications=True, bridge=bridge, titration="hold")
        out[bridge] = run_implanted(setup, imp, arm)
    explants = [int(r.explants.sum()) for r in out.values()]
    assert explants[0] > 30
    assert len(set(explants)) == 1, "the same patients come out in every arm"
    assert all((r.reimplants == r.explants).all() for r in out.values())
    wd = {b: int(r.explanted_withdrawal_days.sum()) for b, r in out.items()}
    assert wd[Bridge.NONE] > wd[Bridge.ORAL] > wd[Bridge.INTRATHECAL] == 0
    assert (out[Bridge.NONE].explanted_days == out[Bridge.ORAL].explanted_days).all()
    # off: nothing happens at all
    off = run_implanted(setup, imp, default_arm(CAT, "off", titration="hold"))
    assert int(off.complications.sum()) == 0
    assert int(off.explants.sum()) == 0
