"""``itb demo``: the end-to-end demonstration.

By default it runs the flagship scenario — seven years of ITB therapy for one
virtual patient, from the screening trial to the pump's battery replacement
(``itb/data/scenarios/seven_years_end_to_end.toml``) — writes its report
(report.html, metrics, timeline, trajectories, plots) under ``--out`` and
prints the story and where the report is.

``--pump-examples`` runs the earlier demonstration instead: the example pump
specs in examples/pump/, with what to notice in each.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel

from itb import bootstrap
from itb.adapters.output_paths import check_output_dir
from itb.domain.errors import InvalidValue, ITBError
from itb.domain.units import DAYS_PER_YEAR
from itb.entrypoints.cli.pump import DISCLAIMER, run_console
from itb.entrypoints.cli.simulate import print_course, progress_bar

__all__ = ["FLAGSHIP", "demo", "register"]

FLAGSHIP = "seven_years_end_to_end"
"""The built-in scenario ``itb demo`` runs."""
CLINIC_PATIENTS = 24
"""The virtual clinic ``itb demo`` serves: enough pumps for a radar with something on it,
built in about a minute."""
CLINIC_SEED = 2026


def _spec_paths(examples: Path | None) -> list[Path]:
    if examples is None:
        return bootstrap.example_pump_specs()
    allowed = "a folder with pump spec files (*.toml)"
    try:
        if not examples.is_dir():
            raise InvalidValue("--examples", str(examples), allowed)
        paths = sorted(examples.glob("*.toml"))
    except OSError as exc:
        raise InvalidValue("--examples", str(examples), f"{allowed} ({exc.strerror})") from None
    if not paths:
        raise InvalidValue("--examples", str(examples), allowed)
    return paths


def _pump_examples(out_dir: Path, examples: Path | None) -> None:
    paths = _spec_paths(examples)
    for path in paths:  # every spec read and checked first, each error naming its file
        try:
            bootstrap.run_pump_spec(bootstrap.load_pump_spec(path, field="--examples"), 1.0)
        except ITBError as exc:
            raise exc.within(f"{path.name} (--examples)") from None
    runs, written = bootstrap.run_pump_demo(paths, out_dir)
    out = run_console()
    out.print(
        Panel(
            "The implanted pump system, simulated exactly event by event: reservoir (calculated "
            "vs actual), catheter dead space, programs, alarms, battery, refills and faults.",
            title="itb demo --pump-examples",
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


def demo(
    out_dir: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Where the files go (replaced each time)."),
    ] = Path("itb-demo-output"),
    pump_examples: Annotated[
        bool,
        typer.Option("--pump-examples", help="Run the example pump specs (examples/pump) instead."),
    ] = False,
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples",
            metavar="DIR",
            help="With --pump-examples: a folder of pump specs (default: examples/pump).",
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Then build a virtual clinic and serve its dashboard on 127.0.0.1 "
            "(--no-serve: stop after the report, for scripts).",
        ),
    ] = True,
    port: Annotated[
        int,
        typer.Option(
            "--port", min=1, max=65535, help="The dashboard's port (a free one if it is taken)."
        ),
    ] = 8000,
    clinic_patients: Annotated[
        int,
        typer.Option("--clinic-patients", min=1, max=500, help="Patients in the virtual clinic."),
    ] = CLINIC_PATIENTS,
) -> None:
    """Seven years of ITB therapy for one patient, end to end, with a report for a clinician;
    then a virtual clinic's dashboard on 127.0.0.1 (--no-serve: stop after the report)."""
    target = check_output_dir(out_dir, field="--out")
    if pump_examples or examples is not None:
        _pump_examples(target, examples)
        return
    made: dict[str, Any] = {}
    scenario = bootstrap.builtin_scenario(FLAGSHIP, record=made)
    out = run_console()
    out.print(
        Panel(
            "One virtual patient, years of therapy: screening trial, implant and label "
            "titration, refills and check-ups as tolerance develops, concentration changes, a "
            "late refill, an MRI, a catheter kink, and the pump replaced before its battery "
            "runs out — pump, patient and clinic simulated together, exactly between events.",
            title="itb demo",
            expand=False,
        )
    )
    with progress_bar(
        True, f"simulating {scenario.horizon_days / DAYS_PER_YEAR:.0f} years"
    ) as progress:
        result = bootstrap.run_scenario_course(scenario, progress=progress)
    result = replace(result, metrics={**result.metrics, "provenance": made})
    written = bootstrap.write_course_report(result, target)
    print_course(result, written, out)
    out.print(f"[bold]Open the report:[/] {(written / 'report.html').as_uri()}")
    out.print(
        "More: itb simulate --list (the scenario library), itb simulate --builtin NAME --out DIR, "
        "itb demo --pump-examples (the pump system on its own)."
    )
    if serve:
        _serve_clinic(target, port, clinic_patients)


def _free(port: int) -> int:
    """``port`` if nothing listens on it on 127.0.0.1, else a free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            probe.bind(("127.0.0.1", 0))
            free: int = probe.getsockname()[1]
            return free


def _serve_clinic(target: Path, port: int, patients: int) -> None:
    """Build a virtual clinic next to the report and serve its dashboard until Ctrl-C."""
    from rich.table import Table

    from itb.entrypoints.cli.clinic import build_virtual_clinic
    from itb.entrypoints.cli.serve import run_server
    from itb.entrypoints.web import create_app

    out = run_console()
    db = target / "clinic.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    out.print(f"Building a virtual clinic of {patients} patients with years of history ...")
    clinic = build_virtual_clinic(url, patients, CLINIC_SEED, datetime.now(UTC).date(), quiet=False)
    app = create_app(url)
    chosen = _free(port)
    users = Table(title="Sign in with (virtual clinic only: never reuse these passwords)")
    for col in ("user", "role", "password", "patient"):
        users.add_column(col)
    for u in clinic.users:
        users.add_row(u.username, u.role, u.password, u.patient_id or "")
    out.print(users)
    if chosen != port:
        out.print(f"Port {port} is taken; using {chosen}.")
    out.print(
        f"[bold]The clinic dashboard:[/] http://127.0.0.1:{chosen}/  "
        f"({clinic.implanted} pumps on the refill radar; registry {db}). Ctrl-C to stop."
    )
    run_server(app, url, host="127.0.0.1", port=chosen)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the ``itb`` app."""
    app.command("demo")(demo)
