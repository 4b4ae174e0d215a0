"""Pump kinds as reviewed data presets (``itb/data/pumps.toml``).

Three kinds: a programmable peristaltic pump
(SynchroMed II-like, 20 and 40 mL), a valve-gated programmable pump
(Prometra II-like, delivering in discrete valve strokes) and a constant-flow
gas-driven pump (Codman 3000-like: fixed mL/day, dose changed only through the
concentration; flow shifts with body temperature and ambient pressure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import DAYS_PER_YEAR

__all__ = ["BatterySpec", "PumpKind", "PumpPreset", "parse_presets"]


class PumpKind(StrEnum):
    """How the pump moves drug."""

    PERISTALTIC = "peristaltic"
    VALVE = "valve"
    CONSTANT_FLOW = "constant_flow"


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """Battery model parameters ([D6][D7]).

    Drain is linear in the motor's commanded volume: ``d0 + d1 * q`` (fraction of
    the capacity to the elective replacement indicator per day, ``q`` in mL/day),
    fitted so that the life to end of service is ``life_low_flow_years`` at zero
    flow and ``life_reference_years`` at ``reference_flow_ml_per_day``. A hard
    limit stops the pump at ``hard_limit_years`` whatever the flow.
    """

    life_low_flow_years: float
    life_reference_years: float
    reference_flow_ml_per_day: float
    hard_limit_years: float
    eri_to_eos_days: float

    @property
    def drain_base_per_day(self) -> float:
        """Fraction of the ERI capacity used per day at zero flow."""
        return 1.0 / (self.life_low_flow_years * DAYS_PER_YEAR - self.eri_to_eos_days)

    @property
    def drain_per_ml(self) -> float:
        """Fraction of the ERI capacity used per mL commanded."""
        at_ref = 1.0 / (self.life_reference_years * DAYS_PER_YEAR - self.eri_to_eos_days)
        return (at_ref - self.drain_base_per_day) / self.reference_flow_ml_per_day

    def days_to_eri(self, flow_ml_per_day: float) -> float:
        """Days from a fresh battery to ERI at a constant commanded flow (hard limit applied)."""
        by_capacity = 1.0 / (self.drain_base_per_day + self.drain_per_ml * flow_ml_per_day)
        by_hard_limit = self.hard_limit_years * DAYS_PER_YEAR - self.eri_to_eos_days
        return min(by_capacity, by_hard_limit)


@dataclass(frozen=True, slots=True)
class PumpPreset:
    """A pump model's fixed characteristics. All numbers keep their provenance in ``sources``."""

    key: str
    label: str
    kind: PumpKind
    reservoir_ml: float
    accuracy_band_pct: float
    internal_path_ml: float
    min_rate_ml_per_day: float
    max_rate_ml_per_day: float
    rate_resolution_ml_per_day: float
    low_reservoir_alarm_default_ml: float
    low_reservoir_alarm_min_ml: float
    low_reservoir_alarm_max_ml: float
    empty_reservoir_alarm_ml: float
    max_flex_steps_per_day: int
    max_bolus_rate_ml_per_h: float
    stopped_alarm_h: float
    patient_bolus_allowed_for_baclofen: bool
    stroke_ml: float
    has_alarms: bool
    battery: BatterySpec | None
    default_catheter: str = ""
    """The catheter family (``catheters.toml``) the pump is usually implanted with."""
    nominal_flow_ml_per_day: float = 0.0
    flow_change_pct_per_degc: float = 0.0
    flow_change_pct_per_kpa_below_reference: float = 0.0
    reference_body_temperature_degc: float = 37.0
    reference_ambient_pressure_kpa: float = 101.325
    access_port_max_injection_ml: float = math.inf
    """The largest injection through the catheter access port, mL (its kit's syringe)."""
    overinfusion_drift_factor_max: float = math.inf
    """The largest true/programmed flow an overinfusion_drift fault may step to."""
    battery_depletion_factor_max: float = math.inf
    """The largest drain multiplier of a battery_depletion fault."""
    low_residual_volume_ml: float = 0.0
    """Below this true reservoir volume the pump delivers only ``low_residual_flow_fraction``
    of its flow (0: no such effect)."""
    low_residual_flow_fraction: float = 1.0
    """True flow below ``low_residual_volume_ml`` as a fraction of the flow above it."""
    sources: Mapping[str, Sourced] = field(default_factory=dict)
    modelled_on_maker: str = ""
    """The maker of the marketed pump this preset is modelled on (the preset itself is a
    model of it, not the device); empty when the data does not say."""

    @property
    def programmable(self) -> bool:
        """True for pumps whose rate the clinician programs."""
        return self.kind is not PumpKind.CONSTANT_FLOW

    def assumptions(self) -> dict[str, Sourced]:
        """The preset's numbers that are modelling assumptions."""
        return {k: v for k, v in self.sources.items() if v.assumed}


_PROGRAMMABLE_FIELDS = (
    "min_rate_ml_per_day",
    "max_rate_ml_per_day",
    "rate_resolution_ml_per_day",
    "low_reservoir_alarm_default_ml",
    "low_reservoir_alarm_min_ml",
    "low_reservoir_alarm_max_ml",
    "empty_reservoir_alarm_ml",
    "max_bolus_rate_ml_per_h",
    "stopped_alarm_h",
)
_EVERY_PRESET_FIELDS = (
    "access_port_max_injection_ml",
    "overinfusion_drift_factor_max",
    "battery_depletion_factor_max",
    "low_residual_volume_ml",
    "low_residual_flow_fraction",
)
_CONSTANT_FLOW_FIELDS = (
    "nominal_flow_ml_per_day",
    "flow_change_pct_per_degc",
    "flow_change_pct_per_kpa_below_sea_level",
    "reference_body_temperature_degc",
    "reference_ambient_pressure_kpa",
)


