"""The virtual patient: parameters, state and the exact solution between dosing events.

Drug path (justification in docs/patient-model.md)::

    delivery (mcg/h, piecewise constant)
      -> central lumbar CSF  A1 (mcg)  -- CL -->  eliminated (bulk CSF flow)
           <-> peripheral      A2 (mcg)  (slow exchange, Q)
      -> effect site         Ce (mcg/mL), rate ke0
      -> adaptation          D  (mcg/mL), slow follower of Ce (dependence)
      -> withdrawal drive    S  (mcg/mL), lagged deficit D - Ce

State equations (all linear, input ``R`` in mcg/h)::

    dA1/dt = R - (CL + Q)/V1 * A1 + Q/V2 * A2
    dA2/dt = Q/V1 * A1 - Q/V2 * A2
    dCe/dt = ke0 * (A1/V1 - Ce)
    dD/dt  = k_dep * (Ce - D)
    dS/dt  = k_wd * (D - Ce - S)

plus two book-keeping states solved trivially: the delivered amount
(``dM/dt = R``) and the therapy clock (``dT/dt = 1`` once any drug has been
given), which drives tolerance. Over a segment of constant ``R`` and length
``dt`` the solution is exactly ``x(dt) = Phi x(0) + Gamma R`` with
``[Phi Gamma] = exp([[M, b], [0, 0]] dt)``; nothing is stepped. The
exponential is evaluated in closed form from the eigen-decomposition of ``M``
(its eigenvalues are the two PK roots, ``-ke0``, ``-k_dep`` and ``-k_wd``), or,
when two of them nearly coincide, by a scaling-and-squaring matrix exponential.
Every nonlinearity (Emax, tolerance, withdrawal and overdose signs) lives in the
algebraic observation map in :mod:`itb.domain.patient.observe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from itb.domain.errors import InvalidValue
from itb.domain.patient._linalg import Matrix, expm
from itb.domain.units import require_finite, require_non_negative, require_positive

__all__ = [
    "MODES_MIN_RELATIVE_GAP",
    "STATE_NAMES",
    "AdaptationParameters",
    "AdverseReactionModel",
    "Cause",
    "Modes",
    "OriginGroup",
    "PDParameters",
    "PKParameters",
    "PatientParameters",
    "PatientState",
    "RiskFactors",
    "SignModel",
    "SignThreshold",
    "advance",
    "derivatives",
    "modes",
    "propagator",
    "system_matrix",
]

OriginGroup = Literal["spinal", "cerebral"]
"""Origin of spasticity as the label groups it (dosing rules and adverse-reaction tables)."""


class Cause(StrEnum):
    """Cause of spasticity; values match the candidacy record's vocabulary."""

    SPINAL_CORD_INJURY = "spinal_cord_injury"
    MULTIPLE_SCLEROSIS = "multiple_sclerosis"
    CEREBRAL_PALSY = "cerebral_palsy"
    TRAUMATIC_BRAIN_INJURY = "traumatic_brain_injury"
    STROKE = "stroke"
    OTHER = "other"

    @property
    def origin(self) -> OriginGroup:
        """Spinal (SCI, MS) or cerebral (CP, TBI, stroke; *other* is treated as cerebral).

        Treating *other* as cerebral is an assumption: it selects the smaller
        titration steps of the cerebral rules (the cautious choice).
        """
        if self in (Cause.SPINAL_CORD_INJURY, Cause.MULTIPLE_SCLEROSIS):
            return "spinal"
        return "cerebral"


STATE_NAMES: tuple[str, ...] = (
    "central_mcg",
    "peripheral_mcg",
    "effect_site_mcg_per_ml",
    "adaptation_mcg_per_ml",
    "withdrawal_drive_mcg_per_ml",
)
"""Order of the linear state vector used by :func:`system_matrix` and :func:`derivatives`."""


