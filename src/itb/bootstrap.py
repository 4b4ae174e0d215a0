"""The one composition root: reviewed data and adapters wired into the services.

Entrypoints (CLI, API) reach data and files only through these functions.
The catalog of reviewed data is parsed once, on first use, and shared;
nothing here runs at import time.

Importing this module is cheap: the adapters, services and simulation behind each
function (numpy, scipy, pydantic, SQLAlchemy, matplotlib, reportlab, dask) are
imported inside the functions that use them, so a command loads only what it
runs (``itb --help`` loads none of them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from itb import __version__
from itb.adapters.datafiles import data_files_digest, load_data_table, read_toml_file
from itb.adapters.scenario_files import (
    builtin_scenario_names,
    load_builtin_scenario_table,
    load_builtin_scenario_text,
)
from itb.domain.errors import InvalidValue
from itb.services.catalog import Catalog, build_catalog
from itb.services.overrides import apply_sets, named_for_sets

if TYPE_CHECKING:
    from itb.adapters.registry import Registry
    from itb.services.clinic import ClinicService
    from itb.services.clinic.ports import Clock, PasswordHasher
    from itb.services.cohort_trial import TrialSpec
    from itb.services.pump_run import PumpRunResult
    from itb.services.pump_spec import PumpSpec
    from itb.services.scenario import Scenario, ScenarioResult
    from itb.simulation.cohort_trial import TrialSetup as CohortTrialSetup

T = TypeVar("T")

__all__ = [
    "ClinicHandle",
    "DemoRun",
    "builtin_scenario",
    "builtin_scenario_names",
    "catalog",
    "clinic",
    "cohort_setup",
    "data_version",
    "example_pump_specs",
    "load_cohort_trial",
    "load_pump_spec",
    "load_scenario",
    "password_hasher",
    "read_toml",
    "run_cohort_trial",
    "run_pump_demo",
    "run_pump_spec",
    "run_scenario_course",
    "write_cohort_trial",
    "write_course_report",
    "write_pump_run",
]


@cache
def data_version() -> str:
    """A short hash of every reviewed data file (it changes when any number changes)."""
    return data_files_digest()[:12]


@cache
def catalog() -> Catalog:
    """The reviewed data of ``itb/data``, parsed once."""
    return build_catalog(load_data_table)


def read_toml(path: Path, *, field: str) -> dict[str, Any]:
    """A user's TOML file (one-line InvalidValue naming ``field`` on any problem)."""
    return read_toml_file(path, field=field)


# ------------------------------------------------------------------ pump runs


def load_pump_spec(
    path: Path,
    *,
    field: str = "SPEC.toml",
    sets: Sequence[str] = (),
    record: dict[str, Any] | None = None,
) -> PumpSpec:
    """Read and validate a pump-run spec file, with ``--set PATH=VALUE`` changes
    (one-line InvalidValue on any problem)."""
    from itb.services.pump_spec import parse_pump_spec

    return _with_sets(parse_pump_spec, read_toml_file(path, field=field), sets, record)


def _with_sets(
    parse: Callable[[dict[str, Any]], T],
    table: dict[str, Any],
    sets: Sequence[str],
    record: dict[str, Any] | None = None,
) -> T:
    """``parse`` of ``table`` after the ``--set`` changes; an error about a value that
    was set names it as the user wrote it. ``record`` (when given) receives the
    provenance of the input as run (:func:`provenance`)."""
    changed, paths = apply_sets(table, sets)
    try:
        parsed = parse(changed)
    except InvalidValue as exc:
        raise named_for_sets(exc, paths) from None
    if record is not None:
        record.update(provenance(changed, sets))
    return parsed


