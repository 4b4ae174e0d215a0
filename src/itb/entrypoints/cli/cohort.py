"""``itb cohort TRIAL.toml --out DIR``: a virtual trial of many patients (docs/cohort-trials.md)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from itb import bootstrap
from itb.adapters.output_paths import check_output_dir
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import SetOption, flags
from itb.services.limits import MAX_PATIENTS

__all__ = ["cohort", "register"]

DISCLAIMER = "Simulation and decision support only: not a medical device, not clinical advice."


def cohort(
    trial_file: Annotated[
        Path,
        typer.Argument(metavar="TRIAL.toml", help="Trial file (docs/cohort-trials.md)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output directory (replaced if itb wrote it).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Patients per chunk (bounds memory).")
    ] = 5000,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Run on a local dask cluster of N worker processes."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Run on the dask cluster at this scheduler address."),
    ] = None,
    patients: Annotated[
        int | None, typer.Option("--patients", help="Patients per arm (the file's trial.patients).")
    ] = None,
    years: Annotated[
        float | None,
        typer.Option("--years", help="Years followed (the file's trial.horizon_years)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Another seed (the file's trial.seed).")
    ] = None,
    sets: SetOption = None,
) -> None:
    """Simulate a virtual trial: the same patients under two or more policies (arms).

    Writes summary.json, summary.md, arms.csv and PNG plots into --out. The
    result depends on the trial file and its seed only: not on --chunk-size,
    --workers or --scheduler. --workers is at most the number of CPUs; an
    unreachable --scheduler is refused within seconds.
    """
    if workers is not None and scheduler is not None:
        raise InvalidValue("--workers", workers, "either --workers or --scheduler, not both")
    if not 1 <= chunk_size <= MAX_PATIENTS:
        raise InvalidValue("--chunk-size", chunk_size, f"a whole number from 1 to {MAX_PATIENTS:,}")
    cpus = os.cpu_count() or 1
    if workers is not None and not 1 <= workers <= cpus:
        raise InvalidValue(
            "--workers", workers, f"a whole number from 1 to {cpus} (the CPUs of this machine)"
        )
    target = check_output_dir(out, field="--out")
    named = {"--patients": ("trial.patients", patients), "--years": ("trial.horizon_years", years),
             "--seed": ("trial.seed", seed)}  # fmt: skip
    changes = list(sets or ())
    made: dict[str, Any] = {}
    for flag, (path, value) in named.items():
        if value is not None:
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidValue(flag, value, "a finite number")
            changes.append(f"{path}={value}")
    try:
        spec = bootstrap.load_cohort_trial(trial_file, sets=changes, record=made)
    except InvalidValue as exc:  # a value given by its own flag is named by it
        for flag, (path, value) in named.items():
            if value is not None and exc.field in (path, f"--set {path}"):
                raise exc.renamed(flag) from None
        raise
    if scheduler is not None:
        from itb.simulation.cohort_runner import check_scheduler

        with flags(scheduler="--scheduler"):
            check_scheduler(scheduler)
    err = Console(stderr=True, highlight=False)
    started = time.perf_counter()
    with (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress,
        flags(chunk_size="--chunk-size", workers="--workers", scheduler="--scheduler"),
    ):
        task = progress.add_task(f"{spec.name}: patients", total=spec.patients)
        summary = bootstrap.run_cohort_trial(
            spec,
            chunk_size=chunk_size,
            workers=workers,
            scheduler=scheduler,
            on_progress=lambda n: progress.advance(task, n),
        )
    wall = time.perf_counter() - started
    summary["wall_time_s"] = round(wall, 3)
    summary["provenance"] = made
    summary["execution"] = {
        "chunk_size": chunk_size,
        "workers": workers,
        "scheduler": scheduler,
    }
    written = bootstrap.write_cohort_trial(summary, target)
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    _show(summary, written, wall)


def _show(summary: dict[str, Any], written: Path, wall: float) -> None:
    from itb.adapters.cohort_output import summary_rows

    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)
    out.print(f"[bold]{summary['trial']}[/]  {DISCLAIMER}")
    out.print(
        f"{summary['cohort_size']:,} screened, {summary['patients_implanted']:,} implanted; "
        f"{summary['horizon_years']:.3g} years; seed {summary['seed']}; {wall:.1f} s"
    )
    t = Table(title="Per arm (95 % confidence intervals)", title_justify="left")
    t.add_column("statistic", style="bold")
    for arm in summary["arms"]:
        t.add_column(arm["name"], justify="right")
    for label, cells in summary_rows(summary):
        t.add_row(label, *cells)
    out.print(t)
    out.print(f"written: {written}")


def register(app: typer.Typer) -> None:
    """Add ``itb cohort`` to the app."""
    app.command("cohort")(cohort)
