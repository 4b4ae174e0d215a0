"""``itb screening-trial TRIAL.toml``: assess a recorded screening trial and plan the next step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from itb.adapters.datafiles import load_data_table, read_toml_file
from itb.domain.clinical.screening import parse_screening_protocol
from itb.entrypoints.cli.clinical_common import (
    DISCLAIMER,
    console,
    echo_json,
    reason_dict,
    reasons_table,
)
from itb.services.screening_record import (
    ScreeningReport,
    evaluate_screening_record,
    parse_screening_record,
)

__all__ = ["register", "screening_trial"]

_STEP_STYLE = {
    "give_dose": "bold cyan",
    "observe": "bold cyan",
    "responder": "bold green",
    "not_a_candidate": "bold red",
}


def screening_trial(
    trial_file: Annotated[
        Path,
        typer.Argument(
            metavar="TRIAL.toml", help="Screening trial record (docs/clinical-workflow.md)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Assess each screening bolus (responder?, onset, peak, duration) and plan the next step.

    Protocol: 50, 75, then 100 mcg at least 24 h apart (25 mcg start with
    reduced_start = true); observe 4-8 h; no response to the last dose means
    not a candidate for a pump [C12][C13][C16].
    """
    protocol = parse_screening_protocol(load_data_table("screening"))
    record = parse_screening_record(read_toml_file(trial_file, field="TRIAL.toml"))
    report = evaluate_screening_record(protocol, record)
    if as_json:
        echo_json(_payload(report))
        return
    _show(report)


def _payload(report: ScreeningReport) -> dict[str, object]:
    step = report.next_step
    return {
        "criterion": report.criterion,
        "reduced_start": report.reduced_start,
        "boluses": [
            {
                "dose_mcg": b.dose_mcg,
                "given_at": b.given_at.isoformat(),
                "outcome": a.outcome if a else "pending",
                "baseline": dict(a.baseline) if a else {},
                "onset_h": a.onset_h if a else None,
                "peak_time_h": a.peak_time_h if a else None,
                "peak_drop": dict(a.peak_drop) if a else {},
                "last_response_h": a.last_response_h if a else None,
                "effect_duration_h": a.effect_duration_h if a else None,
                "still_effective_at_last_observation": (
                    a.still_effective_at_last_observation if a else False
                ),
                "observed_until_h": a.observed_until_h if a else None,
                "reasons": [reason_dict(r) for r in a.reasons] if a else [],
            }
            for b, a in report.boluses
        ],
        "next_step": {
            "kind": step.kind,
            "text": step.text,
            "dose_mcg": step.dose_mcg,
            "earliest_at": (
                report.next_dose_earliest_at.isoformat() if report.next_dose_earliest_at else None
            ),
            "reasons": [reason_dict(r) for r in step.reasons],
        },
        "disclaimer": DISCLAIMER,
    }


def _h(x: float | None) -> str:
    return "-" if x is None else f"{x:g} h"


def _show(report: ScreeningReport) -> None:
    out = console()
    table = Table(title=f"Screening boluses (criterion: {report.criterion})", expand=True)
    for col in ("#", "Dose", "Given at", "Outcome", "Onset", "Peak", "Last response", "Observed"):
        table.add_column(col)
    for i, (b, a) in enumerate(report.boluses, start=1):
        table.add_row(
            str(i),
            f"{b.dose_mcg:g} mcg",
            b.given_at.isoformat(sep=" ", timespec="minutes"),
            a.outcome if a else "pending",
            _h(a.onset_h if a else None),
            _h(a.peak_time_h if a else None),
            _h(a.last_response_h if a else None)
            + (" (still effective)" if a and a.still_effective_at_last_observation else ""),
            _h(a.observed_until_h if a else None),
        )
    out.print(table)
    reasons = [r for _, a in report.boluses if a for r in a.reasons]
    if reasons:
        out.print(reasons_table(reasons, title="Bolus assessments"))
    step = report.next_step
    lines = [
        f"[{_STEP_STYLE[step.kind]}]{step.kind.replace('_', ' ').upper()}[/]",
        escape(step.text),
    ]
    if report.next_dose_earliest_at:
        lines.append(
            f"earliest: {report.next_dose_earliest_at.isoformat(sep=' ', timespec='minutes')}"
        )
    lines += [f"[dim]{escape(r.source)}[/]" for r in step.reasons]
    out.print(Panel("\n".join(lines), title="Next step", expand=False))
    out.print(f"[dim]{DISCLAIMER}[/]")


def register(app: typer.Typer) -> None:
    """Add ``itb screening-trial`` to ``app``."""
    app.command("screening-trial")(screening_trial)
