"""The vectorised cohort engine: pump system and patient for many patients at once (numpy).

Same semantics as the single-patient domain path (``Pump.advance_to`` ->
``DeliverySegment`` -> ``itb.domain.patient.advance``), checked patient by patient
in ``tests/property/test_engines_agree.py``. Arrays are over patients (shape (N,)).

What it covers (docs/cohort-trials.md gives the full list):

- programs: continuous, flex (a day program of steps) and periodic boluses on a
  basal (:mod:`itb.simulation.arm_program`), at the pump's rate resolution and
  range; titration by the label rules (:mod:`itb.domain.clinical.titration`,
  numbers from ``titration.toml``) as dose steps at visit days, or a held dose;
- boluses: a bridge bolus at a concentration change (pushes the old drug out of
  the dead space at the old dose rate), and patient-activated boluses requested
  at set hours by patients whose spasticity is above goal, accepted only within
  the clinician's lockout and rolling 24-hour maximum; a bolus replaces the
  program's rate while it runs and ends when its volume has been commanded;
- plug flow through pump path + catheter: the dead space is a queue of at most
  :data:`MAX_SLUGS` slugs per patient, so a concentration change reaches the tip
  exactly one dead-space volume later;
- per-pump accuracy factor: the actual reservoir empties at commanded x factor
  and runs dry (exactly, mid-day) while the *calculated* reservoir, which drives
  the low- and empty-reservoir alarms, follows the commanded rate only;
- refills on a policy (fixed interval, or a margin in days before the calculated
  low-reservoir alarm date, counting the most patient boluses allowed), each
  scheduled refill missed with a probability and retried later;
  withdraw-and-fill to the reservoir's capacity; a step up to the next drug
  concentration when the reservoir would last too short;
- faults from hazard rates (catheter occlusion, disconnection, leak, tip
  migration, motor stall), ended by a revision after withdrawal signs or a
  restart after the stall alarm;
- complications of the implanted system (``complications.toml``, when the arm
  turns them on): an onset day per kind from one unit exponential through the
  domain's early-window-then-late hazard; found ``complication_found_days``
  after the onset (or at the refill that fails, for a pump turned in its
  pocket); treated, revised, or explanted ``revision_delay_days`` later with the
  arm's bridge (oral or intrathecal: an intrathecal-equivalent rate into the
  CSF) until a new pump ``reimplant_after_days`` later (full reservoir, primed
  catheter, new battery, no faults); a mass at the tip and a spinal fluid leak
  let only their fraction reach the CSF; a turned pump cannot be refilled until
  its pocket revision the next day, when it is refilled;
- alarms: low and empty reservoir (calculated volume), motor stall, pump stopped
  over 48 h, ERI and EOS from the battery model (``BatterySpec``: drain linear in
  the commanded volume, hard limit); at EOS the pump stops; a planned
  replacement after ERI renews the battery;
- the patient: exact per-segment propagation ``x' = Phi x + Gamma R``, kept in
  each patient's modal coordinates (the eigen-decomposition of its system matrix,
  so a segment is five multiply-adds; patients whose rates nearly coincide step the
  states with the matrix exponential instead); withdrawal and overdose from the
  observation map (:mod:`itb.simulation.cohort`), counted at every day end.

Time: a shared daily grid. Clinic events (refills, visits, fault onsets,
repairs) happen at day boundaries, in numpy over all patients. Inside a day the
program's pieces (and the patient-bolus request hours) are shared by all
patients and run by the compiled kernel (:mod:`itb.simulation.piece_kernel`,
numba), one patient at a time with its state in local variables; inside each
piece a patient's rate into the CSF is piecewise constant with breakpoints at
the exact instants a bolus ends, the tip concentration switches (slug
boundaries), the reservoir falls to the low-residual volume or runs dry, or the
pump reaches end of service. The propagators of whole pieces are computed once
per patient; the rest at each breakpoint. Nothing is stepped with a tolerance.

Not covered: a fault or a complication starting while the pump is out (it is dropped), a new
early window at a re-implant, more than one complication of each kind per patient,
valve strokes (a valve pump's flow is taken as continuous, so it
is outside the agreement test), constant-flow pumps,
temperature and pressure effects, pocket fills, memory errors, over-infusion
drift, more than one fault of each kind per patient, catheter replacement at
revision (the dead space keeps its contents), a new reservoir at pump
replacement (only the battery is renewed).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

from itb.domain.clinical.care import DAY_EDGE_H, TreatmentGoal
from itb.domain.clinical.complications import (
    Bridge,
    ComplicationKind,
    ComplicationRules,
    Treatment,
)
from itb.domain.clinical.titration import RuleGroup, TitrationRules
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.pump import (
    CATHETER_FAULT_KINDS,
    DiscrepancyTolerance,
    FaultKind,
    PatientBolusSettings,
    PumpKind,
    PumpPreset,
)
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.simulation.arm_program import ProgramShape
from itb.simulation.blas import single_threaded_blas
from itb.simulation.cohort import (
    BoolArray,
    CohortArrays,
    CohortState,
    FloatArray,
    IntArray,
)
from itb.simulation.piece_kernel import (
    COLUMNS,
    EVENT_KINDS,
    PARAMS,
    modal_forms,
    observation_inputs,
    propagators,
    run_pieces,
)

__all__ = [
    "ALARM_KINDS",
    "COMPLICATION_KINDS",
    "FAULT_KINDS",
    "MAX_SLUGS",
    "RULE_GROUPS",
    "ArmPolicy",
    "CohortData",
    "EngineResult",
    "PumpDraws",
    "complication_days",
    "draw_pump_randomness",
    "pump_stream",
    "quantize_ml_per_h",
    "run_arm",
]

MAX_SLUGS = 6
"""Most distinct concentrations held in one patient's dead space at once."""
MAX_REFILL_ATTEMPTS = 400
"""Missed-refill draws per patient; scheduled refills beyond this reuse the last draw (docs)."""
RULE_GROUPS: tuple[RuleGroup, ...] = ("spinal", "cerebral", "pediatric")
ALARM_KINDS = (
    "low_reservoir",
    "empty_reservoir",
    "motor_stall",
    "pump_stopped_over_48h",
    "elective_replacement_indicator",
    "end_of_service",
)
_FAULTS: tuple[FaultKind, ...] = (
    FaultKind.OCCLUSION,
    FaultKind.DISCONNECTION,
    FaultKind.MOTOR_STALL,
    FaultKind.LEAK,
    FaultKind.MIGRATION,
)
"""The faults the cohort engine draws, in column order of its fault arrays."""
FAULT_KINDS: tuple[str, ...] = tuple(k.value for k in _FAULTS)
OCCLUSION, DISCONNECTION, MOTOR_STALL, LEAK, MIGRATION = (
    _FAULTS.index(k)
    for k in (
        FaultKind.OCCLUSION,
        FaultKind.DISCONNECTION,
        FaultKind.MOTOR_STALL,
        FaultKind.LEAK,
        FaultKind.MIGRATION,
    )
)
"""Column of each fault in the fault arrays."""
CATHETER_FAULTS: tuple[int, ...] = tuple(
    i for i, k in enumerate(_FAULTS) if k in CATHETER_FAULT_KINDS
)
"""Columns of the faults a surgical revision ends (the domain's catheter faults)."""
COMPLICATION_KINDS: tuple[str, ...] = tuple(k.value for k in ComplicationKind)
"""The complications, in column order of the complication arrays."""
_CK = {k: i for i, k in enumerate(ComplicationKind)}
MASS, CSF_LEAK, FLIP = (
    _CK[ComplicationKind.CATHETER_TIP_MASS],
    _CK[ComplicationKind.CSF_LEAK],
    _CK[ComplicationKind.PUMP_FLIP],
)
_EPS_H = 1e-9
"""Same time tolerance as the domain pump (lockout and rolling-24-hour comparisons)."""

# ----------------------------------------------------------------- reviewed data


