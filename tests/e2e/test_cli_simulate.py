"""``itb simulate`` through the real command line (a subprocess running the installed CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ITB = Path(sys.executable).parent / "itb"

GOOD = """
name = "e2e course"
seed = 9
horizon_days = 20
[patient]
cause = "cerebral_palsy"
age_years = 16
baseline_mas = 3.0
[pump]
preset = "synchromed_ii_20"
implanted_at = 2026-01-05T09:00:00
timezone = "Europe/London"
[catheter]
family = "ascenda_like"
implanted_length_cm = 50
[drug]
concentration_mcg_per_ml = 500
[protocol]
screening = { effective_dose_mcg = 50, effect_duration_h = 10 }
[output]
sample_every_h = 2
"""


def itb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ITB), *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def test_list_names_every_builtin_scenario() -> None:
    proc = itb("simulate", "--list", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)["scenarios"]
    names = {row["name"] for row in listed}
    assert {"stable_maintenance", "missed_refill_withdrawal"} <= names
    assert all(row["description"] for row in listed)
    human = itb("simulate", "--list")
    assert human.returncode == 0
    assert "stable_maintenance" in human.stdout


def test_builtin_with_json_prints_the_metrics_object(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = itb("simulate", "--builtin", "missed_refill_withdrawal", "--json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    for key in (
        "time_in_therapeutic_range_pct",
        "days_with_withdrawal_signs",
        "days_with_overdose_signs",
        "alarms_by_kind",
        "refill_discrepancies_flagged",
        "titration_days",
        "refills",
        "battery_replacement_date",
    ):
        assert key in metrics, key
    assert metrics["days_with_withdrawal_signs"] > 0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for name in ("timeline.csv", "trajectories.csv", "report.html", "plots/spasticity.png"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "not a medical device" in html.lower()
    assert "http://" not in html
    assert "https://" not in html


def test_scenario_file_gives_a_rich_summary(tmp_path: Path) -> None:
    path = tmp_path / "course.toml"
    path.write_text(GOOD)
    proc = itb("simulate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "e2e course" in proc.stdout
    assert "Time in the therapeutic range" in proc.stdout


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("horizon_days = 20", "horizon_days = -3"), "horizon_days"),
        (('preset = "synchromed_ii_20"', 'preset = "nope"'), "pump.preset"),
        (("checkup_every_days", "x"), "protocol"),
        (("[output]", '[[events]]\nkind = "teleport"\nday = 2\n[output]'), "events[0].kind"),
        (
            ("concentration_mcg_per_ml = 500", "concentration_mcg_per_ml = 5000"),
            "drug.concentration_mcg_per_ml",
        ),
        # one story: a cerebral-palsy patient has no spinal injury level
        (
            ("baseline_mas = 3.0", "baseline_mas = 3.0\nrisk = { sci_at_or_above_t6 = true }"),
            "patient.risk.sci_at_or_above_t6",
        ),
        # one story: a 16-year-old of 5 kg is a typing error (the range names the age)
        (("age_years = 16", "age_years = 16\nweight_kg = 15"), "patient.weight_kg"),
        (
            (
                "[output]",
                '[[events]]\nkind = "complication"\nday = 2\ncomplication = "flu"\n[output]',
            ),
            "events[0].complication",
        ),
    ],
)
def test_bad_scenario_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    old, new = change
    text = (
        GOOD.replace(old, new)
        if old != "checkup_every_days"
        else GOOD.replace("[protocol]\n", "[protocol]\ncheckup_every_days = 30\n")
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    proc = itb("simulate", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0]
    assert "allowed" in lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_unknown_builtin_and_missing_input_exit_2() -> None:
    proc = itb("simulate", "--builtin", "nope")
    assert proc.returncode == 2
    assert "stable_maintenance" in proc.stderr
    assert itb("simulate").returncode == 2


def test_demo_runs_the_flagship_scenario_and_says_where_the_report_is(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = itb("demo", "--out", str(out), "--no-serve")
    assert proc.returncode == 0, proc.stderr
    assert "Seven years of ITB therapy" in proc.stdout
    assert (out / "report.html").is_file()
    assert (out / "report.html").as_uri() in proc.stdout.replace("\n", "")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["battery_replacement_date"] is not None
