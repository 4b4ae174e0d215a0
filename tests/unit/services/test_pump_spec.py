"""Validation of the pump-run spec: every field refused with ONE line naming field, value, allowed."""

from __future__ import annotations

import copy
import tomllib
from datetime import datetime, time
from typing import Any

import pytest

from itb.domain.errors import InvalidValue
from itb.services.pump_spec import (
    EVENT_KINDS,
    MODES,
    FlexRx,
    PumpSpec,
    RefillEvent,
    parse_pump_spec,
)

BASE: dict[str, Any] = {
    "name": "unit",
    "days": 30,
    "pump": {
        "preset": "synchromed_ii_20",
        "accuracy_factor": 1.0,
        "implanted_at": datetime(2026, 1, 5, 9, 0),
        "timezone": "Europe/London",
    },
    "catheter": {"family": "ascenda_like", "implanted_length_cm": 60.0},
    "fill": {"volume_ml": 20.0, "concentration_mcg_per_ml": 500.0},
    "prescription": {
        "mode": "flex",
        "low_reservoir_alarm_ml": 2.0,
        "every_day": [
            {"start": "00:00", "rate_mcg_per_h": 6.0},
            {"start": "06:00", "rate_mcg_per_h": 10.0},
        ],
        "patient_bolus": {"dose_mcg": 20, "duration_h": 0.25, "lockout_h": 4, "max_per_day": 3},
    },
    "priming_bolus": {"duration_h": 1.0},
    "events": [
        {"kind": "refill", "day": 30, "volume_ml": 20.0, "concentration_mcg_per_ml": 500.0},
    ],
}


def spec_with(path: str, value: object) -> dict[str, Any]:
    """BASE with one field set (``a.b[0].c``); value ``...`` deletes the field."""
    doc = copy.deepcopy(BASE)
    parts: list[str | int] = []
    for chunk in path.replace("]", "").split("."):
        name, *idx = chunk.split("[")
        parts.append(name)
        parts.extend(int(i) for i in idx)
    node: Any = doc
    for p in parts[:-1]:
        node = node[p]
    if value is ...:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return doc


