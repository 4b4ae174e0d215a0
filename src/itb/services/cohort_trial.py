"""Virtual trials: the TOML trial file (docs/cohort-trials.md), validated, and its run.

:func:`parse_trial` turns the file's table into a :class:`TrialSpec` or raises
:class:`itb.domain.errors.InvalidValue` with ONE line naming the field, the value
and what is allowed (``arm[1].refill_margin_days = -3 is not allowed; ...``).
:func:`run_trial` simulates it chunk by chunk (in this process or on a dask
cluster) and returns the summary as plain data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from itb.domain.clinical.complications import Bridge
from itb.domain.errors import InvalidValue
from itb.domain.patient import Cause
from itb.domain.pump import PatientBolusSettings, PumpKind, PumpPreset
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.services.catalog import Catalog
from itb.services.limits import MAX_PATIENTS
from itb.services.toml_fields import Fields
from itb.simulation.arm_program import PROGRAM_KINDS, ProgramShape
from itb.simulation.cohort_runner import run_chunks
from itb.simulation.cohort_summary import summarize
from itb.simulation.cohort_trial import TrialSetup
from itb.simulation.vector_engine import ArmPolicy

__all__ = [
    "ARM_KEYS",
    "MAX_HORIZON_YEARS",
    "MAX_PATIENTS",
    "TrialSpec",
    "default_arm",
    "parse_trial",
    "run_trial",
]

MAX_HORIZON_YEARS = 10.0
MAX_NAME_CHARS = 200
"""The longest trial or arm name (it titles tables and plots), as a pump spec's name."""
MAX_DESCRIPTION_CHARS = 2000
ARM_KEYS = (
    "name",
    "pump",
    "refill",
    "refill_interval_days",
    "refill_margin_days",
    "low_reservoir_alarm_ml",
    "titration",
    "inpatient_titration_days",
    "visit_interval_days",
    "initial_concentration_mcg_per_ml",
    "concentrations_mcg_per_ml",
    "min_refill_interval_days",
    "catheter",
    "replacement_after_eri_days",
    "program",
    "flex_steps",
    "periodic_fraction",
    "periodic_interval_h",
    "periodic_duration_h",
    "periodic_first_start_h",
    "bridge_bolus",
    "patient_bolus",
    "complications",
    "bridge",
)
PATIENT_BOLUS_KEYS = ("dose_mcg", "duration_h", "lockout_h", "max_per_day", "request_hours")


@dataclass(frozen=True)
class TrialSpec:
    """A validated trial file."""

    name: str
    description: str
    patients: int
    horizon_years: float
    seed: int
    cause_weights: dict[str, float] | None
    arms: tuple[ArmPolicy, ...]

    @property
    def horizon_days(self) -> int:
        """Whole days simulated."""
        return round(self.horizon_years * DAYS_PER_YEAR)


def _int(f: Fields, key: str, lo: int, hi: int, default: int | None = None) -> int:
    if default is not None and not f.has(key):
        return default
    value = f.table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidValue(f.name(key), value, f"a whole number from {lo} to {hi}")
    return value


def _num(f: Fields, key: str, lo: float, hi: float, default: float) -> float:
    if not f.has(key):
        return default
    value = f.table.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise InvalidValue(f.name(key), value, f"a number from {lo:g} to {hi:g}")
    return float(value)


def default_arm(catalog: Catalog, name: str, **overrides: Any) -> ArmPolicy:
    """An arm with the protocol's reviewed defaults (``protocol.toml``), overridden by
    keyword (the same names as :class:`ArmPolicy`)."""
    proto = catalog.protocol
    pump = str(overrides.get("pump", _default_pump(catalog)))
    preset = catalog.preset(pump, field="pump")
    strengths = catalog.library.pump_strengths(preset.kind.value)
    values: dict[str, Any] = {
        "name": name,
        "pump": pump,
        "refill": "margin",
        "refill_interval_days": round(proto["refill_interval_days"]),
        "refill_margin_days": round(proto["refill_margin_travel_days"]),
        "low_reservoir_alarm_ml": preset.low_reservoir_alarm_default_ml,
        "titration": "label",
        "inpatient_titration_days": round(proto["inpatient_titration_days"]),
        "visit_interval_days": round(proto["cohort_visit_every_days"]),
        "initial_concentration_mcg_per_ml": strengths[0],
        "concentrations_mcg_per_ml": strengths,
        "min_refill_interval_days": proto["min_refill_interval_days"],
        "replacement_after_eri_days": round(proto["replacement_after_eri_days"]),
        "program": ProgramShape(),
        "bridge_bolus": False,
        "patient_bolus": None,
        "patient_bolus_request_hours": _request_hours(catalog),
        "catheter": preset.default_catheter,
        "complications": False,
        "bridge": catalog.complications.bridging.bridge,
    }
    unknown = set(overrides) - set(values)
    if unknown:
        raise InvalidValue("arm", sorted(unknown)[0], ", ".join(sorted(values)))
    values.update(overrides)
    return ArmPolicy(**values)


