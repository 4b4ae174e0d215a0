"""A virtual trial, chunk by chunk: draw, screen, implant, run every arm, aggregate.

A chunk is the patients ``start .. start + size - 1`` of the trial's cohort.
Patient ``k`` draws its parameters from its own stream
(:func:`itb.simulation.population.draw_patient`) and its pump and care draws
from another (:func:`itb.simulation.vector_engine.pump_stream`), so patient
``k``'s outcome does not depend on the chunk it is simulated in; the chunk's
outcome is a mergeable :class:`TrialPartial` (integer sums and histograms), so
the trial's summary does not depend on the chunk size, the order chunks finish
in, or the machine that ran them.

Every arm sees the same patients and the same draws (common random numbers):
arms differ only by policy, so their differences are paired comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from itb.domain.clinical.care import TreatmentGoal
from itb.domain.clinical.complications import ComplicationRules
from itb.domain.clinical.titration import TitrationRules
from itb.domain.pump import DiscrepancyTolerance, PumpPreset
from itb.domain.units import DAYS_PER_YEAR
from itb.simulation.blas import single_threaded_blas
from itb.simulation.cohort import CohortArrays, FloatArray, IntArray
from itb.simulation.course import CourseSettings, screen
from itb.simulation.population import Population, draw_cohort
from itb.simulation.vector_engine import (
    ALARM_KINDS,
    COMPLICATION_KINDS,
    FAULT_KINDS,
    ArmPolicy,
    CohortData,
    EngineResult,
    PumpDraws,
    draw_pump_randomness,
    run_arm,
)

__all__ = [
    "DOSE_BIN_EDGES_MCG_PER_DAY",
    "MAINTENANCE_DOSE_DAY",
    "ORIGIN_GROUPS",
    "ArmPartial",
    "Implanted",
    "TrialPartial",
    "TrialSetup",
    "implant",
    "maintenance_dose",
    "simulate_chunk",
]

ORIGIN_GROUPS = ("spinal", "cerebral", "pediatric")
"""Maintenance doses are reported by label rule group: spinal, cerebral, children under 12."""
DOSE_BIN_EDGES_MCG_PER_DAY: tuple[float, ...] = tuple(
    float(x) for x in np.round(np.logspace(0, 4, 161), 6)
)
"""Log-spaced dose histogram edges, 1 to 10,000 mcg/day (40 bins per decade)."""
WD_DAY_BIN_EDGES: tuple[float, ...] = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 1e9)
"""Histogram edges of days with withdrawal signs per patient (whole days)."""
_FIXED = 1_000_000
"""Per-patient real values are summed as integers of 1e-6 units (exact, order-free)."""


@dataclass(frozen=True)
class TrialSetup:
    """Everything a worker needs to simulate any chunk (plain, picklable data)."""

    seed: int
    patients: int
    horizon_days: int
    arms: tuple[ArmPolicy, ...]
    population: Population
    course: CourseSettings
    rules: TitrationRules
    data: CohortData
    presets: Mapping[str, PumpPreset]
    catheter_ml_per_cm: Mapping[str, float]
    """Catheter family -> internal volume per implanted cm, mL/cm."""
    tolerance: DiscrepancyTolerance
    goal: TreatmentGoal
    """The clinic's treatment goal (``protocol.toml``)."""
    dose_hard_max_mcg_per_day: Mapping[str, float]
    """The drug library's hard maximum by rule group (spinal, cerebral, pediatric)."""
    complications: ComplicationRules
    """``complications.toml``: what each complication does, explant and bridging."""


@dataclass(frozen=True)
class Implanted:
    """The responders of a chunk, ready for the engine."""

    ks: IntArray
    """Cohort indices of the responders."""
    screened: int
    cohort: CohortArrays
    ages_years: FloatArray
    initial_dose_mcg_per_day: FloatArray
    group: IntArray
    """Index into :data:`ORIGIN_GROUPS`."""


