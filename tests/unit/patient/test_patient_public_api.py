"""The patient model's public surface, pinned (the engine builds on it)."""

import itb.domain.patient as patient

EXPECTED = {
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
}


def test_public_api_is_pinned() -> None:
    assert set(patient.__all__) == EXPECTED
    for name in patient.__all__:
        assert hasattr(patient, name), name
