"""``itb validate``: run the virtual patient against every published target (T1-T16).

Each row is computed from the model (never copied): the typical patient through
the exact domain solution, cohort rows from a seeded population (documented seed
and sizes in ``itb/data/patient.toml`` ``[validation]``). Exit code 1 when any
row fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from itb import bootstrap
from itb.entrypoints.errors import EXIT_CHECK_FAILED
from itb.services.limits import MAX_SEED

if TYPE_CHECKING:
    from itb.domain.clinical.care import TreatmentGoal
    from itb.domain.clinical.titration import TitrationRules
    from itb.simulation.validation import ValidationRow

__all__ = ["MAX_VALIDATION_COHORT", "register", "run_validation", "validate"]

MAX_VALIDATION_COHORT = 200_000
"""The largest validation cohort, patients (the rows are stable at a few thousand; a larger
cohort only takes longer and more memory)."""


def run_validation(
    patient_table: Mapping[str, Any],
    rules: TitrationRules,
    goal: TreatmentGoal,
    dose_hard_max_mcg_per_day: Mapping[str, float],
    *,
    seed: int | None = None,
    pk_cohort_size: int | None = None,
    titration_cohort_size: int | None = None,
) -> list[ValidationRow]:
    """:func:`itb.simulation.validation.run_validation`, imported when a validation runs
    (numpy and scipy load then, not when the command line starts)."""
    from itb.simulation import validation

    return validation.run_validation(
        patient_table,
        rules,
        goal,
        dose_hard_max_mcg_per_day,
        seed=seed,
        pk_cohort_size=pk_cohort_size,
        titration_cohort_size=titration_cohort_size,
    )


def _table(rows: list[ValidationRow]) -> Table:
    table = Table(
        title="Virtual patient validation (targets T1-T16, docs/patient-model.md)", show_lines=True
    )
    table.add_column("id", no_wrap=True)
    table.add_column("what")
    table.add_column("published")
    table.add_column("model")
    table.add_column("tolerance")
    table.add_column("result", no_wrap=True)
    for r in rows:
        if r.informational:
            result = "[cyan]info[/cyan]"
        else:
            result = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
        table.add_row(r.id, r.what, r.published, r.model, r.tolerance, result)
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
            help="Patients screened and titrated for T8b-T16 (default: patient.toml).",
        ),
    ] = None,
) -> None:
    """Compare the virtual patient with every published target; exit 1 if any row fails."""
    cat = bootstrap.catalog()
    rows = run_validation(
        cat.patient_table,
        cat.titration,
        cat.protocol.goal(),
        cat.library.hard_max_by_rule_group(),
        seed=seed,
        pk_cohort_size=pk_cohort_size,
        titration_cohort_size=titration_cohort_size,
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "passed": all(r.passed for r in rows),
                    "failed": [r.id for r in rows if not r.passed],
                    "rows": [r.as_dict() for r in rows],
                },
                indent=2,
            )
        )
    else:
        console = Console(width=160)
        console.print(_table(rows))
        failed = [r.id for r in rows if not r.passed]
        console.print(
            f"[bold red]{len(failed)} row(s) failed: {', '.join(failed)}[/bold red]"
            if failed
            else f"[green]all {len(rows)} rows pass[/green]"
        )
    if not all(r.passed for r in rows):
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``itb validate`` to ``app``."""
    app.command("validate")(validate)
