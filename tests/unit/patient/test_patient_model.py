"""The patient's exact solution and observation map: physics and rules, not fitted numbers."""

from __future__ import annotations

import dataclasses
import math

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.delivery import DeliverySegment, bolus_segment
from itb.domain.errors import InvalidValue
from itb.domain.patient import (
    Cause,
    PatientParameters,
    PatientState,
    RiskFactors,
    WithdrawalStage,
    advance,
    effective_ec50,
    mas_grade,
    observe,
    respond,
    simulate,
    typical_parameters,
)

TABLE = load_data_table("patient")


@pytest.fixture
def patient() -> PatientParameters:
    return typical_parameters(TABLE, Cause.SPINAL_CORD_INJURY)


def _close(a: PatientState, b: PatientState, rel: float = 1e-10) -> None:
    for x, y in zip(a.vector, b.vector, strict=True):
        assert x == pytest.approx(y, rel=rel, abs=1e-14)


def test_zero_duration_changes_nothing(patient: PatientParameters) -> None:
    s = advance(patient, PatientState(), 10.0, 3.0)
    assert advance(patient, s, 5.0, 0.0) == s


def test_two_half_steps_equal_one_step(patient: PatientParameters) -> None:
    s0 = advance(patient, PatientState(), 20.0, 1.3)
    one = advance(patient, s0, 7.0, 10.0)
    two = advance(patient, advance(patient, s0, 7.0, 4.0), 7.0, 6.0)
    _close(one, two)
    assert one.t_h == pytest.approx(two.t_h)


def test_steady_state_csf_concentration_is_rate_over_clearance(patient: PatientParameters) -> None:
    rate = 12.5
    s = advance(patient, PatientState(), rate, 24.0 * 60)
    o = observe(patient, s)
    assert o.csf_concentration_mcg_per_ml == pytest.approx(
        rate / patient.pk.clearance_ml_per_h, rel=1e-9
    )
    assert o.effect_site_mcg_per_ml == pytest.approx(o.csf_concentration_mcg_per_ml, rel=1e-9)


def test_response_is_linear_in_dose_from_rest(patient: PatientParameters) -> None:
    a = simulate(patient, [bolus_segment(0.0, 50.0)], [2.0, 6.0])
    b = simulate(patient, [bolus_segment(0.0, 100.0)], [2.0, 6.0])
    for sa, sb in zip(a, b, strict=True):
        for x, y in zip(sa.vector, sb.vector, strict=True):
            assert y == pytest.approx(2.0 * x, rel=1e-12, abs=1e-15)


def test_drug_in_the_body_never_exceeds_what_was_delivered(patient: PatientParameters) -> None:
    s = advance(patient, PatientState(), 30.0, 5.0)
    assert s.delivered_mcg == pytest.approx(150.0)
    assert 0.0 < s.central_mcg + s.peripheral_mcg < s.delivered_mcg


def test_overlapping_segments_add_their_rates(patient: PatientParameters) -> None:
    together = simulate(patient, [DeliverySegment(0.0, 10.0, 8.0)], [10.0])[0]
    split = simulate(
        patient, [DeliverySegment(0.0, 10.0, 5.0), DeliverySegment(0.0, 10.0, 3.0)], [10.0]
    )[0]
    _close(together, split)


def test_samples_must_be_ascending(patient: PatientParameters) -> None:
    with pytest.raises(InvalidValue):
        simulate(patient, [], [2.0, 1.0])


def test_negative_rate_is_refused(patient: PatientParameters) -> None:
    with pytest.raises(InvalidValue, match="rate_mcg_per_h"):
        advance(patient, PatientState(), -1.0, 1.0)


def test_no_drug_means_baseline_scores(patient: PatientParameters) -> None:
    o = observe(patient, PatientState())
    assert o.mas == patient.baseline_mas
    assert o.psfs == patient.baseline_psfs
    assert o.signs == ()
    assert o.withdrawal_stage is WithdrawalStage.NONE
    assert o.overdose_stage == 0


