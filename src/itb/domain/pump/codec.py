"""Plain-data form of pump commands, programs and pump state (for storage and audit).

A command log is stored as JSON: :func:`command_to_data` and
:func:`command_from_data` turn every :data:`~itb.domain.pump.commands.PumpCommand`
into a dict of plain values (tagged with its kind) and back, exactly (floats
are kept as floats, so a round trip is the identical command).

:func:`pump_state` and :func:`restore_pump` do the same for a pump's state at its
present time, so a registry can keep the pump of each implant as a cache and
apply the next command without replaying years of history. The command log
stays the truth: a state that cannot be restored is rebuilt by replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.pump.alarms import AlarmKind, AlarmRecord
from itb.domain.pump.catheter import CatheterSpec, Slug
from itb.domain.pump.commands import (
    Authorship,
    BeginMri,
    CommandRecord,
    EndMri,
    FillAtImplant,
    InjectAccessPort,
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
    command_name,
)
from itb.domain.pump.faults import Fault, FaultKind
from itb.domain.pump.limits import DoseLimits
from itb.domain.pump.prescription import Bolus, BolusKind, PatientBolusSettings, Prescription
from itb.domain.pump.presets import PumpPreset
from itb.domain.pump.programs import Continuous, Flex, FlexStep, PeriodicBolus, Program, Stopped
from itb.domain.pump.pump import ActiveBolus, Ledger, Pump, StopReason

__all__ = [
    "STATE_VERSION",
    "authorship_from_data",
    "authorship_to_data",
    "command_from_data",
    "command_to_data",
    "prescription_from_data",
    "prescription_to_data",
    "program_from_data",
    "program_to_data",
    "pump_state",
    "record_from_data",
    "record_to_data",
    "restore_pump",
]

STATE_VERSION = 3
"""Changes whenever :func:`pump_state`'s layout changes (older states are rebuilt by replay)."""


# ------------------------------------------------------------------ programs


def program_to_data(program: Program) -> dict[str, Any]:
    """A program as plain data (``mode`` plus its numbers)."""
    match program:
        case Stopped():
            return {"mode": "stopped"}
        case Continuous():
            return {"mode": "continuous", "dose_mcg_per_day": program.dose_mcg_per_day}
        case Flex():
            return {
                "mode": "flex",
                "days": [[[s.start_h, s.rate_mcg_per_h] for s in day] for day in program.days],
            }
        case PeriodicBolus():
            return {
                "mode": "periodic",
                "basal_mcg_per_day": program.basal_mcg_per_day,
                "bolus_mcg": program.bolus_mcg,
                "bolus_duration_h": program.bolus_duration_h,
                "interval_h": program.interval_h,
                "first_start_h": program.first_start_h,
            }