@dataclass(frozen=True, slots=True)
class PKParameters:
    """Intrathecal pharmacokinetics near the catheter tip.

    Attributes:
        clearance_ml_per_h: CL, first-order removal from the central lumbar CSF, mL/h.
        central_volume_ml: V1, well-mixed CSF volume around the catheter tip, mL.
        intercompartmental_clearance_ml_per_h: Q, exchange with the peripheral
            (rostral CSF and cord tissue) compartment, mL/h; 0 gives one compartment.
        peripheral_volume_ml: V2, apparent peripheral volume, mL.
    """

    clearance_ml_per_h: float
    central_volume_ml: float
    intercompartmental_clearance_ml_per_h: float
    peripheral_volume_ml: float

    def __post_init__(self) -> None:
        require_positive("clearance_ml_per_h", self.clearance_ml_per_h)
        require_positive("central_volume_ml", self.central_volume_ml)
        require_non_negative(
            "intercompartmental_clearance_ml_per_h", self.intercompartmental_clearance_ml_per_h
        )
        require_positive("peripheral_volume_ml", self.peripheral_volume_ml)

    @property
    def elimination_rate_per_h(self) -> float:
        """k10 = CL / V1, 1/h."""
        return self.clearance_ml_per_h / self.central_volume_ml


@dataclass(frozen=True, slots=True)
class PDParameters:
    """Effect site and exposure-response.

    Attributes:
        ke0_per_h: effect-site equilibration rate constant, 1/h.
        ec50_mcg_per_ml: effect-site concentration giving half the maximal drop
            in spasticity before any tolerance, mcg/mL.
        hill: steepness of the sigmoid Emax relation, dimensionless.
        mas_floor: Modified Ashworth score the drug cannot push below (keeps tone), 0-4.
        psfs_floor: Penn Spasm Frequency score the drug cannot push below, 0-4.
    """

    ke0_per_h: float
    ec50_mcg_per_ml: float
    hill: float
    mas_floor: float
    psfs_floor: float

    def __post_init__(self) -> None:
        require_positive("ke0_per_h", self.ke0_per_h)
        require_positive("ec50_mcg_per_ml", self.ec50_mcg_per_ml)
        require_positive("hill", self.hill)
        for name in ("mas_floor", "psfs_floor"):
            value = require_finite(name, getattr(self, name))
            if not 0.0 <= value <= 4.0:
                raise InvalidValue(name, value, "0 to 4")


@dataclass(frozen=True, slots=True)
class AdaptationParameters:
    """Tolerance, dependence and withdrawal dynamics.

    Attributes:
        tolerance_max_fraction: fractional rise of the effective EC50 approached
            over the first year(s) of therapy (1.0 = doubles), dimensionless.
        tolerance_time_constant_h: time constant of that rise, h.
        tolerance_drift_per_year: further fractional rise per year that never
            levels off; > 0 only for the refractory minority, 1/year.
        dependence_rate_per_h: k_dep, rate at which the adaptation state follows
            the effect site, 1/h.
        withdrawal_rate_per_h: k_wd, rate at which the withdrawal drive follows
            the deficit (adaptation minus effect site), 1/h.
        withdrawal_susceptibility: individual multiplier (> 0) dividing the severe
            withdrawal threshold; > 1 means more easily severe.
    """

    tolerance_max_fraction: float
    tolerance_time_constant_h: float
    tolerance_drift_per_year: float
    dependence_rate_per_h: float
    withdrawal_rate_per_h: float
    withdrawal_susceptibility: float = 1.0

    def __post_init__(self) -> None:
        require_non_negative("tolerance_max_fraction", self.tolerance_max_fraction)
        require_positive("tolerance_time_constant_h", self.tolerance_time_constant_h)
        require_non_negative("tolerance_drift_per_year", self.tolerance_drift_per_year)
        require_positive("dependence_rate_per_h", self.dependence_rate_per_h)
        require_positive("withdrawal_rate_per_h", self.withdrawal_rate_per_h)
        require_positive("withdrawal_susceptibility", self.withdrawal_susceptibility)

    @property
    def refractory(self) -> bool:
        """True for the minority whose need keeps rising (label tolerance statement)."""
        return self.tolerance_drift_per_year > 0.0


@dataclass(frozen=True, slots=True)
class RiskFactors:
    """The label's boxed-warning risk groups for withdrawal ([C4][C5])."""

    sci_at_or_above_t6: bool = False
    communication_difficulty: bool = False
    previous_withdrawal: bool = False

    @property
    def count(self) -> int:
        """How many of the three risk factors are present."""
        return (
            int(self.sci_at_or_above_t6)
            + int(self.communication_difficulty)
            + int(self.previous_withdrawal)
        )


