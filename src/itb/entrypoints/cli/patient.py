"""``itb patient simulate|plot``: one virtual patient's response to a dosing history.

The history is either built from options (a continuous daily dose, an optional
bolus, an optional abrupt stop) or read from a TOML file::

    [[infusion]]            # constant delivery into the CSF
    start_h = 0.0
    end_h = 72.0
    dose_mcg_per_day = 300.0

    [[bolus]]               # given over 1 minute
    at_h = 24.0
    amount_mcg = 50.0

The patient is the typical patient of the chosen cause (median parameters of
``itb/data/patient.toml``, scaled to the weight), or patient ``K`` of the
seeded population with ``--seed`` and ``--index``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from itb.adapters.datafiles import load_data_table, read_toml_file
from itb.adapters.plots.patient import plot_patient_response
from itb.domain.delivery import DeliverySegment, bolus_segment
from itb.domain.errors import InvalidValue
from itb.domain.patient import (
    Cause,
    Observation,
    PatientParameters,
    respond,
    typical_parameters,
)
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.population import Population, draw_patient

__all__ = ["patient_app", "register"]

patient_app = typer.Typer(
    help="One virtual patient's response to a dosing history (table, JSON or PNG plot).",
    no_args_is_help=True,
)


def _cause(value: str) -> Cause:
    allowed = tuple(c.value for c in Cause)
    if value not in allowed:
        raise InvalidValue("cause", value, ", ".join(allowed))
    return Cause(value)


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"{where}.{key}", value, "a number")
    return float(value)


def _history_from_file(path: Path) -> list[DeliverySegment]:
    data = read_toml_file(path, field="--history")
    segments: list[DeliverySegment] = []
    for i, entry in enumerate(data.get("infusion", [])):
        where = f"infusion[{i}]"
        start, end = _number(entry, "start_h", where), _number(entry, "end_h", where)
        dose = _number(entry, "dose_mcg_per_day", where)
        if dose < 0:
            raise InvalidValue(f"{where}.dose_mcg_per_day", dose, ">= 0")
        segments.append(DeliverySegment(start, end, dose / HOURS_PER_DAY))
    for i, entry in enumerate(data.get("bolus", [])):
        where = f"bolus[{i}]"
        amount = _number(entry, "amount_mcg", where)
        if amount <= 0:
            raise InvalidValue(f"{where}.amount_mcg", amount, "> 0")
        segments.append(bolus_segment(_number(entry, "at_h", where), amount))
    if not segments:
        raise InvalidValue("--history", str(path), "a file with [[infusion]] or [[bolus]] entries")
    return segments


def _history(
    history: Path | None,
    dose_mcg_per_day: float,
    hours: float,
    bolus_mcg: float,
    bolus_at_h: float,
    stop_at_h: float | None,
) -> list[DeliverySegment]:
    if history is not None:
        return _history_from_file(history)
    if dose_mcg_per_day < 0:
        raise InvalidValue("dose_mcg_per_day", dose_mcg_per_day, ">= 0")
    if not hours > 0:
        raise InvalidValue("hours", hours, "> 0")
    segments: list[DeliverySegment] = []
    end = hours if stop_at_h is None else min(stop_at_h, hours)
    if dose_mcg_per_day > 0 and end > 0:
        segments.append(DeliverySegment(0.0, end, dose_mcg_per_day / HOURS_PER_DAY))
    if bolus_mcg > 0:
        segments.append(bolus_segment(bolus_at_h, bolus_mcg))
    if not segments:
        raise InvalidValue("dose_mcg_per_day", dose_mcg_per_day, "> 0 (or give --bolus-mcg)")
    return segments


def _patient(
    cause: str, weight_kg: float | None, seed: int | None, index: int
) -> PatientParameters:
    table = load_data_table("patient")
    if seed is not None:
        if index < 0:
            raise InvalidValue("index", index, ">= 0")
        return draw_patient(Population.from_table(table), seed, index)
    if weight_kg is not None and not weight_kg > 0:
        raise InvalidValue("weight_kg", weight_kg, "> 0")
    return typical_parameters(table, _cause(cause), weight_kg=weight_kg)


def _times(segments: list[DeliverySegment], hours: float, step_h: float) -> list[float]:
    if not step_h > 0:
        raise InvalidValue("step_h", step_h, "> 0")
    end = max([hours, *(s.t1_h for s in segments)])
    n = int(end / step_h + 1e-9)
    return [i * step_h for i in range(n + 1)]


def _obs_dict(o: Observation) -> dict[str, Any]:
    return {
        "t_h": o.t_h,
        "csf_concentration_mcg_per_ml": o.csf_concentration_mcg_per_ml,
        "effect_site_mcg_per_ml": o.effect_site_mcg_per_ml,
        "effective_ec50_mcg_per_ml": o.effective_ec50_mcg_per_ml,
        "drug_effect": o.drug_effect,
        "mas": o.mas,
        "mas_grade": o.mas_grade,
        "psfs": o.psfs,
        "withdrawal_stage": o.withdrawal_stage.name.lower(),
        "withdrawal_severity": o.withdrawal_severity,
        "overdose_stage": o.overdose_stage,
        "signs": list(o.signs),
    }


HistoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="TOML dosing history ([[infusion]], [[bolus]]); overrides the dose options.",
    ),
]
DoseOpt = Annotated[float, typer.Option(help="Continuous daily dose into the CSF, mcg/day.")]
HoursOpt = Annotated[float, typer.Option(help="Length of the run, h.")]
BolusOpt = Annotated[float, typer.Option(help="Bolus amount, mcg (0: none).")]
BolusAtOpt = Annotated[float, typer.Option(help="Bolus time, h.")]
StopOpt = Annotated[float | None, typer.Option(help="Abrupt stop of the infusion at this time, h.")]
CauseOpt = Annotated[str, typer.Option(help="Cause: " + ", ".join(c.value for c in Cause) + ".")]
WeightOpt = Annotated[float | None, typer.Option(help="Body weight, kg (default: 70).")]
SeedOpt = Annotated[
    int | None, typer.Option(help="Draw the patient from the population with this seed.")
]
IndexOpt = Annotated[int, typer.Option(help="Index of the patient in the seeded cohort.")]


@patient_app.command("simulate")
def simulate_command(
    history: HistoryOpt = None,
    dose_mcg_per_day: DoseOpt = 0.0,
    hours: HoursOpt = 48.0,
    bolus_mcg: BolusOpt = 0.0,
    bolus_at_h: BolusAtOpt = 0.0,
    stop_at_h: StopOpt = None,
    cause: CauseOpt = "spinal_cord_injury",
    weight_kg: WeightOpt = None,
    seed: SeedOpt = None,
    index: IndexOpt = 0,
    step_h: Annotated[float, typer.Option(help="Sampling interval, h.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the patient's concentrations, scores and signs over a dosing history."""
    segments = _history(history, dose_mcg_per_day, hours, bolus_mcg, bolus_at_h, stop_at_h)
    params = _patient(cause, weight_kg, seed, index)
    obs = respond(params, segments, _times(segments, hours, step_h))
    if as_json:
        typer.echo(json.dumps([_obs_dict(o) for o in obs], indent=2))
        return
    table = Table(title=f"Virtual patient ({params.cause.value}, {params.weight_kg:.0f} kg)")
    for col in (
        "t (h)",
        "CSF (mcg/mL)",
        "Ce (mcg/mL)",
        "MAS",
        "PSFS",
        "withdrawal",
        "overdose",
        "signs",
    ):
        table.add_column(col)
    for o in obs:
        table.add_row(
            f"{o.t_h:g}",
            f"{o.csf_concentration_mcg_per_ml:.4f}",
            f"{o.effect_site_mcg_per_ml:.4f}",
            f"{o.mas:.2f} ({o.mas_grade})",
            f"{o.psfs:.2f}",
            o.withdrawal_stage.name.lower(),
            str(o.overdose_stage),
            ", ".join(o.signs),
        )
    Console(width=160).print(table)