def provenance(table: Mapping[str, Any], sets: Sequence[str] = ()) -> dict[str, Any]:
    """What made an output: the itb and data versions, the SHA-256 of the input as it
    ran (its TOML table with the ``--set`` changes, as canonical JSON) and the changes."""
    text = json.dumps(table, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return {
        "itb_version": __version__,
        "data_version": data_version(),
        "input_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "set": list(sets),
    }


def run_pump_spec(spec: PumpSpec, days: float | None) -> PumpRunResult:
    """Run a validated spec against the reviewed data."""
    from itb.services.pump_run import run_pump

    return run_pump(spec, catalog(), days=days)


def example_pump_specs() -> list[Path]:
    """The example pump specs shipped with the package (``itb/data/pump_examples``), sorted."""
    folder = resources.files("itb.data").joinpath("pump_examples")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml"))


def write_pump_run(
    result: PumpRunResult, out_dir: Path, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write a run's files to ``out_dir`` atomically; return the directory."""
    from itb.adapters.run_output import write_pump_run as write

    return write(result, out_dir, provenance=provenance)


@dataclass(frozen=True, slots=True)
class DemoRun:
    """One demonstration scenario: its spec file, result and highlights."""

    spec_path: Path
    stem: str
    title: str
    description: str
    result: PumpRunResult
    highlights: tuple[str, ...]
    provenance: dict[str, Any]


def run_pump_demo(spec_paths: Sequence[Path], out_dir: Path) -> tuple[list[DemoRun], Path]:
    """Run every spec (all validated and run before anything is written), then write
    ``out_dir/<spec name>/`` files and ``out_dir/summary.md`` atomically."""
    from itb.adapters.run_output import write_output_dir, write_pump_run_files
    from itb.services.pump_run import run_pump
    from itb.services.pump_summary import highlights

    runs: list[DemoRun] = []
    for path in spec_paths:
        made: dict[str, Any] = {}
        spec = load_pump_spec(path, record=made)
        result = run_pump(spec, catalog())
        runs.append(
            DemoRun(
                path,
                path.stem,
                spec.name or path.stem,
                spec.description,
                result,
                tuple(highlights(result)),
                made,
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
            write_pump_run_files(run.result, sub, provenance=run.provenance)
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


def load_scenario(
    path: Path,
    *,
    field: str = "SCENARIO.toml",
    sets: Sequence[str] = (),
    record: dict[str, Any] | None = None,
) -> Scenario:
    """Read and validate a scenario file, with ``--set`` changes (one-line InvalidValue
    on any problem)."""
    from itb.services.scenario import parse_scenario

    return _with_sets(parse_scenario, read_toml_file(path, field=field), sets, record)


def builtin_scenario(
    name: str, *, sets: Sequence[str] = (), record: dict[str, Any] | None = None
) -> Scenario:
    """A built-in scenario from itb/data/scenarios (validated), with ``--set`` changes."""
    from itb.services.scenario import parse_scenario

    return _with_sets(parse_scenario, load_builtin_scenario_table(name), sets, record)


def builtin_scenario_text(name: str) -> str:
    """A built-in scenario's TOML as written (to start one's own from)."""
    return load_builtin_scenario_text(name)


def run_scenario_course(
    scenario: Scenario,
    *,
    progress: Callable[[float], None] | None = None,
    sample_every_h: float | None = None,
) -> ScenarioResult:
    """Run a validated scenario against the reviewed data."""
    from itb.services.scenario import run_scenario

    return run_scenario(scenario, catalog(), progress=progress, sample_every_h=sample_every_h)


def write_course_report(result: ScenarioResult, out_dir: Path) -> Path:
    """Write one course's files (report, plots, tables) to ``out_dir`` atomically; return
    the directory."""
    from itb.adapters.report_files import write_course_report as write

    return write(result, out_dir)


# ------------------------------------------------------------------ virtual cohort trials


def cohort_setup() -> CohortTrialSetup:
    """Reviewed data for the cohort engine (patients, titration, pumps, hazards, refill checks).

    The trial's own seed, size, horizon and arms are filled in by ``run_cohort_trial``.
    """
    from itb.simulation.cohort_trial import TrialSetup as CohortTrialSetup
    from itb.simulation.course import CourseSettings
    from itb.simulation.population import Population
    from itb.simulation.vector_engine import CohortData

    cat = catalog()
    return CohortTrialSetup(
        seed=0,
        patients=0,
        horizon_days=0,
        arms=(),
        population=Population.from_table(cat.patient_table),
        course=CourseSettings.from_table(
            cat.patient_table, cat.protocol.goal(), cat.library.hard_max_by_rule_group()
        ),
        rules=cat.titration,
        data=CohortData.from_table(cat.cohort_table),
        presets=cat.presets,
        catheter_ml_per_cm={k: f.volume_ml_per_cm for k, f in cat.catheters.items()},
        tolerance=cat.refill_tolerance,
        goal=cat.protocol.goal(),
        dose_hard_max_mcg_per_day=cat.library.hard_max_by_rule_group(),
        complications=cat.complications,
    )


def load_cohort_trial(
    path: Path,
    *,
    field: str = "TRIAL.toml",
    sets: Sequence[str] = (),
    record: dict[str, Any] | None = None,
) -> TrialSpec:
    """Read and validate a trial file, with ``--set`` changes (one-line InvalidValue on
    any problem)."""
    from itb.services.cohort_trial import parse_trial

    cat = catalog()
    return _with_sets(
        lambda t: parse_trial(t, cat), read_toml_file(path, field=field), sets, record
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
    from itb.services.cohort_trial import run_trial

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
    from itb.adapters.cohort_output import write_trial_output

    return write_trial_output(summary, out_dir)


def run_forecast_trial(
    *,
    pumps: int,
    years: float,
    seed: int,
    resamples: int,
    misspecified_interval_sd: float | None = None,
    misspecified_spread_sd: float | None = None,
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The reservoir forecast scored in a virtual clinic: its summary (with provenance)
    and the arrays of its plots."""
    from itb.services.forecast_trial import run_forecast_trial as forecast_trial

    table = load_data_table("forecast")
    trial = forecast_trial(
        catalog(), table, pumps=pumps, years=years, seed=seed, resamples=resamples,
        misspecified_interval_sd=misspecified_interval_sd,
        misspecified_spread_sd=misspecified_spread_sd,
    )  # fmt: skip
    summary = dict(trial.summary)
    summary["provenance"] = provenance(
        {"pumps": pumps, "years": years, "seed": seed, "resamples": resamples,
         "misspecified_interval_sd": misspecified_interval_sd,
         "misspecified_spread_sd": misspecified_spread_sd, "forecast": table}
    )  # fmt: skip
    return summary, trial.plots


def write_forecast_trial(
    summary: Mapping[str, Any], plots: Mapping[str, Any], out_dir: Path
) -> Path:
    """Write summary.json, summary.md and the PNG plots atomically."""
    from itb.adapters.forecast_output import write_forecast_trial as write_forecast_output

    return write_forecast_output(summary, plots, out_dir)


# ------------------------------------------------------------------ clinic registry


@dataclass
class ClinicHandle:
    """The registry at one URL and the clinic service on it."""

    registry: Registry
    service: ClinicService

    def close(self) -> None:
        """Write what the service still holds, then release the database connections."""
        self.service.close()
        self.registry.close()


def password_hasher() -> PasswordHasher:
    """Password hashing for registry accounts (Argon2id, the library's parameters)."""
    from itb.adapters.passwords import Argon2Hasher

    return Argon2Hasher()


def clinic(
    url: str,
    *,
    create: bool = False,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
) -> ClinicHandle:
    """The clinic service on the registry at ``url``.

    Args:
        url: a SQLite or PostgreSQL URL (``ITB_DATABASE_URL`` / ``--db``).
        create: set up (or migrate) the schema first; otherwise a registry without this
            ``itb``'s schema is refused.
        clock: the registry's clock (default: the machine's, UTC).
        hasher: password hashing (default: Argon2id with the library's parameters).
    """
    from itb.adapters.registry import SystemClock, open_registry
    from itb.services.clinic import ClinicService

    registry = open_registry(url)
    try:
        if create:
            registry.create()
        else:
            registry.require_current()
    except BaseException:
        registry.close()
        raise
    service = ClinicService(
        registry.uow,
        catalog(),
        clock or SystemClock(),
        hasher or password_hasher(),
        read_uow=registry.read_uow,
    )
    return ClinicHandle(registry, service)
