"""The clinic registry's use cases and their ports (storage comes from the adapters)."""

from itb.services.clinic.inputs import (
    ChangeRequest,
    DrugFill,
    NewImplant,
    NewPatient,
    ProgramRequest,
    Reading,
    RefillRequest,
)
from itb.services.clinic.service import (
    ClinicInfo,
    ClinicService,
    PatientChart,
    PumpNow,
    PumpOut,
    RefillOutcome,
    SymptomOutcome,
)

__all__ = [
    "ChangeRequest",
    "ClinicInfo",
    "ClinicService",
    "DrugFill",
    "NewImplant",
    "NewPatient",
    "PatientChart",
    "ProgramRequest",
    "PumpNow",
    "PumpOut",
    "Reading",
    "RefillOutcome",
    "RefillRequest",
    "SymptomOutcome",
]
