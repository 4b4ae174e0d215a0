"""A pump spec translated into the domain's one command vocabulary, checked before it runs.

The TOML spec (:mod:`itb.services.pump_spec`) is an edge schema. :func:`plan`
resolves the hardware against the catalog, binds the drug library to the
patient's population (:class:`~itb.domain.clinical.dose_guard.DoseGuard`), turns
every event occurrence into a :class:`~itb.domain.pump.commands.PumpCommand` at
its time, and checks each against the pump and the drug library *before
anything runs*, naming the field as written in the file (``events[3].volume_ml``).

:func:`replay` then runs the plan on a pump through the one
:class:`~itb.simulation.engine.Environment`: commands in time order, ties in
file order, the pump advanced exactly between them. Pump runs, the pump as it
stood at a date, and the programming-safety audit all replay the same plan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from itb.domain.clinical.dose_guard import DoseGuard
from itb.domain.delivery import DeliverySegment
from itb.domain.errors import InvalidValue, ITBError
from itb.domain.pump import (
    Bolus,
    CatheterSpec,
    Continuous,
    Fault,
    FaultKind,
    Flex,
    FlexStep,
    PatientBolusSettings,
    PeriodicBolus,
    Prescription,
    Pump,
    PumpPreset,
    Stopped,
)
from itb.domain.pump.commands import (
    Applied,
    Authorship,
    BeginMri,
    CommandRecord,
    EndMri,
    FillAtImplant,
    InjectAccessPort,
    Interrogate,
    PrimingBolus,
    PumpCommand,
    Refill,
    RepairFault,
    Reprogram,
    RequestPatientBolus,
    SetEnvironment,
    SingleBolus,
    StartFault,
    apply,
)
from itb.domain.pump.programs import WEEKDAYS, Program
from itb.domain.units import HOURS_PER_DAY
from itb.services.catalog import Catalog
from itb.services.limits import MAX_RUN_DAYS
from itb.services.pump_spec import (
    AccessPortEvent,
    ContinuousRx,
    EnvironmentEvent,
    Event,
    FaultEvent,
    FlexRx,
    FlexStepSpec,
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
from itb.services.wall_clock import WallClock
from itb.simulation.engine import Environment

__all__ = [
    "PlannedCommand",
    "PumpPlan",
    "build_pump",
    "plan",
    "program_of",
    "replay",
    "run_length_h",
    "to_prescription",
]

_NEEDS_PROGRAMMABLE = ("reprogram", "set_clock", "single_bolus", "patient_bolus")
_TOP_LEVEL_FIELDS = frozenset(
    {
        "volume_ml",
        "concentration_mcg_per_ml",
        "true_concentration_mcg_per_ml",
        "low_reservoir_alarm_ml",
        "reservoir_volume_ml",
        "dose_mcg",
        "duration_h",
        "bridge_bolus",
        "into_pocket",
        "pump_clock_offset_h",
        "fraction",
        "factor",
        "body_temperature_degc",
        "ambient_pressure_kpa",
    }
)
"""Fields of an event itself; any other field a refusal names is in its prescription."""


@dataclass(frozen=True, slots=True)
class PlannedCommand:
    """One command of the plan: when, from which part of the file, and what.

    Attributes:
        t_h: hours after implant.
        index: the event's position in the file (None for the implant's own fill and
            programming); ties at one instant resolve in this order.
        where: the part of the file it comes from (``events[3]``, ``fill``, ``prescription``).
        record: the command with its authorship.
        event_kind: the kind as the file names it (``single_bolus``, ``set_clock``,
            ``mri_start`` ...), which may differ from the command's own kind.
    """

    t_h: float
    index: int | None
    where: str
    record: CommandRecord
    event_kind: str = ""

    @property
    def kind(self) -> str:
        """The kind as the file names it (else the command's kind)."""
        return self.event_kind or self.record.kind

    @property
    def command(self) -> PumpCommand:
        """The command."""
        return self.record.command


@dataclass(frozen=True)
class PumpPlan:
    """A checked pump run: hardware, drug library, clock and the commands in time order."""

    spec: PumpSpec
    preset: PumpPreset
    catheter: CatheterSpec
    clock: WallClock
    guard: DoseGuard
    end_h: float
    commands: tuple[PlannedCommand, ...]
    not_reached: int
    """Event occurrences that fall after the end of the run."""


# ----------------------------------------------------------- prescriptions


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


def program_of(rx: PrescriptionSpec) -> Program:
    """The domain program of a spec's prescription table."""
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
    return Prescription(program_of(rx), concentration_mcg_per_ml, settings)


# ----------------------------------------------------------------- planning


def run_length_h(spec: PumpSpec, days: float | None) -> tuple[float, float]:
    """The run's length as (days, hours): ``days`` (from ``--days``) or the spec's.

    Raises:
        InvalidValue: no length, or not a number of days in (0, 20 years].
    """
    run_days = days if days is not None else spec.days
    if (
        run_days is None
        or isinstance(run_days, bool)
        or not math.isfinite(run_days)
        or not 0.0 < run_days <= MAX_RUN_DAYS
    ):
        raise InvalidValue(
            "days", run_days, f"a number of days > 0 and <= {MAX_RUN_DAYS:g} (or days in the spec)"
        )
    return run_days, run_days * HOURS_PER_DAY


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


def _occurrences(
    events: Sequence[Event], clock: WallClock, end_h: float
) -> tuple[list[tuple[float, int, str, Event]], int]:
    """Every event occurrence ``(t_h, index, kind, event)`` up to the end, in time order
    (ties: file order), and how many fall after the end."""
    out: list[tuple[float, int, str, Event]] = []
    for i, ev in enumerate(events):
        t0 = _event_time(ev, i, clock)
        times = [t0]
        if ev.repeat_every_days is not None:
            every = ev.repeat_every_days * HOURS_PER_DAY
            count = ev.repeat_count if ev.repeat_count is not None else math.inf
            k = 1
            while k <= count and t0 + k * every <= end_h + 1e-9:
                times.append(t0 + k * every)
                k += 1
            if ev.repeat_count is not None and k <= ev.repeat_count:
                # Occurrences past the end are counted, not built.
                times.extend([math.inf] * int(ev.repeat_count - k + 1))
        for t in times:
            if isinstance(ev, MriEvent):
                out.append((t, i, "mri_start", ev))
                out.append((t + ev.duration_h, i, "mri_end", ev))
            else:
                out.append((t, i, ev.kind, ev))
    out.sort(key=lambda o: (o[0], o[1]))
    reached = [o for o in out if o[0] <= end_h + 1e-9]
    return reached, len(out) - len(reached)


def _prescription(
    scratch: Pump, rx: PrescriptionSpec, concentration: float, field: str
) -> Prescription:
    """A spec prescription at a concentration, checked against the pump and the library;
    ``field`` is where the prescription sits in the file (``events[3].prescription``)."""
    preset = scratch.preset
    if rx.patient_bolus is not None and not preset.patient_bolus_allowed_for_baclofen:
        raise InvalidValue(
            f"{field}.patient_bolus",
            "{...}",
            f"none: patient-activated boluses of baclofen are not allowed on {preset.label}",
        )
    try:
        out = to_prescription(rx, concentration)
        scratch.validate_prescription(out, held_concentration_mcg_per_ml=concentration)
        if rx.low_reservoir_alarm_ml is not None:
            scratch.validate_low_reservoir_alarm(rx.low_reservoir_alarm_ml)
    except InvalidValue as exc:
        step = _flex_path(rx, exc.field)
        raise (exc.renamed(f"{field}.{step}") if step else exc.within(field)) from None
    except ITBError as exc:
        raise exc.within(field) from None
    return out


_FLEX_FIELD = re.compile(r"^flex (\w{3}) (\d\d):(\d\d) rate_mcg_per_h")


def _flex_path(rx: PrescriptionSpec, field: str) -> str | None:
    """A flex step named by the domain (``flex mon 07:00 rate_mcg_per_h``) as the path of the
    step in the file (``every_day[1].rate_mcg_per_h``); None for any other field."""
    m = _FLEX_FIELD.match(field)
    if m is None or not isinstance(rx, FlexRx):
        return None
    day = WEEKDAYS.index(m.group(1))
    start = int(m.group(2)) + int(m.group(3)) / 60.0

    def written(i: int) -> tuple[str, list[FlexStepSpec]]:
        name = WEEKDAYS[i] if getattr(rx, WEEKDAYS[i]) is not None else "every_day"
        steps: list[FlexStepSpec] = getattr(rx, name)
        return name, steps

    name, steps = written(day)
    for j, step in enumerate(steps):
        if abs(step.start - start) < 1.0 / 120.0:
            return f"{name}[{j}].rate_mcg_per_h"
    if start == 0.0:  # before the day's first step, the previous day's last step runs on
        name, steps = written((day - 1) % len(WEEKDAYS))
        return f"{name}[{len(steps) - 1}].rate_mcg_per_h"
    return None


def _concentration(scratch: Pump, guard: DoseGuard, concentration: float, where: str) -> None:
    try:
        guard.check_concentration(concentration, scratch.preset.kind.value)
    except ITBError as exc:
        raise exc.within(where) from None


def _command(
    kind: str,
    ev: Event,
    t: float,
    where: str,
    clock: WallClock,
    scratch: Pump,
    guard: DoseGuard,
    held: float,
) -> tuple[PumpCommand, float]:
    """The command of one event occurrence, checked; and the concentration held after it."""
    preset = scratch.preset
    match ev:
        case RefillEvent():
            _concentration(scratch, guard, ev.concentration_mcg_per_ml, where)
            if ev.volume_ml > preset.reservoir_ml:
                raise InvalidValue(
                    f"{where}.volume_ml", ev.volume_ml, f"<= {preset.reservoir_ml:g} (reservoir)"
                )
            changing = ev.concentration_mcg_per_ml != held
            rx = None
            if ev.prescription is not None:
                if not preset.programmable:
                    raise InvalidValue(
                        f"{where}.prescription", "{...}", f"none: {preset.label} has a fixed flow"
                    )
                rx = _prescription(
                    scratch, ev.prescription, ev.concentration_mcg_per_ml, f"{where}.prescription"
                )
            elif changing and preset.programmable:
                raise InvalidValue(
                    f"{where}.prescription",
                    None,
                    f"a prescription at {ev.concentration_mcg_per_ml:g} mcg/mL: the "
                    f"concentration changes from {held:g} mcg/mL",
                )
            if ev.bridge_bolus and not changing:
                raise InvalidValue(
                    f"{where}.bridge_bolus",
                    True,
                    f"false: the concentration stays {held:g} mcg/mL (a bridge bolus belongs "
                    "to a concentration change)",
                )
            alarm = ev.prescription.low_reservoir_alarm_ml if ev.prescription else None
            return (
                Refill(
                    volume_ml=ev.volume_ml,
                    concentration_mcg_per_ml=ev.concentration_mcg_per_ml,
                    prescription=rx,
                    bridge_bolus=ev.bridge_bolus,
                    low_reservoir_alarm_ml=alarm,
                    pump_clock_offset_h=clock.pump_clock_offset_h(t) if ev.set_clock else None,
                    true_concentration_mcg_per_ml=ev.true_concentration_mcg_per_ml,
                    into_pocket=ev.into_pocket,
                ),
                ev.concentration_mcg_per_ml,
            )
        case ReprogramEvent():
            rx = (
                None
                if ev.prescription is None
                else _prescription(scratch, ev.prescription, held, f"{where}.prescription")
            )
            alarm = ev.low_reservoir_alarm_ml or (
                ev.prescription.low_reservoir_alarm_ml if ev.prescription else None
            )
            if alarm is not None:
                try:
                    scratch.validate_low_reservoir_alarm(alarm)
                except ITBError as exc:
                    raise exc.within(where) from None
            return (
                Reprogram(
                    prescription=rx,
                    low_reservoir_alarm_ml=alarm,
                    pump_clock_offset_h=clock.pump_clock_offset_h(t) if ev.set_clock else None,
                    unfinished=ev.unfinished,
                ),
                held,
            )
        case SetClockEvent():
            return Reprogram(pump_clock_offset_h=clock.pump_clock_offset_h(t)), held
        case SingleBolusEvent():
            order = SingleBolus(ev.dose_mcg, ev.duration_h)
            try:
                scratch.validate_bolus(Bolus.single(ev.dose_mcg, ev.duration_h, held))
            except ITBError as exc:
                raise exc.within(where) from None
            return Reprogram(bolus=order), held
        case PatientBolusEvent():
            return RequestPatientBolus(), held
        case AccessPortEvent():
            return (
                InjectAccessPort(
                    ev.volume_ml,
                    ev.concentration_mcg_per_ml,
                    ev.duration_h,
                    acknowledge_overdose_hazard=ev.acknowledge_overdose_hazard,
                ),
                held,
            )
        case FaultEvent():
            try:
                fault = Fault(FaultKind(ev.fault), ev.fraction, ev.factor, ev.critical)
            except ITBError as exc:
                raise exc.within(where) from None
            return StartFault(fault), held
        case RepairEvent():
            return RepairFault(FaultKind(ev.fault)), held
        case MriStartEvent():
            return BeginMri(), held
        case MriEndEvent():
            return EndMri(), held
        case MriEvent():
            return (BeginMri() if kind == "mri_start" else EndMri()), held
        case EnvironmentEvent():
            return (
                SetEnvironment(ev.body_temperature_degc, ev.ambient_pressure_kpa),
                held,
            )
        case InterrogateEvent():
            return Interrogate(), held


def _authorship(ev: Event | None, default: str) -> Authorship:
    reason = ev.reason if ev is not None and ev.reason else default
    return Authorship(reason=reason)


def plan(spec: PumpSpec, catalog: Catalog, *, end_h: float) -> PumpPlan:
    """Translate and check the whole run up to ``end_h`` (hours after implant).

    Raises:
        InvalidValue, NotAllowedForPump, ConcentrationMismatch, HardLimitExceeded,
        SoftLimitNeedsReason: found before anything runs; the message names the field.
    """
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    preset = catalog.preset(spec.pump.preset)
    catheter = catalog.catheter(spec.catheter.family, spec.catheter.implanted_length_cm)
    population = None if spec.patient is None else spec.patient.population
    guard = catalog.guard(population, declared_hazard=spec.declared_hazard)
    scratch = _new_pump(spec, preset, catheter, clock, guard)
    fill = spec.fill
    _concentration(scratch, guard, fill.concentration_mcg_per_ml, "fill")
    try:
        scratch.check_fill(
            fill.volume_ml,
            fill.concentration_mcg_per_ml,
            true_concentration_mcg_per_ml=fill.true_concentration_mcg_per_ml,
        )
    except ITBError as exc:
        raise exc.within("fill") from None
    held = fill.concentration_mcg_per_ml
    commands: list[PlannedCommand] = [
        PlannedCommand(
            0.0,
            None,
            "fill",
            CommandRecord(
                0.0,
                FillAtImplant(
                    fill.volume_ml,
                    fill.concentration_mcg_per_ml,
                    fill.true_concentration_mcg_per_ml,
                ),
                Authorship(reason="initial fill at implant"),
            ),
        )
    ]
    initial: Prescription | None = None
    if spec.prescription is not None:
        if not preset.programmable:
            raise InvalidValue(
                "prescription.mode",
                spec.prescription.mode,
                f"no [prescription]: {preset.label} has a fixed flow (change the dose with the "
                "concentration at refill)",
            )
        scratch.labelled_concentration_mcg_per_ml = held
        initial = _prescription(scratch, spec.prescription, held, "prescription")
    priming: PrimingBolus | None = None
    if spec.priming_bolus is not None:
        pb = spec.priming_bolus
        priming = PrimingBolus(pb.duration_h, pb.volume_ml)
        try:
            scratch.validate_bolus(priming.bolus(scratch))
        except ITBError as exc:
            raise exc.within("priming_bolus") from None
    alarm = spec.prescription.low_reservoir_alarm_ml if spec.prescription else None
    if initial is not None or priming is not None or alarm is not None:
        commands.append(
            PlannedCommand(
                0.0,
                None,
                "prescription",
                CommandRecord(
                    0.0,
                    Reprogram(prescription=initial, low_reservoir_alarm_ml=alarm, bolus=priming),
                    Authorship(reason="programming at implant"),
                ),
            )
        )
    occurrences, not_reached = _occurrences(spec.events, clock, end_h)
    for t, i, kind, ev in occurrences:
        where = f"events[{i}]"
        if not preset.programmable and kind in _NEEDS_PROGRAMMABLE:
            raise InvalidValue(
                f"{where}.kind",
                kind,
                f"an event other than {', '.join(_NEEDS_PROGRAMMABLE)}: "
                f"{preset.label} is not programmable",
            )
        scratch.labelled_concentration_mcg_per_ml = held
        command, held = _command(kind, ev, t, where, clock, scratch, guard, held)
        commands.append(
            PlannedCommand(t, i, where, CommandRecord(t, command, _authorship(ev, kind)), kind)
        )
    return PumpPlan(spec, preset, catheter, clock, guard, end_h, tuple(commands), not_reached)


def _new_pump(
    spec: PumpSpec,
    preset: PumpPreset,
    catheter: CatheterSpec,
    clock: WallClock,
    guard: DoseGuard,
) -> Pump:
    try:
        return Pump(
            preset,
            catheter,
            t_h=0.0,
            accuracy_factor=spec.pump.accuracy_factor,
            pump_clock_offset_h=clock.pump_clock_offset_h(0.0),
            guard=guard,
        )
    except ITBError as exc:
        raise exc.within("pump") from None


def build_pump(p: PumpPlan) -> Pump:
    """The plan's pump, implanted and not yet filled, at t = 0."""
    return _new_pump(p.spec, p.preset, p.catheter, p.clock, p.guard)


# -------------------------------------------------------------------- running


def _context(step: PlannedCommand, clock: WallClock) -> str:
    return f"{step.where} ({step.kind} at {clock.iso(step.t_h)})"


def _apply(pump: Pump, step: PlannedCommand, catalog: Catalog, clock: WallClock) -> Applied:
    try:
        return apply(
            pump,
            step.command,
            step.t_h,
            tolerance=catalog.refill_tolerance,
            by=step.record.by,
        )
    except InvalidValue as exc:
        if step.index is None:
            raise exc.within(step.where) from None
        top = exc.field.split(".")[0] in _TOP_LEVEL_FIELDS
        raise exc.within(step.where if top else f"{step.where}.prescription") from None
    except ITBError as exc:
        raise exc.within(_context(step, clock)) from None


def replay(
    p: PumpPlan,
    pump: Pump,
    catalog: Catalog,
    *,
    until_h: float,
    emit: Callable[[DeliverySegment], None] | None = None,
    before: Callable[[PlannedCommand, Pump], None] | None = None,
    after: Callable[[PlannedCommand, Applied], None] | None = None,
) -> int:
    """Run the plan's commands up to ``until_h`` on ``pump`` through one Environment.

    Args:
        p: the plan.
        pump: the plan's pump (:func:`build_pump`), at t = 0.
        catalog: the reviewed data.
        until_h: stop here, hours after implant (the pump is advanced to it).
        emit: receives every delivery segment that reaches the CSF.
        before: called with each command and the pump just before it is applied
            (the pump is then at the command's time).
        after: called with each command and what it produced.

    Returns:
        The number of commands applied.

    Raises:
        ITBError: a command the pump refuses at its time; the message names the part of
            the file (nothing is returned by the callers then).
    """
    env = Environment(0.0)
    count = 0

    def move_to(t_h: float) -> None:
        pump.advance_to(t_h, emit)

    def action(step: PlannedCommand) -> Callable[[float], None]:
        def run(t_h: float) -> None:
            nonlocal count
            if before is not None:
                before(step, pump)
            applied = _apply(pump, step, catalog, p.clock)
            count += 1
            if emit is not None:
                for seg in applied.delivery:
                    emit(seg)
            if after is not None:
                after(step, applied)

        return run

    for step in p.commands:
        if step.t_h <= until_h + 1e-9:
            env.schedule(step.t_h, 0, step.kind, action(step))
    env.run(until_h, move_to)
    return count