@dataclass(frozen=True, slots=True)
class CohortData:
    """Hazard rates and care assumptions from ``itb/data/cohort.toml`` (each :class:`Sourced`)."""

    occlusion_per_year: Sourced
    disconnection_per_year: Sourced
    stall_per_year: Sourced
    leak_per_year: Sourced
    migration_per_year: Sourced
    leak_fraction_lost: Sourced
    migration_fraction_to_csf: Sourced
    missed_refill_probability: Sourced
    missed_refill_delay_days: Sourced
    revision_delay_days: Sourced
    stall_restart_days: Sourced
    complication_found_days: Sourced
    max_refill_interval_days: Sourced
    accuracy_factor_mean: Sourced
    accuracy_factor_sd: Sourced
    catheter_length_min_cm: Sourced
    catheter_length_max_cm: Sourced

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> CohortData:
        """Parse ``cohort.toml``.

        Raises:
            InvalidValue: a missing or malformed entry.
        """

        def sec(name: str) -> Mapping[str, Any]:
            value = table.get(name)
            if not isinstance(value, Mapping):
                raise InvalidValue(f"cohort.{name}", value, "a table")
            return value

        f, c, p = sec("faults"), sec("care"), sec("pump")
        data = cls(
            occlusion_per_year=sourced(f, "catheter_occlusion_per_patient_year", where="faults"),
            disconnection_per_year=sourced(
                f, "catheter_disconnection_per_patient_year", where="faults"
            ),
            stall_per_year=sourced(f, "motor_stall_per_pump_year", where="faults"),
            leak_per_year=sourced(f, "catheter_leak_per_patient_year", where="faults"),
            migration_per_year=sourced(f, "catheter_migration_per_patient_year", where="faults"),
            leak_fraction_lost=sourced(f, "leak_fraction_lost", where="faults"),
            migration_fraction_to_csf=sourced(f, "migration_fraction_to_csf", where="faults"),
            missed_refill_probability=sourced(c, "missed_refill_probability", where="care"),
            missed_refill_delay_days=sourced(c, "missed_refill_delay_days", where="care"),
            revision_delay_days=sourced(c, "revision_delay_days", where="care"),
            stall_restart_days=sourced(c, "stall_restart_days", where="care"),
            complication_found_days=sourced(c, "complication_found_days", where="care"),
            max_refill_interval_days=sourced(c, "max_refill_interval_days", where="care"),
            accuracy_factor_mean=sourced(p, "accuracy_factor_mean", where="pump"),
            accuracy_factor_sd=sourced(p, "accuracy_factor_sd", where="pump"),
            catheter_length_min_cm=sourced(p, "catheter_length_min_cm", where="pump"),
            catheter_length_max_cm=sourced(p, "catheter_length_max_cm", where="pump"),
        )
        if not 0.0 <= data.missed_refill_probability.value < 1.0:
            raise InvalidValue(
                "care.missed_refill_probability", data.missed_refill_probability.value, "0 to < 1"
            )
        for name in ("leak_fraction_lost", "migration_fraction_to_csf"):
            v = getattr(data, name).value
            if not 0.0 <= v <= 1.0:
                raise InvalidValue(f"faults.{name}", v, "0 to 1")
        for name in (
            "missed_refill_delay_days",
            "revision_delay_days",
            "stall_restart_days",
            "complication_found_days",
        ):
            v = getattr(data, name).value
            if v < 1.0 or v != math.floor(v):
                raise InvalidValue(f"care.{name}", v, "a whole number of days >= 1")
        return data


# ----------------------------------------------------------------- policy


RefillRule = Literal["interval", "margin"]
TitrationRule = Literal["label", "hold"]


@dataclass(frozen=True, slots=True)
class ArmPolicy:
    """What differs between trial arms: the pump and the clinic's rules.

    Attributes:
        name: arm name.
        pump: pump preset key (``pumps.toml``); programmable presets only.
        refill: ``"interval"`` (every ``refill_interval_days``) or ``"margin"``
            (``refill_margin_days`` before the calculated low-reservoir alarm date).
        refill_interval_days: days between refills under ``"interval"``.
        refill_margin_days: days before the alarm date under ``"margin"``.
        low_reservoir_alarm_ml: the low-reservoir alarm volume programmed, mL.
        titration: ``"label"`` (label rules at every visit) or ``"hold"`` (initial dose kept).
        inpatient_titration_days: daily titration visits after implant, days.
        visit_interval_days: days between maintenance visits.
        initial_concentration_mcg_per_ml: drug filled at implant, mcg/mL.
        concentrations_mcg_per_ml: products the clinic may step up to, ascending.
        min_refill_interval_days: at a refill, move to the weakest stronger product that
            keeps refills at least this far apart when they would come closer at the
            present dose (:func:`itb.domain.clinical.care.choose_concentration`); None: never.
        replacement_after_eri_days: planned pump replacement this many days after ERI
            (the battery's end of service comes ``eri_to_eos_days`` after ERI).
        program: how the daily dose is spread over the day (continuous, flex, periodic).
        bridge_bolus: give a bridge bolus at every concentration change.
        patient_bolus: patient-activated bolus limits (``None``: none programmed).
        patient_bolus_request_hours: hours of the day at which a patient whose last
            day-end MAS was above goal (and without overdose signs) asks for a bolus.
        catheter: the catheter family key (``catheters.toml``).
        complications: complications of the implanted system happen
            (``complications.toml``).
        bridge: how therapy is carried over while a pump is out.

    Every field is given explicitly: a trial file's omitted keys take the protocol's
    reviewed defaults (``protocol.toml``), never a code default.
    """

    name: str
    pump: str
    refill: RefillRule
    refill_interval_days: int
    refill_margin_days: int
    low_reservoir_alarm_ml: float
    titration: TitrationRule
    inpatient_titration_days: int
    visit_interval_days: int
    initial_concentration_mcg_per_ml: float
    concentrations_mcg_per_ml: tuple[float, ...]
    min_refill_interval_days: float | None
    replacement_after_eri_days: int
    program: ProgramShape
    bridge_bolus: bool
    patient_bolus: PatientBolusSettings | None
    patient_bolus_request_hours: tuple[float, ...]
    catheter: str
    complications: bool
    bridge: Bridge


# ----------------------------------------------------------------- random draws


def pump_stream(seed: int, k: int) -> np.random.SeedSequence:
    """Seed sequence of patient ``k``'s pump and care draws.

    It is child 0 of the patient's own sequence ``SeedSequence(seed, spawn_key=(k,))``
    (:func:`itb.simulation.population.patient_seed_sequence`), so it never overlaps
    the patient-parameter draws and depends on ``(seed, k)`` only.
    """
    return np.random.SeedSequence(seed, spawn_key=(k, 0))


@dataclass(frozen=True)
class PumpDraws:
    """Per-patient uniforms and exponentials, independent of the arm (common random numbers).

    Attributes:
        accuracy_u: uniform for the accuracy factor (truncated normal), shape (N,).
        catheter_u: uniform for the implanted catheter length, shape (N,).
        fault_e: unit exponentials for occlusion, disconnection, stall, shape (N, 3).
        missed_u: uniform per scheduled refill attempt, shape (N, MAX_REFILL_ATTEMPTS).
        fault_e2: unit exponentials for leak and migration, shape (N, 2) (drawn after
            the others, so adding them changed no earlier draw).
        complication_e: unit exponentials of the onset of each of
            :data:`COMPLICATION_KINDS`, shape (N, K) (drawn after the faults').
        complication_u: uniforms of the explant decision of each, shape (N, K).
    """

    accuracy_u: FloatArray
    catheter_u: FloatArray
    fault_e: FloatArray
    missed_u: FloatArray
    fault_e2: FloatArray
    complication_e: FloatArray
    complication_u: FloatArray

    @property
    def n(self) -> int:
        """Number of patients."""
        return int(self.accuracy_u.shape[0])


