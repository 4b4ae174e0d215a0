"""Writing a reservoir-forecast trial: summary.json, summary.md and the PNG plots.

Written atomically through :func:`itb.adapters.run_output.write_output_dir`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from itb.adapters.plots.forecast import plot_forecast_trial, share
from itb.adapters.run_output import write_output_dir

__all__ = ["forecast_trial_markdown", "write_forecast_trial"]

_RULE_WORDS = {
    "alarm": "the pump's alarm date less the margin",
    "band": "the same, never after the top of the rated band could be dry",
    "radar": "the radar's advice (the forecast)",
}


def _pct(count: int, n: int) -> str:
    if n == 0:
        return "-"
    est, lo, hi = share(count, n)
    return f"{100 * est:.1f} % ({100 * lo:.1f}-{100 * hi:.1f})"


def _ci(c: Mapping[str, float]) -> str:
    return f"{c['estimate']:.2f} ({c['low']:.2f} to {c['high']:.2f})"


def _share_ci(c: Mapping[str, float]) -> str:
    return (
        f"{100 * c['estimate']:.2f} percentage points "
        f"({100 * c['low']:.2f} to {100 * c['high']:.2f})"
    )


def forecast_trial_markdown(summary: Mapping[str, Any]) -> str:
    """The trial's results as Markdown tables (the same numbers as summary.json)."""
    s = summary
    cal = s["calibration"]
    lines = [
        f"# Reservoir forecast: virtual clinic of {s['pumps']:,} pumps, {s['years']:g} years, "
        f"seed {s['seed']}",
        "",
        "Simulation, not clinical data. The method and what the numbers mean: docs/forecast.md.",
        "",
        "## Calibration of the stated band (forecasts made at each fill)",
        "",
        f"The {round(100 * s['band_probability'])} % band held the true empty time in "
        f"{_pct(cal['covered'], cal['forecasts'])} of {cal['forecasts']:,} forecasts.",
        "",
        "| refills learned | forecasts | band held the truth (95 % CI) | median abs. factor "
        "error | 90th pct | median predictive sd |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for g in cal["by_learned"]:
        lines.append(
            f"| {g['learned']} | {g['forecasts']:,} | {_pct(g['covered'], g['forecasts'])} | "
            f"{g['median_abs_factor_error']:.4f} | {g['p90_abs_factor_error']:.4f} | "
            f"{g['median_predictive_sd']:.4f} |"
        )
    rel = s["calibration_alarm_visits"]
    lines += [
        "",
        "## P(dry) against what happened (visits booked on the pump's alarm date)",
        "",
        f"Sum of P(dry before the visit): {rel['expected_dry_visit']:.1f}; visits that found "
        f"the reservoir dry: {rel['dry_visit']:,}.",
        "",
        "| P(dry) from | to | visits | mean P(dry) | found dry (95 % CI) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rel["reliability"]:
        lines.append(
            f"| {r['p_from']:g} | {r['p_to']:g} | {r['forecasts']:,} | "
            f"{r['mean_predicted']:.4f} | {_pct(r['dry'], r['forecasts'])} |"
        )
    lines += [
        "",
        "## The virtual trial: how visits are booked",
        "",
        "| rule | visits per pump-year | dry visits | dry per 100 pump-years (95 % CI) | "
        "pumps ever dry | dry days per 100 pump-years |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, p in s["policies"].items():
        lines.append(
            f"| {name}: {_RULE_WORDS[name]} | {p['visits_per_pump_year']:.2f} | "
            f"{p['dry_visits']:,} | {_ci(p['dry_per_100_pump_years_ci'])} | "
            f"{p['pumps_ever_dry']:,} | {p['dry_days_per_100_pump_years']:.1f} |"
        )
    e = s["effect"]
    lines += [
        "",
        "Paired differences (bootstrap over pumps, "
        f"{e['alarm_minus_radar_dry_per_100_pump_years']['resamples']:,} resamples), dry visits "
        "per 100 pump-years:",
        "",
        f"- alarm date minus radar: {_ci(e['alarm_minus_radar_dry_per_100_pump_years'])}",
        f"- rated band minus radar: {_ci(e['band_minus_radar_dry_per_100_pump_years'])}",
        "",
        "Share of pumps that ran dry at least once, alarm date minus radar: "
        + _share_ci(e["alarm_minus_radar_share_of_pumps_ever_dry"]),
    ]
    mis = s.get("misspecified")
    if mis:
        mc = mis["calibration"]
        lines += [
            "",
            "## Against a truth the forecast does not assume",
            "",
            f"Truth: spread between pumps sd {mis['truth']['spread_sd']:g}, interval-to-interval "
            f"sd {mis['truth']['interval_sd']:g}. The band held the true empty time in "
            f"{_pct(mc['covered'], mc['forecasts'])} of forecasts; radar rule: "
            f"{mis['radar']['dry_per_100_pump_years']:.2f} dry visits per 100 pump-years.",
        ]
    prov = s.get("provenance")
    if prov:
        lines += ["", f"itb {prov['itb_version']}, data {prov['data_version']}."]
    return "\n".join(lines) + "\n"


def write_forecast_trial(
    summary: Mapping[str, Any], plots: Mapping[str, Any], out_dir: Path
) -> Path:
    """Write every output file of a forecast trial into ``out_dir`` (atomically)."""

    def fill(tmp: Path) -> None:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (tmp / "summary.md").write_text(forecast_trial_markdown(summary), encoding="utf-8")
        plot_forecast_trial(summary, plots, tmp)

    return write_output_dir(out_dir, fill)
