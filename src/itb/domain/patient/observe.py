"""What a clinician would see: concentrations, spasticity scores and signs (algebraic maps).

All nonlinearity of the model lives here, applied to the exact linear state:

- tolerance: ``EC50_eff = EC50 * (1 + f_max * (1 - exp(-T / tau)) + drift * T_years)``
  with ``T`` the therapy clock;
- occupancy ``o = Ce / EC50_eff``; drug effect ``E = o**h / (1 + o**h)`` (0-1);
- spasticity: ``MAS = baseline - (baseline - floor) * E``, then overdose hypotonia
  removes tone below the floor (``* (1 - o**n / (o_h**n + o**n))``) and withdrawal
  rebound adds ``g * max(0, w - w_early)``; PSFS likewise; both clipped to 0-4;
- withdrawal severity ``w = max(S, 0) / EC50_eff``: early signs appear in order
  as w passes their thresholds; the severe syndrome starts at
  ``w_severe / (m ** n_risk * susceptibility)``;
- overdose stage: the highest stage whose occupancy threshold is reached;
- side effects at therapeutic doses: present while ``u < p_max(origin) * E``.

MAS grade 1+ is coded **1.5** on the 0-4 scale (``SignModel.mas_plus_code``);
:func:`mas_grade` turns a score back into the nearest grade label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from itb.domain.patient.model import PatientParameters, PatientState
from itb.domain.units import HOURS_PER_YEAR

__all__ = [
    "Observation",
    "WithdrawalStage",
    "effective_ec50",
    "mas_grade",
    "observe",
    "tolerance_factor",
]


class WithdrawalStage(IntEnum):
    """Withdrawal stage: none, early signs, or the severe syndrome."""

    NONE = 0
    EARLY = 1
    SEVERE = 2


@dataclass(frozen=True, slots=True)
class Observation:
    """The patient as observed at one instant.

    Attributes:
        t_h: time, hours since the start of the run.
        csf_concentration_mcg_per_ml: lumbar CSF concentration near the tip, mcg/mL.
        effect_site_mcg_per_ml: effect-site concentration, mcg/mL.
        effective_ec50_mcg_per_ml: EC50 after tolerance, mcg/mL.
        occupancy: effect-site concentration / effective EC50, dimensionless.
        drug_effect: fraction (0-1) of the possible drop in spasticity achieved.
        mas: Modified Ashworth score, 0-4 (1+ coded as 1.5).
        mas_grade: nearest MAS grade label ("0", "1", "1+", "2", "3", "4").
        psfs: Penn Spasm Frequency score, 0-4 (continuous expectation).
        psfs_grade: nearest PSFS grade, 0-4.
        withdrawal_severity: w, lagged exposure deficit / effective EC50.
        withdrawal_stage: none, early or severe.
        overdose_stage: 0 (none) to the highest stage reached.
        withdrawal_signs, overdose_signs, adverse_reactions: plain names of the
            signs present, in order of appearance.
    """

    t_h: float
    csf_concentration_mcg_per_ml: float
    effect_site_mcg_per_ml: float
    effective_ec50_mcg_per_ml: float
    occupancy: float
    drug_effect: float
    mas: float
    mas_grade: str
    psfs: float
    psfs_grade: int
    withdrawal_severity: float
    withdrawal_stage: WithdrawalStage
    overdose_stage: int
    withdrawal_signs: tuple[str, ...]
    overdose_signs: tuple[str, ...]
    adverse_reactions: tuple[str, ...]

    @property
    def signs(self) -> tuple[str, ...]:
        """Every sign present: withdrawal, then overdose, then side effects."""
        return self.withdrawal_signs + self.overdose_signs + self.adverse_reactions


def tolerance_factor(params: PatientParameters, therapy_h: float) -> float:
    """Multiplier (>= 1) on EC50 after ``therapy_h`` hours of therapy."""
    a = params.adaptation
    rise = a.tolerance_max_fraction * -math.expm1(-therapy_h / a.tolerance_time_constant_h)
    return 1.0 + rise + a.tolerance_drift_per_year * therapy_h / HOURS_PER_YEAR


def effective_ec50(params: PatientParameters, therapy_h: float) -> float:
    """EC50 after tolerance, mcg/mL."""
    return params.pd.ec50_mcg_per_ml * tolerance_factor(params, therapy_h)


def mas_grade(score: float, plus_code: float = 1.5) -> str:
    """Nearest Modified Ashworth grade label for a 0-4 score (1+ coded as ``plus_code``)."""
    grades = (("0", 0.0), ("1", 1.0), ("1+", plus_code), ("2", 2.0), ("3", 3.0), ("4", 4.0))
    return min(grades, key=lambda g: (abs(score - g[1]), g[1]))[0]


def _sigmoid(x: float, hill: float) -> float:
    """``x**h / (1 + x**h)`` for x >= 0, safe for large x."""
    if x <= 0.0:
        return 0.0
    if x < 1.0:
        xh = math.pow(x, hill)
        return xh / (1.0 + xh)
    return 1.0 / (1.0 + math.pow(x, -hill))


def observe(params: PatientParameters, state: PatientState) -> Observation:
    """Observe ``state`` of the patient ``params`` (pure, algebraic)."""
    signs = params.signs
    pd = params.pd
    csf = state.central_mcg / params.pk.central_volume_ml
    ce = state.effect_site_mcg_per_ml
    ec50 = effective_ec50(params, state.therapy_h)
    occupancy = ce / ec50
    effect = _sigmoid(occupancy, pd.hill)
    loss_of_tone = _sigmoid(occupancy / signs.hypotonia_occupancy, signs.hypotonia_hill)

    w = max(state.withdrawal_drive_mcg_per_ml, 0.0) / ec50
    early = signs.withdrawal_early_threshold
    rebound = signs.rebound_mas_per_unit * max(0.0, w - early)

    mas_relaxed = params.baseline_mas - max(params.baseline_mas - pd.mas_floor, 0.0) * effect
    psfs_relaxed = params.baseline_psfs - max(params.baseline_psfs - pd.psfs_floor, 0.0) * effect
    mas = min(4.0, max(0.0, mas_relaxed * (1.0 - loss_of_tone) + rebound))
    psfs = min(4.0, max(0.0, psfs_relaxed * (1.0 - loss_of_tone) + rebound))

    withdrawal_signs = [
        s.name
        for s in sorted(signs.withdrawal_early_signs, key=lambda s: s.threshold)
        if w >= s.threshold
        and not (
            s.name == signs.pruritus_sign
            and (
                state.therapy_h < signs.pruritus_min_therapy_h
                or params.cause in signs.pruritus_excluded_causes
            )
        )
    ]
    severe_at = signs.withdrawal_severe_threshold / (
        signs.risk_factor_multiplier**params.risk.count
        * params.adaptation.withdrawal_susceptibility
    )
    stage = WithdrawalStage.NONE
    if w >= early:
        stage = WithdrawalStage.EARLY
    if w >= max(severe_at, early):
        stage = WithdrawalStage.SEVERE
        withdrawal_signs.extend(
            s for s in signs.withdrawal_severe_signs if s not in withdrawal_signs
        )

    reached = [s for s in signs.overdose_stages if occupancy >= s.threshold]
    overdose_stage = max((s.stage for s in reached), default=0)
    adverse = tuple(
        ar.name
        for ar, u in zip(signs.adverse_reactions, params.adverse_susceptibility, strict=True)
        if u < ar.max_probability(params.origin) * effect
    )
    return Observation(
        t_h=state.t_h,
        csf_concentration_mcg_per_ml=csf,
        effect_site_mcg_per_ml=ce,
        effective_ec50_mcg_per_ml=ec50,
        occupancy=occupancy,
        drug_effect=effect,
        mas=mas,
        mas_grade=mas_grade(mas, signs.mas_plus_code),
        psfs=psfs,
        psfs_grade=round(psfs),
        withdrawal_severity=w,
        withdrawal_stage=stage,
        overdose_stage=overdose_stage,
        withdrawal_signs=tuple(withdrawal_signs),
        overdose_signs=tuple(s.name for s in reached),
        adverse_reactions=adverse,
    )
