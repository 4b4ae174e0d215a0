"""``itb cohort`` through the real CLI (subprocess): JSON summary keys and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ITB = Path(sys.executable).parent / "itb"

TRIAL = """
[trial]
name = "tiny"
patients = 12
horizon_years = 0.2
seed = 5

[[arm]]
name = "alarm day"
refill_margin_days = 0

[[arm]]
name = "two weeks early"
refill_margin_days = 14
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ITB), *args], capture_output=True, text=True, timeout=300)


def test_cohort_json_summary_and_files(tmp_path: Path) -> None:
    trial = tmp_path / "trial.toml"
    trial.write_text(TRIAL, encoding="utf-8")
    out = tmp_path / "out"
    proc = _run("cohort", str(trial), "--out", str(out), "--json", "--chunk-size", "5")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {"trial", "seed", "patients_implanted", "horizon_years", "arms", "wall_time_s"} <= set(
        summary
    )
    assert [a["name"] for a in summary["arms"]] == ["alarm day", "two weeks early"]
    arm = summary["arms"][0]
    for key in (
        "patients_reaching_withdrawal",
        "withdrawal_days_per_patient_year",
        "refills_per_patient_year",
        "alarms_per_patient_year",
        "pumps_reaching_eos_before_replacement",
        "maintenance_dose_mcg_per_day",
    ):
        assert key in arm
    assert {"estimate", "low", "high"} <= set(arm["patients_reaching_withdrawal"])
    assert set(arm["maintenance_dose_mcg_per_day"]) == {"spinal", "cerebral", "pediatric"}
    for name in ("summary.json", "summary.md", "arms.csv", "outcomes.png", "rates.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "summary.json").read_text())["arms"][1]["name"] == "two weeks early"


def test_bad_trial_file_exits_2_with_one_line_naming_field_value_allowed(tmp_path: Path) -> None:
    trial = tmp_path / "bad.toml"
    trial.write_text(TRIAL.replace("refill_margin_days = 14", 'refill = "weekly"'), "utf-8")
    proc = _run("cohort", str(trial), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "arm[1].refill" in lines[0]
    assert "weekly" in lines[0]
    assert "interval" in lines[0]
    assert "margin" in lines[0]
    assert not (tmp_path / "o").exists()


def test_the_programs_and_boluses_example_runs_shrunk(tmp_path: Path) -> None:
    example = (
        Path(__file__).resolve().parents[2] / "examples" / "trials" / "programs_and_boluses.toml"
    )
    text = example.read_text(encoding="utf-8")
    text = text.replace("patients = 10000", "patients = 30").replace(
        "horizon_years = 2", "horizon_years = 0.25"
    )
    trial = tmp_path / "trial.toml"
    trial.write_text(text, encoding="utf-8")
    proc = _run("cohort", str(trial), "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    arms = {a["name"]: a for a in summary["arms"]}
    assert arms["flex, more at night"]["policy"]["program"]["kind"] == "flex"
    assert arms["continuous"]["totals"]["patient_boluses"] == 0
    assert arms["patient and bridge boluses"]["totals"]["patient_boluses"] > 0
    assert set(arms["continuous"]["totals"]["faults"]) == {
        "occlusion",
        "disconnection",
        "motor_stall",
        "leak",
        "migration",
    }
    assert summary["maintenance_dose_day"] == 91
