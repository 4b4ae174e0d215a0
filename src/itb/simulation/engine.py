"""The single-patient course engine: one environment owns the clock and the events.

:class:`Environment` keeps a heap of scheduled actions ordered by ``(time,
priority, sequence)``: a refill, a dose change and an alarm at the same
instant always resolve the same way (priorities in
:class:`itb.simulation.events.Priority`; equal priorities in the order they
were scheduled).

Between two events everything is exact. The world moves to the next event's
time by advancing the pump (:meth:`itb.domain.pump.Pump.advance_to`), which
returns the :class:`~itb.domain.delivery.DeliverySegment` reaching the CSF;
the segments, any overlapping injection and the zero-rate gaps between them
are cut into constant-rate pieces and fed to the patient's exact
:func:`itb.domain.patient.advance`. Nothing is stepped between events: the
world keeps a :class:`~itb.simulation.course_tape.CourseTape` of the pieces the
patient received and the pump's integration steps, and the regular sampling
grid is read from it in one vectorised pass at the end
(:meth:`~itb.simulation.course_tape.CourseTape.samples`), so the grid changes
what is recorded, never what happens, and costs no engine steps.

The clinic (:mod:`itb.simulation.clinic`) acts through the world's
:class:`~itb.simulation.clinic.ClinicPort`: the pump's calculated view,
alarms, refill discrepancies and the patient's reported signs. Everything
produced goes to a :class:`Recorder` passed in.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from itb.domain.clinical.complications import (
    ComplicationKind,
    ComplicationRules,
    complication_of_fault,
    pump_fault,
)
from itb.domain.clinical.titration import TitrationRules
from itb.domain.delivery import DeliverySegment
from itb.domain.errors import InvalidValue, ITBError
from itb.domain.patient import (
    Observation,
    PatientParameters,
    PatientState,
    advance,
    observe,
    rate_pieces,
)
from itb.domain.pump import (
    CATHETER_FAULT_KINDS,
    CRITICAL,
    DiscrepancyTolerance,
    FaultKind,
    Prescription,
    Pump,
    PumpKind,
    RefillReport,
    time_calculated_volume_reaches,
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
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.clinic import (
    Clinic,
    ClinicProtocol,
    ClinicReading,
    ClinicRecord,
    Diagnosis,
    Exam,
)
from itb.simulation.course_tape import CourseTape, Sample
from itb.simulation.events import (
    ComplicationOnset,
    ConcentrationChange,
    MissedRefill,
    Priority,
    PumpEvent,
    ScheduledEvent,
)

__all__ = [
    "AlarmCount",
    "CourseRun",
    "CourseSetup",
    "Environment",
    "MemoryRecorder",
    "Recorder",
    "Sample",
    "TimelineEntry",
    "run_course",
]

_EPS_H = 1e-9
_PUMP_LOG_KINDS = frozenset(
    {
        "motor_stall",
        "stall_recovery",
        "stall_recovery_blocked",
        "resume",
        "battery_eri",
        "battery_eos",
        "mri",
        "patient_bolus_refused",
        "update_unfinished",
        "pocket_fill",
    }
)
"""Pump log entries worth a line in the course timeline (alarms are added when raised)."""


# ---------------------------------------------------------------- recording


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the course timeline, with the patient as observed at that instant.

    ``actor``: ``clinic``, ``patient``, ``pump`` or ``scenario``.
    """

    t_h: float
    actor: str
    kind: str
    detail: str
    mas: float
    withdrawal_stage: int
    overdose_stage: int


class Recorder(Protocol):
    """Where the engine writes what happens (passed in; the engine keeps nothing else)."""

    def sample(self, sample: Sample) -> None:
        """A point of the sampling grid."""
        ...

    def event(self, entry: TimelineEntry) -> None:
        """A line of the timeline."""
        ...


@dataclass
class MemoryRecorder:
    """Keeps every sample and timeline line in lists."""

    samples: list[Sample] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)

    def sample(self, sample: Sample) -> None:
        """Append a sample."""
        self.samples.append(sample)

    def event(self, entry: TimelineEntry) -> None:
        """Append a timeline line."""
        self.timeline.append(entry)


