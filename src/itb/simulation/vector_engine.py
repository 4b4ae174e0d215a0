"""The vectorised cohort engine: pump system and patient for many patients at once (numpy).

Same semantics as the single-patient domain path (``Pump.advance_to`` ->
``DeliverySegment`` -> ``itb.domain.patient.advance``), checked patient by patient
in ``tests/property/test_engines_agree.py``. Arrays are over patients (shape (N,)).

What it covers (docs/cohort-trials.md gives the full list):

- a continuous program per patient; titration by the label rules
  (:mod:`itb.domain.clinical.titration`, numbers from ``titration.toml``) as dose
  steps at visit days (daily during inpatient titration, then every
  ``visit_interval_days``), or a held dose;
- plug flow through pump path + catheter: the dead space is a queue of at most
  :data:`MAX_SLUGS` slugs per patient; a concentration change at a refill reaches
  the tip exactly one dead-space volume later (no bridge bolus);
- per-pump accuracy factor: the actual reservoir empties at programmed x factor
  and runs dry (exactly, mid-day) while the *calculated* reservoir, which drives
  the low- and empty-reservoir alarms, follows the programmed rate only;
- refills on a policy (fixed interval, or a margin in days before the calculated
  low-reservoir alarm date), each scheduled refill missed with a probability and
  retried later; withdraw-and-fill to the reservoir's capacity; a step up to the
  next drug concentration when the reservoir would last too short;
- faults from hazard rates (catheter occlusion, disconnection, motor stall),
  ended by a revision after withdrawal signs or a restart after the stall alarm;
- alarms: low and empty reservoir (calculated volume), motor stall, pump stopped
  over 48 h, ERI and EOS from the battery model (``BatterySpec``: drain linear in
  the commanded volume, hard limit); at EOS the pump stops; a planned
  replacement after ERI renews the battery;
- the patient: exact per-segment propagation ``x' = Phi x + Gamma R`` with the
  matrix exponential of each patient's system matrix
  (:mod:`itb.simulation.cohort`); withdrawal and overdose from the observation
  map, counted at every day end.

Time: a shared daily grid. Clinic events (refills, visits, fault onsets,
repairs) happen at day boundaries; inside a day each patient's rate into the CSF
is piecewise constant with breakpoints at the exact instants the tip
concentration switches (slug boundaries), the reservoir runs dry, or the pump
reaches end of service. A patient with no breakpoint inside the day is advanced
with its precomputed one-day propagator; the few that have one are advanced
piece by piece with the exact propagator of each piece's length. Nothing is
stepped with a tolerance.

Not covered: flex and periodic programs, boluses (screening happens before the
engine starts; no bridge or patient boluses), valve strokes (a valve pump is
treated as continuous flow), constant-flow pumps, temperature and pressure
effects, leaks, migration, pocket fills, memory errors, over-infusion drift,
more than one fault of each kind per patient, catheter replacement at revision
(the dead space keeps its contents), a new reservoir at pump replacement (only
the battery is renewed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.linalg import expm
from scipy.special import ndtr, ndtri

from itb.domain.clinical.titration import RuleGroup, TitrationRules
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.pump import DiscrepancyTolerance, PumpKind, PumpPreset
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.simulation.blas import single_threaded_blas
from itb.simulation.cohort import BoolArray, CohortArrays, CohortState, FloatArray, IntArray
from itb.simulation.cohort import observe as observe_cohort

__all__ = [
    "ALARM_KINDS",
    "MAX_SLUGS",
    "RULE_GROUPS",
    "ArmPolicy",
    "CohortData",
    "EngineResult",
    "PumpDraws",
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
_EPS_ML = 1e-12
"""Same volume tolerance as the domain pump (threshold crossings at a breakpoint)."""
_TINY_ML = 1e-15
"""Same slug dust threshold as the domain's dead space."""
_DOSE_INSET = 1e-9
"""Doses are clipped this fraction inside the pump's rate range (so rounding never leaves it)."""


# ----------------------------------------------------------------- reviewed data


