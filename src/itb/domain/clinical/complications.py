"""Complications of the implanted system and what the clinic does about them.

Besides catheter and pump faults (:mod:`itb.domain.pump.faults`), the implanted
system has its own complications ([F2][F3]; [D63][D64][D66]; [C7][C8]): wound
or pump-pocket infection, meningitis, a leak of spinal fluid (headache on
standing, a fluid collection), skin breaking down over the pump or catheter,
the pump turning over in its pocket, an inflammatory mass at the catheter tip,
and the surgical list of bleeding and nerve injury. Each is a
:class:`ComplicationSpec` read from ``complications.toml``:

- **when**: a probability within an early window after each implant
  procedure, then a constant late hazard per patient-year
  (:func:`onset_after_procedure_h` turns one unit exponential into the onset
  time, so every engine draws it the same way);
- **what shows**: the signs the patient or the clinic sees (keys of the
  triage guide's signs, so triage, the card and the simulated clinic speak of
  the same things);
- **what it does to delivery**: the share of the pumped drug that still
  reaches the CSF, and whether the reservoir can still be refilled (the pump
  side of it is a pump fault of the same name);
- **what the clinic does**: the first treatment, how long until it resolves,
  and how often the pump has to come out instead (explant).

An explant stops intrathecal baclofen abruptly, the very event the boxed
warning is about ([C4][C5]), unless the clinic bridges
(:class:`BridgeRules`): oral baclofen at an equivalent dose, which may not
prevent withdrawal on its own ([C58]), or an intrathecal bridge through a
temporary catheter. The pump is implanted again once the infection is over.

Pure Python; every number comes from the data with its source and status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.pump.faults import Fault, FaultKind
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY

__all__ = [
    "Bridge",
    "BridgeRules",
    "ComplicationKind",
    "ComplicationRules",
    "ComplicationSpec",
    "Treatment",
    "bridge_rate_mcg_per_h",
    "complication_of_fault",
    "onset_after_procedure_h",
    "oral_bridge_mg_per_day",
    "parse_complication_rules",
    "pump_fault",
]


class ComplicationKind(StrEnum):
    """Complications of the implanted system (not faults of the catheter or the pump's motor)."""

    WOUND_INFECTION = "wound_infection"
    """Infection of a wound or of the pump pocket."""
    MENINGITIS = "meningitis"
    """Infection of the membranes around the spinal cord and brain."""
    CSF_LEAK = "csf_leak"
    """Spinal fluid leaking where the catheter enters the spine: headache on standing, a
    fluid collection (hygroma) at the back wound or the pocket."""
    SKIN_EROSION = "skin_erosion"
    """The skin over the pump or the catheter breaks down."""
    PUMP_FLIP = "pump_flip"
    """The pump turns over or moves in its pocket: the refill septum cannot be reached."""
    CATHETER_TIP_MASS = "catheter_tip_mass"
    """An inflammatory mass at the catheter tip: less drug reaches the spinal fluid, new
    neurological signs."""
    HAEMATOMA = "haematoma"
    """Bleeding at a wound: swelling and bruising."""
    NEUROLOGICAL_INJURY = "neurological_injury"
    """Injury to the spinal cord or a nerve root at surgery (weakness, numbness, paralysis)."""


class Treatment(StrEnum):
    """What the clinic does about a complication (the registry records these)."""

    OBSERVATION = "observation"
    ANTIBIOTICS = "antibiotics"
    BED_REST = "bed_rest"
    BLOOD_PATCH = "blood_patch"
    DRAINAGE = "drainage"
    POCKET_REVISION = "pocket_revision"
    CATHETER_REVISION = "catheter_revision"
    EXPLANT = "explant"
    REIMPLANT = "reimplant"


class Bridge(StrEnum):
    """How therapy is carried over while the pump is out."""

    NONE = "none"
    ORAL = "oral"
    """Oral baclofen at the dose equivalent to the pump's (capped at the oral maximum)."""
    INTRATHECAL = "intrathecal"
    """Baclofen through a temporary intrathecal catheter at the pump's dose."""


@dataclass(frozen=True, slots=True)
class ComplicationSpec:
    """One complication: when it comes, what it shows, what it does, what the clinic does.

    Attributes:
        kind: which complication.
        label: plain words for screens.
        signs: triage sign keys the patient shows while it lasts (none: only what the
            pharmacology shows, e.g. the loss of effect of a mass at the catheter tip).
        early_probability: probability within ``early_window_days`` of an implant
            procedure (per procedure).
        early_window_days: the early, post-operative window, days.
        late_per_year: hazard after the early window, 1/patient-year.
        fraction_to_csf: share of the pumped drug still reaching the CSF while it lasts
            (1 = no effect on delivery).
        blocks_refill: the reservoir cannot be refilled while it lasts.
        found_by: ``"signs"`` (the patient reports them), ``"refill"`` (the clinic finds
            it when a refill fails) or ``"workup"`` (imaging during a work-up of
            withdrawal or loss of effect).
        treatment: the first treatment.
        resolves_days: from the treatment to recovery when the pump stays in, days.
        explant_probability: share of cases where the pump has to come out instead.
    """

    kind: ComplicationKind
    label: str
    signs: tuple[str, ...]
    early_probability: Sourced
    early_window_days: Sourced
    late_per_year: Sourced
    fraction_to_csf: Sourced
    blocks_refill: bool
    found_by: str
    treatment: Treatment
    resolves_days: Sourced
    explant_probability: Sourced

    @property
    def early_rate_per_day(self) -> float:
        """The constant hazard over the early window giving ``early_probability``, 1/day."""
        p, w = self.early_probability.value, self.early_window_days.value
        if p <= 0.0 or w <= 0.0:
            return 0.0
        return -math.log1p(-p) / w

    def explants(self, u: float) -> bool:
        """True when the pump comes out, for a uniform draw ``u`` in [0, 1)."""
        return u < self.explant_probability.value


@dataclass(frozen=True, slots=True)
class BridgeRules:
    """Explant, bridge and re-implant.

    Attributes:
        bridge: the clinic's default bridge while the pump is out.
        reimplant_after_days: from an explant to the new pump, days.
        oral_mg_per_intrathecal_mcg: oral dose per intrathecal dose of similar effect,
            mg oral per mcg intrathecal (about 100 times: 0.1 mg per mcg).
        oral_max_mg_per_day: the oral label's maximum, mg/day.
        oral_effect_fraction: the share of the equivalent intrathecal dose an oral bridge
            makes good at the spinal cord (< 1: oral baclofen may not prevent withdrawal).
        intrathecal_effect_fraction: the same for a temporary intrathecal bridge.
    """

    bridge: Bridge
    reimplant_after_days: Sourced
    oral_mg_per_intrathecal_mcg: Sourced
    oral_max_mg_per_day: Sourced
    oral_effect_fraction: Sourced
    intrathecal_effect_fraction: Sourced


@dataclass(frozen=True, slots=True)
class ComplicationRules:
    """Every complication and the bridging rules (``complications.toml``)."""

    kinds: Mapping[ComplicationKind, ComplicationSpec]
    bridging: BridgeRules

    def spec(
        self, kind: ComplicationKind | str, *, field: str = "complication"
    ) -> ComplicationSpec:
        """A complication by kind.

        Raises:
            InvalidValue: unknown kind (the message lists the known ones).
        """
        try:
            return self.kinds[ComplicationKind(kind)]
        except ValueError:
            raise InvalidValue(field, kind, ", ".join(k.value for k in self.kinds)) from None


def onset_after_procedure_h(spec: ComplicationSpec, unit_exponential: float) -> float:
    """Hours from an implant procedure to the complication's onset (inf: never).

    The hazard is ``early_rate_per_day`` over the early window and
    ``late_per_year`` after it; the onset is where the cumulative hazard reaches
    ``unit_exponential`` (inverse transform, so every engine maps one draw to the
    same instant).

    Raises:
        InvalidValue: a negative draw.
    """
    if not unit_exponential >= 0.0:
        raise InvalidValue("unit_exponential", unit_exponential, ">= 0")
    early = spec.early_rate_per_day
    window_d = spec.early_window_days.value
    if early > 0.0 and unit_exponential < early * window_d:
        return unit_exponential / early * HOURS_PER_DAY
    rest = unit_exponential - early * window_d
    late_per_day = spec.late_per_year.value / DAYS_PER_YEAR
    if late_per_day <= 0.0:
        return math.inf
    return (window_d + rest / late_per_day) * HOURS_PER_DAY


def oral_bridge_mg_per_day(rules: BridgeRules, dose_mcg_per_day: float) -> float:
    """The oral baclofen bridge for an intrathecal dose, mg/day (capped at the oral maximum)."""
    equivalent = dose_mcg_per_day * rules.oral_mg_per_intrathecal_mcg.value
    return min(equivalent, rules.oral_max_mg_per_day.value)


def bridge_rate_mcg_per_h(rules: BridgeRules, bridge: Bridge, dose_mcg_per_day: float) -> float:
    """The intrathecal-equivalent rate a bridge makes good at the spinal cord, mcg/h.

    An oral bridge gives ``oral_bridge_mg_per_day`` back through
    ``oral_mg_per_intrathecal_mcg`` and ``oral_effect_fraction``; an intrathecal
    bridge gives the pump's dose times ``intrathecal_effect_fraction``; none gives 0.
    """
    if dose_mcg_per_day <= 0.0:
        return 0.0
    match bridge:
        case Bridge.NONE:
            return 0.0
        case Bridge.ORAL:
            oral = oral_bridge_mg_per_day(rules, dose_mcg_per_day)
            equivalent = oral / rules.oral_mg_per_intrathecal_mcg.value
            return equivalent * rules.oral_effect_fraction.value / HOURS_PER_DAY
        case Bridge.INTRATHECAL:
            return dose_mcg_per_day * rules.intrathecal_effect_fraction.value / HOURS_PER_DAY


_PUMP_FAULTS: Mapping[ComplicationKind, FaultKind] = {
    ComplicationKind.CATHETER_TIP_MASS: FaultKind.TIP_MASS,
    ComplicationKind.CSF_LEAK: FaultKind.CSF_LEAK,
    ComplicationKind.PUMP_FLIP: FaultKind.POCKET_FLIP,
}
"""The complications that act on delivery or on refills through a pump fault."""


def pump_fault(spec: ComplicationSpec) -> Fault | None:
    """The pump fault a complication starts (None: it does not act on the pump system).

    A mass at the tip or a leak of spinal fluid lets only ``fraction_to_csf`` of the drug
    reach (and stay in) the CSF; a pump turned over in its pocket cannot be refilled.
    """
    kind = _PUMP_FAULTS.get(spec.kind)
    if kind is None:
        return None
    if kind is FaultKind.POCKET_FLIP:
        return Fault(kind)
    return Fault(kind, fraction=spec.fraction_to_csf.value)


def complication_of_fault(kind: FaultKind) -> ComplicationKind | None:
    """The complication a pump fault stands for (None: a fault of the pump or catheter)."""
    for complication, fault in _PUMP_FAULTS.items():
        if fault is kind:
            return complication
    return None


# ------------------------------------------------------------------- parsing

_FOUND_BY = ("signs", "refill", "workup")


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise InvalidValue(f"{where}.{key}", value, "a list of non-empty strings (may be empty)")
    return tuple(value)


def _fraction(entry: Mapping[str, Any], key: str, where: str) -> Sourced:
    value = sourced(entry, key, where=where)
    if not 0.0 <= value.value <= 1.0:
        raise InvalidValue(f"{where}.{key}", value.value, "0 to 1")
    return value


def _positive(entry: Mapping[str, Any], key: str, where: str, *, zero: bool = False) -> Sourced:
    value = sourced(entry, key, where=where)
    ok = value.value >= 0.0 if zero else value.value > 0.0
    if not (math.isfinite(value.value) and ok):
        raise InvalidValue(f"{where}.{key}", value.value, ">= 0" if zero else "> 0")
    return value


def _spec(key: str, entry: Mapping[str, Any]) -> ComplicationSpec:
    where = f"kinds.{key}"
    try:
        kind = ComplicationKind(key)
    except ValueError:
        raise InvalidValue(
            "complications.kinds", key, ", ".join(k.value for k in ComplicationKind)
        ) from None
    label = entry.get("label")
    if not isinstance(label, str) or not label:
        raise InvalidValue(f"{where}.label", label, "a non-empty string")
    found_by = entry.get("found_by")
    if found_by not in _FOUND_BY:
        raise InvalidValue(f"{where}.found_by", found_by, ", ".join(_FOUND_BY))
    blocks = entry.get("blocks_refill", False)
    if not isinstance(blocks, bool):
        raise InvalidValue(f"{where}.blocks_refill", blocks, "true or false")
    try:
        treatment = Treatment(str(entry.get("treatment")))
    except ValueError:
        raise InvalidValue(
            f"{where}.treatment", entry.get("treatment"), ", ".join(t.value for t in Treatment)
        ) from None
    fraction = _fraction(entry, "fraction_to_csf", where)
    if fraction.value < 1.0 and kind not in _PUMP_FAULTS:
        raise InvalidValue(
            f"{where}.fraction_to_csf",
            fraction.value,
            "1 (only a catheter-tip mass or a spinal fluid leak changes delivery)",
        )
    if blocks != (kind is ComplicationKind.PUMP_FLIP):
        raise InvalidValue(
            f"{where}.blocks_refill", blocks, "true for pump_flip only (no other kind blocks it)"
        )
    return ComplicationSpec(
        kind=kind,
        label=label,
        signs=_strings(entry, "signs", where),
        early_probability=_fraction(entry, "early_probability", where),
        early_window_days=_positive(entry, "early_window_days", where),
        late_per_year=_positive(entry, "late_per_patient_year", where, zero=True),
        fraction_to_csf=fraction,
        blocks_refill=blocks,
        found_by=str(found_by),
        treatment=treatment,
        resolves_days=_positive(entry, "resolves_days", where),
        explant_probability=_fraction(entry, "explant_probability", where),
    )


def parse_complication_rules(table: Mapping[str, Any]) -> ComplicationRules:
    """Parse ``complications.toml``.

    Raises:
        InvalidValue: a missing or malformed entry (the message names it).
    """
    kinds = table.get("kinds")
    if not isinstance(kinds, Mapping) or not kinds:
        raise InvalidValue("complications.kinds", kinds, "a table of complications")
    specs: dict[ComplicationKind, ComplicationSpec] = {}
    for key, entry in kinds.items():
        if not isinstance(entry, Mapping):
            raise InvalidValue(f"kinds.{key}", entry, "a table")
        spec = _spec(str(key), entry)
        specs[spec.kind] = spec
    missing = [k.value for k in ComplicationKind if k not in specs]
    if missing:
        raise InvalidValue("complications.kinds", ", ".join(missing), "every complication kind")
    b = table.get("bridging")
    if not isinstance(b, Mapping):
        raise InvalidValue("complications.bridging", b, "a table")
    try:
        bridge = Bridge(str(b.get("bridge")))
    except ValueError:
        raise InvalidValue(
            "bridging.bridge", b.get("bridge"), ", ".join(x.value for x in Bridge)
        ) from None
    where = "bridging"
    bridging = BridgeRules(
        bridge=bridge,
        reimplant_after_days=_positive(b, "reimplant_after_days", where),
        oral_mg_per_intrathecal_mcg=_positive(b, "oral_mg_per_intrathecal_mcg", where),
        oral_max_mg_per_day=_positive(b, "oral_max_mg_per_day", where),
        oral_effect_fraction=_fraction(b, "oral_effect_fraction", where),
        intrathecal_effect_fraction=_fraction(b, "intrathecal_effect_fraction", where),
    )
    return ComplicationRules(kinds=specs, bridging=bridging)
