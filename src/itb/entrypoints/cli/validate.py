"""``itb validate``: run the virtual patient against every published target (T1-T23).

Each row is computed from the model (never copied): the typical patient through
the exact domain solution, cohort rows from a seeded population (documented seed
and sizes in ``itb/data/patient.toml`` ``[validation]``). ``--out DIR`` also writes
a self-contained HTML report with the dose-trajectory plot. Exit code 1 when any
row fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from itb import bootstrap
from itb.entrypoints.errors import EXIT_CHECK_FAILED
from itb.services.limits import MAX_SEED

if TYPE_CHECKING:
    from itb.services.catalog import Catalog
    from itb.simulation.validation import ValidationReport, ValidationRow

__all__ = ["MAX_VALIDATION_COHORT", "register", "run_validation", "validate"]

MAX_VALIDATION_COHORT = 200_000
"""The largest validation cohort, patients (the rows are stable at a few thousand; a larger
cohort only takes longer and more memory)."""


def run_validation(
    cat: Catalog,
    *,
    seed: int | None = None,
    pk_cohort_size: int | None = None,
    titration_cohort_size: int | None = None,
) -> ValidationReport:
    """:func:`itb.simulation.validation.run_validation` on the catalog's data, imported when
    a validation runs (numpy and scipy load then, not when the command line starts). T22
    runs on the cohort arms' default pump and refill rules."""
    from itb.services.cohort_trial import default_arm
    from itb.simulation import validation
    from itb.simulation.validation_long_term import LowResidualSetup

    arm = default_arm(cat, "validation")
    return validation.run_validation(
        cat.patient_table,
        cat.titration,
        cat.protocol.goal(),
        cat.library.hard_max_by_rule_group(),
        low_residual=LowResidualSetup(
            preset=cat.preset(arm.pump),
            strengths_mcg_per_ml=arm.concentrations_mcg_per_ml,
            min_refill_interval_days=arm.min_refill_interval_days,
        ),
        seed=seed,
        pk_cohort_size=pk_cohort_size,
        titration_cohort_size=titration_cohort_size,
    )


def _table(rows: list[ValidationRow]) -> Table:
    table = Table(
        title="Virtual patient validation (targets T1-T23, docs/patient-model.md)", show_lines=True
    )
    table.add_column("id", no_wrap=True)
    table.add_column("what")
    table.add_column("published")
    table.add_column("model")
    table.add_column("tolerance")
    table.add_column("use", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for r in rows:
        if r.informational:
            result = "[cyan]info[/cyan]"
        else:
            result = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
        table.add_row(r.id, r.what, r.published, r.model, r.tolerance, r.use, result)
    return table


def validate(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON list of {id, published, model, tolerance, passed, ...}.",
        ),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=MAX_SEED,
            help="Cohort seed (default: the documented seed in patient.toml).",
        ),
    ] = None,
    pk_cohort_size: Annotated[
        int | None,
        typer.Option(
            min=50, max=MAX_VALIDATION_COHORT, help="Patients for T1/T2 (default: patient.toml)."
        ),
    ] = None,
    titration_cohort_size: Annotated[
        int | None,
        typer.Option(
            min=50,
            max=MAX_VALIDATION_COHORT,
            help="Patients screened and titrated for T8b-T23 (default: patient.toml).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write validation.json, report.html (with the dose-trajectory plot) and "
            "plots/ into this directory (replaced if itb wrote it).",
        ),
    ] = None,
) -> None:
    """Compare the virtual patient with every published target; exit 1 if any row fails."""
    cat = bootstrap.catalog()
    target = None
    if out is not None:
        from itb.adapters.output_paths import check_output_dir

        target = check_output_dir(out, field="--out")
    report = run_validation(
        cat,
        seed=seed,
        pk_cohort_size=pk_cohort_size,
        titration_cohort_size=titration_cohort_size,
    )
    from itb.adapters.validation_output import report_json

    rows = report.rows
    if target is not None:
        from itb.adapters.validation_output import write_validation_output

        write_validation_output(report, target)
    if as_json:
        typer.echo(json.dumps(report_json(report), indent=2))
    else:
        console = Console(width=170)
        console.print(_table(rows))
        failed = [r.id for r in rows if not r.passed]
        console.print(
            f"[bold red]{len(failed)} row(s) failed: {', '.join(failed)}[/bold red]"
            if failed
            else f"[green]all {len(rows)} rows pass[/green]"
        )
        if target is not None:
            console.print(f"report: {target / 'report.html'}")
    if not report.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``itb validate`` to ``app``."""
    app.command("validate")(validate)