def _default_pump(catalog: Catalog) -> str:
    """The first programmable preset with a battery (the labelled SynchroMed II-like 20 mL)."""
    return _usable_pumps(catalog.presets)[0]


def _usable_pumps(presets: Mapping[str, PumpPreset]) -> list[str]:
    return sorted(
        (k for k, p in presets.items() if p.kind is not PumpKind.CONSTANT_FLOW and p.battery),
        key=lambda k: (presets[k].kind.value != "peristaltic", presets[k].reservoir_ml, k),
    )


def _request_hours(catalog: Catalog) -> tuple[float, ...]:
    proto = catalog.protocol
    return (
        proto["patient_bolus_request_morning_h"],
        proto["patient_bolus_request_evening_h"],
    )


def _arm(table: object, where: str, catalog: Catalog) -> ArmPolicy:
    f = Fields(table, where, ARM_KEYS)
    presets = catalog.presets
    pump = f.choice("pump", _usable_pumps(presets), default=_default_pump(catalog))
    d = default_arm(catalog, "default", pump=pump)
    preset = presets[pump]
    products = catalog.library.pump_strengths(preset.kind.value)
    concs: tuple[float, ...] = d.concentrations_mcg_per_ml
    if f.has("concentrations_mcg_per_ml"):
        raw = f.table["concentrations_mcg_per_ml"]
        allowed = "a list of drug product concentrations from: " + ", ".join(
            f"{c:g}" for c in products
        )
        if not isinstance(raw, list) or not raw:
            raise InvalidValue(f.name("concentrations_mcg_per_ml"), raw, allowed)
        for c in raw:
            if isinstance(c, bool) or not isinstance(c, (int, float)) or float(c) not in products:
                raise InvalidValue(f.name("concentrations_mcg_per_ml"), c, allowed)
        concs = tuple(sorted({float(c) for c in raw}))
    initial = _num(f, "initial_concentration_mcg_per_ml", 0.0, math.inf, concs[0])
    if initial not in concs:
        raise InvalidValue(
            f.name("initial_concentration_mcg_per_ml"),
            initial,
            "one of concentrations_mcg_per_ml: " + ", ".join(f"{c:g}" for c in concs),
        )
    lo_alarm, hi_alarm = preset.low_reservoir_alarm_min_ml, preset.low_reservoir_alarm_max_ml
    shape = _program(f, preset, catalog)
    patient_bolus, request_hours = _patient_bolus(f, preset, catalog)
    bridge_bolus = False
    if f.has("bridge_bolus"):
        bridge_bolus = f.boolean("bridge_bolus")
    min_interval: float | None = d.min_refill_interval_days
    if f.has("min_refill_interval_days"):
        min_interval = _num(f, "min_refill_interval_days", 0.0, 365.0, 0.0) or None
    catheter = f.choice("catheter", sorted(catalog.catheters), default=d.catheter)
    complications = f.boolean("complications") if f.has("complications") else d.complications
    bridge = Bridge(f.choice("bridge", tuple(b.value for b in Bridge), default=d.bridge.value))
    return ArmPolicy(
        name=f.text("name", max_chars=MAX_NAME_CHARS),
        pump=pump,
        refill=f.choice("refill", ("interval", "margin"), default=d.refill),  # type: ignore[arg-type]
        refill_interval_days=_int(f, "refill_interval_days", 1, 365, d.refill_interval_days),
        refill_margin_days=_int(f, "refill_margin_days", 0, 90, d.refill_margin_days),
        low_reservoir_alarm_ml=_num(
            f, "low_reservoir_alarm_ml", lo_alarm, hi_alarm, preset.low_reservoir_alarm_default_ml
        ),
        titration=f.choice("titration", ("label", "hold"), default=d.titration),  # type: ignore[arg-type]
        inpatient_titration_days=_int(
            f, "inpatient_titration_days", 0, 30, d.inpatient_titration_days
        ),
        visit_interval_days=_int(f, "visit_interval_days", 1, 365, d.visit_interval_days),
        initial_concentration_mcg_per_ml=initial,
        concentrations_mcg_per_ml=concs,
        min_refill_interval_days=min_interval,
        replacement_after_eri_days=_int(
            f, "replacement_after_eri_days", 0, 3650, d.replacement_after_eri_days
        ),
        program=shape,
        bridge_bolus=bridge_bolus,
        patient_bolus=patient_bolus,
        patient_bolus_request_hours=request_hours,
        catheter=catheter,
        complications=complications,
        bridge=bridge,
    )


