"""Property: adding a reported sign never lowers the triage urgency."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.triage import parse_triage_guide, triage

GUIDE = parse_triage_guide(load_data_table("triage"))
SIGNS = sorted(GUIDE.signs)


@given(
    base=st.lists(st.sampled_from(SIGNS), min_size=1, max_size=6),
    extra=st.sampled_from(SIGNS),
)
def test_adding_a_sign_never_lowers_urgency(base: list[str], extra: str) -> None:
    before = triage(GUIDE, base)
    after = triage(GUIDE, [*base, extra])
    assert after.urgency.rank >= before.urgency.rank


@given(st.lists(st.sampled_from(SIGNS), min_size=1, max_size=8))
def test_order_of_signs_does_not_change_urgency_or_causes(signs: list[str]) -> None:
    forward, backward = triage(GUIDE, signs), triage(GUIDE, list(reversed(signs)))
    assert forward.urgency is backward.urgency
    assert {c.cause for c in forward.causes} == {c.cause for c in backward.causes}


@given(st.lists(st.sampled_from(SIGNS), min_size=1, max_size=8))
def test_urgency_is_the_highest_reason(signs: list[str]) -> None:
    result = triage(GUIDE, signs)
    assert result.reasons[0].outcome == result.urgency.value
    assert all(r.source for r in result.reasons)