@dataclass(frozen=True, slots=True)
class CohortData:
    """Hazard rates and care assumptions from ``itb/data/cohort.toml`` (each :class:`Sourced`)."""

    occlusion_per_year: Sourced
    disconnection_per_year: Sourced
    stall_per_year: Sourced
    missed_refill_probability: Sourced
    missed_refill_delay_days: Sourced
    revision_delay_days: Sourced
    stall_restart_days: Sourced
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
            missed_refill_probability=sourced(c, "missed_refill_probability", where="care"),
            missed_refill_delay_days=sourced(c, "missed_refill_delay_days", where="care"),
            revision_delay_days=sourced(c, "revision_delay_days", where="care"),
            stall_restart_days=sourced(c, "stall_restart_days", where="care"),
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
        for name in ("missed_refill_delay_days", "revision_delay_days", "stall_restart_days"):
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
        step_up_below_days: at a refill, step up to the next concentration when the
            reservoir would last fewer days than this at the present dose (0: never).
        replacement_after_eri_days: planned pump replacement this many days after ERI
            (the battery's end of service comes ``eri_to_eos_days`` after ERI).
    """

    name: str
    pump: str = "synchromed_ii_20"
    refill: RefillRule = "margin"
    refill_interval_days: int = 60
    refill_margin_days: int = 7
    low_reservoir_alarm_ml: float = 2.0
    titration: TitrationRule = "label"
    inpatient_titration_days: int = 5
    visit_interval_days: int = 30
    initial_concentration_mcg_per_ml: float = 500.0
    concentrations_mcg_per_ml: tuple[float, ...] = (500.0, 1000.0, 2000.0)
    step_up_below_days: float = 28.0
    replacement_after_eri_days: int = 60


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
    """

    accuracy_u: FloatArray
    catheter_u: FloatArray
    fault_e: FloatArray
    missed_u: FloatArray

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
    for i, k in enumerate(idx):
        rng = np.random.default_rng(pump_stream(seed, k))
        u = rng.random(2)
        acc[i], cat[i] = u[0], u[1]
        fe[i] = rng.standard_exponential(3)
        mu[i] = rng.random(MAX_REFILL_ATTEMPTS)
    return PumpDraws(acc, cat, fe, mu)


def accuracy_factors(draws: PumpDraws, data: CohortData, preset: PumpPreset) -> FloatArray:
    """Accuracy factors: normal(mean, sd) truncated to the preset's rated band (inverse CDF)."""
    band = preset.accuracy_band_pct / 100.0
    mean, sd = data.accuracy_factor_mean.value, data.accuracy_factor_sd.value
    lo, hi = 1.0 - band, 1.0 + band
    a, b = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    out = mean + sd * ndtri(a + draws.accuracy_u * (b - a))
    return np.asarray(np.clip(out, lo, hi), dtype=np.float64)


def catheter_lengths_cm(draws: PumpDraws, data: CohortData) -> FloatArray:
    """Implanted catheter lengths, cm (uniform between the data's min and max)."""
    lo, hi = data.catheter_length_min_cm.value, data.catheter_length_max_cm.value
    return np.asarray(lo + (hi - lo) * draws.catheter_u, dtype=np.float64)


def fault_days(draws: PumpDraws, data: CohortData) -> FloatArray:
    """Onset day (>= 1, inf = never) of occlusion, disconnection and stall, shape (N, 3)."""
    rates = np.array(
        [
            data.occlusion_per_year.value,
            data.disconnection_per_year.value,
            data.stall_per_year.value,
        ]
    )
    with np.errstate(divide="ignore"):
        years = draws.fault_e / rates[None, :]
    days = np.ceil(years * DAYS_PER_YEAR)
    return np.asarray(np.where(np.isfinite(days), np.maximum(days, 1.0), np.inf))


# ----------------------------------------------------------------- helpers


def quantize_ml_per_h(rate_ml_per_h: FloatArray, resolution_ml_per_day: float) -> FloatArray:
    """The domain pump's programming resolution (``Pump._quantize_ml_per_h``), on arrays."""
    if resolution_ml_per_day <= 0.0:
        return rate_ml_per_h
    per_day = np.round(rate_ml_per_h * HOURS_PER_DAY / resolution_ml_per_day) * (
        resolution_ml_per_day
    )
    return np.asarray(per_day / HOURS_PER_DAY, dtype=np.float64)


def clip_dose(dose: FloatArray, conc: FloatArray, preset: PumpPreset) -> FloatArray:
    """Doses (mcg/day) clipped just inside the pump's rate range at concentration ``conc``."""
    lo = preset.min_rate_ml_per_day * conc * (1.0 + _DOSE_INSET)
    hi = preset.max_rate_ml_per_day * conc * (1.0 - _DOSE_INSET)
    return np.asarray(np.minimum(np.maximum(dose, lo), hi), dtype=np.float64)


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
    """Shape (N, 3): occlusion, disconnection, stall started within the horizon."""
    revisions: IntArray
    concentration_changes: IntArray
    final_dose_mcg_per_day: FloatArray
    dose_at_year_mcg_per_day: FloatArray
    """Dose in force at the end of day 365 (NaN when the horizon is shorter)."""
    delivered_mcg: FloatArray
    final_x: FloatArray
    events: list[tuple[int, float, str]] = field(default_factory=list)
    trace_x: FloatArray | None = None
    trace_delivered: FloatArray | None = None
    trace_therapy_h: FloatArray | None = None


def _group_index(spinal: BoolArray, ages: FloatArray, rules: TitrationRules) -> IntArray:
    ped = ages < rules.pediatric_age_below_years.value
    return np.asarray(np.where(ped, 2, np.where(spinal, 0, 1)), dtype=np.int64)


class _Propagator:
    """Exact ``(Phi, Gamma)`` for one patient subset and per-patient segment lengths."""

    def __init__(self, cohort: CohortArrays) -> None:
        self.m = cohort.system_matrices()
        n = cohort.n
        self.day_phi, self.day_gamma = self.of(np.arange(n), np.full(n, HOURS_PER_DAY))

    def of(self, idx: IntArray, dt: FloatArray) -> tuple[FloatArray, FloatArray]:
        aug = np.zeros((len(idx), 6, 6))
        aug[:, :5, :5] = self.m[idx] * dt[:, None, None]
        aug[:, 0, 5] = dt
        e = expm(aug) if len(idx) else aug
        return e[:, :5, :5], e[:, :5, 5]


def _apply(phi: FloatArray, gamma: FloatArray, x: FloatArray, rate: FloatArray) -> FloatArray:
    """``Phi x + Gamma R`` row by row with a fixed summation order (batch-size independent)."""
    out = np.empty_like(x)
    for i in range(5):
        acc = phi[:, i, 0] * x[:, 0]
        for j in range(1, 5):
            acc = acc + phi[:, i, j] * x[:, j]
        out[:, i] = acc + gamma[:, i] * rate
    out[:, :4] = np.maximum(out[:, :4], 0.0)
    return out


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
    goal_margin_mas: float,
    data: CohortData,
    tolerance: DiscrepancyTolerance,
    horizon_days: int,
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
        rules: label titration rules; goal_margin_mas: MAS above the floor counted adequate.
        data: hazards and care assumptions; tolerance: refill discrepancy tolerance.
        horizon_days: whole days to simulate.
        record_events: keep ``(patient, t_h, kind)`` events (small cohorts only).
        trace: keep the state at every day end (small cohorts only).

    Raises:
        InvalidValue: a policy the pump cannot carry out.
    """
    if preset.kind is PumpKind.CONSTANT_FLOW or preset.battery is None:
        raise InvalidValue("pump", preset.key, "a programmable pump with a battery")
    single_threaded_blas()
    n = cohort.n
    day_h = HOURS_PER_DAY
    bat = preset.battery
    res = preset.rate_resolution_ml_per_day
    thr = float(policy.low_reservoir_alarm_ml)
    empty_thr = preset.empty_reservoir_alarm_ml
    cap_ml = preset.reservoir_ml
    concs = tuple(sorted(policy.concentrations_mcg_per_ml))
    events: list[tuple[int, float, str]] = []

    def log(mask: BoolArray, t: FloatArray | float, kind: str) -> None:
        if not record_events:
            return
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
        events.extend((int(i), float(tt[i]), kind) for i in np.flatnonzero(mask))

    # --- per-patient constants
    acc = accuracy_factors(draws, data, preset)
    dead_ml = preset.internal_path_ml + catheter_lengths_cm(draws, data) * catheter_ml_per_cm
    fday = fault_days(draws, data)
    group = _group_index(cohort.spinal, ages_years, rules)
    inc_t = np.array([rules.titration_increase[g].default.value for g in RULE_GROUPS])[group]
    inc_m = np.array([rules.maintenance_increase[g].default.value for g in RULE_GROUPS])[group]
    dec = rules.decrease.default.value
    no_inc_h = rules.no_increase_h.value
    min_int_h = rules.min_interval_h.value
    drain_base_h = bat.drain_base_per_day / day_h
    drain_ml = bat.drain_per_ml
    eri_to_eos_h = bat.eri_to_eos_days * day_h
    hard_offset_h = (bat.hard_limit_years * DAYS_PER_YEAR - bat.eri_to_eos_days) * day_h
    miss_p = data.missed_refill_probability.value
    miss_delay = int(data.missed_refill_delay_days.value)
    rev_delay = int(data.revision_delay_days.value)
    stall_restart = int(data.stall_restart_days.value)
    max_interval = float(data.max_refill_interval_days.value)
    prop = _Propagator(cohort)

    # --- state
    conc = np.full(n, float(policy.initial_concentration_mcg_per_ml))
    dose = clip_dose(np.asarray(initial_dose_mcg_per_day, dtype=np.float64), conc, preset)
    q_cmd = quantize_ml_per_h(dose / day_h / conc, res)
    calc = np.full(n, cap_ml)
    actual = np.full(n, cap_ml)
    slug_v = np.zeros((n, MAX_SLUGS))
    slug_c = np.zeros((n, MAX_SLUGS))
    slug_v[:, 0] = dead_ml
    slug_c[:, 0] = conc
    commanded_since_fill = np.zeros(n)
    occluded = np.zeros(n, dtype=bool)
    disconnected = np.zeros(n, dtype=bool)
    stalled = np.zeros(n, dtype=bool)
    eos_stopped = np.zeros(n, dtype=bool)
    stall_alarm_due = np.full(n, np.inf)
    battery_used = np.zeros(n)
    battery_epoch_h = np.zeros(n)
    eri_t = np.full(n, np.inf)
    eos_t = np.full(n, np.inf)
    replace_day = np.full(n, np.inf)
    revision_day = np.full(n, np.inf)
    restart_day = np.full(n, np.inf)
    last_change_h = np.zeros(n)
    attempt = np.zeros(n, dtype=np.int64)
    state = CohortState.zeros(n)
    x, delivered, therapy = state.x, state.delivered_mcg, state.therapy_h

    # --- outcomes
    wd_days = np.zeros(n, dtype=np.int64)
    severe_days = np.zeros(n, dtype=np.int64)
    od_days = np.zeros(n, dtype=np.int64)
    refills = np.zeros(n, dtype=np.int64)
    missed = np.zeros(n, dtype=np.int64)
    dry = np.zeros(n, dtype=np.int64)
    alarms = np.zeros((n, len(ALARM_KINDS)), dtype=np.int64)
    discrepancies = np.zeros(n, dtype=np.int64)
    eri_reached = np.zeros(n, dtype=bool)
    eos_reached = np.zeros(n, dtype=bool)
    replacements = np.zeros(n, dtype=np.int64)
    faults = np.zeros((n, 3), dtype=np.int64)
    revisions = np.zeros(n, dtype=np.int64)
    conc_changes = np.zeros(n, dtype=np.int64)
    dose_at_year = np.full(n, np.nan)
    tr_x = np.zeros((horizon_days + 1, n, 5)) if trace else None
    tr_d = np.zeros((horizon_days + 1, n)) if trace else None
    tr_t = np.zeros((horizon_days + 1, n)) if trace else None

    def next_refill(day: int, mask: BoolArray) -> FloatArray:
        t_now = day * day_h
        if policy.refill == "interval":
            nxt = np.full(n, float(day + policy.refill_interval_days))
        else:
            running = ~stalled & ~eos_stopped & (q_cmd > 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_alarm = np.where(calc <= thr, t_now, t_now + (calc - thr) / q_cmd)
            t_alarm = np.where(running | (calc <= thr), t_alarm, np.inf)
            nxt = np.floor(t_alarm / day_h) - policy.refill_margin_days
        nxt = np.minimum(np.maximum(nxt, day + 1.0), day + max_interval)
        return np.asarray(np.where(mask, nxt, next_refill_day), dtype=np.float64)

    next_refill_day = np.full(n, np.inf)
    next_refill_day = next_refill(0, np.ones(n, dtype=bool))
    visit_days = set(range(1, policy.inpatient_titration_days + 1))
    visit_days.update(
        range(
            policy.inpatient_titration_days + policy.visit_interval_days,
            horizon_days + 1,
            policy.visit_interval_days,
        )
    )
    low_i, empty_i, stall_i, stopped_i, eri_i, eos_i = range(len(ALARM_KINDS))

    for day in range(horizon_days + 1):
        t0 = day * day_h
        if trace:
            assert tr_x is not None
            assert tr_d is not None
            assert tr_t is not None
            tr_x[day], tr_d[day], tr_t[day] = x, delivered, therapy
        if day == 365:
            dose_at_year = dose.copy()
        # ---------------- day-end observation (of the day that just ended)
        if day > 0:
            obs = observe_cohort(cohort, CohortState(t0, x, delivered, therapy))
            in_wd = obs.withdrawal_stage >= 1
            wd_days += in_wd
            severe_days += obs.withdrawal_stage >= 2
            od_days += obs.overdose_stage >= 1
            fault_on = (occluded | disconnected) & in_wd & ~np.isfinite(revision_day)
            revision_day = np.where(fault_on, day + rev_delay, revision_day)
            # pump stopped over 48 h (alarm at a grid time: stalls start on day boundaries)
            due = stalled & ~eos_stopped & (stall_alarm_due <= t0)
            alarms[:, stopped_i] += due
            log(due, t0, "pump_stopped_over_48h")
            stall_alarm_due = np.where(due, np.inf, stall_alarm_due)
        else:
            obs = None
        if day == horizon_days:
            break

        # ---------------- clinic events at the day boundary
        rep = replace_day == day
        if rep.any():
            battery_used = np.where(rep, 0.0, battery_used)
            battery_epoch_h = np.where(rep, t0, battery_epoch_h)
            eri_t = np.where(rep, np.inf, eri_t)
            eos_t = np.where(rep, np.inf, eos_t)
            eos_stopped &= ~rep
            replacements += rep
            replace_day = np.where(rep, np.inf, replace_day)
            log(rep, t0, "pump_replaced")
        rst = restart_day == day
        if rst.any():
            stalled &= ~rst
            stall_alarm_due = np.where(rst, np.inf, stall_alarm_due)
            restart_day = np.where(rst, np.inf, restart_day)
            log(rst, t0, "stall_restart")
        rev = revision_day == day
        if rev.any():
            occluded &= ~rev
            disconnected &= ~rev
            revisions += rev
            revision_day = np.where(rev, np.inf, revision_day)
            log(rev, t0, "revision")
        for j, name in enumerate(("occlusion", "disconnection", "motor_stall")):
            start = fday[:, j] == day
            if not start.any():
                continue
            faults[:, j] += start
            log(start, t0, name)
            if j == 0:
                occluded |= start
            elif j == 1:
                disconnected |= start
            else:
                newly = start & ~stalled
                if preset.has_alarms:
                    alarms[:, stall_i] += newly
                    log(newly, t0, "motor_stall_alarm")
                was_running = ~eos_stopped
                stall_alarm_due = np.where(
                    newly & was_running, t0 + preset.stopped_alarm_h, stall_alarm_due
                )
                if not preset.has_alarms:
                    stall_alarm_due = np.where(newly, np.inf, stall_alarm_due)
                stalled |= start
                restart_day = np.where(start, day + stall_restart, restart_day)

        # refills
        due_refill = next_refill_day == day
        if due_refill.any():
            a = np.minimum(attempt, MAX_REFILL_ATTEMPTS - 1)
            u = draws.missed_u[np.arange(n), a]
            attempt += due_refill
            miss = due_refill & (u < miss_p)
            ok = due_refill & ~miss
            missed += miss
            log(miss, t0, "refill_missed")
            next_refill_day = np.where(miss, day + miss_delay, next_refill_day)
            if ok.any():
                # discrepancy (device.md §7): expected = calculated, withdrawn = actual
                allowed = np.maximum(
                    tolerance.rate_tolerance_pct / 100.0 * commanded_since_fill,
                    tolerance.syringe_reading_ml,
                )
                discrepancies += ok & (np.abs(actual - calc) > allowed)
                # step up the concentration when the reservoir would last too short
                new_conc = conc.copy()
                if policy.step_up_below_days > 0.0:
                    with np.errstate(divide="ignore"):
                        lasts_days = (cap_ml - thr) / (q_cmd * day_h)
                    short = ok & (lasts_days < policy.step_up_below_days)
                    table = np.asarray(concs)
                    pos = np.searchsorted(table, conc, side="right")
                    higher = np.where(
                        pos < len(table), table[np.minimum(pos, len(table) - 1)], conc
                    )
                    new_conc = np.where(short, higher, conc)
                changed = ok & (new_conc != conc)
                conc_changes += changed
                log(changed, t0, "concentration_change")
                conc = np.where(ok, new_conc, conc)
                actual = np.where(ok, cap_ml, actual)
                calc = np.where(ok, cap_ml, calc)
                commanded_since_fill = np.where(ok, 0.0, commanded_since_fill)
                dose = np.where(changed, clip_dose(dose, conc, preset), dose)
                q_cmd = np.where(changed, quantize_ml_per_h(dose / day_h / conc, res), q_cmd)
                refills += ok
                log(ok, t0, "refill")
                next_refill_day = next_refill(day, ok)

        # titration visit
        if day in visit_days and policy.titration == "label" and obs is not None:
            side = obs.overdose_stage > 0
            adequate = obs.mas <= cohort.mas_floor + goal_margin_mas
            since_change = t0 - last_change_h
            inc = inc_t if day <= policy.inpatient_titration_days else inc_m
            too_early = (t0 < no_inc_h) | (since_change < min_int_h)
            proposed = np.where(
                side,
                dose * (1.0 - dec),
                np.where(adequate | too_early, dose, dose * (1.0 + inc)),
            )
            changed = proposed != dose
            last_change_h = np.where(changed, t0, last_change_h)
            dose = np.where(changed, clip_dose(proposed, conc, preset), dose)
            q_cmd = np.where(changed, quantize_ml_per_h(dose / day_h / conc, res), q_cmd)
            log(changed, t0, "dose_change")
            if policy.refill == "margin":
                next_refill_day = next_refill(day, changed & (next_refill_day > day))

        # ---------------- integrate the day exactly
        running = ~stalled & ~eos_stopped
        cmd = np.where(running, q_cmd, 0.0)
        eos_rel = np.where(np.isfinite(eos_t) & ~eos_stopped, eos_t - t0, np.inf)
        run_h = np.minimum(day_h, np.maximum(eos_rel, 0.0))  # motor commanded for [0, run_h]
        q_true = np.where(~occluded & (actual > _EPS_ML), cmd * acc, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_dry = np.where(q_true > 0.0, actual / q_true, np.inf)
        flow_h = np.where(q_true > 0.0, np.minimum(run_h, t_dry), 0.0)
        q_in = np.where(disconnected, 0.0, q_true)
        flowing = q_in > 0.0

        # pieces of constant rate into the CSF: the slugs, then fresh drug, then nothing
        start = np.zeros(n)
        cum = np.zeros(n)
        pieces: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        n_occ = (slug_v > 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            for j in range(MAX_SLUGS):
                cum = cum + slug_v[:, j]
                # the last slug runs on into fresh drug of the same concentration: no breakpoint
                runs_on = (j == n_occ - 1) & (slug_c[:, j] == conc)
                end = np.where(runs_on, flow_h, np.minimum(cum / q_in, flow_h))
                end = np.maximum(np.where(flowing, end, 0.0), start)
                pieces.append((start, end, q_in * slug_c[:, j]))
                start = end
        fresh_end = np.where(flowing, flow_h, 0.0)
        fresh_end = np.maximum(fresh_end, start)
        pieces.append((start, fresh_end, q_in * conc))
        pieces.append((fresh_end, np.full(n, day_h), np.zeros(n)))
        for a0, b0, r in pieces:
            dt = b0 - a0
            full = (a0 == 0.0) & (b0 == day_h)
            if full.any():
                if full.all():
                    on = (delivered > 0.0) | (r > 0.0)
                    x = _apply(prop.day_phi, prop.day_gamma, x, r)
                    delivered = delivered + r * dt
                    therapy = np.where(on, therapy + dt, 0.0)
                    continue
                idx = np.flatnonzero(full)
                on = (delivered[idx] > 0.0) | (r[idx] > 0.0)
                x[idx] = _apply(prop.day_phi[idx], prop.day_gamma[idx], x[idx], r[idx])
                delivered[idx] = delivered[idx] + r[idx] * dt[idx]
                therapy[idx] = np.where(on, therapy[idx] + dt[idx], 0.0)
            part = (dt > 0.0) & ~full
            if part.any():
                idx = np.flatnonzero(part)
                phi, gamma = prop.of(idx, dt[idx])
                on = (delivered[idx] > 0.0) | (r[idx] > 0.0)
                x[idx] = _apply(phi, gamma, x[idx], r[idx])
                delivered[idx] = delivered[idx] + r[idx] * dt[idx]
                therapy[idx] = np.where(on, therapy[idx] + dt[idx], 0.0)

        # pump state at the day's end
        dried = (q_true > 0.0) & (t_dry <= run_h)
        dry += dried
        log(dried, t0 + np.where(dried, t_dry, 0.0), "reservoir_dry")
        moved = np.where(dried, actual, q_true * flow_h)
        actual = np.where(dried, 0.0, np.maximum(actual - moved, 0.0))
        actual = np.where(actual < _EPS_ML, 0.0, actual)
        pushed = np.where(flowing, moved, 0.0)
        # a dead space holding only the reservoir's drug is unchanged by plug flow
        reshaped = flowing & ((slug_v[:, 1] > 0.0) | (slug_c[:, 0] != conc))
        if reshaped.any():
            idx = np.flatnonzero(reshaped)
            slug_v[idx], slug_c[idx] = _push(
                slug_v[idx], slug_c[idx], pushed[idx], conc[idx], np.ones(len(idx), dtype=bool)
            )
        cmd_ml = cmd * run_h
        commanded_since_fill = commanded_since_fill + cmd_ml
        if preset.has_alarms:
            for kind_i, level, name in (
                (low_i, thr, "low_reservoir"),
                (empty_i, empty_thr, "empty_reservoir"),
            ):
                crosses = (calc > level + _EPS_ML) & (calc - cmd_ml <= level + _EPS_ML) & (cmd > 0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    t_cross = t0 + (calc - level) / cmd
                alarms[:, kind_i] += crosses
                log(crosses, t_cross, name)
        calc = np.maximum(0.0, calc - cmd_ml)
        # battery to ERI (drain linear in the commanded volume; after ERI no drain is counted)
        pre_eri = ~np.isfinite(eri_t)
        drain = drain_base_h + drain_ml * cmd
        used_end = battery_used + drain * run_h + drain_base_h * (day_h - run_h)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_cap = t0 + (1.0 - battery_used) / drain
        hard = battery_epoch_h + hard_offset_h
        t_eri = np.minimum(np.where(used_end >= 1.0 - 1e-12, t_cap, np.inf), hard)
        new_eri = pre_eri & (t_eri <= t0 + day_h)
        eri_t = np.where(new_eri, np.maximum(t_eri, t0), eri_t)
        eos_t = np.where(new_eri, eri_t + eri_to_eos_h, eos_t)
        battery_used = np.where(pre_eri & ~new_eri, used_end, battery_used)
        if preset.has_alarms:
            alarms[:, eri_i] += new_eri
        log(new_eri, eri_t, "elective_replacement_indicator")
        eri_reached |= new_eri
        replace_day = np.where(
            new_eri, np.floor(eri_t / day_h) + 1 + policy.replacement_after_eri_days, replace_day
        )
        new_eos = ~eos_stopped & (eos_t <= t0 + day_h)
        eos_stopped |= new_eos
        eos_reached |= new_eos
        if preset.has_alarms:
            alarms[:, eos_i] += new_eos
        log(new_eos, eos_t, "end_of_service")

    return EngineResult(
        horizon_days=horizon_days,
        withdrawal_days=wd_days,
        severe_withdrawal_days=severe_days,
        overdose_days=od_days,
        refills=refills,
        missed_refills=missed,
        dry_events=dry,
        alarms=alarms,
        discrepancies=discrepancies,
        eri_reached=eri_reached,
        eos_reached=eos_reached,
        replacements=replacements,
        faults=faults,
        revisions=revisions,
        concentration_changes=conc_changes,
        final_dose_mcg_per_day=dose,
        dose_at_year_mcg_per_day=dose_at_year,
        delivered_mcg=delivered,
        final_x=x,
        events=sorted(events, key=lambda e: (e[0], e[1])),
        trace_x=tr_x,
        trace_delivered=tr_d,
        trace_therapy_h=tr_t,
    )


def _push(
    slug_v: FloatArray,
    slug_c: FloatArray,
    volume: FloatArray,
    conc: FloatArray,
    mask: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """Plug flow: push ``volume`` (mL) of drug at ``conc`` in at the pump end; what leaves the
    tip is removed from the front. Slugs stay tip first, equal neighbours merged."""
    n, k = slug_v.shape
    cum_before = np.cumsum(slug_v, axis=1) - slug_v
    left = np.clip(slug_v - np.maximum(volume[:, None] - cum_before, 0.0), 0.0, None)
    left = np.where(left <= _TINY_ML, 0.0, left)
    # the fresh drug goes behind the last slug still holding fluid
    occupied = left > 0.0
    count = occupied.sum(axis=1)
    # compact: stable order, occupied first
    order = np.argsort(~occupied, axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    v = left[rows, order]
    c = np.where(v > 0.0, slug_c[rows, order], 0.0)
    last = np.maximum(count - 1, 0)
    r = np.arange(n)
    # what entered behind: the volume that left the tip (the dead space keeps its volume)
    fresh = np.minimum(volume, slug_v.sum(axis=1) - left.sum(axis=1))
    same = (count > 0) & (c[r, last] == conc)
    add = fresh > _TINY_ML
    v[r, last] = np.where(add & same, v[r, last] + fresh, v[r, last])
    slot = np.where(count > 0, count, 0)
    needs_slot = add & ~same
    if (needs_slot & (slot >= k)).any():
        raise RuntimeError(f"more than {k} concentrations in a dead space at once")
    slot_c = np.minimum(slot, k - 1)
    v[r, slot_c] = np.where(needs_slot, fresh, v[r, slot_c])
    c[r, slot_c] = np.where(needs_slot, conc, c[r, slot_c])
    v = np.where(mask[:, None], v, slug_v)
    c = np.where(mask[:, None], c, slug_c)
    return v, c
