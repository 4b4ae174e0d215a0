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
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from itb import bootstrap
from itb.adapters.datafiles import load_data_table, read_toml_file
from itb.adapters.output_paths import check_output_file
from itb.domain.delivery import DeliverySegment, bolus_segment
from itb.domain.errors import InvalidValue
from itb.domain.patient import (
    Cause,
    Observation,
    PatientParameters,
    respond,
    typical_parameters,
)
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.services.limits import MAX_SEED, WEIGHT_KG_RANGE

__all__ = ["patient_app", "register"]

_DEFAULT_CAUSE = "spinal_cord_injury"

patient_app = typer.Typer(
    help="One virtual patient's response to a dosing history (table, JSON or PNG plot).",
    no_args_is_help=True,
)


MAX_HOURS = 24.0 * DAYS_PER_YEAR
"""The longest history, h (one year: the patient model's response, not a course)."""
MAX_SAMPLES = 100_000
"""The most observations a run prints or plots (hours / step)."""


def _limits() -> tuple[float, float]:
    """(highest daily dose, largest single bolus) that can reach the CSF, mcg: the fastest
    pump at the strongest product, and a full access-port syringe of it."""
    cat = bootstrap.catalog()
    strongest = cat.library.strongest_mcg_per_ml
    fastest = max(p.max_rate_ml_per_day for p in cat.presets.values())
    syringe = max(p.access_port_max_injection_ml for p in cat.presets.values())
    return fastest * strongest, syringe * strongest


def _cause(value: str) -> Cause:
    allowed = tuple(c.value for c in Cause)
    if value not in allowed:
        raise InvalidValue("--cause", value, ", ".join(allowed))
    return Cause(value)


def _number(entry: Mapping[str, Any], key: str, where: str, lo: float, hi: float) -> float:
    value = entry.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise InvalidValue(f"{where}.{key}", value, f"a number from {lo:g} to {hi:g}")
    return float(value)


def _history_from_file(path: Path) -> list[DeliverySegment]:
    data = read_toml_file(path, field="--history")
    most_daily, most_bolus = _limits()
    unknown = sorted(set(data) - {"infusion", "bolus"})
    if unknown:
        raise InvalidValue(unknown[0], data[unknown[0]], "known keys: infusion, bolus")
    segments: list[DeliverySegment] = []
    for key in ("infusion", "bolus"):
        if not isinstance(data.get(key, []), list) or not all(
            isinstance(e, Mapping) for e in data.get(key, [])
        ):
            raise InvalidValue(key, data[key], f"an array of tables [[{key}]]")
    for i, entry in enumerate(data.get("infusion", [])):
        where = f"infusion[{i}]"
        start = _number(entry, "start_h", where, 0.0, MAX_HOURS)
        end = _number(entry, "end_h", where, start, MAX_HOURS)
        dose = _number(entry, "dose_mcg_per_day", where, 0.0, most_daily)
        segments.append(DeliverySegment(start, end, dose / HOURS_PER_DAY))
    for i, entry in enumerate(data.get("bolus", [])):
        where = f"bolus[{i}]"
        amount = _number(entry, "amount_mcg", where, 0.0, most_bolus)
        if amount <= 0:
            raise InvalidValue(f"{where}.amount_mcg", amount, "> 0")
        segments.append(bolus_segment(_number(entry, "at_h", where, 0.0, MAX_HOURS), amount))
    if not segments:
        raise InvalidValue("--history", str(path), "a file with [[infusion]] or [[bolus]] entries")
    return segments


def _within(flag: str, value: float, lo: float, hi: float, why: str = "") -> float:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InvalidValue(flag, value, f"from {lo:g} to {hi:g}" + (f" ({why})" if why else ""))
    return value


def _history(
    history: Path | None,
    dose_mcg_per_day: float,
    hours: float,
    bolus_mcg: float,
    bolus_at_h: float,
    stop_at_h: float | None,
) -> list[DeliverySegment]:
    if not (math.isfinite(hours) and 0.0 < hours <= MAX_HOURS):
        raise InvalidValue("--hours", hours, f"> 0 and <= {MAX_HOURS:g} (one year)")
    if history is not None:
        return _history_from_file(history)
    most_daily, most_bolus = _limits()
    _within("--dose-mcg-per-day", dose_mcg_per_day, 0.0, most_daily, "the fastest pump")
    _within("--bolus-mcg", bolus_mcg, 0.0, most_bolus, "a full access-port syringe")
    _within("--bolus-at-h", bolus_at_h, 0.0, hours, "within --hours")
    if stop_at_h is not None:
        _within("--stop-at-h", stop_at_h, 0.0, hours, "within --hours")
    segments: list[DeliverySegment] = []
    end = hours if stop_at_h is None else min(stop_at_h, hours)
    if dose_mcg_per_day > 0 and end > 0:
        segments.append(DeliverySegment(0.0, end, dose_mcg_per_day / HOURS_PER_DAY))
    if bolus_mcg > 0:
        segments.append(bolus_segment(bolus_at_h, bolus_mcg))
    if not segments:
        raise InvalidValue(
            "--dose-mcg-per-day",
            dose_mcg_per_day,
            "> 0 before --stop-at-h (or give --bolus-mcg)",
        )
    return segments