@dataclass(frozen=True, slots=True)
class SignThreshold:
    """A named sign that appears once an index reaches ``threshold``.

    Attributes:
        name: plain name of the sign (e.g. ``"itching without rash"``).
        threshold: value of the index at which it appears (units of the index).
        stage: stage number the sign belongs to (1 = first / mildest).
    """

    name: str
    threshold: float
    stage: int


@dataclass(frozen=True, slots=True)
class AdverseReactionModel:
    """A side effect at therapeutic doses, by origin.

    A patient shows the reaction while ``u < p_max(origin) * effect`` where ``u``
    is the patient's own susceptibility draw in [0, 1) and ``effect`` the
    current drug effect (0-1): incidence rises with exposure.
    """

    name: str
    max_probability_spinal: float
    max_probability_cerebral: float

    def max_probability(self, origin: OriginGroup) -> float:
        """Probability at full drug effect for ``origin``."""
        return self.max_probability_spinal if origin == "spinal" else self.max_probability_cerebral


@dataclass(frozen=True, slots=True)
class SignModel:
    """Population-level rules turning exposure and withdrawal drive into signs.

    Indices: withdrawal severity ``w = max(S, 0) / EC50_eff`` (dimensionless)
    and occupancy ``o = Ce / EC50_eff`` (dimensionless).

    Attributes:
        response_threshold_mas_drop: MAS fall counted as a clinically meaningful
            response, points.
        withdrawal_early_signs: early signs in order of appearance (thresholds on w).
        withdrawal_severe_threshold: w at which the severe syndrome starts for a
            patient with no risk factor and susceptibility 1.
        withdrawal_severe_signs: plain names of the severe syndrome's signs.
        risk_factor_multiplier: each risk factor present divides the severe
            threshold by this, dimensionless (>= 1).
        rebound_mas_per_unit: MAS (and PSFS) points added per unit of w above the
            first early sign's threshold (rebound spasticity), points.
        pruritus_sign: name of the itching sign, withheld before
            ``pruritus_min_therapy_h`` and for ``pruritus_excluded_causes``.
        pruritus_min_therapy_h: therapy time before itching can appear, h.
        pruritus_excluded_causes: causes in which itching was not seen.
        overdose_stages: overdose signs in order (thresholds on occupancy o).
        hypotonia_occupancy: occupancy at which overdose halves the remaining tone.
        hypotonia_hill: steepness of that loss of tone.
        adverse_reactions: side effects at therapeutic doses.
        mas_plus_code: numeric code of MAS grade 1+ (1.5 on the 0-4 scale).
    """

    response_threshold_mas_drop: float
    withdrawal_early_signs: tuple[SignThreshold, ...]
    withdrawal_severe_threshold: float
    withdrawal_severe_signs: tuple[str, ...]
    risk_factor_multiplier: float
    rebound_mas_per_unit: float
    pruritus_sign: str
    pruritus_min_therapy_h: float
    pruritus_excluded_causes: tuple[Cause, ...]
    overdose_stages: tuple[SignThreshold, ...]
    hypotonia_occupancy: float
    hypotonia_hill: float
    adverse_reactions: tuple[AdverseReactionModel, ...]
    mas_plus_code: float = 1.5

    def __post_init__(self) -> None:
        if not self.withdrawal_early_signs:
            raise InvalidValue("withdrawal_early_signs", (), "at least one sign")
        require_positive("withdrawal_severe_threshold", self.withdrawal_severe_threshold)
        if not self.risk_factor_multiplier >= 1.0:
            raise InvalidValue("risk_factor_multiplier", self.risk_factor_multiplier, ">= 1")
        thresholds = [s.threshold for s in self.overdose_stages]
        if thresholds != sorted(thresholds):
            raise InvalidValue("overdose_stages", thresholds, "ascending thresholds")

    @property
    def withdrawal_early_threshold(self) -> float:
        """w at which the first early withdrawal sign appears."""
        return min(s.threshold for s in self.withdrawal_early_signs)


