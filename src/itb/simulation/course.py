"""A simulated course of ITB therapy for a cohort: screening, label titration, maintenance.

Used by the validation rows that need titrated patients (T8-T15). The patient
model is the vectorised closed form (:mod:`itb.simulation.cohort`); every dose
decision is made by the domain's label rules
(:func:`itb.domain.clinical.titration.plan_next_step`), patient by patient.

The simulated clinician (an assumption, documented in docs/patient-model.md):

- screening: 50 mcg, then 75, then 100 mcg boluses (each from a drug-free
  state); a response is a MAS fall of at least the response threshold within the
  observation window; the effect's duration decides the 8-hour rule;
- titration: daily assessments for the inpatient days, then a visit every
  ``visit_interval_days``;
- assessment: the clinic's one rule (:func:`itb.domain.clinical.care.assess`) on what
  a clinic sees: side effects if any overdose sign is present or MAS is below the
  therapeutic band, inadequate while MAS is above the goal, else adequate (side
  effects at therapeutic doses are counted but, as in practice, tolerated);
- the planner's usual step is taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from itb.domain.clinical.care import TreatmentGoal, assess
from itb.domain.clinical.titration import (
    Assessment,
    Phase,
    TitrationRules,
    initial_daily_dose,
    plan_next_step,
    rule_group,
)
from itb.domain.patient import PatientParameters, section
from itb.domain.provenance import sourced_value
from itb.domain.units import HOURS_PER_DAY, HOURS_PER_YEAR
from itb.simulation.cohort import (
    BoolArray,
    CohortArrays,
    CohortObservation,
    CohortState,
    FloatArray,
    IntArray,
    advance,
    observe,
)

__all__ = ["CourseResult", "CourseSettings", "ScreeningResult", "run_course", "screen"]


@dataclass(frozen=True)
class CourseSettings:
    """The simulated clinician's settings (``[validation]`` of patient.toml)."""

    screening_doses_mcg: tuple[float, ...]
    screening_observation_h: float
    goal: TreatmentGoal
    dose_hard_max_mcg_per_day: Mapping[str, float]
    """The drug library's hard maximum by rule group: proposals never pass it."""
    inpatient_titration_days: int
    visit_interval_days: float
    follow_up_years: float
    adverse_window_days: float

    @classmethod
    def from_table(
        cls,
        table: Mapping[str, Any],
        goal: TreatmentGoal,
        dose_hard_max_mcg_per_day: Mapping[str, float],
    ) -> CourseSettings:
        """Parse ``[validation]`` of patient.toml; ``goal``: the clinic's treatment goal;
        ``dose_hard_max_mcg_per_day``: the drug library's hard maximum by rule group."""
        v = section(table, "validation")

        def val(key: str) -> float:
            return sourced_value(v, key, where="validation")

        first, step, top = (
            val("screening_first_dose_mcg"),
            val("screening_dose_step_mcg"),
            val("screening_max_dose_mcg"),
        )
        doses = tuple(float(d) for d in np.arange(first, top + step / 2, step))
        return cls(
            screening_doses_mcg=doses,
            screening_observation_h=val("screening_observation_h"),
            goal=goal,
            dose_hard_max_mcg_per_day=dict(dose_hard_max_mcg_per_day),
            inpatient_titration_days=round(val("inpatient_titration_days")),
            visit_interval_days=val("visit_interval_days"),
            follow_up_years=val("follow_up_years"),
            adverse_window_days=val("adverse_window_days"),
        )


@dataclass(frozen=True)
class ScreeningResult:
    """Per patient (shape (N,)): the effective dose (NaN: non-responder) and its effect."""

    effective_dose_mcg: FloatArray
    effect_duration_h: FloatArray
    peak_mas_drop: FloatArray
    peak_adverse: BoolArray
    """Shape (N, A): side effects seen at the effective bolus."""

    @property
    def responder(self) -> BoolArray:
        """True where some screening dose gave a response."""
        return np.asarray(np.isfinite(self.effective_dose_mcg))


_SCREEN_STEP_H = 0.25
_SCREEN_SPAN_H = 24.0


