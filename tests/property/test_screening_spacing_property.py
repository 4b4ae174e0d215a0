"""Properties of the screening planner: 24 h spacing and the order of doses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.screening import (
    GivenBolus,
    check_next_bolus,
    parse_screening_protocol,
    plan_next_step,
)
from itb.domain.errors import InvalidValue

PROTO = parse_screening_protocol(load_data_table("screening"))
GAP_H = PROTO.min_interval_h.value

gaps = st.floats(min_value=GAP_H, max_value=24.0 * 14, allow_nan=False)


@given(
    reduced=st.booleans(),
    gaps_h=st.lists(gaps, min_size=0, max_size=3),
    early_by_h=st.floats(min_value=1e-6, max_value=GAP_H, allow_nan=False),
)
def test_a_dose_earlier_than_the_interval_is_always_refused(
    reduced: bool, gaps_h: list[float], early_by_h: float
) -> None:
    doses = [d.value for d in PROTO.sequence(reduced)]
    gaps_h = gaps_h[: len(doses) - 1]
    history: list[GivenBolus] = []
    t = 0.0
    for i, gap in enumerate([0.0, *gaps_h]):
        t += gap
        history.append(GivenBolus(doses[i], t, "non_responder"))
    step = plan_next_step(PROTO, history, reduced_start=reduced)
    if len(history) == len(doses):
        assert step.kind == "not_a_candidate"
        return
    assert step.kind == "give_dose"
    assert step.earliest_at_h == pytest.approx(t + GAP_H)
    with pytest.raises(InvalidValue):
        check_next_bolus(
            PROTO, history, doses[len(history)], t + GAP_H - early_by_h, reduced_start=reduced
        )
    ok = check_next_bolus(PROTO, history, doses[len(history)], t + GAP_H, reduced_start=reduced)
    assert ok.dose_mcg == doses[len(history)]


@given(reduced=st.booleans(), responds_at=st.integers(min_value=0, max_value=3))
def test_planned_doses_only_rise_and_stop_at_a_response(reduced: bool, responds_at: int) -> None:
    doses = [d.value for d in PROTO.sequence(reduced)]
    history: list[GivenBolus] = []
    given_doses: list[float] = []
    t = 0.0
    while True:
        step = plan_next_step(PROTO, history, reduced_start=reduced)
        if step.kind != "give_dose":
            break
        assert step.dose_mcg is not None
        given_doses.append(step.dose_mcg)
        outcome = "responder" if len(history) == responds_at else "non_responder"
        history.append(GivenBolus(step.dose_mcg, t, outcome))
        t += GAP_H
    assert given_doses == sorted(given_doses)
    assert given_doses == doses[: len(given_doses)]
    if responds_at < len(doses):
        assert step.kind == "responder"
    else:
        assert step.kind == "not_a_candidate"
        assert given_doses[-1] == max(doses)
