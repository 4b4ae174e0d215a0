"""Candidacy rules at and around their boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.candidacy import (
    CandidacyRecord,
    CandidacyRules,
    Verdict,
    assess_candidacy,
    parse_candidacy_rules,
)
from itb.domain.errors import InvalidValue

ON = date(2026, 6, 1)


@pytest.fixture(scope="module")
def rules() -> CandidacyRules:
    return parse_candidacy_rules(load_data_table("candidacy"))


def _record(**changes: object) -> CandidacyRecord:
    base = CandidacyRecord(
        age_years=30.0,
        origin="spinal",
        cause="spinal_cord_injury",
        oral_baclofen="unresponsive",
        hypersensitivity_to_baclofen=False,
        body_size_sufficient=True,
        implant_depth_cm=1.5,
        spinal_anomalies=False,
        active_infection=False,
        can_attend_follow_up=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _rules_fired(rules: CandidacyRules, record: CandidacyRecord) -> set[str]:
    return {r.rule for r in assess_candidacy(record, rules, assessed_on=ON).reasons}


def test_clean_record_is_a_candidate_for_screening_only(rules: CandidacyRules) -> None:
    result = assess_candidacy(_record(), rules, assessed_on=ON)
    assert result.verdict is Verdict.CANDIDATE
    assert [r.rule for r in result.reasons] == ["screening_required"]
    assert result.reasons[0].source.startswith("[C4][C5]")


def test_data_thresholds_carry_their_sources(rules: CandidacyRules) -> None:
    assert rules.min_age_years.value == 4.0
    assert rules.tbi_wait_days.value == 365.0
    assert rules.max_implant_depth_cm.value == 2.5
    for info in rules.rules.values():
        assert "[C" in info.source


@pytest.mark.parametrize(
    ("age", "verdict"),
    [(3.99, Verdict.NOT_CANDIDATE), (4.0, Verdict.CANDIDATE), (4.01, Verdict.CANDIDATE)],
)
def test_age_boundary(rules: CandidacyRules, age: float, verdict: Verdict) -> None:
    result = assess_candidacy(_record(age_years=age), rules, assessed_on=ON)
    assert result.verdict is verdict
    assert ("min_age" in {r.rule for r in result.reasons}) == (verdict is Verdict.NOT_CANDIDATE)


@pytest.mark.parametrize(("days", "blocked"), [(0, True), (364, True), (365, False), (366, False)])
def test_tbi_wait_boundary(rules: CandidacyRules, days: int, blocked: bool) -> None:
    record = _record(
        origin="cerebral",
        cause="traumatic_brain_injury",
        brain_injury_date=ON - timedelta(days=days),
    )
    result = assess_candidacy(record, rules, assessed_on=ON)
    assert (result.verdict is Verdict.NOT_CANDIDATE) == blocked
    if blocked:
        assert result.reassess_on_or_after == ON + timedelta(days=365 - days)
        assert result.reasons[0].rule == "tbi_wait"
    else:
        assert result.reassess_on_or_after is None


def test_tbi_without_date_needs_review(rules: CandidacyRules) -> None:
    record = _record(origin="cerebral", cause="traumatic_brain_injury")
    result = assess_candidacy(record, rules, assessed_on=ON)
    assert result.verdict is Verdict.NEEDS_REVIEW
    assert result.reasons[0].rule == "tbi_date_unknown"


def test_tbi_date_in_the_future_is_refused(rules: CandidacyRules) -> None:
    record = _record(
        origin="cerebral", cause="traumatic_brain_injury", brain_injury_date=ON + timedelta(days=1)
    )
    with pytest.raises(InvalidValue, match="brain_injury_date"):
        assess_candidacy(record, rules, assessed_on=ON)


def test_tbi_must_be_cerebral_origin() -> None:
    with pytest.raises(InvalidValue, match="origin"):
        _record(origin="spinal", cause="traumatic_brain_injury")


@pytest.mark.parametrize(
    ("depth", "verdict"),
    [(2.5, Verdict.CANDIDATE), (2.51, Verdict.NOT_CANDIDATE), (0.0, Verdict.CANDIDATE)],
)
def test_implant_depth_boundary(rules: CandidacyRules, depth: float, verdict: Verdict) -> None:
    assert (
        assess_candidacy(_record(implant_depth_cm=depth), rules, assessed_on=ON).verdict is verdict
    )


@pytest.mark.parametrize(
    ("oral", "verdict"),
    [
        ("unresponsive", Verdict.CANDIDATE),
        ("intolerable_side_effects", Verdict.CANDIDATE),
        ("responsive", Verdict.NOT_CANDIDATE),
        ("not_tried", Verdict.NOT_CANDIDATE),
        ("unknown", Verdict.NEEDS_REVIEW),
    ],
)
def test_spinal_origin_oral_baclofen(rules: CandidacyRules, oral: str, verdict: Verdict) -> None:
    assert assess_candidacy(_record(oral_baclofen=oral), rules, assessed_on=ON).verdict is verdict


@pytest.mark.parametrize(
    ("oral", "verdict", "rule"),
    [
        ("responsive", Verdict.NEEDS_REVIEW, "oral_baclofen_cerebral"),
        ("not_tried", Verdict.CANDIDATE, "oral_baclofen_not_tried_cerebral"),
        ("unresponsive", Verdict.CANDIDATE, "screening_required"),
    ],
)
def test_cerebral_origin_oral_baclofen(
    rules: CandidacyRules, oral: str, verdict: Verdict, rule: str
) -> None:
    record = _record(origin="cerebral", cause="cerebral_palsy", oral_baclofen=oral)
    result = assess_candidacy(record, rules, assessed_on=ON)
    assert result.verdict is verdict
    assert rule in {r.rule for r in result.reasons}


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"hypersensitivity_to_baclofen": True}, "hypersensitivity"),
        ({"body_size_sufficient": False}, "body_size"),
        ({"spinal_anomalies": True}, "spinal_anomalies"),
        ({"active_infection": True}, "active_infection"),
    ],
)
def test_contraindications_refuse(
    rules: CandidacyRules, changes: dict[str, object], rule: str
) -> None:
    result = assess_candidacy(_record(**changes), rules, assessed_on=ON)
    assert result.verdict is Verdict.NOT_CANDIDATE
    assert result.reasons[0].rule == rule
    assert result.reasons[0].source


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"active_issues": ("ms_exacerbation",)}, "active_issues"),
        ({"active_issues": ("urinary_tract_infection", "non_healing_wound")}, "active_issues"),
        ({"relative_contraindications": ("unrealistic_goals",)}, "relative_contraindications"),
        ({"can_attend_follow_up": False}, "follow_up"),
        ({"body_size_sufficient": None}, "body_size_unknown"),
        ({"implant_depth_cm": None}, "implant_depth_unknown"),
    ],
)
def test_review_rules(rules: CandidacyRules, changes: dict[str, object], rule: str) -> None:
    result = assess_candidacy(_record(**changes), rules, assessed_on=ON)
    assert result.verdict is Verdict.NEEDS_REVIEW
    assert result.reasons[0].rule == rule


def test_not_candidate_wins_over_review_and_all_reasons_are_kept(rules: CandidacyRules) -> None:
    record = _record(age_years=3.0, active_issues=("ms_exacerbation",), implant_depth_cm=3.0)
    result = assess_candidacy(record, rules, assessed_on=ON)
    assert result.verdict is Verdict.NOT_CANDIDATE
    assert [r.rule for r in result.blocking] == ["min_age", "implant_depth", "active_issues"]


def test_risk_groups_and_ms_are_notes_not_blocks(rules: CandidacyRules) -> None:
    record = _record(
        cause="multiple_sclerosis",
        risk_groups=("communication_difficulties", "previous_withdrawal"),
    )
    result = assess_candidacy(record, rules, assessed_on=ON)
    assert result.verdict is Verdict.CANDIDATE
    fired = [r.rule for r in result.reasons]
    assert fired.count("risk_groups") == 2
    assert "ms_sensitivity" in fired
    ms = next(r for r in result.reasons if r.rule == "ms_sensitivity")
    assert ms.status == "assumed"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"age_years": -1.0}, "age_years"),
        ({"origin": "peripheral"}, "origin"),
        ({"cause": "flu"}, "cause"),
        ({"oral_baclofen": "maybe"}, "oral_baclofen"),
        ({"implant_depth_cm": -0.1}, "implant_depth_cm"),
        ({"active_issues": ("cold",)}, "active_issues"),
        ({"risk_groups": ("smoker",)}, "risk_groups"),
        # one story: the cause, its origin and the risk flags agree
        ({"cause": "multiple_sclerosis", "risk_groups": ("sci_t6_or_above",)}, "risk_groups"),
        ({"cause": "cerebral_palsy", "origin": "spinal"}, "origin"),
        ({"cause": "stroke", "origin": "spinal"}, "origin"),
        ({"cause": "multiple_sclerosis", "origin": "cerebral"}, "origin"),
        ({"relative_contraindications": ("x",)}, "relative_contraindications"),
    ],
)
def test_bad_record_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        _record(**changes)
    assert info.value.field == field
    assert "allowed:" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_rule_in_data_is_refused() -> None:
    table = load_data_table("candidacy")
    del table["rules"]["min_age"]
    with pytest.raises(InvalidValue, match=r"candidacy\.rules\.min_age"):
        parse_candidacy_rules(table)
