"""A refused command changes nothing — through the one command vocabulary (``apply``), with
the drug library on the pump, over random sequences mixing good and bad values (negative,
zero, NaN, infinite, huge, the wrong concentration, beyond the library's hard limits, an
overfill, a bolus with nothing to give). The pump's whole state, as the registry would
store it, is compared before and after every refusal."""

from __future__ import annotations

import math

from hypothesis import event, given, settings
from hypothesis import strategies as st

from itb import bootstrap
from itb.domain.errors import ITBError
from itb.domain.pump import Pump
from itb.domain.pump.codec import pump_state
from itb.domain.pump.commands import (
    FillAtImplant,
    InjectAccessPort,
    Interrogate,
    PumpCommand,
    Refill,
    Reprogram,
    RequestPatientBolus,
    SetEnvironment,
    SingleBolus,
    apply,
)
from itb.domain.pump.prescription import PatientBolusSettings, Prescription
from itb.domain.pump.programs import Continuous, Flex, FlexStep

CATALOG = bootstrap.catalog()
PRESETS = ("synchromed_ii_20", "synchromed_ii_40", "prometra_ii_20", "codman_3000_30")

bad_numbers = st.sampled_from([-1.0, 0.0, math.nan, math.inf, -math.inf, 1e300, 1e-300])
doses = st.one_of(st.floats(20.0, 1500.0), st.sampled_from([2500.0, 5000.0, 1e6]), bad_numbers)
volumes = st.one_of(st.floats(0.5, 45.0), bad_numbers)
strengths = st.one_of(
    st.sampled_from([500.0, 1000.0, 2000.0]), st.sampled_from([50.0, 3000.0, 750.0]), bad_numbers
)


def _build(kind: str, a: float, b: float, c: float) -> PumpCommand | None:
    """A command from raw values, or None when its own constructor refuses them (the
    edge refuses before the pump is reached)."""
    try:
        match kind:
            case "dose":
                return Reprogram(prescription=Prescription(Continuous(a), b))
            case "flex":
                steps = (FlexStep(0.0, a / 24.0), FlexStep(8.0, c))
                return Reprogram(prescription=Prescription(Flex.every_day(steps), b))
            case "patient_bolus":
                pb = PatientBolusSettings(c, 0.25, max(0.0, a / 1000.0), 50)
                return Reprogram(prescription=Prescription(Continuous(300.0), b, pb))
            case "bolus":
                return Reprogram(bolus=SingleBolus(c, max(a / 1000.0, 1e-9)))
            case "alarm":
                return Reprogram(low_reservoir_alarm_ml=c)
            case "refill":
                return Refill(a, b)
            case "port":
                return InjectAccessPort(a, b, 1.0)
            case "fill":
                return FillAtImplant(a, b)
            case "environment":
                return SetEnvironment(body_temperature_degc=c)
            case "interrogate":
                return Interrogate()
            case "patient_request":
                return RequestPatientBolus()
    except (ITBError, ValueError, OverflowError):
        return None
    return None


KINDS = (
    "dose",
    "flex",
    "patient_bolus",
    "bolus",
    "alarm",
    "refill",
    "port",
    "fill",
    "environment",
    "interrogate",
    "patient_request",
)
steps = st.lists(
    st.tuples(
        st.floats(0.0, 24.0 * 60),
        st.sampled_from(KINDS),
        doses,
        strengths,
        st.one_of(volumes, doses),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=120)
@given(
    st.sampled_from(PRESETS), st.sampled_from(["adult_spinal", "adult_cerebral", "child"]), steps
)
def test_a_refused_command_changes_nothing(
    preset_key: str, population: str, script: list[tuple[float, str, float, float, float]]
) -> None:
    preset = CATALOG.preset(preset_key)
    catheter = CATALOG.catheter(preset.default_catheter or "ascenda_like", 60.0)
    pump = Pump(preset, catheter, accuracy_factor=1.02, guard=CATALOG.guard(population))
    apply(
        pump, FillAtImplant(preset.reservoir_ml / 2, 500.0), 0.0, tolerance=CATALOG.refill_tolerance
    )
    for dt, kind, a, b, c in script:
        pump.advance_to(pump.t_h + dt)
        command = _build(kind, a, b, c)
        if command is None:
            continue
        before = pump_state(pump)
        log_before = len(pump.log.entries)
        error: ITBError | None = None
        try:
            apply(pump, command, pump.t_h, tolerance=CATALOG.refill_tolerance)
        except ITBError as exc:
            error = exc
        if error is not None:
            event(f"refused {kind}")
            assert "\n" not in str(error)
            assert pump_state(pump) == before, f"{kind} refused ({error}) but changed the pump"
            assert len(pump.log.entries) == log_before
        # never beyond the library's hard limit, whatever was asked
        if preset.programmable:
            hard = CATALOG.library.limits(population).daily_dose_hard_max_mcg_per_day.value
            assert pump.prescription.program.daily_dose_mcg() <= hard * (1 + 1e-9)
