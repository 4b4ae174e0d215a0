"""The one composition root: reviewed data and adapters wired into the services.

Entrypoints (CLI, API) call these functions; nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itb.adapters.cohort_output import write_trial_output
from itb.adapters.datafiles import load_data_table, read_toml_file
from itb.adapters.report_files import write_course_report
from itb.adapters.run_output import write_output_dir, write_pump_run, write_pump_run_files
from itb.adapters.scenario_files import builtin_scenario_names, load_builtin_scenario_table
from itb.domain.clinical.screening import parse_screening_protocol
from itb.domain.clinical.titration import parse_titration_rules
from itb.domain.drug import parse_drugs
from itb.domain.pump import PumpPreset, parse_catheters, parse_discrepancy_tolerance, parse_presets
from itb.services.cohort_trial import TrialSpec, parse_trial, run_trial
from itb.services.pump_run import PumpCatalog, PumpRunResult, run_pump
from itb.services.pump_spec import PumpSpec, parse_pump_spec
from itb.services.pump_summary import highlights
from itb.services.scenario import (
    Scenario,
    ScenarioCatalog,
    ScenarioResult,
    parse_scenario,
    run_scenario,
)
from itb.simulation.cohort_trial import TrialSetup as CohortTrialSetup
from itb.simulation.course import CourseSettings
from itb.simulation.population import Population
from itb.simulation.vector_engine import CohortData

__all__ = [
    "DemoRun",
    "builtin_scenario",
    "builtin_scenario_names",
    "cohort_setup",
    "example_pump_specs",
    "load_cohort_trial",
    "load_pump_spec",
    "load_scenario",
    "pump_catalog",
    "pump_presets",
    "run_cohort_trial",
    "run_pump_demo",
    "run_pump_spec",
    "run_scenario_course",
    "scenario_catalog",
    "write_cohort_trial",
    "write_course_report",
    "write_pump_run",
]


def pump_presets() -> dict[str, PumpPreset]:
    """Pump presets from itb/data/pumps.toml."""
    return parse_presets(load_data_table("pumps"))


def pump_catalog() -> PumpCatalog:
    """Presets, catheters, drug products and refill tolerance from itb/data."""
    return PumpCatalog(
        presets=pump_presets(),
        catheters=parse_catheters(load_data_table("catheters")),
        drugs=parse_drugs(load_data_table("drugs")),
        tolerance=parse_discrepancy_tolerance(load_data_table("refill")),
    )


def load_pump_spec(path: Path) -> PumpSpec:
    """Read and validate a pump-run spec file (one-line InvalidValue on any problem)."""
    return parse_pump_spec(read_toml_file(path, field="SPEC.toml"))


def run_pump_spec(spec: PumpSpec, days: float | None) -> PumpRunResult:
    """Run a validated spec against the reviewed data."""
    return run_pump(spec, days, pump_catalog())


def example_pump_specs() -> list[Path]:
    """The example pump specs shipped in the repository (examples/pump/*.toml), sorted."""
    root = Path(__file__).resolve().parents[2] / "examples" / "pump"
    return sorted(root.glob("*.toml"))


@dataclass(frozen=True, slots=True)
class DemoRun:
    """One demonstration scenario: its spec file, result and highlights."""

    spec_path: Path
    stem: str
    title: str
    description: str
    result: PumpRunResult
    highlights: tuple[str, ...]


def run_pump_demo(spec_paths: Sequence[Path], out_dir: Path) -> tuple[list[DemoRun], Path]:
    """Run every spec (all validated and run before anything is written), then write
    ``out_dir/<spec name>/`` files and ``out_dir/summary.md`` atomically."""
    runs: list[DemoRun] = []
    for path in spec_paths:
        spec = load_pump_spec(path)
        result = run_pump(spec, None, pump_catalog())
        runs.append(
            DemoRun(
                path,
                path.stem,
                spec.name or path.stem,
                spec.description,
                result,
                tuple(highlights(result)),
            )
        )

    def fill(tmp: Path) -> None:
        lines = [
            "# itb demo: the pump system",
            "",
            "Simulation and decision support only: not a medical device, not clinical advice.",
            "",
        ]
        for run in runs:
            sub = tmp / run.stem
            sub.mkdir()
            write_pump_run_files(run.result, sub)
            lines += [
                f"## {run.title}",
                "",
                f"Spec: `{run.spec_path.name}`; files: `{run.stem}/`",
                "",
            ]
            if run.description:
                lines += [run.description, ""]
            lines += [f"- {h}" for h in run.highlights] + [""]
        (tmp / "summary.md").write_text("\n".join(lines), encoding="utf-8")

    return runs, write_output_dir(out_dir, fill)


# ------------------------------------------------------------------ scenarios


def scenario_catalog() -> ScenarioCatalog:
    """Pump data, the patient model table, titration rules and the screening protocol."""
    return ScenarioCatalog(
        pump=pump_catalog(),
        patient_table=load_data_table("patient"),
        rules=parse_titration_rules(load_data_table("titration")),
        screening=parse_screening_protocol(load_data_table("screening")),
    )


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file (one-line InvalidValue on any problem)."""
    return parse_scenario(read_toml_file(path, field="SCENARIO.toml"))


def builtin_scenario(name: str) -> Scenario:
    """A built-in scenario from itb/data/scenarios (validated)."""
    return parse_scenario(load_builtin_scenario_table(name))


def run_scenario_course(
    scenario: Scenario,
    *,
    progress: Callable[[float], None] | None = None,
    sample_every_h: float | None = None,
) -> ScenarioResult:
    """Run a validated scenario against the reviewed data."""
    return run_scenario(
        scenario, scenario_catalog(), progress=progress, sample_every_h=sample_every_h
    )


# ------------------------------------------------------------------ virtual cohort trials


def cohort_setup() -> CohortTrialSetup:
    """Reviewed data for the cohort engine (patients, titration, pumps, hazards, refill checks).

    The trial's own seed, size, horizon and arms are filled in by ``run_cohort_trial``.
    """
    patient = load_data_table("patient")
    course = CourseSettings.from_table(patient)
    return CohortTrialSetup(
        seed=0,
        patients=0,
        horizon_days=0,
        arms=(),
        population=Population.from_table(patient),
        course=course,
        rules=parse_titration_rules(load_data_table("titration")),
        data=CohortData.from_table(load_data_table("cohort")),
        presets=pump_presets(),
        catheter_ml_per_cm=parse_catheters(load_data_table("catheters"))["prometra_catheter"][1],
        tolerance=parse_discrepancy_tolerance(load_data_table("refill")),
    )


def load_cohort_trial(path: Path) -> TrialSpec:
    """Read and validate a trial file (one-line InvalidValue on any problem)."""
    patient = load_data_table("patient")
    course = CourseSettings.from_table(patient)
    drugs = parse_drugs(load_data_table("drugs"))
    return parse_trial(
        read_toml_file(path, field="TRIAL.toml"),
        presets=pump_presets(),
        products_mcg_per_ml=drugs.concentrations_mcg_per_ml(for_pump=True),
        default_visit_days=round(course.visit_interval_days),
        default_inpatient_days=course.inpatient_titration_days,
    )


def run_cohort_trial(
    spec: TrialSpec,
    *,
    chunk_size: int,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Simulate a validated trial; return its summary (JSON-ready)."""
    return run_trial(
        spec,
        cohort_setup(),
        chunk_size=chunk_size,
        workers=workers,
        scheduler=scheduler,
        on_progress=on_progress,
    )


def write_cohort_trial(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write summary.json, summary.md, arms.csv and the PNG plots atomically."""
    return write_trial_output(summary, out_dir)
