"""Pump fixtures built from the reviewed data files."""

from __future__ import annotations

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.pump import (
    CatheterSpec,
    Continuous,
    DiscrepancyTolerance,
    Prescription,
    ProgrammingSession,
    Pump,
    PumpPreset,
    parse_catheters,
    parse_discrepancy_tolerance,
    parse_presets,
)


@pytest.fixture(scope="session")
def presets() -> dict[str, PumpPreset]:
    return parse_presets(load_data_table("pumps"))


@pytest.fixture(scope="session")
def catheter() -> CatheterSpec:
    label, per_cm, _ = parse_catheters(load_data_table("catheters"))["prometra_catheter"]
    return CatheterSpec("prometra_catheter", label, 60.0, per_cm)


@pytest.fixture(scope="session")
def tolerance() -> DiscrepancyTolerance:
    return parse_discrepancy_tolerance(load_data_table("refill"))


@pytest.fixture
def make_pump(presets: dict[str, PumpPreset], catheter: CatheterSpec):
    """A filled pump running a continuous dose, with its dead space already primed."""

    def make(
        preset: str = "synchromed_ii_40",
        *,
        dose_mcg_per_day: float = 480.0,
        concentration: float = 500.0,
        fill_ml: float = 20.0,
        accuracy_factor: float = 1.0,
        primed: bool = True,
    ) -> Pump:
        pump = Pump(presets[preset], catheter, accuracy_factor=accuracy_factor)
        pump.fill(0.0, fill_ml, concentration)
        if primed:
            pump.dead_space.replace(concentration)
            pump.ledger.filled_mcg += pump.dead_space.mass_mcg  # account for the primed drug
        if pump.preset.programmable:
            session = ProgrammingSession(pump, 0.0, reason="test start")
            session.stage_prescription(
                Prescription(Continuous(dose_mcg_per_day), concentration), "start"
            )
            session.commit(0.0)
        return pump

    return make
