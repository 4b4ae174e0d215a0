"""``itb library``: show the drug library and check a dose or bolus against it."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from itb import bootstrap
from itb.domain.clinical.drug_library import (
    DrugLibrary,
    LibraryDecision,
    check_bolus_against_library,
    check_dose_against_library,
)
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import DISCLAIMER, console, echo_json, flags

__all__ = ["check", "library_app", "register", "show"]

library_app = typer.Typer(
    name="library",
    help="The drug library: soft and hard limits for intrathecal baclofen, with sources.",
    no_args_is_help=True,
)


def _library() -> DrugLibrary:
    return bootstrap.catalog().library


@library_app.command("show")
def show(
    population: Annotated[
        str | None, typer.Option("--population", help="Only this population.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show every limit with its unit, status and source."""
    lib = _library()
    with flags(population="--population"):
        pops = (
            [lib.limits(population)] if population is not None else list(lib.populations.values())
        )
    if as_json:
        echo_json(
            {
                "populations": {
                    p.key: {
                        "label": p.label,
                        "limits": {
                            name: getattr(p, name)
                            for name in type(p).__slots__
                            if name not in ("key", "label")
                        },
                    }
                    for p in pops
                },
                "concentrations": [
                    {
                        "concentration_mcg_per_ml": c.concentration_mcg_per_ml,
                        "use": c.use,
                        "pump_kinds": list(c.pump_kinds),
                        "source": c.concentration.source,
                        "status": c.concentration.status,
                    }
                    for c in lib.concentrations
                ],
                "pump_kinds": lib.pump_kinds,
            }
        )
        return
    out = console()
    for p in pops:
        table = Table(title=f"{p.key}: {p.label}", expand=True)
        table.add_column("Limit", no_wrap=True)
        table.add_column("Value", justify="right", no_wrap=True)
        table.add_column("Status")
        table.add_column("Source")
        for name in type(p).__slots__:
            if name in ("key", "label"):
                continue
            s = getattr(p, name)
            table.add_row(name, f"{s.value:g} {s.unit}", s.status, escape(s.source))
        out.print(table)
    conc = Table(title="Concentrations", expand=True)
    conc.add_column("mcg/mL", justify="right")
    conc.add_column("Use")
    conc.add_column("Pump kinds")
    conc.add_column("Source")
    for c in lib.concentrations:
        conc.add_row(
            f"{c.concentration_mcg_per_ml:g}",
            c.use,
            ", ".join(c.pump_kinds) or "none (screening bolus only)",
            escape(c.concentration.source),
        )
    out.print(conc)
    out.print(f"[dim]{DISCLAIMER}[/]")


@library_app.command("check")
def check(
    population: Annotated[
        str, typer.Option("--population", help="adult_spinal, adult_cerebral or child.")
    ],
    concentration: Annotated[
        str, typer.Option("--concentration", help="Drug concentration, mcg/mL.")
    ],
    pump_kind: Annotated[
        str | None,
        typer.Option(
            "--pump-kind",
            help="peristaltic, valve or constant_flow (leave out for a screening bolus).",
        ),
    ] = None,
    dose: Annotated[str | None, typer.Option("--dose", help="New daily dose, mcg/day.")] = None,
    previous_dose: Annotated[
        str | None, typer.Option("--previous-dose", help="Daily dose being replaced, mcg/day.")
    ] = None,
    bolus: Annotated[str | None, typer.Option("--bolus", help="Single bolus, mcg.")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Reason for passing a soft limit (recorded).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check a daily dose (--dose) or a bolus (--bolus) against the library.

    A soft limit needs --reason; a hard limit cannot be passed (exit code 2).
    """
    lib = _library()
    conc = _number("--concentration", concentration)
    dose_v, prev_v, bolus_v = (
        _opt_number(n, v)
        for n, v in (("--dose", dose), ("--previous-dose", previous_dose), ("--bolus", bolus))
    )
    if (dose_v is None) == (bolus_v is None):
        raise InvalidValue(
            "--dose/--bolus", "both" if dose_v is not None else "neither", "exactly one"
        )
    with flags(
        population="--population",
        concentration_mcg_per_ml="--concentration",
        pump_kind="--pump-kind",
        dose_mcg_per_day="--dose",
        previous_dose_mcg_per_day="--previous-dose",
        bolus_mcg="--bolus",
    ):
        limits = lib.limits(population)
        if prev_v is not None and prev_v > limits.daily_dose_hard_max_mcg_per_day.value:
            raise InvalidValue(
                "--previous-dose",
                prev_v,
                f"> 0 and <= {limits.daily_dose_hard_max_mcg_per_day.value:g} mcg/day (the hard "
                f"limit, {population}: no pump could have been giving more)",
            )
        if dose_v is not None:
            if pump_kind is None:
                raise InvalidValue(
                    "--pump-kind", None, "peristaltic, valve or constant_flow for --dose"
                )
            decision = check_dose_against_library(
                lib,
                population,
                conc,
                pump_kind,
                dose_v,
                reason,
                previous_dose_mcg_per_day=prev_v,
            )
        else:
            assert bolus_v is not None
            decision = check_bolus_against_library(
                lib, population, conc, pump_kind, bolus_v, reason
            )
    if as_json:
        echo_json(_payload(decision))
        return
    _show(decision)


def _number(name: str, text: str) -> float:
    """A number typed on the command line, or a one-line error naming the option."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue(name, text, "a number") from None
    if not math.isfinite(value):
        raise InvalidValue(name, text, "a finite number")
    return value


def _opt_number(name: str, text: str | None) -> float | None:
    return None if text is None else _number(name, text)


def _payload(d: LibraryDecision) -> dict[str, object]:
    return {
        "allowed": True,
        "population": d.population,
        "concentration_mcg_per_ml": d.concentration_mcg_per_ml,
        "pump_kind": d.pump_kind,
        "field": d.field,
        "value": d.value,
        "within_all_limits": d.within_all_limits,
        "override_reason": d.override_reason,
        "checks": [
            {
                "field": c.field,
                "value": c.value,
                "kind": c.kind,
                "bound": c.bound,
                "limit": c.limit.value,
                "unit": c.limit.unit,
                "passed_limit": c.passed_limit,
                "source": c.limit.source,
                "status": c.limit.status,
            }
            for c in d.checks
        ],
        "disclaimer": DISCLAIMER,
    }


def _show(d: LibraryDecision) -> None:
    out = console()
    if d.within_all_limits:
        head = "[bold green]ALLOWED: within every limit[/]"
    else:
        head = f"[bold yellow]ALLOWED WITH OVERRIDE[/]\nreason recorded: {escape(d.override_reason or '')}"
    out.print(Panel(f"{head}\n{d.field} = {d.value:g}", title="Drug library", expand=False))
    table = Table(expand=True)
    table.add_column("Checked", no_wrap=True)
    table.add_column("Value", justify="right")
    table.add_column("Limit", no_wrap=True)
    table.add_column("Result")
    table.add_column("Source")
    for c in d.checks:
        op = "<=" if c.bound == "max" else ">="
        result = "[yellow]passed (override)[/]" if c.passed_limit else "[green]within[/]"
        table.add_row(
            c.field,
            f"{c.value:.4g}",
            f"{c.kind} {op} {c.limit.value:g} {c.limit.unit}",
            result,
            escape(c.limit.source + ("" if c.limit.status == "confirmed" else " (assumed)")),
        )
    out.print(table)
    out.print(f"[dim]{DISCLAIMER}[/]")


def register(app: typer.Typer) -> None:
    """Add ``itb library show|check`` to ``app``."""
    app.add_typer(library_app, name="library")
