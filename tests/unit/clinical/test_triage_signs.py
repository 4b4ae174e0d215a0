"""Triage: each urgency level, the expert-panel combinations, vocabulary and sources."""

from __future__ import annotations

import re

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.triage import TriageGuide, Urgency, parse_triage_guide, triage
from itb.domain.errors import InvalidValue


@pytest.fixture(scope="module")
def guide() -> TriageGuide:
    return parse_triage_guide(load_data_table("triage"))


@pytest.mark.parametrize(
    ("signs", "urgency"),
    [
        (["nausea"], Urgency.NEXT_VISIT),
        (["headache"], Urgency.NEXT_VISIT),
        (["constipation"], Urgency.NEXT_VISIT),
        (["itching"], Urgency.CALL_TODAY),
        (["tingling"], Urgency.CALL_TODAY),
        (["return of spasticity"], Urgency.CALL_TODAY),
        (["fever"], Urgency.CALL_TODAY),
        (["drowsiness"], Urgency.CALL_TODAY),
        (["weak floppy limbs"], Urgency.CALL_TODAY),
        (["wound redness or drainage"], Urgency.CALL_TODAY),
        (["pump alarm single tone"], Urgency.CALL_TODAY),
        (["pump-alarm-two-tone"], Urgency.EMERGENCY),
        (["slow breathing"], Urgency.EMERGENCY),
        (["seizure"], Urgency.EMERGENCY),
        (["confusion"], Urgency.EMERGENCY),
        (["headache with stiff neck"], Urgency.EMERGENCY),
    ],
)
def test_single_sign_urgency(guide: TriageGuide, signs: list[str], urgency: Urgency) -> None:
    assert triage(guide, signs).urgency is urgency


def test_expert_panel_hypotonia_with_somnolence_is_an_emergency(guide: TriageGuide) -> None:
    alone = [triage(guide, [s]).urgency for s in ("weak_floppy_limbs", "drowsiness")]
    assert alone == [Urgency.CALL_TODAY, Urgency.CALL_TODAY]
    result = triage(guide, ["weak_floppy_limbs", "drowsiness"])
    assert result.urgency is Urgency.EMERGENCY
    combo = next(r for r in result.reasons if r.rule == "combination:hypotonia_with_somnolence")
    assert "[C20]" in combo.source
    assert combo.status == "confirmed"
    assert [c.cause for c in result.causes] == ["overdose"]


@pytest.mark.parametrize(
    "autonomic", ["fever", "fast_heartbeat", "low_blood_pressure", "blood_pressure_swings"]
)
def test_expert_panel_hypertonia_with_autonomic_instability(
    guide: TriageGuide, autonomic: str
) -> None:
    result = triage(guide, ["rapidly_worsening_stiffness", autonomic])
    assert result.urgency is Urgency.EMERGENCY
    assert "combination:hypertonia_with_autonomic_instability" in {r.rule for r in result.reasons}
    assert result.causes[0].cause == "underdose_withdrawal"


def test_two_withdrawal_signs_are_an_emergency_marked_assumed(guide: TriageGuide) -> None:
    result = triage(guide, ["itching", "tingling"])
    assert result.urgency is Urgency.EMERGENCY
    first = result.reasons[0]
    assert first.rule == "combination:withdrawal_signs_together"
    assert first.status == "assumed"
    assert result.actions[0].startswith("Call your emergency number")


def test_single_tone_alarm_with_withdrawal_sign(guide: TriageGuide) -> None:
    assert triage(guide, ["single_tone", "itching"]).urgency is Urgency.EMERGENCY


def test_call_today_actions_and_side_effect_cause(guide: TriageGuide) -> None:
    result = triage(guide, ["dizziness"])
    assert result.urgency is Urgency.CALL_TODAY
    assert {c.cause for c in result.causes} == {"overdose", "underdose_withdrawal", "side_effect"}
    assert result.actions[0].startswith("Call your ITB clinic today")


def test_emergency_is_never_put_down_to_a_side_effect(guide: TriageGuide) -> None:
    result = triage(guide, ["dizziness", "slow_breathing"])
    assert result.urgency is Urgency.EMERGENCY
    assert "side_effect" not in {c.cause for c in result.causes}


def test_aliases_and_duplicates_collapse(guide: TriageGuide) -> None:
    result = triage(guide, ["Itching", "pruritus", "itching_without_rash"])
    assert result.signs == ("itching_without_rash",)
    assert len([r for r in result.reasons if r.rule.startswith("sign:")]) == 1


def test_every_reason_has_a_source_and_every_sign_is_in_the_vocabulary(guide: TriageGuide) -> None:
    result = triage(guide, list(guide.signs))
    assert result.urgency is Urgency.EMERGENCY
    assert all(r.source for r in result.reasons)
    assert {r.rule for r in result.reasons} >= {f"sign:{s}" for s in guide.signs}
    for sign in guide.signs.values():
        assert re.search(r"\[[CDF][0-9]+[a-z]?\]", sign.source), sign.source


def test_required_vocabulary_is_present(guide: TriageGuide) -> None:
    required = {
        "itching_without_rash",
        "return_of_spasticity",
        "tingling",
        "fever",
        "confusion",
        "low_blood_pressure",
        "drowsiness",
        "weak_floppy_limbs",
        "slow_breathing",
        "seizure",
        "headache_with_stiff_neck",
        "wound_redness_or_drainage",
        "pump_alarm_single_tone",
        "pump_alarm_two_tone",
        "nausea",
        "dizziness",
    }
    assert required <= set(guide.signs)


@pytest.mark.parametrize("bad", [["sneezing"], []])
def test_unknown_or_no_sign_is_refused(guide: TriageGuide, bad: list[str]) -> None:
    with pytest.raises(InvalidValue) as info:
        triage(guide, bad)
    assert info.value.field == "sign"
    assert "\n" not in str(info.value)


def test_data_errors_are_caught() -> None:
    table = load_data_table("triage")
    table["signs"]["nausea"]["causes"] = ["bad_luck"]
    with pytest.raises(InvalidValue, match=r"nausea\.causes"):
        parse_triage_guide(table)
    table = load_data_table("triage")
    table["combinations"]["hypotonia_with_somnolence"]["requires"] = ["sneezing"]
    with pytest.raises(InvalidValue, match="hypotonia_with_somnolence"):
        parse_triage_guide(table)
    table = load_data_table("triage")
    del table["urgencies"]["call_today"]
    with pytest.raises(InvalidValue, match="call_today"):
        parse_triage_guide(table)
