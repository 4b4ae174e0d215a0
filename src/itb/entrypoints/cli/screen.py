"""``itb screen``: run the screening trial against a virtual patient."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from itb.adapters.datafiles import load_data_table
from itb.adapters.output_paths import check_output_file, write_file_atomic
from itb.domain.clinical.screening import parse_screening_protocol
from itb.domain.clinical.titration import parse_titration_rules
from itb.domain.errors import InvalidValue
from itb.domain.patient import Cause, PatientParameters, typical_parameters
from itb.services.clinical_inputs import RecordLimits
from itb.services.limits import MAX_SEED
from itb.simulation.screening_run import ScreeningRun, run_screening

__all__ = ["register", "screen"]

_CEREBRAL = {Cause.CEREBRAL_PALSY, Cause.TRAUMATIC_BRAIN_INJURY, Cause.STROKE}
_DEFAULT_CAUSE = Cause.SPINAL_CORD_INJURY.value
_DEFAULT_AGE_YEARS = 40.0


def _patient(
    cause: str | None,
    age_years: float | None,
    baseline_mas: float | None,
    seed: int | None,
    index: int | None,
) -> PatientParameters:
    from itb.simulation.population import Population, draw_patient  # numpy, scipy

    table = load_data_table("patient")
    if seed is not None:
        for flag, value in (
            ("--cause", cause),
            ("--age-years", age_years),
            ("--baseline-mas", baseline_mas),
        ):
            if value is not None:
                raise InvalidValue(
                    flag,
                    value,
                    "nothing with --seed (a seeded patient's cause, age and baseline come from "
                    "the population draw; leave out --seed to choose them)",
                )
        for flag, value in (("--seed", seed), ("--index", index or 0)):
            if not 0 <= value <= MAX_SEED:
                raise InvalidValue(flag, value, f"a whole number from 0 to {MAX_SEED}")
        return draw_patient(Population.from_table(table), seed, index or 0)
    if index is not None:
        raise InvalidValue("--index", index, "only with --seed (the patient's place in the draw)")
    cause = _DEFAULT_CAUSE if cause is None else cause
    age = _DEFAULT_AGE_YEARS if age_years is None else age_years
    try:
        c = Cause(cause)
    except ValueError:
        raise InvalidValue("--cause", cause, ", ".join(x.value for x in Cause)) from None
    limits = RecordLimits.from_table(load_data_table("candidacy"))
    oldest = limits.max_age_years.value
    if not 4.0 <= age <= oldest:
        raise InvalidValue(
            "--age-years", age, f"4 to {oldest:g} (ITB is approved from age 4; a human life)"
        )
    if baseline_mas is not None and not 0.0 < baseline_mas <= 4.0:
        raise InvalidValue("--baseline-mas", baseline_mas, "0 < MAS <= 4")
    weight_kg = Population.from_table(table).expected_weight_kg(age)
    return typical_parameters(
        table, c, age_years=age, weight_kg=weight_kg, baseline_mas=baseline_mas
    )


def _payload(run: ScreeningRun, patient: PatientParameters) -> dict[str, object]:
    return {
        "patient": {
            "cause": patient.cause.value,
            "age_years": patient.age_years,
            "weight_kg": patient.weight_kg,
            "baseline_mas": patient.baseline_mas,
        },
        "boluses": [
            {
                "dose_mcg": b.dose_mcg,
                "given_at_h": b.given_at_h,
                "outcome": b.assessment.outcome,
                "onset_h": b.assessment.onset_h,
                "peak_time_h": b.assessment.peak_time_h,
                "last_response_h": b.assessment.last_response_h,
                "observations": [
                    {"t_after_h": o.t_after_h, "mas": o.mas, "psfs": o.psfs} for o in b.observations
                ],
                "signs_seen": sorted({s for p in b.curve for s in p.signs}),
            }
            for b in run.boluses
        ],
        "verdict": run.verdict.kind,
        "verdict_text": run.verdict.text,
        "starting_dose_mcg_per_day": None
        if run.starting_dose is None
        else run.starting_dose.dose_mcg_per_day,
        "starting_dose_reason": None if run.starting_dose is None else run.starting_dose.reason,
    }


def screen(
    cause: Annotated[
        str | None,
        typer.Option(
            help="Cause of spasticity: "
            + ", ".join(c.value for c in Cause)
            + f" (default {_DEFAULT_CAUSE}; not with --seed)."
        ),
    ] = None,
    age_years: Annotated[
        float | None,
        typer.Option(help=f"Age, years (>= 4; default {_DEFAULT_AGE_YEARS:g}; not with --seed)."),
    ] = None,
    baseline_mas: Annotated[
        float | None,
        typer.Option(help="Baseline Modified Ashworth score (default: typical; not with --seed)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Draw the patient from the population with this seed (its cause, age and "
            "baseline come from the draw: --cause, --age-years and --baseline-mas are refused)."
        ),
    ] = None,
    index: Annotated[
        int | None, typer.Option(help="Patient index within the seeded cohort (with --seed).")
    ] = None,
    reduced_start: Annotated[
        bool, typer.Option(help="Start at 25 mcg (small child, or relies on tone).")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write the response curves as PNG (written atomically)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the screening trial (50, 75, 100 mcg, 24 h apart) on a virtual patient.

    The clinic sees only timed MAS/PSFS scores; each bolus is judged by the
    protocol's response criterion; a responder gets the starting daily dose
    (2 x the effective dose per 24 h, or 1 x if the effect lasted over 8 h).
    The patient is the typical patient of --cause and --age-years, or, with --seed
    (and --index), one drawn from the virtual population: its cause, age and
    baseline then come from the draw, so --cause, --age-years and --baseline-mas
    are refused rather than silently ignored. Simulation, not clinical advice.
    """
    target = None if plot is None else check_output_file(plot, field="--plot", suffix=".png")
    patient = _patient(cause, age_years, baseline_mas, seed, index)
    origin = "cerebral" if patient.cause in _CEREBRAL else "spinal"
    run = run_screening(
        parse_screening_protocol(load_data_table("screening")),
        patient,
        titration=parse_titration_rules(load_data_table("titration")),
        origin=origin,
        reduced_start=reduced_start,
    )
    if target is not None:
        from itb.adapters.plots.screening import screening_plot_png  # matplotlib

        data = screening_plot_png(
            run,
            f"Screening trial, virtual patient ({patient.cause.value}, {patient.age_years:g} y)",
        )
        write_file_atomic(target, data)
    if as_json:
        typer.echo(json.dumps(_payload(run, patient), indent=2))
        return
    console = Console()
    table = Table(title="Screening boluses (observations as the clinic records them)")
    for col in ("dose", "given at", "outcome", "onset", "peak", "last response", "MAS 0 -> peak"):
        table.add_column(col)
    for b in run.boluses:
        a = b.assessment
        base = b.observations[0].mas
        best = min((o.mas for o in b.observations if o.mas is not None), default=base)

        def h(v: float | None) -> str:
            return "—" if v is None else f"{v:g} h"

        table.add_row(
            f"{b.dose_mcg:g} mcg",
            f"{b.given_at_h:g} h",
            a.outcome.replace("_", "-"),
            h(a.onset_h),
            h(a.peak_time_h),
            h(a.last_response_h),
            f"{base} -> {best}",
        )
    console.print(table)
    text = run.verdict.text
    if run.starting_dose is not None:
        text += (
            f"\nStarting dose: {run.starting_dose.dose_mcg_per_day:g} mcg/day "
            f"({run.starting_dose.reason})"
        )
    style = "green" if run.verdict.kind == "responder" else "red"
    console.print(Panel(text, title=f"Verdict: {run.verdict.kind}", border_style=style))
    if plot is not None:
        console.print(f"response curves: {plot}")


def register(app: typer.Typer) -> None:
    """Add ``itb screen``."""
    app.command("screen")(screen)
