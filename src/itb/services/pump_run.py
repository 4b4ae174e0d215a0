"""Run a pump spec: build the pump through the domain, apply the timed events, report.

:func:`run_pump` takes a validated :class:`~itb.services.pump_spec.PumpSpec`,
the run length and the reviewed data tables (a :class:`PumpCatalog`, wired by
``itb.bootstrap``). It first plans the whole run — every event's time, every
prescription, bolus, fault and concentration checked against the pump preset
and the drug products — and raises before anything runs when something is
wrong. Then it advances the pump exactly from event to event (ties in the
order the events appear in the file), collecting what reaches the CSF, and
returns plain frozen data: no I/O, no printing.

Pump clock: hours since Monday 00:00 of the patient's local wall time at the
moment it was set (implant, ``set_clock`` events, or ``set_clock = true`` on
a refill or reprogram). A DST change moves the wall clock but not the pump's,
so flex steps shift by an hour in local time until the clock is set again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itb.domain.delivery import DeliverySegment
from itb.domain.drug import DrugCatalog
from itb.domain.errors import (
    InvalidValue,
    ITBError,
    NotAllowedForPump,
    PumpStateError,
)
from itb.domain.pump import (
    CRITICAL,
    Bolus,
    CatheterSpec,
    Continuous,
    DiscrepancyTolerance,
    Fault,
    FaultKind,
    Flex,
    FlexStep,
    PatientBolusSettings,
    PeriodicBolus,
    Prescription,
    ProgrammingSession,
    Pump,
    PumpPreset,
    Stopped,
    perform_refill,
    time_calculated_volume_reaches,
)
from itb.domain.pump.programs import Program
from itb.domain.units import HOURS_PER_DAY
from itb.services.pump_spec import (
    AccessPortEvent,
    ContinuousRx,
    EnvironmentEvent,
    Event,
    FaultEvent,
    FlexRx,
    InterrogateEvent,
    MriEndEvent,
    MriEvent,
    MriStartEvent,
    PatientBolusEvent,
    PeriodicRx,
    PrescriptionSpec,
    PumpSpec,
    RefillEvent,
    RepairEvent,
    ReprogramEvent,
    SetClockEvent,
    SingleBolusEvent,
    StoppedRx,
)

__all__ = [
    "AlarmRow",
    "BatteryReport",
    "DrugBalance",
    "EventRow",
    "GapRow",
    "PatientBolusRow",
    "PumpCatalog",
    "PumpRunResult",
    "RefillRow",
    "WallClock",
    "build_pump",
    "result_to_dict",
    "run_pump",
    "to_prescription",
]

_CLINICIAN = "spec"
"""Who the pump's event log names for programming sessions a spec makes."""
_GAP_MIN_H = 1.0
"""Periods without delivery to the CSF shorter than this (hours) are not reported."""


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class PumpCatalog:
    """The reviewed data a run needs (parsed from itb/data by the composition root)."""

    presets: Mapping[str, PumpPreset]
    catheters: Mapping[str, tuple[str, float, float]]
    """Family key -> (label, internal volume mL/cm, supplied length cm)."""
    drugs: DrugCatalog
    tolerance: DiscrepancyTolerance


