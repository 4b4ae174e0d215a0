"""Seeded draws of virtual patients from the documented population distributions.

Every patient has its own random stream: patient ``k`` of a cohort drawn with
``seed`` uses ``numpy.random.SeedSequence(seed, spawn_key=(k,))``, which is
exactly the ``k``-th child of ``SeedSequence(seed).spawn(n)``. So patient ``k``
drawn on its own equals patient ``k`` of any cohort with the same seed, and a
cohort is the same whatever its size.

Each patient consumes a fixed number of draws in a fixed order (see
:func:`draw_patient`), so changing one distribution's parameters never shifts
the draws of another quantity.

Distributions (all numbers in ``itb/data/patient.toml`` ``[population]``):

- cause: categorical with the listed weights;
- age: normal(mean, sd) by cause, truncated to [4, 85] years (inverse-CDF draw);
- weight: log-normal around the age-expected median (2 x (age + 4) kg to age 10,
  linear to the adult median at 18);
- baseline MAS: normal, truncated to [mas_min, 4]; PSFS: normal by origin,
  truncated to [0, 4];
- CL and V1: correlated log-normal; Q, V2, ke0, EC50, first-year tolerance,
  withdrawal susceptibility: log-normal; CL, V1, Q, V2 scaled by
  ``(weight / 70) ** size_exponent``;
- refractory: Bernoulli(refractory_fraction); risk factors: Bernoulli by cause;
- side-effect susceptibilities: uniform [0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from itb.domain.patient import (
    Cause,
    PatientParameters,
    PDParameters,
    PKParameters,
    RiskFactors,
    SignModel,
    TypicalValues,
    section,
    sign_model_from_table,
    typical_values_from_table,
)
from itb.domain.patient.weight import WeightForAge
from itb.domain.provenance import sourced_value

__all__ = ["Population", "draw_cohort", "draw_patient", "patient_seed_sequence"]

_N_NORMAL = 10
_N_UNIFORM = 8


def patient_seed_sequence(seed: int, k: int) -> np.random.SeedSequence:
    """The seed sequence of patient ``k`` (= ``SeedSequence(seed).spawn(n)[k]``)."""
    return np.random.SeedSequence(seed, spawn_key=(k,))


def _v(table: Mapping[str, Any], path: str, key: str) -> float:
    return sourced_value(section(table, path), key, where=path)


@dataclass(frozen=True)
class Population:
    """The parsed population model: typical values, spreads and sign rules."""

    typical: TypicalValues
    signs: SignModel
    causes: tuple[Cause, ...]
    cause_weights: tuple[float, ...]
    age_mean: Mapping[Cause, float]
    age_sd: Mapping[Cause, float]
    min_age_years: float
    max_age_years: float
    weight: Mapping[str, float]
    weight_for_age: WeightForAge
    baseline: Mapping[str, float]
    variability: Mapping[str, float]
    risk: Mapping[str, float]
    refractory_drift_per_year: float

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Population:
        """Parse ``[model]`` and ``[population]`` of ``patient.toml``."""
        weights_table = section(table, "population.cause_weights")
        causes = tuple(Cause(k) for k in weights_table)
        weights = np.array([_v(table, "population.cause_weights", c.value) for c in causes])

        def block(path: str) -> dict[str, float]:
            return {k: _v(table, path, k) for k in section(table, path)}

        return cls(
            typical=typical_values_from_table(table),
            signs=sign_model_from_table(table),
            causes=causes,
            cause_weights=tuple(float(w) for w in weights / weights.sum()),
            age_mean={c: _v(table, "population.age_mean_years", c.value) for c in causes},
            age_sd={c: _v(table, "population.age_sd_years", c.value) for c in causes},
            min_age_years=_v(table, "population.age_limits", "min_age_years"),
            max_age_years=_v(table, "population.age_limits", "max_age_years"),
            weight=block("population.weight"),
            weight_for_age=WeightForAge.from_table(table),
            baseline=block("population.baseline"),
            variability=block("population.variability"),
            risk=block("population.risk"),
            refractory_drift_per_year=_v(table, "model.adaptation", "refractory_drift_per_year"),
        )

    def expected_weight_kg(self, age_years: float) -> float:
        """Median body weight (kg) expected at ``age_years``."""
        return self.weight_for_age.expected_kg(age_years)


def _truncated_normal(u: float, mean: float, sd: float, lo: float, hi: float) -> float:
    """Inverse-CDF draw from normal(mean, sd) truncated to [lo, hi] using one uniform ``u``."""
    a, b = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    return float(np.clip(mean + sd * ndtri(a + u * (b - a)), lo, hi))


def draw_patient(population: Population, seed: int, k: int) -> PatientParameters:
    """Patient ``k`` of the cohort drawn with ``seed`` (reproducible on its own).

    Args:
        population: the parsed population model.
        seed: cohort seed (a non-negative integer).
        k: index of the patient in the cohort (>= 0).
    """
    rng = np.random.default_rng(patient_seed_sequence(seed, k))
    z = rng.standard_normal(_N_NORMAL)
    u = rng.random(_N_UNIFORM)
    u_adverse = rng.random(len(population.signs.adverse_reactions))
    # drawn last, so adding it changed no earlier draw of any patient
    u_nonresponder = float(rng.random())
    pop, var, typ = population, population.variability, population.typical

    cause = pop.causes[
        min(
            int(np.searchsorted(np.cumsum(pop.cause_weights), u[0], side="right")),
            len(pop.causes) - 1,
        )
    ]
    age = _truncated_normal(
        u[1], pop.age_mean[cause], pop.age_sd[cause], pop.min_age_years, pop.max_age_years
    )
    weight = pop.expected_weight_kg(age) * math.exp(pop.weight["log_sd"] * z[0])
    b = pop.baseline
    baseline_mas = _truncated_normal(u[2], b["mas_mean"], b["mas_sd"], b["mas_min"], 4.0)
    psfs_mean = b["psfs_mean_spinal"] if cause.origin == "spinal" else b["psfs_mean_cerebral"]
    baseline_psfs = _truncated_normal(u[3], psfs_mean, b["psfs_sd"], 0.0, 4.0)

    size = typ.size_factor(weight)
    rho = var["clearance_volume_correlation"]
    eta_cl = var["clearance_log_sd"] * z[1]
    eta_v1 = var["central_volume_log_sd"] * (rho * z[1] + math.sqrt(1.0 - rho * rho) * z[2])
    pk = PKParameters(
        clearance_ml_per_h=typ.pk.clearance_ml_per_h * size * math.exp(eta_cl),
        central_volume_ml=typ.pk.central_volume_ml * size * math.exp(eta_v1),
        intercompartmental_clearance_ml_per_h=typ.pk.intercompartmental_clearance_ml_per_h
        * size
        * math.exp(var["exchange_log_sd"] * z[3]),
        peripheral_volume_ml=typ.pk.peripheral_volume_ml
        * size
        * math.exp(var["exchange_log_sd"] * z[4]),
    )
    # a minority does not respond to a screening bolus however sensitive the rest are
    # (published response rates by origin, validation T18)
    nonresponder = u_nonresponder < var[f"screening_nonresponder_fraction_{cause.origin}"]
    ec50_factor = var["nonresponder_ec50_factor"] if nonresponder else 1.0
    pd = PDParameters(
        ke0_per_h=typ.ke0_per_h * math.exp(var["ke0_log_sd"] * z[5]),
        ec50_mcg_per_ml=typ.ec50(cause) * math.exp(var["ec50_log_sd"] * z[6]) * ec50_factor,
        hill=typ.hill,
        mas_floor=min(typ.mas_floor, baseline_mas),
        psfs_floor=min(typ.psfs_floor, baseline_psfs),
    )
    refractory = bool(u[4] < var["refractory_fraction"])
    adaptation = replace(
        typ.adaptation,
        tolerance_max_fraction=typ.adaptation.tolerance_max_fraction
        * math.exp(var["tolerance_log_sd"] * z[7]),
        tolerance_drift_per_year=pop.refractory_drift_per_year if refractory else 0.0,
        withdrawal_susceptibility=math.exp(var["withdrawal_susceptibility_log_sd"] * z[8]),
    )
    r = pop.risk
    communication = (
        r["communication_difficulty_spinal"]
        if cause.origin == "spinal"
        else r["communication_difficulty_cerebral"]
    )
    risk = RiskFactors(
        sci_at_or_above_t6=cause is Cause.SPINAL_CORD_INJURY
        and bool(u[5] < r["sci_at_or_above_t6_given_sci"]),
        communication_difficulty=bool(u[6] < communication),
        previous_withdrawal=bool(u[7] < r["previous_withdrawal"]),
    )
    return PatientParameters(
        cause=cause,
        age_years=age,
        weight_kg=weight,
        baseline_mas=baseline_mas,
        baseline_psfs=baseline_psfs,
        pk=pk,
        pd=pd,
        adaptation=adaptation,
        risk=risk,
        signs=pop.signs,
        adverse_susceptibility=tuple(float(x) for x in u_adverse),
    )


def draw_cohort(
    population: Population, n: int, seed: int, *, start: int = 0
) -> Sequence[PatientParameters]:
    """Patients ``start .. start + n - 1`` of the cohort drawn with ``seed``."""
    return [draw_patient(population, seed, k) for k in range(start, start + n)]