def _req(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise InvalidValue(f"{where}.{key}", None, "a value (required)")
    return data[key]


def program_from_data(data: Mapping[str, Any], where: str = "program") -> Program:
    """The program of :func:`program_to_data`.

    Raises:
        InvalidValue: unknown mode or a missing or bad number.
    """
    mode = _req(data, "mode", where)
    match mode:
        case "stopped":
            return Stopped()
        case "continuous":
            return Continuous(float(_req(data, "dose_mcg_per_day", where)))
        case "flex":
            days = _req(data, "days", where)
            return Flex(
                days=tuple(tuple(FlexStep(float(a), float(b)) for a, b in day) for day in days)
            )
        case "periodic":
            return PeriodicBolus(
                basal_mcg_per_day=float(_req(data, "basal_mcg_per_day", where)),
                bolus_mcg=float(_req(data, "bolus_mcg", where)),
                bolus_duration_h=float(_req(data, "bolus_duration_h", where)),
                interval_h=float(_req(data, "interval_h", where)),
                first_start_h=float(data.get("first_start_h", 0.0)),
            )
    raise InvalidValue(f"{where}.mode", mode, "stopped, continuous, flex, periodic")


def prescription_to_data(rx: Prescription) -> dict[str, Any]:
    """A prescription as plain data."""
    pb = rx.patient_bolus
    return {
        "program": program_to_data(rx.program),
        "concentration_mcg_per_ml": rx.concentration_mcg_per_ml,
        "patient_bolus": None
        if pb is None
        else {
            "dose_mcg": pb.dose_mcg,
            "duration_h": pb.duration_h,
            "lockout_h": pb.lockout_h,
            "max_per_day": pb.max_per_day,
        },
    }


def prescription_from_data(data: Mapping[str, Any], where: str = "prescription") -> Prescription:
    """The prescription of :func:`prescription_to_data`."""
    pb = data.get("patient_bolus")
    return Prescription(
        program_from_data(_req(data, "program", where), f"{where}.program"),
        float(_req(data, "concentration_mcg_per_ml", where)),
        None
        if pb is None
        else PatientBolusSettings(
            float(pb["dose_mcg"]),
            float(pb["duration_h"]),
            float(pb["lockout_h"]),
            int(pb["max_per_day"]),
        ),
    )


# ------------------------------------------------------------------ commands


def _opt_rx(rx: Prescription | None) -> dict[str, Any] | None:
    return None if rx is None else prescription_to_data(rx)


def command_to_data(command: PumpCommand) -> dict[str, Any]:
    """A command as plain data, tagged with its kind (``command_name``)."""
    kind = command_name(command)
    match command:
        case FillAtImplant():
            body: dict[str, Any] = {
                "volume_ml": command.volume_ml,
                "concentration_mcg_per_ml": command.concentration_mcg_per_ml,
                "true_concentration_mcg_per_ml": command.true_concentration_mcg_per_ml,
            }
        case Refill():
            body = {
                "volume_ml": command.volume_ml,
                "concentration_mcg_per_ml": command.concentration_mcg_per_ml,
                "prescription": _opt_rx(command.prescription),
                "bridge_bolus": command.bridge_bolus,
                "low_reservoir_alarm_ml": command.low_reservoir_alarm_ml,
                "pump_clock_offset_h": command.pump_clock_offset_h,
                "true_concentration_mcg_per_ml": command.true_concentration_mcg_per_ml,
                "into_pocket": command.into_pocket,
            }
        case Reprogram():
            bolus: dict[str, Any] | None
            match command.bolus:
                case SingleBolus() as b:
                    bolus = {"kind": "single", "dose_mcg": b.dose_mcg, "duration_h": b.duration_h}
                case PrimingBolus() as b:
                    bolus = {
                        "kind": "priming",
                        "duration_h": b.duration_h,
                        "volume_ml": b.volume_ml,
                    }
                case None:
                    bolus = None
            body = {
                "prescription": _opt_rx(command.prescription),
                "low_reservoir_alarm_ml": command.low_reservoir_alarm_ml,
                "pump_clock_offset_h": command.pump_clock_offset_h,
                "reservoir_volume_ml": command.reservoir_volume_ml,
                "bolus": bolus,
                "unfinished": command.unfinished,
            }
        case InjectAccessPort():
            body = {
                "volume_ml": command.volume_ml,
                "concentration_mcg_per_ml": command.concentration_mcg_per_ml,
                "duration_h": command.duration_h,
                "acknowledge_overdose_hazard": command.acknowledge_overdose_hazard,
            }
        case StartFault():
            f = command.fault
            body = {
                "fault": f.kind.value,
                "fraction": f.fraction,
                "factor": f.factor,
                "critical": f.critical,
            }
        case RepairFault():
            body = {"fault": command.kind.value}
        case SetEnvironment():
            body = {
                "body_temperature_degc": command.body_temperature_degc,
                "ambient_pressure_kpa": command.ambient_pressure_kpa,
            }
        case RequestPatientBolus() | BeginMri() | EndMri() | Interrogate():
            body = {}
    return {"kind": kind, **body}


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def command_from_data(data: Mapping[str, Any], where: str = "command") -> PumpCommand:
    """The command of :func:`command_to_data`.

    Raises:
        InvalidValue: an unknown kind, or a value the command refuses.
    """
    kind = _req(data, "kind", where)

    def rx(key: str = "prescription") -> Prescription | None:
        value = data.get(key)
        return None if value is None else prescription_from_data(value, f"{where}.{key}")

    match kind:
        case "fill_at_implant":
            return FillAtImplant(
                float(data["volume_ml"]),
                float(data["concentration_mcg_per_ml"]),
                _opt_float(data.get("true_concentration_mcg_per_ml")),
            )
        case "refill":
            return Refill(
                volume_ml=float(data["volume_ml"]),
                concentration_mcg_per_ml=float(data["concentration_mcg_per_ml"]),
                prescription=rx(),
                bridge_bolus=bool(data.get("bridge_bolus", False)),
                low_reservoir_alarm_ml=_opt_float(data.get("low_reservoir_alarm_ml")),
                pump_clock_offset_h=_opt_float(data.get("pump_clock_offset_h")),
                true_concentration_mcg_per_ml=_opt_float(data.get("true_concentration_mcg_per_ml")),
                into_pocket=bool(data.get("into_pocket", False)),
            )
        case "reprogram":
            raw = data.get("bolus")
            order: SingleBolus | PrimingBolus | None = None
            if raw is not None:
                if raw.get("kind") == "single":
                    order = SingleBolus(float(raw["dose_mcg"]), float(raw["duration_h"]))
                elif raw.get("kind") == "priming":
                    order = PrimingBolus(float(raw["duration_h"]), _opt_float(raw.get("volume_ml")))
                else:
                    raise InvalidValue(f"{where}.bolus.kind", raw.get("kind"), "single, priming")
            return Reprogram(
                prescription=rx(),
                low_reservoir_alarm_ml=_opt_float(data.get("low_reservoir_alarm_ml")),
                pump_clock_offset_h=_opt_float(data.get("pump_clock_offset_h")),
                reservoir_volume_ml=_opt_float(data.get("reservoir_volume_ml")),
                bolus=order,
                unfinished=bool(data.get("unfinished", False)),
            )
        case "patient_bolus":
            return RequestPatientBolus()
        case "access_port_injection":
            return InjectAccessPort(
                float(data["volume_ml"]),
                float(data["concentration_mcg_per_ml"]),
                float(data["duration_h"]),
                acknowledge_overdose_hazard=bool(data.get("acknowledge_overdose_hazard", False)),
            )
        case "fault":
            return StartFault(
                Fault(
                    FaultKind(data["fault"]),
                    float(data.get("fraction", 1.0)),
                    float(data.get("factor", 1.0)),
                    bool(data.get("critical", False)),
                )
            )
        case "repair":
            return RepairFault(FaultKind(data["fault"]))
        case "mri_start":
            return BeginMri()
        case "mri_end":
            return EndMri()
        case "environment":
            return SetEnvironment(
                _opt_float(data.get("body_temperature_degc")),
                _opt_float(data.get("ambient_pressure_kpa")),
            )
        case "interrogate":
            return Interrogate()
    raise InvalidValue(f"{where}.kind", kind, "a pump command kind")


def authorship_to_data(by: Authorship) -> dict[str, Any]:
    """Who entered a command, as plain data."""
    return {f.name: getattr(by, f.name) for f in fields(Authorship)}


def authorship_from_data(data: Mapping[str, Any]) -> Authorship:
    """The authorship of :func:`authorship_to_data`."""
    return Authorship(**{f.name: data.get(f.name, f.default) for f in fields(Authorship)})


def record_to_data(record: CommandRecord) -> dict[str, Any]:
    """A command-log line as plain data."""
    return {
        "t_h": record.t_h,
        "command": command_to_data(record.command),
        "by": authorship_to_data(record.by),
    }


def record_from_data(data: Mapping[str, Any]) -> CommandRecord:
    """The command-log line of :func:`record_to_data`."""
    return CommandRecord(
        float(data["t_h"]),
        command_from_data(data["command"]),
        authorship_from_data(data.get("by", {})),
    )


# ------------------------------------------------------------------ pump state


def _bolus_to_data(b: Bolus) -> dict[str, Any]:
    return {"kind": b.kind.value, "volume_ml": b.volume_ml, "rate_ml_per_h": b.rate_ml_per_h}


def pump_state(pump: Pump) -> dict[str, Any]:
    """The pump's state at its present time as plain data (event and alarm logs left out:
    the registry keeps its own records; active alarms and their acknowledgement are kept)."""
    f = pump.faults
    return {
        "version": STATE_VERSION,
        "preset": pump.preset.key,
        "t_h": pump.t_h,
        "implant_t_h": pump.implant_t_h,
        "accuracy_factor": pump.accuracy_factor,
        "rated_accuracy_factor": pump.rated_accuracy_factor,
        "pump_clock_offset_h": pump.pump_clock_offset_h,
        "dead_space": [[s.volume_ml, s.concentration_mcg_per_ml] for s in pump.dead_space.slugs],
        "reservoir_actual_ml": pump.reservoir_actual_ml,
        "reservoir_concentration_mcg_per_ml": pump.reservoir_concentration_mcg_per_ml,
        "labelled_concentration_mcg_per_ml": pump.labelled_concentration_mcg_per_ml,
        "reservoir_calculated_ml": pump.reservoir_calculated_ml,
        "calculated_empty_since_t_h": pump.calculated_empty_since_t_h,
        "low_reservoir_alarm_ml": pump.low_reservoir_alarm_ml,
        "prescription": prescription_to_data(pump.prescription),
        "bolus": None
        if pump.bolus is None
        else {**_bolus_to_data(pump.bolus.bolus), "remaining_ml": pump.bolus.remaining_ml},
        "stop_reasons": sorted(r.name for r in pump.stop_reasons),
        "stopped_since_t_h": pump.stopped_since_t_h,
        "battery_used": pump.battery_used,
        "eri_t_h": pump.eri_t_h,
        "eos_t_h": pump.eos_t_h,
        "faults": {
            "occluded": f.occluded,
            "leak_fraction": f.leak_fraction,
            "disconnected": f.disconnected,
            "tip_fraction_to_csf": f.tip_fraction_to_csf,
            "mass_fraction_to_csf": f.mass_fraction_to_csf,
            "csf_leak_fraction": f.csf_leak_fraction,
            "stalled": f.stalled,
            "drain_multiplier": f.drain_multiplier,
            "memory_error": None if f.memory_error is None else f.memory_error.value,
            "active": sorted(f.active),
        },
        "body_temperature_degc": pump.body_temperature_degc,
        "ambient_pressure_kpa": pump.ambient_pressure_kpa,
        "stroke_remainder_ml": pump.stroke_remainder_ml,
        "commanded_at_last_fill_ml": pump.commanded_at_last_fill_ml,
        "calculated_at_last_fill_ml": pump.calculated_at_last_fill_ml,
        "withdrawn_since_fill": pump.withdrawn_since_fill,
        "patient_bolus_starts_t_h": list(pump.patient_bolus_starts_t_h),
        "ledger": {fl.name: getattr(pump.ledger, fl.name) for fl in fields(Ledger)},
        "active_alarms": {k.value: t for k, t in pump.active_alarms.items()},
        "acknowledged": sorted(k.value for k in pump.acknowledged_alarms),
        "mri_alarming": pump.mri_alarming,
    }


def restore_pump(
    data: Mapping[str, Any],
    preset: PumpPreset,
    catheter: CatheterSpec,
    *,
    guard: DoseLimits | None = None,
) -> Pump:
    """The pump of :func:`pump_state` (its logs start empty).

    Raises:
        InvalidValue: a state of another layout version or another preset.
    """
    if data.get("version") != STATE_VERSION:
        raise InvalidValue("pump state version", data.get("version"), str(STATE_VERSION))
    if data.get("preset") != preset.key:
        raise InvalidValue("pump state preset", data.get("preset"), preset.key)
    pump = Pump(
        preset,
        catheter,
        t_h=float(data["implant_t_h"]),
        accuracy_factor=float(data["rated_accuracy_factor"]),
        pump_clock_offset_h=float(data["pump_clock_offset_h"]),
        guard=guard,
    )
    pump.t_h = float(data["t_h"])
    pump.accuracy_factor = float(data["accuracy_factor"])
    pump.dead_space.restore([Slug(float(v), float(c)) for v, c in data["dead_space"]])
    pump.reservoir_actual_ml = float(data["reservoir_actual_ml"])
    pump.reservoir_concentration_mcg_per_ml = float(data["reservoir_concentration_mcg_per_ml"])
    pump.labelled_concentration_mcg_per_ml = float(data["labelled_concentration_mcg_per_ml"])
    pump.reservoir_calculated_ml = float(data["reservoir_calculated_ml"])
    pump.calculated_empty_since_t_h = _opt_float(data["calculated_empty_since_t_h"])
    pump.low_reservoir_alarm_ml = float(data["low_reservoir_alarm_ml"])
    pump.prescription = prescription_from_data(data["prescription"])
    b = data["bolus"]
    pump.bolus = (
        None
        if b is None
        else ActiveBolus(
            Bolus(BolusKind(b["kind"]), float(b["volume_ml"]), float(b["rate_ml_per_h"])),
            float(b["remaining_ml"]),
        )
    )
    pump.stop_reasons = {StopReason[name] for name in data["stop_reasons"]}
    pump.stopped_since_t_h = _opt_float(data["stopped_since_t_h"])
    pump.battery_used = float(data["battery_used"])
    pump.eri_t_h = _opt_float(data["eri_t_h"])
    pump.eos_t_h = _opt_float(data["eos_t_h"])
    fd = data["faults"]
    f = pump.faults
    f.occluded = bool(fd["occluded"])
    f.leak_fraction = float(fd["leak_fraction"])
    f.disconnected = bool(fd["disconnected"])
    f.tip_fraction_to_csf = float(fd["tip_fraction_to_csf"])
    f.mass_fraction_to_csf = float(fd["mass_fraction_to_csf"])
    f.csf_leak_fraction = float(fd["csf_leak_fraction"])
    f.stalled = bool(fd["stalled"])
    f.drain_multiplier = float(fd["drain_multiplier"])
    f.memory_error = None if fd["memory_error"] is None else AlarmKind(fd["memory_error"])
    f.active = set(fd["active"])
    pump.body_temperature_degc = float(data["body_temperature_degc"])
    pump.ambient_pressure_kpa = float(data["ambient_pressure_kpa"])
    pump.stroke_remainder_ml = float(data["stroke_remainder_ml"])
    pump.commanded_at_last_fill_ml = float(data["commanded_at_last_fill_ml"])
    pump.calculated_at_last_fill_ml = float(data["calculated_at_last_fill_ml"])
    pump.withdrawn_since_fill = bool(data["withdrawn_since_fill"])
    pump.patient_bolus_starts_t_h = [float(t) for t in data["patient_bolus_starts_t_h"]]
    pump.ledger = Ledger(**{k: float(v) for k, v in data["ledger"].items()})
    pump.active_alarms = {AlarmKind(k): float(t) for k, t in data["active_alarms"].items()}
    pump.acknowledged_alarms = {AlarmKind(k) for k in data["acknowledged"]}
    pump.mri_alarming = bool(data["mri_alarming"])
    pump.alarm_log = [
        AlarmRecord(t, kind, "raised") for kind, t in sorted(pump.active_alarms.items(), key=str)
    ]
    return pump
