"""A screening trial run on the virtual patient, assessed by the domain's screening recorder.

Each bolus (50, then 75, then 100 mcg by the protocol's sequence, 24 h apart)
is given over one minute to a drug-free patient (a washout between boluses is
assumed: the model's CSF half-life is hours). MAS and PSFS are scored at
baseline and every half hour for 24 h; :func:`itb.domain.clinical.screening.assess_bolus`
decides responder or not, the onset and how long the effect lasted. The first
responding dose is the effective screening dose.
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.domain.clinical.screening import (
    BolusAssessment,
    ScreeningProtocol,
    assess_bolus,
)
from itb.domain.clinical.screening import Observation as ScreenObservation
from itb.domain.delivery import bolus_segment
from itb.domain.patient import PatientParameters, respond

__all__ = ["ScreeningOutcome", "run_screening"]

_STEP_H = 0.5
_SPAN_H = 24.0


@dataclass(frozen=True, slots=True)
class ScreeningOutcome:
    """Result of a simulated screening trial.

    Attributes:
        doses_mcg: boluses given, in order, mcg.
        assessments: the recorder's assessment of each.
        effective_dose_mcg: first responding dose (None: not a candidate), mcg.
        effect_duration_h: how long its effect was seen, h.
    """

    doses_mcg: tuple[float, ...]
    assessments: tuple[BolusAssessment, ...]
    effective_dose_mcg: float | None
    effect_duration_h: float | None


def run_screening(params: PatientParameters, protocol: ScreeningProtocol) -> ScreeningOutcome:
    """Give the protocol's standard bolus sequence until a response (or none)."""
    times = [i * _STEP_H for i in range(int(_SPAN_H / _STEP_H) + 1)]
    given: list[float] = []
    found: list[BolusAssessment] = []
    for dose in protocol.sequence(reduced_start=False):
        amount = dose.value
        given.append(amount)
        obs = respond(params, [bolus_segment(0.0, amount)], times)
        record = [ScreenObservation(0.0, mas=params.baseline_mas, psfs=params.baseline_psfs)]
        record += [ScreenObservation(o.t_h, mas=o.mas, psfs=o.psfs) for o in obs[1:]]
        assessment = assess_bolus(protocol, record)
        found.append(assessment)
        if assessment.outcome == "responder":
            return ScreeningOutcome(
                tuple(given), tuple(found), amount, assessment.effect_duration_h or 0.0
            )
    return ScreeningOutcome(tuple(given), tuple(found), None, None)
