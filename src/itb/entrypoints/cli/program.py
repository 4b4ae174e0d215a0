"""``itb program check``: stage a dose change on a pump spec's pump and show the safety checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from itb import bootstrap
from itb.domain.clinical.safety import Finding
from itb.domain.pump import ChangeRow
from itb.entrypoints.cli.clinical_common import DISCLAIMER, console, echo_json, flags
from itb.entrypoints.errors import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from itb.services.safety_review import ProgramCheck

__all__ = ["audit", "check", "program_app", "register"]

program_app = typer.Typer(
    name="program",
    help="Programming: check a staged change against the safety rules before it is committed.",
    no_args_is_help=True,
)

_STYLE = {"block": "bold red", "warn": "yellow", "info": "cyan"}


def _findings_table(findings: Sequence[Finding]) -> Table:
    t = Table(title="Safety findings", expand=True, title_justify="left")
    t.add_column("Severity", no_wrap=True)
    t.add_column("Rule", no_wrap=True)
    t.add_column("Finding", ratio=3)
    t.add_column("Source", ratio=2)
    for f in findings:
        mark = " (reason needed)" if f.needs_override_reason else ""
        status = "" if f.status == "confirmed" else " (assumed)"
        t.add_row(
            f"[{_STYLE[f.severity]}]{f.severity}[/]{mark}",
            escape(f.code),
            escape(f.message),
            escape(f.source + status),
        )
    return t


def _review_table(rows: Sequence[ChangeRow]) -> Table:
    t = Table(title="Review: old and new side by side", expand=True, title_justify="left")
    for col in ("Field", "Old", "New", "Reason"):
        t.add_column(col)
    for r in rows:
        t.add_row(escape(r.field), escape(r.old), escape(r.new), escape(r.reason))
    return t


def check_payload(result: ProgramCheck) -> dict[str, Any]:
    """The check as one JSON object (machines)."""
    review = result.review
    return {
        "name": result.name,
        "preset": result.preset,
        "preset_label": result.preset_label,
        "at": result.at,
        "population": result.population,
        "current": asdict(result.current),
        "proposed": asdict(result.proposed),
        "blocked": result.blocked,
        "needs_override_reason": review.needs_override_reason,
        "verification_required": review.verification_required,
        "findings": [asdict(f) for f in review.findings],
        "verification": [asdict(r) for r in review.verification],
        "review": [asdict(r) for r in result.rows],
        "notes": list(result.notes),
    }


@program_app.command("check")
def check(
    spec_file: Annotated[
        Path, typer.Argument(metavar="SPEC.toml", help="Pump spec (docs/pump-spec.md).")
    ],
    dose_mcg_per_day: Annotated[
        float,
        typer.Option("--dose-mcg-per-day", metavar="D", help="The intended daily dose, mcg/day."),
    ],
    flex_step: Annotated[
        list[str] | None,
        typer.Option(
            "--flex-step",
            metavar="HH:MM=RATE",
            help="A flex step from HH:MM at RATE mcg/h, every day (repeat); checked against D.",
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="spinal or cerebral (drug-library population; default: the spec's [patient], "
            "else spinal).",
        ),
    ] = None,
    age_years: Annotated[
        float | None, typer.Option("--age-years", metavar="A", help="Age; under 12 = child.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="DATE",
            help="The pump as it stands at this local date (default: implant).",
        ),
    ] = None,
    concentration: Annotated[
        float | None,
        typer.Option(
            "--concentration",
            metavar="C",
            help="Program this concentration (default: the drug held).",
        ),
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option("--override-reason", help="Recorded reason for passing soft limits."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Stage the change on the spec's pump; print the findings and the old/new review."""
    from itb.services.pump_at import parse_when
    from itb.services.safety_review import parse_flex_step, program_check

    spec = bootstrap.load_pump_spec(spec_file)
    with flags(
        dose_mcg_per_day="--dose-mcg-per-day",
        flex_step="--flex-step",
        origin="--origin",
        age_years="--age-years",
        at="--at",
        concentration_mcg_per_ml="--concentration",
    ):
        steps = [parse_flex_step(s) for s in flex_step or []]
        result = program_check(
            spec,
            bootstrap.catalog(),
            dose_mcg_per_day=dose_mcg_per_day,
            flex_steps=steps,
            origin=origin,
            age_years=age_years,
            at=None if at is None else parse_when(at, field="at"),
            concentration_mcg_per_ml=concentration,
            override_reason=override_reason,
        )
    review = result.review
    if as_json:
        echo_json(check_payload(result))
    else:
        out = console()
        out.print(
            f"[bold]{escape(result.preset_label)}[/] at {result.at} — population "
            f"{result.population}"
        )
        out.print(_review_table(result.rows))
        if review.findings:
            out.print(_findings_table(review.findings))
        else:
            out.print("[green]No safety findings.[/]")
        if result.blocked:
            out.print("[bold red]BLOCKED:[/] this change cannot be committed.")
        if review.needs_override_reason:
            out.print("[yellow]An override reason must be recorded to commit.[/]")
        if review.verification_required:
            out.print("[yellow]A second person must verify before commit:[/]")
            for r in review.verification:
                out.print(f"  - {escape(r.text)} [dim]({escape(r.source)})[/]")
        for note in result.notes:
            out.print(f"[dim]note: {escape(note)}[/]")
        out.print(f"[dim]{DISCLAIMER}[/]")
    if result.blocked or (review.needs_override_reason and not override_reason):
        raise typer.Exit(EXIT_CHECK_FAILED)