def _resolve(tables: Mapping[str, Any], key: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if key in seen:
        raise InvalidValue(f"pumps.{key}.inherit", key, "no inheritance cycle")
    table = tables.get(key)
    if not isinstance(table, Mapping):
        raise InvalidValue("pump", key, ", ".join(sorted(tables)))
    parent = table.get("inherit")
    merged: dict[str, Any] = {}
    if isinstance(parent, str):
        merged.update(_resolve(tables, parent, (*seen, key)))
    merged.update({k: v for k, v in table.items() if k != "inherit"})
    return merged


def _preset(key: str, table: Mapping[str, Any]) -> PumpPreset:
    where = f"pumps.{key}"
    kind_raw = table.get("kind")
    try:
        kind = PumpKind(str(kind_raw))
    except ValueError:
        raise InvalidValue(
            f"{where}.kind", kind_raw, ", ".join(k.value for k in PumpKind)
        ) from None
    numbers = {
        k: sourced(table, k, where=where)
        for k, v in table.items()
        if isinstance(v, Mapping) and "value" in v
    }

    def num(name: str, default: float | None = None) -> float:
        if name in numbers:
            return numbers[name].value
        if default is None:
            raise InvalidValue(f"{where}.{name}", None, "a sourced number")
        return default

    battery = None
    if num("has_battery") >= 0.5:
        battery = BatterySpec(
            life_low_flow_years=num("battery_life_years_low_flow"),
            life_reference_years=num("battery_life_years_at_reference_flow"),
            reference_flow_ml_per_day=num("battery_reference_flow_ml_per_day"),
            hard_limit_years=num("battery_hard_limit_years"),
            eri_to_eos_days=num("eri_to_eos_days"),
        )
    required = _CONSTANT_FLOW_FIELDS if kind is PumpKind.CONSTANT_FLOW else _PROGRAMMABLE_FIELDS
    for name in (*required, *_EVERY_PRESET_FIELDS):
        num(name)
    return PumpPreset(
        key=key,
        label=str(table.get("label", key)),
        modelled_on_maker=str(table.get("modelled_on_maker", "")),
        kind=kind,
        reservoir_ml=num("reservoir_ml"),
        accuracy_band_pct=num("accuracy_band_pct"),
        internal_path_ml=num("internal_path_ml"),
        min_rate_ml_per_day=num("min_rate_ml_per_day", 0.0),
        max_rate_ml_per_day=num("max_rate_ml_per_day", 0.0),
        rate_resolution_ml_per_day=num("rate_resolution_ml_per_day", 0.0),
        low_reservoir_alarm_default_ml=num("low_reservoir_alarm_default_ml", 0.0),
        low_reservoir_alarm_min_ml=num("low_reservoir_alarm_min_ml", 0.0),
        low_reservoir_alarm_max_ml=num("low_reservoir_alarm_max_ml", 0.0),
        empty_reservoir_alarm_ml=num("empty_reservoir_alarm_ml", 0.0),
        max_flex_steps_per_day=int(num("max_flex_steps_per_day")),
        max_bolus_rate_ml_per_h=num("max_bolus_rate_ml_per_h", 0.0),
        stopped_alarm_h=num("stopped_alarm_h", 0.0),
        patient_bolus_allowed_for_baclofen=num("patient_bolus_allowed_for_baclofen") >= 0.5,
        stroke_ml=num("stroke_ml"),
        has_alarms=num("has_alarms") >= 0.5,
        battery=battery,
        default_catheter=str(table.get("catheter", "")),
        nominal_flow_ml_per_day=num("nominal_flow_ml_per_day", 0.0),
        flow_change_pct_per_degc=num("flow_change_pct_per_degc", 0.0),
        flow_change_pct_per_kpa_below_reference=num("flow_change_pct_per_kpa_below_sea_level", 0.0),
        reference_body_temperature_degc=num("reference_body_temperature_degc", 37.0),
        reference_ambient_pressure_kpa=num("reference_ambient_pressure_kpa", 101.325),
        access_port_max_injection_ml=num("access_port_max_injection_ml"),
        overinfusion_drift_factor_max=num("overinfusion_drift_factor_max"),
        battery_depletion_factor_max=num("battery_depletion_factor_max"),
        low_residual_volume_ml=_low_residual_volume(where, num("low_residual_volume_ml")),
        low_residual_flow_fraction=_fraction(where, num("low_residual_flow_fraction")),
        sources=numbers,
    )


def _low_residual_volume(where: str, value: float) -> float:
    if not value >= 0.0:  # also refuses NaN
        raise InvalidValue(f"{where}.low_residual_volume_ml", value, ">= 0 mL")
    return value


def _fraction(where: str, value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise InvalidValue(f"{where}.low_residual_flow_fraction", value, "above 0 and at most 1")
    return value


def parse_presets(tables: Mapping[str, Any]) -> dict[str, PumpPreset]:
    """Parse the ``pumps`` data table into presets keyed by name (``inherit`` resolved)."""
    return {key: _preset(key, _resolve(tables, key)) for key in tables}
