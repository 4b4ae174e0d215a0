"""The use cases behind the dashboard's screens: a residual checked before a refill, a
change reviewed without staging it, the dose history, follow-up scores and refill
reminders. Each gives the same verdict as the use case it previews, changes nothing,
and is held to the same roles."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.clinic_setup import Clinic, fill, make_clinic

from itb.domain.errors import Forbidden, InvalidValue, NotFound
from itb.services.clinic import ChangeRequest, ProgramRequest, RefillRequest


def _state(c: Clinic) -> dict:
    out = copy.deepcopy(c.store.state)
    out.pop("audit")
    return out


@settings(max_examples=25, deadline=None)
@given(withdrawn=st.floats(min_value=0.0, max_value=20.0, allow_nan=False))
def test_the_residual_check_is_the_verdict_the_refill_then_records(withdrawn: float) -> None:
    clinic = make_clinic()
    clinic.clock.advance(hours=24 * 30)
    before = _state(clinic)
    check = clinic.service.check_residual(clinic.nurse, clinic.implant_id, withdrawn)
    assert _state(clinic) == before  # a check records nothing
    out = clinic.service.record_refill(
        clinic.nurse, clinic.implant_id, RefillRequest(at=None, withdrawn_ml=withdrawn, fill=fill())
    )
    assert out.visit.expected_ml == pytest.approx(check.expected_ml)
    assert out.discrepancy.verdict is check.discrepancy.verdict
    assert out.discrepancy.allowed_ml == pytest.approx(check.discrepancy.allowed_ml)


def test_the_residual_check_keeps_the_refill_roles_and_bounds(clinic: Clinic) -> None:
    with pytest.raises(Forbidden):
        clinic.service.check_residual(clinic.viewer, clinic.implant_id, 5.0)
    with pytest.raises(Forbidden):
        clinic.service.check_residual(clinic.caregiver, clinic.implant_id, 5.0)
    with pytest.raises(NotFound):
        clinic.service.check_residual(clinic.nurse, "I9999", 5.0)
    with pytest.raises(InvalidValue, match="withdrawn_ml"):
        clinic.service.check_residual(clinic.nurse, clinic.implant_id, 500.0)
    with pytest.raises(InvalidValue, match="withdrawn_ml"):
        clinic.service.check_residual(clinic.nurse, clinic.implant_id, float("nan"))


@pytest.mark.parametrize("dose", [125.0, 110.0, 5000.0, 400.0])
def test_a_preview_is_the_review_staging_would_give(clinic: Clinic, dose: float) -> None:
    request = ChangeRequest(program=ProgramRequest(dose_mcg_per_day=dose), reason="tone")
    before = _state(clinic)
    preview = clinic.service.preview_change(clinic.physician, clinic.implant_id, request)
    assert _state(clinic) == before
    if preview.refusal is None:
        staged = clinic.service.stage_change(clinic.physician, clinic.implant_id, request)
        assert staged.review["rows"] == preview.review["rows"]
        assert staged.review["findings"] == preview.review["findings"]
        assert staged.needs_verification is preview.needs_verification
    else:
        with pytest.raises(Exception, match="change refused") as refused:
            clinic.service.stage_change(clinic.physician, clinic.implant_id, request)
        assert str(refused.value) == preview.refusal
        assert _state(clinic) == before


def test_a_hard_limit_preview_names_the_limit_and_cannot_be_staged(clinic: Clinic) -> None:
    request = ChangeRequest(program=ProgramRequest(dose_mcg_per_day=5000.0), reason="slip")
    preview = clinic.service.preview_change(clinic.physician, clinic.implant_id, request)
    assert preview.blocked
    assert any(
        f["severity"] == "block" and "hard limit" in f["message"]
        for f in preview.review["findings"]
    )
    with pytest.raises(Forbidden):
        clinic.service.preview_change(clinic.viewer, clinic.implant_id, request)


def test_the_dose_history_follows_every_committed_prescription(clinic: Clinic) -> None:
    first = clinic.service.dose_history(clinic.nurse, clinic.implant_id)
    assert len(first) == 1
    c = clinic.service.stage_change(
        clinic.nurse,
        clinic.implant_id,
        ChangeRequest(program=ProgramRequest(dose_mcg_per_day=125.0), reason="tone"),
    )
    clinic.service.verify_change(clinic.physician, c.id)
    clinic.service.commit_change(clinic.nurse, c.id)
    doses = clinic.service.dose_history(clinic.caregiver, clinic.implant_id)
    assert [d.dose_mcg_per_day for d in doses] == [first[0].dose_mcg_per_day, 125.0]
    assert (doses[-1].entered_by, doses[-1].verified_by) == ("nina", "drlee")
    with pytest.raises(NotFound):
        make_clinic().service.dose_history(clinic.other_patient, clinic.implant_id)


def test_a_flex_program_shows_its_day(clinic: Clinic) -> None:
    steps = ((0.0, 4.0), (8.0, 5.0), (20.0, 4.0))
    dose = 8 * 4.0 + 12 * 5.0 + 4 * 4.0
    c = clinic.service.stage_change(
        clinic.physician,
        clinic.implant_id,
        ChangeRequest(
            program=ProgramRequest(dose_mcg_per_day=dose, flex_steps=steps), reason="day"
        ),
    )
    assert c.needs_verification
    clinic.service.verify_change(clinic.second_physician, c.id)
    clinic.service.commit_change(clinic.physician, c.id)
    last = clinic.service.dose_history(clinic.nurse, clinic.implant_id)[-1]
    assert last.day_profile == steps
    assert last.same_every_day
    assert last.dose_mcg_per_day == pytest.approx(dose)


@pytest.mark.parametrize(
    ("mas", "psfs", "named"),
    [(4.5, None, "mas"), (-0.1, None, "mas"), (float("nan"), None, "mas"), (2.0, 5.0, "psfs"),
     (True, None, "mas")],
)  # fmt: skip
def test_follow_up_scores_stay_on_their_scales(
    clinic: Clinic, mas: float, psfs: float | None, named: str
) -> None:
    before = _state(clinic)
    with pytest.raises(InvalidValue) as refused:
        clinic.service.record_follow_up(clinic.nurse, clinic.patient_id, mas=mas, psfs=psfs)
    assert refused.value.field == named
    assert _state(clinic) == before


def test_follow_up_scores_are_recorded_and_kept_to_the_roles(clinic: Clinic) -> None:
    a = clinic.service.record_follow_up(clinic.nurse, clinic.patient_id, mas=2.5, psfs=1.0)
    assert (a.kind, a.detail["mas"], a.detail["psfs"]) == ("follow_up", 2.5, 1.0)
    chart = clinic.service.chart(clinic.caregiver, clinic.patient_id)
    assert a in chart.assessments
    for actor in (clinic.viewer, clinic.caregiver):
        with pytest.raises(Forbidden):
            clinic.service.record_follow_up(actor, clinic.patient_id, mas=2.0)


def test_the_reminders_hold_the_booked_visits_and_the_refill_by_date(clinic: Clinic) -> None:
    at = clinic.clock.now() + timedelta(days=20)
    clinic.service.book_visit(clinic.nurse, clinic.patient_id, at=at, kind="refill")
    rem = clinic.service.reminders(clinic.caregiver, clinic.patient_id)
    assert [v.at for v in rem.visits] == [at]
    assert rem.radar is not None
    assert rem.radar.refill_by is not None
    assert rem.radar.pump.next_visit_at == at
    assert rem.policy.visit_lead_hours.value > 0
    with pytest.raises(NotFound):
        clinic.service.reminders(clinic.caregiver, clinic.other_patient_id)


# ------------------------------------------------------------------ the forecast's what-if


def test_a_previewed_dose_increase_shows_the_reservoir_emptying_sooner(clinic: Clinic) -> None:
    visit = clinic.service.book_visit(
        clinic.nurse, clinic.patient_id, at=clinic.clock.now() + timedelta(days=30), kind="refill"
    )
    request = ChangeRequest(program=ProgramRequest(dose_mcg_per_day=125.0), reason="tone")
    preview = clinic.service.preview_change(clinic.physician, clinic.implant_id, request)
    now, after = preview.forecast_now, preview.forecast_after
    assert now is not None
    assert after is not None
    assert now.by_at == after.by_at == visit.at
    for a, b in zip(after.empty_at, now.empty_at, strict=True):
        assert a is not None
        assert b is not None
        assert a < b
    assert after.p_low >= now.p_low
    # the same forecast the radar gives for the pump as programmed now
    (row,) = clinic.service.radar(clinic.viewer, on=clinic.clock.now())
    assert row.pump.forecast is not None
    assert row.pump.forecast.empty_at == now.empty_at


def test_a_refused_change_has_no_forecast_after(clinic: Clinic) -> None:
    request = ChangeRequest(program=ProgramRequest(dose_mcg_per_day=5000.0), reason="slip")
    preview = clinic.service.preview_change(clinic.physician, clinic.implant_id, request)
    assert preview.blocked
    assert preview.forecast_now is not None
    assert preview.forecast_after is None


def test_a_previewed_refill_learns_the_residual_and_judges_the_new_strength(
    clinic: Clinic,
) -> None:
    clinic.clock.advance(days=40)
    expected = clinic.service.pump_now(clinic.nurse, clinic.implant_id).reservoir_calculated_ml
    before = _state(clinic)
    strong = fill(20.0, 2000.0, "baclofen_2000")
    refused = clinic.service.preview_refill(
        clinic.nurse,
        clinic.implant_id,
        RefillRequest(at=clinic.clock.now(), withdrawn_ml=expected - 1.0, fill=strong),
    )
    assert refused.refusal is not None
    assert "prescription" in refused.refusal
    assert refused.forecast_after is None
    ok = clinic.service.preview_refill(
        clinic.nurse,
        clinic.implant_id,
        RefillRequest(
            at=clinic.clock.now(),
            withdrawn_ml=expected - 1.0,  # 1 mL more used than programmed
            fill=strong,
            program=ProgramRequest(dose_mcg_per_day=100.0),
            bridge_bolus=True,
        ),
    )
    assert _state(clinic) == before  # nothing recorded
    assert ok.refusal is None
    assert ok.discrepancy.expected_ml == pytest.approx(expected)
    assert ok.forecast_after is not None
    assert ok.forecast_after.refills_learned == 1
    assert ok.forecast_after.delivered_pct is not None
    assert ok.forecast_after.delivered_pct > 0.0
    assert ok.forecast_after.factor_mean > clinic.service.catalog.forecast.prior_mean.value
    # four times the strength at the same dose: the next interval is far longer
    assert ok.forecast_now is not None
    assert ok.forecast_after.empty_at[1] is not None
    assert ok.forecast_now.empty_at[1] is not None
    assert ok.forecast_after.empty_at[1] > ok.forecast_now.empty_at[1] + timedelta(days=60)