def test_effect_keeps_tone_at_therapeutic_exposure(patient: PatientParameters) -> None:
    # Occupancy 4: near-maximal drug effect, far below the overdose stages.
    ec50 = effective_ec50(patient, 0.0)
    o = observe(patient, PatientState(effect_site_mcg_per_ml=4.0 * ec50))
    assert o.mas < patient.baseline_mas
    assert o.mas >= patient.pd.mas_floor * 0.95
    assert o.overdose_stage == 0


def test_overdose_signs_rise_with_exposure(patient: PatientParameters) -> None:
    ec50 = effective_ec50(patient, 0.0)
    stages = [
        observe(patient, PatientState(effect_site_mcg_per_ml=k * ec50)).overdose_stage
        for k in (1, 5, 8, 11, 16, 30)
    ]
    assert stages == sorted(stages)
    assert stages[0] == 0
    assert stages[-1] == max(s.stage for s in patient.signs.overdose_stages)
    coma = observe(patient, PatientState(effect_site_mcg_per_ml=30 * ec50))
    assert "coma" in coma.overdose_signs
    assert coma.mas < patient.pd.mas_floor  # hypotonia below the therapeutic floor


def test_tolerance_raises_ec50_mostly_in_the_first_year(patient: PatientParameters) -> None:
    year = 24 * 365.25
    e0, e1, e2 = (effective_ec50(patient, y * year) for y in (0, 1, 2))
    assert e0 == patient.pd.ec50_mcg_per_ml
    assert e1 > e0
    assert e1 - e0 > 5 * (e2 - e1)


def test_refractory_patients_keep_rising(patient: PatientParameters) -> None:
    refractory = dataclasses.replace(
        patient, adaptation=dataclasses.replace(patient.adaptation, tolerance_drift_per_year=0.8)
    )
    year = 24 * 365.25
    assert refractory.adaptation.refractory
    rise_year_3 = effective_ec50(refractory, 3 * year) - effective_ec50(refractory, 2 * year)
    assert rise_year_3 == pytest.approx(0.8 * patient.pd.ec50_mcg_per_ml, rel=0.05)


def _stop_history(params: PatientParameters, rate: float, on_h: float) -> list:
    times = [on_h + k * 1.0 for k in range(121)]
    return list(respond(params, [DeliverySegment(0.0, on_h, rate)], times))


def test_abrupt_stop_brings_early_signs_before_severe_ones(patient: PatientParameters) -> None:
    high_risk = dataclasses.replace(
        patient,
        risk=RiskFactors(
            sci_at_or_above_t6=True, communication_difficulty=True, previous_withdrawal=True
        ),
    )
    obs = _stop_history(high_risk, 20.0, 24.0 * 120)
    stages = [o.withdrawal_stage for o in obs]
    assert WithdrawalStage.SEVERE in stages
    first_early = stages.index(WithdrawalStage.EARLY)
    first_severe = stages.index(WithdrawalStage.SEVERE)
    assert first_early < first_severe
    severe = obs[first_severe]
    assert set(patient.signs.withdrawal_severe_signs) <= set(severe.withdrawal_signs)
    during = [o.mas for o in obs if o.withdrawal_stage is WithdrawalStage.SEVERE]
    assert max(during) > patient.baseline_mas  # exaggerated rebound above the baseline


def test_risk_factors_make_severe_withdrawal_earlier(patient: PatientParameters) -> None:
    def first_severe(p: PatientParameters) -> float:
        for o in _stop_history(p, 20.0, 24.0 * 120):
            if o.withdrawal_stage is WithdrawalStage.SEVERE:
                return o.t_h
        return math.inf

    risky = dataclasses.replace(
        patient, risk=RiskFactors(sci_at_or_above_t6=True, previous_withdrawal=True)
    )
    assert first_severe(risky) < first_severe(patient)


def test_pruritus_not_before_three_months_nor_in_ms(patient: PatientParameters) -> None:
    name = patient.signs.pruritus_sign
    short = _stop_history(patient, 20.0, 24.0 * 30)
    assert all(name not in o.withdrawal_signs for o in short)
    long = _stop_history(patient, 20.0, 24.0 * 120)
    assert any(name in o.withdrawal_signs for o in long)
    ms = dataclasses.replace(patient, cause=Cause.MULTIPLE_SCLEROSIS)
    assert all(name not in o.withdrawal_signs for o in _stop_history(ms, 20.0, 24.0 * 120))