def implant(setup: TrialSetup, start: int, size: int) -> Implanted:
    """Draw patients ``start .. start + size - 1``, screen them, start responders by the
    8-hour rule (label: 2 x the effective screening dose per 24 h, 1 x if it lasted > 8 h)."""
    single_threaded_blas()
    patients = draw_cohort(setup.population, size, setup.seed, start=start)
    full = CohortArrays.from_patients(list(patients))
    result = screen(full, setup.course)
    idx = np.flatnonzero(result.responder)
    ages = np.array([p.age_years for p in patients])[idx]
    rules = setup.rules
    long_effect = result.effect_duration_h[idx] > rules.long_effect_h.value
    mult = np.where(
        long_effect, rules.multiplier_long_effect.value, rules.multiplier_short_effect.value
    )
    dose = result.effective_dose_mcg[idx] * mult
    spinal = full.spinal[idx]
    group = np.where(ages < rules.pediatric_age_below_years.value, 2, np.where(spinal, 0, 1))
    return Implanted(
        ks=np.arange(start, start + size)[idx],
        screened=size,
        cohort=full.subset(idx),
        ages_years=ages,
        initial_dose_mcg_per_day=dose,
        group=np.asarray(group, dtype=np.int64),
    )


def _fixed(values: FloatArray) -> int:
    """Exact integer sum of values rounded to 1e-6 units."""
    return sum(int(v) for v in np.rint(values * _FIXED).astype(np.int64).tolist())


def _fixed_sq(values: FloatArray) -> int:
    return sum(int(v) * int(v) for v in np.rint(values * _FIXED).astype(np.int64).tolist())


def _hist(values: FloatArray, edges: Sequence[float]) -> list[int]:
    counts, _ = np.histogram(values, bins=np.asarray(edges))
    return [int(c) for c in counts]


