"""One vocabulary of pump commands, and one way to apply them.

Everything that acts on an implanted pump — a pump-spec run, the pump as it
stood at a date, the programming-safety audit, the single-patient simulation
engine and the clinic registry — says what it does as one of the frozen
commands below and hands it to :func:`apply`. A command is plain data: it can
be stored, compared, hashed into an audit chain and replayed. Who entered it,
in what role, why, and who verified it travel beside it as an
:class:`Authorship`; a :class:`CommandRecord` keeps the three together with
the time, which is what a pump's command log is made of.

:func:`apply` acts at the pump's present time (advance the pump first). A
command the pump refuses raises and changes nothing: every check that can
fail runs before the first change (the pump's own checks, the drug library
through the pump's :class:`~itb.domain.clinical.dose_guard.DoseGuard`, the
session's staging).
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.domain.delivery import DeliverySegment
from itb.domain.errors import InvalidValue
from itb.domain.pump.faults import Fault, FaultKind
from itb.domain.pump.prescription import Bolus, Prescription
from itb.domain.pump.pump import PatientBolusOutcome, Pump, PumpStatus
from itb.domain.pump.refill import DiscrepancyTolerance, RefillReport, perform_refill
from itb.domain.pump.session import ChangeRow, ProgrammingSession
from itb.domain.units import require_finite, require_non_negative, require_positive

__all__ = [
    "NOT_RECORDED",
    "Applied",
    "Authorship",
    "BeginMri",
    "CommandRecord",
    "EndMri",
    "FillAtImplant",
    "InjectAccessPort",
    "Interrogate",
    "PrimingBolus",
    "PumpCommand",
    "Refill",
    "RepairFault",
    "Reprogram",
    "RequestPatientBolus",
    "SetEnvironment",
    "SingleBolus",
    "StartFault",
    "apply",
    "command_name",
]


# ------------------------------------------------------------------ who and why


@dataclass(frozen=True, slots=True)
class Authorship:
    """Who entered a command, in what role and why; who verified it; any override.

    Attributes:
        entered_by: the person (or program) who entered it; ``""`` when not recorded.
        role: their role (``physician``, ``nurse`` ...); ``""`` when not recorded.
        reason: why, in their words.
        verified_by: the second person who verified a programming change, if any.
        override_reason: the recorded reason for passing a drug-library soft limit.
    """

    entered_by: str = ""
    role: str = ""
    reason: str = ""
    verified_by: str | None = None
    override_reason: str | None = None

    @property
    def who(self) -> str:
        """The person for a log line: their name, or ``not recorded``."""
        return self.entered_by or "not recorded"


NOT_RECORDED = Authorship()
"""Authorship of a command whose author is not known (a simulation's own actions)."""


# ------------------------------------------------------------------ bolus orders


@dataclass(frozen=True, slots=True)
class SingleBolus:
    """A clinician's single bolus of ``dose_mcg`` over ``duration_h`` from the reservoir.

    The volume follows from the drug the pump holds when the bolus is given.
    """

    dose_mcg: float
    duration_h: float

    def __post_init__(self) -> None:
        require_positive("dose_mcg", self.dose_mcg)
        require_positive("duration_h", self.duration_h)

    def bolus(self, pump: Pump) -> Bolus:
        """The pump bolus at the concentration the pump holds."""
        conc = pump.labelled_concentration_mcg_per_ml
        if conc <= 0.0:
            raise InvalidValue("dose_mcg", self.dose_mcg, "a bolus from a filled reservoir")
        return Bolus.single(self.dose_mcg, self.duration_h, conc)


@dataclass(frozen=True, slots=True)
class PrimingBolus:
    """A priming bolus: ``volume_ml`` (default: the whole dead space) over ``duration_h``."""

    duration_h: float
    volume_ml: float | None = None

    def __post_init__(self) -> None:
        require_positive("duration_h", self.duration_h)
        if self.volume_ml is not None:
            require_positive("volume_ml", self.volume_ml)

    def bolus(self, pump: Pump) -> Bolus:
        """The pump bolus (the dead space of this pump when no volume is given)."""
        volume = pump.dead_space_ml if self.volume_ml is None else self.volume_ml
        return Bolus.priming(volume, self.duration_h)


BolusOrder = SingleBolus | PrimingBolus


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class FillAtImplant:
    """The first fill of a new, empty pump (nothing to withdraw, nothing to judge).

    ``true_concentration_mcg_per_ml`` models a compounding error (what is really
    in the syringe); the pump and the clinic believe the label.
    """

    volume_ml: float
    concentration_mcg_per_ml: float
    true_concentration_mcg_per_ml: float | None = None


@dataclass(frozen=True, slots=True)
class Refill:
    """The whole refill: interrogate, withdraw the residual, judge it, fill, reprogram.

    Attributes:
        volume_ml: volume filled, mL.
        concentration_mcg_per_ml: labelled concentration filled, mcg/mL.
        prescription: the new prescription (required when the concentration changes).
        bridge_bolus: push the old drug out of the dead space at the present dose rate.
        low_reservoir_alarm_ml: a new low-reservoir alarm volume, mL.
        pump_clock_offset_h: set the pump clock (hours since Monday 00:00, minus run time).
        true_concentration_mcg_per_ml: a modelled compounding error.
        into_pocket: a modelled pocket fill (the drug goes under the skin).
    """

    volume_ml: float
    concentration_mcg_per_ml: float
    prescription: Prescription | None = None
    bridge_bolus: bool = False
    low_reservoir_alarm_ml: float | None = None
    pump_clock_offset_h: float | None = None
    true_concentration_mcg_per_ml: float | None = None
    into_pocket: bool = False


@dataclass(frozen=True, slots=True)
class Reprogram:
    """A programming session: stage, review, (verify), update the pump at once.

    ``unfinished`` leaves the session after the update began: the pump stays
    stopped (a modelled use error, device reference [D24]).
    """

    prescription: Prescription | None = None
    low_reservoir_alarm_ml: float | None = None
    pump_clock_offset_h: float | None = None
    reservoir_volume_ml: float | None = None
    bolus: BolusOrder | None = None
    unfinished: bool = False

    def __post_init__(self) -> None:
        if (
            self.prescription is None
            and self.low_reservoir_alarm_ml is None
            and self.pump_clock_offset_h is None
            and self.reservoir_volume_ml is None
            and self.bolus is None
        ):
            raise InvalidValue(
                "prescription",
                None,
                "something to program: a prescription, a low-reservoir alarm, the clock, the "
                "reservoir volume or a bolus",
            )
        if self.pump_clock_offset_h is not None:
            require_finite("pump_clock_offset_h", self.pump_clock_offset_h)
        if self.reservoir_volume_ml is not None:
            require_non_negative("reservoir_volume_ml", self.reservoir_volume_ml)


@dataclass(frozen=True, slots=True)
class RequestPatientBolus:
    """The patient asks for a bolus (accepted only within the programmed limits)."""


@dataclass(frozen=True, slots=True)
class InjectAccessPort:
    """An injection through the catheter access port: flushes the catheter into the CSF."""

    volume_ml: float
    concentration_mcg_per_ml: float
    duration_h: float
    acknowledge_overdose_hazard: bool = False


@dataclass(frozen=True, slots=True)
class StartFault:
    """A device fault starts."""

    fault: Fault


@dataclass(frozen=True, slots=True)
class RepairFault:
    """A fault ends (revision, reset, repair)."""

    kind: FaultKind


@dataclass(frozen=True, slots=True)
class BeginMri:
    """MRI exposure begins (a programmable pump's motor stalls)."""


@dataclass(frozen=True, slots=True)
class EndMri:
    """MRI exposure ends."""


@dataclass(frozen=True, slots=True)
class SetEnvironment:
    """Body temperature and/or ambient pressure change (a gas-driven pump's flow)."""

    body_temperature_degc: float | None = None
    ambient_pressure_kpa: float | None = None

    def __post_init__(self) -> None:
        if self.body_temperature_degc is None and self.ambient_pressure_kpa is None:
            raise InvalidValue(
                "body_temperature_degc", None, "body_temperature_degc and/or ambient_pressure_kpa"
            )


@dataclass(frozen=True, slots=True)
class Interrogate:
    """A programmer reads the pump (acknowledges alarms, ends a post-MRI hold)."""


PumpCommand = (
    FillAtImplant
    | Refill
    | Reprogram
    | RequestPatientBolus
    | InjectAccessPort
    | StartFault
    | RepairFault
    | BeginMri
    | EndMri
    | SetEnvironment
    | Interrogate
)
"""Any command a pump understands."""

_NAMES: dict[type, str] = {
    FillAtImplant: "fill_at_implant",
    Refill: "refill",
    Reprogram: "reprogram",
    RequestPatientBolus: "patient_bolus",
    InjectAccessPort: "access_port_injection",
    StartFault: "fault",
    RepairFault: "repair",
    BeginMri: "mri_start",
    EndMri: "mri_end",
    SetEnvironment: "environment",
    Interrogate: "interrogate",
}


def command_name(command: PumpCommand) -> str:
    """The command's kind as a short name (``refill``, ``reprogram`` ...)."""
    return _NAMES[type(command)]


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One line of a pump's command log: when, what, and who."""

    t_h: float
    command: PumpCommand
    by: Authorship = NOT_RECORDED

    @property
    def kind(self) -> str:
        """The command's kind (:func:`command_name`)."""
        return command_name(self.command)


# ------------------------------------------------------------------------ apply


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a command produced.

    Attributes:
        t_h: when, hours.
        command: the command.
        refill: the refill report (a :class:`Refill`).
        changes: the programming changes committed (side-by-side rows).
        status: the pump as read (an :class:`Interrogate`).
        patient_bolus: the pump's answer to a patient's request.
        delivery: drug sent straight into the CSF by the command itself (an
            access-port injection); delivery by the pump's program comes from
            :meth:`Pump.advance_to`.
    """

    t_h: float
    command: PumpCommand
    refill: RefillReport | None = None
    changes: tuple[ChangeRow, ...] = ()
    status: PumpStatus | None = None
    patient_bolus: PatientBolusOutcome | None = None
    delivery: tuple[DeliverySegment, ...] = ()


def _reason(by: Authorship, default: str) -> str:
    return by.reason or default


def _session(pump: Pump, t_h: float, by: Authorship, default_reason: str) -> ProgrammingSession:
    return ProgrammingSession(
        pump, t_h, clinician=by.entered_by, reason=_reason(by, default_reason)
    )


def _reprogram(pump: Pump, t_h: float, cmd: Reprogram, by: Authorship) -> tuple[ChangeRow, ...]:
    why = _reason(by, "reprogram")
    bolus = None if cmd.bolus is None else cmd.bolus.bolus(pump)
    # Validate everything before the session opens (opening it interrogates the pump).
    if cmd.prescription is not None:
        pump.validate_prescription(cmd.prescription, override_reason=by.override_reason)
    if cmd.low_reservoir_alarm_ml is not None:
        pump.validate_low_reservoir_alarm(cmd.low_reservoir_alarm_ml)
    if cmd.reservoir_volume_ml is not None:
        pump.validate_reservoir_volume(cmd.reservoir_volume_ml)
    if bolus is not None:
        pump.validate_bolus(bolus, override_reason=by.override_reason)
    session = _session(pump, t_h, by, why)
    if cmd.prescription is not None:
        session.stage_prescription(cmd.prescription, why, override_reason=by.override_reason)
    if cmd.low_reservoir_alarm_ml is not None:
        session.stage_low_reservoir_alarm(cmd.low_reservoir_alarm_ml, why)
    if cmd.pump_clock_offset_h is not None:
        session.stage_clock(cmd.pump_clock_offset_h, why)
    if cmd.reservoir_volume_ml is not None:
        session.stage_reservoir_volume(cmd.reservoir_volume_ml, why)
    if bolus is not None:
        session.stage_bolus(bolus, why, override_reason=by.override_reason)
    if by.verified_by:
        session.verify(by.verified_by)
    if cmd.unfinished:
        session.begin_update(t_h)
        session.abandon(t_h)
        return ()
    return tuple(session.commit(t_h))


def _refill(
    pump: Pump, t_h: float, cmd: Refill, by: Authorship, tolerance: DiscrepancyTolerance
) -> tuple[RefillReport, tuple[ChangeRow, ...]]:
    why = _reason(by, "refill")
    if cmd.low_reservoir_alarm_ml is not None:
        pump.validate_low_reservoir_alarm(cmd.low_reservoir_alarm_ml)
    report = perform_refill(
        pump,
        t_h,
        fill_volume_ml=cmd.volume_ml,
        concentration_mcg_per_ml=cmd.concentration_mcg_per_ml,
        tolerance=tolerance,
        new_prescription=cmd.prescription,
        bridge_bolus=cmd.bridge_bolus,
        true_concentration_mcg_per_ml=cmd.true_concentration_mcg_per_ml,
        into_pocket=cmd.into_pocket,
        clinician=by.entered_by,
        verified_by=by.verified_by,
        override_reason=by.override_reason,
        reason=why,
    )
    if cmd.low_reservoir_alarm_ml is None and cmd.pump_clock_offset_h is None:
        return report, report.changes
    session = _session(pump, t_h, by, why)
    if cmd.low_reservoir_alarm_ml is not None:
        session.stage_low_reservoir_alarm(cmd.low_reservoir_alarm_ml, "set at refill")
    if cmd.pump_clock_offset_h is not None:
        session.stage_clock(cmd.pump_clock_offset_h, "clock set at refill")
    more = tuple(session.commit(t_h))
    # The forecast changes with the alarm volume and the clock: the programmer's new dates.
    report = report.reforecast(pump)
    return report, report.changes + more


def apply(
    pump: Pump,
    command: PumpCommand,
    t_h: float,
    *,
    tolerance: DiscrepancyTolerance,
    by: Authorship = NOT_RECORDED,
) -> Applied:
    """Apply ``command`` to ``pump`` at its present time ``t_h``.

    Args:
        pump: the pump, already advanced to ``t_h``.
        command: what to do.
        t_h: the present time, hours.
        tolerance: the refill-discrepancy tolerance (the syringe-reading floor; the
            rated band comes from the pump).
        by: who entered it, why, who verified it, any override reason.

    Returns:
        What the command produced.

    Raises:
        ITBError: the pump refuses the command; nothing has changed.
    """
    match command:
        case FillAtImplant():
            pump.fill(
                t_h,
                command.volume_ml,
                command.concentration_mcg_per_ml,
                true_concentration_mcg_per_ml=command.true_concentration_mcg_per_ml,
                reason=_reason(by, "initial fill at implant"),
            )
            return Applied(t_h, command)
        case Refill():
            report, changes = _refill(pump, t_h, command, by, tolerance)
            return Applied(t_h, command, refill=report, changes=changes)
        case Reprogram():
            return Applied(t_h, command, changes=_reprogram(pump, t_h, command, by))
        case RequestPatientBolus():
            return Applied(t_h, command, patient_bolus=pump.request_patient_bolus(t_h))
        case InjectAccessPort():
            segments = pump.inject_access_port(
                t_h,
                command.volume_ml,
                command.concentration_mcg_per_ml,
                acknowledge_overdose_hazard=command.acknowledge_overdose_hazard,
                duration_h=command.duration_h,
                reason=by.reason,
            )
            return Applied(t_h, command, delivery=tuple(segments))
        case StartFault():
            pump.apply_fault(t_h, command.fault)
            return Applied(t_h, command)
        case RepairFault():
            pump.repair(t_h, command.kind)
            return Applied(t_h, command)
        case BeginMri():
            pump.begin_mri(t_h)
            return Applied(t_h, command)
        case EndMri():
            pump.end_mri(t_h)
            return Applied(t_h, command)
        case SetEnvironment():
            pump.set_environment(
                t_h,
                body_temperature_degc=command.body_temperature_degc,
                ambient_pressure_kpa=command.ambient_pressure_kpa,
            )
            return Applied(t_h, command)
        case Interrogate():
            return Applied(t_h, command, status=pump.interrogate(t_h))
