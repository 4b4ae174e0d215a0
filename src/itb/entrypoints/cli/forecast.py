"""``itb forecast-trial --out DIR``: the reservoir forecast scored in a virtual clinic, and a
virtual trial of booking refills by the radar's advice (docs/forecast.md)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from itb import bootstrap
from itb.adapters.output_paths import check_output_dir
from itb.domain.errors import InvalidValue

__all__ = ["forecast_trial", "register"]

DISCLAIMER = "Simulation and decision support only: not a medical device, not clinical advice."

_RULES = {
    "alarm": "pump's alarm date",
    "band": "rated band, no forecast",
    "radar": "radar's advice",
}


def forecast_trial(
    out: Annotated[
        Path, typer.Option("--out", help="Output directory (replaced if itb wrote it).")
    ],
    pumps: Annotated[int, typer.Option("--pumps", help="Pumps in the virtual clinic.")] = 20000,
    years: Annotated[float, typer.Option("--years", help="Years each pump is followed.")] = 5.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    resamples: Annotated[
        int, typer.Option("--resamples", help="Bootstrap resamples of the trial's effect.")
    ] = 1000,
    misspecified_interval_sd: Annotated[
        float | None,
        typer.Option(
            "--misspecified-interval-sd",
            help="Score the forecast again where the true interval-to-interval sd is this.",
        ),
    ] = None,
    misspecified_spread_sd: Annotated[
        float | None,
        typer.Option(
            "--misspecified-spread-sd",
            help="... and the true spread between pumps (sd) this.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    """Score the reservoir forecast in a virtual clinic and run the refill-booking trial.

    Pumps with known true delivery factors are refilled as a clinic would, their
    residuals read from a syringe; visits are booked on the pump's own alarm date, by
    the rated band, or by the radar's advice, for the same pumps. Writes summary.json,
    summary.md and PNG plots (calibration, reliability, learning, trial) into --out.
    """
    if not 1 <= resamples <= 100_000:
        raise InvalidValue("--resamples", resamples, "a whole number from 1 to 100,000")
    if not math.isfinite(years):
        raise InvalidValue("--years", years, "a finite number")
    target = check_output_dir(out, field="--out")
    err = Console(stderr=True, highlight=False)
    started = time.perf_counter()
    with err.status(f"virtual clinic: {pumps:,} pumps, {years:g} years"):
        summary, plots = bootstrap.run_forecast_trial(
            pumps=pumps,
            years=years,
            seed=seed,
            resamples=resamples,
            misspecified_interval_sd=misspecified_interval_sd,
            misspecified_spread_sd=misspecified_spread_sd,
        )
    summary["wall_time_s"] = round(time.perf_counter() - started, 3)
    written = bootstrap.write_forecast_trial(summary, plots, target)
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    console = Console(highlight=False)
    cal = summary["calibration"]
    console.print(f"[bold]Reservoir forecast in a virtual clinic[/]  {DISCLAIMER}")
    console.print(
        f"{pumps:,} pumps, {years:g} years, seed {seed}; {summary['wall_time_s']:.1f} s. "
        f"The {round(100 * summary['band_probability'])} % band held the true empty time in "
        f"{100 * cal['covered'] / cal['forecasts']:.1f} % of {cal['forecasts']:,} forecasts."
    )
    t = Table(title="Booking the refill visit (95 % bootstrap intervals)", title_justify="left")
    for col in ("rule", "visits / pump-year", "dry visits / 100 pump-years", "pumps ever dry"):
        t.add_column(col, justify="left" if col == "rule" else "right")
    for name, p in summary["policies"].items():
        ci = p["dry_per_100_pump_years_ci"]
        t.add_row(
            _RULES[name],
            f"{p['visits_per_pump_year']:.2f}",
            f"{ci['estimate']:.2f} ({ci['low']:.2f}-{ci['high']:.2f})",
            f"{p['pumps_ever_dry']:,}",
        )
    console.print(t)
    e = summary["effect"]["alarm_minus_radar_dry_per_100_pump_years"]
    console.print(
        f"Alarm date minus radar: {e['estimate']:.2f} dry visits per 100 pump-years "
        f"(95 % CI {e['low']:.2f} to {e['high']:.2f})."
    )
    console.print(f"written: {written}")


def register(app: typer.Typer) -> None:
    """Add ``itb forecast-trial`` to the app."""
    app.command("forecast-trial")(forecast_trial)