def draw_pump_randomness(seed: int, ks: IntArray | list[int]) -> PumpDraws:
    """The pump and care draws of patients ``ks`` (each from its own stream, fixed order)."""
    idx = [int(k) for k in ks]
    acc = np.empty(len(idx))
    cat = np.empty(len(idx))
    fe = np.empty((len(idx), 3))
    mu = np.empty((len(idx), MAX_REFILL_ATTEMPTS))
    fe2 = np.empty((len(idx), 2))
    n_c = len(COMPLICATION_KINDS)
    ce = np.empty((len(idx), n_c))
    cu = np.empty((len(idx), n_c))
    for i, k in enumerate(idx):
        rng = np.random.default_rng(pump_stream(seed, k))
        u = rng.random(2)
        acc[i], cat[i] = u[0], u[1]
        fe[i] = rng.standard_exponential(3)
        mu[i] = rng.random(MAX_REFILL_ATTEMPTS)
        fe2[i] = rng.standard_exponential(2)
        ce[i] = rng.standard_exponential(n_c)
        cu[i] = rng.random(n_c)
    return PumpDraws(acc, cat, fe, mu, fe2, ce, cu)


def accuracy_factors(draws: PumpDraws, data: CohortData, preset: PumpPreset) -> FloatArray:
    """Accuracy factors: normal(mean, sd) truncated to the preset's rated band (inverse CDF)."""
    return within_band(
        draws.accuracy_u,
        data.accuracy_factor_mean.value,
        data.accuracy_factor_sd.value,
        preset.accuracy_band_pct,
    )


def within_band(u: FloatArray, mean: float, sd: float, band_pct: float | FloatArray) -> FloatArray:
    """Normal(mean, sd) truncated to ``1 ± band_pct %``, by the inverse CDF of uniforms ``u``."""
    band = np.asarray(band_pct, dtype=np.float64) / 100.0
    lo, hi = 1.0 - band, 1.0 + band
    a, b = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    out = mean + sd * ndtri(a + u * (b - a))
    return np.asarray(np.clip(out, lo, hi), dtype=np.float64)


def catheter_lengths_cm(draws: PumpDraws, data: CohortData) -> FloatArray:
    """Implanted catheter lengths, cm (uniform between the data's min and max)."""
    lo, hi = data.catheter_length_min_cm.value, data.catheter_length_max_cm.value
    return np.asarray(lo + (hi - lo) * draws.catheter_u, dtype=np.float64)


def fault_days(draws: PumpDraws, data: CohortData) -> FloatArray:
    """Onset day (>= 1, inf = never) of each of :data:`FAULT_KINDS`, shape (N, 5)."""
    rates = np.array(
        [
            data.occlusion_per_year.value,
            data.disconnection_per_year.value,
            data.stall_per_year.value,
            data.leak_per_year.value,
            data.migration_per_year.value,
        ]
    )
    with np.errstate(divide="ignore"):
        years = np.hstack([draws.fault_e, draws.fault_e2]) / rates[None, :]
    days = np.ceil(years * DAYS_PER_YEAR)
    return np.asarray(np.where(np.isfinite(days), np.maximum(days, 1.0), np.inf))


def complication_days(draws: PumpDraws, rules: ComplicationRules) -> FloatArray:
    """Onset day (>= 1, inf = never) of each of :data:`COMPLICATION_KINDS`, shape (N, K).

    The domain's :func:`~itb.domain.clinical.complications.onset_after_procedure_h` on
    arrays: the early window's constant hazard, then the late hazard; the onset falls at
    the start of the day it lies in.
    """
    out = np.empty_like(draws.complication_e)
    for j, kind in enumerate(ComplicationKind):
        spec = rules.spec(kind)
        e = draws.complication_e[:, j]
        early = spec.early_rate_per_day
        window = spec.early_window_days.value
        late = spec.late_per_year.value / DAYS_PER_YEAR
        with np.errstate(divide="ignore", invalid="ignore"):
            in_window = (e < early * window) if early > 0.0 else np.zeros(len(e), dtype=bool)
            after = window + (e - early * window) / late if late > 0.0 else np.full(len(e), np.inf)
            days = np.where(in_window, e / early if early > 0.0 else np.inf, after)
        out[:, j] = np.where(np.isfinite(days), np.maximum(np.ceil(days), 1.0), np.inf)
    return out


# ----------------------------------------------------------------- helpers


def quantize_ml_per_h(rate_ml_per_h: FloatArray, resolution_ml_per_day: float) -> FloatArray:
    """The domain pump's programming resolution (``Pump._quantize_ml_per_h``), on arrays."""
    if resolution_ml_per_day <= 0.0:
        return rate_ml_per_h
    per_day = np.round(rate_ml_per_h * HOURS_PER_DAY / resolution_ml_per_day) * (
        resolution_ml_per_day
    )
    return np.asarray(per_day / HOURS_PER_DAY, dtype=np.float64)


@dataclass
class EngineResult:
    """Per-patient outcomes of one arm over the horizon (arrays of shape (N,)).

    ``events`` (when recorded) lists ``(patient, t_h, kind)`` in time order per
    patient; ``trace_x``/``trace_delivered`` hold the state at every day end.
    """

    horizon_days: int
    withdrawal_days: IntArray
    severe_withdrawal_days: IntArray
    overdose_days: IntArray
    refills: IntArray
    missed_refills: IntArray
    dry_events: IntArray
    alarms: IntArray
    """Shape (N, len(ALARM_KINDS)): alarms raised of each kind."""
    discrepancies: IntArray
    """Refills whose residual was outside the refill tolerance."""
    eri_reached: BoolArray
    eos_reached: BoolArray
    replacements: IntArray
    faults: IntArray
    """Shape (N, 5): faults of each of :data:`FAULT_KINDS` started within the horizon."""
    revisions: IntArray
    concentration_changes: IntArray
    final_dose_mcg_per_day: FloatArray
    dose_at_year_mcg_per_day: FloatArray
    """Dose in force at the end of day 365 (NaN when the horizon is shorter)."""
    delivered_mcg: FloatArray
    final_x: FloatArray
    patient_boluses: IntArray
    """Patient-activated boluses accepted."""
    patient_bolus_refusals: IntArray
    """Patient requests refused (lockout, daily maximum, stopped pump, bolus running)."""
    bridge_boluses: IntArray
    complications: IntArray
    """Shape (N, K): complications of each of :data:`COMPLICATION_KINDS` begun."""
    explants: IntArray
    reimplants: IntArray
    bridged_explants: IntArray
    """Explants carried over by a bridge (oral or intrathecal)."""
    failed_refills: IntArray
    """Refills the clinic could not do (the pump turned in its pocket)."""
    explanted_days: IntArray
    """Day ends with the pump out."""
    explanted_withdrawal_days: IntArray
    """Day ends with withdrawal signs while the pump was out."""
    explanted_severe_withdrawal_days: IntArray
    events: list[tuple[int, float, str]] = field(default_factory=list)
    trace_x: FloatArray | None = None
    trace_delivered: FloatArray | None = None
    trace_therapy_h: FloatArray | None = None


@dataclass(frozen=True)
class DayEnd:
    """What the clinic sees of every patient at a day's end (the observation map's parts it
    acts on, from the compiled kernel)."""

    mas: FloatArray
    withdrawal_stage: IntArray
    overdose_stage: IntArray


def _group_index(spinal: BoolArray, ages: FloatArray, rules: TitrationRules) -> IntArray:
    ped = ages < rules.pediatric_age_below_years.value
    return np.asarray(np.where(ped, 2, np.where(spinal, 0, 1)), dtype=np.int64)


