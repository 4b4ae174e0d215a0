"""``itb validate``, ``itb titrate`` and ``itb patient`` through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.entrypoints.cli.main import app

ITB = Path(sys.executable).parent / "itb"
runner = CliRunner()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ITB), *args], capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_validate_json_passes_every_row() -> None:
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True
    assert report["failed"] == []
    rows = report["rows"]
    ids = {r["id"] for r in rows}
    expected = {f"T{i}" for i in range(1, 24)}
    assert expected == {i.rstrip("abcde") for i in ids}
    for r in rows:
        assert {"id", "published", "model", "tolerance", "passed", "use"} <= set(r)
        assert r["passed"] is True, r
        assert r["model"]
        assert r["use"] in {"calibration", "check", "information"}
        assert r["informational"] == (r["use"] == "information")
    use = {r["id"]: r["use"] for r in rows}
    # the held-out rows of the long-term data were fitted to nothing
    assert {i for i, u in use.items() if u == "check"} == {"T21a", "T21b", "T21c", "T21d", "T21e"}
    assert use["T22"] == "calibration"
    traj = report["dose_trajectories_mcg_per_day"]
    assert set(traj) == {"spinal_cord_injury", "multiple_sclerosis", "cerebral"}
    assert all(len(v) == 10 for v in traj.values())
    # people with multiple sclerosis need less than spinal cord injury, every year
    assert all(
        m < s for m, s in zip(traj["multiple_sclerosis"], traj["spinal_cord_injury"], strict=True)
    )


def test_validate_writes_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    # small cohorts: this is about the files (every row passing is the test above)
    result = runner.invoke(
        app,
        [
            "validate",
            "--out",
            str(out),
            "--pk-cohort-size",
            "100",
            "--titration-cohort-size",
            "200",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "http://" not in page
    assert "https://" not in page
    assert "held-out check" in page
    assert "T22" in page
    png = (out / "plots" / "dose_trajectory.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    saved = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert saved["passed"] is (result.exit_code == 0)
    assert len(saved["rows"]) == page.count('<td class="id">')


@pytest.mark.slow
def test_validate_is_stable_for_another_seed() -> None:
    # The documented cohort sizes are meant to be stable to the stated tolerances,
    # so another seed must pass too.
    result = runner.invoke(app, ["validate", "--json", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert all(r["passed"] for r in json.loads(result.output)["rows"])


def test_validate_exits_one_when_a_row_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from itb.entrypoints.cli import validate as validate_cli
    from itb.simulation.validation import ValidationReport, ValidationRow

    def one_failing_row(*_args: object, **_kw: object) -> ValidationReport:
        return ValidationReport(
            rows=[
                ValidationRow("T1", "x", "1", "2", "equal", passed=False),
                ValidationRow("T2", "y", "1", "1", "equal", passed=True),
            ],
            trajectories={},
            published={},
        )

    monkeypatch.setattr(validate_cli, "run_validation", one_failing_row)
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [r["passed"] for r in report["rows"]] == [False, True]
    assert report == {**report, "passed": False, "failed": ["T1"]}
    table = runner.invoke(app, ["validate"])
    assert table.exit_code == 1
    assert "FAIL" in table.output


def test_validate_table_for_people() -> None:
    result = runner.invoke(
        app, ["validate", "--pk-cohort-size", "300", "--titration-cohort-size", "200"]
    )
    assert "T14a" in result.output
    assert result.exit_code in (0, 1)


def test_titrate_start_json() -> None:
    result = runner.invoke(
        app,
        ["titrate", "start", "--screening-dose-mcg", "50", "--effect-duration-h", "9", "--json"],
    )
    assert result.exit_code == 0, result.output
    step = json.loads(result.output)
    assert step["action"] == "start"
    assert step["dose_mcg_per_day"] == 50.0  # effect > 8 h: 1 x the screening dose
    assert step["source"]


def test_titrate_next_table() -> None:
    result = runner.invoke(
        app,
        [
            "titrate",
            "next",
            "--dose-mcg-per-day",
            "200",
            "--assessment",
            "inadequate",
            "--hours-since-implant",
            "72",
            "--origin",
            "cerebral",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "increase" in result.output


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (["--change-pct", "50"], "--change-pct", "50.0"),
        (["--assessment", "fine"], "--assessment", "'fine'"),
        (["--origin", "lumbar"], "--origin", "'lumbar'"),
        (["--dose-mcg-per-day", "-10"], "--dose-mcg-per-day", "-10.0"),
    ],
)
def test_titrate_bad_input_exits_2_with_one_line(args: list[str], field: str, value: str) -> None:
    base = {
        "--dose-mcg-per-day": "100",
        "--assessment": "inadequate",
        "--hours-since-implant": "72",
    }
    merged = dict(base)
    merged.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in merged.items() for x in kv]
    proc = _run("titrate", "next", *flat)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0]
    assert value in lines[0]
    assert "allowed" in lines[0]


def test_titrate_help() -> None:
    result = runner.invoke(app, ["titrate", "next", "--help"])
    assert result.exit_code == 0
    assert "--change-pct" in result.output


def test_patient_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "patient.png"
    result = runner.invoke(
        app,
        [
            "patient",
            "plot",
            "--dose-mcg-per-day",
            "300",
            "--hours",
            "72",
            "--stop-at-h",
            "36",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_patient_simulate_from_a_history_file(tmp_path: Path) -> None:
    history = tmp_path / "history.toml"
    history.write_text(
        "[[infusion]]\nstart_h = 0.0\nend_h = 48.0\ndose_mcg_per_day = 200.0\n"
        "[[bolus]]\nat_h = 24.0\namount_mcg = 50.0\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["patient", "simulate", "--history", str(history), "--hours", "48", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"patient", "observations"}
    obs = out["observations"]
    assert obs[0]["mas"] > obs[-1]["mas"]
    assert {"csf_concentration_mcg_per_ml", "effect_site_mcg_per_ml", "signs"} <= set(obs[0])


def test_patient_plot_bad_output_name_exits_2(tmp_path: Path) -> None:
    proc = _run("patient", "plot", "--dose-mcg-per-day", "100", "--out", str(tmp_path / "x.jpg"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "out" in proc.stderr
