"""Screening protocol: planner (dose sequence, 24 h spacing, verdicts) and recorder."""

from __future__ import annotations

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.screening import (
    GivenBolus,
    Observation,
    ScreeningProtocol,
    assess_bolus,
    check_next_bolus,
    parse_screening_protocol,
    plan_next_step,
)
from itb.domain.errors import InvalidValue


@pytest.fixture(scope="module")
def proto() -> ScreeningProtocol:
    return parse_screening_protocol(load_data_table("screening"))


def _no(dose: float, at: float) -> GivenBolus:
    return GivenBolus(dose, at, "non_responder")


# ------------------------------------------------------------------ planner


def test_first_step_is_50_mcg_or_25_for_reduced_start(proto: ScreeningProtocol) -> None:
    step = plan_next_step(proto, [])
    assert (step.kind, step.dose_mcg, step.earliest_at_h) == ("give_dose", 50.0, None)
    assert "1 mL" in step.text
    assert plan_next_step(proto, [], reduced_start=True).dose_mcg == 25.0


def test_standard_sequence_then_not_a_candidate_after_100(proto: ScreeningProtocol) -> None:
    step = plan_next_step(proto, [_no(50, 0.0)])
    assert (step.kind, step.dose_mcg, step.earliest_at_h) == ("give_dose", 75.0, 24.0)
    step = plan_next_step(proto, [_no(50, 0.0), _no(75, 30.0)])
    assert (step.kind, step.dose_mcg, step.earliest_at_h) == ("give_dose", 100.0, 54.0)
    step = plan_next_step(proto, [_no(50, 0.0), _no(75, 30.0), _no(100, 54.0)])
    assert step.kind == "not_a_candidate"
    assert "not a candidate for a pump" in step.text
    assert "[C12]" in step.reasons[0].source


def test_reduced_sequence_reaches_100_with_assumed_steps(proto: ScreeningProtocol) -> None:
    history = [_no(25, 0.0), _no(50, 24.0), _no(75, 48.0)]
    step = plan_next_step(proto, history, reduced_start=True)
    assert step.dose_mcg == 100.0
    assert "assumed" in step.reasons[0].text
    history.append(_no(100, 72.0))
    assert plan_next_step(proto, history, reduced_start=True).kind == "not_a_candidate"


def test_responder_stops_the_protocol(proto: ScreeningProtocol) -> None:
    step = plan_next_step(proto, [_no(50, 0.0), GivenBolus(75, 24.0, "responder")])
    assert (step.kind, step.dose_mcg) == ("responder", 75.0)
    with pytest.raises(InvalidValue, match="no screening dose now"):
        check_next_bolus(proto, [GivenBolus(50, 0.0, "responder")], 75.0, 48.0)


def test_pending_bolus_must_be_observed_first(proto: ScreeningProtocol) -> None:
    step = plan_next_step(proto, [GivenBolus(50, 10.0)])
    assert (step.kind, step.observe_from_h, step.observe_until_h) == ("observe", 10.0, 18.0)
    with pytest.raises(InvalidValue, match="no screening dose now"):
        check_next_bolus(proto, [GivenBolus(50, 10.0)], 75.0, 40.0)


@pytest.mark.parametrize(("at", "ok"), [(23.99, False), (24.0, True), (24.01, True), (0.5, False)])
def test_24_hour_spacing(proto: ScreeningProtocol, at: float, ok: bool) -> None:
    history = [_no(50, 0.0)]
    if ok:
        assert check_next_bolus(proto, history, 75.0, at).dose_mcg == 75.0
    else:
        with pytest.raises(InvalidValue) as info:
            check_next_bolus(proto, history, 75.0, at)
        assert info.value.field == "given_at_h"
        assert ">= 24" in str(info.value)


def test_24_hours_as_a_difference_of_float_times_is_24_hours(proto: ScreeningProtocol) -> None:
    # 128.18405399049328 - 104.1840539904933 == 23.99999999999998 in floating point
    first, second = 104.1840539904933, 104.1840539904933 + 24.0
    history = [_no(50, 0.0), _no(75, first), _no(100, second)]
    assert plan_next_step(proto, history).kind == "not_a_candidate"
    assert check_next_bolus(proto, history[:2], 100.0, second).dose_mcg == 100.0


def test_wrong_next_dose_is_refused(proto: ScreeningProtocol) -> None:
    with pytest.raises(InvalidValue, match="75"):
        check_next_bolus(proto, [_no(50, 0.0)], 100.0, 30.0)
    with pytest.raises(InvalidValue, match="50"):
        check_next_bolus(proto, [], 75.0, 0.0)


