"""``itb pump``: run a pump spec (docs/pump-spec.md) and list the pump presets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from itb import bootstrap
from itb.adapters.output_paths import check_output_dir
from itb.domain.pump import PumpPreset
from itb.entrypoints.cli.clinical_common import SetOption, flags

if TYPE_CHECKING:
    from itb.services.pump_run import PumpRunResult

__all__ = ["print_run", "pump_app", "register", "run_console"]

DISCLAIMER = "Simulation and decision support only: not a medical device, not clinical advice."

pump_app = typer.Typer(
    name="pump",
    help="The implanted pump system: run a pump spec, list the pump presets.",
    no_args_is_help=True,
)


def run_console() -> Console:
    """A console for people; wide enough for the tables when output is not a terminal."""
    out = Console(highlight=False)
    return out if out.is_terminal else Console(highlight=False, width=130)


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _state_table(r: PumpRunResult) -> Table:
    fin = r.final
    b = r.battery
    t = Table(title="Final state", show_header=False, title_justify="left")
    t.add_column("quantity", style="bold")
    t.add_column("value")
    rows: list[tuple[str, str]] = [
        ("pump", f"{r.preset_label} [{r.preset}]"),
        ("implanted → end", f"{r.implanted_at} → {r.ended_at} ({r.days:g} days, {r.timezone})"),
        ("reservoir, calculated (pump's belief)", f"{r.reservoir_calculated_ml:.3f} mL"),
        ("reservoir, actual", f"{r.reservoir_actual_ml:.3f} mL"),
        ("concentration in reservoir", f"{fin['reservoir_concentration_mcg_per_ml']:g} mcg/mL"),
        ("delivered to CSF", f"{r.delivered_mcg:,.1f} mcg"),
        ("prescription", str(fin["prescription"])),
        ("running", "yes" if fin["running"] else f"NO — {fin['stop_reason']}"),
        ("active alarms", ", ".join(fin["active_alarms"]) or "none"),
        ("battery used (to ERI)", f"{100 * b.used_fraction:.1f} %"),
        (
            "ERI reached / predicted at implant",
            f"{b.eri_time or '—'} / {b.predicted_eri_time or '—'}",
        ),
        (
            "EOS reached / predicted at implant",
            f"{b.eos_time or '—'} / {b.predicted_eos_time or '—'}",
        ),
        ("drug balance error", f"{r.drug_balance.error_mcg:.2e} mcg"),
    ]
    if fin["faults"]:
        rows.append(("faults", ", ".join(fin["faults"])))
    for k, v in rows:
        t.add_row(k, v)
    return t


def _balance_table(r: PumpRunResult) -> Table:
    d = r.drug_balance
    t = Table(title="Drug balance since implant (mcg)", title_justify="left")
    t.add_column("in")
    t.add_column("mcg", justify="right")
    t.add_column("out / still held")
    t.add_column("mcg", justify="right")
    t.add_row(
        "filled into reservoir", _f(d.filled_mcg, 1), "delivered to CSF", _f(d.delivered_csf_mcg, 1)
    )
    t.add_row(
        "pocket fill",
        _f(d.pocket_mcg, 1),
        "lost to tissue/pocket",
        _f(d.lost_tissue_mcg + d.pocket_mcg, 1),
    )
    t.add_row(
        "catheter access port",
        _f(d.access_port_mcg, 1),
        "withdrawn at refills",
        _f(d.withdrawn_mcg, 1),
    )
    t.add_row("", "", "in reservoir", _f(d.in_reservoir_mcg, 1))
    t.add_row("", "", "in pump path + catheter", _f(d.in_dead_space_mcg, 1))
    return t


def _refills_table(r: PumpRunResult) -> Table:
    t = Table(title="Refills", title_justify="left")
    for col in (
        "time",
        "expected mL",
        "withdrawn mL",
        "diff mL",
        "verdict",
        "fill",
        "next low-reservoir alarm",
    ):
        t.add_column(col, justify="right" if "mL" in col else "left")
    for x in r.refills:
        style = "" if x.verdict == "within tolerance" else "bold red"
        t.add_row(
            x.time,
            f"{x.expected_ml:.2f}",
            f"{x.withdrawn_ml:.2f}",
            f"{x.difference_ml:+.2f}",
            f"[{style}]{x.verdict}[/]" if style else x.verdict,
            f"{x.fill_volume_ml:g} mL @ {x.concentration_mcg_per_ml:g}",
            x.low_reservoir_alarm_time or "—",
        )
    return t


def _alarms_table(r: PumpRunResult) -> Table:
    t = Table(title="Alarms", title_justify="left")
    for col in ("time", "alarm", "tone", "action"):
        t.add_column(col)
    for a in r.alarms:
        tone = "[bold red]critical (two-tone)[/]" if a.critical else "non-critical"
        t.add_row(a.time, a.kind, tone, a.action)
    return t


def _gaps_table(r: PumpRunResult) -> Table:
    t = Table(title="No drug reaching the CSF (≥ 1 h)", title_justify="left")
    for col in ("from", "to", "hours"):
        t.add_column(col, justify="right" if col == "hours" else "left")
    for g in r.no_delivery:
        t.add_row(g.start, g.end, f"{g.duration_h:.1f}")
    return t


def _boluses_table(r: PumpRunResult) -> Table:
    t = Table(title="Patient bolus requests", title_justify="left")
    for col in ("time", "accepted", "reason"):
        t.add_column(col)
    for p in r.patient_boluses:
        t.add_row(p.time, "yes" if p.accepted else "no", p.reason)
    return t


def _events_table(r: PumpRunResult) -> Table:
    t = Table(title="Pump event log", title_justify="left")
    for col in ("time", "event", "detail", "reason"):
        t.add_column(col)
    for e in r.events:
        hazard = "HAZARD" in e.detail
        detail = f"[bold red]{e.detail}[/]" if hazard else e.detail
        t.add_row(e.time, e.kind, detail, e.reason)
    return t


def print_run(out: Console, r: PumpRunResult, *, show_log: bool = True) -> None:
    """Print a run for people: state, balance, refills, alarms, gaps, event log."""
    if r.name:
        out.print(f"[bold]{r.name}[/]")
    out.print(_state_table(r))
    out.print(_balance_table(r))
    if r.refills:
        out.print(_refills_table(r))
    out.print(_alarms_table(r) if r.alarms else "Alarms: none")
    if r.no_delivery:
        out.print(_gaps_table(r))
    if r.patient_boluses:
        out.print(_boluses_table(r))
    if show_log:
        out.print(_events_table(r))
    for w in r.warnings:
        out.print(f"[yellow]warning:[/] {w}")


@pump_app.command("run")
def run(
    spec_file: Annotated[
        Path, typer.Argument(metavar="SPEC.toml", help="Pump-run spec (docs/pump-spec.md).")
    ],
    days: Annotated[
        float | None,
        typer.Option("--days", help="Days to run from the implant (default: the spec's days)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of tables.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Also write summary.json and CSV files to DIR (written atomically).",
        ),
    ] = None,
    show_log: Annotated[
        bool, typer.Option("--log/--no-log", help="Show the pump's event log table.")
    ] = True,
    sets: SetOption = None,
) -> None:
    """Run a pump spec for N days: final state, alarms and the pump's event log (a pump
    run has no random draws, so no seed; --set changes any value of the spec).

    The whole spec is validated before anything runs; bad input gives one line on
    stderr and exit code 2, and no output files.
    """
    target = None if out_dir is None else check_output_dir(out_dir, field="--out")
    made: dict[str, Any] = {}
    spec = bootstrap.load_pump_spec(spec_file, sets=sets or (), record=made)
    with flags(days="--days"):
        result = bootstrap.run_pump_spec(spec, days)
    written = None if target is None else bootstrap.write_pump_run(result, target, provenance=made)
    if as_json:
        from itb.services.pump_run import result_to_dict

        payload = {**result_to_dict(result), "provenance": made}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    out = run_console()
    print_run(out, result, show_log=show_log)
    if written is not None:
        out.print(f"files written to {written}")
    out.print(f"[dim]{DISCLAIMER}[/]")


def _preset_rows(preset: PumpPreset) -> list[dict[str, Any]]:
    return [
        {
            "preset": preset.key,
            "name": name,
            "value": s.value,
            "unit": s.unit,
            "status": s.status,
            "source": s.source,
            "note": s.note,
        }
        for name, s in preset.sources.items()
    ]


@pump_app.command("presets")
def presets(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the pump presets: every number with its unit, status (confirmed/assumed) and source."""
    all_presets = bootstrap.catalog().presets
    if as_json:
        payload = {
            key: {
                "label": p.label,
                "kind": p.kind.value,
                "numbers": _preset_rows(p),
            }
            for key, p in all_presets.items()
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    out = run_console()
    for key, p in all_presets.items():
        out.print(_presets_table(key, p, _preset_rows(p)))
    out.print(
        "[dim]assumed = no primary source confirms the number: a modelling placeholder.[/]\n"
        f"[dim]{DISCLAIMER}[/]"
    )


def _presets_table(key: str, p: PumpPreset, rows: Sequence[dict[str, Any]]) -> Table:
    t = Table(title=f"{key}: {p.label} ({p.kind.value})", title_justify="left")
    t.add_column("number")
    t.add_column("value", justify="right")
    t.add_column("unit")
    t.add_column("status")
    t.add_column("source")
    for row in rows:
        status = row["status"] if row["status"] == "confirmed" else f"[yellow]{row['status']}[/]"
        t.add_row(row["name"], f"{row['value']:g}", row["unit"], status, row["source"])
    return t


def register(app: typer.Typer) -> None:
    """Add the ``pump`` command group to the ``itb`` app."""
    app.add_typer(pump_app, name="pump")
