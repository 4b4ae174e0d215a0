"""``itb titrate start|next``: the label's titration rules after implant.

``start`` gives the initial daily dose from the screening result (the 8-hour
rule); ``next`` proposes the next step (increase, hold or decrease) with its
reason, the allowed range and the source. Bad input: one line naming the field,
the value and what is allowed; exit code 2.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from itb import bootstrap
from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.drug_library import population_for
from itb.domain.clinical.titration import (
    Assessment,
    Phase,
    TitrationStep,
    initial_daily_dose,
    parse_titration_rules,
    plan_next_step,
)
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import flags
from itb.services.clinical_inputs import RecordLimits
from itb.services.limits import MAX_RUN_H

__all__ = ["register", "titrate_app"]

_FLAGS = {
    "effective_screening_dose_mcg": "--screening-dose-mcg",
    "effect_duration_h": "--effect-duration-h",
    "origin": "--origin",
    "age_years": "--age-years",
    "current_dose_mcg_per_day": "--dose-mcg-per-day",
    "hours_since_implant": "--hours-since-implant",
    "hours_since_last_change": "--hours-since-last-change",
    "phase": "--phase",
    "assessment": "--assessment",
    "change_pct": "--change-pct",
}
"""The rules' parameter names as the user types them."""


def _check_age(age_years: float) -> None:
    oldest = RecordLimits.from_table(load_data_table("candidacy")).max_age_years.value
    if not (math.isfinite(age_years) and 0.0 < age_years <= oldest):
        raise InvalidValue("--age-years", age_years, f"> 0 and <= {oldest:g} (a human life)")


def _check_hours(flag: str, hours: float | None) -> None:
    if hours is not None and not (math.isfinite(hours) and 0.0 <= hours <= MAX_RUN_H):
        raise InvalidValue(flag, hours, f"0 to {MAX_RUN_H:g} h (20 years, the longest run)")


titrate_app = typer.Typer(
    help="Label titration rules after implant: the starting dose and the next step.",
    no_args_is_help=True,
)

_DISCLAIMER = "Simulation and decision support only: not a medical device, not clinical advice."


def _phase(value: str) -> Phase:
    allowed = tuple(p.value for p in Phase)
    if value not in allowed:
        raise InvalidValue("phase", value, " or ".join(allowed))
    return Phase(value)


def _assessment(value: str) -> Assessment:
    allowed = tuple(a.value for a in Assessment)
    if value not in allowed:
        raise InvalidValue("assessment", value, " or ".join(allowed))
    return Assessment(value)


def _show(step: TitrationStep, as_json: bool) -> None:
    data = asdict(step)
    data["action"] = step.action.value
    data["rate_mcg_per_h"] = step.rate_mcg_per_h
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"Titration: {step.action.value}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row(
        "proposed dose", f"{step.dose_mcg_per_day:.1f} mcg/day ({step.rate_mcg_per_h:.3f} mcg/h)"
    )
    table.add_row("previous dose", f"{step.previous_dose_mcg_per_day:.1f} mcg/day")
    table.add_row("change", f"{step.change_fraction * 100:+.1f} %")
    table.add_row(
        "allowed now",
        f"{step.allowed_min_mcg_per_day:.1f}-{step.allowed_max_mcg_per_day:.1f} mcg/day",
    )
    table.add_row("rules", step.rule_group)
    table.add_row("reason", step.reason)
    table.add_row("source", f"{step.source} ({step.status})")
    console = Console(width=140)
    console.print(table)
    console.print(f"[dim]{_DISCLAIMER}[/dim]")


