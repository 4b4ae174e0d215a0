"""The vectorised closed form over many patients (the cohort engine's patient model).

Same equations as :mod:`itb.domain.patient` (``system_matrix``), solved the same
way (the matrix exponential of the input-augmented system over a constant-rate
segment), but for ``N`` patients at once with numpy/scipy. The observation map
repeats :func:`itb.domain.patient.observe` on arrays; the property tests check
that both engines agree patient by patient.

Shapes: ``N`` patients, ``S = 5`` linear states (``STATE_NAMES`` order),
``A`` adverse reactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.linalg import expm

from itb.domain.patient import STATE_NAMES, PatientParameters, SignModel
from itb.domain.units import HOURS_PER_YEAR

__all__ = ["CohortArrays", "CohortObservation", "CohortState", "advance", "observe"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CohortArrays:
    """Patient parameters as arrays of shape (N,); ``signs`` is shared by all patients."""

    clearance_ml_per_h: FloatArray
    central_volume_ml: FloatArray
    intercompartmental_clearance_ml_per_h: FloatArray
    peripheral_volume_ml: FloatArray
    ke0_per_h: FloatArray
    ec50_mcg_per_ml: FloatArray
    hill: FloatArray
    mas_floor: FloatArray
    psfs_floor: FloatArray
    baseline_mas: FloatArray
    baseline_psfs: FloatArray
    tolerance_max_fraction: FloatArray
    tolerance_time_constant_h: FloatArray
    tolerance_drift_per_year: FloatArray
    dependence_rate_per_h: FloatArray
    withdrawal_rate_per_h: FloatArray
    severe_threshold: FloatArray
    spinal: BoolArray
    pruritus_allowed: BoolArray
    adverse_max_probability: FloatArray
    """Shape (N, A): probability of each side effect at full drug effect."""
    adverse_susceptibility: FloatArray
    """Shape (N, A)."""
    signs: SignModel

    @property
    def n(self) -> int:
        """Number of patients."""
        return int(self.clearance_ml_per_h.shape[0])

    @classmethod
    def from_patients(cls, patients: Sequence[PatientParameters]) -> CohortArrays:
        """Stack patients sharing one :class:`SignModel`."""
        if not patients:
            raise ValueError("a cohort needs at least one patient")
        signs = patients[0].signs

        def arr(values: Sequence[float]) -> FloatArray:
            return np.asarray(values, dtype=np.float64)

        severe = [
            signs.withdrawal_severe_threshold
            / (signs.risk_factor_multiplier**p.risk.count * p.adaptation.withdrawal_susceptibility)
            for p in patients
        ]
        return cls(
            clearance_ml_per_h=arr([p.pk.clearance_ml_per_h for p in patients]),
            central_volume_ml=arr([p.pk.central_volume_ml for p in patients]),
            intercompartmental_clearance_ml_per_h=arr(
                [p.pk.intercompartmental_clearance_ml_per_h for p in patients]
            ),
            peripheral_volume_ml=arr([p.pk.peripheral_volume_ml for p in patients]),
            ke0_per_h=arr([p.pd.ke0_per_h for p in patients]),
            ec50_mcg_per_ml=arr([p.pd.ec50_mcg_per_ml for p in patients]),
            hill=arr([p.pd.hill for p in patients]),
            mas_floor=arr([p.pd.mas_floor for p in patients]),
            psfs_floor=arr([p.pd.psfs_floor for p in patients]),
            baseline_mas=arr([p.baseline_mas for p in patients]),
            baseline_psfs=arr([p.baseline_psfs for p in patients]),
            tolerance_max_fraction=arr([p.adaptation.tolerance_max_fraction for p in patients]),
            tolerance_time_constant_h=arr(
                [p.adaptation.tolerance_time_constant_h for p in patients]
            ),
            tolerance_drift_per_year=arr([p.adaptation.tolerance_drift_per_year for p in patients]),
            dependence_rate_per_h=arr([p.adaptation.dependence_rate_per_h for p in patients]),
            withdrawal_rate_per_h=arr([p.adaptation.withdrawal_rate_per_h for p in patients]),
            severe_threshold=arr(severe),
            spinal=np.array([p.origin == "spinal" for p in patients], dtype=bool),
            pruritus_allowed=np.array(
                [p.cause not in signs.pruritus_excluded_causes for p in patients], dtype=bool
            ),
            adverse_max_probability=np.array(
                [
                    [ar.max_probability(p.origin) for ar in signs.adverse_reactions]
                    for p in patients
                ],
                dtype=np.float64,
            ).reshape(len(patients), len(signs.adverse_reactions)),
            adverse_susceptibility=np.array(
                [p.adverse_susceptibility for p in patients], dtype=np.float64
            ).reshape(len(patients), len(signs.adverse_reactions)),
            signs=signs,
        )

    def subset(self, mask: BoolArray | IntArray) -> CohortArrays:
        """The patients selected by a boolean mask or index array."""
        fields = {
            name: getattr(self, name)[mask] for name in self.__dataclass_fields__ if name != "signs"
        }
        return CohortArrays(**fields, signs=self.signs)

    def system_matrices(self) -> FloatArray:
        """``M`` of ``dx/dt = M x + b R`` for every patient, shape (N, S, S), 1/h."""
        n = self.n
        k10 = self.clearance_ml_per_h / self.central_volume_ml
        k12 = self.intercompartmental_clearance_ml_per_h / self.central_volume_ml
        k21 = self.intercompartmental_clearance_ml_per_h / self.peripheral_volume_ml
        m = np.zeros((n, 5, 5))
        m[:, 0, 0] = -(k10 + k12)
        m[:, 0, 1] = k21
        m[:, 1, 0] = k12
        m[:, 1, 1] = -k21
        m[:, 2, 0] = self.ke0_per_h / self.central_volume_ml
        m[:, 2, 2] = -self.ke0_per_h
        m[:, 3, 2] = self.dependence_rate_per_h
        m[:, 3, 3] = -self.dependence_rate_per_h
        m[:, 4, 2] = -self.withdrawal_rate_per_h
        m[:, 4, 3] = self.withdrawal_rate_per_h
        m[:, 4, 4] = -self.withdrawal_rate_per_h
        return m

    def propagators(self, dt_h: float | FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(Phi, Gamma)`` of shapes (N, S, S) and (N, S) for segments of ``dt_h`` hours."""
        n = self.n
        dt = np.broadcast_to(np.asarray(dt_h, dtype=np.float64), (n,))
        aug = np.zeros((n, 6, 6))
        aug[:, :5, :5] = self.system_matrices() * dt[:, None, None]
        aug[:, 0, 5] = dt
        e = expm(aug)
        return e[:, :5, :5], e[:, :5, 5]