def with_event(event: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc["events"].append(event)
    return doc


def refused(doc: dict[str, Any]) -> InvalidValue:
    with pytest.raises(InvalidValue) as info:
        parse_pump_spec(doc)
    message = str(info.value)
    assert "\n" not in message
    assert " is not allowed; allowed: " in message
    return info.value


def test_base_spec_is_valid() -> None:
    spec = parse_pump_spec(BASE)
    assert isinstance(spec, PumpSpec)
    assert isinstance(spec.prescription, FlexRx)
    assert spec.prescription.every_day is not None
    assert spec.prescription.every_day[1].start == 6.0
    assert isinstance(spec.events[0], RefillEvent)


def test_a_whole_toml_file_parses_with_local_times_and_times_of_day() -> None:
    text = """
    [pump]
    preset = "synchromed_ii_40"
    implanted_at = 2026-03-23T09:00:00
    timezone = "Europe/London"
    [catheter]
    family = "ascenda_like"
    implanted_length_cm = 60
    [fill]
    volume_ml = 40
    concentration_mcg_per_ml = 500
    [prescription]
    mode = "flex"
    every_day = [{ start = 00:00:00, rate_mcg_per_h = 5.0 }, { start = "07:30", rate_mcg_per_h = 15 }]
    [[events]]
    kind = "set_clock"
    at = 2026-04-02T10:00:00
    [[events]]
    kind = "mri"
    at = "2026-04-03T10:00:00+01:00"
    duration_h = 1
    """
    spec = parse_pump_spec(tomllib.loads(text))
    assert isinstance(spec.prescription, FlexRx)
    assert spec.prescription.every_day is not None
    assert [s.start for s in spec.prescription.every_day] == [0.0, 7.5]
    assert spec.events[0].at == datetime(2026, 4, 2, 10, 0)
    assert spec.events[1].at is not None
    assert spec.events[1].at.utcoffset() is not None


CASES: list[tuple[str, object, str, str]] = [
    # (field path, bad value, expected field in message, expected words in "allowed")
    ("days", -1, "days", "> 0"),
    ("days", "thirty", "days", "a number"),
    ("days", float("inf"), "days", "finite"),
    ("name", 3, "name", "a string"),
    ("pump.preset", 7, "pump.preset", "a string"),
    ("pump.preset", ..., "pump.preset", "required"),
    ("pump.accuracy_factor", 0, "pump.accuracy_factor", "> 0"),
    ("pump.accuracy_factor", True, "pump.accuracy_factor", "a number"),
    ("pump.implanted_at", "yesterday", "pump.implanted_at", "date-time"),
    ("pump.implanted_at", datetime(2026, 1, 5).date(), "pump.implanted_at", "date-time"),
    ("pump.timezone", "Mars/Olympus", "pump.timezone", "IANA time zone"),
    ("pump.colour", "blue", "pump.colour", "known keys: preset, accuracy_factor"),
    ("catheter.family", ..., "catheter.family", "required"),
    ("catheter.implanted_length_cm", 0, "catheter.implanted_length_cm", "> 0"),
    ("catheter.implanted_length_cm", float("nan"), "catheter.implanted_length_cm", "finite"),
    ("fill.volume_ml", -2, "fill.volume_ml", "> 0"),
    ("fill.concentration_mcg_per_ml", 0, "fill.concentration_mcg_per_ml", "> 0"),
    ("fill.true_concentration_mcg_per_ml", -1, "fill.true_concentration_mcg_per_ml", ">= 0"),
    ("prescription.mode", "flux", "prescription.mode", "stopped, continuous, flex, periodic"),
    ("prescription.mode", ..., "prescription.mode", "stopped, continuous, flex, periodic"),
    ("prescription.every_day", [], "prescription.every_day", "non-empty"),
    ("prescription.every_day", ..., "prescription.every_day", "all seven weekdays"),
    ("prescription.every_day[1].start", "6am", "prescription.every_day[1].start", "HH:MM"),
    ("prescription.every_day[1].start", "24:00", "prescription.every_day[1].start", "HH:MM"),
    ("prescription.every_day[1].start", "00:00", "prescription.every_day[1].start", "later than"),
    (
        "prescription.every_day[1].rate_mcg_per_h",
        -1,
        "prescription.every_day[1].rate_mcg_per_h",
        ">= 0",
    ),
    (
        "prescription.every_day[0].dose",
        1,
        "prescription.every_day[0].dose",
        "known keys: start, rate_mcg_per_h",
    ),
    ("prescription.low_reservoir_alarm_ml", 0, "prescription.low_reservoir_alarm_ml", "> 0"),
    ("prescription.patient_bolus.dose_mcg", 0, "prescription.patient_bolus.dose_mcg", "> 0"),
    ("prescription.patient_bolus.duration_h", -1, "prescription.patient_bolus.duration_h", "> 0"),
    ("prescription.patient_bolus.lockout_h", -1, "prescription.patient_bolus.lockout_h", ">= 0"),
    ("prescription.patient_bolus.max_per_day", 0, "prescription.patient_bolus.max_per_day", ">= 1"),
    (
        "prescription.patient_bolus.max_per_day",
        2.5,
        "prescription.patient_bolus.max_per_day",
        "whole number",
    ),
    ("priming_bolus.duration_h", 0, "priming_bolus.duration_h", "> 0"),
    ("priming_bolus.volume_ml", -0.1, "priming_bolus.volume_ml", "> 0"),
    ("events", "refill", "events", "a list"),
    ("events[0].kind", "refil", "events[0].kind", ", ".join(EVENT_KINDS)),
    ("events[0].kind", ..., "events[0].kind", "refill, reprogram"),
    ("events[0].day", ..., "events[0].at", "exactly one of at"),
    ("events[0].t_h", 5.0, "events[0].t_h", "exactly one of at"),
    ("events[0].day", -1, "events[0].day", ">= 0"),
    ("events[0].volume_ml", 0, "events[0].volume_ml", "> 0"),
    ("events[0].concentration_mcg_per_ml", "500", "events[0].concentration_mcg_per_ml", "a number"),
    ("events[0].bridge_bolus", "yes", "events[0].bridge_bolus", "true or false"),
    ("events[0].into_pocket", 1, "events[0].into_pocket", "true or false"),
    (
        "events[0].true_concentration_mcg_per_ml",
        -5,
        "events[0].true_concentration_mcg_per_ml",
        ">= 0",
    ),
    ("events[0].repeat_every_days", 0, "events[0].repeat_every_days", ">= 0.04"),
    ("events[0].repeat_every_days", 0.0001, "events[0].repeat_every_days", ">= 0.04"),
    ("events[0].repeat_count", 3, "events[0].repeat_count", "only together with repeat_every_days"),
    (
        "events[0].prescription",
        {"mode": "continuous"},
        "events[0].prescription.dose_mcg_per_day",
        "required",
    ),
    ("events[0].unfinished", True, "events[0].unfinished", "known keys:"),
]


@pytest.mark.parametrize(("path", "value", "field", "allowed"), CASES)
def test_each_field_is_refused_in_one_line(
    path: str, value: object, field: str, allowed: str
) -> None:
    err = refused(spec_with(path, value))
    assert err.field == field
    assert allowed in err.allowed
    assert str(err).startswith(f"{field} = ")


EVENT_CASES: list[tuple[dict[str, Any], str, str]] = [
    (
        {
            "kind": "reprogram",
            "day": 1,
            "prescription": {"mode": "continuous", "dose_mcg_per_day": 100, "foo": 1},
        },
        "events[1].prescription.foo",
        "known keys: patient_bolus, low_reservoir_alarm_ml, mode, dose_mcg_per_day",
    ),
    ({"kind": "reprogram", "day": 1}, "events[1].prescription", "something to program"),
    (
        {
            "kind": "reprogram",
            "day": 1,
            "low_reservoir_alarm_ml": 3,
            "prescription": {"mode": "stopped", "low_reservoir_alarm_ml": 2},
        },
        "events[1].low_reservoir_alarm_ml",
        "only one of",
    ),
    (
        {"kind": "reprogram", "day": 1, "unfinished": "no", "set_clock": True},
        "events[1].unfinished",
        "true or false",
    ),
    ({"kind": "set_clock"}, "events[1].at", "exactly one of"),
    (
        {"kind": "single_bolus", "day": 1, "dose_mcg": 0, "duration_h": 1},
        "events[1].dose_mcg",
        "> 0",
    ),
    ({"kind": "single_bolus", "day": 1, "dose_mcg": 50}, "events[1].duration_h", "required"),
    ({"kind": "patient_bolus", "day": 1, "dose_mcg": 5}, "events[1].dose_mcg", "known keys"),
    (
        {"kind": "access_port_injection", "day": 1, "volume_ml": 1, "concentration_mcg_per_ml": 0},
        "events[1].acknowledge_overdose_hazard",
        "overdose hazard",
    ),
    (
        {
            "kind": "access_port_injection",
            "day": 1,
            "volume_ml": 1,
            "concentration_mcg_per_ml": 0,
            "acknowledge_overdose_hazard": False,
        },
        "events[1].acknowledge_overdose_hazard",
        "true",
    ),
    (
        {"kind": "fault", "day": 1, "fault": "gremlins"},
        "events[1].fault",
        "occlusion, leak, disconnection",
    ),
    ({"kind": "fault", "day": 1, "fault": "leak", "fraction": 1.5}, "events[1].fraction", "<= 1"),
    (
        {"kind": "fault", "day": 1, "fault": "overinfusion_drift", "factor": 0},
        "events[1].factor",
        "> 0",
    ),
    (
        {"kind": "fault", "day": 1, "fault": "memory_error", "critical": "yes"},
        "events[1].critical",
        "true or false",
    ),
    ({"kind": "repair", "day": 1}, "events[1].fault", "required"),
    ({"kind": "mri", "day": 1}, "events[1].duration_h", "required"),
    ({"kind": "mri", "day": 1, "duration_h": -1}, "events[1].duration_h", "> 0"),
    ({"kind": "mri_start", "day": 1, "duration_h": 1}, "events[1].duration_h", "known keys"),
    ({"kind": "environment", "day": 1}, "events[1].body_temperature_degc", "and/or"),
    (
        {"kind": "environment", "day": 1, "body_temperature_degc": 60},
        "events[1].body_temperature_degc",
        "<= 45",
    ),
    (
        {"kind": "environment", "day": 1, "ambient_pressure_kpa": 10},
        "events[1].ambient_pressure_kpa",
        ">= 30",
    ),
    ({"kind": "interrogate", "at": "soon"}, "events[1].at", "date-time"),
    ({"kind": "interrogate", "day": 1, "t_h": 2}, "events[1].t_h", "exactly one of"),
    (
        {
            "kind": "refill",
            "day": 1,
            "volume_ml": 5,
            "concentration_mcg_per_ml": 500,
            "prescription": {
                "mode": "periodic",
                "basal_mcg_per_day": 100,
                "bolus_mcg": 50,
                "bolus_duration_h": 6,
                "interval_h": 6,
            },
        },
        "events[1].prescription.bolus_duration_h",
        "< interval_h",
    ),
    (
        {
            "kind": "reprogram",
            "day": 1,
            "prescription": {
                "mode": "periodic",
                "basal_mcg_per_day": 100,
                "bolus_mcg": 50,
                "bolus_duration_h": 1,
                "interval_h": 6,
                "first_start": "7",
            },
        },
        "events[1].prescription.first_start",
        "HH:MM",
    ),
    (
        {
            "kind": "reprogram",
            "day": 1,
            "prescription": {"mode": "flex", "mon": [{"start": "00:00", "rate_mcg_per_h": 1}]},
        },
        "events[1].prescription.every_day",
        "missing: tue, wed, thu, fri, sat, sun",
    ),
    (
        {
            "kind": "reprogram",
            "day": 1,
            "prescription": {
                "mode": "flex",
                "every_day": [{"start": "00:00", "rate_mcg_per_h": 1}],
                "sun": [
                    {"start": "12:00", "rate_mcg_per_h": 1},
                    {"start": "11:00", "rate_mcg_per_h": 2},
                ],
            },
        },
        "events[1].prescription.sun[1].start",
        "later than the previous step's 12:00",
    ),
]


@pytest.mark.parametrize(("event", "field", "allowed"), EVENT_CASES)
def test_each_event_field_is_refused_in_one_line(
    event: dict[str, Any], field: str, allowed: str
) -> None:
    err = refused(with_event(event))
    assert err.field == field
    assert allowed in err.allowed


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_has_a_valid_form(mode: str) -> None:
    rx: dict[str, Any] = {
        "stopped": {"mode": "stopped"},
        "continuous": {"mode": "continuous", "dose_mcg_per_day": 200},
        "flex": {"mode": "flex", "every_day": [{"start": time(0, 0), "rate_mcg_per_h": 5}]},
        "periodic": {
            "mode": "periodic",
            "basal_mcg_per_day": 100,
            "bolus_mcg": 50,
            "bolus_duration_h": 1,
            "interval_h": 6,
            "first_start": "02:00",
        },
    }[mode]
    spec = parse_pump_spec(spec_with("prescription", rx))
    assert spec.prescription is not None
    assert spec.prescription.mode == mode


def test_every_event_kind_has_a_valid_form() -> None:
    events: list[dict[str, Any]] = [
        {
            "kind": "refill",
            "day": 1,
            "volume_ml": 5,
            "concentration_mcg_per_ml": 1000,
            "prescription": {"mode": "continuous", "dose_mcg_per_day": 200},
            "bridge_bolus": True,
            "true_concentration_mcg_per_ml": 900,
            "into_pocket": False,
            "set_clock": True,
        },
        {"kind": "reprogram", "day": 1, "unfinished": True, "low_reservoir_alarm_ml": 3},
        {"kind": "set_clock", "at": datetime(2026, 4, 1, 9)},
        {"kind": "single_bolus", "t_h": 30, "dose_mcg": 50, "duration_h": 0.5},
        {"kind": "patient_bolus", "t_h": 31},
        {
            "kind": "access_port_injection",
            "day": 2,
            "volume_ml": 1,
            "concentration_mcg_per_ml": 0,
            "acknowledge_overdose_hazard": True,
        },
        {"kind": "fault", "day": 3, "fault": "leak", "fraction": 0.5},
        {"kind": "repair", "day": 4, "fault": "leak"},
        {"kind": "mri_start", "day": 5},
        {"kind": "mri_end", "day": 5.1},
        {"kind": "mri", "day": 6, "duration_h": 1},
        {"kind": "environment", "day": 7, "body_temperature_degc": 39.5},
        {"kind": "interrogate", "day": 8, "repeat_every_days": 7, "repeat_count": 2},
    ]
    doc = copy.deepcopy(BASE)
    doc["events"] = events
    spec = parse_pump_spec(doc)
    assert [e.kind for e in spec.events] == [e["kind"] for e in events]
    assert {e["kind"] for e in events} == set(EVENT_KINDS)


def test_the_first_error_is_reported_and_the_spec_is_frozen() -> None:
    doc = spec_with("days", -1)
    doc["fill"]["volume_ml"] = -1
    err = refused(doc)
    assert err.field in {"days", "fill.volume_ml"}
    spec = parse_pump_spec(BASE)
    with pytest.raises(ValueError, match="frozen"):
        spec.pump.preset = "other"  # type: ignore[misc]
