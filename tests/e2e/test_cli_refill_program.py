"""``itb refill plan|check`` and ``itb program check`` through the real CLI."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.entrypoints.cli import main as cli_main
from itb.entrypoints.cli.main import app

runner = CliRunner()

SPEC = """
name = "refill e2e"
[pump]
preset = "synchromed_ii_20"
implanted_at = 2026-01-05T09:00:00
timezone = "Europe/London"
[catheter]
family = "ascenda_like"
implanted_length_cm = 60
[fill]
volume_ml = 20
concentration_mcg_per_ml = 500
[prescription]
mode = "continuous"
dose_mcg_per_day = 480
low_reservoir_alarm_ml = 2
[[events]]
kind = "refill"
day = 14
volume_ml = 20
concentration_mcg_per_ml = 500
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The console-script entry in-process (the ITBError -> exit 2 mapping included)."""
    old = sys.argv
    sys.argv = ["itb", *args]
    try:
        cli_main.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ refill plan


def test_refill_plan_json_has_the_planning_keys(spec_file: Path) -> None:
    result = runner.invoke(app, ["refill", "plan", str(spec_file), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in (
        "days_to_low_reservoir_alarm",
        "low_reservoir_alarm_date",
        "empty_date",
        "refill_by_date",
        "fill_volume_ml",
        "residual_at_refill_ml",
        "reasons",
        "bridge_bolus",
    ):
        assert key in data, key
    # 480 mcg/day at 500 mcg/mL = 0.96 mL/day; 20 mL down to the 2 mL alarm
    assert data["days_to_low_reservoir_alarm"] == pytest.approx(18.0 / 0.96, rel=1e-3)
    refill_by = date.fromisoformat(data["refill_by_date"])
    alarm = date.fromisoformat(data["low_reservoir_alarm_date"])
    assert (alarm - refill_by).days >= 5
    assert refill_by.weekday() < 5
    assert data["fill_volume_ml"] == 20.0
    assert data["bridge_bolus"] is None
    assert all(r["source"] for r in data["reasons"])


def test_refill_plan_at_a_date_applies_the_events_before_it(spec_file: Path) -> None:
    result = runner.invoke(app, ["refill", "plan", str(spec_file), "--at", "2026-01-25", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["events_applied"] == 1
    assert data["last_fill_at"].startswith("2026-01-19T09:00")  # the refill on day 14
    assert data["stability_limit_date"] == "2026-07-18"


def test_refill_plan_with_a_new_concentration_gives_the_bridge_bolus(spec_file: Path) -> None:
    result = runner.invoke(
        app, ["refill", "plan", str(spec_file), "--new-concentration", "1000", "--json"]
    )
    assert result.exit_code == 0, result.output
    bridge = json.loads(result.stdout)["bridge_bolus"]
    assert bridge["new_concentration_mcg_per_ml"] == 1000.0
    assert bridge["rate_ml_per_h"] * 24.0 * 500.0 == pytest.approx(480.0)


def test_refill_plan_holiday_and_margin_move_the_date(spec_file: Path) -> None:
    base = runner.invoke(app, ["refill", "plan", str(spec_file), "--json", "--margin-days", "7"])
    day = json.loads(base.stdout)["refill_by_date"]
    moved = runner.invoke(
        app,
        ["refill", "plan", str(spec_file), "--json", "--margin-days", "7", "--holiday", day],
    )
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["refill_by_date"] < day


def test_refill_plan_rich_output(spec_file: Path) -> None:
    result = runner.invoke(app, ["refill", "plan", str(spec_file)])
    assert result.exit_code == 0, result.output
    assert "REFILL BY" in result.stdout
    assert "Reasons" in result.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--at", "05/01/2026"], "--at"),
        (["--at", "2025-12-01"], "--at"),
        (["--holiday", "next friday"], "--holiday"),
        (["--margin-days", "-2"], "--margin-days"),
        (["--new-concentration", "-5"], "--new-concentration"),
        (["--new-concentration", "3000"], "--new-concentration"),
    ],
)
def test_refill_plan_bad_input_is_one_line_and_exit_2(
    spec_file: Path, args: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["refill", "plan", str(spec_file), *args], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert field in err


# ----------------------------------------------------------------- refill check


def test_refill_check_json_verdicts() -> None:
    ok = runner.invoke(
        app,
        ["refill", "check", "--expected-ml", "4", "--withdrawn-ml", "3.8", "--json"],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["verdict"] == "within tolerance"
    less = runner.invoke(
        app,
        [
            "refill",
            "check",
            "--expected-ml",
            "6",
            "--withdrawn-ml",
            "2",
            "--programmed-since-fill-ml",
            "14",
            "--json",
        ],
    )
    data = json.loads(less.stdout)
    assert data["verdict"] == "less withdrawn than expected"
    # allowed: 14.5 % of 14 mL programmed = 2.03 mL (refill.toml)
    assert data["allowed_ml"] == pytest.approx(0.145 * 14.0)
    assert "over-infusion" in data["advice"]
    assert data["tolerance"]["accuracy_band_pct"] == 14.5
    assert data["watch"] == ["overdose", "withdrawal"]


def test_refill_check_negative_volume_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(
        ["refill", "check", "--expected-ml", "-1", "--withdrawn-ml", "2"], capsys
    )
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "--expected-ml" in err
    code, _, err = run_main(
        [
            "refill",
            "check",
            "--expected-ml",
            "1",
            "--withdrawn-ml",
            "2",
            "--programmed-since-fill-ml",
            "-3",
        ],
        capsys,
    )
    assert code == 2
    assert "--programmed-since-fill-ml" in err


# ---------------------------------------------------------------- program check


def test_program_check_json_reports_findings_and_review(spec_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "program",
            "check",
            str(spec_file),
            "--dose-mcg-per-day",
            "480",
            "--flex-step",
            "00:00=20",
            "--flex-step",
            "07:00=480",
            "--flex-step",
            "08:00=20",
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output  # blocked: a check that failed
    data = json.loads(result.stdout)
    assert data["blocked"] is True
    assert data["verification_required"] is True
    codes = {f["code"] for f in data["findings"]}
    assert {"unit_mixup", "intended_dose_mismatch", "large_dose_change"} <= codes
    for f in data["findings"]:
        assert f["severity"] in ("block", "warn", "info")
        assert f["source"]
        assert "\n" not in f["message"]
    (row,) = data["review"]
    assert "480 mcg/day" in row["old"]
    assert "flex" in row["new"]
    assert data["population"] == "adult_spinal"


def test_program_check_small_change_is_clean(spec_file: Path) -> None:
    result = runner.invoke(
        app, ["program", "check", str(spec_file), "--dose-mcg-per-day", "520", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["findings"] == []
    assert data["blocked"] is False
    assert data["verification_required"] is False


@pytest.mark.parametrize(
    ("origin", "age", "dose", "blocked"),
    [
        ("spinal", "40", "672", False),  # +40 %
        ("spinal", "40", "677", True),  # +41 %
        ("cerebral", "40", "576", False),  # +20 %
        ("cerebral", "40", "581", True),  # +21 %
        ("spinal", "8", "581", True),  # a child: +20 % at most
    ],
)
def test_program_check_increase_limits_by_origin_and_age(
    spec_file: Path, origin: str, age: str, dose: str, blocked: bool
) -> None:
    result = runner.invoke(
        app,
        [
            "program",
            "check",
            str(spec_file),
            "--dose-mcg-per-day",
            dose,
            "--origin",
            origin,
            "--age-years",
            age,
            "--json",
        ],
    )
    data = json.loads(result.stdout)
    codes = {f["code"] for f in data["findings"]}
    assert ("large_dose_change" in codes) == blocked
    # exit 1 when the change cannot be committed as given (blocked, or a reason is needed)
    assert result.exit_code == (1 if data["blocked"] or data["needs_override_reason"] else 0)


def test_program_check_concentration_mismatch(spec_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "program",
            "check",
            str(spec_file),
            "--dose-mcg-per-day",
            "480",
            "--concentration",
            "2000",
            "--json",
        ],
    )
    data = json.loads(result.stdout)
    assert [f["code"] for f in data["findings"]].count("concentration_mismatch") == 1
    assert data["blocked"] is True


def test_program_check_rich_output(spec_file: Path) -> None:
    result = runner.invoke(app, ["program", "check", str(spec_file), "--dose-mcg-per-day", "11520"])
    assert result.exit_code == 1, result.output
    assert "Review: old and new side by side" in result.stdout
    assert "unit_mixup" in result.stdout
    assert "BLOCKED" in result.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--dose-mcg-per-day", "-5"], "--dose-mcg-per-day"),
        (["--dose-mcg-per-day", "100", "--flex-step", "6am=10"], "--flex-step"),
        (["--dose-mcg-per-day", "100", "--flex-step", "25:00=10"], "--flex-step"),
        (["--dose-mcg-per-day", "100", "--origin", "brain"], "--origin"),
        (["--dose-mcg-per-day", "100", "--age-years", "-1"], "--age-years"),
        (["--dose-mcg-per-day", "100", "--at", "tomorrow"], "--at"),
    ],
)
def test_program_check_bad_input_is_one_line_and_exit_2(
    spec_file: Path, args: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["program", "check", str(spec_file), *args], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert field in err


# ---------------------------------------------------------------- program audit

AUDIT_EVENTS = """
[[events]]
kind = "reprogram"
day = 2
prescription = { mode = "flex", every_day = [{ start = "00:00", rate_mcg_per_h = 20 }, { start = "07:00", rate_mcg_per_h = 480 }, { start = "08:00", rate_mcg_per_h = 20 }] }
reason = "morning step meant as 480 mcg/day"

