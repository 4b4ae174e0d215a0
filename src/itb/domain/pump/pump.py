"""The implanted pump system: reservoir, dead space, program, alarms, battery.

:class:`Pump` owns the state at its present time ``t_h`` (hours since the run's
start) and moves forward only through :meth:`Pump.advance_to`, which integrates
exactly, segment by segment: every rate is piecewise constant, so each
segment between two breakpoints (a program step, a bolus end, the reservoir
running dry, an alarm threshold crossing, a battery milestone) has a closed
form. There is no time step and no tolerance knob.

Two reservoirs are kept, as in the real device ([D46][D48]):

* the *calculated* volume the pump reports, which falls with the programmed
  delivery and drives the low- and empty-reservoir alarms;
* the *actual* volume, which falls with the true delivery (programmed x the
  pump's accuracy factor). An over-infusing pump therefore runs dry before its
  low-reservoir alarm.

A ledger keeps the drug balance: everything filled = delivered to CSF + lost
to leaks, tissue or pocket + still in reservoir and dead space + withdrawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from itb.domain.delivery import DeliverySegment
from itb.domain.errors import (
    ConcentrationMismatch,
    DoseOutOfRange,
    InvalidValue,
    NotAllowedForPump,
    PumpStateError,
    ReservoirOverfill,
    SeptumUnreachable,
    TimeWentBackwards,
)
from itb.domain.pump.alarms import CRITICAL, AlarmKind, AlarmRecord
from itb.domain.pump.catheter import CatheterSpec, DeadSpace
from itb.domain.pump.eventlog import EventLog
from itb.domain.pump.faults import Fault, FaultKind
from itb.domain.pump.limits import DoseLimits, LimitVerdict
from itb.domain.pump.prescription import Bolus, BolusKind, PatientBolusSettings, Prescription
from itb.domain.pump.presets import PumpKind, PumpPreset
from itb.domain.pump.programs import WEEKDAYS, Continuous, Flex, PeriodicBolus, Program, Stopped
from itb.domain.units import (
    DAYS_PER_YEAR,
    HOURS_PER_DAY,
    require_finite,
    require_non_negative,
    require_positive,
)

__all__ = [
    "Ledger",
    "PatientBolusOutcome",
    "Pump",
    "PumpStatus",
    "ReservoirPiece",
    "StopReason",
    "Withdrawal",
]

_EPS_ML = 1e-12
"""Volume tolerance (mL) for threshold crossings reached exactly at a breakpoint."""
_EPS_H = 1e-9
"""Time tolerance, hours."""


class StopReason(StrEnum):
    """Why the motor is not running."""

    STOPPED_MODE = "stopped mode programmed"
    UPDATE_IN_PROGRESS = "programming update in progress"
    UNFINISHED_SESSION = "programming session left unfinished"
    MOTOR_STALL = "motor stall"
    MRI = "MRI: motor stalled by the magnetic field"
    TELEMETRY_HOLD = "stopped after MRI while alarming: waiting for interrogation"
    END_OF_SERVICE = "end of service (battery)"
    MEMORY_ERROR = "critical memory error: the pump stops infusing"


@dataclass(slots=True)
class Ledger:
    """Drug (mcg) and volume (mL) balance since implant. All fields only grow."""

    filled_mcg: float = 0.0
    filled_ml: float = 0.0
    pocket_mcg: float = 0.0
    access_port_mcg: float = 0.0
    delivered_csf_mcg: float = 0.0
    lost_tissue_mcg: float = 0.0
    withdrawn_mcg: float = 0.0
    withdrawn_ml: float = 0.0
    pumped_ml: float = 0.0
    """True volume moved out of the reservoir, mL."""
    commanded_ml: float = 0.0
    """Volume the motor was commanded to move (programmed), mL."""
    commanded_x_factor_ml: float = 0.0
    """Integral of commanded rate x accuracy (and flow) factor: the most that can move, mL."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """The residual withdrawn at a refill."""

    t_h: float
    expected_ml: float
    withdrawn_ml: float


@dataclass(frozen=True, slots=True)
class PatientBolusOutcome:
    """Answer to a patient's bolus request."""

    t_h: float
    accepted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class PumpStatus:
    """A snapshot of the pump at ``t_h`` (what an interrogation would show, plus truth)."""

    t_h: float
    preset: str
    kind: str
    reservoir_calculated_ml: float
    reservoir_actual_ml: float
    reservoir_concentration_mcg_per_ml: float
    labelled_concentration_mcg_per_ml: float
    prescription: str
    running: bool
    stop_reason: str
    low_reservoir_alarm_ml: float
    battery_used_fraction: float
    eri_t_h: float | None
    eos_t_h: float | None
    active_alarms: tuple[str, ...]
    """Alarms whose condition holds now (sounding or acknowledged)."""
    sounding_alarms: tuple[str, ...]
    """Active alarms not yet acknowledged by an interrogation."""
    delivered_csf_mcg: float
    dead_space_ml: float
    dead_space_mcg: float
    faults: tuple[str, ...]


def _moved_ml(
    flow_ml: float, actual_ml: float, stroke_ml: float, remainder_ml: float
) -> tuple[float, float]:
    """Volume leaving the reservoir (mL) when ``flow_ml`` is due from ``actual_ml``, and the
    stroke remainder after it: a valve-gated pump moves whole strokes only."""
    moved = min(flow_ml, actual_ml)
    if stroke_ml > 0.0 and moved > 0.0:
        total = remainder_ml + moved
        strokes = math.floor(total / stroke_ml + 1e-9)
        moved_strokes = min(strokes * stroke_ml, actual_ml)
        return moved_strokes, max(0.0, total - moved_strokes)
    return moved, remainder_ml


@dataclass(frozen=True, slots=True)
class ReservoirPiece:
    """One integration step of the pump, ``t0_h`` to ``t1_h``, at one commanded and one true
    rate: enough to read the reservoir at any instant in between afterwards (what the pump
    would have shown had it stopped there), without stepping the pump there.

    Attributes:
        t0_h, t1_h: the step, h.
        actual_ml, calculated_ml: true and calculated reservoir volumes at ``t0_h``, mL.
        commanded_ml_per_h: commanded volume rate, mL/h.
        true_out_ml_per_h: true volume rate out of the reservoir, mL/h.
        stroke_ml: volume of one stroke (0: continuous flow), mL.
        stroke_remainder_ml: volume commanded but not yet moved by a stroke at ``t0_h``, mL.
    """

    t0_h: float
    t1_h: float
    actual_ml: float
    calculated_ml: float
    commanded_ml_per_h: float
    true_out_ml_per_h: float
    stroke_ml: float
    stroke_remainder_ml: float

    def at(self, t_h: float) -> tuple[float, float]:
        """True and calculated reservoir volumes (mL) at ``t_h``, clamped to the step."""
        dt = min(max(t_h - self.t0_h, 0.0), self.t1_h - self.t0_h)
        calculated = max(0.0, self.calculated_ml - self.commanded_ml_per_h * dt)
        moved, _ = _moved_ml(
            self.true_out_ml_per_h * dt, self.actual_ml, self.stroke_ml, self.stroke_remainder_ml
        )
        actual = self.actual_ml - moved if moved > 0.0 else self.actual_ml
        return (0.0 if actual < _EPS_ML else actual), calculated


@dataclass(slots=True)
class ActiveBolus:
    """A running bolus: it ends when its volume has been commanded, so a stop
    (MRI, stall, update) pauses it rather than cutting it short."""

    bolus: Bolus
    remaining_ml: float


