"""``itb simulate``: years of ITB therapy for one patient from a scenario (docs/scenarios.md).

A thin call into the services through ``itb.bootstrap``: read and validate the
scenario (or a built-in one), run it with a progress bar on long runs, print a
Rich summary (or the metrics object with ``--json``) and, with ``--out``,
write metrics.json, timeline.csv, trajectories.csv, plots and report.html
atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from itb import bootstrap
from itb.adapters.output_paths import check_output_dir
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import SetOption

if TYPE_CHECKING:
    from itb.services.scenario import Scenario, ScenarioResult

__all__ = ["print_course", "progress_bar", "register", "simulate"]

_PROGRESS_MIN_DAYS = 365.0
"""Show a progress bar for scenarios at least this long (days)."""


def _console(stderr: bool = False) -> Console:
    out = Console(highlight=False, stderr=stderr)
    return out if out.is_terminal else Console(highlight=False, width=120, stderr=stderr)


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Callable[[float], None] | None]:
    """A Rich progress bar on stderr (transient); yields its update callback, or None."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f} %"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=1.0)

        def update(fraction: float) -> None:
            bar.update(task, completed=fraction)

        yield update


def _list(as_json: bool) -> None:
    rows = [(name, bootstrap.builtin_scenario(name)) for name in bootstrap.builtin_scenario_names()]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "scenarios": [
                        {
                            "name": n,
                            "title": s.name,
                            "horizon_days": s.horizon_days,
                            "description": s.description,
                        }
                        for n, s in rows
                    ]
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(title="Built-in scenarios (itb simulate --builtin NAME)", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("days", justify="right")
    table.add_column("what happens")
    for n, s in rows:
        table.add_row(n, f"{s.horizon_days:g}", escape(s.description or s.name))
    _console().print(table)


def print_course(result: ScenarioResult, written: Path | None, out: Console) -> None:
    """The Rich summary of a course."""
    from itb.services.scenario_summary import DISCLAIMER, METRIC_LABELS, format_metric, highlights

    body = "\n".join(f"• {escape(line)}" for line in highlights(result))
    out.print(Panel(body, title=f"[bold]{escape(result.name or 'Simulated course')}[/]"))
    table = Table(title="Metrics", title_justify="left", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value")
    for key, label in METRIC_LABELS.items():
        if key in result.metrics:
            table.add_row(label, escape(format_metric(result.metrics[key])))
    out.print(table)
    if written is not None:
        out.print(f"Report: {written / 'report.html'}  (files in {written})")
    out.print(f"[dim]{DISCLAIMER}[/]")


def simulate(
    scenario_path: Annotated[
        Path | None,
        typer.Argument(metavar="[SCENARIO.toml]", help="A scenario file (docs/scenarios.md)."),
    ] = None,
    builtin: Annotated[
        str | None,
        typer.Option("--builtin", metavar="NAME", help="Run a built-in scenario (see --list)."),
    ] = None,
    list_builtin: Annotated[
        bool, typer.Option("--list", help="List the built-in scenarios.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Write metrics.json, timeline.csv, trajectories.csv, plots/ and report.html "
            "(a new directory, or one itb wrote before: it is replaced).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics object as JSON.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Another seed for the scenario's random draws (the file's seed)."
        ),
    ] = None,
    sets: SetOption = None,
    print_toml: Annotated[
        bool,
        typer.Option(
            "--print", help="Print the scenario's TOML (to start one's own from) and stop."
        ),
    ] = False,
) -> None:
    """Simulate years of ITB therapy for one patient: pump, patient and clinic, end to end."""
    if list_builtin:
        _list(as_json)
        return
    changes = [*(sets or ()), *(() if seed is None else (f"seed={seed}",))]
    if seed is not None and not 0 <= seed < 2**63:
        raise InvalidValue("--seed", seed, "a whole number from 0 to 2**63 - 1")
    if (scenario_path is None) == (builtin is None):
        raise InvalidValue(
            "SCENARIO.toml / --builtin",
            str(scenario_path or builtin),
            "exactly one of a scenario file or --builtin NAME (or --list)",
        )
    if print_toml:
        if changes or out_dir is not None or as_json:
            raise InvalidValue(
                "--print",
                "with --set, --seed, --out or --json",
                "--print alone: it writes the scenario's file as it is, to edit",
            )
        if builtin is None:
            raise InvalidValue(
                "--print",
                str(scenario_path),
                "with --builtin NAME (a file of one's own is already there to read)",
            )
        text = bootstrap.builtin_scenario_text(builtin)
        typer.echo(text, nl=not text.endswith("\n"))
        return
    target = None if out_dir is None else check_output_dir(out_dir, field="--out")
    made: dict[str, Any] = {}
    scenario: Scenario = (
        bootstrap.load_scenario(scenario_path, sets=changes, record=made)
        if scenario_path is not None
        else bootstrap.builtin_scenario(str(builtin), sets=changes, record=made)
    )
    long_run = scenario.horizon_days >= _PROGRESS_MIN_DAYS
    with progress_bar(long_run, f"simulating {scenario.horizon_days:g} days") as progress:
        result = bootstrap.run_scenario_course(scenario, progress=progress)
    result = replace(result, metrics={**result.metrics, "provenance": made})
    written = bootstrap.write_course_report(result, target) if target is not None else None
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2, ensure_ascii=False))
        return
    print_course(result, written, _console())


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the ``itb`` app."""
    app.command("simulate")(simulate)