[[events]]
kind = "reprogram"
day = 3
prescription = { mode = "continuous", dose_mcg_per_day = 500 }
unfinished = true
"""


def test_program_audit_finds_the_ismp_error_in_a_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.toml"
    # the drug library in the pump refuses the per-hour vs per-day error before anything runs
    path.write_text(SPEC + AUDIT_EVENTS, encoding="utf-8")
    code, out, err = run_main(["program", "audit", str(path), "--days", "5"], capsys)
    assert code == 2
    assert out == ""
    assert "prescription.every_day[1].rate_mcg_per_h" in err
    assert "no part of a program may run faster than the daily hard maximum" in err
    # a spec that records the error as a declared hazard is replayed and audited
    path.write_text(
        'declared_hazard = "the ISMP flex-step error, as it happened"\n' + SPEC + AUDIT_EVENTS,
        encoding="utf-8",
    )
    result = runner.invoke(app, ["program", "audit", str(path), "--days", "5", "--json"])
    assert result.exit_code == 1, result.output  # blocked events: a failed audit
    data = json.loads(result.stdout)
    implant, first, second = data["checked_events"]
    assert implant["event"] is None  # the programming at implant is checked too
    assert implant["findings"] == [] or not implant["blocked"]
    assert first["kind"] == "reprogram"
    assert "unit_mixup" in {f["code"] for f in first["findings"]}
    assert "update_incomplete" in {f["code"] for f in second["findings"]}
    assert data["blocked_events"] == 2
    rich = runner.invoke(app, ["program", "audit", str(path), "--days", "5"])
    assert rich.exit_code == 1, rich.output
    assert "would have been blocked" in rich.stdout
