"""PNG plots of a virtual trial's summary (one colour per arm, 95 % intervals as error bars).

- ``outcomes.png``: proportions of patients (withdrawal, severe withdrawal,
  reservoir running dry, critical alarm, EOS before replacement), Wilson intervals;
- ``rates.png``: withdrawal days, refills and alarms per patient-year, normal intervals;
- ``doses.png``: maintenance dose distributions by origin group (log dose axis);
- ``withdrawal_days.png``: patients by days with withdrawal signs;
- ``complications.png`` (when an arm has complications on): explanted patients with
  withdrawal, and with severe withdrawal, while the pump is out (Wilson intervals), and
  their withdrawal days while out (normal intervals).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

__all__ = ["plot_trial"]

_PROPORTIONS = (
    ("patients_reaching_withdrawal", "withdrawal signs\n(any day)"),
    ("patients_reaching_severe_withdrawal", "severe\nwithdrawal"),
    ("patients_with_reservoir_running_dry", "reservoir ran\ndry"),
    ("patients_with_critical_alarm", "critical\nalarm"),
    ("pumps_reaching_eos_before_replacement", "EOS before\nreplacement"),
)
_WHILE_OUT = (
    ("explanted_with_withdrawal_while_out", "withdrawal signs\nwhile the pump is out"),
    ("explanted_with_severe_withdrawal_while_out", "severe withdrawal\nwhile the pump is out"),
)
_RATES = (
    ("withdrawal_days_per_patient_year", "withdrawal days / patient-year"),
    ("refills_per_patient_year", "refills / patient-year"),
    ("alarms_per_patient_year", "alarms / patient-year"),
)


def _bars(ax: Any, arms: Sequence[Mapping[str, Any]], keys: Sequence[str], value: str) -> None:
    width = 0.8 / max(len(arms), 1)
    for i, arm in enumerate(arms):
        xs, ys, lo, hi = [], [], [], []
        for j, key in enumerate(keys):
            s = arm[key]
            est = s.get(value)
            if est is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(est)
            lo.append(est - s["low"])
            hi.append(s["high"] - est)
        ax.bar(xs, ys, width=width * 0.95, label=arm["name"], yerr=[lo, hi], capsize=3)


def plot_trial(summary: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write the trial's PNG plots into ``out_dir``; return their paths."""
    arms = summary["arms"]
    title = f"{summary['trial']}: {summary['patients_implanted']:,} implanted, " + (
        f"{summary['horizon_years']:.3g} years, seed {summary['seed']}"
    )
    paths: list[Path] = []

    fig, ax = plt.subplots(figsize=(10, 5))
    try:
        _bars(ax, arms, [k for k, _ in _PROPORTIONS], "estimate")
        ax.set_xticks(range(len(_PROPORTIONS)), [label for _, label in _PROPORTIONS])
        ax.set_ylabel("proportion of implanted patients (95 % Wilson CI)")
        ax.set_title(title, fontsize=10)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        paths.append(out_dir / "outcomes.png")
        fig.savefig(paths[-1], dpi=110)
    finally:
        plt.close(fig)

    fig, axes = plt.subplots(1, len(_RATES), figsize=(12, 4.5))
    try:
        for ax, (key, label) in zip(axes, _RATES, strict=True):
            names = [a["name"] for a in arms]
            means = [a[key]["mean"] or 0.0 for a in arms]
            err = [
                [m - (a[key]["low"] or 0.0) for a, m in zip(arms, means, strict=True)],
                [(a[key]["high"] or 0.0) - m for a, m in zip(arms, means, strict=True)],
            ]
            ax.bar(names, means, yerr=err, capsize=4, color=[f"C{i}" for i in range(len(arms))])
            ax.set_title(label + " (95 % CI)", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            ax.tick_params(axis="x", labelrotation=15)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        paths.append(out_dir / "rates.png")
        fig.savefig(paths[-1], dpi=110)
    finally:
        plt.close(fig)

    groups = list(arms[0]["maintenance_dose_mcg_per_day"]) if arms else []
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(13, 4.2), sharey=False)
    try:
        for ax, g in zip(axes, groups, strict=False):
            for i, arm in enumerate(arms):
                h = arm["histograms"]
                edges = h["dose_bin_edges_mcg_per_day"]
                counts = h["dose_counts"][g]
                total = sum(counts) or 1
                ax.stairs([c / total for c in counts], edges, label=arm["name"], color=f"C{i}")
                med = arm["maintenance_dose_mcg_per_day"][g]["median"]
                if med is not None:
                    ax.axvline(med, color=f"C{i}", linestyle="--", linewidth=1)
            ax.set_xscale("log")
            ax.set_xlim(10, 5000)
            n = arms[0]["maintenance_dose_mcg_per_day"][g]["n"]
            day = summary["maintenance_dose_day"]
            ax.set_title(f"{g} (n = {n:,}): dose at day {day}", fontsize=10)
            ax.set_xlabel("mcg/day (dashed: median)")
            ax.legend(fontsize=8)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        paths.append(out_dir / "doses.png")
        fig.savefig(paths[-1], dpi=110)
    finally:
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    try:
        edges = arms[0]["histograms"]["withdrawal_day_bin_edges"] if arms else []
        labels = [
            f"{int(a)}" if b - a == 1 else f"{int(a)}-{int(b) - 1}" if b < 1e8 else f"{int(a)}+"
            for a, b in itertools.pairwise(edges)
        ]
        width = 0.8 / max(len(arms), 1)
        for i, arm in enumerate(arms):
            counts = arm["histograms"]["withdrawal_day_counts"]
            total = sum(counts) or 1
            ax.bar(
                [j - 0.4 + width * (i + 0.5) for j in range(len(counts))],
                [c / total for c in counts],
                width=width * 0.95,
                label=arm["name"],
            )
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yscale("log")
        ax.set_xlabel("days with withdrawal signs per patient over the trial")
        ax.set_ylabel("fraction of patients (log)")
        ax.set_title(title, fontsize=10)
        ax.legend()
        fig.tight_layout()
        paths.append(out_dir / "withdrawal_days.png")
        fig.savefig(paths[-1], dpi=110)
    finally:
        plt.close(fig)
    if any(a["policy"].get("complications") for a in arms):
        paths.append(_complications(arms, title, out_dir / "complications.png"))
    return paths


