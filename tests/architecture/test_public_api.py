"""The pump package's public surface is pinned: a change to it is a visible diff."""

import itb.domain.pump as pump

PUMP_API = {
    "CRITICAL", "WEEKDAYS", "AlarmKind", "AlarmRecord", "BatterySpec", "Bolus", "BolusKind",
    "CatheterSpec", "ChangeRow", "Continuous", "DeadSpace", "Discrepancy",
    "DiscrepancyTolerance", "EventLog", "Fault", "FaultKind", "Flex", "FlexStep", "Ledger",
    "LogEntry", "PatientBolusOutcome", "PatientBolusSettings", "PeriodicBolus", "Prescription",
    "Program", "ProgrammingSession", "Pump", "PumpKind", "PumpPreset", "PumpStatus",
    "RefillReport", "SessionState", "Slug", "StopReason", "Stopped", "Verdict", "Withdrawal",
    "calculated_volume_at", "describe_program", "judge_discrepancy", "parse_catheters",
    "parse_discrepancy_tolerance", "parse_presets", "perform_refill",
    "time_calculated_volume_reaches", "tone_of",
}  # fmt: skip


def test_pump_public_api_is_pinned() -> None:
    assert set(pump.__all__) == PUMP_API


def test_every_public_name_exists() -> None:
    missing = [name for name in pump.__all__ if not hasattr(pump, name)]
    assert missing == []
