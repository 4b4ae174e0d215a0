"""The screening trial run against a virtual patient.

The protocol planner (:func:`itb.domain.clinical.screening.plan_next_step`)
chooses each bolus (50, 75, then 100 mcg, at least 24 h apart; 25 mcg first for
a reduced start); the patient receives it as a 1-minute barbotage
(:func:`itb.domain.delivery.bolus_segment`) and is observed the way a clinic
would (baseline, then scheduled MAS/PSFS checks); the recorder
(:func:`itb.domain.clinical.screening.assess_bolus`) judges each bolus from
those observations alone. The patient's state carries over between boluses,
exactly. A responder gets the starting daily dose of the "8-hour rule".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itb.domain.clinical.screening import (
    BolusAssessment,
    GivenBolus,
    Observation,
    ScreeningProtocol,
    ScreeningStep,
    assess_bolus,
    plan_next_step,
)
from itb.domain.clinical.titration import TitrationRules, TitrationStep, initial_daily_dose
from itb.domain.delivery import DeliverySegment, bolus_segment
from itb.domain.patient import PatientParameters, PatientState, respond, simulate

__all__ = ["CLINIC_OBSERVATION_TIMES_H", "ScreenedBolus", "ScreeningRun", "run_screening"]

CLINIC_OBSERVATION_TIMES_H: tuple[float, ...] = (
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
)  # fmt: skip
"""Observation schedule after each bolus, hours: frequent in the first hours and
through the 4-8 h window ([C18]: at least twice within 4 h; observe
4-8 h), then at 9 and 10 h so that the "effect lasted over 8 h" of the starting-dose
rule can be seen ([C12][C13][C15][C17])."""

_CURVE_STEP_H = 0.25
_CURVE_SPAN_H = 12.0


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The patient at ``t_after_h`` hours after a bolus (model truth, for plots)."""

    t_after_h: float
    mas: float
    psfs: float
    csf_concentration_mcg_per_ml: float
    effect_site_mcg_per_ml: float
    signs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScreenedBolus:
    """One screening bolus: what was given, what the clinic saw, how it was judged."""

    dose_mcg: float
    given_at_h: float
    observations: tuple[Observation, ...]
    assessment: BolusAssessment
    curve: tuple[CurvePoint, ...]


@dataclass(frozen=True, slots=True)
class ScreeningRun:
    """The whole trial and its verdict."""

    boluses: tuple[ScreenedBolus, ...]
    verdict: ScreeningStep
    starting_dose: TitrationStep | None


def run_screening(
    protocol: ScreeningProtocol,
    patient: PatientParameters,
    *,
    titration: TitrationRules | None = None,
    origin: str = "spinal",
    reduced_start: bool = False,
    criterion: str | None = None,
    observation_times_h: Sequence[float] = CLINIC_OBSERVATION_TIMES_H,
) -> ScreeningRun:
    """Run the screening protocol on ``patient`` until a verdict.

    Args:
        protocol: the parsed screening protocol.
        patient: the virtual patient.
        titration: label titration rules; when given, a responder gets the starting dose.
        origin: ``"spinal"`` or ``"cerebral"``, for the starting-dose rule.
        reduced_start: start at 25 mcg (very small children, or people who rely on their tone).
        criterion: response criterion key (default: the protocol's).
        observation_times_h: when the clinic scores MAS/PSFS after each bolus, hours.
    """
    segments: list[DeliverySegment] = []
    history: list[GivenBolus] = []
    screened: list[ScreenedBolus] = []
    state = PatientState()
    while True:
        step = plan_next_step(protocol, history, reduced_start=reduced_start)
        if step.kind != "give_dose":
            break
        assert step.dose_mcg is not None
        t0 = step.earliest_at_h if step.earliest_at_h is not None else 0.0
        segments.append(bolus_segment(t0, step.dose_mcg))
        clinic_times = [t0, *(t0 + dt for dt in observation_times_h)]
        seen = respond(patient, segments, clinic_times, state)
        observations = tuple(
            Observation(t - t0, mas=round(o.mas, 2), psfs=round(o.psfs, 2))
            for t, o in zip(clinic_times, seen, strict=True)
        )
        assessment = assess_bolus(protocol, observations, criterion=criterion)
        curve_times = [
            t0 + i * _CURVE_STEP_H for i in range(int(_CURVE_SPAN_H / _CURVE_STEP_H) + 1)
        ]
        curve = tuple(
            CurvePoint(
                t - t0,
                o.mas,
                o.psfs,
                o.csf_concentration_mcg_per_ml,
                o.effect_site_mcg_per_ml,
                o.signs,
            )
            for t, o in zip(
                curve_times, respond(patient, segments, curve_times, state), strict=True
            )
        )
        screened.append(ScreenedBolus(step.dose_mcg, t0, observations, assessment, curve))
        history.append(GivenBolus(step.dose_mcg, t0, assessment.outcome))
        # carry the patient forward to the end of this bolus's observation
        (state,) = simulate(patient, segments, [clinic_times[-1]], state)
        segments = []
    starting = None
    if step.kind == "responder" and titration is not None and screened:
        effective = screened[-1]
        duration = effective.assessment.last_response_h or 0.0
        starting = initial_daily_dose(
            titration, effective.dose_mcg, duration, origin=origin, age_years=patient.age_years
        )
    return ScreeningRun(tuple(screened), step, starting)