def screen(cohort: CohortArrays, settings: CourseSettings) -> ScreeningResult:
    """Screening boluses (50, 75, 100 mcg over 1 minute), each from a drug-free state."""
    n = cohort.n
    threshold = cohort.signs.response_threshold_mas_drop
    eff = np.full(n, np.nan)
    duration = np.full(n, np.nan)
    peak_drop = np.full(n, np.nan)
    peak_adverse = np.zeros((n, len(cohort.signs.adverse_reactions)), dtype=bool)
    bolus_h = 1.0 / 60.0
    p_bolus = cohort.propagators(bolus_h)
    p_first = cohort.propagators(_SCREEN_STEP_H - bolus_h)
    p_step = cohort.propagators(_SCREEN_STEP_H)
    times = np.arange(1, int(_SCREEN_SPAN_H / _SCREEN_STEP_H) + 1) * _SCREEN_STEP_H
    for dose in settings.screening_doses_mcg:
        state = advance(cohort, CohortState.zeros(n), dose / bolus_h, bolus_h, p_bolus)
        state = advance(cohort, state, 0.0, _SCREEN_STEP_H - bolus_h, p_first)
        drops = []
        adverse = []
        for i in range(len(times)):
            if i:
                state = advance(cohort, state, 0.0, _SCREEN_STEP_H, p_step)
            o = observe(cohort, state)
            drops.append(cohort.baseline_mas - o.mas)
            adverse.append(o.adverse)
        drop = np.array(drops)  # (T, N)
        in_window = times <= settings.screening_observation_h
        responds = (drop[in_window] >= threshold).any(axis=0)
        above = drop >= threshold
        onset = np.where(above.any(axis=0), times[np.argmax(above, axis=0)], np.nan)
        last = np.where(
            above.any(axis=0), times[len(times) - 1 - np.argmax(above[::-1], axis=0)], np.nan
        )
        new = responds & ~np.isfinite(eff)
        eff[new] = dose
        duration[new] = (last - onset)[new]
        peak_drop[new] = drop.max(axis=0)[new]
        adv = np.array(adverse)  # (T, N, A)
        seen: BoolArray = np.asarray(adv[in_window].any(axis=0), dtype=bool)
        peak_adverse[new] = seen[new]
    return ScreeningResult(eff, duration, peak_drop, peak_adverse)


@dataclass(frozen=True)
class CourseResult:
    """A titrated cohort of responders.

    Attributes:
        patients: indices (into the drawn cohort) of the responders followed.
        cohort: their parameters as arrays.
        screening: screening results of the responders.
        initial_dose_mcg_per_day: shape (R,).
        first_day_max_overdose_stage: highest overdose stage in the first 24 h, shape (R,).
        first_day_mas_drop: MAS fall at 24 h, shape (R,).
        visit_times_h: times of the maintenance visits, shape (V,).
        dose_at_visit_mcg_per_day: dose in force after each visit, shape (V, R).
        adverse_ever: side effects seen up to the adverse window, shape (R, A).
        final_state: the cohort state at the end of follow-up.
        final_dose_mcg_per_day: shape (R,).
    """

    patients: IntArray
    cohort: CohortArrays
    screening: ScreeningResult
    initial_dose_mcg_per_day: FloatArray
    first_day_max_overdose_stage: IntArray
    first_day_mas_drop: FloatArray
    visit_times_h: FloatArray
    dose_at_visit_mcg_per_day: FloatArray
    adverse_ever: BoolArray
    states_at_visit: tuple[CohortState, ...]

    def dose_at(self, t_h: float) -> FloatArray:
        """Daily dose in force at the last visit at or before ``t_h``."""
        i = int(np.searchsorted(self.visit_times_h, t_h, side="right")) - 1
        return np.asarray(self.dose_at_visit_mcg_per_day[max(i, 0)])

    def state_at(self, t_h: float) -> CohortState:
        """Cohort state at the last visit at or before ``t_h``."""
        i = int(np.searchsorted(self.visit_times_h, t_h, side="right")) - 1
        return self.states_at_visit[max(i, 0)]


def _assess(obs: CohortObservation, goal: TreatmentGoal) -> list[Assessment]:
    return [
        assess(mas, overdose > 0, goal)
        for mas, overdose in zip(obs.mas.tolist(), obs.overdose_stage.tolist(), strict=True)
    ]