def _patient(
    cause: str | None, weight_kg: float | None, seed: int | None, index: int | None
) -> PatientParameters:
    table = load_data_table("patient")
    if seed is not None:
        for flag, value in (("--cause", cause), ("--weight-kg", weight_kg)):
            if value is not None:
                raise InvalidValue(
                    flag, value, "nothing with --seed (a seeded patient comes from the draw)"
                )
        for flag, number in (("--seed", seed), ("--index", index or 0)):
            if not 0 <= number <= MAX_SEED:
                raise InvalidValue(flag, number, f"a whole number from 0 to {MAX_SEED}")
        from itb.simulation.population import Population, draw_patient  # numpy, scipy

        return draw_patient(Population.from_table(table), seed, index or 0)
    if index is not None:
        raise InvalidValue("--index", index, "only with --seed (the patient's place in the draw)")
    lo, hi = WEIGHT_KG_RANGE
    if weight_kg is not None and not (math.isfinite(weight_kg) and lo < weight_kg <= hi):
        raise InvalidValue("--weight-kg", weight_kg, f"> {lo:g} and <= {hi:g}")
    return typical_parameters(
        table, _cause(_DEFAULT_CAUSE if cause is None else cause), weight_kg=weight_kg
    )


def _times(segments: list[DeliverySegment], hours: float, step_h: float) -> list[float]:
    end = max([hours, *(s.t1_h for s in segments)])
    if not (math.isfinite(step_h) and end / MAX_SAMPLES <= step_h <= end):
        raise InvalidValue(
            "--step-h",
            step_h,
            f"from {end / MAX_SAMPLES:.3g} to {end:g} h (at most {MAX_SAMPLES:,} samples)",
        )
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
CauseOpt = Annotated[
    str | None,
    typer.Option(
        help="Cause: "
        + ", ".join(c.value for c in Cause)
        + f" (default {_DEFAULT_CAUSE}; not with --seed)."
    ),
]
WeightOpt = Annotated[
    float | None, typer.Option(help="Body weight, kg (default: 70; not with --seed).")
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        help="Draw the patient from the population with this seed (then --cause and "
        "--weight-kg are refused: they come from the draw)."
    ),
]
IndexOpt = Annotated[
    int | None, typer.Option(help="Index of the patient in the seeded cohort (with --seed).")
]


@patient_app.command("simulate")
def simulate_command(
    history: HistoryOpt = None,
    dose_mcg_per_day: DoseOpt = 0.0,
    hours: HoursOpt = 48.0,
    bolus_mcg: BolusOpt = 0.0,
    bolus_at_h: BolusAtOpt = 0.0,
    stop_at_h: StopOpt = None,
    cause: CauseOpt = None,
    weight_kg: WeightOpt = None,
    seed: SeedOpt = None,
    index: IndexOpt = None,
    step_h: Annotated[float, typer.Option(help="Sampling interval, h.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the patient's concentrations, scores and signs over a dosing history."""
    segments = _history(history, dose_mcg_per_day, hours, bolus_mcg, bolus_at_h, stop_at_h)
    params = _patient(cause, weight_kg, seed, index)
    obs = respond(params, segments, _times(segments, hours, step_h))
    if as_json:
        patient = {"cause": params.cause.value, "weight_kg": params.weight_kg}
        typer.echo(
            json.dumps({"patient": patient, "observations": [_obs_dict(o) for o in obs]}, indent=2)
        )
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
    cause: CauseOpt = None,
    weight_kg: WeightOpt = None,
    seed: SeedOpt = None,
    index: IndexOpt = None,
    step_h: Annotated[float, typer.Option(help="Sampling interval, h.")] = 0.1,
) -> None:
    """Plot CSF and effect-site concentration and the spasticity scores over time (PNG)."""
    target = check_output_file(out, field="--out", suffix=".png")
    segments = _history(history, dose_mcg_per_day, hours, bolus_mcg, bolus_at_h, stop_at_h)
    params = _patient(cause, weight_kg, seed, index)
    obs = respond(params, segments, _times(segments, hours, step_h))
    title = f"Virtual patient: {params.cause.value.replace('_', ' ')}, {params.weight_kg:.0f} kg"
    from itb.adapters.plots.patient import plot_patient_response  # matplotlib

    plot_patient_response(obs, segments, target, title=title)
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``itb patient simulate|plot`` to ``app``."""
    app.add_typer(patient_app, name="patient")