@dataclass(slots=True)
class _Faults:
    occluded: bool = False
    leak_fraction: float = 0.0
    disconnected: bool = False
    tip_fraction_to_csf: float = 1.0
    """Of a migrated tip (1: in place)."""
    mass_fraction_to_csf: float = 1.0
    """Past a mass at the catheter tip (1: none)."""
    csf_leak_fraction: float = 1.0
    """Staying in the CSF while spinal fluid leaks (1: no leak)."""
    stalled: bool = False
    drain_multiplier: float = 1.0
    memory_error: AlarmKind | None = None
    active: set[str] = field(default_factory=set)

    @property
    def outlet_loss_fraction(self) -> float:
        """Fraction of the pumped flow lost to tissue: all of it while disconnected,
        else the leak's fraction (a leak never masks a disconnection, nor the reverse)."""
        return 1.0 if self.disconnected else self.leak_fraction

    @property
    def fraction_to_csf(self) -> float:
        """Share of the drug leaving the tip that reaches (and stays in) the CSF."""
        return self.tip_fraction_to_csf * self.mass_fraction_to_csf * self.csf_leak_fraction

    @property
    def flipped(self) -> bool:
        """The pump has turned over in its pocket (no refill until re-fixation)."""
        return FaultKind.POCKET_FLIP.value in self.active