@dataclass(frozen=True)
class CohortState:
    """States of N patients at a common time.

    Attributes:
        t_h: common time, h.
        x: linear states, shape (N, S), in ``STATE_NAMES`` order.
        delivered_mcg: shape (N,).
        therapy_h: shape (N,).
    """

    t_h: float
    x: FloatArray
    delivered_mcg: FloatArray
    therapy_h: FloatArray

    @classmethod
    def zeros(cls, n: int) -> CohortState:
        """N drug-naive patients at t = 0."""
        return cls(0.0, np.zeros((n, len(STATE_NAMES))), np.zeros(n), np.zeros(n))


def advance(
    cohort: CohortArrays,
    state: CohortState,
    rate_mcg_per_h: float | FloatArray,
    dt_h: float,
    propagators: tuple[FloatArray, FloatArray] | None = None,
) -> CohortState:
    """Advance every patient exactly over ``dt_h`` hours at its own constant rate (mcg/h).

    ``propagators`` may be passed when the same ``dt_h`` is reused.
    """
    if dt_h <= 0.0:
        return state
    rate = np.broadcast_to(np.asarray(rate_mcg_per_h, dtype=np.float64), (cohort.n,))
    phi, gamma = propagators if propagators is not None else cohort.propagators(dt_h)
    x = np.einsum("nij,nj->ni", phi, state.x) + gamma * rate[:, None]
    x[:, :4] = np.maximum(x[:, :4], 0.0)
    on = (state.delivered_mcg > 0.0) | (rate > 0.0)
    return CohortState(
        t_h=state.t_h + dt_h,
        x=x,
        delivered_mcg=state.delivered_mcg + rate * dt_h,
        therapy_h=np.where(on, state.therapy_h + dt_h, 0.0),
    )