def run_arm(
    cohort: CohortArrays,
    ages_years: FloatArray,
    initial_dose_mcg_per_day: FloatArray,
    draws: PumpDraws,
    *,
    policy: ArmPolicy,
    preset: PumpPreset,
    catheter_ml_per_cm: float,
    rules: TitrationRules,
    goal: TreatmentGoal,
    dose_hard_max_mcg_per_day: Mapping[str, float],
    data: CohortData,
    tolerance: DiscrepancyTolerance,
    horizon_days: int,
    dose_snapshot_day: int,
    complications: ComplicationRules,
    record_events: bool = False,
    trace: bool = False,
) -> EngineResult:
    """Simulate one arm for the patients of ``cohort`` (already implanted) over ``horizon_days``.

    Args:
        cohort: patient parameters as arrays, shape (N,).
        ages_years: ages (children follow the paediatric titration steps), shape (N,).
        initial_dose_mcg_per_day: starting daily doses, shape (N,).
        draws: the patients' pump and care draws.
        policy: the arm's pump and clinic rules.
        preset: the arm's pump preset (programmable).
        catheter_ml_per_cm: catheter internal volume per implanted cm, mL/cm.
        rules: label titration rules; goal: the clinic's treatment goal (the same rule as
            :func:`itb.domain.clinical.care.assess`, applied to arrays).
        data: hazards and care assumptions; tolerance: the syringe-reading floor of a
            refill discrepancy (the rated band is the preset's).
        horizon_days: whole days to simulate.
        dose_snapshot_day: the day whose dose is reported as ``dose_at_year_mcg_per_day``.
        dose_hard_max_mcg_per_day: the drug library's hard maximum by rule group
            (spinal, cerebral, pediatric): titration never proposes more, mcg/day.
        complications: what each complication of the implanted system does and how the
            clinic treats it (used when the arm turns complications on).
        record_events: keep ``(patient, t_h, kind)`` events (small cohorts only).
        trace: keep the state at every day end (small cohorts only).

    Raises:
        InvalidValue: a policy the pump cannot carry out.
    """
    run = _ArmRun(
        cohort,
        ages_years,
        initial_dose_mcg_per_day,
        draws,
        policy=policy,
        preset=preset,
        catheter_ml_per_cm=catheter_ml_per_cm,
        rules=rules,
        goal=goal,
        dose_hard_max_mcg_per_day=dose_hard_max_mcg_per_day,
        data=data,
        tolerance=tolerance,
        horizon_days=horizon_days,
        dose_snapshot_day=dose_snapshot_day,
        complications=complications,
        record_events=record_events,
        trace=trace,
    )
    return run.run()