def run_course(
    patients: list[PatientParameters],
    rules: TitrationRules,
    settings: CourseSettings,
) -> CourseResult:
    """Screen, start by the 8-hour rule, titrate daily, then adjust at each visit."""
    full = CohortArrays.from_patients(patients)
    screening = screen(full, settings)
    idx = np.flatnonzero(screening.responder)
    cohort = full.subset(idx)
    scr = ScreeningResult(
        screening.effective_dose_mcg[idx],
        screening.effect_duration_h[idx],
        screening.peak_mas_drop[idx],
        screening.peak_adverse[idx],
    )
    responders = [patients[i] for i in idx]
    n = cohort.n
    origins = [p.origin for p in responders]
    ages = [p.age_years for p in responders]
    dose = np.array(
        [
            initial_daily_dose(rules, float(d), float(h), origin=o, age_years=a).dose_mcg_per_day
            for d, h, o, a in zip(
                scr.effective_dose_mcg, scr.effect_duration_h, origins, ages, strict=True
            )
        ]
    )
    initial = dose.copy()
    last_change_h = np.zeros(n)
    adverse_ever = scr.peak_adverse.copy()
    state = CohortState.zeros(n)

    # First day, hourly, for T8.
    p_hour = cohort.propagators(1.0)
    max_od = np.zeros(n, dtype=np.int64)
    for _ in range(24):
        state = advance(cohort, state, dose / HOURS_PER_DAY, 1.0, p_hour)
        o = observe(cohort, state)
        max_od = np.maximum(max_od, o.overdose_stage)
        adverse_ever |= o.adverse
    first_day_drop = cohort.baseline_mas - o.mas

    def decide(obs: CohortObservation, t_h: float, phase: Phase) -> None:
        nonlocal dose
        assessments = _assess(obs, settings.goal)
        new = dose.copy()
        for i, a in enumerate(assessments):
            step = plan_next_step(
                rules,
                origin=origins[i],
                age_years=ages[i],
                phase=phase,
                current_dose_mcg_per_day=float(dose[i]),
                assessment=a,
                hours_since_implant=t_h,
                hours_since_last_change=t_h - float(last_change_h[i]),
                max_dose_mcg_per_day=settings.dose_hard_max_mcg_per_day[
                    rule_group(rules, origins[i], ages[i])
                ],
            )
            if step.dose_mcg_per_day != dose[i]:
                new[i] = step.dose_mcg_per_day
                last_change_h[i] = t_h
        dose = new

    t = 24.0
    decide(o, t, Phase.TITRATION)
    p_day = cohort.propagators(HOURS_PER_DAY)
    for _ in range(settings.inpatient_titration_days - 1):
        state = advance(cohort, state, dose / HOURS_PER_DAY, HOURS_PER_DAY, p_day)
        t += HOURS_PER_DAY
        o = observe(cohort, state)
        adverse_ever |= o.adverse
        decide(o, t, Phase.TITRATION)

    visit_h = settings.visit_interval_days * HOURS_PER_DAY
    p_visit = cohort.propagators(visit_h)
    end_h = settings.follow_up_years * HOURS_PER_YEAR
    window_h = settings.adverse_window_days * HOURS_PER_DAY
    visit_times = [t]
    doses = [dose.copy()]
    states = [state]
    while t + visit_h <= end_h + 1e-9:
        state = advance(cohort, state, dose / HOURS_PER_DAY, visit_h, p_visit)
        t += visit_h
        o = observe(cohort, state)
        if t <= window_h + 1e-9:
            adverse_ever |= o.adverse
        decide(o, t, Phase.MAINTENANCE)
        visit_times.append(t)
        doses.append(dose.copy())
        states.append(state)
    return CourseResult(
        patients=idx,
        cohort=cohort,
        screening=scr,
        initial_dose_mcg_per_day=initial,
        first_day_max_overdose_stage=max_od,
        first_day_mas_drop=first_day_drop,
        visit_times_h=np.array(visit_times),
        dose_at_visit_mcg_per_day=np.array(doses),
        adverse_ever=adverse_ever,
        states_at_visit=tuple(states),
    )