class Pump:
    """An implanted pump with its catheter, simulated exactly in time.

    Build with :meth:`implant`; fill with :meth:`fill`; program through a
    :class:`itb.domain.pump.session.ProgrammingSession`; move time with
    :meth:`advance_to`, which returns what reached the CSF.
    """

    def __init__(
        self,
        preset: PumpPreset,
        catheter: CatheterSpec,
        *,
        t_h: float = 0.0,
        accuracy_factor: float = 1.0,
        pump_clock_offset_h: float = 0.0,
        guard: DoseLimits | None = None,
    ) -> None:
        require_finite("t_h", t_h)
        require_finite("pump_clock_offset_h", pump_clock_offset_h)
        require_positive("accuracy_factor", accuracy_factor)
        band = preset.accuracy_band_pct / 100.0
        if abs(accuracy_factor - 1.0) > band + 1e-12:
            raise InvalidValue(
                "accuracy_factor",
                accuracy_factor,
                f"{1 - band:.4g} to {1 + band:.4g} (the rated ±{preset.accuracy_band_pct:g} %; "
                "use an overinfusion_drift fault to go beyond)",
            )
        self.preset = preset
        self.catheter = catheter
        self.t_h = float(t_h)
        self.implant_t_h = float(t_h)
        self.accuracy_factor = float(accuracy_factor)
        self.rated_accuracy_factor = float(accuracy_factor)
        """The pump's own factor within its rated band (what a repaired drift returns to)."""
        self.guard = guard
        """The drug library for this patient (None: only the pump's own limits apply)."""
        self.pump_clock_offset_h = float(pump_clock_offset_h)
        self.dead_space = DeadSpace(preset.internal_path_ml, catheter.volume_ml, 0.0)
        self.reservoir_actual_ml = 0.0
        self.reservoir_concentration_mcg_per_ml = 0.0
        self.labelled_concentration_mcg_per_ml = 0.0
        self.reservoir_calculated_ml = 0.0
        self.calculated_empty_since_t_h: float | None = None
        """When the calculated reservoir last reached 0 mL (None: not empty since the fill)."""
        self.low_reservoir_alarm_ml = preset.low_reservoir_alarm_default_ml
        self.prescription = Prescription(Stopped(), 1.0)
        self.bolus: ActiveBolus | None = None
        self.stop_reasons: set[StopReason] = set()
        self.stopped_since_t_h: float | None = None
        self.battery_used = 0.0
        self.eri_t_h: float | None = None
        self.eos_t_h: float | None = None
        self.faults = _Faults()
        self.body_temperature_degc = preset.reference_body_temperature_degc
        self.ambient_pressure_kpa = preset.reference_ambient_pressure_kpa
        self.stroke_remainder_ml = 0.0
        self.commanded_at_last_fill_ml = 0.0
        self.calculated_at_last_fill_ml = 0.0
        """The calculated volume the last fill left (what the pump could then deliver)."""
        self.withdrawn_since_fill = False
        self.patient_bolus_starts_t_h: list[float] = []
        self.ledger = Ledger()
        self.reservoir_tape: Callable[[ReservoirPiece], None] | None = None
        """Receives every integration step (None: nothing kept), to read the reservoir
        between events afterwards (:meth:`ReservoirPiece.at`)."""
        self.log = EventLog()
        self.alarm_log: list[AlarmRecord] = []
        self.active_alarms: dict[AlarmKind, float] = {}
        self.acknowledged_alarms: set[AlarmKind] = set()
        self.mri_alarming = False
        if preset.programmable:
            self._set_stopped(StopReason.STOPPED_MODE, True)
        self.log.append(
            self.t_h,
            "implant",
            f"{preset.label}; catheter {catheter.label} {catheter.implanted_length_cm:g} cm "
            f"({catheter.volume_ml:.4g} mL) + pump path {preset.internal_path_ml:g} mL; "
            f"accuracy factor {accuracy_factor:g}",
        )

    # ------------------------------------------------------------------ queries

    @property
    def clock_h(self) -> float:
        """The pump's own clock (hours since a Monday 00:00) at the present time."""
        return self.t_h + self.pump_clock_offset_h

    @property
    def running(self) -> bool:
        """True when the motor runs (it may still deliver nothing: dry, occluded)."""
        return not self.stop_reasons

    def bolus_end_t_h(self) -> float | None:
        """When the running bolus will end if the pump keeps running (None: no bolus)."""
        if self.bolus is None:
            return None
        if not self.running:
            return math.inf
        return self.t_h + self.bolus.remaining_ml / self.bolus.bolus.rate_ml_per_h

    @property
    def dead_space_ml(self) -> float:
        """Pump path + implanted catheter volume, mL."""
        return self.dead_space.volume_ml

    def status(self) -> PumpStatus:
        """A snapshot of the present state."""
        return PumpStatus(
            t_h=self.t_h,
            preset=self.preset.key,
            kind=self.preset.kind.value,
            reservoir_calculated_ml=self.reservoir_calculated_ml,
            reservoir_actual_ml=self.reservoir_actual_ml,
            reservoir_concentration_mcg_per_ml=self.reservoir_concentration_mcg_per_ml,
            labelled_concentration_mcg_per_ml=self.labelled_concentration_mcg_per_ml,
            prescription=self.prescription.describe()
            if self.preset.programmable
            else f"constant flow {self.preset.nominal_flow_ml_per_day:g} mL/day",
            running=self.running,
            stop_reason="; ".join(sorted(r.value for r in self.stop_reasons)),
            low_reservoir_alarm_ml=self.low_reservoir_alarm_ml,
            battery_used_fraction=self.battery_used,
            eri_t_h=self.eri_t_h,
            eos_t_h=self.eos_t_h,
            active_alarms=tuple(sorted(a.value for a in self.active_alarms)),
            sounding_alarms=self.sounding_alarms(),
            delivered_csf_mcg=self.ledger.delivered_csf_mcg,
            dead_space_ml=self.dead_space.volume_ml,
            dead_space_mcg=self.dead_space.mass_mcg,
            faults=tuple(sorted(self.faults.active)),
        )

    def balance_error_mcg(self) -> float:
        """Drug in minus drug accounted for, mcg (0 up to rounding)."""
        ld = self.ledger
        drug_in = ld.filled_mcg + ld.pocket_mcg + ld.access_port_mcg
        accounted = (
            ld.delivered_csf_mcg
            + ld.lost_tissue_mcg
            + ld.pocket_mcg
            + ld.withdrawn_mcg
            + self.reservoir_actual_ml * self.reservoir_concentration_mcg_per_ml
            + self.dead_space.mass_mcg
        )
        return drug_in - accounted

    # ------------------------------------------------------------- rate model

    def flow_factor(self) -> float:
        """True / commanded flow: the accuracy factor, the under-delivery of a nearly empty
        reservoir ([C101]; below ``low_residual_volume_ml``), and for gas-driven pumps
        temperature and pressure ([D80][D88]; coefficients assumed)."""
        factor = self.accuracy_factor
        if self.low_residual:
            factor *= self.preset.low_residual_flow_fraction
        if self.preset.kind is PumpKind.CONSTANT_FLOW:
            p = self.preset
            factor *= max(
                0.0,
                1.0
                + p.flow_change_pct_per_degc
                / 100.0
                * (self.body_temperature_degc - p.reference_body_temperature_degc)
                + p.flow_change_pct_per_kpa_below_reference
                / 100.0
                * (p.reference_ambient_pressure_kpa - self.ambient_pressure_kpa),
            )
        return factor

    @property
    def low_residual(self) -> bool:
        """True while the true reservoir volume is below the preset's low-residual volume."""
        v = self.preset.low_residual_volume_ml
        return v > 0.0 and self.reservoir_actual_ml <= v + _EPS_ML

    def _quantize_ml_per_h(self, rate_ml_per_h: float) -> float:
        res = self.preset.rate_resolution_ml_per_day
        if res <= 0.0:
            return rate_ml_per_h
        per_day = round(rate_ml_per_h * HOURS_PER_DAY / res) * res
        return per_day / HOURS_PER_DAY

    def program_rate_ml_per_h(
        self, program: Program, concentration: float, clock_h: float
    ) -> float:
        """Commanded volume rate (mL/h) of ``program`` at pump-clock ``clock_h``."""
        return self._quantize_ml_per_h(program.rate_mcg_per_h(clock_h) / concentration)

    def commanded_ml_per_h(self) -> float:
        """Volume rate the motor is commanded to move now, mL/h."""
        if self.stop_reasons:
            return 0.0
        if self.preset.kind is PumpKind.CONSTANT_FLOW:
            return self.preset.nominal_flow_ml_per_day / HOURS_PER_DAY
        if self.bolus is not None:
            return self.bolus.bolus.rate_ml_per_h
        p = self.prescription
        return self.program_rate_ml_per_h(p.program, p.concentration_mcg_per_ml, self.clock_h)

    def _next_program_change_t_h(self) -> float:
        if self.stop_reasons or self.preset.kind is PumpKind.CONSTANT_FLOW:
            return math.inf
        if self.bolus is not None:
            return self.t_h + self.bolus.remaining_ml / self.bolus.bolus.rate_ml_per_h
        nxt = self.prescription.program.next_change_h(self.clock_h)
        return nxt - self.pump_clock_offset_h

    # ----------------------------------------------------------------- battery

    def _drain_per_h(self, commanded_ml_per_h: float) -> float:
        spec = self.preset.battery
        if spec is None:
            return 0.0
        base = spec.drain_base_per_day / HOURS_PER_DAY
        return (base + spec.drain_per_ml * commanded_ml_per_h) * self.faults.drain_multiplier

    def _hard_eri_t_h(self) -> float:
        spec = self.preset.battery
        if spec is None:
            return math.inf
        return (
            self.implant_t_h
            + (spec.hard_limit_years * DAYS_PER_YEAR - spec.eri_to_eos_days) * HOURS_PER_DAY
        )

    # ------------------------------------------------------------- advancing

    def advance_to(
        self, t_h: float, sink: Callable[[DeliverySegment], None] | None = None
    ) -> list[DeliverySegment]:
        """Move the pump forward to ``t_h``; return what entered the CSF (positive rates only).

        Raises:
            TimeWentBackwards: ``t_h`` is before the pump's present time.
        """
        require_finite("t_h", t_h)
        if t_h < self.t_h - _EPS_H:
            raise TimeWentBackwards("t_h", t_h, f">= the pump's present time {self.t_h:g}")
        out: list[DeliverySegment] = []
        emit = sink if sink is not None else out.append
        while self.t_h < t_h - _EPS_H:
            t_next = min(t_h, self._next_breakpoint_t_h())
            if t_next <= self.t_h + _EPS_H:
                t_next = min(t_h, self.t_h + _EPS_H * 10)
            self._integrate(t_next, emit)
            self._after_segment()
        self.t_h = max(self.t_h, t_h)
        return out

    def _next_breakpoint_t_h(self) -> float:
        t = self.t_h
        cmd = self.commanded_ml_per_h()
        candidates = [self._next_program_change_t_h()]
        true_out = self._true_out_ml_per_h(cmd)
        if true_out > 0.0:
            candidates.append(t + self.reservoir_actual_ml / true_out)
            if self.preset.low_residual_volume_ml > 0.0 and not self.low_residual:
                above = self.reservoir_actual_ml - self.preset.low_residual_volume_ml
                candidates.append(t + above / true_out)
        if cmd > 0.0 and self.preset.has_alarms:
            for thr in (self.low_reservoir_alarm_ml, self.preset.empty_reservoir_alarm_ml):
                if self.reservoir_calculated_ml > thr + _EPS_ML:
                    candidates.append(t + (self.reservoir_calculated_ml - thr) / cmd)
            if self.reservoir_calculated_ml > _EPS_ML:
                candidates.append(t + self.reservoir_calculated_ml / cmd)
        if self.preset.battery is not None:
            if self.eri_t_h is None:
                drain = self._drain_per_h(cmd)
                candidates.append(self._hard_eri_t_h())
                if drain > 0.0:
                    candidates.append(t + max(0.0, 1.0 - self.battery_used) / drain)
            elif self.eos_t_h is not None and t < self.eos_t_h:
                candidates.append(self.eos_t_h)
        if self.stopped_since_t_h is not None and self.preset.has_alarms:
            t_alarm = self.stopped_since_t_h + self.preset.stopped_alarm_h
            if t_alarm > t:
                candidates.append(t_alarm)
        return min(candidates)

    def _true_out_ml_per_h(self, commanded_ml_per_h: float) -> float:
        if commanded_ml_per_h <= 0.0 or self.faults.occluded:
            return 0.0
        if self.reservoir_actual_ml <= _EPS_ML:
            return 0.0
        return commanded_ml_per_h * self.flow_factor()

    def _integrate(self, t_end: float, emit: Callable[[DeliverySegment], None]) -> None:
        t0 = self.t_h
        dt = t_end - t0
        cmd = self.commanded_ml_per_h()
        factor = self.flow_factor() if cmd > 0.0 else 0.0
        cmd_ml = cmd * dt
        if self.bolus is not None and cmd > 0.0:
            self.bolus.remaining_ml -= cmd_ml
        ld = self.ledger
        ld.commanded_ml += cmd_ml
        ld.commanded_x_factor_ml += cmd_ml * factor
        calculated_before = self.reservoir_calculated_ml
        if (
            cmd > 0.0
            and self.reservoir_calculated_ml > 0.0 >= self.reservoir_calculated_ml - cmd_ml
        ) and self.calculated_empty_since_t_h is None:
            self.calculated_empty_since_t_h = t0 + self.reservoir_calculated_ml / cmd
        self.reservoir_calculated_ml = max(0.0, self.reservoir_calculated_ml - cmd_ml)
        if self.preset.battery is not None and self.eos_t_h is None:
            self.battery_used += self._drain_per_h(cmd) * dt
        true_out = self._true_out_ml_per_h(cmd)
        if self.reservoir_tape is not None:
            self.reservoir_tape(
                ReservoirPiece(
                    t0,
                    t_end,
                    self.reservoir_actual_ml,
                    calculated_before,
                    cmd,
                    true_out,
                    self.preset.stroke_ml,
                    self.stroke_remainder_ml,
                )
            )
        moved, self.stroke_remainder_ml = _moved_ml(
            true_out * dt, self.reservoir_actual_ml, self.preset.stroke_ml, self.stroke_remainder_ml
        )
        if moved <= 0.0:
            self.t_h = t_end
            return
        conc = self.reservoir_concentration_mcg_per_ml
        self.reservoir_actual_ml -= moved
        if self.reservoir_actual_ml < _EPS_ML:
            self.reservoir_actual_ml = 0.0
        ld.pumped_ml += moved
        lost_ml = moved * self.faults.outlet_loss_fraction
        ld.lost_tissue_mcg += lost_ml * conc
        into_ml = moved - lost_ml
        if into_ml > 0.0:
            exiting = self.dead_space.push(into_ml, conc)
            q = into_ml / dt
            t = t0
            frac = self.faults.fraction_to_csf
            for i, slug in enumerate(exiting):
                t_next = t_end if i == len(exiting) - 1 else t + slug.volume_ml / q
                mass = slug.mass_mcg
                ld.delivered_csf_mcg += mass * frac
                ld.lost_tissue_mcg += mass * (1.0 - frac)
                if mass * frac > 0.0 and t_next > t:
                    emit(DeliverySegment(t, t_next, mass * frac / (t_next - t)))
                t = t_next
        self.t_h = t_end

    def _after_segment(self) -> None:
        t = self.t_h
        if self.bolus is not None and self.bolus.remaining_ml <= _EPS_ML:
            self.log.append(t, "bolus_end", f"{self.bolus.bolus.kind.value} bolus finished")
            self.bolus = None
        spec = self.preset.battery
        if (
            spec is not None
            and self.eri_t_h is None
            and (self.battery_used >= 1.0 - 1e-12 or t >= self._hard_eri_t_h() - _EPS_H)
        ):
            self.eri_t_h = t
            self.eos_t_h = t + spec.eri_to_eos_days * HOURS_PER_DAY
            self.log.append(
                t,
                "battery_eri",
                f"elective replacement indicator; end of service in {spec.eri_to_eos_days:g} days",
            )
        if (
            self.eos_t_h is not None
            and t >= self.eos_t_h - _EPS_H
            and StopReason.END_OF_SERVICE not in self.stop_reasons
        ):
            self.log.append(t, "battery_eos", "end of service: the pump has stopped")
            self._set_stopped(StopReason.END_OF_SERVICE, True)
        self._update_alarms()

    # ---------------------------------------------------------------- alarms

    def _alarm_conditions(self) -> dict[AlarmKind, bool]:
        t = self.t_h
        p = self.preset
        stopped_long = (
            self.stopped_since_t_h is not None
            and t >= self.stopped_since_t_h + p.stopped_alarm_h - _EPS_H
            and StopReason.END_OF_SERVICE not in self.stop_reasons
        )
        return {
            AlarmKind.LOW_RESERVOIR: self.reservoir_calculated_ml
            <= self.low_reservoir_alarm_ml + _EPS_ML,
            AlarmKind.EMPTY_RESERVOIR: self.reservoir_calculated_ml
            <= p.empty_reservoir_alarm_ml + _EPS_ML,
            AlarmKind.ELECTIVE_REPLACEMENT: self.eri_t_h is not None,
            AlarmKind.END_OF_SERVICE: self.eos_t_h is not None and t >= self.eos_t_h - _EPS_H,
            AlarmKind.MOTOR_STALL: self.faults.stalled,
            AlarmKind.PUMP_STOPPED: stopped_long,
            AlarmKind.MEMORY_ERROR_CRITICAL: self.faults.memory_error
            is AlarmKind.MEMORY_ERROR_CRITICAL,
            AlarmKind.MEMORY_ERROR: self.faults.memory_error is AlarmKind.MEMORY_ERROR,
        }

    def _update_alarms(self) -> None:
        """Raise an alarm when its condition starts; end it only when the condition ends.

        An interrogation acknowledges (silences) an alarm but never ends one whose
        condition still holds: the status keeps showing it as active.
        """
        if not self.preset.has_alarms:
            return
        t = self.t_h
        for kind, holds in self._alarm_conditions().items():
            if holds and kind not in self.active_alarms:
                self.active_alarms[kind] = t
                self.alarm_log.append(AlarmRecord(t, kind, "raised"))
                self.log.append(t, "alarm", f"{kind.value} raised")
            elif not holds and kind in self.active_alarms:
                del self.active_alarms[kind]
                self.acknowledged_alarms.discard(kind)
                self.alarm_log.append(AlarmRecord(t, kind, "cleared_cause_fixed"))
                self.log.append(t, "alarm", f"{kind.value} cleared (cause fixed)")

    def sounding_alarms(self) -> tuple[str, ...]:
        """Active alarms not yet acknowledged (what the patient hears), sorted."""
        return tuple(
            sorted(a.value for a in self.active_alarms if a not in self.acknowledged_alarms)
        )

    def critical_alarms(self) -> tuple[str, ...]:
        """Active critical alarms (acknowledged or not), sorted."""
        return tuple(sorted(a.value for a in self.active_alarms if a in CRITICAL))

    def _set_stopped(self, reason: StopReason, on: bool) -> None:
        was_running = self.running
        if on:
            self.stop_reasons.add(reason)
        else:
            self.stop_reasons.discard(reason)
        if was_running and not self.running:
            self.stopped_since_t_h = self.t_h
        elif not was_running and self.running:
            self.stopped_since_t_h = None

    def require_now(self, t_h: float) -> None:
        """Commands act at the present time: advance first, then act.

        Raises:
            TimeWentBackwards: ``t_h`` is before the pump's present time.
            PumpStateError: ``t_h`` is ahead of it (advance the pump first).
        """
        require_finite("t_h", t_h)
        if t_h < self.t_h - _EPS_H:
            raise TimeWentBackwards("t_h", t_h, f">= the pump's present time {self.t_h:g}")
        if t_h > self.t_h + _EPS_H:
            raise PumpStateError(
                f"t_h = {t_h:g} is ahead of the pump ({self.t_h:g}); call advance_to first"
            )

    # -------------------------------------------------------------- commands

    def interrogate(self, t_h: float) -> PumpStatus:
        """Read the pump with a programmer: acknowledges (silences) the sounding alarms and
        ends an MRI telemetry hold. An alarm whose condition still holds stays active."""
        self.require_now(t_h)
        for kind in self.active_alarms:
            if kind not in self.acknowledged_alarms:
                self.acknowledged_alarms.add(kind)
                self.alarm_log.append(AlarmRecord(t_h, kind, "acknowledged_by_interrogation"))
        if StopReason.TELEMETRY_HOLD in self.stop_reasons:
            self._set_stopped(StopReason.TELEMETRY_HOLD, False)
            self.log.append(t_h, "resume", "infusion resumed after interrogation (post-MRI hold)")
        self.log.append(t_h, "interrogation", "pump interrogated")
        self._update_alarms()
        return self.status()

    def withdraw_residual(self, t_h: float) -> Withdrawal:
        """Empty the reservoir through the septum; report expected vs withdrawn volume."""
        self.require_now(t_h)
        expected = self.reservoir_calculated_ml
        withdrawn = self.reservoir_actual_ml
        ld = self.ledger
        ld.withdrawn_ml += withdrawn
        ld.withdrawn_mcg += withdrawn * self.reservoir_concentration_mcg_per_ml
        self.reservoir_actual_ml = 0.0
        self.withdrawn_since_fill = True
        self.log.append(
            t_h,
            "withdraw",
            f"residual withdrawn {withdrawn:.3f} mL (expected {expected:.3f} mL)",
        )
        self._update_alarms()
        return Withdrawal(t_h, expected, withdrawn)

    def check_fill(
        self,
        volume_ml: float,
        concentration_mcg_per_ml: float,
        *,
        true_concentration_mcg_per_ml: float | None = None,
        into_pocket: bool = False,
        after_withdrawal: bool = False,
    ) -> float:
        """Check a fill without doing it; return the true concentration filled (mcg/mL).

        ``after_withdrawal``: check as if the residual had just been withdrawn (a refill
        checks everything before it withdraws anything).

        Raises:
            InvalidValue: a volume or concentration that is not a positive number.
            ReservoirOverfill: the reservoir cannot hold it.
            ConcentrationMismatch: drug of another concentration is still in the pump.
            HardLimitExceeded: the drug library does not allow the concentration here.
            NotAllowedForPump: a compounding error or a pocket fill that the run has not
                declared as a modelled hazard.
            SeptumUnreachable: the pump has turned over in its pocket.
        """
        if self.faults.flipped:
            raise SeptumUnreachable(
                "refill not possible: the reservoir septum cannot be reached (the pump has "
                "turned over in its pocket); a surgical re-fixation comes first"
            )
        require_positive("volume_ml", volume_ml)
        require_positive("concentration_mcg_per_ml", concentration_mcg_per_ml)
        true_conc = (
            concentration_mcg_per_ml
            if true_concentration_mcg_per_ml is None
            else require_non_negative(
                "true_concentration_mcg_per_ml", true_concentration_mcg_per_ml
            )
        )
        if self.guard is not None:
            self.guard.check_concentration(concentration_mcg_per_ml, self.preset.kind.value)
            hazard = self.guard.declared_hazard
            if hazard is None and (into_pocket or true_conc != concentration_mcg_per_ml):
                what = "a pocket fill" if into_pocket else "a compounding error"
                raise NotAllowedForPump(
                    f"{what} is a modelled hazard: the run must declare it (declared_hazard)"
                )
        capacity = self.preset.reservoir_ml
        if after_withdrawal:
            believed_ml, actual_ml = 0.0, 0.0
        else:
            believed_ml = 0.0 if self.withdrawn_since_fill else self.reservoir_calculated_ml
            actual_ml = self.reservoir_actual_ml
        room = capacity - max(believed_ml, actual_ml)
        if volume_ml > room + _EPS_ML:
            raise ReservoirOverfill(
                "volume_ml", volume_ml, f"<= {max(room, 0.0):.3g} (reservoir {capacity:g} mL)"
            )
        if believed_ml > _EPS_ML and (
            concentration_mcg_per_ml != self.labelled_concentration_mcg_per_ml
        ):
            raise ConcentrationMismatch(
                concentration_mcg_per_ml, self.labelled_concentration_mcg_per_ml
            )
        return true_conc

    def fill(
        self,
        t_h: float,
        volume_ml: float,
        concentration_mcg_per_ml: float,
        *,
        true_concentration_mcg_per_ml: float | None = None,
        into_pocket: bool = False,
        reason: str = "refill",
    ) -> None:
        """Fill the reservoir with ``volume_ml`` of drug labelled ``concentration_mcg_per_ml``.

        ``true_concentration_mcg_per_ml`` models a compounding error; ``into_pocket``
        a pocket fill (the drug goes under the skin, not into the reservoir; a
        fault, [D39][D40]). Either way the pump and clinic believe
        the reservoir now holds the volume.

        Raises:
            ReservoirOverfill: the reservoir cannot hold it (nothing is changed).
        """
        self.require_now(t_h)
        true_conc = self.check_fill(
            volume_ml,
            concentration_mcg_per_ml,
            true_concentration_mcg_per_ml=true_concentration_mcg_per_ml,
            into_pocket=into_pocket,
        )
        believed_ml = 0.0 if self.withdrawn_since_fill else self.reservoir_calculated_ml
        ld = self.ledger
        if into_pocket:
            ld.pocket_mcg += volume_ml * true_conc
            self.faults.active.add("pocket_fill")
            self.log.append(
                t_h,
                "pocket_fill",
                f"{volume_ml:g} mL at {true_conc:g} mcg/mL injected into the pocket, "
                "not the reservoir",
                reason,
            )
        else:
            total = self.reservoir_actual_ml + volume_ml
            mass = self.reservoir_actual_ml * self.reservoir_concentration_mcg_per_ml
            self.reservoir_concentration_mcg_per_ml = (mass + volume_ml * true_conc) / total
            self.reservoir_actual_ml = total
            ld.filled_mcg += volume_ml * true_conc
            ld.filled_ml += volume_ml
            self.log.append(
                t_h, "fill", f"{volume_ml:g} mL at {concentration_mcg_per_ml:g} mcg/mL", reason
            )
        # The clinician programs the new reservoir volume: what was believed left
        # (nothing after a withdrawal) plus what was filled.
        self.reservoir_calculated_ml = believed_ml + volume_ml
        self.calculated_empty_since_t_h = None
        self.withdrawn_since_fill = False
        self.labelled_concentration_mcg_per_ml = concentration_mcg_per_ml
        self.commanded_at_last_fill_ml = ld.commanded_ml
        self.calculated_at_last_fill_ml = self.reservoir_calculated_ml
        self._update_alarms()

    def inject_access_port(
        self,
        t_h: float,
        volume_ml: float,
        concentration_mcg_per_ml: float,
        *,
        acknowledge_overdose_hazard: bool = False,
        duration_h: float = 1.0 / 60.0,
        reason: str = "",
    ) -> list[DeliverySegment]:
        """Inject through the catheter access port: drug goes straight down the catheter.

        Guarded: the catheter's contents are flushed into the CSF
        ([D34][D57][D62]); refills through this port cause overdoses. Returns the
        delivery to the CSF over ``duration_h`` (default 1 minute).

        Raises:
            NotAllowedForPump: the hazard was not acknowledged.
        """
        self.require_now(t_h)
        self.validate_access_port_injection(volume_ml, concentration_mcg_per_ml, duration_h)
        if not acknowledge_overdose_hazard:
            raise NotAllowedForPump(
                "catheter access port injection refused: it flushes the catheter's drug straight "
                "into the CSF (overdose hazard); it is never a refill route; acknowledge the "
                "hazard to proceed"
            )
        ld = self.ledger
        ld.access_port_mcg += volume_ml * concentration_mcg_per_ml
        exiting = self.dead_space.inject_at_access_port(volume_ml, concentration_mcg_per_ml)
        frac = self.faults.fraction_to_csf
        mass = sum(s.mass_mcg for s in exiting)
        ld.delivered_csf_mcg += mass * frac
        ld.lost_tissue_mcg += mass * (1.0 - frac)
        self.log.append(
            t_h,
            "access_port_injection",
            f"{volume_ml:g} mL at {concentration_mcg_per_ml:g} mcg/mL via the catheter access "
            f"port; {mass * frac:.1f} mcg flushed into the CSF",
            reason,
        )
        if mass * frac <= 0.0:
            return []
        return [DeliverySegment(t_h, t_h + duration_h, mass * frac / duration_h)]

    def validate_prescription(
        self,
        prescription: Prescription,
        *,
        held_concentration_mcg_per_ml: float | None = None,
        override_reason: str | None = None,
    ) -> LimitVerdict | None:
        """Check a prescription against this pump, the drug it holds and the drug library.

        Fields in the errors are named as a clinician writes them (``dose_mcg_per_day``,
        a flex step's ``rate_mcg_per_h``, ``basal_mcg_per_day`` ...), with the pump's
        limit converted to the same unit.

        Args:
            prescription: the proposal.
            held_concentration_mcg_per_ml: check against a drug about to be filled.
            override_reason: the recorded reason for passing drug-library soft limits.

        Returns:
            The drug library's verdict (None when the pump has no library).

        Raises:
            NotAllowedForPump: the pump cannot be programmed, or patient boluses are
                not allowed for baclofen on this pump.
            ConcentrationMismatch: the concentration differs from the drug in the pump.
            DoseOutOfRange: a rate is outside the pump's range, or too many flex steps.
            HardLimitExceeded, SoftLimitNeedsReason: the drug library refuses it.
        """
        p = self.preset
        if not p.programmable:
            raise NotAllowedForPump(
                f"{p.label} has a fixed flow: change the dose by changing the concentration at refill"
            )
        conc = prescription.concentration_mcg_per_ml
        held = (
            self.labelled_concentration_mcg_per_ml
            if held_concentration_mcg_per_ml is None
            else held_concentration_mcg_per_ml
        )
        if held > 0.0 and conc != held:
            raise ConcentrationMismatch(conc, held)
        if prescription.patient_bolus is not None and not p.patient_bolus_allowed_for_baclofen:
            raise NotAllowedForPump(
                f"patient-activated boluses of baclofen are not allowed on {p.label}"
            )
        program = prescription.program
        if isinstance(program, Flex) and program.max_steps_per_day() > p.max_flex_steps_per_day:
            raise DoseOutOfRange(
                "flex steps per day",
                program.max_steps_per_day(),
                f"<= {p.max_flex_steps_per_day}",
            )
        for field_name, rate_mcg_per_h, per in _program_rates(program):
            rate_ml_per_day = rate_mcg_per_h * HOURS_PER_DAY / conc
            if rate_ml_per_day == 0.0:
                continue
            if not p.min_rate_ml_per_day <= rate_ml_per_day <= p.max_rate_ml_per_day:
                scale = 1.0 if per == "day" else 1.0 / HOURS_PER_DAY
                shown = rate_mcg_per_h * (HOURS_PER_DAY if per == "day" else 1.0)
                raise DoseOutOfRange(
                    field_name,
                    round(shown, 6),
                    f"{p.min_rate_ml_per_day * conc * scale:.4g} to "
                    f"{p.max_rate_ml_per_day * conc * scale:.4g} mcg/{per} at {conc:g} mcg/mL "
                    f"(the pump's {p.min_rate_ml_per_day:g} to {p.max_rate_ml_per_day:g} mL/day)",
                )
        if self.guard is None:
            return None
        previous = self.prescription if self.labelled_concentration_mcg_per_ml > 0 else None
        if previous is not None and isinstance(previous.program, Stopped):
            previous = None
        return self.guard.check_prescription(
            prescription,
            pump_kind=p.kind.value,
            previous=previous,
            override_reason=override_reason,
        )

    def validate_bolus(
        self, bolus: Bolus, *, override_reason: str | None = None
    ) -> LimitVerdict | None:
        """Check a bolus against the pump (and a single bolus against the drug library).

        Raises:
            NotAllowedForPump: the pump cannot give boluses.
            PumpStateError: another bolus is still running.
            DoseOutOfRange: faster than the pump's bolus rate.
            HardLimitExceeded, SoftLimitNeedsReason: the drug library refuses the dose.
        """
        if not self.preset.programmable:
            raise NotAllowedForPump(f"{self.preset.label} cannot give boluses")
        if self.bolus is not None:
            raise PumpStateError(
                f"a {self.bolus.bolus.kind.value} bolus is still running "
                f"({self.bolus.remaining_ml:.4g} mL to go)"
            )
        verdict: LimitVerdict | None = None
        conc = self.labelled_concentration_mcg_per_ml
        if self.guard is not None and bolus.kind is BolusKind.SINGLE:
            verdict = self.guard.check_bolus(
                bolus.volume_ml * conc, conc, self.preset.kind.value, override_reason
            )
        if bolus.rate_ml_per_h > self.preset.max_bolus_rate_ml_per_h + 1e-12:
            raise DoseOutOfRange(
                "duration_h",
                round(bolus.duration_h, 6),
                f">= {bolus.volume_ml / self.preset.max_bolus_rate_ml_per_h:.4g} h for "
                f"{bolus.volume_ml:.4g} mL"
                + (f" ({bolus.volume_ml * conc:.4g} mcg)" if conc > 0 else "")
                + f" (the pump's fastest bolus is {self.preset.max_bolus_rate_ml_per_h:g} mL/h)",
            )
        min_rate = self.preset.min_rate_ml_per_day / HOURS_PER_DAY
        if bolus.rate_ml_per_h < min_rate - 1e-15:
            raise DoseOutOfRange(
                "duration_h",
                round(bolus.duration_h, 6),
                f"<= {bolus.volume_ml / min_rate:.4g} h for {bolus.volume_ml:.4g} mL (slower "
                f"than the pump's slowest rate {self.preset.min_rate_ml_per_day:g} mL/day)",
            )
        return verdict

    def validate_access_port_injection(
        self, volume_ml: float, concentration_mcg_per_ml: float, duration_h: float
    ) -> None:
        """Check an injection through the catheter access port against the kit.

        The largest injection is the kit's syringe, or, for the error the model exists
        for (a refill pushed into the access port instead of the reservoir), a reservoir's
        worth, whichever is larger.

        Raises:
            InvalidValue: a volume that is not positive or larger than either, a negative
                concentration, a duration that is not positive.
        """
        require_positive("volume_ml", volume_ml)
        require_non_negative("concentration_mcg_per_ml", concentration_mcg_per_ml)
        require_positive("duration_h", duration_h)
        kit = self.preset.access_port_max_injection_ml
        refill = self.preset.reservoir_ml
        if volume_ml > max(kit, refill):
            source = self.preset.sources.get("access_port_max_injection_ml")
            tag = f" {source.source.split(' ')[0]}" if source else ""
            raise InvalidValue(
                "volume_ml",
                volume_ml,
                f"<= {max(kit, refill):g} mL (the catheter access port kit's syringe holds "
                f"{kit:g} mL{tag}; a refill pushed into the wrong port by mistake, at most the "
                f"{refill:g} mL reservoir's worth [D57])",
            )

    def validate_fault(self, fault: Fault) -> None:
        """Check a fault's size against what the pump could do.

        Raises:
            InvalidValue: an overinfusion drift or a battery drain beyond the preset's bound.
        """
        bounds = {
            FaultKind.OVERINFUSION_DRIFT: (
                "overinfusion_drift_factor_max",
                "true/programmed flow",
            ),
            FaultKind.BATTERY_DEPLETION: ("battery_depletion_factor_max", "x the normal drain"),
        }
        if fault.kind not in bounds:
            return
        name, what = bounds[fault.kind]
        most = float(getattr(self.preset, name))
        if fault.factor > most:
            source = self.preset.sources.get(name)
            status = f", {source.status}" if source else ""
            raise InvalidValue(
                "factor", fault.factor, f"> 0 and <= {most:g} ({what}; {self.preset.key}{status})"
            )

    def validate_reservoir_volume(self, volume_ml: float) -> None:
        """Raises ReservoirOverfill unless 0 <= volume <= the reservoir (mL)."""
        require_non_negative("reservoir_volume_ml", volume_ml)
        if volume_ml > self.preset.reservoir_ml:
            raise ReservoirOverfill(
                "reservoir_volume_ml", volume_ml, f"0 to {self.preset.reservoir_ml:g}"
            )

    def apply_program(
        self,
        t_h: float,
        *,
        prescription: Prescription | None = None,
        low_reservoir_alarm_ml: float | None = None,
        pump_clock_offset_h: float | None = None,
        reservoir_volume_ml: float | None = None,
        bolus: Bolus | None = None,
        reason: str = "",
        override_reason: str | None = None,
    ) -> None:
        """Apply validated settings at once (used by a committed programming session).

        Everything is checked again first, so nothing changes when anything is refused;
        drug-library soft limits passed with ``override_reason`` and hazards a
        simulation declared are written to the event log.
        """
        self.require_now(t_h)
        verdicts: list[LimitVerdict] = []
        if prescription is not None:
            v = self.validate_prescription(prescription, override_reason=override_reason)
            if v is not None:
                verdicts.append(v)
        if bolus is not None:
            v = self.validate_bolus(bolus, override_reason=override_reason)
            if v is not None:
                verdicts.append(v)
        if low_reservoir_alarm_ml is not None:
            self.validate_low_reservoir_alarm(low_reservoir_alarm_ml)
        if reservoir_volume_ml is not None:
            self.validate_reservoir_volume(reservoir_volume_ml)
        if pump_clock_offset_h is not None:
            require_finite("pump_clock_offset_h", pump_clock_offset_h)
        if prescription is not None:
            self.prescription = prescription
            stopped = isinstance(prescription.program, Stopped)
            self._set_stopped(StopReason.STOPPED_MODE, stopped)
            self.log.append(t_h, "program", prescription.describe(), reason)
        if low_reservoir_alarm_ml is not None:
            self.low_reservoir_alarm_ml = low_reservoir_alarm_ml
            self.log.append(
                t_h, "program", f"low-reservoir alarm {low_reservoir_alarm_ml:g} mL", reason
            )
        if pump_clock_offset_h is not None:
            self.pump_clock_offset_h = pump_clock_offset_h
            self.log.append(
                t_h, "program", f"pump clock set (offset {pump_clock_offset_h:g} h)", reason
            )
        if reservoir_volume_ml is not None:
            self.reservoir_calculated_ml = reservoir_volume_ml
            if reservoir_volume_ml > 0.0:
                self.calculated_empty_since_t_h = None
            self.log.append(
                t_h, "program", f"reservoir volume set to {reservoir_volume_ml:g} mL", reason
            )
        if bolus is not None:
            self._start_bolus(t_h, bolus, reason)
        for verdict in verdicts:
            for line in verdict.log_lines():
                kind = "declared_hazard" if line.startswith("HAZARD") else "safety_override"
                self.log.append(t_h, kind, line, override_reason or "")
        self._update_alarms()

    def validate_low_reservoir_alarm(self, volume_ml: float) -> None:
        """Raises InvalidValue when outside the pump's low-reservoir alarm range."""
        p = self.preset
        if not p.low_reservoir_alarm_min_ml <= volume_ml <= p.low_reservoir_alarm_max_ml:
            raise InvalidValue(
                "low_reservoir_alarm_ml",
                volume_ml,
                f"{p.low_reservoir_alarm_min_ml:g} to {p.low_reservoir_alarm_max_ml:g}",
            )

    def _start_bolus(self, t_h: float, bolus: Bolus, reason: str) -> None:
        if self.bolus is not None:
            raise PumpStateError(
                f"a {self.bolus.bolus.kind.value} bolus is still running "
                f"({self.bolus.remaining_ml:.4g} mL to go)"
            )
        self.bolus = ActiveBolus(bolus, bolus.volume_ml)
        self.log.append(
            t_h,
            "bolus_start",
            f"{bolus.kind.value} bolus {bolus.volume_ml:.4g} mL over {bolus.duration_h:.4g} h",
            reason,
        )

    def request_patient_bolus(self, t_h: float) -> PatientBolusOutcome:
        """A patient presses for a bolus: accepted only within the clinician's limits."""
        self.require_now(t_h)
        settings = self.prescription.patient_bolus

        def refuse(why: str) -> PatientBolusOutcome:
            self.log.append(t_h, "patient_bolus_refused", why)
            return PatientBolusOutcome(t_h, False, why)

        if not self.preset.patient_bolus_allowed_for_baclofen:
            return refuse(f"patient boluses of baclofen are not allowed on {self.preset.label}")
        if settings is None:
            return refuse("no patient bolus is programmed")
        if not self.running:
            return refuse("the pump is stopped")
        if self.bolus is not None:
            return refuse("a bolus is already running")
        starts = self.patient_bolus_starts_t_h
        if starts and t_h - starts[-1] < settings.lockout_h - _EPS_H:
            return refuse(f"lockout: {settings.lockout_h:g} h not yet passed since the last bolus")
        recent = [s for s in starts if s > t_h - HOURS_PER_DAY + _EPS_H]
        if len(recent) >= settings.max_per_day:
            return refuse(f"daily maximum of {settings.max_per_day} reached")
        bolus = _patient_bolus(settings, self.prescription.concentration_mcg_per_ml)
        self._start_bolus(t_h, bolus, "patient-activated")
        starts.append(t_h)
        return PatientBolusOutcome(t_h, True, "accepted")

    def apply_fault(self, t_h: float, fault: Fault) -> None:
        """Start a fault now.

        Raises:
            InvalidValue: the fault's factor is beyond what the pump could do.
        """
        self.require_now(t_h)
        self.validate_fault(fault)
        f = self.faults
        match fault.kind:
            case FaultKind.OCCLUSION:
                f.occluded = True
            case FaultKind.LEAK:
                f.leak_fraction = fault.fraction
            case FaultKind.DISCONNECTION:
                f.disconnected = True
            case FaultKind.MIGRATION:
                f.tip_fraction_to_csf = fault.fraction
            case FaultKind.TIP_MASS:
                f.mass_fraction_to_csf = fault.fraction
            case FaultKind.CSF_LEAK:
                f.csf_leak_fraction = fault.fraction
            case FaultKind.POCKET_FLIP:
                pass  # the septum is out of reach: checked by every fill
            case FaultKind.MOTOR_STALL:
                f.stalled = True
                self._set_stopped(StopReason.MOTOR_STALL, True)
            case FaultKind.BATTERY_DEPLETION:
                f.drain_multiplier = fault.factor
            case FaultKind.OVERINFUSION_DRIFT:
                self.accuracy_factor = fault.factor
            case FaultKind.MEMORY_ERROR:
                f.memory_error = (
                    AlarmKind.MEMORY_ERROR_CRITICAL if fault.critical else AlarmKind.MEMORY_ERROR
                )
                if fault.critical:
                    self._set_stopped(StopReason.MEMORY_ERROR, True)
        f.active.add(fault.kind.value)
        self.log.append(
            t_h,
            "fault",
            f"{fault.kind.value} (fraction {fault.fraction:g}, factor {fault.factor:g})",
        )
        self._update_alarms()

    def repair(self, t_h: float, kind: FaultKind) -> None:
        """End a fault (surgical revision, pump reset ...)."""
        self.require_now(t_h)
        f = self.faults
        match kind:
            case FaultKind.OCCLUSION:
                f.occluded = False
            case FaultKind.LEAK:
                f.leak_fraction = 0.0
            case FaultKind.DISCONNECTION:
                f.disconnected = False
            case FaultKind.MIGRATION:
                f.tip_fraction_to_csf = 1.0
            case FaultKind.TIP_MASS:
                f.mass_fraction_to_csf = 1.0
            case FaultKind.CSF_LEAK:
                f.csf_leak_fraction = 1.0
            case FaultKind.POCKET_FLIP:
                pass
            case FaultKind.MOTOR_STALL:
                f.stalled = False
                self._set_stopped(StopReason.MOTOR_STALL, False)
            case FaultKind.BATTERY_DEPLETION:
                f.drain_multiplier = 1.0
            case FaultKind.OVERINFUSION_DRIFT:
                self.accuracy_factor = self.rated_accuracy_factor
            case FaultKind.MEMORY_ERROR:
                f.memory_error = None
                self._set_stopped(StopReason.MEMORY_ERROR, False)
        f.active.discard(kind.value)
        self.log.append(t_h, "repair", f"{kind.value} repaired")
        self._update_alarms()

    def set_environment(
        self,
        t_h: float,
        *,
        body_temperature_degc: float | None = None,
        ambient_pressure_kpa: float | None = None,
    ) -> None:
        """Fever, heat or altitude: changes a gas-driven pump's flow ([D80][D88])."""
        self.require_now(t_h)
        if body_temperature_degc is not None:
            self.body_temperature_degc = require_finite(
                "body_temperature_degc", body_temperature_degc
            )
        if ambient_pressure_kpa is not None:
            self.ambient_pressure_kpa = require_positive(
                "ambient_pressure_kpa", ambient_pressure_kpa
            )
        self.log.append(
            t_h,
            "environment",
            f"body {self.body_temperature_degc:g} °C, ambient {self.ambient_pressure_kpa:g} kPa; "
            f"flow factor {self.flow_factor():.4g}",
        )

    def begin_mri(self, t_h: float) -> None:
        """MRI exposure starts: the motor of a programmable pump stalls ([D26])."""
        self.require_now(t_h)
        if not self.preset.programmable:
            self.log.append(t_h, "mri", "MRI: constant-flow pump unaffected [D86][D87][D89]")
            return
        self.mri_alarming = bool(self.sounding_alarms())
        self._set_stopped(StopReason.MRI, True)
        self.log.append(t_h, "motor_stall", "motor stalled by the MRI field")

    def end_mri(self, t_h: float) -> None:
        """MRI exposure ends: the motor resumes, unless the pump was alarming (then it waits
        for an interrogation, TGA alert [D52]); a valve pump's flow-activated valve stays
        closed until reset by interrogation [D71]."""
        self.require_now(t_h)
        if StopReason.MRI not in self.stop_reasons:
            return
        self._set_stopped(StopReason.MRI, False)
        hold = self.mri_alarming or self.preset.kind is PumpKind.VALVE
        if hold:
            self._set_stopped(StopReason.TELEMETRY_HOLD, True)
            self.log.append(
                t_h, "stall_recovery_blocked", "MRI over; pump stays stopped until interrogated"
            )
        else:
            self.log.append(t_h, "stall_recovery", "MRI over; motor resumed")
        self._update_alarms()

    def begin_update(self, t_h: float) -> None:
        """A programmer starts writing to the pump: it stops during the update ([D24])."""
        self.require_now(t_h)
        self._set_stopped(StopReason.UPDATE_IN_PROGRESS, True)
        self.log.append(t_h, "update_start", "pump stopped for a programming update")

    def end_update(self, t_h: float, *, completed: bool) -> None:
        """The update finished (pump restarts) or was left unfinished (pump stays stopped)."""
        self.require_now(t_h)
        self._set_stopped(StopReason.UPDATE_IN_PROGRESS, False)
        if completed:
            self._set_stopped(StopReason.UNFINISHED_SESSION, False)
            self.log.append(t_h, "update_end", "programming update completed; pump restarted")
        else:
            self._set_stopped(StopReason.UNFINISHED_SESSION, True)
            self.log.append(
                t_h,
                "update_unfinished",
                "HAZARD: programming session left unfinished; the pump stays STOPPED",
            )
        self._update_alarms()

    # ------------------------------------------------------------- forecasts

    def predicted_eri_eos_t_h(self) -> tuple[float, float] | None:
        """ERI and end-of-service times if the present program runs on unchanged.

        Walks the program's piecewise-constant commanded rate exactly (the
        battery drain is linear in it), so it matches :meth:`advance_to` for
        a pump that is never stopped.
        """
        spec = self.preset.battery
        if spec is None:
            return None
        if self.eri_t_h is not None:
            assert self.eos_t_h is not None
            return self.eri_t_h, self.eos_t_h
        used = self.battery_used
        hard = self._hard_eri_t_h()
        for t0, t1, cmd in self.forecast_commanded(self.t_h, hard):
            drain = self._drain_per_h(cmd)
            if drain > 0.0 and used + drain * (t1 - t0) >= 1.0:
                t_eri = t0 + (1.0 - used) / drain
                return t_eri, t_eri + spec.eri_to_eos_days * HOURS_PER_DAY
            used += drain * (t1 - t0)
        return hard, hard + spec.eri_to_eos_days * HOURS_PER_DAY

    def forecast_commanded(
        self, t_from_h: float, t_to_h: float, prescription: Prescription | None = None
    ) -> Iterator[tuple[float, float, float]]:
        """Commanded rate (mL/h) of a prescription as constant pieces ``(t0, t1, rate)``
        over [t_from_h, t_to_h], lazily (callers stop at what they look for).

        Uses the present prescription by default; a running bolus is included.
        """
        p = prescription or self.prescription
        t = t_from_h
        if prescription is None and self.bolus is not None and self.running:
            end = min(t + self.bolus.remaining_ml / self.bolus.bolus.rate_ml_per_h, t_to_h)
            yield (t, end, self.bolus.bolus.rate_ml_per_h)
            t = end
        if self.preset.kind is PumpKind.CONSTANT_FLOW:
            if t < t_to_h:
                yield (t, t_to_h, self.preset.nominal_flow_ml_per_day / HOURS_PER_DAY)
            return
        offset = self.pump_clock_offset_h
        while t < t_to_h - _EPS_H:
            clock = t + offset
            nxt = min(p.program.next_change_h(clock) - offset, t_to_h)
            if nxt <= t + _EPS_H:
                nxt = min(t_to_h, t + 10 * _EPS_H)
            yield (t, nxt, self.program_rate_ml_per_h(p.program, p.concentration_mcg_per_ml, clock))
            t = nxt