def test_early_signs_appear_in_their_documented_order(patient: PatientParameters) -> None:
    obs = _stop_history(patient, 20.0, 24.0 * 120)
    order = [
        s.name for s in sorted(patient.signs.withdrawal_early_signs, key=lambda s: s.threshold)
    ]
    for o in obs:
        present = [s for s in o.withdrawal_signs if s in order]
        assert present == order[: len(present)]


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (0.0, "0"),
        (0.49, "0"),
        (1.0, "1"),
        (1.2, "1"),
        (1.5, "1+"),
        (1.7, "1+"),
        (2.0, "2"),
        (2.9, "3"),
        (3.6, "4"),
        (4.0, "4"),
    ],
)
def test_mas_grade_codes_one_plus_as_one_and_a_half(score: float, grade: str) -> None:
    assert mas_grade(score, 1.5) == grade


def test_side_effects_follow_exposure(patient: PatientParameters) -> None:
    susceptible = dataclasses.replace(
        patient, adverse_susceptibility=tuple(0.0 for _ in patient.adverse_susceptibility)
    )
    assert observe(susceptible, PatientState()).adverse_reactions == ()
    ec50 = effective_ec50(patient, 0.0)
    on_drug = observe(susceptible, PatientState(effect_site_mcg_per_ml=2 * ec50))
    assert set(on_drug.adverse_reactions) == {a.name for a in patient.signs.adverse_reactions}


@pytest.mark.parametrize(
    ("field", "value"),
    [("age_years", 0.0), ("baseline_mas", 4.5), ("baseline_psfs", -0.1), ("weight_kg", -3.0)],
)
def test_impossible_parameters_are_refused(
    patient: PatientParameters, field: str, value: float
) -> None:
    with pytest.raises(InvalidValue, match=field):
        dataclasses.replace(patient, **{field: value})


def test_cause_maps_to_the_labels_origin_groups() -> None:
    assert Cause.SPINAL_CORD_INJURY.origin == "spinal"
    assert Cause.MULTIPLE_SCLEROSIS.origin == "spinal"
    for c in (Cause.CEREBRAL_PALSY, Cause.TRAUMATIC_BRAIN_INJURY, Cause.STROKE, Cause.OTHER):
        assert c.origin == "cerebral"


def test_modal_and_matrix_exponential_routes_agree(patient: PatientParameters) -> None:
    from itb.domain.patient import model as internals

    assert internals._modes(patient.pk, patient.pd, patient.adaptation) is not None
    for dt in (1.0 / 60.0, 0.7, 24.0, 720.0):
        state = PatientState(
            central_mcg=40.0,
            peripheral_mcg=90.0,
            effect_site_mcg_per_ml=0.3,
            adaptation_mcg_per_ml=0.25,
            withdrawal_drive_mcg_per_ml=-0.02,
        )
        modal = internals._propagator_cached(patient.pk, patient.pd, patient.adaptation, dt)
        dense = internals._propagator_by_expm(patient.pk, patient.pd, patient.adaptation, dt)
        xa = [
            sum(p * v for p, v in zip(r, state.vector, strict=True)) + g * 10.0
            for r, g in zip(*modal, strict=True)
        ]
        xb = [
            sum(p * v for p, v in zip(r, state.vector, strict=True)) + g * 10.0
            for r, g in zip(*dense, strict=True)
        ]
        for a, b in zip(xa, xb, strict=True):
            assert a == pytest.approx(b, rel=1e-10, abs=1e-13)


def test_coincident_rates_fall_back_to_the_matrix_exponential(patient: PatientParameters) -> None:
    from itb.domain.patient import model as internals

    same = dataclasses.replace(
        patient,
        adaptation=dataclasses.replace(
            patient.adaptation, withdrawal_rate_per_h=patient.pd.ke0_per_h
        ),
    )
    assert internals._modes(same.pk, same.pd, same.adaptation) is None
    s = advance(same, PatientState(), 10.0, 30.0)
    assert s.effect_site_mcg_per_ml > 0.0
