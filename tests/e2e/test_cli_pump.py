"""``itb pump`` and ``itb demo`` through the real CLI (Typer runner and a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.adapters.run_output import MARKER
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli import main as cli_main
from itb.entrypoints.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "pump"
ITB = Path(sys.executable).parent / "itb"
runner = CliRunner()

SPEC = """
name = "e2e"
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
dose_mcg_per_day = 500
low_reservoir_alarm_ml = 2
[priming_bolus]
duration_h = 1
[[events]]
kind = "fault"
day = 2
fault = "overinfusion_drift"
factor = 1.3
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC, encoding="utf-8")
    return path


@pytest.fixture
def bad_spec(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(SPEC.replace("volume_ml = 20", "volume_ml = -20"), encoding="utf-8")
    return path


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The console-script entry in-process (error mapping included)."""
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


def test_json_has_the_final_state_alarms_and_events(spec_file: Path) -> None:
    result = runner.invoke(app, ["pump", "run", str(spec_file), "--days", "19", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["reservoir_calculated_ml"], float)
    assert isinstance(data["reservoir_actual_ml"], float)
    assert isinstance(data["delivered_mcg"], float)
    assert data["reservoir_actual_ml"] == 0.0
    assert data["reservoir_calculated_ml"] > 0.0
    assert data["delivered_mcg"] > 0.0
    assert isinstance(data["alarms"], list)
    assert data["alarms"]
    for alarm in data["alarms"]:
        assert isinstance(alarm["time"], str)
        assert isinstance(alarm["kind"], str)
        assert isinstance(alarm["critical"], bool)
        assert isinstance(alarm["t_h"], float)
        assert isinstance(alarm["action"], str)
    assert {"low_reservoir"} <= {a["kind"] for a in data["alarms"]}
    assert isinstance(data["events"], list)
    kinds = {e["kind"] for e in data["events"]}
    assert {"implant", "fill", "program", "fault"} <= kinds
    for event in data["events"]:
        assert set(event) == {"time", "t_h", "kind", "detail", "reason"}
    assert data["drug_balance"]["error_mcg"] == pytest.approx(0.0, abs=1e-6)
    assert data["battery"]["predicted_eri_time"].startswith("20")


def test_tables_for_people(spec_file: Path) -> None:
    result = runner.invoke(app, ["pump", "run", str(spec_file), "--days", "19"])
    assert result.exit_code == 0, result.output
    for title in ("Final state", "Drug balance", "Alarms", "Pump event log", "low_reservoir"):
        assert title in result.stdout
    result = runner.invoke(app, ["pump", "run", str(spec_file), "--days", "19", "--no-log"])
    assert "Pump event log" not in result.stdout


def test_bad_input_is_one_line_on_stderr_and_exit_2(
    bad_spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["pump", "run", str(bad_spec), "--days", "5", "--json"], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: fill.volume_ml = -20 is not allowed; allowed: > 0")


def test_missing_file_and_missing_days_are_bad_input(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["pump", "run", str(tmp_path / "nope.toml"), "--days", "5"], capsys)
    assert code == 2
    assert "SPEC.toml" in err
    code, _, err = run_main(["pump", "run", str(spec_file)], capsys)
    assert code == 2
    assert err.startswith("error: --days = None is not allowed")


def test_unreadable_spec_files_are_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe not text")
    broken = tmp_path / "broken.toml"
    broken.write_text("[pump\npreset = ", encoding="utf-8")
    for path, words in ((binary, "UTF-8"), (tmp_path, "readable"), (broken, "valid TOML")):
        code, out, err = run_main(["pump", "run", str(path), "--days", "1"], capsys)
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert words in err


def test_the_runner_surfaces_the_domain_error(bad_spec: Path) -> None:
    result = runner.invoke(app, ["pump", "run", str(bad_spec), "--days", "5"])
    assert isinstance(result.exception, InvalidValue)
    assert result.exception.field == "fill.volume_ml"


def test_no_output_dir_is_left_behind_on_failure(
    tmp_path: Path, bad_spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code, _, _ = run_main(
        ["pump", "run", str(bad_spec), "--days", "5", "--out", str(out_dir)], capsys
    )
    assert code == 2
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_out_dir_is_written_whole_and_replaced_only_if_itb_wrote_it(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    args = ["pump", "run", str(spec_file), "--days", "10", "--out", str(out_dir)]
    assert run_main(args, capsys)[0] == 0
    names = {p.name for p in out_dir.iterdir()}
    assert {
        "summary.json",
        "alarms.csv",
        "events.csv",
        "refills.csv",
        "daily_delivery.csv",
        "delivery_segments.csv",
        MARKER,
    } <= names
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["days"] == 10.0
    assert len((out_dir / "daily_delivery.csv").read_text().splitlines()) == 11
    assert run_main(args, capsys)[0] == 0  # replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "spec.toml"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run_main([*args[:-1], str(mine)], capsys)
    assert code == 2
    assert "--out" in err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_presets_show_status_and_source() -> None:
    result = runner.invoke(app, ["pump", "presets"])
    assert result.exit_code == 0, result.output
    assert "synchromed_ii_40" in result.stdout
    assert "confirmed" in result.stdout
    assert "assumed" in result.stdout
    data = json.loads(runner.invoke(app, ["pump", "presets", "--json"]).stdout)
    rows = data["synchromed_ii_40"]["numbers"]
    reservoir = next(r for r in rows if r["name"] == "reservoir_ml")
    assert reservoir["value"] == 40.0
    assert reservoir["status"] == "confirmed"
    assert reservoir["source"]
    assert {r["status"] for r in rows} == {"confirmed", "assumed"}


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_runs(example: str) -> None:
    result = runner.invoke(app, ["pump", "run", str(EXAMPLES / example), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["drug_balance"]["error_mcg"] == pytest.approx(0.0, abs=1e-5)


def test_demo_runs_the_examples_and_writes_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--pump-examples", "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert "itb demo" in result.stdout
    assert "ran dry" in result.stdout
    assert "elective replacement indicator" in result.stdout
    assert str(out_dir) in result.stdout.replace("\n", "")
    assert (out_dir / "summary.md").exists()
    for example in EXAMPLES.glob("*.toml"):
        assert (out_dir / example.stem / "summary.json").exists()


def test_the_installed_command_runs_in_a_subprocess(tmp_path: Path, bad_spec: Path) -> None:
    assert ITB.exists(), ITB
    ok = subprocess.run(
        [str(ITB), "pump", "run", str(EXAMPLES / "overinfusion_runs_dry.toml"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["reservoir_actual_ml"] == 0.0
    assert any(a["kind"] == "empty_reservoir" and a["critical"] for a in data["alarms"])
    out_dir = tmp_path / "out"
    bad = subprocess.run(
        [str(ITB), "pump", "run", str(bad_spec), "--days", "3", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "fill.volume_ml" in bad.stderr
    assert not out_dir.exists()


@pytest.mark.parametrize("args", [["--help"], ["pump", "--help"], ["pump", "run", "--help"]])
def test_help_works(args: list[str]) -> None:
    result = subprocess.run([str(ITB), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    if args[-2:] == ["run", "--help"]:
        assert "--days" in result.stdout
        assert "--json" in result.stdout
        assert "--out" in result.stdout