class WallClock:
    """Converts between run time (hours since implant) and the patient's wall clock."""

    def __init__(self, implanted_at: datetime, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.implant_utc = self.instant(implanted_at, field="pump.implanted_at").astimezone(UTC)
        local = self.implant_utc.astimezone(self.zone).replace(tzinfo=None)
        monday = local.date() - timedelta(days=local.weekday())
        self._epoch = datetime(monday.year, monday.month, monday.day)

    def instant(self, when: datetime, *, field: str) -> datetime:
        """An aware instant; naive times are local wall time (first occurrence if repeated).

        Raises:
            InvalidValue: a local time inside the hour skipped by a DST change.
        """
        if when.tzinfo is not None:
            return when
        aware = when.replace(tzinfo=self.zone, fold=0)
        if aware.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != when:
            raise InvalidValue(
                field,
                when.isoformat(),
                f"a local time that exists in {self.zone.key} (this one falls in the hour "
                "skipped by a daylight-saving change)",
            )
        return aware

    def t_h(self, when: datetime, *, field: str) -> float:
        """Hours after implant of ``when``."""
        delta = self.instant(when, field=field).astimezone(UTC) - self.implant_utc
        return delta.total_seconds() / 3600.0

    def local(self, t_h: float) -> datetime:
        """Aware local date-time at run time ``t_h``."""
        return (self.implant_utc + timedelta(hours=t_h)).astimezone(self.zone)

    def iso(self, t_h: float) -> str:
        """ISO local date-time with offset, to the second."""
        return self.local(t_h).isoformat(timespec="seconds")

    def pump_clock_offset_h(self, t_h: float) -> float:
        """Offset that makes the pump clock read local wall hours since a Monday 00:00."""
        wall = self.local(t_h).replace(tzinfo=None)
        return (wall - self._epoch).total_seconds() / 3600.0 - t_h


# ----------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """An alarm raised or cleared."""

    time: str
    t_h: float
    kind: str
    critical: bool
    action: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """One entry of the pump's event log."""

    time: str
    t_h: float
    kind: str
    detail: str
    reason: str


@dataclass(frozen=True, slots=True)
class RefillRow:
    """What the clinician sees after a refill."""

    time: str
    t_h: float
    expected_ml: float
    withdrawn_ml: float
    difference_ml: float
    allowed_ml: float
    verdict: str
    advice: str
    fill_volume_ml: float
    concentration_mcg_per_ml: float
    low_reservoir_alarm_time: str | None
    empty_alarm_time: str | None


@dataclass(frozen=True, slots=True)
class PatientBolusRow:
    """A patient's bolus request and the pump's answer."""

    time: str
    t_h: float
    accepted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GapRow:
    """A period of at least an hour in which no drug reached the CSF."""

    start: str
    end: str
    start_t_h: float
    end_t_h: float
    duration_h: float


@dataclass(frozen=True, slots=True)
class BatteryReport:
    """Battery milestones: reached in the run, and predicted by the battery model at implant."""

    used_fraction: float
    eri_time: str | None
    eri_t_h: float | None
    eos_time: str | None
    eos_t_h: float | None
    predicted_eri_time: str | None
    predicted_eri_t_h: float | None
    predicted_eos_time: str | None
    predicted_eos_t_h: float | None


@dataclass(frozen=True, slots=True)
class DrugBalance:
    """Baclofen in and out since implant, mcg; ``error_mcg`` is 0 up to rounding."""

    filled_mcg: float
    pocket_mcg: float
    access_port_mcg: float
    delivered_csf_mcg: float
    lost_tissue_mcg: float
    withdrawn_mcg: float
    in_reservoir_mcg: float
    in_dead_space_mcg: float
    error_mcg: float


@dataclass(frozen=True, slots=True)
class PumpRunResult:
    """Everything a pump run produced."""

    name: str
    preset: str
    preset_label: str
    timezone: str
    implanted_at: str
    ended_at: str
    days: float
    t_end_h: float
    reservoir_calculated_ml: float
    reservoir_actual_ml: float
    delivered_mcg: float
    initial_concentration_mcg_per_ml: float
    final: Mapping[str, Any]
    alarms: tuple[AlarmRow, ...]
    events: tuple[EventRow, ...]
    refills: tuple[RefillRow, ...]
    patient_boluses: tuple[PatientBolusRow, ...]
    no_delivery: tuple[GapRow, ...]
    battery: BatteryReport
    drug_balance: DrugBalance
    daily_delivered_mcg: tuple[float, ...]
    """Drug reaching the CSF in each 24 h since implant, mcg."""
    delivery: tuple[DeliverySegment, ...] = field(repr=False)
    events_not_reached: int
    warnings: tuple[str, ...]


# ------------------------------------------------------------------ planning


@dataclass(frozen=True, slots=True)
class _Step:
    t_h: float
    index: int
    """Position of the event in the file (ties resolve in this order)."""
    action: str
    event: Event
    prescription: Prescription | None = None
    bolus: Bolus | None = None


@contextmanager
def _field(prefix: str) -> Iterator[None]:
    """Re-raise domain errors naming the spec field they came from."""
    try:
        yield
    except InvalidValue as exc:
        name = exc.field if exc.field.startswith(prefix) else f"{prefix}.{exc.field}"
        raise InvalidValue(name, exc.value, exc.allowed) from None
    except ITBError as exc:
        raise _prefixed(exc, prefix) from None


def _prefixed(exc: ITBError, prefix: str) -> ITBError:
    if isinstance(exc, NotAllowedForPump):
        return NotAllowedForPump(f"{prefix}: {exc}")
    return PumpStateError(f"{prefix}: {exc}")


def _flex(rx: FlexRx) -> Flex:
    written = rx.day_steps()
    days: list[tuple[FlexStep, ...]] = []
    for d, steps in enumerate(written):
        out = [FlexStep(start, rate) for start, rate in steps]
        if out[0].start_h > 0.0:
            carried = written[d - 1][-1][1]
            out.insert(0, FlexStep(0.0, carried))
        days.append(tuple(out))
    return Flex(days=tuple(days))


def _program(rx: PrescriptionSpec) -> Program:
    match rx:
        case StoppedRx():
            return Stopped()
        case ContinuousRx():
            return Continuous(rx.dose_mcg_per_day)
        case FlexRx():
            return _flex(rx)
        case PeriodicRx():
            return PeriodicBolus(
                basal_mcg_per_day=rx.basal_mcg_per_day,
                bolus_mcg=rx.bolus_mcg,
                bolus_duration_h=rx.bolus_duration_h,
                interval_h=rx.interval_h,
                first_start_h=rx.first_start,
            )


def to_prescription(rx: PrescriptionSpec, concentration_mcg_per_ml: float) -> Prescription:
    """The domain prescription of a spec's prescription table at a concentration (mcg/mL)."""
    pb = rx.patient_bolus
    settings = (
        None
        if pb is None
        else PatientBolusSettings(pb.dose_mcg, pb.duration_h, pb.lockout_h, pb.max_per_day)
    )
    return Prescription(_program(rx), concentration_mcg_per_ml, settings)


def _checked_prescription(
    pump: Pump, rx: PrescriptionSpec, concentration_mcg_per_ml: float
) -> Prescription:
    """Build a spec prescription at the concentration in the pump and check it against the pump.

    Raises:
        InvalidValue: named ``prescription.<field>``.
    """
    preset = pump.preset
    if rx.patient_bolus is not None and not preset.patient_bolus_allowed_for_baclofen:
        raise InvalidValue(
            "prescription.patient_bolus",
            "{...}",
            f"none: patient-activated boluses of baclofen are not allowed on {preset.label}",
        )
    with _field("prescription"):
        out = to_prescription(rx, concentration_mcg_per_ml)
        pump.validate_prescription(out, held_concentration_mcg_per_ml=concentration_mcg_per_ml)
        if rx.low_reservoir_alarm_ml is not None:
            pump.validate_low_reservoir_alarm(rx.low_reservoir_alarm_ml)
    return out


def _event_time(ev: Event, i: int, clock: WallClock) -> float:
    if ev.t_h is not None:
        return ev.t_h
    if ev.day is not None:
        return ev.day * HOURS_PER_DAY
    assert ev.at is not None
    t = clock.t_h(ev.at, field=f"events[{i}].at")
    if t < 0.0:
        raise InvalidValue(
            f"events[{i}].at", ev.at.isoformat(), f"at or after pump.implanted_at ({clock.iso(0)})"
        )
    return t


def _expand(events: Sequence[Event], clock: WallClock, end_h: float) -> tuple[list[_Step], int]:
    """Every event occurrence in time order (ties: file order); and how many fall after the end."""
    steps: list[_Step] = []
    not_reached = 0
    for i, ev in enumerate(events):
        t0 = _event_time(ev, i, clock)
        times = [t0]
        if ev.repeat_every_days is not None:
            every = ev.repeat_every_days * HOURS_PER_DAY
            k = 1
            while ev.repeat_count is None or k <= ev.repeat_count:
                t = t0 + k * every
                if t > end_h + 1e-9:
                    break
                times.append(t)
                k += 1
        for t in times:
            if isinstance(ev, MriEvent):
                steps.append(_Step(t, i, "mri_start", ev))
                steps.append(_Step(t + ev.duration_h, i, "mri_end", ev))
            else:
                steps.append(_Step(t, i, ev.kind, ev))
    steps.sort(key=lambda s: (s.t_h, s.index))
    reached = [s for s in steps if s.t_h <= end_h + 1e-9]
    not_reached = len(steps) - len(reached)
    return reached, not_reached


_NEEDS_PROGRAMMABLE = ("reprogram", "set_clock", "single_bolus", "patient_bolus")


def _plan(
    spec: PumpSpec, pump: Pump, catalog: PumpCatalog, clock: WallClock, end_h: float
) -> tuple[Prescription | None, Bolus | None, list[_Step], int]:
    """Check the whole run against the pump and the drug products; build domain objects."""
    preset = pump.preset
    drugs = catalog.drugs
    with _field("fill"):
        drugs.require_pump_concentration(spec.fill.concentration_mcg_per_ml)
    if spec.fill.volume_ml > preset.reservoir_ml:
        raise InvalidValue(
            "fill.volume_ml", spec.fill.volume_ml, f"<= {preset.reservoir_ml:g} ({preset.label})"
        )
    held = spec.fill.concentration_mcg_per_ml
    initial: Prescription | None = None
    if spec.prescription is not None:
        if not preset.programmable:
            raise InvalidValue(
                "prescription.mode",
                spec.prescription.mode,
                f"no [prescription]: {preset.label} has a fixed flow (change the dose with the "
                "concentration at refill)",
            )
        initial = _checked_prescription(pump, spec.prescription, held)
    priming: Bolus | None = None
    if spec.priming_bolus is not None:
        pb = spec.priming_bolus
        volume = pb.volume_ml if pb.volume_ml is not None else pump.dead_space_ml
        with _field("priming_bolus"):
            priming = Bolus.priming(volume, pb.duration_h)
            pump.validate_bolus(priming)
    steps, not_reached = _expand(spec.events, clock, end_h)
    planned: list[_Step] = []
    for step in steps:
        ev, where = step.event, f"events[{step.index}]"
        if not preset.programmable and step.action in _NEEDS_PROGRAMMABLE:
            raise InvalidValue(
                f"{where}.kind",
                step.action,
                f"an event other than {', '.join(_NEEDS_PROGRAMMABLE)}: "
                f"{preset.label} is not programmable",
            )
        rx: Prescription | None = None
        bolus: Bolus | None = None
        with _field(where):
            match ev:
                case RefillEvent():
                    drugs.require_pump_concentration(ev.concentration_mcg_per_ml)
                    if ev.volume_ml > preset.reservoir_ml:
                        raise InvalidValue(
                            "volume_ml", ev.volume_ml, f"<= {preset.reservoir_ml:g} (reservoir)"
                        )
                    changing = ev.concentration_mcg_per_ml != held
                    if ev.prescription is not None:
                        if not preset.programmable:
                            raise InvalidValue(
                                "prescription", "{...}", f"none: {preset.label} has a fixed flow"
                            )
                        rx = _checked_prescription(
                            pump, ev.prescription, ev.concentration_mcg_per_ml
                        )
                    elif changing and preset.programmable:
                        raise InvalidValue(
                            "prescription",
                            None,
                            f"a prescription at {ev.concentration_mcg_per_ml:g} mcg/mL: the "
                            f"concentration changes from {held:g} mcg/mL",
                        )
                    if ev.bridge_bolus and not changing:
                        raise InvalidValue(
                            "bridge_bolus",
                            True,
                            f"false: the concentration stays {held:g} mcg/mL (a bridge bolus "
                            "belongs to a concentration change)",
                        )
                    held = ev.concentration_mcg_per_ml
                case ReprogramEvent():
                    if ev.prescription is not None:
                        rx = _checked_prescription(pump, ev.prescription, held)
                    alarm = ev.low_reservoir_alarm_ml or (
                        ev.prescription.low_reservoir_alarm_ml if ev.prescription else None
                    )
                    if alarm is not None:
                        pump.validate_low_reservoir_alarm(alarm)
                case SingleBolusEvent():
                    bolus = Bolus.single(ev.dose_mcg, ev.duration_h, held)
                    pump.validate_bolus(bolus)
                case FaultEvent():
                    Fault(FaultKind(ev.fault), ev.fraction, ev.factor, ev.critical)
                case _:
                    pass
        planned.append(_Step(step.t_h, step.index, step.action, ev, rx, bolus))
    return initial, priming, planned, not_reached


# --------------------------------------------------------------------- running


def _session_reason(ev: Event, default: str) -> str:
    return ev.reason or default


def _apply(
    step: _Step,
    pump: Pump,
    clock: WallClock,
    catalog: PumpCatalog,
    emit: Callable[[DeliverySegment], None],
    refills: list[RefillRow],
    boluses: list[PatientBolusRow],
) -> None:
    t = step.t_h
    ev = step.event
    match ev:
        case RefillEvent():
            report = perform_refill(
                pump,
                t,
                fill_volume_ml=ev.volume_ml,
                concentration_mcg_per_ml=ev.concentration_mcg_per_ml,
                tolerance=catalog.tolerance,
                new_prescription=step.prescription,
                bridge_bolus=ev.bridge_bolus,
                true_concentration_mcg_per_ml=ev.true_concentration_mcg_per_ml,
                into_pocket=ev.into_pocket,
                reason=_session_reason(ev, "refill"),
            )
            alarm = ev.prescription.low_reservoir_alarm_ml if ev.prescription else None
            if alarm is not None or ev.set_clock:
                session = ProgrammingSession(
                    pump, t, clinician=_CLINICIAN, reason=_session_reason(ev, "refill")
                )
                if alarm is not None:
                    session.stage_low_reservoir_alarm(alarm, "set at refill")
                if ev.set_clock:
                    session.stage_clock(clock.pump_clock_offset_h(t), "clock set at refill")
                session.commit(t)
            low, empty = report.low_reservoir_alarm_t_h, report.empty_alarm_t_h
            if alarm is not None or ev.set_clock:  # the forecast changed after the refill
                low = time_calculated_volume_reaches(pump, pump.low_reservoir_alarm_ml)
                empty = time_calculated_volume_reaches(pump, pump.preset.empty_reservoir_alarm_ml)
            d = report.discrepancy
            refills.append(
                RefillRow(
                    time=clock.iso(t),
                    t_h=t,
                    expected_ml=d.expected_ml,
                    withdrawn_ml=d.withdrawn_ml,
                    difference_ml=d.difference_ml,
                    allowed_ml=d.allowed_ml,
                    verdict=d.verdict.value,
                    advice=d.advice,
                    fill_volume_ml=ev.volume_ml,
                    concentration_mcg_per_ml=ev.concentration_mcg_per_ml,
                    low_reservoir_alarm_time=None if low is None else clock.iso(low),
                    empty_alarm_time=None if empty is None else clock.iso(empty),
                )
            )
        case ReprogramEvent():
            session = ProgrammingSession(
                pump, t, clinician=_CLINICIAN, reason=_session_reason(ev, "reprogram")
            )
            why = _session_reason(ev, "reprogram")
            if step.prescription is not None:
                session.stage_prescription(step.prescription, why)
            alarm = ev.low_reservoir_alarm_ml or (
                ev.prescription.low_reservoir_alarm_ml if ev.prescription else None
            )
            if alarm is not None:
                session.stage_low_reservoir_alarm(alarm, why)
            if ev.set_clock:
                session.stage_clock(clock.pump_clock_offset_h(t), why)
            if ev.unfinished:
                session.begin_update(t)
                session.abandon(t)
            else:
                session.commit(t)
        case SetClockEvent():
            session = ProgrammingSession(
                pump, t, clinician=_CLINICIAN, reason=_session_reason(ev, "set clock")
            )
            session.stage_clock(
                clock.pump_clock_offset_h(t), _session_reason(ev, "pump clock set to local time")
            )
            session.commit(t)
        case SingleBolusEvent():
            assert step.bolus is not None
            if pump.bolus is not None:
                end = pump.bolus_end_t_h()
                until = (
                    clock.iso(end)
                    if end is not None and math.isfinite(end)
                    else "the pump restarts and finishes it"
                )
                raise PumpStateError(
                    f"a {pump.bolus.bolus.kind.value} bolus is still running until {until}"
                )
            session = ProgrammingSession(
                pump, t, clinician=_CLINICIAN, reason=_session_reason(ev, "single bolus")
            )
            session.stage_bolus(step.bolus, _session_reason(ev, "single bolus"))
            session.commit(t)
        case PatientBolusEvent():
            outcome = pump.request_patient_bolus(t)
            boluses.append(PatientBolusRow(clock.iso(t), t, outcome.accepted, outcome.reason))
        case AccessPortEvent():
            for seg in pump.inject_access_port(
                t,
                ev.volume_ml,
                ev.concentration_mcg_per_ml,
                acknowledge_overdose_hazard=ev.acknowledge_overdose_hazard,
                duration_h=ev.duration_h,
                reason=ev.reason,
            ):
                emit(seg)
        case FaultEvent():
            pump.apply_fault(t, Fault(FaultKind(ev.fault), ev.fraction, ev.factor, ev.critical))
        case RepairEvent():
            pump.repair(t, FaultKind(ev.fault))
        case MriStartEvent():
            pump.begin_mri(t)
        case MriEndEvent():
            pump.end_mri(t)
        case MriEvent():
            if step.action == "mri_start":
                pump.begin_mri(t)
            else:
                pump.end_mri(t)
        case EnvironmentEvent():
            pump.set_environment(
                t,
                body_temperature_degc=ev.body_temperature_degc,
                ambient_pressure_kpa=ev.ambient_pressure_kpa,
            )
        case InterrogateEvent():
            pump.interrogate(t)


def resolve_hardware(
    catalog: PumpCatalog, preset_key: str, family_key: str, implanted_length_cm: float
) -> tuple[PumpPreset, CatheterSpec]:
    """The pump preset and the implanted catheter a spec or scenario names.

    Raises:
        InvalidValue: unknown preset or catheter family, or a catheter longer than supplied.
    """
    preset = catalog.presets.get(preset_key)
    if preset is None:
        raise InvalidValue("pump.preset", preset_key, ", ".join(sorted(catalog.presets)))
    family = catalog.catheters.get(family_key)
    if family is None:
        raise InvalidValue("catheter.family", family_key, ", ".join(sorted(catalog.catheters)))
    label, ml_per_cm, supplied_cm = family
    if implanted_length_cm > supplied_cm:
        raise InvalidValue(
            "catheter.implanted_length_cm",
            implanted_length_cm,
            f"<= {supplied_cm:g} (the supplied length of {label})",
        )
    return preset, CatheterSpec(family_key, label, implanted_length_cm, ml_per_cm)


def build_pump(spec: PumpSpec, catalog: PumpCatalog) -> tuple[Pump, WallClock]:
    """The implanted, not yet filled pump of ``spec`` and its wall clock (as run_pump builds it).

    Raises:
        InvalidValue: unknown preset or catheter family, catheter too long.
    """
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    preset, catheter = resolve_hardware(
        catalog, spec.pump.preset, spec.catheter.family, spec.catheter.implanted_length_cm
    )
    with _field("pump"):
        pump = Pump(
            preset,
            catheter,
            t_h=0.0,
            accuracy_factor=spec.pump.accuracy_factor,
            pump_clock_offset_h=clock.pump_clock_offset_h(0.0),
        )
    return pump, clock


def run_pump(spec: PumpSpec, days: float | None, catalog: PumpCatalog) -> PumpRunResult:
    """Run ``spec`` for ``days`` (default: the spec's ``days``) and report.

    Raises:
        InvalidValue, NotAllowedForPump, ConcentrationMismatch: found while planning,
            before anything runs; the message names the spec field.
        PumpStateError: an event the pump refuses at its time (e.g. a bolus while
            another runs); nothing is returned.
    """
    run_days = days if days is not None else spec.days
    if run_days is None or not math.isfinite(run_days) or run_days <= 0:
        raise InvalidValue("days", run_days, "a number of days > 0 (--days, or days in the spec)")
    end_h = run_days * HOURS_PER_DAY
    pump, clock = build_pump(spec, catalog)
    initial, priming, steps, not_reached = _plan(spec, pump, catalog, clock, end_h)

    segments: list[DeliverySegment] = []
    emit = segments.append
    refills: list[RefillRow] = []
    boluses: list[PatientBolusRow] = []
    warnings: list[str] = []
    pump.fill(
        0.0,
        spec.fill.volume_ml,
        spec.fill.concentration_mcg_per_ml,
        true_concentration_mcg_per_ml=spec.fill.true_concentration_mcg_per_ml,
        reason="initial fill at implant",
    )
    alarm = spec.prescription.low_reservoir_alarm_ml if spec.prescription else None
    if initial is not None or priming is not None or alarm is not None:
        session = ProgrammingSession(
            pump, 0.0, clinician=_CLINICIAN, reason="programming at implant"
        )
        if initial is not None:
            session.stage_prescription(initial, "initial prescription")
        if alarm is not None:
            session.stage_low_reservoir_alarm(alarm, "low-reservoir alarm at implant")
        if priming is not None:
            session.stage_bolus(priming, "priming bolus: advance drug to the catheter tip")
        session.commit(0.0)
    predicted = pump.predicted_eri_eos_t_h()
    last_fill_t = 0.0
    max_days = catalog.drugs.max_days_in_pump
    for step in steps:
        pump.advance_to(step.t_h, emit)
        if isinstance(step.event, RefillEvent):
            age_days = (step.t_h - last_fill_t) / HOURS_PER_DAY
            if age_days > max_days:
                warnings.append(
                    f"{clock.iso(step.t_h)}: the drug had been in the pump {age_days:.0f} days, "
                    f"longer than its {max_days:g}-day stability"
                )
            last_fill_t = step.t_h
        try:
            _apply(step, pump, clock, catalog, emit, refills, boluses)
        except ITBError as exc:
            raise _prefixed(
                exc, f"events[{step.index}] ({step.action} at {clock.iso(step.t_h)})"
            ) from None
    pump.advance_to(end_h, emit)
    if not_reached:
        warnings.append(
            f"{not_reached} event(s) fall after the end of the run and were not applied"
        )
    if pump.reservoir_actual_ml <= 0.0 < pump.reservoir_calculated_ml:
        warnings.append(
            "the reservoir is empty but the pump's calculated volume is "
            f"{pump.reservoir_calculated_ml:.2f} mL: it runs dry without knowing"
        )
    return _result(
        spec,
        pump,
        clock,
        run_days,
        end_h,
        predicted,
        segments,
        refills,
        boluses,
        not_reached,
        warnings,
    )


# -------------------------------------------------------------------- results


def _daily(segments: Sequence[DeliverySegment], end_h: float) -> tuple[float, ...]:
    n = max(1, math.ceil(end_h / HOURS_PER_DAY - 1e-9))
    out = [0.0] * n
    for s in segments:
        t0, t1 = s.t0_h, s.t1_h
        while t0 < t1:
            day = min(int(t0 // HOURS_PER_DAY), n - 1)
            cut = t1 if day == n - 1 else min(t1, (day + 1) * HOURS_PER_DAY)
            out[day] += s.rate_mcg_per_h * (cut - t0)
            t0 = cut
    return tuple(out)


def _gaps(
    segments: Sequence[DeliverySegment], end_h: float, clock: WallClock
) -> tuple[GapRow, ...]:
    gaps: list[GapRow] = []
    covered_to = 0.0
    for s in sorted(segments, key=lambda s: s.t0_h):
        if s.rate_mcg_per_h <= 0.0:
            continue
        if s.t0_h - covered_to >= _GAP_MIN_H:
            gaps.append(_gap(covered_to, s.t0_h, clock))
        covered_to = max(covered_to, s.t1_h)
    if end_h - covered_to >= _GAP_MIN_H:
        gaps.append(_gap(covered_to, end_h, clock))
    return tuple(gaps)


def _gap(a: float, b: float, clock: WallClock) -> GapRow:
    return GapRow(clock.iso(a), clock.iso(b), a, b, b - a)


def _result(
    spec: PumpSpec,
    pump: Pump,
    clock: WallClock,
    run_days: float,
    end_h: float,
    predicted: tuple[float, float] | None,
    segments: list[DeliverySegment],
    refills: list[RefillRow],
    boluses: list[PatientBolusRow],
    not_reached: int,
    warnings: list[str],
) -> PumpRunResult:
    def iso_or_none(t: float | None) -> str | None:
        return None if t is None else clock.iso(t)

    ld = pump.ledger
    status: dict[str, Any] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in asdict(pump.status()).items()
    }
    for key in ("eri_t_h", "eos_t_h"):
        status[key.replace("_t_h", "_time")] = iso_or_none(status[key])
    status["time"] = clock.iso(pump.t_h)
    segments.sort(key=lambda s: s.t0_h)
    return PumpRunResult(
        name=spec.name,
        preset=pump.preset.key,
        preset_label=pump.preset.label,
        timezone=spec.pump.timezone,
        implanted_at=clock.iso(0.0),
        ended_at=clock.iso(end_h),
        days=run_days,
        t_end_h=end_h,
        reservoir_calculated_ml=pump.reservoir_calculated_ml,
        reservoir_actual_ml=pump.reservoir_actual_ml,
        delivered_mcg=ld.delivered_csf_mcg,
        initial_concentration_mcg_per_ml=spec.fill.concentration_mcg_per_ml,
        final=status,
        alarms=tuple(
            AlarmRow(clock.iso(a.t_h), a.t_h, a.kind.value, a.kind in CRITICAL, a.action)
            for a in pump.alarm_log
        ),
        events=tuple(
            EventRow(clock.iso(e.t_h), e.t_h, e.kind, e.detail, e.reason) for e in pump.log
        ),
        refills=tuple(refills),
        patient_boluses=tuple(boluses),
        no_delivery=_gaps(segments, end_h, clock),
        battery=BatteryReport(
            used_fraction=pump.battery_used,
            eri_time=iso_or_none(pump.eri_t_h),
            eri_t_h=pump.eri_t_h,
            eos_time=iso_or_none(pump.eos_t_h),
            eos_t_h=pump.eos_t_h,
            predicted_eri_time=None if predicted is None else clock.iso(predicted[0]),
            predicted_eri_t_h=None if predicted is None else predicted[0],
            predicted_eos_time=None if predicted is None else clock.iso(predicted[1]),
            predicted_eos_t_h=None if predicted is None else predicted[1],
        ),
        drug_balance=DrugBalance(
            filled_mcg=ld.filled_mcg,
            pocket_mcg=ld.pocket_mcg,
            access_port_mcg=ld.access_port_mcg,
            delivered_csf_mcg=ld.delivered_csf_mcg,
            lost_tissue_mcg=ld.lost_tissue_mcg,
            withdrawn_mcg=ld.withdrawn_mcg,
            in_reservoir_mcg=pump.reservoir_actual_ml * pump.reservoir_concentration_mcg_per_ml,
            in_dead_space_mcg=pump.dead_space.mass_mcg,
            error_mcg=pump.balance_error_mcg(),
        ),
        daily_delivered_mcg=_daily(segments, end_h),
        delivery=tuple(segments),
        events_not_reached=not_reached,
        warnings=tuple(warnings),
    )


def result_to_dict(result: PumpRunResult, *, include_series: bool = False) -> dict[str, Any]:
    """The result as JSON-ready data; ``include_series`` adds daily totals and segments."""
    out: dict[str, Any] = {
        "name": result.name,
        "preset": result.preset,
        "preset_label": result.preset_label,
        "timezone": result.timezone,
        "implanted_at": result.implanted_at,
        "ended_at": result.ended_at,
        "days": result.days,
        "reservoir_calculated_ml": result.reservoir_calculated_ml,
        "reservoir_actual_ml": result.reservoir_actual_ml,
        "delivered_mcg": result.delivered_mcg,
        "initial_concentration_mcg_per_ml": result.initial_concentration_mcg_per_ml,
        "final": dict(result.final),
        "battery": asdict(result.battery),
        "drug_balance": asdict(result.drug_balance),
        "alarms": [asdict(a) for a in result.alarms],
        "refills": [asdict(r) for r in result.refills],
        "patient_boluses": [asdict(b) for b in result.patient_boluses],
        "no_delivery": [asdict(g) for g in result.no_delivery],
        "events": [asdict(e) for e in result.events],
        "events_not_reached": result.events_not_reached,
        "warnings": list(result.warnings),
    }
    if include_series:
        out["daily_delivered_mcg"] = list(result.daily_delivered_mcg)
        out["delivery"] = [[s.t0_h, s.t1_h, s.rate_mcg_per_h] for s in result.delivery]
    return out
