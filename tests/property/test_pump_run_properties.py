"""Property: any valid pump spec either runs or is refused with one ITBError line, and a
run always conserves drug and keeps its logs in time order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.bootstrap import catalog as pump_catalog
from itb.domain.errors import ITBError
from itb.services.catalog import Catalog as PumpCatalog
from itb.services.pump_run import run_pump
from itb.services.pump_spec import parse_pump_spec

CATALOG: PumpCatalog = pump_catalog()
DAYS = 20.0

t_h = st.floats(min_value=0.0, max_value=DAYS * 24.0, allow_nan=False).map(lambda x: round(x, 2))
concentration = st.sampled_from([500.0, 1000.0, 2000.0])
fault_kind = st.sampled_from(
    ["occlusion", "leak", "disconnection", "migration", "motor_stall", "overinfusion_drift"]
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "refill",
                "single_bolus",
                "patient_bolus",
                "fault",
                "repair",
                "mri",
                "interrogate",
                "access_port_injection",
                "reprogram",
                "set_clock",
            ]
        )
    )
    ev: dict[str, Any] = {"kind": kind, "t_h": draw(t_h)}
    if kind == "refill":
        ev |= {
            "volume_ml": draw(st.floats(1.0, 20.0)),
            "concentration_mcg_per_ml": 500.0,
            "into_pocket": draw(st.booleans()),
        }
    elif kind == "single_bolus":
        ev |= {"dose_mcg": draw(st.floats(5.0, 100.0)), "duration_h": draw(st.floats(0.5, 3.0))}
    elif kind in ("fault", "repair"):
        ev["fault"] = draw(fault_kind)
        if kind == "fault":
            ev |= {"fraction": draw(st.floats(0.0, 1.0)), "factor": draw(st.floats(0.5, 1.5))}
    elif kind == "mri":
        ev["duration_h"] = draw(st.floats(0.25, 3.0))
    elif kind == "access_port_injection":
        ev |= {
            "volume_ml": draw(st.floats(0.05, 2.0)),
            "concentration_mcg_per_ml": draw(st.sampled_from([0.0, 500.0])),
            "acknowledge_overdose_hazard": True,
        }
    elif kind == "reprogram":
        ev |= {
            "prescription": {
                "mode": "continuous",
                "dose_mcg_per_day": draw(st.floats(50.0, 600.0)),
            },
            "unfinished": draw(st.booleans()),
        }
    return ev


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    steps = draw(st.lists(st.floats(2.0, 30.0), min_size=1, max_size=4))
    starts = sorted(
        draw(st.lists(st.integers(0, 23), min_size=len(steps), max_size=len(steps), unique=True))
    )
    return {
        "pump": {
            "preset": draw(st.sampled_from(["synchromed_ii_20", "synchromed_ii_40"])),
            "accuracy_factor": draw(st.floats(0.9, 1.1)),
            "implanted_at": datetime(2026, 3, 20, 9, 0),
            "timezone": draw(st.sampled_from(["Europe/London", "America/Chicago", "UTC"])),
        },
        "catheter": {"family": "ascenda_like", "implanted_length_cm": draw(st.floats(20, 100))},
        "fill": {"volume_ml": draw(st.floats(5.0, 20.0)), "concentration_mcg_per_ml": 500.0},
        "prescription": {
            "mode": "flex",
            "every_day": [
                {"start": f"{h:02d}:00", "rate_mcg_per_h": r}
                for h, r in zip(starts, steps, strict=True)
            ],
            "patient_bolus": {
                "dose_mcg": 20.0,
                "duration_h": 0.25,
                "lockout_h": 3.0,
                "max_per_day": 4,
            },
        },
        "priming_bolus": {"duration_h": 1.0} if draw(st.booleans()) else None,
        "events": draw(st.lists(events(), max_size=12)),
    }


@settings(max_examples=60)
@given(specs())
def test_a_run_conserves_drug_and_keeps_time_order(raw: dict[str, Any]) -> None:
    if raw["priming_bolus"] is None:
        del raw["priming_bolus"]
    spec = parse_pump_spec(raw)
    try:
        result = run_pump(spec, CATALOG, days=DAYS)
    except ITBError as exc:  # refused at its time (e.g. a bolus while another runs)
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert "\n" not in refusal
        return
    assert result.drug_balance.error_mcg == pytest.approx(0.0, abs=1e-6)
    assert result.reservoir_actual_ml >= 0.0
    assert result.reservoir_calculated_ml >= 0.0
    times = [e.t_h for e in result.events]
    assert times == sorted(times)
    alarm_times = [a.t_h for a in result.alarms]
    assert alarm_times == sorted(alarm_times)
    assert all(s.rate_mcg_per_h >= 0.0 for s in result.delivery)
    assert sum(result.daily_delivered_mcg) == pytest.approx(result.delivered_mcg, abs=1e-6)
