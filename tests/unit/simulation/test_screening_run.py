"""The screening protocol run against virtual patients."""

import itertools
from dataclasses import replace

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.screening import parse_screening_protocol
from itb.domain.clinical.titration import parse_titration_rules
from itb.domain.delivery import bolus_segment
from itb.domain.patient import Cause, PatientParameters, respond, typical_parameters
from itb.simulation.screening_run import CLINIC_OBSERVATION_TIMES_H, run_screening

PROTOCOL = parse_screening_protocol(load_data_table("screening"))
TITRATION = parse_titration_rules(load_data_table("titration"))
TABLE = load_data_table("patient")


def typical() -> PatientParameters:
    return typical_parameters(TABLE, Cause.SPINAL_CORD_INJURY)


def insensitive() -> PatientParameters:
    p = typical()
    return replace(p, pd=replace(p.pd, ec50_mcg_per_ml=p.pd.ec50_mcg_per_ml * 50.0))


def test_typical_patient_responds_to_the_first_bolus_and_gets_a_starting_dose() -> None:
    run = run_screening(PROTOCOL, typical(), titration=TITRATION)
    assert [b.dose_mcg for b in run.boluses] == [50.0]
    a = run.boluses[0].assessment
    assert a.outcome == "responder"
    assert a.onset_h is not None
    assert a.peak_time_h is not None
    assert a.last_response_h is not None
    assert a.onset_h <= a.peak_time_h <= a.last_response_h
    assert run.verdict.kind == "responder"
    assert run.starting_dose is not None
    factor = 1.0 if a.last_response_h > 8.0 else 2.0
    assert run.starting_dose.dose_mcg_per_day == pytest.approx(factor * 50.0)


def test_insensitive_patient_goes_50_75_100_a_day_apart_then_is_not_a_candidate() -> None:
    run = run_screening(PROTOCOL, insensitive(), titration=TITRATION)
    assert [b.dose_mcg for b in run.boluses] == [50.0, 75.0, 100.0]
    times = [b.given_at_h for b in run.boluses]
    assert all(b - a >= 24.0 for a, b in itertools.pairwise(times))
    assert all(b.assessment.outcome == "non_responder" for b in run.boluses)
    assert run.verdict.kind == "not_a_candidate"
    assert run.starting_dose is None


def test_reduced_start_begins_at_25_mcg() -> None:
    run = run_screening(PROTOCOL, insensitive(), reduced_start=True)
    assert run.boluses[0].dose_mcg == 25.0


def test_the_clinic_scores_are_the_patients_own_at_the_observation_times() -> None:
    patient = typical()
    run = run_screening(PROTOCOL, patient)
    seen = run.boluses[0].observations
    times = [0.0, *CLINIC_OBSERVATION_TIMES_H]
    truth = respond(patient, [bolus_segment(0.0, 50.0)], times)
    assert [o.t_after_h for o in seen] == times
    assert [o.mas for o in seen] == [round(t.mas, 2) for t in truth]


def test_a_bigger_bolus_lowers_tone_more() -> None:
    patient = typical()
    small = respond(patient, [bolus_segment(0.0, 25.0)], [4.0])[0].mas
    large = respond(patient, [bolus_segment(0.0, 100.0)], [4.0])[0].mas
    assert large < small
