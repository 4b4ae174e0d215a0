"""The implanted pump system: presets, catheter dead space, programs, alarms, battery,
refills, faults, programming sessions and the event log. Pure domain code."""

from itb.domain.pump.alarms import CRITICAL, AlarmKind, AlarmRecord, tone_of
from itb.domain.pump.catheter import CatheterSpec, DeadSpace, Slug, parse_catheters
from itb.domain.pump.eventlog import EventLog, LogEntry
from itb.domain.pump.faults import CATHETER_FAULT_KINDS, Fault, FaultKind
from itb.domain.pump.prescription import Bolus, BolusKind, PatientBolusSettings, Prescription
from itb.domain.pump.presets import BatterySpec, PumpKind, PumpPreset, parse_presets
from itb.domain.pump.programs import (
    WEEKDAYS,
    Continuous,
    Flex,
    FlexStep,
    PeriodicBolus,
    Program,
    Stopped,
    describe_program,
)
from itb.domain.pump.pump import (
    Ledger,
    PatientBolusOutcome,
    Pump,
    PumpStatus,
    ReservoirPiece,
    StopReason,
    Withdrawal,
)
from itb.domain.pump.refill import (
    Discrepancy,
    DiscrepancyTolerance,
    RefillReport,
    Verdict,
    Watch,
    calculated_volume_at,
    judge_discrepancy,
    parse_discrepancy_tolerance,
    perform_refill,
    time_calculated_volume_reaches,
)
from itb.domain.pump.session import ChangeRow, ProgrammingSession, SessionState

__all__ = [
    "CATHETER_FAULT_KINDS",
    "CRITICAL",
    "WEEKDAYS",
    "AlarmKind",
    "AlarmRecord",
    "BatterySpec",
    "Bolus",
    "BolusKind",
    "CatheterSpec",
    "ChangeRow",
    "Continuous",
    "DeadSpace",
    "Discrepancy",
    "DiscrepancyTolerance",
    "EventLog",
    "Fault",
    "FaultKind",
    "Flex",
    "FlexStep",
    "Ledger",
    "LogEntry",
    "PatientBolusOutcome",
    "PatientBolusSettings",
    "PeriodicBolus",
    "Prescription",
    "Program",
    "ProgrammingSession",
    "Pump",
    "PumpKind",
    "PumpPreset",
    "PumpStatus",
    "RefillReport",
    "ReservoirPiece",
    "SessionState",
    "Slug",
    "StopReason",
    "Stopped",
    "Verdict",
    "Watch",
    "Withdrawal",
    "calculated_volume_at",
    "describe_program",
    "judge_discrepancy",
    "parse_catheters",
    "parse_discrepancy_tolerance",
    "parse_presets",
    "perform_refill",
    "time_calculated_volume_reaches",
    "tone_of",
]