@dataclass(frozen=True, slots=True)
class PatientParameters:
    """One virtual patient. Every number has its unit in its name or docstring.

    Attributes:
        cause: cause of spasticity; ``origin`` gives the label's spinal/cerebral group.
        age_years: age, years (the label covers 4 and over).
        weight_kg: body weight, kg.
        baseline_mas: Modified Ashworth score off drug, 0-4 (1+ coded as 1.5).
        baseline_psfs: Penn Spasm Frequency score off drug, 0-4.
        pk, pd, adaptation: see their classes.
        risk: withdrawal risk factors.
        signs: population-level sign rules (shared by all patients of a model).
        adverse_susceptibility: one draw in [0, 1) per ``signs.adverse_reactions``.
    """

    cause: Cause
    age_years: float
    weight_kg: float
    baseline_mas: float
    baseline_psfs: float
    pk: PKParameters
    pd: PDParameters
    adaptation: AdaptationParameters
    risk: RiskFactors
    signs: SignModel
    adverse_susceptibility: tuple[float, ...]

    def __post_init__(self) -> None:
        require_positive("age_years", self.age_years)
        require_positive("weight_kg", self.weight_kg)
        for name in ("baseline_mas", "baseline_psfs"):
            value = require_finite(name, getattr(self, name))
            if not 0.0 <= value <= 4.0:
                raise InvalidValue(name, value, "0 to 4")
        if len(self.adverse_susceptibility) != len(self.signs.adverse_reactions):
            raise InvalidValue(
                "adverse_susceptibility",
                len(self.adverse_susceptibility),
                f"{len(self.signs.adverse_reactions)} draws (one per adverse reaction)",
            )
        for u in self.adverse_susceptibility:
            if not 0.0 <= u < 1.0:
                raise InvalidValue("adverse_susceptibility", u, "each in [0, 1)")
        if self.risk.sci_at_or_above_t6 and self.cause is not Cause.SPINAL_CORD_INJURY:
            # one story: only a spinal cord injury has a level (every entry checks it here)
            raise InvalidValue(
                "risk.sci_at_or_above_t6",
                True,
                f"false when cause is {self.cause.value} (only a spinal cord injury has a level)",
            )

    @property
    def origin(self) -> OriginGroup:
        """``"spinal"`` or ``"cerebral"`` (label grouping of ``cause``)."""
        return self.cause.origin


@dataclass(frozen=True, slots=True)
class PatientState:
    """The patient at one instant.

    Attributes:
        t_h: time, hours since the start of the run.
        central_mcg: drug in the central lumbar CSF, mcg.
        peripheral_mcg: drug in the peripheral compartment, mcg.
        effect_site_mcg_per_ml: effect-site concentration, mcg/mL.
        adaptation_mcg_per_ml: adaptation (dependence) level, mcg/mL.
        withdrawal_drive_mcg_per_ml: lagged deficit of exposure against adaptation,
            mcg/mL (negative while exposure exceeds adaptation).
        delivered_mcg: total drug received since the start, mcg.
        therapy_h: time since the first drug was received, h (drives tolerance).
    """

    t_h: float = 0.0
    central_mcg: float = 0.0
    peripheral_mcg: float = 0.0
    effect_site_mcg_per_ml: float = 0.0
    adaptation_mcg_per_ml: float = 0.0
    withdrawal_drive_mcg_per_ml: float = 0.0
    delivered_mcg: float = 0.0
    therapy_h: float = 0.0

    @property
    def vector(self) -> tuple[float, float, float, float, float]:
        """The linear state in :data:`STATE_NAMES` order."""
        return (
            self.central_mcg,
            self.peripheral_mcg,
            self.effect_site_mcg_per_ml,
            self.adaptation_mcg_per_ml,
            self.withdrawal_drive_mcg_per_ml,
        )

    @property
    def on_therapy(self) -> bool:
        """True once any drug has been received."""
        return self.delivered_mcg > 0.0


def system_matrix(
    pk: PKParameters, pd: PDParameters, adaptation: AdaptationParameters
) -> tuple[Matrix, tuple[float, ...]]:
    """``(M, b)`` of ``dx/dt = M x + b R`` in :data:`STATE_NAMES` order (M in 1/h)."""
    v1, v2 = pk.central_volume_ml, pk.peripheral_volume_ml
    k10 = pk.clearance_ml_per_h / v1
    k12 = pk.intercompartmental_clearance_ml_per_h / v1
    k21 = pk.intercompartmental_clearance_ml_per_h / v2
    ke0 = pd.ke0_per_h
    kdep = adaptation.dependence_rate_per_h
    kwd = adaptation.withdrawal_rate_per_h
    m: Matrix = (
        (-(k10 + k12), k21, 0.0, 0.0, 0.0),
        (k12, -k21, 0.0, 0.0, 0.0),
        (ke0 / v1, 0.0, -ke0, 0.0, 0.0),
        (0.0, 0.0, kdep, -kdep, 0.0),
        (0.0, 0.0, -kwd, kwd, -kwd),
    )
    return m, (1.0, 0.0, 0.0, 0.0, 0.0)