@dataclass(frozen=True)
class CohortObservation:
    """Observations of N patients (arrays of shape (N,) unless noted)."""

    csf_concentration_mcg_per_ml: FloatArray
    effect_site_mcg_per_ml: FloatArray
    effective_ec50_mcg_per_ml: FloatArray
    occupancy: FloatArray
    drug_effect: FloatArray
    mas: FloatArray
    psfs: FloatArray
    withdrawal_severity: FloatArray
    withdrawal_stage: IntArray
    overdose_stage: IntArray
    adverse: BoolArray
    """Shape (N, A): each side effect present."""


def _sigmoid(x: FloatArray, hill: FloatArray | float) -> FloatArray:
    """``x**h / (1 + x**h)`` for x >= 0, computed without overflow (as the domain does)."""
    h = np.broadcast_to(np.asarray(hill, dtype=np.float64), x.shape)
    small = x < 1.0
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        xh = np.power(np.where(small, x, 1.0), h)
        inv = np.power(np.where(small, 1.0, np.maximum(x, 1.0)), -h)
    out = np.where(small, xh / (1.0 + xh), 1.0 / (1.0 + inv))
    return np.asarray(np.where(x > 0.0, out, 0.0), dtype=np.float64)


def observe(cohort: CohortArrays, state: CohortState) -> CohortObservation:
    """The observation map of :func:`itb.domain.patient.observe`, on arrays."""
    signs = cohort.signs
    tol = (
        1.0
        + cohort.tolerance_max_fraction
        * -np.expm1(-state.therapy_h / cohort.tolerance_time_constant_h)
        + cohort.tolerance_drift_per_year * state.therapy_h / HOURS_PER_YEAR
    )
    ec50 = cohort.ec50_mcg_per_ml * tol
    csf = state.x[:, 0] / cohort.central_volume_ml
    ce = state.x[:, 2]
    occ = ce / ec50
    effect = _sigmoid(occ, cohort.hill)
    loss = _sigmoid(occ / signs.hypotonia_occupancy, signs.hypotonia_hill)
    w = np.maximum(state.x[:, 4], 0.0) / ec50
    early = signs.withdrawal_early_threshold
    rebound = signs.rebound_mas_per_unit * np.maximum(0.0, w - early)
    mas_relaxed = (
        cohort.baseline_mas - np.maximum(cohort.baseline_mas - cohort.mas_floor, 0.0) * effect
    )
    psfs_relaxed = (
        cohort.baseline_psfs - np.maximum(cohort.baseline_psfs - cohort.psfs_floor, 0.0) * effect
    )
    mas = np.clip(mas_relaxed * (1.0 - loss) + rebound, 0.0, 4.0)
    psfs = np.clip(psfs_relaxed * (1.0 - loss) + rebound, 0.0, 4.0)
    stage = np.where(w >= early, 1, 0)
    stage = np.where(w >= np.maximum(cohort.severe_threshold, early), 2, stage)
    overdose = np.zeros(cohort.n, dtype=np.int64)
    for s in signs.overdose_stages:
        overdose = np.where(occ >= s.threshold, np.maximum(overdose, s.stage), overdose)
    adverse = cohort.adverse_susceptibility < cohort.adverse_max_probability * effect[:, None]
    return CohortObservation(
        csf_concentration_mcg_per_ml=csf,
        effect_site_mcg_per_ml=ce,
        effective_ec50_mcg_per_ml=ec50,
        occupancy=occ,
        drug_effect=effect,
        mas=mas,
        psfs=psfs,
        withdrawal_severity=w,
        withdrawal_stage=stage.astype(np.int64),
        overdose_stage=overdose,
        adverse=adverse,
    )