# -------------------------------------------------------------- environment


@dataclass(order=True, slots=True)
class _Entry:
    t_h: float
    priority: int
    seq: int
    name: str = field(compare=False)
    action: Callable[[float], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Environment:
    """Owns the clock and a heap of actions ordered by ``(time, priority, sequence)``."""

    def __init__(self, start_h: float = 0.0) -> None:
        self.now_h = float(start_h)
        self._heap: list[_Entry] = []
        self._by_seq: dict[int, _Entry] = {}
        self._seq = itertools.count()

    def schedule(
        self, t_h: float, priority: int, name: str, action: Callable[[float], None]
    ) -> int:
        """Schedule ``action(t_h)``; returns its sequence number (the handle for :meth:`cancel`).

        Raises:
            InvalidValue: ``t_h`` is before the present or not finite.
        """
        if not math.isfinite(t_h) or t_h < self.now_h - _EPS_H:
            raise InvalidValue("t_h", t_h, f"a finite time >= now ({self.now_h:g} h)")
        entry = _Entry(max(t_h, self.now_h), int(priority), next(self._seq), name, action)
        heapq.heappush(self._heap, entry)
        self._by_seq[entry.seq] = entry
        return entry.seq

    def cancel(self, handle: int) -> None:
        """Cancel a scheduled action (no-op when it has run or was cancelled)."""
        entry = self._by_seq.pop(handle, None)
        if entry is not None:
            entry.cancelled = True

    def pending(self) -> list[tuple[float, int, int, str]]:
        """``(t_h, priority, seq, name)`` of every action still to run, in order."""
        return sorted((e.t_h, e.priority, e.seq, e.name) for e in self._heap if not e.cancelled)

    def run(self, until_h: float, move_to: Callable[[float], None]) -> None:
        """Run every action due up to ``until_h``; ``move_to(t)`` advances the world first."""
        while self._heap:
            entry = self._heap[0]
            if entry.cancelled:
                heapq.heappop(self._heap)
                continue
            if entry.t_h > until_h + _EPS_H:
                break
            heapq.heappop(self._heap)
            self._by_seq.pop(entry.seq, None)
            move_to(entry.t_h)
            self.now_h = entry.t_h
            entry.action(entry.t_h)
        move_to(until_h)
        self.now_h = max(self.now_h, until_h)


# ------------------------------------------------------------------- setup


@dataclass(frozen=True)
class CourseSetup:
    """Everything one course needs (built by :mod:`itb.services.scenario`).

    Attributes:
        patient: the virtual patient.
        patient_state: the patient at implant (drug-free, or an established patient).
        build_pump: ``build_pump(t_h, n)``: the ``n``-th implanted pump (0 = the first;
            later ones are replacements), new and empty, at ``t_h``.
        protocol: the clinic's rules.
        rules: label titration rules.
        tolerance: refill discrepancy tolerance.
        concentration_mcg_per_ml: the drug filled at implant, mcg/mL.
        max_days_in_pump: drug stability between refills, days.
        events: scheduled scenario events.
        horizon_h: length of the course, h.
        sample_every_h: sampling grid of the trajectories, h.
        patient_step: ``(params, state, rate_mcg_per_h, dt_h) -> state`` over one
            constant-rate piece; the exact :func:`itb.domain.patient.advance` unless a
            benchmark or test swaps in a reference solver.
        on_command: an observer of every accepted pump command.
        complications: the implanted system's complications (what each shows and does).
    """

    patient: PatientParameters
    patient_state: PatientState
    build_pump: Callable[[float, int], Pump]
    protocol: ClinicProtocol
    rules: TitrationRules
    tolerance: DiscrepancyTolerance
    concentration_mcg_per_ml: float
    max_days_in_pump: float
    events: tuple[ScheduledEvent, ...]
    horizon_h: float
    sample_every_h: float
    complications: ComplicationRules
    patient_step: Callable[[PatientParameters, PatientState, float, float], PatientState] = advance
    on_command: Callable[[int, CommandRecord, Applied], None] | None = None
    """Called after every command a pump accepted: the pump's number (0 = the first,
    then replacements), the command as logged, and what it produced (the clinic
    registry's virtual clinic records a course from it)."""


@dataclass(frozen=True, slots=True)
class AlarmCount:
    """An alarm raised by a pump."""

    t_h: float
    kind: str
    critical: bool


@dataclass(frozen=True)
class CourseRun:
    """What a course produced besides the recorder's samples and timeline."""

    clinic: ClinicRecord
    alarms: tuple[AlarmCount, ...]
    final_state: PatientState
    delivered_csf_mcg: float
    segments: int
    eri_t_h: tuple[float, ...]
    """ERI reached by any pump, h."""
    pumps_implanted: int


# -------------------------------------------------------------------- world


class _World:
    """Pump + patient + clinic; implements the clinic's port."""

    def __init__(
        self,
        setup: CourseSetup,
        recorder: Recorder,
        env: Environment,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.setup = setup
        self.recorder = recorder
        self.env = env
        self.params = setup.patient
        self.state = setup.patient_state
        if self.state.t_h != 0.0:
            raise InvalidValue("patient_state.t_h", self.state.t_h, "0 (the implant instant)")
        self.pump: Pump | None = None
        self.retired: list[Pump] = []
        self.pending: list[DeliverySegment] = []
        self.segments = 0
        self.tape = CourseTape(self.params, self.state, setup.patient_step)
        self._log_idx = 0
        self._alarm_idx = 0
        self._reading_idx = 0
        self._progress = progress
        self._progress_next = 0.0
        self.clinic: Clinic | None = None
        self.complications: dict[ComplicationKind, float] = {}
        """Complications present now (hidden truth), with their onset, h."""
        self._found: set[ComplicationKind] = set()
        self._explant_needed: dict[ComplicationKind, bool] = {}
        self.bridge_rate_mcg_per_h = 0.0
        self._bridge_from_h = 0.0

    # ---------------------------------------------------------------- moving

    def _emit(self, seg: DeliverySegment) -> None:
        self.pending.append(seg)
        self.segments += 1

    def _move(self, t_h: float) -> None:
        if self.pump is not None:
            self.pump.advance_to(t_h, self._emit)
        if self.bridge_rate_mcg_per_h > 0.0 and t_h > self._bridge_from_h:
            self.pending.append(
                DeliverySegment(self._bridge_from_h, t_h, self.bridge_rate_mcg_per_h)
            )
            self._bridge_from_h = t_h
        if t_h > self.state.t_h:
            state = self.state
            step = self.setup.patient_step
            tape = self.tape
            for a, b, rate in rate_pieces(self.pending, state.t_h, t_h):
                tape.piece(a, b, rate, state)
                state = step(self.params, state, rate, b - a)
            self.state = state
            if self.pending:
                self.pending = [s for s in self.pending if s.t1_h > t_h + _EPS_H]
        pump = self.pump
        self.tape.moved(
            t_h,
            pump is not None,
            (0.0, 0.0)
            if pump is None
            else (pump.reservoir_actual_ml, pump.reservoir_calculated_ml),
            self._dose(),
        )
        self._flush_pump_log()

    def move_to(self, t_h: float) -> None:
        """Advance pump and patient exactly to ``t_h`` (the next event's instant)."""
        self._move(t_h)
        if self._progress is not None and t_h >= self._progress_next:
            self._progress(min(1.0, t_h / self.setup.horizon_h))
            self._progress_next = t_h + self.setup.horizon_h / 200.0

    def record_samples(self) -> None:
        """Give the recorder the sampling grid, read from the tape in one pass."""
        for sample in self.tape.samples(self.setup.sample_every_h, self.setup.horizon_h):
            self.recorder.sample(sample)

    def _dose(self) -> float:
        pump = self.pump
        if pump is None:
            return 0.0
        if pump.preset.kind is PumpKind.CONSTANT_FLOW:
            return pump.labelled_concentration_mcg_per_ml * pump.preset.nominal_flow_ml_per_day
        return pump.prescription.program.daily_dose_mcg()

    def _observation(self) -> Observation:
        return observe(self.params, self.state)

    def _flush_pump_log(self) -> None:
        pump = self.pump
        if pump is None:
            return
        if len(pump.log) > self._log_idx:
            for e in list(pump.log)[self._log_idx :]:
                if e.kind in _PUMP_LOG_KINDS:
                    self._write(e.t_h, "pump", e.kind, e.detail)
            self._log_idx = len(pump.log)
        alarms = pump.alarm_log
        while self._alarm_idx < len(alarms):
            a = alarms[self._alarm_idx]
            self._alarm_idx += 1
            if a.action == "raised":
                tone = "critical" if a.kind in CRITICAL else "non-critical"
                self._write(a.t_h, "pump", "alarm", f"{a.kind.value} raised ({tone})")

    def _write(self, t_h: float, actor: str, kind: str, detail: str) -> None:
        o = self._observation()
        self.recorder.event(
            TimelineEntry(
                t_h, actor, kind, detail, o.mas, int(o.withdrawal_stage), o.overdose_stage
            )
        )

    # ---------------------------------------------------------- clinic port

    def _require_pump(self) -> Pump:
        if self.pump is None:
            raise InvalidValue("pump", None, "an implanted pump (the clinic implants at t = 0)")
        return self.pump

    def note(self, t_h: float, actor: str, kind: str, detail: str) -> None:
        """Timeline line with the patient's state now."""
        self._flush_pump_log()
        self._write(t_h, actor, kind, detail)

    def interrogate(self, t_h: float) -> ClinicReading:
        """Read the pump: alarms raised since the last reading, the calculated view."""
        pump = self._require_pump()
        raised = [a.kind.value for a in pump.alarm_log[self._reading_idx :] if a.action == "raised"]
        applied = self._apply(Interrogate(), t_h, Authorship(entered_by="clinic", reason="reading"))
        status = applied.status
        assert status is not None
        self._reading_idx = len(pump.alarm_log)
        self._flush_pump_log()
        forecast = pump.predicted_eri_eos_t_h()
        return ClinicReading(
            t_h=t_h,
            reservoir_calculated_ml=status.reservoir_calculated_ml,
            daily_dose_mcg=self._dose(),
            concentration_mcg_per_ml=status.labelled_concentration_mcg_per_ml,
            running=status.running,
            stop_reason=status.stop_reason,
            alarms_raised=tuple(dict.fromkeys(raised)),
            eri_reached=status.eri_t_h is not None,
            predicted_eri_t_h=None if forecast is None else forecast[0],
        )

    def sounding_alarms(self) -> tuple[str, ...]:
        """Alarms the pump sounds now (active and not yet acknowledged)."""
        pump = self.pump
        if pump is None:
            return ()
        return pump.sounding_alarms()

    def examine(self, t_h: float) -> Exam:
        """Scores and reported signs from the patient's observation (no concentrations)."""
        o = self._observation()
        rules = self.setup.complications
        shown = tuple(
            dict.fromkeys(sign for kind in self.complications for sign in rules.spec(kind).signs)
        )
        return Exam(
            t_h,
            o.mas,
            o.psfs,
            o.withdrawal_signs,
            o.overdose_signs,
            o.adverse_reactions,
            shown,
        )

    # ------------------------------------------------------- complications

    def diagnose(self, t_h: float, *, at_refill: bool = False) -> tuple[Diagnosis, ...]:
        """What a work-up finds: complications present and not yet found, by how they show
        (signs at a visit; a pump turned over when a refill fails)."""
        rules = self.setup.complications
        out: list[Diagnosis] = []
        for kind in self.complications:
            spec = rules.spec(kind)
            wanted = "refill" if at_refill else "signs"
            if kind in self._found or spec.found_by != wanted:
                continue
            self._found.add(kind)
            out.append(Diagnosis(kind, self._explant_needed[kind]))
        return tuple(out)

    def resolve_complication(self, t_h: float, kind: ComplicationKind) -> None:
        """A complication is over (treated, healed, or repaired)."""
        if self.complications.pop(kind, None) is None:
            return
        self._found.discard(kind)
        fault = pump_fault(self.setup.complications.spec(kind))
        pump = self.pump
        if fault is not None and pump is not None and fault.kind.value in pump.faults.active:
            self._apply(RepairFault(fault.kind), t_h, Authorship(entered_by="clinic", reason=kind))
        self.note(t_h, "clinic", "complication_resolved", self.setup.complications.spec(kind).label)

    def explant(self, t_h: float, reason: str) -> None:
        """Take the pump and catheter out: intrathecal delivery stops now."""
        pump = self._require_pump()
        self._flush_pump_log()
        self.retired.append(pump)
        self.pump = None
        for kind in list(self.complications):
            fault = pump_fault(self.setup.complications.spec(kind))
            if fault is not None and kind is not ComplicationKind.CSF_LEAK:
                # it lived in the system that came out (a leak of spinal fluid heals on its own)
                self.complications.pop(kind)
                self._found.discard(kind)
        self.note(t_h, "clinic", "explant", f"{pump.preset.label} and catheter removed: {reason}")

    def set_bridge(self, t_h: float, rate_mcg_per_h: float) -> None:
        """Start (rate > 0) or stop (0) a bridge: its intrathecal-equivalent rate, mcg/h."""
        self._move(t_h)
        self.bridge_rate_mcg_per_h = max(0.0, rate_mcg_per_h)
        self._bridge_from_h = t_h

    def revise_pocket(self, t_h: float) -> None:
        """Open the pocket: a turned pump is turned back and fixed, an erosion is covered."""
        for kind in (ComplicationKind.PUMP_FLIP, ComplicationKind.SKIN_EROSION):
            if kind in self.complications:
                self.resolve_complication(t_h, kind)

    @property
    def pump_implanted(self) -> bool:
        """A pump is in place (False between an explant and the new pump)."""
        return self.pump is not None

    def _apply(self, command: PumpCommand, t_h: float, by: Authorship) -> Applied:
        applied = apply(self._require_pump(), command, t_h, tolerance=self.setup.tolerance, by=by)
        if self.setup.on_command is not None:
            self.setup.on_command(len(self.retired), CommandRecord(t_h, command, by), applied)
        return applied

    def implant(
        self, t_h: float, concentration_mcg_per_ml: float, prescription: Prescription, reason: str
    ) -> None:
        """A new pump: fill it, program it, prime pump path and catheter."""
        if self.pump is not None:
            self._flush_pump_log()
            self.retired.append(self.pump)
        pump = self.setup.build_pump(t_h, len(self.retired))
        pump.reservoir_tape = self.tape.reservoir.append
        self.pump = pump
        self._log_idx = 0
        self._alarm_idx = 0
        self._reading_idx = 0
        by = Authorship(entered_by="clinic", reason=reason)
        self._apply(FillAtImplant(pump.preset.reservoir_ml, concentration_mcg_per_ml), t_h, by)
        if pump.preset.programmable:
            self._apply(
                Reprogram(
                    prescription=prescription,
                    low_reservoir_alarm_ml=self.setup.protocol.low_reservoir_alarm_ml,
                    bolus=PrimingBolus(self.setup.protocol.priming_duration_h),
                ),
                t_h,
                replace(by, override_reason=self.setup.protocol.override_reason(prescription)),
            )
        self._reading_idx = len(pump.alarm_log)
        self.note(t_h, "clinic", "implant", f"{pump.preset.label}; {reason}")

    def refill(
        self,
        t_h: float,
        *,
        concentration_mcg_per_ml: float,
        prescription: Prescription | None,
        bridge_bolus: bool,
        reason: str,
    ) -> RefillReport:
        """The whole refill procedure on the pump."""
        pump = self._require_pump()
        applied = self._apply(
            Refill(
                pump.preset.reservoir_ml,
                concentration_mcg_per_ml,
                prescription=prescription,
                bridge_bolus=bridge_bolus,
            ),
            t_h,
            Authorship(
                entered_by="clinic",
                reason=reason,
                override_reason=None
                if prescription is None
                else self.setup.protocol.override_reason(prescription),
            ),
        )
        self._reading_idx = len(pump.alarm_log)
        assert applied.refill is not None
        return applied.refill

    def program(self, t_h: float, prescription: Prescription, reason: str) -> None:
        """A programming session."""
        pump = self._require_pump()
        self._apply(
            Reprogram(prescription=prescription),
            t_h,
            Authorship(
                entered_by="clinic",
                reason=reason,
                override_reason=self.setup.protocol.override_reason(prescription),
            ),
        )
        self._reading_idx = len(pump.alarm_log)

    def calculated_reaches_t_h(self, target_ml: float) -> float | None:
        """Programmer forecast of the calculated reservoir."""
        pump = self._require_pump()
        if not pump.preset.programmable:
            rate = pump.preset.nominal_flow_ml_per_day / HOURS_PER_DAY
            return pump.t_h + max(0.0, pump.reservoir_calculated_ml - target_ml) / rate
        return time_calculated_volume_reaches(pump, target_ml, include_max_patient_boluses=False)

    def predicted_eri_t_h(self) -> float | None:
        """Programmer battery forecast."""
        forecast = self._require_pump().predicted_eri_eos_t_h()
        return None if forecast is None else forecast[0]

    def catheter_study(self, t_h: float) -> tuple[FaultKind, ...]:
        """What a catheter study finds."""
        active = self._require_pump().faults.active
        return tuple(sorted((k for k in CATHETER_FAULT_KINDS if k.value in active), key=str))

    def revise_catheter(self, t_h: float, kinds: tuple[FaultKind, ...]) -> None:
        """Repair the catheter faults (a mass at the tip goes with the revised catheter)."""
        for kind in kinds:
            self._apply(RepairFault(kind), t_h, Authorship(entered_by="clinic", reason="revision"))
        if FaultKind.TIP_MASS in kinds:
            self.complications.pop(ComplicationKind.CATHETER_TIP_MASS, None)
            self._found.discard(ComplicationKind.CATHETER_TIP_MASS)

    @property
    def reservoir_capacity_ml(self) -> float:
        """Reservoir size, mL."""
        return self._require_pump().preset.reservoir_ml

    @property
    def programmable(self) -> bool:
        """False for a constant-flow pump."""
        if self.pump is None:
            return True
        return self.pump.preset.programmable

    @property
    def nominal_flow_ml_per_day(self) -> float:
        """A constant-flow pump's labelled flow, mL/day."""
        if self.pump is None:
            return self.setup.build_pump(0.0, 0).preset.nominal_flow_ml_per_day
        return self.pump.preset.nominal_flow_ml_per_day

    @property
    def low_reservoir_alarm_ml(self) -> float:
        """Programmed low-reservoir alarm volume, mL."""
        return self._require_pump().low_reservoir_alarm_ml

    @property
    def low_residual_volume_ml(self) -> float:
        """The volume below which the pump kind under-delivers, mL (0: no such effect)."""
        return self._require_pump().preset.low_residual_volume_ml

    @property
    def pump_clock_offset_h(self) -> float:
        """Pump clock offset, h."""
        return self._require_pump().pump_clock_offset_h

    def schedule(
        self, t_h: float, priority: Priority, name: str, action: Callable[[float], None]
    ) -> int:
        """Schedule an action."""
        return self.env.schedule(t_h, priority, name, action)

    def cancel(self, handle: int) -> None:
        """Cancel an action."""
        self.env.cancel(handle)

    # ------------------------------------------------------- scenario events

    def apply(self, event: ScheduledEvent, t_h: float) -> None:
        """Apply a scenario event now (a pump refusal is recorded, not raised)."""
        clinic = self.clinic
        assert clinic is not None
        reason = f" ({event.reason})" if event.reason else ""
        try:
            match event:
                case PumpEvent():
                    self._pump_event(event, t_h, reason)
                case MissedRefill():
                    clinic.missed_refill(event.late_by_days)
                    late = (
                        "does not come back by themselves"
                        if event.late_by_days is None
                        else f"comes {event.late_by_days:g} days late"
                    )
                    self.note(
                        t_h, "scenario", "refill_will_be_missed", f"the next refill: {late}{reason}"
                    )
                case ConcentrationChange():
                    clinic.concentration_change(
                        t_h, event.concentration_mcg_per_ml, event.bridge_bolus
                    )
                case ComplicationOnset():
                    self._complication(event, t_h, reason)
        except ITBError as exc:
            self.note(t_h, "scenario", "refused", f"{_event_name(event)}: {exc}")

    def _pump_event(self, event: PumpEvent, t_h: float, reason: str) -> None:
        clinic = self.clinic
        assert clinic is not None
        cmd = event.command
        by = Authorship(entered_by="scenario", reason=event.reason)
        applied = self._apply(cmd, t_h, by)
        for seg in applied.delivery:
            self._emit(seg)
        pump = self._require_pump()
        match cmd:
            case StartFault():
                self.note(t_h, "scenario", "fault", f"{cmd.fault.kind.value}{reason}")
                stands_for = complication_of_fault(cmd.fault.kind)
                if stands_for is not None and stands_for not in self.complications:
                    # the fault given directly is that complication as far as the clinic goes
                    self.complications[stands_for] = t_h
                    self._explant_needed[stands_for] = False
            case RepairFault():
                self.note(t_h, "scenario", "repair", f"{cmd.kind.value} ended{reason}")
            case BeginMri():
                self.note(t_h, "scenario", "mri_start", f"MRI scan starts{reason}")
            case EndMri():
                self.note(t_h, "scenario", "mri_end", f"MRI scan ends{reason}")
                self.schedule(
                    t_h + self.setup.protocol.post_mri_check_h,
                    Priority.CLINIC,
                    "post_mri_check",
                    self._post_mri_check,
                )
            case SetEnvironment():
                self.note(
                    t_h,
                    "scenario",
                    "environment",
                    f"body {pump.body_temperature_degc:g} °C, ambient "
                    f"{pump.ambient_pressure_kpa:g} kPa: flow factor {pump.flow_factor():.3g}"
                    f"{reason}",
                )
            case InjectAccessPort():
                self.schedule(
                    t_h + self.setup.protocol.post_procedure_watch_h,
                    Priority.CLINIC,
                    "post_procedure_check",
                    clinic.after_procedure,
                )
                self.note(
                    t_h,
                    "scenario",
                    "access_port_injection",
                    f"{cmd.volume_ml:g} mL at {cmd.concentration_mcg_per_ml:g} mcg/mL into "
                    f"the catheter access port: "
                    f"{sum(x.amount_mcg for x in applied.delivery):.0f} mcg "
                    f"flushed straight into the CSF{reason}",
                )
            case Reprogram(bolus=SingleBolus() as order):
                self.note(
                    t_h,
                    "clinic",
                    "single_bolus",
                    f"{order.dose_mcg:g} mcg over {order.duration_h:g} h{reason}",
                )
            case RequestPatientBolus():
                outcome = applied.patient_bolus
                assert outcome is not None
                self.note(
                    t_h,
                    "patient",
                    "patient_bolus",
                    "accepted" if outcome.accepted else f"refused: {outcome.reason}",
                )
            case Interrogate():
                self.note(t_h, "scenario", "interrogation", f"pump interrogated{reason}")
            case _:
                self.note(t_h, "scenario", "pump_command", f"{type(cmd).__name__}{reason}")

    def _complication(self, event: ComplicationOnset, t_h: float, reason: str) -> None:
        spec = self.setup.complications.spec(event.kind)
        if event.kind in self.complications:
            raise InvalidValue("complication", event.kind.value, "one not already present")
        fault = pump_fault(spec)
        if fault is not None:
            self._apply(
                StartFault(fault), t_h, Authorship(entered_by="scenario", reason=spec.label)
            )
        self.complications[event.kind] = t_h
        # not stated: the more likely course (the pump comes out when most such cases do)
        self._explant_needed[event.kind] = (
            spec.explant_probability.value > 0.5 if event.explant is None else event.explant
        )
        self.note(t_h, "scenario", "complication", f"{spec.label} begins{reason}")

    def _post_mri_check(self, t_h: float) -> None:
        reading = self.interrogate(t_h)
        self.note(
            t_h,
            "clinic",
            "post_mri_check",
            f"pump interrogated after MRI: {'running' if reading.running else 'STOPPED'}; "
            f"alarms since last reading: {', '.join(reading.alarms_raised) or 'none'}",
        )

    def alarms(self) -> tuple[AlarmCount, ...]:
        """Every alarm raised by every pump, in time order."""
        out = [
            AlarmCount(a.t_h, a.kind.value, a.kind in CRITICAL)
            for p in [*self.retired, *([self.pump] if self.pump else [])]
            for a in p.alarm_log
            if a.action == "raised"
        ]
        return tuple(sorted(out, key=lambda a: a.t_h))


_EVENT_NAMES: dict[type, str] = {
    StartFault: "FaultStart",
    RepairFault: "FaultRepair",
    BeginMri: "MriStart",
    EndMri: "MriEnd",
    SetEnvironment: "EnvironmentChange",
    InjectAccessPort: "AccessPortInjection",
    Reprogram: "ClinicianBolus",
    RequestPatientBolus: "PatientBolusRequest",
    Interrogate: "Interrogation",
}


def _event_name(event: ScheduledEvent) -> str:
    """A scheduled event's name in the timeline (as scenarios have always shown it)."""
    if isinstance(event, PumpEvent):
        return _EVENT_NAMES.get(type(event.command), type(event.command).__name__)
    return type(event).__name__


def _applier(world: _World, event: ScheduledEvent) -> Callable[[float], None]:
    def act(t_h: float) -> None:
        world.apply(event, t_h)

    return act


def _schedule_events(
    env: Environment, world: _World, events: Sequence[ScheduledEvent], horizon_h: float
) -> None:
    for ev in events:
        if ev.t_h > horizon_h + _EPS_H:
            continue
        priority = Priority.DEVICE if isinstance(ev, PumpEvent) else Priority.SCENARIO
        env.schedule(ev.t_h, priority, _event_name(ev), _applier(world, ev))


def run_course(
    setup: CourseSetup,
    recorder: Recorder,
    *,
    progress: Callable[[float], None] | None = None,
) -> CourseRun:
    """Run one patient's course from implant to the horizon.

    Args:
        setup: patient, pump, protocol, events, horizon and sampling grid.
        recorder: receives every sample and timeline line.
        progress: called now and then with the fraction done (0-1).

    Raises:
        InvalidValue: a bad horizon or sampling grid.
    """
    if not (math.isfinite(setup.horizon_h) and setup.horizon_h > 0):
        raise InvalidValue("horizon_h", setup.horizon_h, "> 0")
    if not (math.isfinite(setup.sample_every_h) and setup.sample_every_h > 0):
        raise InvalidValue("sample_every_h", setup.sample_every_h, "> 0")
    env = Environment(0.0)
    world = _World(setup, recorder, env, progress)
    clinic = Clinic(
        world,
        setup.protocol,
        setup.rules,
        origin=setup.patient.origin,
        age_years=setup.patient.age_years,
        concentration_mcg_per_ml=setup.concentration_mcg_per_ml,
        max_days_in_pump=setup.max_days_in_pump,
    )
    world.clinic = clinic
    clinic.start(0.0)
    _schedule_events(env, world, setup.events, setup.horizon_h)
    env.run(setup.horizon_h, world.move_to)
    world._flush_pump_log()
    world.record_samples()
    if progress is not None:
        progress(1.0)
    pumps = [*world.retired, *([world.pump] if world.pump else [])]
    return CourseRun(
        clinic=clinic.record,
        alarms=world.alarms(),
        final_state=world.state,
        delivered_csf_mcg=sum(p.ledger.delivered_csf_mcg for p in pumps),
        segments=world.segments,
        eri_t_h=tuple(p.eri_t_h for p in pumps if p.eri_t_h is not None),
        pumps_implanted=len(pumps),
    )