def _complications(arms: Sequence[Mapping[str, Any]], title: str, path: Path) -> Path:
    comp = [{"name": a["name"], **a["complications"]} for a in arms]
    explanted = ", ".join(
        f"{a['name']}: {c['patients_explanted']['count']:,}"
        for a, c in zip(arms, comp, strict=True)
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=(2, 1))
    try:
        _bars(left, comp, [k for k, _ in _WHILE_OUT], "estimate")
        left.set_xticks(range(len(_WHILE_OUT)), [label for _, label in _WHILE_OUT])
        left.set_ylabel("share of explanted patients (95 % Wilson CI)")
        left.set_ylim(0.0, 1.05)
        left.legend()
        left.grid(axis="y", alpha=0.3)
        key = "withdrawal_days_while_out_per_explanted_patient"
        means = [c[key]["mean"] or 0.0 for c in comp]
        err = [
            [m - (c[key]["low"] or 0.0) for c, m in zip(comp, means, strict=True)],
            [(c[key]["high"] or 0.0) - m for c, m in zip(comp, means, strict=True)],
        ]
        right.bar(
            [c["name"] for c in comp], means, yerr=err, capsize=4,
            color=[f"C{i}" for i in range(len(comp))],
        )  # fmt: skip
        right.set_title("withdrawal days while out\nper explanted patient (95 % CI)", fontsize=10)
        right.grid(axis="y", alpha=0.3)
        right.tick_params(axis="x", labelrotation=15)
        fig.suptitle(f"{title}\nexplanted patients: {explanted}", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
