"""PNG plots of a reservoir-forecast trial (``itb forecast-trial``, docs/forecast.md).

- ``calibration.png``: how often the stated band held the true empty time, and how far
  the learned delivery factor was from the true one, by refills learned;
- ``reliability.png``: P(dry before the visit) against how often the reservoir was
  really dry by then;
- ``learning.png``: one pump's learned factor and its band, refill by refill, against
  its true factor;
- ``trial.png``: dry visits per 100 pump-years and visits per pump-year by booking rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from itb.simulation.cohort_summary import wilson

__all__ = ["plot_forecast_trial", "share"]

# Okabe-Ito colours: told apart with the common colour-vision deficiencies
_BLUE, _ORANGE, _GREEN, _VERMILION, _GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#777777"
_RULES = {
    "alarm": ("pump's alarm date", _VERMILION),
    "band": ("rated band (no forecast)", _ORANGE),
    "radar": ("radar's advice", _BLUE),
}


def share(count: int, n: int) -> tuple[float, float, float]:
    """A proportion with its 95 % Wilson interval: (estimate, low, high); n > 0."""
    w = wilson(count, n)
    est, lo, hi = w["estimate"], w["low"], w["high"]
    if est is None or lo is None or hi is None:
        raise ValueError("a proportion of no observations")
    return float(est), float(lo), float(hi)


def _save(fig: Any, path: Path) -> Path:
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def _title(s: Mapping[str, Any]) -> str:
    return (
        f"virtual clinic: {s['pumps']:,} pumps, {s['years']:g} years, seed {s['seed']} "
        "(simulation, not clinical data)"
    )


def plot_forecast_trial(
    summary: Mapping[str, Any], plots: Mapping[str, Any], out_dir: Path
) -> list[Path]:
    """Write the trial's PNG plots into ``out_dir``; return their paths."""
    out: list[Path] = []
    cal = summary["calibration"]
    groups = cal["by_learned"]
    band = summary["band_probability"]

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    xs = range(len(groups))
    cov = [share(g["covered"], g["forecasts"]) for g in groups]
    est = [c[0] for c in cov]
    a.axhspan(band - 0.02, band + 0.02, color=_GREEN, alpha=0.15, label="88-92 %")
    a.axhline(band, color=_GREEN, lw=1)
    a.errorbar(
        xs, est, yerr=[[c[0] - c[1] for c in cov], [c[2] - c[0] for c in cov]],
        fmt="o", color=_BLUE, capsize=4, label="held the true empty time (95 % CI)",
    )  # fmt: skip
    mis = summary.get("misspecified")
    if mis:
        mg = mis["calibration"]["by_learned"]
        a.plot(
            range(len(mg)), [g["covered"] / g["forecasts"] for g in mg], "s--", color=_GREY,
            label=f"truth it does not assume (interval sd {mis['truth']['interval_sd']:g}, "
            f"spread sd {mis['truth']['spread_sd']:g})",
        )  # fmt: skip
    a.set_xticks(list(xs), [g["learned"] for g in groups])
    a.set_xlabel("refills learned from before the forecast")
    a.set_ylabel(f"share of {round(100 * band)} % bands holding the truth")
    a.set_ylim(0.5, 1.0)
    a.legend(fontsize=8, loc="lower right")
    a.grid(alpha=0.3)
    a.set_title("Is the stated band honest?", fontsize=10)
    b.plot(xs, [g["median_abs_factor_error"] for g in groups], "o-", color=_BLUE, label="median")
    b.plot(xs, [g["p90_abs_factor_error"] for g in groups], "s-", color=_ORANGE, label="90th pct")
    b.set_xticks(list(xs), [g["learned"] for g in groups])
    b.set_xlabel("refills learned from")
    b.set_ylabel("|learned - true| delivery factor")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    b.set_title("The learned factor converges on the true one", fontsize=10)
    fig.suptitle(_title(summary), fontsize=10)
    out.append(_save(fig, out_dir / "calibration.png"))

    rel = summary["calibration_alarm_visits"]["reliability"]
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    pred = [r["mean_predicted"] for r in rel]
    floor = 1e-4  # the log axis's floor
    seen = [r for r in rel if r["dry"] > 0]
    none = [r for r in rel if r["dry"] == 0]
    pred = [r["mean_predicted"] for r in seen]
    obs = [share(r["dry"], r["forecasts"]) for r in seen]
    ax.plot([1e-4, 1], [1e-4, 1], color=_GREY, lw=1, label="predicted = observed")
    ax.errorbar(
        pred, [o[0] for o in obs], yerr=[[o[0] - o[1] for o in obs], [o[2] - o[0] for o in obs]],
        fmt="o", color=_BLUE, capsize=4, label="visits grouped by P(dry) (95 % CI)",
    )  # fmt: skip
    for r in seen:
        p = r["mean_predicted"]
        ax.annotate(f"{r['forecasts']:,} visits", (p, p), textcoords="offset points",
                    xytext=(6, -12), fontsize=7, color=_GREY)  # fmt: skip
    if none:
        ax.plot(
            [r["mean_predicted"] for r in none], [floor] * len(none), "v", color=_VERMILION,
            label="none of these visits found it dry",
        )  # fmt: skip
        for r in none:
            ax.annotate(f"0 of {r['forecasts']:,}", (r["mean_predicted"], floor),
                        textcoords="offset points", xytext=(6, 4), fontsize=7, color=_GREY)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-6, 1.2)
    ax.set_ylim(1e-4, 1.2)
    ax.set_xlabel("forecast P(dry before the visit)")
    ax.set_ylabel("share of those visits that found the reservoir dry")
    ax.set_title("P(dry) says how often it happens\n(visits booked on the alarm date)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    out.append(_save(fig, out_dir / "reliability.png"))

    ex = plots["example"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    n = list(range(len(ex["learned_mean"])))
    z = 1.6448536269514722  # the 90 % band
    lo = [m - z * s for m, s in zip(ex["learned_mean"], ex["predictive_sd"], strict=True)]
    hi = [m + z * s for m, s in zip(ex["learned_mean"], ex["predictive_sd"], strict=True)]
    ax.fill_between(n, lo, hi, color=_BLUE, alpha=0.18, label="90 % band of the next interval")
    ax.plot(n, ex["learned_mean"], "o-", color=_BLUE, ms=3, label="learned factor")
    ax.axhline(ex["true_factor"], color=_VERMILION, lw=1.5, label="true factor of this pump")
    ax.axhline(1.0, color=_GREY, lw=1, ls=":", label="as programmed")
    ax.set_xlabel("refills learned from")
    ax.set_ylabel("delivery factor (x programmed)")
    ax.set_title(
        f"One pump ({ex['preset']}) delivering more than programmed: what its refills taught "
        "the forecast",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    out.append(_save(fig, out_dir / "learning.png"))

    pol = summary["policies"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    names = [k for k in ("alarm", "band", "radar") if k in pol]
    labels = [_RULES[k][0] for k in names]
    colours = [_RULES[k][1] for k in names]
    ci = [pol[k]["dry_per_100_pump_years_ci"] for k in names]
    a.bar(
        labels, [c["estimate"] for c in ci], color=colours,
        yerr=[[c["estimate"] - c["low"] for c in ci], [c["high"] - c["estimate"] for c in ci]],
        capsize=5,
    )  # fmt: skip
    a.set_ylabel("dry visits per 100 pump-years (95 % CI)")
    a.set_title("Running dry before the visit", fontsize=10)
    a.grid(axis="y", alpha=0.3)
    b.bar(labels, [pol[k]["visits_per_pump_year"] for k in names], color=colours)
    b.set_ylabel("refill visits per pump-year")
    b.set_title("What it costs in visits", fontsize=10)
    b.grid(axis="y", alpha=0.3)
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(_title(summary), fontsize=10)
    out.append(_save(fig, out_dir / "trial.png"))
    return out