def derivatives(
    params: PatientParameters, x: tuple[float, ...], rate_mcg_per_h: float
) -> tuple[float, ...]:
    """Right-hand side ``M x + b R`` of the linear state equations (for reference solvers)."""
    m, b = system_matrix(params.pk, params.pd, params.adaptation)
    return tuple(
        sum(mij * xj for mij, xj in zip(row, x, strict=True)) + bi * rate_mcg_per_h
        for row, bi in zip(m, b, strict=True)
    )


MODES_MIN_RELATIVE_GAP = 1e-3
"""Eigenvalues closer than this (relative) use the matrix exponential instead of modes."""


@dataclass(frozen=True, slots=True)
class Modes:
    """Eigen-decomposition ``M = V diag(rates) V^-1`` with ``V^-1 b`` precomputed."""

    rates: tuple[float, ...]
    vectors: Matrix
    inverse: Matrix
    inverse_b: tuple[float, ...]


def _inverse(a: Matrix) -> Matrix | None:
    """Inverse by Gauss-Jordan elimination with partial pivoting (None if singular)."""
    n = len(a)
    work = [list(row) + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(work[r][col]))
        if work[pivot][col] == 0.0:
            return None
        work[col], work[pivot] = work[pivot], work[col]
        p = work[col][col]
        work[col] = [v / p for v in work[col]]
        for r in range(n):
            if r != col and work[r][col] != 0.0:
                f = work[r][col]
                work[r] = [v - f * w for v, w in zip(work[r], work[col], strict=True)]
    return tuple(tuple(row[n:]) for row in work)


@lru_cache(maxsize=4096)
def _modes(pk: PKParameters, pd: PDParameters, adaptation: AdaptationParameters) -> Modes | None:
    """Closed-form eigen-decomposition of the (block lower-triangular) system matrix.

    The PK block has two real, distinct eigenvalues; the effect site, adaptation
    and withdrawal drive add ``-ke0``, ``-k_dep`` and ``-k_wd``. Returns None when
    two eigenvalues nearly coincide (then the modal form is ill-conditioned and
    the matrix exponential is used instead).
    """
    v1 = pk.central_volume_ml
    k10 = pk.clearance_ml_per_h / v1
    k12 = pk.intercompartmental_clearance_ml_per_h / v1
    k21 = pk.intercompartmental_clearance_ml_per_h / pk.peripheral_volume_ml
    ke0, kdep, kwd = (
        pd.ke0_per_h,
        adaptation.dependence_rate_per_h,
        adaptation.withdrawal_rate_per_h,
    )
    s = k10 + k12 + k21
    disc = math.sqrt(max(s * s - 4.0 * k10 * k21, 0.0))
    fast = -(s + disc) / 2.0
    slow = k10 * k21 / fast  # product of the roots, without cancellation
    rates = (fast, slow, -ke0, -kdep, -kwd)
    for i, a in enumerate(rates):
        for b in rates[i + 1 :]:
            if abs(a - b) <= MODES_MIN_RELATIVE_GAP * max(abs(a), abs(b)):
                return None
    columns: list[tuple[float, ...]] = []
    for lam in (fast, slow):
        u = (k21, k10 + k12 + lam)
        w = (k21 + lam, k12)
        v0, v1_ = u if abs(u[0]) + abs(u[1]) >= abs(w[0]) + abs(w[1]) else w
        ce = ke0 / v1 * v0 / (lam + ke0)
        d = kdep * ce / (lam + kdep)
        columns.append((v0, v1_, ce, d, kwd * (d - ce) / (lam + kwd)))
    d = kdep / (kdep - ke0)
    columns.append((0.0, 0.0, 1.0, d, kwd * (d - 1.0) / (kwd - ke0)))
    columns.append((0.0, 0.0, 0.0, 1.0, kwd / (kwd - kdep)))
    columns.append((0.0, 0.0, 0.0, 0.0, 1.0))
    vectors: Matrix = tuple(tuple(col[i] for col in columns) for i in range(5))
    inverse = _inverse(vectors)
    if inverse is None:
        return None
    return Modes(rates, vectors, inverse, tuple(row[0] for row in inverse))


