"""Triage knows the signs of the implanted system's complications (complications.toml).

A spinal fluid leak (headache on standing), a swelling without redness, skin breaking
down over the pump, a pump that moved or could not be refilled, new weakness or
numbness; the combinations that make them an emergency; and the rule that every sign a
complication names is a sign triage knows.
"""

from __future__ import annotations

import pytest

from itb import bootstrap
from itb.domain.clinical.complications import ComplicationKind
from itb.domain.clinical.triage import TriageGuide, Urgency, triage


@pytest.fixture(scope="module")
def guide() -> TriageGuide:
    return bootstrap.catalog().triage


def test_every_complication_sign_is_a_triage_sign(guide: TriageGuide) -> None:
    kinds = bootstrap.catalog().complications.kinds
    named = {s for kind in ComplicationKind for s in kinds[kind].signs}
    assert named, "no complication names a sign"
    assert named - set(guide.signs) == set()
    for sign in named:
        assert triage(guide, [sign]).signs == (sign,)


@pytest.mark.parametrize(
    ("sign", "urgency", "causes"),
    [
        ("headache_on_standing", Urgency.CALL_TODAY, {"csf_leak"}),
        ("swelling_without_redness", Urgency.CALL_TODAY, {"csf_leak", "haematoma"}),
        ("skin_thinning_over_pump", Urgency.CALL_TODAY, {"skin_erosion"}),
        ("pump_moved_or_refill_failed", Urgency.CALL_TODAY, {"pump_flip"}),
        ("new_weakness_or_numbness", Urgency.EMERGENCY, {"catheter_tip_or_nerve"}),
    ],
)
def test_each_complication_sign_alone(
    guide: TriageGuide, sign: str, urgency: Urgency, causes: set[str]
) -> None:
    result = triage(guide, [sign])
    assert result.urgency is urgency
    assert {c.cause for c in result.causes} == causes
    (reason,) = result.reasons
    assert reason.rule == f"sign:{sign}"
    # No source states these urgencies: each is marked assumed, with a note saying why.
    assert reason.status == "assumed"
    assert guide.signs[sign].note
    assert result.actions[0] == guide.urgencies[urgency].actions[0]
    for c in result.causes:
        assert set(c.actions) <= set(result.actions)


@pytest.mark.parametrize(
    ("said", "sign"),
    [
        ("headache on standing", "headache_on_standing"),
        ("Headache when sitting up", "headache_on_standing"),
        ("positional headache", "headache_on_standing"),
        ("spinal-headache", "headache_on_standing"),
        ("lump", "swelling_without_redness"),
        ("fluid under the skin", "swelling_without_redness"),
        ("bruising", "swelling_without_redness"),
        ("pump showing through the skin", "skin_thinning_over_pump"),
        ("skin breakdown", "skin_thinning_over_pump"),
        ("pump flipped", "pump_moved_or_refill_failed"),
        ("refill failed", "pump_moved_or_refill_failed"),
        ("cannot feel the port", "pump_moved_or_refill_failed"),
        ("new numbness", "new_weakness_or_numbness"),
        ("leg weakness", "new_weakness_or_numbness"),
        ("loss of bladder control", "new_weakness_or_numbness"),
    ],
)
def test_plain_words_map_to_the_sign(guide: TriageGuide, said: str, sign: str) -> None:
    assert triage(guide, [said]).signs == (sign,)


@pytest.mark.parametrize("said", ["headache", "Headache", " HEADACHE "])
def test_plain_headache_is_still_the_side_effect(guide: TriageGuide, said: str) -> None:
    result = triage(guide, [said])
    assert result.signs == ("headache",)
    assert result.urgency is Urgency.NEXT_VISIT
    assert [c.cause for c in result.causes] == ["side_effect"]


def test_headache_on_standing_is_not_the_plain_headache(guide: TriageGuide) -> None:
    result = triage(guide, ["headache", "headache on standing"])
    assert result.signs == ("headache", "headache_on_standing")
    assert result.urgency is Urgency.CALL_TODAY
    assert {c.cause for c in result.causes} == {"side_effect", "csf_leak"}
    assert "standing" in guide.signs["headache"].label


@pytest.mark.parametrize(
    ("signs", "combination", "cause"),
    [
        (["fever", "headache on standing"], "fever_with_headache_on_standing", "infection_meningitis"),
        (["refill failed", "return of spasticity"], "pump_moved_with_withdrawal_sign", "underdose_withdrawal"),
        (["pump flipped", "itching"], "pump_moved_with_withdrawal_sign", "underdose_withdrawal"),
        (["pump moved", "tingling"], "pump_moved_with_withdrawal_sign", "underdose_withdrawal"),
        (["skin breakdown", "fever"], "skin_breakdown_with_fever", "infection_meningitis"),
    ],
)  # fmt: skip
def test_combinations_make_it_an_emergency(
    guide: TriageGuide, signs: list[str], combination: str, cause: str
) -> None:
    alone = [triage(guide, [s]).urgency for s in signs]
    assert Urgency.EMERGENCY not in alone
    result = triage(guide, signs)
    assert result.urgency is Urgency.EMERGENCY
    first = result.reasons[0]
    assert first.rule == f"combination:{combination}"
    assert first.status == "assumed"
    assert cause in {c.cause for c in result.causes}
    assert result.actions[0].startswith("Call your emergency number")


def test_refill_failed_warns_that_the_pump_may_run_empty(guide: TriageGuide) -> None:
    actions = " ".join(triage(guide, ["refill failed"]).actions)
    assert "run empty" in actions
    assert "emergency" in actions


def test_skin_breaking_down_says_do_not_touch_and_cover(guide: TriageGuide) -> None:
    actions = " ".join(triage(guide, ["skin breakdown"]).actions).lower()
    assert "do not touch" in actions
    assert "dressing" in actions


def test_leak_says_lie_flat_and_drink(guide: TriageGuide) -> None:
    actions = " ".join(triage(guide, ["spinal headache"]).actions).lower()
    assert "lie flat" in actions
    assert "drink" in actions


@pytest.mark.parametrize(
    "sign",
    [
        "headache_on_standing",
        "swelling_without_redness",
        "skin_thinning_over_pump",
        "pump_moved_or_refill_failed",
        "new_weakness_or_numbness",
    ],
)
def test_adding_a_complication_sign_never_lowers_the_urgency(guide: TriageGuide, sign: str) -> None:
    for other in guide.signs:
        before = triage(guide, [other]).urgency
        assert triage(guide, [other, sign]).urgency.rank >= before.rank