@patient_app.command("plot")
def plot_command(
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    history: HistoryOpt = None,
    dose_mcg_per_day: DoseOpt = 0.0,
    hours: HoursOpt = 48.0,
    bolus_mcg: BolusOpt = 0.0,
    bolus_at_h: BolusAtOpt = 0.0,
    stop_at_h: StopOpt = None,
    cause: CauseOpt = "spinal_cord_injury",
    weight_kg: WeightOpt = None,
    seed: SeedOpt = None,
    index: IndexOpt = 0,
    step_h: Annotated[float, typer.Option(help="Sampling interval, h.")] = 0.1,
) -> None:
    """Plot CSF and effect-site concentration and the spasticity scores over time (PNG)."""
    if out.suffix.lower() != ".png":
        raise InvalidValue("out", str(out), "a .png file name")
    if not out.parent.exists():
        raise InvalidValue("out", str(out), "a path in an existing directory")
    segments = _history(history, dose_mcg_per_day, hours, bolus_mcg, bolus_at_h, stop_at_h)
    params = _patient(cause, weight_kg, seed, index)
    obs = respond(params, segments, _times(segments, hours, step_h))
    title = f"Virtual patient: {params.cause.value.replace('_', ' ')}, {params.weight_kg:.0f} kg"
    plot_patient_response(obs, segments, out, title=title)
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``itb patient simulate|plot`` to ``app``."""
    app.add_typer(patient_app, name="patient")
