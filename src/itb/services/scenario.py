"""Scenarios: years of ITB therapy for one patient, from a TOML file (docs/scenarios.md).

A scenario names the patient (explicit, or a seeded population draw), the
pump and catheter (the pump-spec tables, :mod:`itb.services.pump_spec`), the
drug, the clinic's protocol (screening, titration, refills, check-ups,
battery), scheduled events, the horizon and the seed.

:func:`parse_scenario` validates the table and raises ONE
:class:`~itb.domain.errors.InvalidValue` naming the field, the value and what
is allowed; :func:`run_scenario` checks it against the reviewed data, builds
the course and runs the engine (:mod:`itb.simulation.engine`), returning plain
frozen data with wall-clock times. No I/O here: data tables come in through
a :class:`ScenarioCatalog` wired by ``itb.bootstrap``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from itb.domain.clinical.candidacy import check_cause_fits
from itb.domain.clinical.complications import Bridge, ComplicationKind
from itb.domain.clinical.dose_guard import DoseGuard
from itb.domain.clinical.drug_library import population_for
from itb.domain.errors import InvalidValue, ITBError
from itb.domain.patient import (
    Cause,
    PatientParameters,
    PatientState,
    RiskFactors,
    WeightForAge,
    advance,
    typical_parameters,
)
from itb.domain.pump import CatheterSpec, Fault, FaultKind, Prescription, Pump, PumpPreset
from itb.domain.pump.commands import (
    Applied,
    BeginMri,
    CommandRecord,
    EndMri,
    InjectAccessPort,
    Interrogate,
    PumpCommand,
    RepairFault,
    Reprogram,
    RequestPatientBolus,
    SetEnvironment,
    SingleBolus,
    StartFault,
)
from itb.domain.pump.programs import Continuous
from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.services.catalog import Catalog
from itb.services.limits import MAX_SEED, WEIGHT_KG_RANGE
from itb.services.pump_check import check_access_port_drug
from itb.services.pump_spec import (
    AccessPortEvent,
    CatheterSection,
    ClockHours,
    EnvironmentEvent,
    FaultEvent,
    FieldError,
    InterrogateEvent,
    MriEndEvent,
    MriEvent,
    MriStartEvent,
    NonNegative,
    PatientBolusEvent,
    Positive,
    PumpSection,
    SingleBolusEvent,
    format_validation_error,
)
from itb.services.pump_spec import RepairEvent as PumpRepairEvent
from itb.services.wall_clock import WallClock
from itb.simulation.clinic import ClinicProtocol, FlexPlan, StartPlan
from itb.simulation.engine import (
    CourseRun,
    CourseSetup,
    MemoryRecorder,
    Sample,
    TimelineEntry,
    run_course,
)
from itb.simulation.events import (
    ComplicationOnset,
    ConcentrationChange,
    MissedRefill,
    PumpEvent,
    ScheduledEvent,
)
from itb.simulation.metrics import compute_metrics
from itb.simulation.population import Population, draw_patient
from itb.simulation.screening_run import ScreeningRun, run_screening

__all__ = [
    "MAX_SEED",
    "SCENARIO_EVENT_KINDS",
    "WEIGHT_KG_RANGE",
    "Scenario",
    "ScenarioResult",
    "ScreeningOutcome",
    "build_setup",
    "parse_scenario",
    "run_scenario",
    "scenario_patient",
    "screen_patient",
]

_MAX_HORIZON_DAYS = 20 * DAYS_PER_YEAR


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Score = Annotated[float, Field(ge=0, le=4, allow_inf_nan=False)]


# ------------------------------------------------------------------ patient


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
"""A seed (or a patient's index in a seeded cohort): a 64-bit signed whole number >= 0."""


class PopulationDraw(_Model):
    """Patient ``index`` of the population drawn with ``seed`` (default: the scenario's seed)."""

    index: Seed
    seed: Seed | None = None


class RiskSpec(_Model):
    """Withdrawal risk factors (label boxed warning)."""

    sci_at_or_above_t6: bool = False
    communication_difficulty: bool = False
    previous_withdrawal: bool = False


class PatientOverrides(_Model):
    """Model parameters to set instead of the typical values."""

    clearance_ml_per_h: Positive | None = None
    central_volume_ml: Positive | None = None
    ke0_per_h: Positive | None = None
    ec50_mcg_per_ml: Positive | None = None
    tolerance_max_fraction: NonNegative | None = None
    tolerance_drift_per_year: NonNegative | None = None
    withdrawal_susceptibility: Positive | None = None


class PatientSection(_Model):
    """``[patient]``: ``population = {index = ...}`` or an explicit typical patient."""

    population: PopulationDraw | None = None
    cause: (
        Literal[
            "spinal_cord_injury",
            "multiple_sclerosis",
            "cerebral_palsy",
            "traumatic_brain_injury",
            "stroke",
            "other",
        ]
        | None
    ) = None
    age_years: Annotated[float, Field(ge=4, le=100, allow_inf_nan=False)] = 40.0
    weight_kg: (
        Annotated[float, Field(gt=WEIGHT_KG_RANGE[0], le=WEIGHT_KG_RANGE[1], allow_inf_nan=False)]
        | None
    ) = None
    baseline_mas: Score | None = None
    baseline_psfs: Score = 3.0
    risk: RiskSpec = RiskSpec()
    overrides: PatientOverrides = PatientOverrides()

    @model_validator(mode="after")
    def _one_kind(self) -> PatientSection:
        if (self.population is None) == (self.cause is None):
            raise ValueError(
                "exactly one of population = {index = N} (a seeded draw) or cause = ... "
                "(an explicit patient)"
            )
        return self


# ------------------------------------------------------------------ protocol


class DrugSection(_Model):
    """``[drug]``: the baclofen concentration filled at implant."""

    concentration_mcg_per_ml: Positive


class ScreeningSpec(_Model):
    """The screening result, or ``run = true`` to run the trial on the virtual patient."""

    run: bool = False
    effective_dose_mcg: Positive | None = None
    effect_duration_h: NonNegative | None = None

    @model_validator(mode="after")
    def _result_or_run(self) -> ScreeningSpec:
        given = self.effective_dose_mcg is not None and self.effect_duration_h is not None
        if self.run == given:
            raise ValueError(
                "either run = true, or effective_dose_mcg and effect_duration_h (the result)"
            )
        return self


class EstablishedSpec(_Model):
    """A patient already on a stable dose (no titration; the run starts at a refill)."""

    dose_mcg_per_day: Positive
    on_therapy_days: Annotated[float, Field(gt=0, le=20 * DAYS_PER_YEAR)] = 365.0


class FlexSpec(_Model):
    """Day/night flex: ``day_rate_factor`` x the mean rate from ``day_start`` to ``night_start``."""

    day_start: ClockHours
    night_start: ClockHours
    day_rate_factor: Positive


class ProtocolSection(_Model):
    """``[protocol]``: how the clinic starts, titrates, refills, checks and replaces.

    Every number left out takes the reviewed protocol default (``protocol.toml``).
    """

    screening: ScreeningSpec | None = None
    established: EstablishedSpec | None = None
    goal_mas: Score | None = None
    therapeutic_mas: Annotated[list[Score], Field(min_length=2, max_length=2)] | None = None
    inpatient_titration_days: Annotated[int, Field(ge=1, le=14)] | None = None
    titration_visit_every_days: Annotated[float, Field(ge=1, le=30)] | None = None
    checkup_every_days: Annotated[float, Field(ge=90, le=183)] | None = None
    refill_margin_days: Annotated[float, Field(ge=0, le=60)] | None = None
    low_reservoir_alarm_ml: Positive | None = None
    battery_replacement_days_before_eri: Annotated[float, Field(ge=0, le=365)] | None = None
    symptom_check_time: ClockHours | None = None
    symptom_response_h: Annotated[float, Field(ge=0, le=168)] | None = None
    patient_reports_alarms: bool = True
    revision_delay_h: Annotated[float, Field(ge=0, le=720)] | None = None
    post_mri_check_h: Annotated[float, Field(ge=0, le=168)] | None = None
    min_refill_interval_days: Annotated[float, Field(ge=7, le=180)] | None = None
    flex: FlexSpec | None = None
    bridge: Literal["none", "oral", "intrathecal"] | None = None
    """How therapy is carried over while a pump is out (None: the reviewed default,
    ``complications.toml``)."""

    @model_validator(mode="after")
    def _start(self) -> ProtocolSection:
        if (self.screening is None) == (self.established is None):
            raise ValueError(
                "exactly one of screening = {...} (titration after implant) or "
                "established = {...} (a patient on a stable dose)"
            )
        if self.therapeutic_mas is not None:
            low, high = self.therapeutic_mas
            if not low < high:
                raise FieldError(
                    ("therapeutic_mas",), "[...]", "[low, high] with low < high (MAS 0-4)"
                )
        return self


# -------------------------------------------------------------------- events


class _Timed(_Model):
    day: NonNegative | None = None
    t_h: NonNegative | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _one_time(self) -> _Timed:
        if (self.day is None) == (self.t_h is None):
            raise ValueError("exactly one of day (days after implant) or t_h (hours after implant)")
        return self


class MissedRefillEvent(_Timed):
    """The first planned refill at or after this time is missed (no new date)."""

    kind: Literal["missed_refill"]


class LateRefillEvent(_Timed):
    """The first planned refill at or after this time happens ``late_by_days`` late."""

    kind: Literal["late_refill"]
    late_by_days: Annotated[float, Field(gt=0, le=365)]


class ConcentrationChangeEvent(_Timed):
    """Refill with a new concentration now (same daily dose), with or without a bridge bolus."""

    kind: Literal["concentration_change"]
    concentration_mcg_per_ml: Positive
    bridge_bolus: bool


class ComplicationEvent(_Timed):
    """A complication of the implanted system begins (``complications.toml`` says what it
    shows, does and how the clinic treats it)."""

    kind: Literal["complication"]
    complication: Literal[
        "wound_infection",
        "meningitis",
        "csf_leak",
        "skin_erosion",
        "pump_flip",
        "catheter_tip_mass",
        "haematoma",
        "neurological_injury",
    ]
    explant: bool | None = None
    """Whether it will need the pump out when found (None: the more likely course)."""


ScenarioEvent = Annotated[
    MissedRefillEvent
    | ComplicationEvent
    | LateRefillEvent
    | ConcentrationChangeEvent
    | FaultEvent
    | PumpRepairEvent
    | MriEvent
    | MriStartEvent
    | MriEndEvent
    | EnvironmentEvent
    | AccessPortEvent
    | SingleBolusEvent
    | PatientBolusEvent
    | InterrogateEvent,
    Field(discriminator="kind"),
]

SCENARIO_EVENT_KINDS: tuple[str, ...] = (
    "missed_refill",
    "late_refill",
    "concentration_change",
    "complication",
    "fault",
    "repair",
    "mri",
    "mri_start",
    "mri_end",
    "environment",
    "access_port_injection",
    "single_bolus",
    "patient_bolus",
    "interrogate",
)


class OutputSection(_Model):
    """``[output]``: the trajectories' sampling grid."""

    sample_every_h: Annotated[float, Field(ge=0.25, le=24)] = 1.0


class Scenario(_Model):
    """A whole scenario file."""

    name: Annotated[str, Field(max_length=200)] = ""
    description: Annotated[str, Field(max_length=2000)] = ""
    declared_hazard: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    """What the scenario deliberately models (an overdose, a mix-up): drug-library limits
    it passes are reported, not refused, and its outputs flag it."""
    seed: Seed = 0
    horizon_days: Annotated[float, Field(gt=0, le=_MAX_HORIZON_DAYS)]
    patient: PatientSection
    pump: PumpSection
    catheter: CatheterSection
    drug: DrugSection
    protocol: ProtocolSection
    events: list[ScenarioEvent] = []
    output: OutputSection = OutputSection()


def _tidy(exc: InvalidValue) -> InvalidValue:
    """Name this file's event kinds where an event's kind is refused."""
    if exc.field.startswith("events[") and exc.field.endswith(".kind"):
        return InvalidValue(exc.field, exc.value, ", ".join(SCENARIO_EVENT_KINDS))
    return exc


def parse_scenario(table: Mapping[str, Any]) -> Scenario:
    """Validate a scenario (a parsed TOML table).

    Raises:
        InvalidValue: the first problem, one line naming the field by its path.
    """
    try:
        return Scenario.model_validate(dict(table))
    except ValidationError as exc:
        error = format_validation_error(exc, Scenario, event_kinds=SCENARIO_EVENT_KINDS)
        raise _tidy(error) from None


# ------------------------------------------------------------------ catalog


@dataclass(frozen=True, slots=True)
class ScreeningOutcome:
    """A screening trial run on the virtual patient (:mod:`itb.simulation.screening_run`).

    Attributes:
        doses_mcg: boluses given, in order, mcg.
        effective_dose_mcg: the responding dose (None: not a candidate), mcg.
        effect_duration_h: hours after that bolus the response was last seen (the
            8-hour rule's duration), h.
        run: the whole trial (observations and assessments).
    """

    doses_mcg: tuple[float, ...]
    effective_dose_mcg: float | None
    effect_duration_h: float | None
    run: ScreeningRun


def screen_patient(patient: PatientParameters, catalog: Catalog) -> ScreeningOutcome:
    """Run the screening trial on the virtual patient by the protocol."""
    run = run_screening(
        catalog.screening, patient, titration=catalog.titration, origin=patient.origin
    )
    doses = tuple(b.dose_mcg for b in run.boluses)
    if run.verdict.kind != "responder" or not run.boluses:
        return ScreeningOutcome(doses, None, None, run)
    effective = run.boluses[-1]
    return ScreeningOutcome(
        doses, effective.dose_mcg, effective.assessment.last_response_h or 0.0, run
    )


@dataclass(frozen=True)
class ScenarioResult:
    """Everything a scenario run produced, with wall-clock times."""

    name: str
    description: str
    scenario: Scenario
    clock: WallClock
    pump_label: str
    patient: PatientParameters
    screening: ScreeningOutcome | None
    samples: tuple[Sample, ...]
    timeline: tuple[TimelineEntry, ...]
    run: CourseRun
    metrics: Mapping[str, Any]
    protocol: ClinicProtocol
    """The clinic's protocol as run: the scenario's values, else the reviewed defaults."""
    low_reservoir_alarm_ml: float
    """The low-reservoir alarm volume programmed (the protocol's, else the pump's default)."""

    def iso(self, t_h: float) -> str:
        """Local ISO date-time of run time ``t_h``."""
        return self.clock.iso(t_h)


# ------------------------------------------------------------------ building


def scenario_patient(scenario: Scenario, catalog: Catalog) -> PatientParameters:
    """The scenario's virtual patient (drawn from the population, or as specified)."""
    spec = scenario.patient
    if spec.population is not None:
        seed = scenario.seed if spec.population.seed is None else spec.population.seed
        params = draw_patient(
            Population.from_table(catalog.patient_table), seed, spec.population.index
        )
    else:
        assert spec.cause is not None
        check_cause_fits(
            spec.cause, sci_at_or_above_t6=spec.risk.sci_at_or_above_t6, where="patient."
        )
        if spec.weight_kg is not None:
            WeightForAge.from_table(catalog.patient_table).check(
                spec.age_years, spec.weight_kg, field="patient.weight_kg"
            )
        params = typical_parameters(
            catalog.patient_table,
            Cause(spec.cause),
            age_years=spec.age_years,
            weight_kg=spec.weight_kg,
            baseline_mas=spec.baseline_mas,
            baseline_psfs=spec.baseline_psfs,
            risk=RiskFactors(
                spec.risk.sci_at_or_above_t6,
                spec.risk.communication_difficulty,
                spec.risk.previous_withdrawal,
            ),
        )
    o = spec.overrides
    pk = replace(
        params.pk,
        **{
            k: v
            for k, v in (
                ("clearance_ml_per_h", o.clearance_ml_per_h),
                ("central_volume_ml", o.central_volume_ml),
            )
            if v is not None
        },
    )
    pd = replace(
        params.pd,
        **{
            k: v
            for k, v in (("ke0_per_h", o.ke0_per_h), ("ec50_mcg_per_ml", o.ec50_mcg_per_ml))
            if v is not None
        },
    )
    adaptation = replace(
        params.adaptation,
        **{
            k: v
            for k, v in (
                ("tolerance_max_fraction", o.tolerance_max_fraction),
                ("tolerance_drift_per_year", o.tolerance_drift_per_year),
                ("withdrawal_susceptibility", o.withdrawal_susceptibility),
            )
            if v is not None
        },
    )
    return replace(params, pk=pk, pd=pd, adaptation=adaptation)


def _event_t_h(ev: Any) -> float:
    if ev.t_h is not None:
        return float(ev.t_h)
    return float(ev.day) * HOURS_PER_DAY


def _events(scenario: Scenario, clock: WallClock) -> tuple[ScheduledEvent, ...]:
    horizon_h = scenario.horizon_days * HOURS_PER_DAY
    out: list[ScheduledEvent] = []
    for i, ev in enumerate(scenario.events):
        where = f"events[{i}]"
        if isinstance(
            ev, (MissedRefillEvent, LateRefillEvent, ConcentrationChangeEvent, ComplicationEvent)
        ):
            times = [_event_t_h(ev)]
        else:
            t0 = clock.t_h(ev.at, field=f"{where}.at") if ev.at is not None else _event_t_h(ev)
            if t0 < 0:
                raise InvalidValue(f"{where}.at", str(ev.at), "at or after pump.implanted_at")
            times = [t0]
            if ev.repeat_every_days is not None:
                k = 1
                while ev.repeat_count is None or k <= ev.repeat_count:
                    t = t0 + k * ev.repeat_every_days * HOURS_PER_DAY
                    if t > horizon_h:
                        break
                    times.append(t)
                    k += 1
        if times[0] > horizon_h + 1e-9:
            field = "day" if getattr(ev, "day", None) is not None else "t_h"
            raise InvalidValue(
                f"{where}.{field}",
                getattr(ev, field, None),
                f"within horizon_days ({scenario.horizon_days:g} days)",
            )
        for t in times:
            match ev:
                case MissedRefillEvent():
                    out.append(MissedRefill(t, None, ev.reason))
                case LateRefillEvent():
                    out.append(MissedRefill(t, ev.late_by_days, ev.reason))
                case ConcentrationChangeEvent():
                    out.append(
                        ConcentrationChange(
                            t, ev.concentration_mcg_per_ml, ev.bridge_bolus, ev.reason
                        )
                    )
                case ComplicationEvent():
                    out.append(
                        ComplicationOnset(
                            t, ComplicationKind(ev.complication), ev.explant, ev.reason
                        )
                    )
                case MriEvent():
                    out.append(PumpEvent(t, BeginMri(), ev.reason))
                    out.append(PumpEvent(t + ev.duration_h, EndMri(), ev.reason))
                case _:
                    try:
                        command = _pump_command(ev)
                    except ITBError as exc:
                        raise exc.within(where) from None
                    out.append(PumpEvent(t, command, ev.reason))
    return tuple(out)


def _pump_command(ev: Any) -> PumpCommand:
    """The domain pump command of a scenario's pump event."""
    match ev:
        case FaultEvent():
            return StartFault(Fault(FaultKind(ev.fault), ev.fraction, ev.factor, ev.critical))
        case PumpRepairEvent():
            return RepairFault(FaultKind(ev.fault))
        case MriStartEvent():
            return BeginMri()
        case MriEndEvent():
            return EndMri()
        case EnvironmentEvent():
            return SetEnvironment(ev.body_temperature_degc, ev.ambient_pressure_kpa)
        case AccessPortEvent():
            return InjectAccessPort(
                ev.volume_ml,
                ev.concentration_mcg_per_ml,
                ev.duration_h,
                acknowledge_overdose_hazard=ev.acknowledge_overdose_hazard,
            )
        case SingleBolusEvent():
            return Reprogram(bolus=SingleBolus(ev.dose_mcg, ev.duration_h))
        case PatientBolusEvent():
            return RequestPatientBolus()
        case InterrogateEvent():
            return Interrogate()
    raise InvalidValue("kind", getattr(ev, "kind", None), ", ".join(SCENARIO_EVENT_KINDS))


def build_setup(
    scenario: Scenario, catalog: Catalog
) -> tuple[CourseSetup, WallClock, PatientParameters, ScreeningOutcome | None]:
    """Check the scenario against the reviewed data and build the engine's setup.

    The patient's drug-library population (age and origin) binds the limits every
    pump of the course enforces: the established dose, the clinic's programs and the
    scenario's boluses all meet them.

    Raises:
        InvalidValue: a preset, catheter, concentration, dose or protocol value the
            data refuse (one line naming the scenario field).
    """
    clock = WallClock(scenario.pump.implanted_at, scenario.pump.timezone)
    preset = catalog.preset(scenario.pump.preset)
    catheter = catalog.catheter(scenario.catheter.family, scenario.catheter.implanted_length_cm)
    patient = scenario_patient(scenario, catalog)
    population = population_for(catalog.library, age_years=patient.age_years, origin=patient.origin)
    guard = catalog.guard(population, declared_hazard=scenario.declared_hazard)
    kind = preset.kind.value
    try:
        guard.check_concentration(scenario.drug.concentration_mcg_per_ml, kind)
    except ITBError as exc:
        raise exc.within("drug") from None
    band = preset.accuracy_band_pct / 100.0
    if abs(scenario.pump.accuracy_factor - 1.0) > band + 1e-12:
        raise InvalidValue(
            "pump.accuracy_factor",
            scenario.pump.accuracy_factor,
            f"{1 - band:.4g} to {1 + band:.4g} (the rated ±{preset.accuracy_band_pct:g} %; "
            "use an overinfusion_drift fault to go beyond)",
        )
    proto = scenario.protocol
    if proto.flex is not None and not preset.programmable:
        raise InvalidValue(
            "protocol.flex", "{...}", f"none: {preset.label} has a fixed flow (no flex program)"
        )
    if proto.low_reservoir_alarm_ml is not None and not (
        preset.low_reservoir_alarm_min_ml
        <= proto.low_reservoir_alarm_ml
        <= preset.low_reservoir_alarm_max_ml
    ):
        raise InvalidValue(
            "protocol.low_reservoir_alarm_ml",
            proto.low_reservoir_alarm_ml,
            f"{preset.low_reservoir_alarm_min_ml:g} to {preset.low_reservoir_alarm_max_ml:g}",
        )
    if proto.established is not None:
        est = proto.established
        try:
            guard.check_prescription(
                Prescription(
                    Continuous(est.dose_mcg_per_day), scenario.drug.concentration_mcg_per_ml
                ),
                pump_kind=kind,
                override_reason=proto_soft_reason(catalog),
            )
        except ITBError as exc:
            raise (
                exc.renamed("protocol.established.dose_mcg_per_day")
                if isinstance(exc, InvalidValue)
                else exc.within("protocol.established")
            ) from None
    for i, ev in enumerate(scenario.events):
        if isinstance(ev, ConcentrationChangeEvent):
            try:
                guard.check_concentration(ev.concentration_mcg_per_ml, kind)
            except ITBError as exc:
                raise exc.within(f"events[{i}]") from None
            if ev.bridge_bolus and not preset.programmable:
                raise InvalidValue(
                    f"events[{i}].bridge_bolus", True, f"false: {preset.label} cannot give boluses"
                )
        if isinstance(ev, (SingleBolusEvent, PatientBolusEvent)) and not preset.programmable:
            raise InvalidValue(
                f"events[{i}].kind", ev.kind, f"another event: {preset.label} is not programmable"
            )
        if isinstance(ev, SingleBolusEvent):
            try:
                guard.check_bolus(ev.dose_mcg, scenario.drug.concentration_mcg_per_ml, kind, None)
            except ITBError as exc:
                raise exc.within(f"events[{i}]") from None
    _check_against_pump(scenario, catalog, preset, catheter, guard, population)

    screening: ScreeningOutcome | None = None
    state = PatientState()
    if proto.established is not None:
        est = proto.established
        start = StartPlan(
            "established",
            dose_mcg_per_day=est.dose_mcg_per_day,
            established_days=est.on_therapy_days,
        )
        state = advance(
            patient,
            state,
            est.dose_mcg_per_day / HOURS_PER_DAY,
            est.on_therapy_days * HOURS_PER_DAY,
        )
        state = replace(state, t_h=0.0)
    else:
        assert proto.screening is not None
        if proto.screening.run:
            screening = screen_patient(patient, catalog)
            if screening.effective_dose_mcg is None:
                raise InvalidValue(
                    "protocol.screening.run",
                    True,
                    "a patient who responds to screening (this one did not respond to "
                    f"{', '.join(f'{d:g}' for d in screening.doses_mcg)} mcg: not a candidate)",
                )
            start = StartPlan(
                "screening",
                effective_dose_mcg=screening.effective_dose_mcg,
                effect_duration_h=screening.effect_duration_h or 0.0,
            )
        else:
            assert proto.screening.effective_dose_mcg is not None
            start = StartPlan(
                "screening",
                effective_dose_mcg=proto.screening.effective_dose_mcg,
                effect_duration_h=proto.screening.effect_duration_h or 0.0,
            )
    d = catalog.protocol
    implant_hour = clock.hour_of_day(0.0)
    check_hour = (
        d["symptom_check_hour"] if proto.symptom_check_time is None else proto.symptom_check_time
    )
    offset = (check_hour - implant_hour) % HOURS_PER_DAY or HOURS_PER_DAY
    mas_band = proto.therapeutic_mas or [d["therapeutic_mas_low"], d["therapeutic_mas_high"]]
    goal_mas = d["goal_mas"] if proto.goal_mas is None else proto.goal_mas
    if not mas_band[0] <= goal_mas <= 4.0:
        raise InvalidValue(
            "protocol.goal_mas",
            goal_mas,
            f"between protocol.therapeutic_mas low ({mas_band[0]:g}) and 4",
        )

    def given(value: float | None, key: str) -> float:
        return d[key] if value is None else value

    protocol = ClinicProtocol(
        start=start,
        goal_mas=given(proto.goal_mas, "goal_mas"),
        therapeutic_mas_low=mas_band[0],
        therapeutic_mas_high=mas_band[1],
        inpatient_titration_days=round(
            given(proto.inpatient_titration_days, "inpatient_titration_days")
        ),
        titration_visit_every_days=given(
            proto.titration_visit_every_days, "titration_visit_every_days"
        ),
        max_titration_days=d["max_titration_days"],
        checkup_every_days=given(proto.checkup_every_days, "checkup_every_days"),
        refill_margin_days=given(proto.refill_margin_days, "refill_margin_travel_days"),
        low_reservoir_alarm_ml=proto.low_reservoir_alarm_ml,
        battery_replacement_days_before_eri=given(
            proto.battery_replacement_days_before_eri, "battery_replacement_days_before_eri"
        ),
        symptom_check_every_h=d["symptom_check_every_h"],
        symptom_check_offset_h=offset,
        symptom_response_h=given(proto.symptom_response_h, "symptom_response_h"),
        patient_reports_alarms=proto.patient_reports_alarms,
        urgent_cooldown_h=d["urgent_cooldown_h"],
        residual_check_after_h=d["residual_check_after_h"],
        unexplained_window_h=d["unexplained_withdrawal_window_h"],
        revision_delay_h=given(proto.revision_delay_h, "revision_delay_h"),
        post_mri_check_h=given(proto.post_mri_check_h, "post_mri_check_h"),
        post_procedure_watch_h=d["post_procedure_watch_h"],
        priming_duration_h=d["priming_duration_h"],
        flex=None if proto.flex is None else _flex_plan(proto.flex),
        min_refill_interval_days=proto.min_refill_interval_days,
        product_concentrations_mcg_per_ml=catalog.library.pump_strengths(kind),
        dose_hard_max_mcg_per_day=catalog.library.limits(
            population
        ).daily_dose_hard_max_mcg_per_day.value,
        soft_limit_reason=proto_soft_reason(catalog),
        complications=catalog.complications,
        bridge=(
            catalog.complications.bridging.bridge if proto.bridge is None else Bridge(proto.bridge)
        ),
    )
    accuracy = scenario.pump.accuracy_factor

    def build_pump(t_h: float, n: int) -> Pump:
        return Pump(
            preset,
            catheter,
            t_h=t_h,
            accuracy_factor=accuracy if n == 0 else 1.0,
            pump_clock_offset_h=clock.pump_clock_offset_h(t_h),
            guard=guard,
        )

    setup = CourseSetup(
        patient=patient,
        patient_state=state,
        build_pump=build_pump,
        protocol=protocol,
        rules=catalog.titration,
        tolerance=catalog.refill_tolerance,
        concentration_mcg_per_ml=scenario.drug.concentration_mcg_per_ml,
        max_days_in_pump=catalog.drugs.max_days_in_pump,
        events=_events(scenario, clock),
        horizon_h=scenario.horizon_days * HOURS_PER_DAY,
        sample_every_h=scenario.output.sample_every_h,
        complications=catalog.complications,
    )
    return setup, clock, patient, screening


def _check_against_pump(
    scenario: Scenario,
    catalog: Catalog,
    preset: PumpPreset,
    catheter: CatheterSpec,
    guard: DoseGuard,
    population: str,
) -> None:
    """What the pump (and the screening protocol) would refuse only when it happens,
    checked before the course runs and named by the scenario's field."""
    scratch = Pump(preset, catheter, t_h=0.0, guard=guard)
    conc = scenario.drug.concentration_mcg_per_ml
    for i, ev in enumerate(scenario.events):
        try:
            if isinstance(ev, AccessPortEvent):
                scratch.validate_access_port_injection(
                    ev.volume_ml, ev.concentration_mcg_per_ml, ev.duration_h
                )
                check_access_port_drug(catalog.library, ev.concentration_mcg_per_ml)
            elif isinstance(ev, FaultEvent):
                scratch.validate_fault(Fault(FaultKind(ev.fault), ev.fraction, ev.factor))
        except ITBError as exc:
            raise exc.within(f"events[{i}]") from None
    proto = scenario.protocol
    if proto.established is not None and preset.programmable:
        try:
            scratch.validate_prescription(
                Prescription(Continuous(proto.established.dose_mcg_per_day), conc),
                held_concentration_mcg_per_ml=conc,
                override_reason=proto_soft_reason(catalog),
            )
        except InvalidValue as exc:
            raise exc.renamed("protocol.established.dose_mcg_per_day") from None
    screening = proto.screening
    if screening is not None and screening.effective_dose_mcg is not None:
        doses = [d.value for seq in catalog.screening.sequences.values() for d in seq]
        hard = catalog.library.limits(population).bolus_hard_max_mcg.value
        if not min(doses) <= screening.effective_dose_mcg <= hard:
            raise InvalidValue(
                "protocol.screening.effective_dose_mcg",
                screening.effective_dose_mcg,
                f"a screening dose from {min(doses):g} mcg (the smallest the protocol gives) "
                f"to {hard:g} mcg (the drug library's bolus hard limit, {population})",
            )
    interval = catalog.screening.min_interval_h.value
    if (
        screening is not None
        and screening.effect_duration_h is not None
        and screening.effect_duration_h > interval
    ):
        raise InvalidValue(
            "protocol.screening.effect_duration_h",
            screening.effect_duration_h,
            f"<= {interval:g} h (the next screening bolus comes {interval:g} h later)",
        )
    if proto.flex is not None and preset.programmable:
        day, night = _flex_plan(proto.flex).rates_mcg_per_h(HOURS_PER_DAY)
        most = preset.max_rate_ml_per_day / preset.min_rate_ml_per_day
        if max(day, night) > most * min(day, night):
            raise InvalidValue(
                "protocol.flex.day_rate_factor",
                proto.flex.day_rate_factor,
                f"a factor whose day and night rates differ at most {most:g}-fold (the "
                f"pump's rate range {preset.min_rate_ml_per_day:g} to "
                f"{preset.max_rate_ml_per_day:g} mL/day)",
            )


def proto_soft_reason(catalog: Catalog) -> str:
    """The reason the simulated clinician records when a dose by the label rules passes a
    drug-library soft limit (the limits are the edges of observed ranges, not maxima)."""
    return "dose by the label titration rules on the clinician's assessment (simulated clinic)"


def _flex_plan(spec: FlexSpec) -> FlexPlan:
    return FlexPlan(spec.day_start, spec.night_start, spec.day_rate_factor)


def run_scenario(
    scenario: Scenario,
    catalog: Catalog,
    *,
    progress: Callable[[float], None] | None = None,
    sample_every_h: float | None = None,
    on_command: Callable[[int, CommandRecord, Applied], None] | None = None,
) -> ScenarioResult:
    """Build and run a scenario; metrics included.

    Args:
        scenario: a validated scenario.
        catalog: the reviewed data.
        progress: called with the fraction done (0-1) now and then.
        sample_every_h: override the scenario's sampling grid, h.
        on_command: observes every pump command the course applied (see
            :class:`~itb.simulation.engine.CourseSetup`).

    Raises:
        InvalidValue: the scenario does not fit the reviewed data.
    """
    setup, clock, patient, screening = build_setup(scenario, catalog)
    if sample_every_h is not None:
        if not (math.isfinite(sample_every_h) and sample_every_h > 0):
            raise InvalidValue("sample_every_h", sample_every_h, "> 0")
        setup = replace(setup, sample_every_h=sample_every_h)
    if on_command is not None:
        setup = replace(setup, on_command=on_command)
    recorder = MemoryRecorder()
    run = run_course(setup, recorder, progress=progress)
    metrics = compute_metrics(
        recorder.samples,
        run,
        setup.protocol,
        horizon_h=setup.horizon_h,
        sample_every_h=setup.sample_every_h,
        pump_clock_offset_h=clock.pump_clock_offset_h(0.0),
    )
    metrics = _with_dates(metrics, clock, scenario)
    return ScenarioResult(
        name=scenario.name,
        description=scenario.description,
        scenario=scenario,
        clock=clock,
        pump_label=setup.build_pump(0.0, 0).preset.label,
        patient=patient,
        screening=screening,
        samples=tuple(recorder.samples),
        timeline=tuple(sorted(recorder.timeline, key=lambda e: e.t_h)),
        run=run,
        metrics=metrics,
        protocol=setup.protocol,
        low_reservoir_alarm_ml=setup.protocol.low_reservoir_alarm_ml
        or setup.build_pump(0.0, 0).preset.low_reservoir_alarm_default_ml,
    )


def _with_dates(metrics: Mapping[str, Any], clock: WallClock, scenario: Scenario) -> dict[str, Any]:
    out = {"scenario": scenario.name, "seed": scenario.seed, "implanted_at": clock.iso(0.0)}
    out.update(metrics)
    day = metrics.get("battery_replacement_day")
    out["battery_replacement_date"] = (
        None if day is None else clock.local(day * HOURS_PER_DAY).date().isoformat()
    )
    return out