def _phi1(z: float) -> float:
    """``(exp(z) - 1) / z``, with its limit 1 at z = 0."""
    return 1.0 if z == 0.0 else math.expm1(z) / z


@lru_cache(maxsize=8192)
def _propagator_cached(
    pk: PKParameters, pd: PDParameters, adaptation: AdaptationParameters, dt_h: float
) -> tuple[Matrix, tuple[float, ...]]:
    modes = _modes(pk, pd, adaptation)
    if modes is not None:
        v, vinv = modes.vectors, modes.inverse
        e = [math.exp(lam * dt_h) for lam in modes.rates]
        g = [
            dt_h * _phi1(lam * dt_h) * ib
            for lam, ib in zip(modes.rates, modes.inverse_b, strict=True)
        ]
        n = len(e)
        phi = tuple(
            tuple(sum(v[i][j] * e[j] * vinv[j][k] for j in range(n)) for k in range(n))
            for i in range(n)
        )
        gamma = tuple(sum(v[i][j] * g[j] for j in range(n)) for i in range(n))
        return phi, gamma
    return _propagator_by_expm(pk, pd, adaptation, dt_h)


def _propagator_by_expm(
    pk: PKParameters, pd: PDParameters, adaptation: AdaptationParameters, dt_h: float
) -> tuple[Matrix, tuple[float, ...]]:
    """``(Phi, Gamma)`` from the matrix exponential of the input-augmented system."""
    m, b = system_matrix(pk, pd, adaptation)
    n = len(b)
    augmented = [[v * dt_h for v in row] + [bi * dt_h] for row, bi in zip(m, b, strict=True)]
    augmented.append([0.0] * (n + 1))
    e = expm(augmented)
    phi = tuple(tuple(e[i][:n]) for i in range(n))
    gamma = tuple(e[i][n] for i in range(n))
    return phi, gamma


def modes(params: PatientParameters) -> Modes | None:
    """The patient's eigen-decomposition ``M = V diag(rates) V^-1`` (None when two rates
    nearly coincide): ``x(dt) = V (exp(rates dt) * V^-1 x0 + dt phi1(rates dt) * V^-1 b R)``,
    which :func:`propagator` evaluates, for callers that need many ``dt`` at once."""
    return _modes(params.pk, params.pd, params.adaptation)


def propagator(params: PatientParameters, dt_h: float) -> tuple[Matrix, tuple[float, ...]]:
    """``(Phi, Gamma)`` with ``x(dt) = Phi x(0) + Gamma R`` for a constant rate R (mcg/h)."""
    require_non_negative("dt_h", dt_h)
    return _propagator_cached(params.pk, params.pd, params.adaptation, float(dt_h))


def advance(
    params: PatientParameters, state: PatientState, rate_mcg_per_h: float, dt_h: float
) -> PatientState:
    """The state after ``dt_h`` hours of a constant delivery ``rate_mcg_per_h`` into the CSF.

    Exact (to rounding) for any ``dt_h``: no time step, no tolerance setting.

    Raises:
        InvalidValue: a negative or non-finite rate or duration.
    """
    rate = require_non_negative("rate_mcg_per_h", rate_mcg_per_h)
    dt = require_non_negative("dt_h", dt_h)
    if dt == 0.0:
        return state
    phi, gamma = propagator(params, dt)
    x0 = state.vector
    x1 = [
        sum(p * x for p, x in zip(row, x0, strict=True)) + g * rate
        for row, g in zip(phi, gamma, strict=True)
    ]
    on_therapy = state.on_therapy or rate > 0.0
    return PatientState(
        t_h=state.t_h + dt,
        central_mcg=max(x1[0], 0.0),
        peripheral_mcg=max(x1[1], 0.0),
        effect_site_mcg_per_ml=max(x1[2], 0.0),
        adaptation_mcg_per_ml=max(x1[3], 0.0),
        withdrawal_drive_mcg_per_ml=x1[4],
        delivered_mcg=state.delivered_mcg + rate * dt,
        therapy_h=state.therapy_h + dt if on_therapy else 0.0,
    )