def _program_rates(program: Program) -> list[tuple[str, float, str]]:
    """Every dose rate a program can command: (field as written, rate in mcg/h, 'day' or
    'h' for the unit the field is written in)."""
    match program:
        case Stopped():
            return []
        case Continuous():
            return [("dose_mcg_per_day", program.rate_mcg_per_h(0.0), "day")]
        case Flex():
            out: dict[float, tuple[str, float, str]] = {}
            for d, day in enumerate(program.days):
                for step in day:
                    hhmm = f"{int(step.start_h):02d}:{round(step.start_h % 1 * 60):02d}"
                    out.setdefault(
                        step.rate_mcg_per_h,
                        (f"flex {WEEKDAYS[d]} {hhmm} rate_mcg_per_h", step.rate_mcg_per_h, "h"),
                    )
            return [out[k] for k in sorted(out)]
        case PeriodicBolus():
            basal = program.basal_mcg_per_day / HOURS_PER_DAY
            return [
                ("basal_mcg_per_day", basal, "day"),
                (
                    "bolus_mcg / bolus_duration_h",
                    basal + program.bolus_mcg / program.bolus_duration_h,
                    "h",
                ),
            ]


def _patient_bolus(settings: PatientBolusSettings, concentration_mcg_per_ml: float) -> Bolus:
    volume = settings.dose_mcg / concentration_mcg_per_ml
    return Bolus(BolusKind.PATIENT, volume, volume / settings.duration_h)
