"""Programming safety checks: each rule at and around its boundary; the checked commit."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.safety import (
    ActionKind,
    BlockedBySafetyCheck,
    Finding,
    OverrideReasonRequired,
    SafetyChecks,
    VerificationRequired,
    check_change,
    commit_checked,
    parse_safety_rules,
    review_session,
    stage_checked,
)
from itb.domain.errors import InvalidValue, ITBError
from itb.domain.pump import (
    Bolus,
    CatheterSpec,
    Continuous,
    Flex,
    FlexStep,
    PatientBolusSettings,
    Prescription,
    ProgrammingSession,
    Pump,
    PumpPreset,
    Stopped,
    StopReason,
    parse_catheters,
    parse_presets,
)
from itb.domain.pump.programs import Program

PRESETS: dict[str, PumpPreset] = parse_presets(load_data_table("pumps"))
_LABEL, _PER_CM, _ = parse_catheters(load_data_table("catheters"))["prometra_catheter"]
CATHETER = CatheterSpec("prometra_catheter", _LABEL, 60.0, _PER_CM)
RULES = parse_safety_rules(load_data_table("safety_checks"))
LIBRARY = __import__("itb.bootstrap").bootstrap.catalog().library


def make_pump(dose: float = 100.0, conc: float = 500.0) -> Pump:
    pump = Pump(PRESETS["synchromed_ii_40"], CATHETER)
    pump.fill(0.0, 40.0, conc)
    session = ProgrammingSession(pump, 0.0)
    session.stage_prescription(Prescription(Continuous(dose), conc), "start")
    session.commit(0.0)
    pump.advance_to(24.0)
    return pump


def checks(population: str = "adult_spinal", **kw: object) -> SafetyChecks:
    return SafetyChecks(RULES, LIBRARY, population, **kw)  # type: ignore[arg-type]


def rx(
    program: Program, conc: float = 500.0, pb: PatientBolusSettings | None = None
) -> Prescription:
    return Prescription(program, conc, pb)


def codes(findings: tuple[Finding, ...] | list[Finding]) -> set[str]:
    return {f.code for f in findings}


def find(findings: tuple[Finding, ...] | list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


# --------------------------------------------------------- per-hour vs per-day


@pytest.mark.parametrize(
    ("ratio", "flagged"),
    [
        (24.0, True),
        (23.0, True),  # documented: within ±10 % of 24x is "about 24x"
        (21.6, True),
        (21.5, False),
        (26.4, True),
        (26.5, False),
    ],
)
def test_a_dose_about_24x_the_current_one_is_a_unit_mixup(ratio: float, flagged: bool) -> None:
    pump = make_pump(50.0)
    found = check_change(pump, checks(), prescription=rx(Continuous(50.0 * ratio)))
    assert bool(find(found, "unit_mixup")) == flagged
    assert "large_dose_change" in codes(found)  # blocked as a large change either way
    for f in find(found, "unit_mixup"):
        assert f.severity == "block"
        assert "dose_mcg_per_day" in f.message
        assert f.source


def test_a_dose_1_24th_of_the_current_one_is_a_unit_mixup() -> None:
    found = check_change(make_pump(1200.0), checks(), prescription=rx(Continuous(50.0)))
    (f,) = find(found, "unit_mixup")
    assert "per-day value entered as per-hour" in f.message


def test_a_flex_rate_equal_to_the_intended_daily_dose_is_a_unit_mixup() -> None:
    # ISMP [D56]: a step meant as 60 mcg/day entered as 60 mcg/h.
    pump = make_pump(240.0)
    flex = Flex.every_day((FlexStep(0.0, 10.0), FlexStep(7.0, 60.0), FlexStep(8.0, 10.0)))
    found = check_change(pump, checks(intended_dose_mcg_per_day=60.0), prescription=rx(flex))
    (f,) = find(found, "unit_mixup")
    assert "flex mon 07:00 rate_mcg_per_h = 60" in f.message
    assert "intended daily dose 60" in f.message
    assert "intended_dose_mismatch" in codes(found)


@pytest.mark.parametrize(("step_rate", "flagged"), [(240.0, True), (230.0, True), (200.0, False)])
def test_a_flex_step_about_24x_the_current_hourly_rate_is_flagged(
    step_rate: float, flagged: bool
) -> None:
    pump = make_pump(240.0)  # 10 mcg/h
    flex = Flex.every_day((FlexStep(0.0, 10.0), FlexStep(7.0, step_rate), FlexStep(7.5, 10.0)))
    found = check_change(pump, checks(), prescription=rx(flex))
    assert bool(find(found, "unit_mixup")) == flagged


@pytest.mark.parametrize(("mean", "flagged"), [(252.0, False), (253.0, True), (228.0, False)])
def test_a_program_not_delivering_the_intended_dose_is_blocked(mean: float, flagged: bool) -> None:
    pump = make_pump(240.0)
    found = check_change(
        pump, checks(intended_dose_mcg_per_day=240.0), prescription=rx(Continuous(mean))
    )
    assert bool(find(found, "intended_dose_mismatch")) == flagged


# ------------------------------------------------------------- concentration


def test_a_concentration_other_than_the_drug_in_the_pump_is_blocked_once() -> None:
    pump = make_pump(100.0)
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Continuous(100.0), conc=1000.0))
    (f,) = find(review.findings, "concentration_mismatch")
    assert f.severity == "block"
    assert "allowed: 500" in f.message
    assert session.staged_prescription is None  # the pump refused it: nothing staged
    assert review.blocked


def test_a_refill_with_a_new_drug_checks_against_that_drug() -> None:
    pump = make_pump(100.0)
    c = checks(held_concentration_mcg_per_ml=1000.0, action=ActionKind.REFILL_RESERVOIR)
    found = check_change(pump, c, prescription=rx(Continuous(100.0), conc=1000.0))
    assert "concentration_mismatch" not in codes(found)


# ----------------------------------------------------------------- large change


@pytest.mark.parametrize(
    ("population", "new", "blocked"),
    [
        ("adult_spinal", 140.0, False),
        ("adult_spinal", 141.0, True),
        ("adult_cerebral", 120.0, False),
        ("adult_cerebral", 121.0, True),
        ("child", 120.0, False),
        ("child", 121.0, True),
    ],
)
def test_increase_limits_by_origin(population: str, new: float, blocked: bool) -> None:
    found = check_change(make_pump(100.0), checks(population), prescription=rx(Continuous(new)))
    assert bool(find(found, "large_dose_change")) == blocked
    # the library's identical hard limit on the increase is not reported twice
    assert not [f for f in find(found, "library_hard_limit") if f.field == "dose_increase_pct"]


def test_large_change_is_checked_day_by_day_for_flex() -> None:
    pump = make_pump(240.0)
    week = [(FlexStep(0.0, 10.0),)] * 6 + [(FlexStep(0.0, 15.0),)]  # Sunday +50 %
    found = check_change(pump, checks(), prescription=rx(Flex(days=tuple(week))))
    (f,) = find(found, "large_dose_change")
    assert "(sun)" in f.message


def test_unknown_population_is_refused() -> None:
    with pytest.raises(InvalidValue, match="population"):
        checks("adult_martian")


# ------------------------------------------------------------- patient boluses


PB = PatientBolusSettings(dose_mcg=50.0, duration_h=0.5, lockout_h=6.0, max_per_day=4)


@pytest.mark.parametrize(
    ("dose", "code"),
    [
        (800.0, None),  # 800 + 200 = 1000: at the soft limit (inclusive)
        (801.0, "patient_bolus_over_soft_limit"),
        (1800.0, None),  # 2000: at the hard limit; soft passed
        (1801.0, "patient_bolus_over_hard_limit"),
    ],
)
def test_patient_bolus_daily_maximum_against_the_library(dose: float, code: str | None) -> None:
    assert PB.max_extra_mcg_per_day == 200.0
    found = check_change(make_pump(dose), checks(), prescription=rx(Continuous(dose), pb=PB))
    pb_codes = codes(found) & {"patient_bolus_over_soft_limit", "patient_bolus_over_hard_limit"}
    if dose == 1800.0:
        assert pb_codes == {"patient_bolus_over_soft_limit"}
    else:
        assert pb_codes == ({code} if code else set())
    if code == "patient_bolus_over_hard_limit":
        assert find(found, code)[0].severity == "block"
    if code == "patient_bolus_over_soft_limit":
        (f,) = find(found, code)
        assert f.severity == "warn"
        assert f.needs_override_reason


def test_patient_bolus_soft_limit_passed_with_a_reason_is_recorded() -> None:
    found = check_change(
        make_pump(900.0),
        checks(),
        prescription=rx(Continuous(900.0), pb=PB),
        override_reason="severe evening spasms",
    )
    assert "patient_bolus_over_soft_limit" not in codes(found)
    assert any("severe evening spasms" in f.message for f in find(found, "library_soft_override"))


# ---------------------------------------------------------------- access port


def test_a_refill_aimed_at_the_catheter_access_port_is_blocked() -> None:
    found = check_change(make_pump(), checks(action=ActionKind.REFILL_ACCESS_PORT))
    (f,) = find(found, "access_port_refill")
    assert f.severity == "block"
    assert "[D57]" in f.source


# -------------------------------------------------------------- stopped pump


def test_a_session_staging_stopped_mode_needs_a_reason_and_verification() -> None:
    pump = make_pump()
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Stopped()))
    (f,) = find(review.findings, "stopped_mode")
    assert f.severity == "warn"
    assert f.needs_override_reason
    with pytest.raises(OverrideReasonRequired, match="mode = stopped"):
        commit_checked(session, pump.t_h, checks())
    with pytest.raises(VerificationRequired):
        commit_checked(session, pump.t_h, checks(), override_reason="explant on Monday")
    assert pump.running  # nothing was written
    session.verify("Nurse B")
    done = commit_checked(session, pump.t_h, checks(), override_reason="explant on Monday")
    assert not pump.running
    assert done.override_reason == "explant on Monday"
    assert any(e.kind == "safety_override" for e in pump.log)


def test_an_update_begun_and_not_completed_is_blocked() -> None:
    pump = make_pump()
    session = ProgrammingSession(pump, pump.t_h)
    session.stage_prescription(rx(Continuous(110.0)), "up")
    session.begin_update(pump.t_h)
    review = review_session(session, checks())
    (f,) = find(review.findings, "update_incomplete")
    assert f.severity == "block"
    with pytest.raises(BlockedBySafetyCheck, match="update begun and not completed"):
        commit_checked(session, pump.t_h, checks())


def test_a_pump_left_stopped_by_an_unfinished_session_is_restarted_by_a_commit() -> None:
    pump = make_pump()
    first = ProgrammingSession(pump, pump.t_h)
    first.stage_prescription(rx(Continuous(110.0)), "up")
    first.begin_update(pump.t_h)
    first.abandon(pump.t_h)
    assert StopReason.UNFINISHED_SESSION in pump.stop_reasons
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Continuous(110.0)))
    assert find(review.findings, "restarts_pump")[0].severity == "info"
    commit_checked(session, pump.t_h, checks())
    assert pump.running


# ------------------------------------------------------------- drug library


def test_library_soft_limit_needs_a_reason_then_verification() -> None:
    pump = make_pump(1000.0)
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Continuous(1100.0)))
    (f,) = find(review.findings, "library_soft_limit")
    assert f.needs_override_reason
    assert "dose_mcg_per_day" in f.message
    assert not review.blocked
    with pytest.raises(OverrideReasonRequired):
        commit_checked(session, pump.t_h, checks())
    with pytest.raises(VerificationRequired):
        commit_checked(session, pump.t_h, checks(), override_reason="documented response")
    session.verify("Dr B")
    done = commit_checked(session, pump.t_h, checks(), override_reason="documented response")
    assert done.verified_by == "Dr B"
    assert pump.prescription.program.daily_dose_mcg() == 1100.0


def test_library_hard_limit_blocks_whatever_the_reason() -> None:
    pump = make_pump(1900.0)
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Continuous(2100.0)))
    assert find(review.findings, "library_hard_limit")[0].severity == "block"
    session.verify("Dr B")
    with pytest.raises(BlockedBySafetyCheck, match="2000"):
        commit_checked(session, pump.t_h, checks(), override_reason="any")
    assert pump.prescription.program.daily_dose_mcg() == 1900.0


@pytest.mark.parametrize(("bolus_mcg", "code"), [(50.0, None), (60.0, "library_soft_limit"),
                                                 (120.0, "library_hard_limit")])  # fmt: skip
def test_a_single_bolus_is_checked_against_the_library(bolus_mcg: float, code: str | None) -> None:
    pump = make_pump()
    found = check_change(pump, checks(), bolus=Bolus.single(bolus_mcg, 1.0, 500.0))
    lib = codes(found) & {"library_soft_limit", "library_hard_limit"}
    assert lib == ({code} if code else set())


def test_the_pump_refusing_a_rate_is_a_block_finding_not_an_exception() -> None:
    pump = make_pump(25.0)  # 0.05 mL/day; 20 mcg/day = 0.04 mL/day, below the pump's minimum
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Continuous(20.0)))
    (f,) = find(review.findings, "pump_refused")
    assert "dose_mcg_per_day = 20" in f.message
    assert "0.048 to 24 mL/day" in f.message
    assert review.blocked


# ------------------------------------------------------------- verification


@pytest.mark.parametrize(("new", "needed"), [(110.0, False), (119.0, False), (120.0, True),
                                             (80.0, True), (81.0, False)])  # fmt: skip
def test_dose_changes_of_20_percent_or_more_need_a_second_person(new: float, needed: bool) -> None:
    pump = make_pump(100.0)
    session = ProgrammingSession(pump, pump.t_h)
    review = stage_checked(session, checks(), prescription=rx(Continuous(new)))
    assert not review.blocked
    assert review.verification_required == needed
    if needed:
        with pytest.raises(VerificationRequired):
            commit_checked(session, pump.t_h, checks())
    else:
        commit_checked(session, pump.t_h, checks())
        assert pump.prescription.program.daily_dose_mcg() == new


def test_a_flex_program_always_needs_a_second_person() -> None:
    pump = make_pump(240.0)
    flex = Flex.every_day((FlexStep(0.0, 10.0), FlexStep(8.0, 10.5), FlexStep(20.0, 10.0)))
    review = stage_checked(ProgrammingSession(pump, pump.t_h), checks(), prescription=rx(flex))
    assert review.verification_required
    assert any(r.rule == "flex_program" for r in review.verification)


def test_review_rows_show_old_and_new_side_by_side() -> None:
    pump = make_pump(100.0)
    review = stage_checked(
        ProgrammingSession(pump, pump.t_h), checks(), prescription=rx(Continuous(110.0))
    )
    (row,) = review.rows
    assert "100" in row.old
    assert "110" in row.new


def test_refusals_are_itb_errors_with_one_line_messages() -> None:
    pump = make_pump(1900.0)
    session = ProgrammingSession(pump, pump.t_h)
    stage_checked(session, checks(), prescription=rx(Continuous(2100.0)))
    with pytest.raises(ITBError) as info:
        commit_checked(session, pump.t_h, checks())
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- data


def test_rules_file_has_every_rule_with_a_source() -> None:
    # the largest increase per adjustment has one home: the titration rules, via the library
    assert LIBRARY.limits("adult_spinal").increase_hard_max_pct.value == 40.0
    assert LIBRARY.limits("adult_cerebral").increase_hard_max_pct.value == 20.0
    assert LIBRARY.limits("child").increase_hard_max_pct.value == 20.0
    assert all(r.source for r in RULES.rules.values())


def test_a_malformed_rules_file_is_refused() -> None:
    table = copy.deepcopy(load_data_table("safety_checks"))
    table["rules"]["unit_mixup"]["outcome"] = "shrug"
    with pytest.raises(InvalidValue, match="unit_mixup"):
        parse_safety_rules(table)
    table = copy.deepcopy(load_data_table("safety_checks"))
    del table["thresholds"]["verify_dose_change_pct"]
    with pytest.raises(InvalidValue, match="verify_dose_change_pct"):
        parse_safety_rules(table)


# ------------------------------------------------------------------ property


@given(
    old=st.integers(min_value=1, max_value=9).map(lambda k: 100 * k),  # exact percentages
    pct=st.integers(min_value=-60, max_value=120),
    population=st.sampled_from(["adult_spinal", "adult_cerebral", "child"]),
)
def test_large_change_fires_exactly_above_the_population_limit(
    old: int, pct: int, population: str
) -> None:
    new = old * (100 + pct) / 100
    found = check_change(
        make_pump(float(old)), checks(population), prescription=rx(Continuous(new))
    )
    limit = LIBRARY.limits(population).increase_hard_max_pct.value
    assert bool(find(found, "large_dose_change")) == (pct > limit)
    # a block finding always carries a source and names what is allowed
    for f in found:
        assert f.source
        assert "allowed" in f.message or f.severity == "info"
