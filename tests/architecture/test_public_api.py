"""The pump package's public surface is pinned: a change to it is a visible diff."""

import itb.domain.pump as pump

PUMP_API = {
    "CRITICAL", "WEEKDAYS", "AlarmKind", "AlarmRecord", "BatterySpec", "Bolus", "BolusKind",
    "CATHETER_FAULT_KINDS", "CatheterSpec", "ChangeRow", "Continuous", "DeadSpace", "Discrepancy",
    "DiscrepancyTolerance", "EventLog", "Fault", "FaultKind", "Flex", "FlexStep", "Ledger",
    "LogEntry", "PatientBolusOutcome", "PatientBolusSettings", "PeriodicBolus", "Prescription",
    "Program", "ProgrammingSession", "Pump", "PumpKind", "PumpPreset", "PumpStatus",
    "RefillReport", "ReservoirPiece", "SessionState", "Slug", "StopReason", "Stopped", "Verdict", "Watch", "Withdrawal",
    "calculated_volume_at", "describe_program", "judge_discrepancy", "parse_catheters",
    "parse_discrepancy_tolerance", "parse_presets", "perform_refill",
    "time_calculated_volume_reaches", "tone_of",
}  # fmt: skip


def test_pump_public_api_is_pinned() -> None:
    assert set(pump.__all__) == PUMP_API


def test_every_public_name_exists() -> None:
    missing = [name for name in pump.__all__ if not hasattr(pump, name)]
    assert missing == []


# ------------------------------------------------------------------ services

SERVICES_API = {
    "itb.services.catalog": {"Catalog", "CatheterFamily", "build_catalog"},
    "itb.services.pump_plan": {
        "PlannedCommand", "PumpPlan", "build_pump", "plan", "program_of", "replay",
        "run_length_h", "to_prescription",
    },
    "itb.services.pump_run": {
        "AlarmRow", "BatteryReport", "DrugBalance", "EventRow", "GapRow", "PatientBolusRow",
        "PumpRunResult", "RefillRow", "result_to_dict", "run_pump",
    },
    "itb.services.pump_at": {"PumpAt", "parse_when", "pump_at"},
    "itb.services.safety_review": {
        "AuditResult", "AuditRow", "ProgramCheck", "ProgramSide", "audit_spec",
        "flex_every_day", "parse_flex_step", "program_check",
    },
    "itb.services.refill_plan": {
        "check_refill", "discrepancy_to_dict", "plan_refill_for_spec", "refill_plan_to_dict",
    },
    "itb.services.wall_clock": {"WallClock"},
    "itb.domain.pump.commands": {
        "NOT_RECORDED", "Applied", "Authorship", "BeginMri", "CommandRecord", "EndMri",
        "FillAtImplant", "InjectAccessPort", "Interrogate", "PrimingBolus", "PumpCommand",
        "Refill", "RepairFault", "Reprogram", "RequestPatientBolus", "SetEnvironment",
        "SingleBolus", "StartFault", "apply", "command_name",
    },
    "itb.domain.clinical.care": {
        "DAY_EDGE_H", "ProtocolDefaults", "TreatmentGoal", "assess", "choose_concentration",
        "earliest_dry_t_h", "parse_protocol_defaults", "refill_day", "refill_interval_days",
    },
}  # fmt: skip


def test_services_public_api_is_pinned() -> None:
    import importlib

    for name, expected in SERVICES_API.items():
        module = importlib.import_module(name)
        assert set(module.__all__) == expected, name
        assert all(hasattr(module, n) for n in module.__all__), name