class _ArmRun:
    """The state of one arm over its patients, advanced day by day (see the module docstring)."""

    def __init__(
        self,
        cohort: CohortArrays,
        ages_years: FloatArray,
        initial_dose_mcg_per_day: FloatArray,
        draws: PumpDraws,
        *,
        policy: ArmPolicy,
        preset: PumpPreset,
        catheter_ml_per_cm: float,
        rules: TitrationRules,
        goal: TreatmentGoal,
        dose_hard_max_mcg_per_day: Mapping[str, float],
        data: CohortData,
        tolerance: DiscrepancyTolerance,
        horizon_days: int,
        dose_snapshot_day: int,
        complications: ComplicationRules,
        record_events: bool,
        trace: bool,
    ) -> None:
        if preset.kind is PumpKind.CONSTANT_FLOW or preset.battery is None:
            raise InvalidValue("pump", preset.key, "a programmable pump with a battery")
        shape = policy.program
        shape.check_pump(preset, "arm")
        if policy.patient_bolus is not None and not preset.patient_bolus_allowed_for_baclofen:
            raise InvalidValue(
                "patient_bolus", preset.key, "a pump that allows patient boluses of baclofen"
            )
        single_threaded_blas()
        self.cohort, self.policy, self.preset, self.shape = cohort, policy, preset, shape
        self.data, self.tolerance, self.horizon_days = data, tolerance, horizon_days
        self.record_events, self.trace = record_events, trace
        self.goal = goal
        self.dose_snapshot_day = dose_snapshot_day
        n = self.n = cohort.n
        self.events: list[tuple[int, float, str]] = []
        self.thr = float(policy.low_reservoir_alarm_ml)
        self.cap_ml = preset.reservoir_ml
        self.concs = tuple(sorted(policy.concentrations_mcg_per_ml))
        self.res = preset.rate_resolution_ml_per_day
        # the day's pieces: program pieces, split at the patient-bolus request hours
        hours = sorted(set(policy.patient_bolus_request_hours)) if policy.patient_bolus else []
        pieces: list[tuple[float, float, int, bool]] = []
        for a, b, slot in shape.day_pieces():
            cuts = [a, *(h for h in hours if a < h < b), b]
            for a2, b2 in itertools.pairwise(cuts):
                pieces.append((a2, b2, slot, a2 in hours))
        self.day_pieces = pieces
        # the compiled kernel's patient data: modes (state kept in modal coordinates), and
        # the propagators of every piece length; (Phi, Gamma) for ill-conditioned patients
        self.piece_a = np.array([a for a, _b, _slot, _request in pieces])
        self.piece_b = np.array([b for _a, b, _slot, _request in pieces])
        self.piece_slot = np.array([slot for _a, _b, slot, _request in pieces], dtype=np.int64)
        lengths = np.array(sorted({b - a for a, b, _slot, _request in pieces}))
        self.piece_length = np.searchsorted(lengths, self.piece_b - self.piece_a).astype(np.int64)
        m = cohort.system_matrices()
        lam, vec, vinv, well = modal_forms(m)
        ill = np.flatnonzero(~well)
        ill_row = np.full(n, -1, dtype=np.int64)
        ill_row[ill] = np.arange(len(ill))
        z = lam[:, None, :] * lengths[None, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            phi1 = np.where(z == 0.0, 1.0, np.expm1(z) / z)
        e_cache = np.exp(z)
        g_cache = lengths[None, :, None] * phi1 * vinv[:, None, :, 0]
        self.kernel_patient = (
            lam,
            vec,
            vinv,
            well,
            m,
            lengths,
            e_cache,
            g_cache,
            ill_row,
            *propagators(m[ill], lengths),
        )
        # --- per-patient constants
        self.acc = accuracy_factors(draws, data, preset)
        self.dead_ml = (
            preset.internal_path_ml + catheter_lengths_cm(draws, data) * catheter_ml_per_cm
        )
        self.fday = fault_days(draws, data)
        self.draws = draws
        group = _group_index(cohort.spinal, ages_years, rules)
        self.inc_t = np.array([rules.titration_increase[g].default.value for g in RULE_GROUPS])[
            group
        ]
        self.inc_m = np.array([rules.maintenance_increase[g].default.value for g in RULE_GROUPS])[
            group
        ]
        self.hard_max = np.array([dose_hard_max_mcg_per_day[g] for g in RULE_GROUPS])[group]
        self.rules = rules
        self.visit_days = self._visits()

        # --- pump state
        self.conc = np.full(n, float(policy.initial_concentration_mcg_per_ml))
        self.dose = shape.clip_dose(
            np.asarray(initial_dose_mcg_per_day, dtype=np.float64), self.conc, preset
        )
        self._set_rates()
        self.calc = np.full(n, self.cap_ml)
        self.actual = np.full(n, self.cap_ml)
        self.slug_v = np.zeros((n, MAX_SLUGS))
        self.slug_c = np.zeros((n, MAX_SLUGS))
        self.slug_v[:, 0] = self.dead_ml
        self.slug_c[:, 0] = self.conc
        self.commanded_since_fill = np.zeros(n)
        self.fault_on = np.zeros((n, len(FAULT_KINDS)), dtype=bool)
        self.eos_stopped = np.zeros(n, dtype=bool)
        self.stall_alarm_due = np.full(n, np.inf)
        self.battery_used = np.zeros(n)
        self.battery_epoch_h = np.zeros(n)
        self.eri_t = np.full(n, np.inf)
        self.eos_t = np.full(n, np.inf)
        self.replace_day = np.full(n, np.inf)
        self.revision_day = np.full(n, np.inf)
        self.restart_day = np.full(n, np.inf)
        self.last_change_h = np.zeros(n)
        self.last_fill_day = np.zeros(n)
        self.attempt = np.zeros(n, dtype=np.int64)
        self.bolus_on = np.zeros(n, dtype=bool)
        self.bolus_left_ml = np.zeros(n)
        self.bolus_rate = np.zeros(n)
        max_pb = policy.patient_bolus.max_per_day if policy.patient_bolus else 1
        self.pb_starts = np.full((n, max_pb), -np.inf)
        state = CohortState.zeros(n)
        self.x, self.delivered, self.therapy = state.x, state.delivered_mcg, state.therapy_h
        self.y = self.x.copy()
        """The patient state as the kernel keeps it: modal coordinates ``V^-1 x`` for the
        well-conditioned patients, ``x`` itself for the rest; the kernel writes ``x`` and
        the day-end observation at every day's end."""
        self.day_mas = np.zeros(n)
        self.day_stage = np.zeros(n, dtype=np.int64)
        self.day_overdose = np.zeros(n, dtype=np.int64)
        self.kernel_observe = observation_inputs(cohort)

        # --- complications of the implanted system
        self.comp_rules = complications
        n_c = len(COMPLICATION_KINDS)
        self.comp_day = (
            complication_days(draws, complications)
            if policy.complications
            else np.full((n, n_c), np.inf)
        )
        self.comp_on = np.zeros((n, n_c), dtype=bool)
        self.comp_found_day = np.full((n, n_c), np.inf)
        self.comp_end_day = np.full((n, n_c), np.inf)
        self.explanted = np.zeros(n, dtype=bool)
        self.explant_day = np.full(n, np.inf)
        self.reimplant_day = np.full(n, np.inf)
        self.flip_fix_day = np.full(n, np.inf)
        self.bridge_rate = np.zeros(n)
        specs = [complications.spec(k) for k in ComplicationKind]
        self.mass_fraction = specs[MASS].fraction_to_csf.value
        self.leak_fraction = specs[CSF_LEAK].fraction_to_csf.value
        bat = preset.battery
        assert bat is not None  # checked above
        columns = {
            "occlusion": OCCLUSION,
            "disconnection": DISCONNECTION,
            "motor_stall": MOTOR_STALL,
            "leak": LEAK,
            "migration": MIGRATION,
            "mass": MASS,
            "csf_leak": CSF_LEAK,
            "alarm_low_reservoir": ALARM_KINDS.index("low_reservoir"),
            "alarm_empty_reservoir": ALARM_KINDS.index("empty_reservoir"),
            "alarm_eri": ALARM_KINDS.index("elective_replacement_indicator"),
            "alarm_eos": ALARM_KINDS.index("end_of_service"),
        }
        self.kernel_columns = np.array([columns[c] for c in COLUMNS], dtype=np.int64)
        params = {
            "low_reservoir_alarm_ml": self.thr,
            "empty_reservoir_alarm_ml": preset.empty_reservoir_alarm_ml,
            "has_alarms": float(preset.has_alarms),
            "low_residual_volume_ml": preset.low_residual_volume_ml,
            "low_residual_flow_fraction": preset.low_residual_flow_fraction,
            "leak_fraction_lost": data.leak_fraction_lost.value,
            "migration_fraction_to_csf": data.migration_fraction_to_csf.value,
            "complications": float(policy.complications),
            "mass_fraction_to_csf": self.mass_fraction,
            "csf_leak_fraction_to_csf": self.leak_fraction,
            "drain_base_per_h": bat.drain_base_per_day / HOURS_PER_DAY,
            "drain_per_ml": bat.drain_per_ml,
            "hard_limit_from_epoch_h": (bat.hard_limit_years * DAYS_PER_YEAR - bat.eri_to_eos_days)
            * HOURS_PER_DAY,
            "eri_to_eos_h": bat.eri_to_eos_days * HOURS_PER_DAY,
            "replacement_after_eri_days": float(policy.replacement_after_eri_days),
        }
        self.kernel_params = np.array([params[name] for name in PARAMS], dtype=np.float64)

        # --- outcomes
        def zeros() -> IntArray:
            return np.zeros(n, dtype=np.int64)

        self.wd_days, self.severe_days, self.od_days = zeros(), zeros(), zeros()
        self.refills, self.missed, self.dry = zeros(), zeros(), zeros()
        self.alarms = np.zeros((n, len(ALARM_KINDS)), dtype=np.int64)
        self.discrepancies, self.replacements, self.revisions = zeros(), zeros(), zeros()
        self.conc_changes, self.pb_accepted, self.pb_refused = zeros(), zeros(), zeros()
        self.bridges = zeros()
        self.complications = np.zeros((n, n_c), dtype=np.int64)
        self.explants, self.reimplants, self.bridged = zeros(), zeros(), zeros()
        self.failed_refills, self.out_days = zeros(), zeros()
        self.out_wd_days, self.out_severe_days = zeros(), zeros()
        self.eri_reached = np.zeros(n, dtype=bool)
        self.eos_reached = np.zeros(n, dtype=bool)
        self.faults = np.zeros((n, len(FAULT_KINDS)), dtype=np.int64)
        self.dose_at_year = np.full(n, np.nan)
        self.tr_x = np.zeros((horizon_days + 1, n, 5)) if trace else None
        self.tr_d = np.zeros((horizon_days + 1, n)) if trace else None
        self.tr_t = np.zeros((horizon_days + 1, n)) if trace else None
        self.next_refill_day = np.full(n, np.inf)
        self.next_refill_day = self._next_refill(0, np.ones(n, dtype=bool))

    # ------------------------------------------------------------------ helpers

    def log(self, mask: BoolArray, t: FloatArray | float, kind: str) -> None:
        if not self.record_events:
            return
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.n,))
        self.events.extend((int(i), float(tt[i]), kind) for i in np.flatnonzero(mask))

    @property
    def running(self) -> BoolArray:
        return np.asarray(~self.fault_on[:, MOTOR_STALL] & ~self.eos_stopped & ~self.explanted)

    def _set_rates(self) -> None:
        """Commanded volume rate (mL/h) of every program slot, and the commanded mL per day."""
        self.q_slots = [
            quantize_ml_per_h(r / self.conc, self.res)
            for r in self.shape.slot_rates_mcg_per_h(self.dose)
        ]
        self.q_matrix = np.ascontiguousarray(np.stack(self.q_slots), dtype=np.float64)
        daily = np.zeros(self.n)
        for a, b, slot in self.shape.day_pieces():
            daily = daily + self.q_slots[slot] * (b - a)
        self.daily_ml = daily

    def _extra_ml_per_h(self) -> FloatArray | float:
        """The most patient-bolus volume per hour (what the refill date assumes)."""
        pb = self.policy.patient_bolus
        if pb is None:
            return 0.0
        return np.asarray(pb.max_extra_mcg_per_day / self.conc / HOURS_PER_DAY)

    def _alarm_time_h(self, t_now: float) -> FloatArray:
        """When the calculated reservoir reaches the low-reservoir alarm volume (the domain's
        ``time_calculated_volume_reaches``: a running bolus, then the program, each piece
        with the most patient boluses allowed)."""
        n = self.n
        thr = self.thr
        extra = self._extra_ml_per_h()
        vol = self.calc.copy()
        t_out = np.where(vol <= thr, t_now, np.inf)
        pending = vol > thr
        t = np.full(n, t_now)
        if (self.bolus_on & pending).any():
            bol = self.bolus_on & pending
            rate = self.bolus_rate + extra
            with np.errstate(divide="ignore", invalid="ignore"):
                dur = self.bolus_left_ml / self.bolus_rate
                used = rate * dur
                hit = bol & (rate > 0.0) & (vol - used <= thr)
                t_out = np.where(hit, t + (vol - thr) / rate, t_out)
            vol = np.where(bol & ~hit, vol - used, vol)
            t = np.where(bol, t + dur, t)
            pending &= ~hit
        # the program from t on: the rest of the present day's pieces, whole days, then pieces
        pieces = self.shape.day_pieces()
        rates = [q + extra for q in self.q_slots]
        if len(pieces) == 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                hit = pending & (rates[0] > 0.0)
                return np.asarray(np.where(hit, t + (vol - thr) / rates[0], t_out))
        day_vol = np.zeros(n)
        for a, b, slot in pieces:
            day_vol = day_vol + rates[slot] * (b - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            for rounds in range(3):
                day0 = np.floor(t / HOURS_PER_DAY) * HOURS_PER_DAY
                for a, b, slot in pieces:
                    if not pending.any():
                        return t_out
                    r = rates[slot]
                    a_abs, b_abs = day0 + a, day0 + b
                    lo = np.maximum(t, a_abs)
                    inside = pending & (b_abs > lo + _EPS_H)
                    used = r * (b_abs - lo)
                    hit = inside & (r > 0.0) & (vol - used <= thr)
                    t_out = np.where(hit, lo + (vol - thr) / r, t_out)
                    pending &= ~hit
                    vol = np.where(inside & ~hit, vol - used, vol)
                    t = np.where(inside & ~hit, b_abs, t)
                if rounds == 0:
                    # skip the whole days that cannot reach the alarm
                    whole = np.where(
                        pending & (day_vol > 0.0), np.floor((vol - thr) / day_vol) - 1.0, 0.0
                    )
                    whole = np.maximum(whole, 0.0)
                    vol = vol - whole * day_vol
                    t = t + whole * HOURS_PER_DAY
        return t_out

    def _next_refill(self, day: int, mask: BoolArray) -> FloatArray:
        """The domain's refill-day rule (:func:`itb.domain.clinical.care.refill_day`) on
        arrays: the margin before the alarm (or the arm's fixed interval), never after the
        drug's stability limit from the last fill, at least the next day."""
        policy = self.policy
        if policy.refill == "interval":
            nxt = np.full(self.n, float(day + policy.refill_interval_days))
        else:
            t_alarm = self._alarm_time_h(day * HOURS_PER_DAY)
            t_alarm = np.where(self.running | (self.calc <= self.thr), t_alarm, np.inf)
            target = t_alarm - policy.refill_margin_days * HOURS_PER_DAY
            nxt = np.floor((target + DAY_EDGE_H) / HOURS_PER_DAY)
        stability = self.last_fill_day + float(self.data.max_refill_interval_days.value)
        nxt = np.maximum(np.minimum(nxt, stability), day + 1.0)
        return np.asarray(np.where(mask, nxt, self.next_refill_day), dtype=np.float64)

    # -------------------------------------------------------------------- run

    def run(self) -> EngineResult:
        for day in range(self.horizon_days + 1):
            t0 = day * HOURS_PER_DAY
            if self.trace:
                assert self.tr_x is not None
                assert self.tr_d is not None
                assert self.tr_t is not None
                self.tr_x[day], self.tr_d[day], self.tr_t[day] = (
                    self.x,
                    self.delivered,
                    self.therapy,
                )
            if day == self.dose_snapshot_day:
                self.dose_at_year = self.dose.copy()
            obs = self._day_end(day, t0) if day > 0 else None
            if day == self.horizon_days:
                break
            self._clinic(day, t0, obs)
            first = 0
            for k, (a, _b, _slot, request) in enumerate(self.day_pieces):
                if request and obs is not None:
                    self._run_pieces(t0, first, k)
                    self._patient_requests(t0 + a, obs)
                    first = k
            self._run_pieces(t0, first, len(self.day_pieces))
        return EngineResult(
            horizon_days=self.horizon_days,
            withdrawal_days=self.wd_days,
            severe_withdrawal_days=self.severe_days,
            overdose_days=self.od_days,
            refills=self.refills,
            missed_refills=self.missed,
            dry_events=self.dry,
            alarms=self.alarms,
            discrepancies=self.discrepancies,
            eri_reached=self.eri_reached,
            eos_reached=self.eos_reached,
            replacements=self.replacements,
            faults=self.faults,
            revisions=self.revisions,
            concentration_changes=self.conc_changes,
            final_dose_mcg_per_day=self.dose,
            dose_at_year_mcg_per_day=self.dose_at_year,
            delivered_mcg=self.delivered,
            final_x=self.x,
            patient_boluses=self.pb_accepted,
            patient_bolus_refusals=self.pb_refused,
            bridge_boluses=self.bridges,
            complications=self.complications,
            explants=self.explants,
            reimplants=self.reimplants,
            bridged_explants=self.bridged,
            failed_refills=self.failed_refills,
            explanted_days=self.out_days,
            explanted_withdrawal_days=self.out_wd_days,
            explanted_severe_withdrawal_days=self.out_severe_days,
            events=sorted(self.events, key=lambda e: (e[0], e[1])),
            trace_x=self.tr_x,
            trace_delivered=self.tr_d,
            trace_therapy_h=self.tr_t,
        )

    def _day_end(self, day: int, t0: float) -> DayEnd:
        """Observe the day that just ended; start revisions; raise the stopped-48 h alarm."""
        obs = DayEnd(self.day_mas, self.day_stage, self.day_overdose)
        in_wd = obs.withdrawal_stage >= 1
        self.wd_days += in_wd
        self.severe_days += obs.withdrawal_stage >= 2
        self.od_days += obs.overdose_stage >= 1
        out = self.explanted
        self.out_days += out
        self.out_wd_days += out & in_wd
        self.out_severe_days += out & (obs.withdrawal_stage >= 2)
        # a mass at the tip is found by the same work-up (imaging) and ends with the revision
        catheter = self.fault_on[:, list(CATHETER_FAULTS)].any(axis=1) | self.comp_on[:, MASS]
        start = catheter & in_wd & ~np.isfinite(self.revision_day) & ~out
        self.revision_day = np.where(
            start, day + int(self.data.revision_delay_days.value), self.revision_day
        )
        due = self.fault_on[:, MOTOR_STALL] & ~self.eos_stopped & (self.stall_alarm_due <= t0)
        self.alarms[:, ALARM_KINDS.index("pump_stopped_over_48h")] += due
        self.log(due, t0, "pump_stopped_over_48h")
        self.stall_alarm_due = np.where(due, np.inf, self.stall_alarm_due)
        return obs

    def _clinic(self, day: int, t0: float, obs: DayEnd | None) -> None:
        """Clinic events at the day boundary: replacement, restart, revision, fault onsets,
        refills, titration visit."""
        preset, policy, data = self.preset, self.policy, self.data
        rep = self.replace_day == day
        if rep.any():
            self.battery_used = np.where(rep, 0.0, self.battery_used)
            self.battery_epoch_h = np.where(rep, t0, self.battery_epoch_h)
            self.eri_t = np.where(rep, np.inf, self.eri_t)
            self.eos_t = np.where(rep, np.inf, self.eos_t)
            self.eos_stopped &= ~rep
            self.replacements += rep
            self.replace_day = np.where(rep, np.inf, self.replace_day)
            self.log(rep, t0, "pump_replaced")
        rst = self.restart_day == day
        if rst.any():
            self.fault_on[:, MOTOR_STALL] &= ~rst
            self.stall_alarm_due = np.where(rst, np.inf, self.stall_alarm_due)
            self.restart_day = np.where(rst, np.inf, self.restart_day)
            self.log(rst, t0, "stall_restart")
        rev = self.revision_day == day
        if rev.any():
            for j in CATHETER_FAULTS:
                self.fault_on[:, j] &= ~rev
            self.comp_on[:, MASS] &= ~rev
            self.revisions += rev
            self.revision_day = np.where(rev, np.inf, self.revision_day)
            self.log(rev, t0, "revision")
        forced = self._complications(day, t0)
        for j, name in enumerate(FAULT_KINDS):
            start = (self.fday[:, j] == day) & ~self.explanted
            if not start.any():
                continue
            self.faults[:, j] += start
            self.log(start, t0, name)
            if j == MOTOR_STALL:
                newly = start & ~self.fault_on[:, MOTOR_STALL]
                if preset.has_alarms:
                    self.alarms[:, ALARM_KINDS.index("motor_stall")] += newly
                    self.log(newly, t0, "motor_stall_alarm")
                    self.stall_alarm_due = np.where(
                        newly & ~self.eos_stopped, t0 + preset.stopped_alarm_h, self.stall_alarm_due
                    )
                self.restart_day = np.where(
                    start, day + int(data.stall_restart_days.value), self.restart_day
                )
            self.fault_on[:, j] |= start
        due_refill = (self.next_refill_day == day) | forced
        if due_refill.any():
            self._refill(day, t0, due_refill, forced)
        if obs is not None and policy.titration == "label" and day in self.visit_days:
            self._titrate(day, t0, obs)

    def _complications(self, day: int, t0: float) -> BoolArray:
        """Re-implants, explants, ends, pocket revisions, onsets and findings of the day's
        complications; returns the patients refilled today whatever else (after a pocket
        revision)."""
        n, data, rules = self.n, self.data, self.comp_rules
        cap = self.cap_ml
        forced = np.zeros(n, dtype=bool)
        if not self.policy.complications:
            return forced
        rei = self.reimplant_day == day
        if rei.any():
            # a new system: full reservoir, primed catheter, new battery, nothing wrong with it
            self.explanted &= ~rei
            self.bridge_rate = np.where(rei, 0.0, self.bridge_rate)
            self.actual = np.where(rei, cap, self.actual)
            self.calc = np.where(rei, cap, self.calc)
            self.commanded_since_fill = np.where(rei, 0.0, self.commanded_since_fill)
            self.slug_v[rei] = 0.0
            self.slug_c[rei] = 0.0
            self.slug_v[rei, 0] = self.dead_ml[rei]
            self.slug_c[rei, 0] = self.conc[rei]
            self.battery_used = np.where(rei, 0.0, self.battery_used)
            self.battery_epoch_h = np.where(rei, t0, self.battery_epoch_h)
            self.eri_t = np.where(rei, np.inf, self.eri_t)
            self.eos_t = np.where(rei, np.inf, self.eos_t)
            self.eos_stopped &= ~rei
            self.fault_on[rei] = False
            self.comp_on[rei, MASS] = False
            self.comp_on[rei, FLIP] = False
            self.last_change_h = np.where(rei, t0, self.last_change_h)
            self.last_fill_day = np.where(rei, float(day), self.last_fill_day)
            self.reimplant_day = np.where(rei, np.inf, self.reimplant_day)
            self.reimplants += rei
            self.log(rei, t0, "reimplant")
            self.next_refill_day = self._next_refill(day, rei)
        exp = (self.explant_day == day) & ~self.explanted
        if exp.any():
            self.explanted |= exp
            self.explant_day = np.where(exp, np.inf, self.explant_day)
            self.next_refill_day = np.where(exp, np.inf, self.next_refill_day)
            for arr in (self.revision_day, self.restart_day, self.replace_day, self.flip_fix_day):
                arr[exp] = np.inf
            self.bolus_on &= ~exp
            self.pb_starts[exp] = -np.inf
            self.stall_alarm_due = np.where(exp, np.inf, self.stall_alarm_due)
            # what acts on delivery lives in the system and comes out with it
            for j in (MASS, FLIP, CSF_LEAK):
                self.comp_on[exp, j] = False
            self.bridge_rate = np.where(
                exp, self._bridge_rate(self.shape.daily_dose_mcg(self.dose)), self.bridge_rate
            )
            self.explants += exp
            self.bridged += exp & (self.policy.bridge is not Bridge.NONE)
            self.log(exp, t0, "explant")
            self.reimplant_day = np.where(
                exp, day + math.ceil(rules.bridging.reimplant_after_days.value), self.reimplant_day
            )
        ended = self.comp_end_day == day
        if ended.any():
            self.comp_on &= ~ended
            self.comp_end_day = np.where(ended, np.inf, self.comp_end_day)
        fix = self.flip_fix_day == day
        if fix.any():
            self.comp_on[fix, FLIP] = False
            self.flip_fix_day = np.where(fix, np.inf, self.flip_fix_day)
            self.log(fix, t0, "pocket_revision")
            forced |= fix
        onset = (self.comp_day == day) & ~self.explanted[:, None] & ~self.comp_on
        if onset.any():
            self.comp_on |= onset
            self.complications += onset
            for j, kind in enumerate(COMPLICATION_KINDS):
                self.log(onset[:, j], t0, kind)
            found = day + int(data.complication_found_days.value)
            for j, kind in enumerate(ComplicationKind):
                if rules.spec(kind).found_by == "signs":
                    self.comp_found_day[:, j] = np.where(
                        onset[:, j], found, self.comp_found_day[:, j]
                    )
        found_now = (self.comp_found_day == day) & self.comp_on
        if found_now.any():
            self.comp_found_day = np.where(found_now, np.inf, self.comp_found_day)
            delay = int(data.revision_delay_days.value)
            for j, kind in enumerate(ComplicationKind):
                hit = found_now[:, j]
                if not hit.any():
                    continue
                spec = rules.spec(kind)
                resolves = math.ceil(spec.resolves_days.value)
                out = hit & (self.draws.complication_u[:, j] < spec.explant_probability.value)
                out &= ~np.isfinite(self.explant_day)
                self.explant_day = np.where(out, day + delay, self.explant_day)
                if spec.treatment is Treatment.POCKET_REVISION:
                    end = np.full(n, float(day + delay))  # revised, or out, after the delay
                else:
                    end = np.where(out, day + delay + resolves, day + resolves)
                self.comp_end_day[:, j] = np.where(hit, end, self.comp_end_day[:, j])
        return forced

    def _bridge_rate(self, dose_mcg_per_day: FloatArray) -> FloatArray:
        """The domain's :func:`~itb.domain.clinical.complications.bridge_rate_mcg_per_h`
        on arrays, mcg/h."""
        b = self.comp_rules.bridging
        dose = np.maximum(dose_mcg_per_day, 0.0)
        match self.policy.bridge:
            case Bridge.NONE:
                return np.zeros(self.n)
            case Bridge.ORAL:
                ratio = b.oral_mg_per_intrathecal_mcg.value
                oral = np.minimum(dose * ratio, b.oral_max_mg_per_day.value)
                return np.asarray(oral / ratio * b.oral_effect_fraction.value / HOURS_PER_DAY)
            case Bridge.INTRATHECAL:
                return np.asarray(dose * b.intrathecal_effect_fraction.value / HOURS_PER_DAY)

    def _visits(self) -> set[int]:
        policy = self.policy
        days = set(range(1, policy.inpatient_titration_days + 1))
        days.update(
            range(
                policy.inpatient_titration_days + policy.visit_interval_days,
                self.horizon_days + 1,
                policy.visit_interval_days,
            )
        )
        return days

    def _refill(self, day: int, t0: float, due: BoolArray, forced: BoolArray) -> None:
        n, policy, data = self.n, self.policy, self.data
        a = np.minimum(self.attempt, MAX_REFILL_ATTEMPTS - 1)
        u = self.draws.missed_u[np.arange(n), a]
        booked = due & ~forced  # a refill at the pocket revision is done in theatre
        self.attempt += booked
        miss = booked & (u < data.missed_refill_probability.value)
        ok = due & ~miss
        self.missed += miss
        self.log(miss, t0, "refill_missed")
        self.next_refill_day = np.where(
            miss, day + int(data.missed_refill_delay_days.value), self.next_refill_day
        )
        # a pump turned in its pocket cannot be refilled: found now, revised the next day
        flipped = ok & self.comp_on[:, FLIP]
        if flipped.any():
            self.failed_refills += flipped
            self.log(flipped, t0, "refill_failed")
            fix = day + math.ceil(
                self.comp_rules.spec(ComplicationKind.PUMP_FLIP).resolves_days.value
            )
            self.flip_fix_day = np.where(flipped, fix, self.flip_fix_day)
            self.next_refill_day = np.where(flipped, np.inf, self.next_refill_day)
            ok &= ~flipped
        if not ok.any():
            return
        # discrepancy ([D58]): expected = calculated, withdrawn = actual
        allowed = np.maximum(
            self.preset.accuracy_band_pct / 100.0 * self.commanded_since_fill,
            self.tolerance.syringe_reading_ml,
        )
        self.discrepancies += ok & (np.abs(self.actual - self.calc) > allowed)
        # step up the concentration when the reservoir would last too short
        conc = self.conc
        new_conc = conc.copy()
        if policy.min_refill_interval_days is not None:
            new_conc = np.where(ok, self._stronger(conc), conc)
        changed = ok & (new_conc != conc)
        self.conc_changes += changed
        self.log(changed, t0, "concentration_change")
        if policy.bridge_bolus and changed.any():
            # pushes the old drug out of the dead space at the present dose rate
            dose_before = self.shape.daily_dose_mcg(self.dose)
            bridge = changed & ~self.bolus_on & (dose_before > 0.0)
            rate = dose_before / HOURS_PER_DAY / conc
            self.bolus_on |= bridge
            self.bolus_left_ml = np.where(bridge, self.dead_ml, self.bolus_left_ml)
            self.bolus_rate = np.where(bridge, rate, self.bolus_rate)
            self.bridges += bridge
            self.log(bridge, t0, "bridge_bolus")
        self.conc = np.where(ok, new_conc, conc)
        self.actual = np.where(ok, self.cap_ml, self.actual)
        self.calc = np.where(ok, self.cap_ml, self.calc)
        self.commanded_since_fill = np.where(ok, 0.0, self.commanded_since_fill)
        if changed.any():
            self.dose = np.where(
                changed, self.shape.clip_dose(self.dose, self.conc, self.preset), self.dose
            )
            self._set_rates()
        self.refills += ok
        self.log(ok, t0, "refill")
        self.last_fill_day = np.where(ok, float(day), self.last_fill_day)
        self.next_refill_day = self._next_refill(day, ok)

    def _stronger(self, conc: FloatArray) -> FloatArray:
        """The domain's concentration rule (:func:`itb.domain.clinical.care.choose_concentration`)
        on arrays: when refills at the present dose would come closer than the minimum
        interval, the weakest stronger strength that is enough, else the strongest."""
        policy = self.policy
        assert policy.min_refill_interval_days is not None
        usable = self.cap_ml - self.thr
        margin = float(policy.refill_margin_days)
        dose = self.shape.daily_dose_mcg(self.dose)

        def interval(c: FloatArray | float) -> FloatArray:
            with np.errstate(divide="ignore"):
                per_day = dose / c
                return np.asarray(
                    np.where(per_day > 0.0, usable / per_day - margin, np.inf), dtype=np.float64
                )

        need = (interval(conc) < policy.min_refill_interval_days) & (dose > 0.0)
        out = conc.copy()
        chosen = np.zeros(self.n, dtype=bool)
        for c in self.concs:
            candidate = need & ~chosen & (c > conc)
            enough = candidate & (interval(c) >= policy.min_refill_interval_days)
            out = np.where(enough | candidate, c, out)
            chosen |= enough
        return np.asarray(out, dtype=np.float64)

    def _titrate(self, day: int, t0: float, obs: DayEnd) -> None:
        rules, policy = self.rules, self.policy
        present = ~self.explanted  # no pump to program while it is out
        side = obs.overdose_stage > 0
        side = side | self.goal.too_low(obs.mas)
        adequate = ~self.goal.above(obs.mas)
        since_change = t0 - self.last_change_h
        inc = self.inc_t if day <= policy.inpatient_titration_days else self.inc_m
        too_early = (t0 < rules.no_increase_h.value) | (since_change < rules.min_interval_h.value)
        dose = self.dose
        proposed = np.where(
            side,
            dose * (1.0 - rules.decrease.default.value),
            np.where(adequate | too_early, dose, dose * (1.0 + inc)),
        )
        # the domain planner's cap: never above the drug library's hard maximum
        proposed = np.minimum(proposed, np.maximum(self.hard_max, dose))
        changed = (proposed != dose) & present
        if not changed.any():
            return
        self.last_change_h = np.where(changed, t0, self.last_change_h)
        self.dose = np.where(changed, self.shape.clip_dose(proposed, self.conc, self.preset), dose)
        self._set_rates()
        self.log(changed, t0, "dose_change")
        if policy.refill == "margin":
            self.next_refill_day = self._next_refill(day, changed & (self.next_refill_day > day))

    def _patient_requests(self, t: float, obs: DayEnd) -> None:
        """Patients above goal press for a bolus at ``t``; the pump applies its limits."""
        pb = self.policy.patient_bolus
        assert pb is not None
        want = self.goal.above(obs.mas) & (obs.overdose_stage == 0) & ~self.explanted
        if not want.any():
            return
        last = self.pb_starts.max(axis=1)
        recent = (self.pb_starts > t - HOURS_PER_DAY + _EPS_H).sum(axis=1)
        ok = (
            want
            & self.running
            & ~self.bolus_on
            & ~(t - last < pb.lockout_h - _EPS_H)
            & (recent < pb.max_per_day)
        )
        self.pb_refused += want & ~ok
        self.pb_accepted += ok
        self.log(ok, t, "patient_bolus")
        volume = pb.dose_mcg / self.conc
        self.bolus_on |= ok
        self.bolus_left_ml = np.where(ok, volume, self.bolus_left_ml)
        self.bolus_rate = np.where(ok, volume / pb.duration_h, self.bolus_rate)
        oldest = np.argmin(self.pb_starts, axis=1)
        rows = np.flatnonzero(ok)
        self.pb_starts[rows, oldest[rows]] = t

    # ------------------------------------------------------------ integration

    def _run_pieces(self, t0: float, first: int, stop: int) -> None:
        """The day's program pieces ``first`` to ``stop`` (excluded) for every patient,
        compiled (:func:`itb.simulation.piece_kernel.run_pieces`)."""
        if stop <= first:
            return
        record = self.record_events
        events = np.full((self.n if record else 1, len(EVENT_KINDS)), np.nan)
        state = (
            self.y,
            self.delivered,
            self.therapy,
            self.actual,
            self.calc,
            self.conc,
            self.slug_v,
            self.slug_c,
            self.commanded_since_fill,
            self.battery_used,
            self.battery_epoch_h,
            self.eri_t,
            self.eos_t,
            self.eos_stopped,
            self.replace_day,
            self.eri_reached,
            self.eos_reached,
            self.dry,
            self.alarms,
            self.acc,
            self.fault_on,
            self.comp_on,
            self.explanted,
            self.bridge_rate,
            self.bolus_on,
            self.bolus_left_ml,
            self.bolus_rate,
            *self.kernel_patient,
            self.kernel_columns,
            self.kernel_params,
            events,
            record,
        )
        failed = run_pieces(
            t0,
            self.piece_a[first:stop],
            self.piece_b[first:stop],
            self.piece_slot[first:stop],
            self.piece_length[first:stop],
            self.q_matrix,
            state,
            (
                stop == len(self.day_pieces),
                self.x,
                self.day_mas,
                self.day_stage,
                self.day_overdose,
                *self.kernel_observe,
            ),
        )
        if failed >= 0:
            raise InvalidValue(
                "arm concentrations",
                f"more than {MAX_SLUGS}",
                f"at most {MAX_SLUGS} concentrations in one dead space at once (concentration "
                "changes less often than the dead space takes to clear)",
            )
        if record:
            for col, kind in enumerate(EVENT_KINDS):
                times = events[:, col]
                self.log(~np.isnan(times), np.nan_to_num(times), kind)
