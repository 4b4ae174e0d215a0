"""Building model objects from the reviewed data table ``itb/data/patient.toml``.

The table is loaded by an adapter and passed in; this module only parses it
(every number through :func:`itb.domain.provenance.sourced`, so each one has a
unit, a status and a source).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.patient.model import (
    AdaptationParameters,
    AdverseReactionModel,
    Cause,
    PatientParameters,
    PDParameters,
    PKParameters,
    RiskFactors,
    SignModel,
    SignThreshold,
)
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import HOURS_PER_DAY, require_positive

__all__ = [
    "TypicalValues",
    "section",
    "sign_model_from_table",
    "sourced_numbers",
    "typical_parameters",
    "typical_values_from_table",
]


def section(table: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The sub-table at dotted ``path`` (e.g. ``"model.pk"``).

    Raises:
        InvalidValue: the sub-table is missing.
    """
    node: Any = table
    for part in path.split("."):
        if not isinstance(node, Mapping) or not isinstance(node.get(part), Mapping):
            raise InvalidValue(path, None, "a table in patient.toml")
        node = node[part]
    return node  # type: ignore[no-any-return]


def _v(table: Mapping[str, Any], path: str, key: str) -> float:
    return sourced(section(table, path), key, where=path).value


def _names(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    raw = entry.get(key)
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise InvalidValue(f"{where}.{key}", raw, "a list of non-empty strings")
    return tuple(raw)


@dataclass(frozen=True, slots=True)
class TypicalValues:
    """The population's typical (median) model values for a 70 kg adult."""

    pk: PKParameters
    ke0_per_h: float
    hill: float
    ec50_spinal_mcg_per_ml: float
    ec50_cerebral_mcg_per_ml: float
    ec50_cause_factor: Mapping[Cause, float]
    """Multiplier on the origin's EC50 by cause (1 where the table names none)."""
    mas_floor: float
    psfs_floor: float
    adaptation: AdaptationParameters
    reference_weight_kg: float
    size_exponent: float

    def ec50(self, cause: Cause) -> float:
        """Typical EC50 (mcg/mL) for a cause: its origin group's, times the cause's factor."""
        base = (
            self.ec50_spinal_mcg_per_ml
            if cause.origin == "spinal"
            else self.ec50_cerebral_mcg_per_ml
        )
        return base * self.ec50_cause_factor.get(cause, 1.0)

    def size_factor(self, weight_kg: float) -> float:
        """Multiplier on CL, V1, Q and V2 for a body weight (kg)."""
        return float((weight_kg / self.reference_weight_kg) ** self.size_exponent)


def _cause_factors(table: Mapping[str, Any]) -> dict[Cause, float]:
    """``[model.pd.ec50_cause_factor]``: sensitivity of a cause relative to its origin group."""
    where = "model.pd.ec50_cause_factor"
    node = section(table, where)
    out: dict[Cause, float] = {}
    for key in node:
        try:
            cause = Cause(key)
        except ValueError:
            raise InvalidValue(
                f"{where}.{key}", key, "a cause: " + ", ".join(c.value for c in Cause)
            ) from None
        out[cause] = require_positive(f"{where}.{key}", _v(table, where, key))
    return out


def typical_values_from_table(table: Mapping[str, Any]) -> TypicalValues:
    """Parse the typical values of ``[model.pk]``, ``[model.pd]`` and ``[model.adaptation]``."""
    pk = PKParameters(
        clearance_ml_per_h=_v(table, "model.pk", "clearance_ml_per_h"),
        central_volume_ml=_v(table, "model.pk", "central_volume_ml"),
        intercompartmental_clearance_ml_per_h=_v(
            table, "model.pk", "intercompartmental_clearance_ml_per_h"
        ),
        peripheral_volume_ml=_v(table, "model.pk", "peripheral_volume_ml"),
    )
    ad = "model.adaptation"
    adaptation = AdaptationParameters(
        tolerance_max_fraction=_v(table, ad, "tolerance_max_fraction"),
        tolerance_time_constant_h=_v(table, ad, "tolerance_time_constant_days") * HOURS_PER_DAY,
        tolerance_drift_per_year=0.0,
        dependence_rate_per_h=1.0
        / (_v(table, ad, "dependence_time_constant_days") * HOURS_PER_DAY),
        withdrawal_rate_per_h=1.0 / _v(table, ad, "withdrawal_time_constant_h"),
    )
    return TypicalValues(
        pk=pk,
        ke0_per_h=_v(table, "model.pd", "ke0_per_h"),
        hill=_v(table, "model.pd", "hill"),
        ec50_spinal_mcg_per_ml=_v(table, "model.pd", "ec50_spinal_mcg_per_ml"),
        ec50_cerebral_mcg_per_ml=_v(table, "model.pd", "ec50_cerebral_mcg_per_ml"),
        ec50_cause_factor=_cause_factors(table),
        mas_floor=_v(table, "model.pd", "mas_floor"),
        psfs_floor=_v(table, "model.pd", "psfs_floor"),
        adaptation=adaptation,
        reference_weight_kg=_v(table, "model.pk", "reference_weight_kg"),
        size_exponent=_v(table, "model.pk", "size_exponent"),
    )


def sign_model_from_table(table: Mapping[str, Any]) -> SignModel:
    """Parse the sign rules (withdrawal, overdose, side effects, response threshold)."""
    wd = section(table, "model.withdrawal")
    early: list[SignThreshold] = []
    pruritus = ""
    for key, entry in section(table, "model.withdrawal.early_signs").items():
        where = f"model.withdrawal.early_signs.{key}"
        s = sourced(section(table, "model.withdrawal.early_signs"), key, where=where)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidValue(f"{where}.name", name, "a non-empty sign name")
        early.append(SignThreshold(name, s.value, 1))
        if entry.get("pruritus") is True:
            pruritus = name
    excluded_raw = _names(wd, "pruritus_excluded_causes", "model.withdrawal")
    try:
        excluded = tuple(Cause(c) for c in excluded_raw)
    except ValueError:
        raise InvalidValue(
            "model.withdrawal.pruritus_excluded_causes",
            excluded_raw,
            ", ".join(c.value for c in Cause),
        ) from None
    stages: list[SignThreshold] = []
    stages_table = section(table, "model.overdose.stages")
    for key, entry in stages_table.items():
        where = f"model.overdose.stages.{key}"
        s = sourced(stages_table, key, where=where)
        stage = entry.get("stage")
        if isinstance(stage, bool) or not isinstance(stage, int) or stage < 1:
            raise InvalidValue(f"{where}.stage", stage, "an integer >= 1")
        stages.extend(SignThreshold(n, s.value, stage) for n in _names(entry, "names", where))
    stages.sort(key=lambda s: (s.threshold, s.stage))
    adverse: list[AdverseReactionModel] = []
    ar_table = section(table, "model.adverse_reactions")
    for key, entry in ar_table.items():
        where = f"model.adverse_reactions.{key}"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidValue(f"{where}.name", name, "a non-empty name")
        p_spinal = sourced(entry, "spinal", where=where).value
        p_cerebral = sourced(entry, "cerebral", where=where).value
        for field, p in (("spinal", p_spinal), ("cerebral", p_cerebral)):
            if not 0.0 <= p <= 1.0:
                raise InvalidValue(f"{where}.{field}", p, "a probability 0-1")
        adverse.append(AdverseReactionModel(name, p_spinal, p_cerebral))
    return SignModel(
        response_threshold_mas_drop=_v(table, "model.pd", "response_threshold_mas_drop"),
        withdrawal_early_signs=tuple(sorted(early, key=lambda s: s.threshold)),
        withdrawal_severe_threshold=_v(table, "model.withdrawal", "severe_threshold"),
        withdrawal_severe_signs=_names(wd, "severe_signs", "model.withdrawal"),
        risk_factor_multiplier=_v(table, "model.withdrawal", "risk_factor_multiplier"),
        rebound_mas_per_unit=_v(table, "model.withdrawal", "rebound_mas_per_unit"),
        pruritus_sign=pruritus,
        pruritus_min_therapy_h=_v(table, "model.withdrawal", "pruritus_min_therapy_days")
        * HOURS_PER_DAY,
        pruritus_excluded_causes=excluded,
        overdose_stages=tuple(stages),
        hypotonia_occupancy=_v(table, "model.overdose", "hypotonia_occupancy"),
        hypotonia_hill=_v(table, "model.overdose", "hypotonia_hill"),
        adverse_reactions=tuple(adverse),
        mas_plus_code=_v(table, "model.pd", "mas_plus_code"),
    )


def typical_parameters(
    table: Mapping[str, Any],
    cause: Cause = Cause.SPINAL_CORD_INJURY,
    *,
    age_years: float = 40.0,
    weight_kg: float | None = None,
    baseline_mas: float | None = None,
    baseline_psfs: float = 3.0,
    risk: RiskFactors | None = None,
) -> PatientParameters:
    """The typical patient of ``cause``: median parameters, scaled to ``weight_kg``.

    Args:
        table: the parsed ``patient.toml``.
        cause: cause of spasticity.
        age_years: age, years.
        weight_kg: body weight, kg (default: the reference weight).
        baseline_mas: MAS off drug (default: the population mean).
        baseline_psfs: PSFS off drug.
        risk: withdrawal risk factors (default: none).

    The typical patient's side-effect draws are 0.5 each, so it shows a side
    effect only where its probability at the current effect exceeds one half.
    """
    typical = typical_values_from_table(table)
    signs = sign_model_from_table(table)
    weight = typical.reference_weight_kg if weight_kg is None else weight_kg
    size = typical.size_factor(weight)
    pk = typical.pk
    mas = _v(table, "population.baseline", "mas_mean") if baseline_mas is None else baseline_mas
    return PatientParameters(
        cause=cause,
        age_years=age_years,
        weight_kg=weight,
        baseline_mas=mas,
        baseline_psfs=baseline_psfs,
        pk=PKParameters(
            pk.clearance_ml_per_h * size,
            pk.central_volume_ml * size,
            pk.intercompartmental_clearance_ml_per_h * size,
            pk.peripheral_volume_ml * size,
        ),
        pd=PDParameters(
            ke0_per_h=typical.ke0_per_h,
            ec50_mcg_per_ml=typical.ec50(cause),
            hill=typical.hill,
            mas_floor=typical.mas_floor,
            psfs_floor=typical.psfs_floor,
        ),
        adaptation=typical.adaptation,
        risk=risk if risk is not None else RiskFactors(),
        signs=signs,
        adverse_susceptibility=tuple(0.5 for _ in signs.adverse_reactions),
    )


def _walk(node: Mapping[str, Any], prefix: str) -> list[tuple[str, Sourced]]:
    out: list[tuple[str, Sourced]] = []
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            if "value" in value and "status" in value:
                out.append((path, sourced(node, key, where=prefix)))
            else:
                out.extend(_walk(value, path))
    return out


def sourced_numbers(table: Mapping[str, Any]) -> list[tuple[str, Sourced]]:
    """Every sourced number in the table with its dotted path, assumptions and confirmed alike."""
    return _walk(table, "")