@dataclass
class ArmPartial:
    """Mergeable aggregates of one arm over some patients (all integers, so merging is exact).

    Real-valued per-patient quantities are summed as integers of 1e-6 units
    (``*_fx``) together with their squares (``*_fx2``), which gives exact means and
    standard deviations whatever the order of merging.
    """

    implanted: int = 0
    patient_days: int = 0
    with_withdrawal: int = 0
    with_severe_withdrawal: int = 0
    with_overdose: int = 0
    with_dry_reservoir: int = 0
    with_fault: int = 0
    withdrawal_days: int = 0
    severe_withdrawal_days: int = 0
    overdose_days: int = 0
    refills: int = 0
    missed_refills: int = 0
    dry_events: int = 0
    discrepancies: int = 0
    alarms: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALARM_KINDS, 0))
    with_critical_alarm: int = 0
    eri_reached: int = 0
    eos_before_replacement: int = 0
    replacements: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))
    revisions: int = 0
    concentration_changes: int = 0
    patient_boluses: int = 0
    patient_bolus_refusals: int = 0
    bridge_boluses: int = 0
    complications: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(COMPLICATION_KINDS, 0)
    )
    with_complication: int = 0
    explants: int = 0
    reimplants: int = 0
    bridged_explants: int = 0
    with_explant: int = 0
    failed_refills: int = 0
    explanted_days: int = 0
    explanted_withdrawal_days: int = 0
    explanted_severe_withdrawal_days: int = 0
    with_withdrawal_while_out: int = 0
    """Explanted patients with withdrawal signs on a day end while the pump was out."""
    with_severe_withdrawal_while_out: int = 0
    out_wd_fx: int = 0
    """Sum over explanted patients of their withdrawal days while out, 1e-6 units."""
    out_wd_fx2: int = 0
    wd_rate_fx: int = 0
    """Sum over patients of withdrawal days per patient-year, 1e-6 units."""
    wd_rate_fx2: int = 0
    refill_rate_fx: int = 0
    refill_rate_fx2: int = 0
    alarm_rate_fx: int = 0
    alarm_rate_fx2: int = 0
    dose_n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ORIGIN_GROUPS, 0))
    dose_fx: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ORIGIN_GROUPS, 0))
    dose_fx2: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ORIGIN_GROUPS, 0))
    dose_hist: dict[str, list[int]] = field(
        default_factory=lambda: {
            g: [0] * (len(DOSE_BIN_EDGES_MCG_PER_DAY) - 1) for g in ORIGIN_GROUPS
        }
    )
    wd_day_hist: list[int] = field(default_factory=lambda: [0] * (len(WD_DAY_BIN_EDGES) - 1))
    delivered_fx: int = 0

    def merge(self, other: ArmPartial) -> ArmPartial:
        """The aggregate over both sets of patients (commutative and associative)."""
        out = ArmPartial()
        for name in self.__dataclass_fields__:
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, dict):
                merged: dict[str, object] = {}
                for key in a:
                    if isinstance(a[key], list):
                        merged[key] = [x + y for x, y in zip(a[key], b[key], strict=True)]
                    else:
                        merged[key] = a[key] + b[key]
                setattr(out, name, merged)
            elif isinstance(a, list):
                setattr(out, name, [x + y for x, y in zip(a, b, strict=True)])
            else:
                setattr(out, name, a + b)
        return out

    @classmethod
    def of(cls, r: EngineResult, group: IntArray) -> ArmPartial:
        """Aggregate one engine result."""
        p = cls()
        n = len(group)
        years = r.horizon_days / DAYS_PER_YEAR
        p.implanted = n
        p.patient_days = n * r.horizon_days
        p.with_withdrawal = int((r.withdrawal_days > 0).sum())
        p.with_severe_withdrawal = int((r.severe_withdrawal_days > 0).sum())
        p.with_overdose = int((r.overdose_days > 0).sum())
        p.with_dry_reservoir = int((r.dry_events > 0).sum())
        p.with_fault = int((r.faults.sum(axis=1) > 0).sum())
        p.withdrawal_days = int(r.withdrawal_days.sum())
        p.severe_withdrawal_days = int(r.severe_withdrawal_days.sum())
        p.overdose_days = int(r.overdose_days.sum())
        p.refills = int(r.refills.sum())
        p.missed_refills = int(r.missed_refills.sum())
        p.dry_events = int(r.dry_events.sum())
        p.discrepancies = int(r.discrepancies.sum())
        p.alarms = {k: int(r.alarms[:, i].sum()) for i, k in enumerate(ALARM_KINDS)}
        critical = [ALARM_KINDS.index(k) for k in ("empty_reservoir", "motor_stall",
                                                    "pump_stopped_over_48h", "end_of_service")]  # fmt: skip
        p.with_critical_alarm = int((r.alarms[:, critical].sum(axis=1) > 0).sum())
        p.eri_reached = int(r.eri_reached.sum())
        p.eos_before_replacement = int(r.eos_reached.sum())
        p.replacements = int(r.replacements.sum())
        p.faults = {k: int(r.faults[:, i].sum()) for i, k in enumerate(FAULT_KINDS)}
        p.patient_boluses = int(r.patient_boluses.sum())
        p.patient_bolus_refusals = int(r.patient_bolus_refusals.sum())
        p.bridge_boluses = int(r.bridge_boluses.sum())
        p.complications = {
            k: int(r.complications[:, i].sum()) for i, k in enumerate(COMPLICATION_KINDS)
        }
        p.with_complication = int((r.complications.sum(axis=1) > 0).sum())
        p.explants = int(r.explants.sum())
        p.reimplants = int(r.reimplants.sum())
        p.bridged_explants = int(r.bridged_explants.sum())
        p.with_explant = int((r.explants > 0).sum())
        p.failed_refills = int(r.failed_refills.sum())
        p.explanted_days = int(r.explanted_days.sum())
        p.explanted_withdrawal_days = int(r.explanted_withdrawal_days.sum())
        p.explanted_severe_withdrawal_days = int(r.explanted_severe_withdrawal_days.sum())
        p.with_withdrawal_while_out = int((r.explanted_withdrawal_days > 0).sum())
        p.with_severe_withdrawal_while_out = int((r.explanted_severe_withdrawal_days > 0).sum())
        out_wd = r.explanted_withdrawal_days[r.explants > 0].astype(np.float64)
        p.out_wd_fx, p.out_wd_fx2 = _fixed(out_wd), _fixed_sq(out_wd)
        p.revisions = int(r.revisions.sum())
        p.concentration_changes = int(r.concentration_changes.sum())
        if n and years > 0:
            wd_rate = r.withdrawal_days / years
            refill_rate = r.refills / years
            alarm_rate = r.alarms.sum(axis=1) / years
            p.wd_rate_fx, p.wd_rate_fx2 = _fixed(wd_rate), _fixed_sq(wd_rate)
            p.refill_rate_fx, p.refill_rate_fx2 = _fixed(refill_rate), _fixed_sq(refill_rate)
            p.alarm_rate_fx, p.alarm_rate_fx2 = _fixed(alarm_rate), _fixed_sq(alarm_rate)
        dose = maintenance_dose(r)
        for gi, g in enumerate(ORIGIN_GROUPS):
            sel = dose[group == gi]
            p.dose_n[g] = len(sel)
            p.dose_fx[g] = _fixed(sel)
            p.dose_fx2[g] = _fixed_sq(sel)
            p.dose_hist[g] = _hist(sel, DOSE_BIN_EDGES_MCG_PER_DAY)
        p.wd_day_hist = _hist(r.withdrawal_days.astype(np.float64), WD_DAY_BIN_EDGES)
        p.delivered_fx = _fixed(r.delivered_mcg)
        return p


