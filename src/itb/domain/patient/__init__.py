"""The virtual patient: pure model of intrathecal PK, effect, tolerance, withdrawal and overdose.

Public surface for the simulation engine:

- :class:`PatientParameters` (with :class:`PKParameters`, :class:`PDParameters`,
  :class:`AdaptationParameters`, :class:`RiskFactors`, :class:`SignModel`) and
  :class:`PatientState`;
- :func:`advance` ``(params, state, rate_mcg_per_h, dt_h) -> PatientState``: exact
  over one constant-rate segment;
- :func:`observe` ``(params, state) -> Observation``: concentrations, MAS/PSFS and signs;
- :func:`respond` / :func:`simulate`: whole delivery histories
  (:class:`itb.domain.delivery.DeliverySegment`);
- :func:`typical_parameters` and :func:`sign_model_from_table`: build patients from
  the reviewed data table (``load_data_table("patient")``).

Standard library only: no numpy, no I/O, no randomness (draws live in
:mod:`itb.simulation.population`).
"""

from itb.domain.patient.data import (
    TypicalValues,
    section,
    sign_model_from_table,
    sourced_numbers,
    typical_parameters,
    typical_values_from_table,
)
from itb.domain.patient.history import rate_pieces, respond, simulate
from itb.domain.patient.model import (
    MODES_MIN_RELATIVE_GAP,
    STATE_NAMES,
    AdaptationParameters,
    AdverseReactionModel,
    Cause,
    Modes,
    OriginGroup,
    PatientParameters,
    PatientState,
    PDParameters,
    PKParameters,
    RiskFactors,
    SignModel,
    SignThreshold,
    advance,
    derivatives,
    modes,
    propagator,
    system_matrix,
)
from itb.domain.patient.observe import (
    Observation,
    WithdrawalStage,
    effective_ec50,
    mas_grade,
    observe,
    tolerance_factor,
)
from itb.domain.patient.weight import WeightForAge

__all__ = [
    "MODES_MIN_RELATIVE_GAP",
    "STATE_NAMES",
    "AdaptationParameters",
    "AdverseReactionModel",
    "Cause",
    "Modes",
    "Observation",
    "OriginGroup",
    "PDParameters",
    "PKParameters",
    "PatientParameters",
    "PatientState",
    "RiskFactors",
    "SignModel",
    "SignThreshold",
    "TypicalValues",
    "WeightForAge",
    "WithdrawalStage",
    "advance",
    "derivatives",
    "effective_ec50",
    "mas_grade",
    "modes",
    "observe",
    "propagator",
    "rate_pieces",
    "respond",
    "section",
    "sign_model_from_table",
    "simulate",
    "sourced_numbers",
    "system_matrix",
    "tolerance_factor",
    "typical_parameters",
    "typical_values_from_table",
]
