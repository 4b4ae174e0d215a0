"""``itb demo``: the end-to-end demonstration (for now: the pump system).

A thin call into the services through ``itb.bootstrap``: runs the example pump
specs in examples/pump/, prints what to notice in each, and writes every run's
files under ``--out`` (default ./itb-demo-output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from itb import bootstrap
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.pump import DISCLAIMER, run_console

__all__ = ["demo", "register"]


def demo(
    out_dir: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Where the run files go (replaced each time)."),
    ] = Path("itb-demo-output"),
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples", metavar="DIR", help="Folder of pump specs (default: examples/pump)."
        ),
    ] = None,
) -> None:
    """Demonstrate the pump system end to end on the example pump specs (a few seconds)."""
    paths = (
        sorted(examples.glob("*.toml")) if examples is not None else bootstrap.example_pump_specs()
    )
    if not paths:
        raise InvalidValue(
            "--examples",
            str(examples or "examples/pump"),
            "a folder with pump spec files (*.toml)",
        )
    runs, written = bootstrap.run_pump_demo(paths, out_dir)
    out = run_console()
    out.print(
        Panel(
            "The implanted pump system, simulated exactly event by event: reservoir (calculated "
            "vs actual), catheter dead space, programs, alarms, battery, refills and faults.",
            title="itb demo",
            expand=False,
        )
    )
    for run in runs:
        body = [f"[dim]{run.description}[/]", ""] if run.description else []
        body += [f"• {h}" for h in run.highlights]
        body.append(f"[dim]spec: {run.spec_path}  files: {written / run.stem}[/]")
        out.print(Panel("\n".join(body), title=f"[bold]{run.title}[/]", title_align="left"))
    out.print(f"All files written to {written} (summary.md, and one folder per scenario).")
    out.print("Run one scenario yourself: itb pump run examples/pump/<name>.toml")
    out.print(f"[dim]{DISCLAIMER}[/]")


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the ``itb`` app."""
    app.command("demo")(demo)
