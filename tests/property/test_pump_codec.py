"""The registry keeps each implant's pump as plain data between commands: a pump restored
from :func:`pump_state` behaves exactly as the one it was taken from, whatever came before
(commands, faults, alarms, time); and every command survives its plain-data round trip."""

from __future__ import annotations

import contextlib
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from itb import bootstrap
from itb.domain.errors import ITBError
from itb.domain.pump import Pump
from itb.domain.pump.codec import command_from_data, command_to_data, pump_state, restore_pump
from itb.domain.pump.commands import (
    BeginMri,
    EndMri,
    FillAtImplant,
    Interrogate,
    PrimingBolus,
    PumpCommand,
    Refill,
    RepairFault,
    Reprogram,
    RequestPatientBolus,
    SetEnvironment,
    SingleBolus,
    StartFault,
    apply,
)
from itb.domain.pump.faults import Fault, FaultKind
from itb.domain.pump.prescription import PatientBolusSettings, Prescription
from itb.domain.pump.programs import Continuous, Flex, FlexStep, PeriodicBolus

CATALOG = bootstrap.catalog()
PRESETS = ("synchromed_ii_20", "synchromed_ii_40", "prometra_ii_20", "codman_3000_30")


def _new(preset_key: str) -> Pump:
    preset = CATALOG.preset(preset_key)
    catheter = CATALOG.catheter(preset.default_catheter or "ascenda_like", 60.0)
    pump = Pump(preset, catheter, accuracy_factor=1.03, guard=CATALOG.guard("adult_spinal"))
    apply(pump, FillAtImplant(preset.reservoir_ml, 500.0), 0.0, tolerance=CATALOG.refill_tolerance)
    if preset.programmable:
        apply(
            pump,
            Reprogram(prescription=Prescription(Continuous(200.0), 500.0), bolus=PrimingBolus(1.0)),
            0.0,
            tolerance=CATALOG.refill_tolerance,
        )
    return pump


programs = st.one_of(
    st.builds(Continuous, st.floats(60.0, 700.0)),
    st.builds(
        lambda a, b: Flex.every_day((FlexStep(0.0, a), FlexStep(7.0, b), FlexStep(22.0, a))),
        st.floats(3.0, 25.0),
        st.floats(3.0, 25.0),
    ),
    st.builds(lambda basal: PeriodicBolus(basal, 40.0, 0.5, 6.0, 1.0), st.floats(60.0, 400.0)),
)
patient_bolus = st.one_of(
    st.none(),
    st.builds(PatientBolusSettings, st.just(25.0), st.just(0.25), st.just(3.0), st.just(4)),
)
commands: st.SearchStrategy[PumpCommand] = st.one_of(
    st.builds(
        lambda p, pb: Reprogram(prescription=Prescription(p, 500.0, pb)), programs, patient_bolus
    ),
    st.builds(lambda v: Refill(v, 500.0), st.floats(5.0, 20.0)),
    st.builds(
        lambda v: Refill(
            v, 2000.0, prescription=Prescription(Continuous(300.0), 2000.0), bridge_bolus=True
        ),
        st.floats(5.0, 20.0),
    ),
    st.just(Interrogate()),
    st.just(RequestPatientBolus()),
    st.builds(lambda d: Reprogram(bolus=SingleBolus(d, 1.0)), st.floats(10.0, 50.0)),
    st.builds(lambda ml: Reprogram(low_reservoir_alarm_ml=ml), st.sampled_from([2.0, 3.0, 4.0])),
    st.just(BeginMri()),
    st.just(EndMri()),
    st.builds(lambda t: SetEnvironment(body_temperature_degc=t), st.floats(36.0, 39.5)),
    st.builds(lambda: StartFault(Fault(FaultKind.OCCLUSION))),
    st.builds(lambda: RepairFault(FaultKind.OCCLUSION)),
)
steps = st.lists(st.tuples(st.floats(0.5, 900.0), commands), min_size=1, max_size=14)


def _apply_quietly(pump: Pump, cmd: PumpCommand, t_h: float) -> None:
    pump.advance_to(t_h)
    with contextlib.suppress(ITBError):  # refused: nothing changed (the pump's own property)
        apply(pump, cmd, t_h, tolerance=CATALOG.refill_tolerance)


def _same(a: Pump, b: Pump) -> None:
    sa, sb = a.status(), b.status()
    assert sa == sb
    for name in ("reservoir_actual_ml", "reservoir_calculated_ml", "battery_used"):
        assert math.isclose(getattr(a, name), getattr(b, name), rel_tol=0, abs_tol=1e-12)
    assert a.ledger == b.ledger
    assert a.dead_space.slugs == b.dead_space.slugs


@settings(max_examples=60)
@given(st.sampled_from(PRESETS), steps, st.integers(0, 14), st.floats(1.0, 2000.0))
def test_a_restored_pump_behaves_as_the_original(
    preset: str, script: list[tuple[float, PumpCommand]], cut: int, tail_h: float
) -> None:
    original = _new(preset)
    t = 0.0
    timeline = []
    for dt, cmd in script:
        t += dt
        timeline.append((t, cmd))
    cut = min(cut, len(timeline))
    for t_h, cmd in timeline[:cut]:
        _apply_quietly(original, cmd, t_h)
    state = json.loads(json.dumps(pump_state(original)))  # through JSON, as the registry keeps it
    catheter = original.catheter
    restored = restore_pump(state, original.preset, catheter, guard=original.guard)
    for t_h, cmd in timeline[cut:]:
        _apply_quietly(original, cmd, t_h)
        _apply_quietly(restored, cmd, t_h)
    end = max(original.t_h, t) + tail_h
    original.advance_to(end)
    restored.advance_to(end)
    _same(original, restored)


@given(commands)
def test_every_command_survives_its_plain_data_round_trip(cmd: PumpCommand) -> None:
    data = json.loads(json.dumps(command_to_data(cmd)))
    assert command_from_data(data) == cmd


def test_an_mri_begun_with_an_alarm_sounding_ends_in_a_telemetry_hold_after_a_restore() -> None:
    original = _new("synchromed_ii_20")
    original.advance_to(24 * 95.0)  # past the low-reservoir alarm: it sounds
    assert original.sounding_alarms()
    apply(original, BeginMri(), original.t_h, tolerance=CATALOG.refill_tolerance)
    state = json.loads(json.dumps(pump_state(original)))
    restored = restore_pump(state, original.preset, original.catheter, guard=original.guard)
    for pump in (original, restored):
        pump.advance_to(pump.t_h + 1.0)
        apply(pump, EndMri(), pump.t_h, tolerance=CATALOG.refill_tolerance)
    assert not original.running
    assert "waiting for interrogation" in original.status().stop_reason
    _same(original, restored)