def test_history_that_breaks_the_protocol_is_refused(proto: ScreeningProtocol) -> None:
    with pytest.raises(InvalidValue, match=r"boluses\[2\]\.given_at_h"):
        plan_next_step(proto, [_no(50, 0.0), _no(75, 23.0)])
    with pytest.raises(InvalidValue, match=r"boluses\[1\]\.dose_mcg"):
        plan_next_step(proto, [_no(60, 0.0)])
    with pytest.raises(InvalidValue, match="only after a non-response"):
        plan_next_step(proto, [GivenBolus(50, 0.0, "responder"), _no(75, 30.0)])
    with pytest.raises(InvalidValue, match="at most 3"):
        plan_next_step(proto, [_no(50, 0), _no(75, 24), _no(100, 48), _no(100, 72)])


# ----------------------------------------------------------------- recorder


def _obs(*rows: tuple[float, float]) -> list[Observation]:
    return [Observation(t, mas=m) for t, m in rows]


def test_responder_with_onset_peak_and_duration(proto: ScreeningProtocol) -> None:
    result = assess_bolus(
        proto,
        _obs((0, 3.0), (1, 2.5), (2, 1.9), (4, 1.5), (6, 1.8), (8, 2.6)),
    )
    assert result.outcome == "responder"
    assert result.baseline == {"mas": 3.0}
    assert (result.onset_h, result.peak_time_h, result.last_response_h) == (2, 4, 6)
    assert result.effect_duration_h == 4
    assert result.peak_drop == {"mas": 1.5}
    assert not result.still_effective_at_last_observation
    assert "[C45]" in result.reasons[0].source


@pytest.mark.parametrize(("after", "outcome"), [(2.0, "responder"), (2.01, "non_responder")])
def test_one_point_fall_boundary(proto: ScreeningProtocol, after: float, outcome: str) -> None:
    result = assess_bolus(proto, _obs((0, 3.0), (2, 2.5), (4, after), (6, 2.8)))
    assert result.outcome == outcome


def test_decimal_scores_fall_exactly(proto: ScreeningProtocol) -> None:
    # 2.9 - 1.9 is 0.9999999999999998 in binary floating point
    assert assess_bolus(proto, _obs((0, 2.9), (2, 2.5), (4, 1.9))).outcome == "responder"


def test_no_verdict_of_non_response_before_four_hours(proto: ScreeningProtocol) -> None:
    early = assess_bolus(proto, _obs((0, 3.0), (1, 3.0), (3.99, 2.9)))
    assert early.outcome == "pending"
    at_four = assess_bolus(proto, _obs((0, 3.0), (1, 3.0), (4.0, 2.9)))
    assert at_four.outcome == "non_responder"
    assert at_four.peak_time_h == 4.0


def test_effect_still_present_at_last_observation(proto: ScreeningProtocol) -> None:
    result = assess_bolus(proto, _obs((0, 3.0), (2, 1.5), (4, 1.0), (9, 1.5)))
    assert result.still_effective_at_last_observation
    assert result.last_response_h == 9


def test_stroke_criterion_accepts_penn_spasm_score(proto: ScreeningProtocol) -> None:
    obs = [
        Observation(0, mas=3.0, psfs=3.0),
        Observation(2, mas=2.5, psfs=1.0),
        Observation(6, mas=2.0, psfs=2.0),
    ]
    stroke = assess_bolus(proto, obs, criterion="stroke_ashworth_or_penn")
    assert stroke.outcome == "responder"
    assert stroke.onset_h == 2
    cp = assess_bolus(proto, obs)
    assert cp.onset_h == 6


def test_few_early_measurements_add_a_monitoring_note(proto: ScreeningProtocol) -> None:
    result = assess_bolus(proto, _obs((0, 3.0), (6, 1.5)))
    assert [r.rule for r in result.reasons] == ["responder", "monitoring"]
    assert "[C18]" in result.reasons[1].source


def test_bad_observations(proto: ScreeningProtocol) -> None:
    with pytest.raises(InvalidValue, match="baseline"):
        assess_bolus(proto, _obs((1, 3.0), (4, 2.0)))
    with pytest.raises(InvalidValue, match="mas"):
        assess_bolus(proto, _obs((0, 6.0), (4, 2.0)))
    with pytest.raises(InvalidValue, match="criterion"):
        assess_bolus(proto, _obs((0, 3.0), (4, 2.0)), criterion="vibes")
    with pytest.raises(InvalidValue, match="observation"):
        Observation(1.0)
    with pytest.raises(InvalidValue, match="psfs"):
        Observation(1.0, psfs=-1.0)


def test_protocol_numbers_carry_sources(proto: ScreeningProtocol) -> None:
    assert [d.value for d in proto.sequence(False)] == [50.0, 75.0, 100.0]
    assert proto.min_interval_h.value == 24.0
    assert (proto.observation_min_h.value, proto.observation_max_h.value) == (4.0, 8.0)
    assert proto.criterion().min_drop["mas"].value == 1.0
    assert all("[C" in d.source for d in proto.sequence(True))