@titrate_app.command("start")
def start(
    screening_dose_mcg: Annotated[
        float, typer.Option(help="Screening bolus that gave a positive response, mcg.")
    ],
    effect_duration_h: Annotated[float, typer.Option(help="How long its effect lasted, h.")],
    origin: Annotated[
        str, typer.Option(help="Origin of spasticity: spinal or cerebral.")
    ] = "spinal",
    age_years: Annotated[float, typer.Option(help="Age, years.")] = 40.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Initial daily dose after implant: 2 x the screening dose, or 1 x if it lasted > 8 h.

    The screening dose is one the drug library allows as a bolus; the effect lasted at
    most the 24 h between two screening boluses.
    """
    rules = parse_titration_rules(load_data_table("titration"))
    with flags(**_FLAGS):
        _check_age(age_years)
        cat = bootstrap.catalog()
        population = population_for(cat.library, age_years=age_years, origin=origin)
        hard = cat.library.limits(population).bolus_hard_max_mcg.value
        if math.isfinite(screening_dose_mcg) and screening_dose_mcg > hard:
            raise InvalidValue(
                "--screening-dose-mcg",
                screening_dose_mcg,
                f"> 0 and <= {hard:g} mcg (the drug library's bolus hard limit, {population})",
            )
        interval = cat.screening.min_interval_h.value
        if math.isfinite(effect_duration_h) and effect_duration_h > interval:
            raise InvalidValue(
                "--effect-duration-h",
                effect_duration_h,
                f">= 0 and <= {interval:g} h (the next screening bolus comes {interval:g} h later)",
            )
        step = initial_daily_dose(
            rules, screening_dose_mcg, effect_duration_h, origin=origin, age_years=age_years
        )
    _show(step, as_json)


@titrate_app.command("next")
def next_step(
    dose_mcg_per_day: Annotated[float, typer.Option(help="Present daily dose, mcg/day.")],
    assessment: Annotated[str, typer.Option(help="inadequate, adequate or side_effects.")],
    hours_since_implant: Annotated[float, typer.Option(help="Hours since the pump started.")],
    hours_since_last_change: Annotated[
        float | None,
        typer.Option(help="Hours since the dose last changed (default: since implant)."),
    ] = None,
    origin: Annotated[
        str, typer.Option(help="Origin of spasticity: spinal or cerebral.")
    ] = "spinal",
    age_years: Annotated[
        float, typer.Option(help="Age, years (under 12: paediatric steps).")
    ] = 40.0,
    phase: Annotated[str, typer.Option(help="titration or maintenance.")] = "titration",
    change_pct: Annotated[
        float | None,
        typer.Option(help="Step wanted, percent (e.g. 25); default: the usual step."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Propose the next step under the label rules, with reason, allowed range and source."""
    rules = parse_titration_rules(load_data_table("titration"))
    with flags(**_FLAGS):
        phase_value = _phase(phase)
        assessment_value = _assessment(assessment)
        _check_age(age_years)
        _check_hours("--hours-since-implant", hours_since_implant)
        _check_hours("--hours-since-last-change", hours_since_last_change)
        cat = bootstrap.catalog()
        population = population_for(cat.library, age_years=age_years, origin=origin)
        hard = cat.library.limits(population).daily_dose_hard_max_mcg_per_day.value
        if math.isfinite(dose_mcg_per_day) and dose_mcg_per_day > hard:
            raise InvalidValue(
                "--dose-mcg-per-day",
                dose_mcg_per_day,
                f"> 0 and <= {hard:g} mcg/day (the drug library's hard limit, {population})",
            )
        try:
            step = plan_next_step(
                rules,
                origin=origin,
                age_years=age_years,
                phase=phase_value,
                current_dose_mcg_per_day=dose_mcg_per_day,
                assessment=assessment_value,
                hours_since_implant=hours_since_implant,
                hours_since_last_change=hours_since_implant
                if hours_since_last_change is None
                else hours_since_last_change,
                requested_change_fraction=None if change_pct is None else change_pct / 100.0,
            )
        except InvalidValue as exc:
            if exc.field == "requested_change_fraction":
                raise InvalidValue("--change-pct", change_pct, exc.allowed) from None
            raise
    _show(step, as_json)


def register(app: typer.Typer) -> None:
    """Add ``itb titrate start|next`` to ``app``."""
    app.add_typer(titrate_app, name="titrate")
