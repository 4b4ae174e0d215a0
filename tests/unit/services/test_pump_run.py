"""The pump-run service: checks before running, event order, results."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from itb.bootstrap import catalog as pump_catalog
from itb.domain.errors import InvalidValue, ITBError, NotAllowedForPump, PumpStateError
from itb.services.catalog import Catalog as PumpCatalog
from itb.services.pump_run import result_to_dict, run_pump
from itb.services.pump_spec import parse_pump_spec
from itb.services.wall_clock import WallClock

BASE: dict[str, Any] = {
    "pump": {
        "preset": "synchromed_ii_20",
        "implanted_at": datetime(2026, 1, 5, 9, 0),
        "timezone": "Europe/London",
    },
    "catheter": {"family": "ascenda_like", "implanted_length_cm": 60.0},
    "fill": {"volume_ml": 20.0, "concentration_mcg_per_ml": 500.0},
    "prescription": {"mode": "continuous", "dose_mcg_per_day": 250.0},
    "priming_bolus": {"duration_h": 1.0},
    "events": [],
}


@pytest.fixture(scope="module")
def catalog() -> PumpCatalog:
    return pump_catalog()


def doc(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = d
        *head, last = dotted.split("__")
        for h in head:
            node = node[h]
        node[last] = value
    return d


def run(d: dict[str, Any], catalog: PumpCatalog, days: float = 20.0) -> Any:
    return run_pump(parse_pump_spec(d), catalog, days=days)


def refused(d: dict[str, Any], catalog: PumpCatalog, days: float = 20.0) -> InvalidValue:
    with pytest.raises(InvalidValue) as info:
        run(d, catalog, days)
    assert "\n" not in str(info.value)
    return info.value


# ------------------------------------------------------------ checks before running


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"pump__preset": "synchromed_iii"}, "pump.preset", "synchromed_ii_20"),
        ({"pump__accuracy_factor": 1.3}, "pump.accuracy_factor", "overinfusion_drift"),
        ({"catheter__family": "garden_hose"}, "catheter.family", "ascenda_like"),
        ({"catheter__implanted_length_cm": 500.0}, "catheter.implanted_length_cm", "<= 110"),
        ({"fill__volume_ml": 25.0}, "fill.volume_ml", "<= 20"),
        (
            {"fill__concentration_mcg_per_ml": 5000.0},
            "fill.concentration_mcg_per_ml",
            "saline dilution",
        ),
        (
            {"prescription": {"mode": "continuous", "dose_mcg_per_day": 20000.0}},
            "prescription.dose_mcg_per_day",
            "mL/day",
        ),
        (
            {"prescription": {"mode": "stopped", "low_reservoir_alarm_ml": 9.0}},
            "prescription.low_reservoir_alarm_ml",
            "1 to 5",
        ),
        ({"priming_bolus": {"duration_h": 0.01}}, "priming_bolus.duration_h", "fastest bolus"),
        ({"pump__implanted_at": datetime(2026, 3, 29, 1, 30)}, "pump.implanted_at", "skipped"),
    ],
)
def test_the_spec_is_checked_against_the_pump_and_the_drug(
    catalog: PumpCatalog, changes: dict[str, Any], field: str, allowed: str
) -> None:
    err = refused(doc(**changes), catalog)
    assert err.field == field
    assert allowed in err.allowed


def test_patient_boluses_of_baclofen_are_refused_where_not_allowed(catalog: PumpCatalog) -> None:
    d = doc(pump__preset="prometra_ii_20")
    d["catheter"]["family"] = "prometra_catheter"
    d["prescription"]["patient_bolus"] = {
        "dose_mcg": 20,
        "duration_h": 0.25,
        "lockout_h": 4,
        "max_per_day": 3,
    }
    err = refused(d, catalog)
    assert err.field == "prescription.patient_bolus"
    assert "not allowed on" in err.allowed
    del d["prescription"]["patient_bolus"]
    d["events"] = [
        {
            "kind": "refill",
            "day": 5,
            "volume_ml": 20,
            "concentration_mcg_per_ml": 500,
            "prescription": {"mode": "continuous", "dose_mcg_per_day": 50000},
        }
    ]
    err = refused(d, catalog)
    assert err.field == "events[0].prescription.dose_mcg_per_day"


def test_flex_steps_beyond_the_pump_limit_are_refused(catalog: PumpCatalog) -> None:
    steps = [{"start": f"{h:02d}:00", "rate_mcg_per_h": 5.0 + h} for h in range(14)]
    err = refused(doc(prescription={"mode": "flex", "every_day": steps}), catalog)
    assert err.field == "prescription.flex steps per day"
    assert err.allowed == "<= 13"


@pytest.mark.parametrize(
    ("event", "field", "allowed"),
    [
        (
            {"kind": "refill", "day": 5, "volume_ml": 20, "concentration_mcg_per_ml": 1000},
            "events[0].prescription",
            "a prescription at 1000 mcg/mL",
        ),
        (
            {
                "kind": "refill",
                "day": 5,
                "volume_ml": 20,
                "concentration_mcg_per_ml": 500,
                "bridge_bolus": True,
            },
            "events[0].bridge_bolus",
            "false",
        ),
        (
            {"kind": "refill", "day": 5, "volume_ml": 30, "concentration_mcg_per_ml": 500},
            "events[0].volume_ml",
            "<= 20",
        ),
        (
            {"kind": "refill", "day": 5, "volume_ml": 20, "concentration_mcg_per_ml": 5000},
            "events[0].concentration_mcg_per_ml",
            "saline dilution",
        ),
        (
            {"kind": "reprogram", "day": 5, "low_reservoir_alarm_ml": 0.5},
            "events[0].low_reservoir_alarm_ml",
            "1 to 5",
        ),
        (
            {"kind": "single_bolus", "day": 5, "dose_mcg": 5000, "duration_h": 0.1},
            "events[0].dose_mcg",
            "<= 100 mcg",
        ),
        (
            {"kind": "single_bolus", "day": 5, "dose_mcg": 50, "duration_h": 0.01},
            "events[0].duration_h",
            "fastest bolus",
        ),
        ({"kind": "interrogate", "at": datetime(2025, 1, 1, 9)}, "events[0].at", "implanted_at"),
        ({"kind": "interrogate", "at": datetime(2026, 3, 29, 1, 15)}, "events[0].at", "skipped"),
    ],
)
def test_events_are_checked_before_anything_runs(
    catalog: PumpCatalog, event: dict[str, Any], field: str, allowed: str
) -> None:
    err = refused(doc(events=[event]), catalog)
    assert err.field == field
    assert allowed in err.allowed


def test_a_fixed_flow_pump_refuses_programming(catalog: PumpCatalog) -> None:
    d = doc(pump__preset="codman_3000_30")
    d["fill"]["volume_ml"] = 30.0
    err = refused(d, catalog)
    assert err.field == "prescription.mode"
    del d["prescription"]
    del d["priming_bolus"]
    d["events"] = [{"kind": "set_clock", "day": 1}]
    assert refused(d, catalog).field == "events[0].kind"
    d["events"] = [{"kind": "environment", "day": 1, "body_temperature_degc": 39.0}]
    result = run(d, catalog, days=3)
    assert result.daily_delivered_mcg[2] > result.daily_delivered_mcg[0]


def test_the_run_length_must_be_given(catalog: PumpCatalog) -> None:
    with pytest.raises(InvalidValue, match="days"):
        run_pump(parse_pump_spec(BASE), catalog, days=None)
    with pytest.raises(InvalidValue, match="days"):
        run_pump(parse_pump_spec(BASE), catalog, days=-3.0)


def test_an_event_the_pump_refuses_at_its_time_names_the_event(catalog: PumpCatalog) -> None:
    events = [
        {"kind": "single_bolus", "t_h": 2, "dose_mcg": 10, "duration_h": 5},
        {"kind": "single_bolus", "t_h": 3, "dose_mcg": 10, "duration_h": 1},
    ]
    with pytest.raises(PumpStateError, match=r"events\[1\] \(single_bolus at 2026-01-05T12:00"):
        run(doc(events=events), catalog)


# ---------------------------------------------------------------- running


def test_ties_resolve_in_file_order(catalog: PumpCatalog) -> None:
    events = [
        {"kind": "interrogate", "day": 2},
        {"kind": "fault", "day": 2, "fault": "occlusion"},
        {"kind": "repair", "day": 2, "fault": "occlusion"},
    ]
    result = run(doc(events=events), catalog, days=3)
    kinds = [e.kind for e in result.events if e.t_h == 48.0]
    assert kinds.index("interrogation") < kinds.index("fault") < kinds.index("repair")
    result = run(doc(events=list(reversed(events))), catalog, days=3)
    kinds = [e.kind for e in result.events if e.t_h == 48.0]
    assert kinds.index("repair") < kinds.index("fault") < kinds.index("interrogation")
    assert "occlusion" in result.final["faults"]


def test_events_after_the_end_are_counted_not_applied(catalog: PumpCatalog) -> None:
    events = [{"kind": "interrogate", "day": 1, "repeat_every_days": 1}]
    result = run(doc(events=events), catalog, days=5)
    assert len([e for e in result.events if e.kind == "interrogation" and e.t_h > 0]) == 5
    events = [{"kind": "interrogate", "day": 50}]
    result = run(doc(events=events), catalog, days=5)
    assert result.events_not_reached == 1
    assert any("after the end" in w for w in result.warnings)


def test_a_refill_reports_the_discrepancy_and_the_next_alarm_date(catalog: PumpCatalog) -> None:
    events = [
        {"kind": "fault", "day": 1, "fault": "occlusion"},
        {"kind": "refill", "day": 15, "volume_ml": 20, "concentration_mcg_per_ml": 500},
    ]
    result = run(doc(events=events), catalog, days=20)
    (refill,) = result.refills
    assert refill.verdict == "more withdrawn than expected"
    assert refill.withdrawn_ml > refill.expected_ml
    assert refill.low_reservoir_alarm_time is not None
    assert refill.time == "2026-01-20T09:00:00+00:00"


def test_an_unfinished_session_leaves_the_pump_stopped_and_alarming(catalog: PumpCatalog) -> None:
    events = [
        {
            "kind": "reprogram",
            "day": 2,
            "unfinished": True,
            "prescription": {"mode": "continuous", "dose_mcg_per_day": 300},
        },
    ]
    result = run(doc(events=events), catalog, days=5)
    assert not result.final["running"]
    assert any("HAZARD" in e.detail for e in result.events)
    assert any(a.kind == "pump_stopped_over_48h" and a.critical for a in result.alarms)
    assert result.no_delivery[-1].start_t_h == pytest.approx(48.0)


def test_patient_boluses_follow_the_lockout(catalog: PumpCatalog) -> None:
    d = doc(
        prescription={
            "mode": "continuous",
            "dose_mcg_per_day": 200,
            "patient_bolus": {"dose_mcg": 20, "duration_h": 0.25, "lockout_h": 4, "max_per_day": 3},
        },
        events=[
            {"kind": "patient_bolus", "t_h": 10},
            {"kind": "patient_bolus", "t_h": 11},
            {"kind": "patient_bolus", "t_h": 15},
        ],
    )
    result = run(d, catalog, days=2)
    assert [b.accepted for b in result.patient_boluses] == [True, False, True]
    assert "lockout" in result.patient_boluses[1].reason


def test_access_port_injection_flushes_the_catheter(catalog: PumpCatalog) -> None:
    d = doc(
        events=[
            {
                "kind": "access_port_injection",
                "day": 3,
                "volume_ml": 1.0,
                "concentration_mcg_per_ml": 0.0,
                "acknowledge_overdose_hazard": True,
            }
        ]
    )
    result = run(d, catalog, days=5)
    flush = [s for s in result.delivery if s.t0_h == 72.0 and s.duration_h < 0.1]
    assert flush
    assert flush[0].amount_mcg == pytest.approx(60 * 0.0026 * 500)
    assert result.drug_balance.error_mcg == pytest.approx(0.0, abs=1e-6)


def test_pocket_fill_and_compounding_error_are_in_the_balance(catalog: PumpCatalog) -> None:
    events = [
        {
            "kind": "refill",
            "day": 5,
            "volume_ml": 15,
            "concentration_mcg_per_ml": 500,
            "into_pocket": True,
        },
        {
            "kind": "refill",
            "day": 10,
            "volume_ml": 15,
            "concentration_mcg_per_ml": 500,
            "true_concentration_mcg_per_ml": 1000,
        },
    ]
    with pytest.raises(NotAllowedForPump, match="modelled hazard: the run must declare it"):
        run(doc(events=events), catalog, days=12)
    declared = {**doc(events=events), "declared_hazard": "a pocket fill, then a mix-up"}
    result = run(declared, catalog, days=12)
    assert result.declared_hazard == "a pocket fill, then a mix-up"
    assert any("pocket fill (declared hazard)" in w for w in result.warnings)
    assert result.drug_balance.pocket_mcg == pytest.approx(15 * 500)
    assert result.final["reservoir_concentration_mcg_per_ml"] == pytest.approx(1000)
    assert result.drug_balance.error_mcg == pytest.approx(0.0, abs=1e-6)


def test_result_to_dict_is_plain_json_data(catalog: PumpCatalog) -> None:
    import json

    result = run(doc(events=[{"kind": "mri", "day": 2, "duration_h": 1}]), catalog, days=4)
    data = result_to_dict(result, include_series=True)
    assert json.loads(json.dumps(data)) == data
    assert len(data["daily_delivered_mcg"]) == 4


def test_domain_errors_stay_in_the_itb_tree(catalog: PumpCatalog) -> None:
    assert issubclass(NotAllowedForPump, ITBError)


# ---------------------------------------------------------------- wall clock


def test_wall_clock_offsets_follow_local_time_at_setting() -> None:
    clock = WallClock(datetime(2026, 3, 23, 9, 0), "Europe/London")  # a Monday, GMT
    assert clock.pump_clock_offset_h(0.0) == pytest.approx(9.0)
    after = clock.t_h(datetime(2026, 4, 2, 10, 0), field="at")  # BST
    assert after == pytest.approx(10 * 24 + 1 - 1)
    # After spring forward the wall clock is one hour ahead of elapsed time.
    assert clock.pump_clock_offset_h(after) == pytest.approx(9.0 + 1.0)
    assert clock.iso(after) == "2026-04-02T10:00:00+01:00"
    with pytest.raises(InvalidValue, match="skipped"):
        clock.t_h(datetime(2026, 3, 29, 1, 30), field="at")
    # In the repeated hour (autumn) a naive time means its first occurrence.
    first = clock.t_h(datetime(2026, 10, 25, 1, 30), field="at")
    assert clock.iso(first).endswith("+01:00")