MAINTENANCE_DOSE_DAY = round(DAYS_PER_YEAR)
"""The maintenance dose is the dose in force 12 months after implant (or at the end of a
shorter follow-up)."""


def maintenance_dose(r: EngineResult) -> FloatArray:
    """Each patient's maintenance dose (mcg/day): at 12 months, or at the end of a shorter
    follow-up."""
    if r.horizon_days >= MAINTENANCE_DOSE_DAY:
        return r.dose_at_year_mcg_per_day
    return r.final_dose_mcg_per_day


@dataclass
class TrialPartial:
    """Mergeable aggregates of every arm over some patients."""

    screened: int = 0
    responders: int = 0
    arms: dict[str, ArmPartial] = field(default_factory=dict)

    def merge(self, other: TrialPartial) -> TrialPartial:
        """Both partials together (commutative and associative)."""
        names = list(dict.fromkeys([*self.arms, *other.arms]))
        return TrialPartial(
            self.screened + other.screened,
            self.responders + other.responders,
            {
                a: self.arms.get(a, ArmPartial()).merge(other.arms.get(a, ArmPartial()))
                for a in names
            },
        )


def run_implanted(
    setup: TrialSetup,
    imp: Implanted,
    arm: ArmPolicy,
    draws: PumpDraws | None = None,
    *,
    data: CohortData | None = None,
    initial_dose_mcg_per_day: FloatArray | None = None,
    record_events: bool = False,
    trace: bool = False,
) -> EngineResult:
    """Run one arm for implanted patients (``draws``: the patients' pump randomness, shared
    by every arm so that arms differ only by policy; drawn from the seed when omitted).

    ``data`` and ``initial_dose_mcg_per_day`` replace the setup's hazards and the
    patients' starting doses (for studies and tests of one mechanism)."""
    return run_arm(
        imp.cohort,
        imp.ages_years,
        imp.initial_dose_mcg_per_day
        if initial_dose_mcg_per_day is None
        else initial_dose_mcg_per_day,
        draws if draws is not None else draw_pump_randomness(setup.seed, imp.ks),
        policy=arm,
        preset=setup.presets[arm.pump],
        catheter_ml_per_cm=setup.catheter_ml_per_cm[arm.catheter],
        rules=setup.rules,
        goal=setup.goal,
        dose_hard_max_mcg_per_day=setup.dose_hard_max_mcg_per_day,
        data=setup.data if data is None else data,
        tolerance=setup.tolerance,
        horizon_days=setup.horizon_days,
        dose_snapshot_day=MAINTENANCE_DOSE_DAY,
        complications=setup.complications,
        record_events=record_events,
        trace=trace,
    )


def simulate_chunk(setup: TrialSetup, start: int, size: int) -> TrialPartial:
    """Simulate patients ``start .. start + size - 1`` in every arm; return their aggregates."""
    imp = implant(setup, start, size)
    out = TrialPartial(screened=imp.screened, responders=len(imp.ks))
    if len(imp.ks) == 0:
        out.arms = {arm.name: ArmPartial() for arm in setup.arms}
        return out
    draws = draw_pump_randomness(setup.seed, imp.ks)
    for arm in setup.arms:
        result = run_implanted(setup, imp, arm, draws)
        out.arms[arm.name] = ArmPartial.of(result, imp.group)
    return out


def chunk_bounds(patients: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, size)`` of every chunk, in order."""
    return [(s, min(chunk_size, patients - s)) for s in range(0, patients, chunk_size)]
