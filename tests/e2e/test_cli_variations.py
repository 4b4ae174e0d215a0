"""Variations from the command line, without copying a file: a built-in scenario printed
to start from, ``--seed`` and ``--set PATH=VALUE`` on simulate, pump run and cohort,
``itb cohort --patients N --years Y``; every bad one refused in one line naming it.
Run in-process."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from itb.entrypoints.cli.main import run

REPO = Path(__file__).resolve().parents[2]
TRIAL = REPO / "examples" / "trials" / "refill_margin.toml"
SPEC = REPO / "src" / "itb" / "data" / "pump_examples" / "seven_years_flex.toml"


def _ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    code = run(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    code = run(list(argv))
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_builtin_scenario_prints_as_the_file_to_start_from(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = _ok(capsys, "simulate", "--builtin", "stable_maintenance", "--print")
    table = tomllib.loads(text)
    assert table["name"] == "Stable maintenance"
    mine = tmp_path / "mine.toml"
    mine.write_text(text.replace("horizon_days = 730", "horizon_days = 20"), encoding="utf-8")
    metrics = json.loads(_ok(capsys, "simulate", str(mine), "--json"))
    assert metrics["horizon_days"] == 20
    assert "--print" in _refused(capsys, "simulate", str(mine), "--print")
    assert "--print" in _refused(
        capsys, "simulate", "--builtin", "stable_maintenance", "--print", "--seed", "2"
    )


def test_seed_and_set_vary_a_builtin_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["simulate", "--builtin", "stable_maintenance", "--set", "horizon_days=40", "--json"]
    one = json.loads(_ok(capsys, *base))
    assert (one["seed"], one["horizon_days"]) == (1, 40)
    other = json.loads(_ok(capsys, *base, "--seed", "5"))
    assert other["seed"] == 5
    heavier = json.loads(_ok(capsys, *base, "--set", "patient.weight_kg=95"))
    assert heavier["horizon_days"] == 40
    assert "--set patient.weight_kg = -3" in _refused(
        capsys, *base, "--set", "patient.weight_kg=-3"
    )
    assert "--set nope.x" in _refused(capsys, *base, "--set", "nope.x=1")
    assert "--set patient.nope" in _refused(capsys, *base, "--set", "patient.nope=1")
    assert "PATH=VALUE" in _refused(capsys, *base, "--set", "patient.weight_kg")
    assert "--seed" in _refused(capsys, *base, "--seed", "-1")


def test_a_pump_run_takes_set(capsys: pytest.CaptureFixture[str]) -> None:
    spec = tomllib.loads(SPEC.read_text(encoding="utf-8"))
    volume = spec["fill"]["volume_ml"]
    out = json.loads(
        _ok(
            capsys,
            "pump",
            "run",
            str(SPEC),
            "--days",
            "2",
            "--json",
            "--set",
            f"fill.volume_ml={volume / 2}",
        )
    )
    full = json.loads(_ok(capsys, "pump", "run", str(SPEC), "--days", "2", "--json"))
    assert out != full
    assert "--set fill.volume_ml" in _refused(
        capsys, "pump", "run", str(SPEC), "--set", "fill.volume_ml=-1"
    )


def test_a_small_cohort_without_copying_the_trial_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["cohort", str(TRIAL), "--patients", "40", "--years", "0.1", "--seed", "7", "--json"]
    summary = json.loads(_ok(capsys, *argv, "--out", str(tmp_path / "a")))
    assert (summary["cohort_size"], summary["seed"]) == (40, 7)
    assert summary["horizon_years"] == pytest.approx(0.1, rel=0.02)
    renamed = json.loads(
        _ok(capsys, *argv, "--set", "trial.name=small", "--out", str(tmp_path / "b"))
    )
    assert renamed["trial"] == "small"
    assert "--patients" in _refused(
        capsys, *argv[:2], "--patients", "0", "--out", str(tmp_path / "c")
    )
    assert "--years" in _refused(capsys, *argv[:2], "--years", "inf", "--out", str(tmp_path / "d"))
    assert "--set arm[9]" in _refused(
        capsys, *argv[:2], "--set", "arm[9].name=x", "--out", str(tmp_path / "e")
    )
    assert not (tmp_path / "c").exists()


def test_every_output_records_the_itb_and_data_versions_and_the_input_hash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from itb import __version__, bootstrap

    data = bootstrap.data_version()
    base = ["simulate", "--builtin", "stable_maintenance", "--set", "horizon_days=20"]
    _ok(capsys, *base, "--out", str(tmp_path / "a"))
    _ok(capsys, *base, "--out", str(tmp_path / "b"))
    _ok(capsys, *base, "--set", "patient.weight_kg=90", "--out", str(tmp_path / "c"))
    made = [json.loads((tmp_path / d / "metrics.json").read_text())["provenance"] for d in "abc"]
    assert made[0] == made[1]  # the same input, the same record
    assert (made[0]["itb_version"], made[0]["data_version"]) == (__version__, data)
    assert made[2]["input_sha256"] != made[0]["input_sha256"]
    assert made[2]["set"] == ["horizon_days=20", "patient.weight_kg=90"]
    assert made[0]["input_sha256"] in (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    _ok(capsys, "pump", "run", str(SPEC), "--days", "2", "--out", str(tmp_path / "p"))
    pump = json.loads((tmp_path / "p" / "summary.json").read_text())["provenance"]
    assert (pump["itb_version"], pump["data_version"], len(pump["input_sha256"])) == (
        __version__,
        data,
        64,
    )
    _ok(
        capsys,
        "cohort",
        str(TRIAL),
        "--patients",
        "20",
        "--years",
        "0.05",
        "--out",
        str(tmp_path / "t"),
    )
    trial = json.loads((tmp_path / "t" / "summary.json").read_text())["provenance"]
    assert trial["set"] == ["trial.patients=20", "trial.horizon_years=0.05"]
    assert trial["input_sha256"] in (tmp_path / "t" / "summary.md").read_text(encoding="utf-8")
    card = tmp_path / "card.html"
    _ok(
        capsys,
        "card",
        str(REPO / "examples" / "wallet_card.toml"),
        "--html",
        str(card),
        "--pdf",
        str(tmp_path / "card.pdf"),
    )
    assert f"itb {__version__}, data {data}; content SHA-256" in card.read_text(encoding="utf-8")
    assert b"content SHA-256" in (tmp_path / "card.pdf").read_bytes()