def _prefixed(where: str, error: InvalidValue) -> InvalidValue:
    """The same refusal with the arm's path in front of the field name."""
    field = error.field.removeprefix("arm.")
    return InvalidValue(f"{where}.{field}", error.value, error.allowed)


def _program(f: Fields, preset: PumpPreset, catalog: Catalog) -> ProgramShape:
    kind = f.choice("program", PROGRAM_KINDS, default="continuous")
    proto = catalog.protocol
    d = ProgramShape(
        "continuous",
        periodic_fraction=proto["periodic_bolus_fraction"],
        periodic_interval_h=proto["periodic_interval_h"],
        periodic_duration_h=proto["periodic_bolus_duration_h"],
    )
    steps = d.flex_steps
    if f.has("flex_steps"):
        raw = f.table["flex_steps"]
        allowed = "a list of [start hour, relative rate] pairs, e.g. [[0, 1.0], [21, 1.5]]"
        if not isinstance(raw, list) or not raw:
            raise InvalidValue(f.name("flex_steps"), raw, allowed)
        pairs = []
        for pair in raw:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in pair)
            ):
                raise InvalidValue(f.name("flex_steps"), pair, allowed)
            pairs.append((float(pair[0]), float(pair[1])))
        steps = tuple(pairs)
    try:
        shape = ProgramShape(
            kind,  # type: ignore[arg-type]
            flex_steps=steps,
            periodic_fraction=_num(f, "periodic_fraction", 0.0, 1.0, d.periodic_fraction),
            periodic_interval_h=_num(f, "periodic_interval_h", 0.0, 24.0, d.periodic_interval_h),
            periodic_duration_h=_num(f, "periodic_duration_h", 0.0, 24.0, d.periodic_duration_h),
            periodic_first_start_h=_num(
                f, "periodic_first_start_h", 0.0, 24.0, d.periodic_first_start_h
            ),
        )
        shape.check_pump(preset, "arm")
    except InvalidValue as error:
        if error.field.startswith(f.where):
            raise
        raise _prefixed(f.where, error) from None
    return shape


def _patient_bolus(
    f: Fields, preset: PumpPreset, catalog: Catalog
) -> tuple[PatientBolusSettings | None, tuple[float, ...]]:
    default_hours = _request_hours(catalog)
    if not f.has("patient_bolus"):
        return None, default_hours
    if not preset.patient_bolus_allowed_for_baclofen:
        raise InvalidValue(
            f.name("patient_bolus"),
            f.table["patient_bolus"],
            f"no patient_bolus on {preset.key} (it does not allow patient boluses of baclofen)",
        )
    g = Fields(f.table["patient_bolus"], f.name("patient_bolus"), PATIENT_BOLUS_KEYS)
    hours = default_hours
    if g.has("request_hours"):
        raw = g.table["request_hours"]
        if (
            not isinstance(raw, list)
            or not raw
            or any(
                isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < 24
                for h in raw
            )
        ):
            raise InvalidValue(
                g.name("request_hours"), raw, "a list of hours of the day, 0 <= h < 24"
            )
        hours = tuple(sorted({float(h) for h in raw}))
    library = catalog.library
    hard = max(p.bolus_hard_max_mcg.value for p in library.populations.values())
    try:
        settings = PatientBolusSettings(
            dose_mcg=g.number(
                "dose_mcg", minimum=0.0, maximum=hard, why="the drug library's bolus hard limit"
            ),
            duration_h=g.number(
                "duration_h", minimum=0.0, maximum=HOURS_PER_DAY, why="a bolus, not a program"
            ),
            lockout_h=g.number(
                "lockout_h", minimum=0.0, maximum=HOURS_PER_DAY, why="at least one bolus a day"
            ),
            max_per_day=_int(g, "max_per_day", 1, 24),
        )
    except InvalidValue as error:
        if error.field.startswith(g.where):
            raise
        raise InvalidValue(
            f"{g.where}.{error.field.removeprefix('patient_bolus ')}", error.value, error.allowed
        ) from None
    _bolus_rate_fits(g, settings, preset, catalog.library.pump_strengths(preset.kind.value))
    return settings, hours