@program_app.command("audit")
def audit(
    spec_file: Annotated[
        Path, typer.Argument(metavar="SPEC.toml", help="Pump spec (docs/pump-spec.md).")
    ],
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="spinal or cerebral (drug-library population; default: the spec's [patient], "
            "else spinal).",
        ),
    ] = None,
    age_years: Annotated[
        float | None, typer.Option("--age-years", metavar="A", help="Age; under 12 = child.")
    ] = None,
    days: Annotated[
        float | None, typer.Option("--days", help="Days from the implant (default: the spec's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check every reprogramming in a spec against the pump as it stood just before it."""
    from itb.services.safety_review import audit_spec

    spec = bootstrap.load_pump_spec(spec_file)
    with flags(origin="--origin", age_years="--age-years", days="--days"):
        result = audit_spec(
            spec, bootstrap.catalog(), origin=origin, age_years=age_years, days=days
        )
    if as_json:
        echo_json(
            {
                "name": result.name,
                "population": result.population,
                "checked_events": [
                    {
                        "time": r.time,
                        "event": r.event,
                        "kind": r.kind,
                        "findings": [asdict(f) for f in r.findings],
                        "blocked": r.blocked,
                    }
                    for r in result.rows
                ],
                "blocked_events": result.blocked_events,
                "notes": list(result.notes),
            }
        )
    else:
        out = console()
        t = Table(title=f"Safety audit: {escape(result.name)}", expand=True, title_justify="left")
        for col in ("Time", "Event", "Severity", "Rule", "Finding"):
            t.add_column(col, ratio=3 if col == "Finding" else None)
        for row in result.rows:
            where = f"{'' if row.event is None else row.event} {row.kind}"
            if not row.findings:
                t.add_row(row.time, where, "[green]ok[/]", "", "")
            for f in row.findings:
                t.add_row(
                    row.time,
                    where,
                    f"[{_STYLE[f.severity]}]{f.severity}[/]",
                    escape(f.code),
                    escape(f.message),
                )
        out.print(t)
        out.print(f"{result.blocked_events} event(s) would have been blocked.")
        for note in result.notes:
            out.print(f"[dim]note: {escape(note)}[/]")
        out.print(f"[dim]{DISCLAIMER}[/]")
    if result.blocked_events:
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``itb program`` to the app."""
    app.add_typer(program_app)
