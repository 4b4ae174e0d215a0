"""Writing a virtual trial's results: summary.json, summary.md, arms.csv and the PNG plots.

Written atomically through :func:`itb.adapters.run_output.write_output_dir`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from itb.adapters.plots.cohort import plot_trial
from itb.adapters.run_output import write_output_dir

__all__ = ["summary_rows", "write_trial_output"]


def _ci(s: Mapping[str, Any], value: str, pct: bool) -> str:
    est = s.get(value)
    if est is None:
        return "—"
    if pct:
        return f"{100 * est:.2f} % ({100 * s['low']:.2f}-{100 * s['high']:.2f})"
    return f"{est:.3f} ({s['low']:.3f}-{s['high']:.3f})"


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """The headline table: one row per statistic, one column per arm."""
    arms = summary["arms"]
    rows: list[tuple[str, list[str]]] = []

    def prop(key: str, label: str) -> None:
        rows.append((label, [_ci(a[key], "estimate", True) for a in arms]))

    def mean(key: str, label: str) -> None:
        rows.append((label, [_ci(a[key], "mean", False) for a in arms]))

    rows.append(("implanted patients", [f"{a['implanted']:,}" for a in arms]))
    prop("patients_reaching_withdrawal", "patients with withdrawal signs")
    prop("patients_reaching_severe_withdrawal", "patients with severe withdrawal")
    mean("withdrawal_days_per_patient_year", "withdrawal days / patient-year")
    prop("patients_with_reservoir_running_dry", "patients whose reservoir ran dry")
    mean("refills_per_patient_year", "refills / patient-year")
    rows.append(("missed refills (total)", [f"{a['totals']['missed_refills']:,}" for a in arms]))
    mean("alarms_per_patient_year", "alarms / patient-year")
    for kind in summary["alarm_kinds"]:
        rows.append((f"  {kind} alarms", [f"{a['totals']['alarms'][kind]:,}" for a in arms]))
    prop("patients_with_critical_alarm", "patients with a critical alarm")
    prop("pumps_reaching_eos_before_replacement", "pumps reaching EOS before replacement")
    rows.append(("pumps reaching ERI", [f"{a['totals']['eri_reached']:,}" for a in arms]))
    prop("patients_with_overdose_signs", "patients with overdose signs")
    rows.append(("patient boluses (total)", [f"{a['totals']['patient_boluses']:,}" for a in arms]))
    rows.append(("bridge boluses (total)", [f"{a['totals']['bridge_boluses']:,}" for a in arms]))
    if any(a["policy"].get("complications") for a in arms):
        rows.append(
            (
                "complications of the system",
                [str(a["policy"]["complications"]).lower() for a in arms],
            )
        )
        rows.append(("bridge while a pump is out", [str(a["policy"]["bridge"]) for a in arms]))

        def comp(key: str, label: str, value: str = "estimate", pct: bool = True) -> None:
            rows.append((label, [_ci(a["complications"][key], value, pct) for a in arms]))

        comp("patients_with_complication", "patients with a complication")
        comp("patients_explanted", "patients explanted")
        comp("explanted_with_withdrawal_while_out", "explanted: withdrawal while the pump is out")
        comp(
            "explanted_with_severe_withdrawal_while_out",
            "explanted: severe withdrawal while the pump is out",
        )
        comp(
            "withdrawal_days_while_out_per_explanted_patient",
            "withdrawal days while out / explanted patient",
            "mean",
            False,
        )
        rows.append(
            (
                "refills failed, pump turned (total)",
                [f"{a['complications']['failed_refills']:,}" for a in arms],
            )
        )
    day = summary["maintenance_dose_day"]
    for g in arms[0]["maintenance_dose_mcg_per_day"] if arms else []:
        rows.append(
            (
                f"dose at day {day}, {g} (mcg/day): mean (95 % CI); median",
                [
                    _ci(a["maintenance_dose_mcg_per_day"][g], "mean", False)
                    + f"; {a['maintenance_dose_mcg_per_day'][g]['median'] or 0:.0f}"
                    for a in arms
                ],
            )
        )
    return rows


def _markdown(summary: Mapping[str, Any]) -> str:
    arms = summary["arms"]
    lines = [
        f"# {summary['trial']}",
        "",
        "Simulation and decision support only: not a medical device, not clinical advice.",
        "",
        f"Seed {summary['seed']}; {summary['cohort_size']:,} patients screened, "
        f"{summary['patients_implanted']:,} implanted; {summary['horizon_years']:.3g} years "
        f"({summary['horizon_days']} days). Proportions: 95 % Wilson intervals; means: 95 % "
        "normal intervals.",
        "",
        "| statistic | " + " | ".join(a["name"] for a in arms) + " |",
        "|---|" + "---|" * len(arms),
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in summary_rows(summary)]
    made = summary.get("provenance")
    if isinstance(made, Mapping) and made:
        changes = f"; --set {', '.join(made['set'])}" if made.get("set") else ""
        lines += [
            "",
            f"itb {made.get('itb_version')}, data {made.get('data_version')}; trial file "
            f"SHA-256 {made.get('input_sha256')}{changes}.",
        ]
    return "\n".join(lines) + "\n"


def write_trial_output(summary: Mapping[str, Any], out_dir: Path) -> Path:
    """Write every output file of a trial into ``out_dir`` (atomically); return it."""

    def fill(tmp: Path) -> None:
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
        (tmp / "summary.md").write_text(_markdown(summary), encoding="utf-8")
        with (tmp / "arms.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["statistic", *(a["name"] for a in summary["arms"])])
            for label, cells in summary_rows(summary):
                w.writerow([label.strip(), *cells])
        plot_trial(summary, tmp)

    return write_output_dir(out_dir, fill)