def _bolus_rate_fits(
    g: Fields,
    settings: PatientBolusSettings,
    preset: PumpPreset,
    strengths: tuple[float, ...],
) -> None:
    """The bolus's rate within the pump's range at every product strength it may hold."""
    if settings.duration_h <= 0.0 or settings.dose_mcg <= 0.0:
        return
    lo = preset.min_rate_ml_per_day / HOURS_PER_DAY
    hi = preset.max_bolus_rate_ml_per_h
    for conc in strengths:
        rate = settings.dose_mcg / conc / settings.duration_h
        if not lo <= rate <= hi:
            shortest = settings.dose_mcg / conc / hi
            longest = settings.dose_mcg / conc / lo
            raise InvalidValue(
                g.name("duration_h"),
                settings.duration_h,
                f"{shortest:.3g} to {longest:.3g} h for {g.name('dose_mcg')} = "
                f"{settings.dose_mcg:g} mcg at {conc:g} mcg/mL (the pump's {preset.min_rate_ml_per_day:g} mL/day to "
                f"{hi:g} mL/h)",
            )


def parse_trial(table: Mapping[str, Any], catalog: Catalog) -> TrialSpec:
    """Validate a trial file's table.

    Raises:
        InvalidValue: one line naming the field, the value and what is allowed.
    """
    top = Fields(table, "", ("trial", "population", "arm"))
    t = Fields(
        top.table.get("trial"),
        "trial",
        ("name", "description", "patients", "horizon_years", "seed"),
    )
    if "trial" not in top.table:
        raise InvalidValue("trial", None, "a [trial] table (required)")
    patients = _int(t, "patients", 1, MAX_PATIENTS)
    horizon = _num(t, "horizon_years", 1.0 / DAYS_PER_YEAR, MAX_HORIZON_YEARS, math.nan)
    if math.isnan(horizon):
        raise InvalidValue("trial.horizon_years", None, "a number of years (required)")
    seed = _int(t, "seed", 0, 2**63 - 1)
    weights: dict[str, float] | None = None
    if "population" in top.table:
        p = Fields(top.table["population"], "population", ("cause_weights",))
        if p.has("cause_weights"):
            causes = tuple(c.value for c in Cause)
            cw = Fields(p.table["cause_weights"], "population.cause_weights", causes)
            weights = {c: _num(cw, c, 0.0, 1e9, 0.0) for c in causes if cw.has(c)}
            if not weights or sum(weights.values()) <= 0.0:
                raise InvalidValue(
                    "population.cause_weights", weights, "at least one cause with a weight > 0"
                )
    raw_arms = top.table.get("arm")
    if not isinstance(raw_arms, list) or len(raw_arms) < 2:
        raise InvalidValue(
            "arm", raw_arms if raw_arms is None else len(raw_arms), "two or more [[arm]] tables"
        )
    arms = tuple(_arm(a, f"arm[{i}]", catalog) for i, a in enumerate(raw_arms))
    names = [a.name for a in arms]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidValue(f"arm[{i}].name", name, "a name not used by another arm")
    return TrialSpec(
        name=t.text("name", max_chars=MAX_NAME_CHARS),
        description=t.text("description", default="", max_chars=MAX_DESCRIPTION_CHARS),
        patients=patients,
        horizon_years=horizon,
        seed=seed,
        cause_weights=weights,
        arms=arms,
    )


def with_population_mix(setup: TrialSetup, weights: Mapping[str, float] | None) -> TrialSetup:
    """The setup with the trial's cause mix (causes not listed get weight 0)."""
    if weights is None:
        return setup
    pop = setup.population
    total = sum(weights.values())
    mix = tuple(weights.get(c.value, 0.0) / total for c in pop.causes)
    return replace(setup, population=replace(pop, cause_weights=mix))


def run_trial(
    spec: TrialSpec,
    setup: TrialSetup,
    *,
    chunk_size: int,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Simulate the trial and return its summary (JSON-ready).

    Args:
        spec: the validated trial.
        setup: reviewed data for the engine (from the composition root).
        chunk_size: patients per chunk (memory bound); the summary does not depend on it.
        workers: run on a local dask cluster of this many processes.
        scheduler: run on the dask cluster at this address.
        on_progress: called with the number of patients just finished.
    """
    if chunk_size < 1:
        raise InvalidValue("chunk_size", chunk_size, "a whole number >= 1")
    if workers is not None and workers < 1:
        raise InvalidValue("workers", workers, "a whole number >= 1")
    full = with_population_mix(
        replace(setup, seed=spec.seed, patients=spec.patients, horizon_days=spec.horizon_days,
                arms=spec.arms),
        spec.cause_weights,
    )  # fmt: skip
    partial = run_chunks(
        full, chunk_size=chunk_size, workers=workers, scheduler=scheduler, on_progress=on_progress
    )
    return summarize(
        partial,
        name=spec.name,
        seed=spec.seed,
        patients=spec.patients,
        horizon_days=spec.horizon_days,
        arms=[asdict(a) for a in spec.arms],
    )
