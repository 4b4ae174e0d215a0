"""Registry bounds and the radar's flags, on the reviewed data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from itb import bootstrap
from itb.domain.clinic.access import PERMISSIONS, Action, Actor, Role, authorize, can
from itb.domain.clinic.radar import RadarInput, assess_pump, sort_radar
from itb.domain.errors import Forbidden, InvalidValue, NotFound

RULES = bootstrap.catalog().registry
FORECAST = bootstrap.catalog().forecast
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def pump(**kw: object) -> RadarInput:
    base: dict[str, object] = {
        "patient_id": "P0001",
        "patient_name": "Ada Jones",
        "implant_id": "I0001",
        "pump_label": "pump",
        "running": True,
        "stop_reason": "",
        "reservoir_calculated_ml": 10.0,
        "low_alarm_at": NOW + timedelta(days=40),
        "empty_at": NOW + timedelta(days=50),
        "earliest_dry_at": NOW + timedelta(days=44),
        "stability_until": NOW + timedelta(days=150),
        "eri_at": NOW + timedelta(days=900),
        "eri_reached": False,
        "next_visit_at": NOW + timedelta(days=33),
        "active_alarms": (),
        "critical_alarms": (),
        "unresolved_discrepancies": 0,
        "refill_margin_days": 5.0,
        "withdrawal_risk": (),
        "forecast": None,
    }
    base.update(kw)
    return RadarInput(**base)  # type: ignore[arg-type]


def flags(p: RadarInput) -> set[str]:
    w = RULES.radar
    row = assess_pump(
        p,
        now=NOW,
        due_window_days=w.due_window_days.value,
        look_ahead_days=w.look_ahead_days.value,
        battery_window_days=w.battery_window_days.value,
        forecast_rules=FORECAST,
    )
    return {f.code for f in row.flags}


def test_a_pump_with_a_visit_in_time_has_nothing_to_say() -> None:
    assert flags(pump()) == set()


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"next_visit_at": NOW + timedelta(days=46)}, "dry_before_visit"),
        ({"next_visit_at": NOW + timedelta(days=42)}, "alarm_before_visit"),
        ({"next_visit_at": None}, "no_visit"),
        ({"running": False, "stop_reason": "motor stall"}, "stopped"),
        ({"stability_until": NOW + timedelta(days=20)}, "drug_expires"),
        ({"low_alarm_at": NOW + timedelta(days=10)}, "due_this_week"),
        ({"eri_at": NOW + timedelta(days=20)}, "battery_soon"),
        ({"eri_reached": True}, "battery_eri"),
        ({"unresolved_discrepancies": 2}, "discrepancy"),
        ({"active_alarms": ("low_reservoir",)}, "open_alarm"),
        (
            {"active_alarms": ("memory_error",), "critical_alarms": ("memory_error",)},
            "critical_alarm",
        ),
    ],
)
def test_each_flag(change: dict, flag: str) -> None:
    assert flag in flags(pump(**change))


def test_the_most_urgent_come_first_and_words_not_colour_say_why() -> None:
    w = RULES.radar
    kw = {
        "now": NOW,
        "due_window_days": w.due_window_days.value,
        "look_ahead_days": w.look_ahead_days.value,
        "battery_window_days": w.battery_window_days.value,
        "forecast_rules": FORECAST,
    }
    rows = [
        assess_pump(pump(patient_id="P3"), **kw),
        assess_pump(pump(patient_id="P1", next_visit_at=NOW + timedelta(days=60)), **kw),
        assess_pump(pump(patient_id="P2", next_visit_at=None), **kw),
    ]
    ordered = sort_radar(rows)
    assert [r.pump.patient_id for r in ordered] == ["P1", "P2", "P3"]
    assert ordered[0].words.startswith("could run dry from")
    assert ordered[2].words == "ok"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: RULES.weight_kg(0.1), "weight_kg"),
        (lambda: RULES.weight_kg(float("inf")), "weight_kg"),
        (lambda: RULES.birth_date(date(2027, 1, 1), today=date(2026, 12, 1)), "birth_date"),
        (lambda: RULES.name("serial", "x" * 500), "serial"),
        (lambda: RULES.text("notes", "bell\x07"), "notes"),
        (lambda: RULES.level("tip_level", "L9"), "tip_level"),
        (lambda: RULES.timezone("../etc/passwd"), "timezone"),
        (lambda: RULES.when(datetime(2026, 12, 1, 9), now=NOW), "at"),
        (lambda: RULES.when(NOW + timedelta(hours=1), now=NOW), "at"),
    ],
)
def test_registry_bounds_refuse_by_name(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidValue) as info:
        call()
    assert info.value.field == field


def test_the_small_clock_allowance_is_data() -> None:
    tolerance = RULES.future_tolerance_minutes.value
    assert RULES.when(NOW + timedelta(minutes=tolerance - 1), now=NOW)
    assert RULES.future_tolerance_minutes.assumed


def test_permissions() -> None:
    assert Action.VERIFY_CHANGE in PERMISSIONS[Role.PHYSICIAN]
    assert Action.VERIFY_CHANGE not in PERMISSIONS[Role.NURSE]
    nurse = Actor("nina", Role.NURSE)
    assert can(nurse, Action.VERIFY_CHANGE, "P1", nurses_may_verify=True)
    assert not can(nurse, Action.VERIFY_CHANGE, "P1")
    viewer = Actor("vic", Role.VIEWER)
    assert all(
        not can(viewer, a)
        for a in Action
        if a not in (Action.READ, Action.READ_OWN, Action.ISSUE_CARD, Action.VERIFY_AUDIT)
    )
    patient = Actor("ada", Role.PATIENT, "P1")
    with pytest.raises(NotFound):
        authorize(patient, Action.READ_OWN, "P2")
    with pytest.raises(Forbidden):
        authorize(patient, Action.REFILL, "P1")
    with pytest.raises(InvalidValue):
        Actor("x", Role.CAREGIVER)
