"""The reservoir forecast scored in the virtual clinic: calibrated, converging, useful,
and the trial's refill verdict the domain's."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itb import bootstrap
from itb.adapters.datafiles import load_data_table
from itb.domain.pump.refill import Verdict, judge_discrepancy
from itb.entrypoints.cli.main import run
from itb.services.forecast_trial import run_forecast_trial
from itb.simulation.virtual_clinic import Care, ClinicPumps, refill_findings

CATALOG = bootstrap.catalog()


@cache
def trial() -> dict[str, Any]:
    out = run_forecast_trial(
        CATALOG, load_data_table("forecast"), pumps=1500, years=3.0, seed=11, resamples=300,
        misspecified_interval_sd=0.044,
    )  # fmt: skip
    return dict(out.summary)


def test_the_stated_band_holds_the_truth_as_often_as_it_says() -> None:
    cal = trial()["calibration"]
    assert cal["forecasts"] > 30_000
    assert 0.88 <= cal["covered"] / cal["forecasts"] <= 0.92
    first = cal["by_learned"][0]
    assert first["learned"] == "0"  # the prior alone: the spread between pumps
    assert 0.86 <= first["covered"] / first["forecasts"] <= 0.94


def test_the_check_has_the_power_to_see_a_wrong_model() -> None:
    """Against a truth twice as variable between intervals, the band is too narrow and the
    same check says so."""
    mis = trial()["misspecified"]["calibration"]
    assert mis["covered"] / mis["forecasts"] < 0.8


def test_the_learned_factor_converges_on_the_true_one() -> None:
    groups = trial()["calibration"]["by_learned"]
    errors = [g["median_abs_factor_error"] for g in groups]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < errors[0] / 4
    sds = [g["median_predictive_sd"] for g in groups]
    assert sds == sorted(sds, reverse=True)
    assert sds[-1] >= CATALOG.forecast.interval_sd.value  # never below the interval spread


def test_p_dry_says_how_often_the_reservoir_is_dry() -> None:
    rel = trial()["calibration_alarm_visits"]
    expected, seen = rel["expected_dry_visit"], rel["dry_visit"]
    assert seen > 100
    assert abs(seen - expected) < 4.0 * np.sqrt(expected)
    for row in rel["reliability"]:
        if row["forecasts"] >= 200 and row["mean_predicted"] > 0.05:
            observed = row["dry"] / row["forecasts"]
            assert abs(observed - row["mean_predicted"]) < 0.1


def test_following_the_radar_means_fewer_pumps_running_dry() -> None:
    s = trial()
    effect = s["effect"]["alarm_minus_radar_dry_per_100_pump_years"]
    assert effect["low"] > 0.0
    fewer_pumps = s["effect"]["alarm_minus_radar_share_of_pumps_ever_dry"]
    assert fewer_pumps["low"] > 0.0
    assert fewer_pumps["estimate"] == pytest.approx(
        (s["policies"]["alarm"]["pumps_ever_dry"] - s["policies"]["radar"]["pumps_ever_dry"])
        / s["pumps"]
    )
    p = s["policies"]
    assert p["radar"]["dry_visits"] < p["band"]["dry_visits"] < p["alarm"]["dry_visits"]
    assert p["radar"]["pumps_ever_dry"] < p["alarm"]["pumps_ever_dry"]
    # at a cost in visits of a few per cent at most
    assert p["radar"]["visits_per_pump_year"] < 1.05 * p["alarm"]["visits_per_pump_year"]
    # the same pumps under every rule
    assert p["radar"]["pump_years"] == pytest.approx(p["alarm"]["pump_years"], rel=0.02)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.sampled_from([20.0, 40.0]),
    band=st.sampled_from([14.5, 15.0]),
    programmed=st.floats(0.5, 60.0),
    withdrawn=st.one_of(st.just(0.0), st.floats(0.0, 40.0)),
)
def test_the_trials_verdict_is_the_domains(
    capacity: float, band: float, programmed: float, withdrawn: float
) -> None:
    withdrawn = min(withdrawn, capacity)
    one = np.ones(1)
    pumps = ClinicPumps(["x"], one * capacity, one * 2.0, one * band, one, one, one[:, None],
                        one[:, None], np.zeros((1, 1), dtype=np.int64))  # fmt: skip
    care = Care(5.0, 180.0, 0.05, 7.0, CATALOG.refill_tolerance.syringe_reading_ml)
    empty, more = refill_findings(pumps, np.array([programmed]), np.array([withdrawn]), care)
    expected = max(capacity - programmed, 0.0)
    own = judge_discrepancy(
        expected, withdrawn, CATALOG.refill_tolerance, programmed, accuracy_band_pct=band,
        calculated_empty_for_h=None if expected > 0.0 else 1.0,
    )  # fmt: skip
    assert bool(empty[0]) is (own.verdict is Verdict.FOUND_EMPTY)
    assert bool(more[0]) is (own.verdict is Verdict.MORE_THAN_EXPECTED)


def test_the_command_writes_the_trial_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ft"
    rc = run(["forecast-trial", "--pumps", "300", "--years", "1", "--resamples", "50",
              "--out", str(out), "--json"])  # fmt: skip
    printed, err = capsys.readouterr()
    assert rc == 0, err
    summary = json.loads(printed)
    assert summary["pumps"] == 300
    assert summary["provenance"]["data_version"] == bootstrap.data_version()
    for name in ("summary.json", "summary.md", "calibration.png", "reliability.png",
                 "learning.png", "trial.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "summary.json").read_text())["calibration"] == summary["calibration"]
    for args, field in (
        (["--pumps", "0"], "--pumps"),
        (["--years", "-1"], "--years"),
        (["--resamples", "0"], "--resamples"),
        (["--misspecified-interval-sd", "2"], "--misspecified-interval-sd"),
    ):
        rc = run(["forecast-trial", "--out", str(tmp_path / "bad"), *args])
        printed, err = capsys.readouterr()
        assert rc == 2
        assert field in err
        assert len(err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()
