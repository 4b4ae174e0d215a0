"""The spec's pump at a chosen date: events up to then are applied, later ones are not."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from itb import bootstrap
from itb.domain.errors import InvalidValue
from itb.services.catalog import Catalog as PumpCatalog
from itb.services.pump_at import parse_when, pump_at
from itb.services.pump_spec import parse_pump_spec

SPEC = {
    "pump": {
        "preset": "synchromed_ii_20",
        "implanted_at": datetime(2026, 1, 5, 9, 0),
        "timezone": "Europe/London",
    },
    "catheter": {"family": "ascenda_like", "implanted_length_cm": 60.0},
    "fill": {"volume_ml": 20.0, "concentration_mcg_per_ml": 500.0},
    "prescription": {"mode": "continuous", "dose_mcg_per_day": 480.0},
    "events": [
        {"kind": "refill", "day": 10.0, "volume_ml": 20.0, "concentration_mcg_per_ml": 500.0},
    ],
}


@pytest.fixture(scope="module")
def catalog() -> PumpCatalog:
    return bootstrap.catalog()


def test_default_is_the_implant_after_the_first_fill(catalog: PumpCatalog) -> None:
    state = pump_at(parse_pump_spec(SPEC), catalog)
    assert state.t_h == 0.0
    assert state.pump.reservoir_calculated_ml == 20.0
    assert state.events_applied == 0


def test_events_before_the_date_are_applied(catalog: PumpCatalog) -> None:
    spec = parse_pump_spec(SPEC)
    before = pump_at(spec, catalog, datetime(2026, 1, 15, 8, 0))
    assert before.events_applied == 0
    assert before.last_fill_t_h == 0.0
    assert before.pump.reservoir_calculated_ml == pytest.approx(20.0 - 0.96 * (239.0 / 24.0))
    after = pump_at(spec, catalog, datetime(2026, 1, 15, 10, 0))
    assert after.events_applied == 1
    assert after.last_fill_t_h == 240.0
    assert after.pump.reservoir_calculated_ml == pytest.approx(20.0 - 0.96 / 24.0)


def test_a_date_alone_on_the_implant_day_means_the_implant(catalog: PumpCatalog) -> None:
    state = pump_at(parse_pump_spec(SPEC), catalog, date(2026, 1, 5))
    assert state.t_h == 0.0
    with pytest.raises(InvalidValue, match="at = "):
        pump_at(parse_pump_spec(SPEC), catalog, date(2026, 1, 4))


def test_parse_when() -> None:
    assert parse_when("2026-02-01", field="--at") == date(2026, 2, 1)
    assert parse_when("2026-02-01T10:30", field="--at") == datetime(2026, 2, 1, 10, 30)
    with pytest.raises(InvalidValue, match="at = "):
        parse_when("1/2/2026", field="--at")
