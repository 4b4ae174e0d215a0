"""A patient's whole record as one value, for exchange with other systems.

:class:`PatientFile` is what an export carries and an import stores: every record the
registry holds on one patient, the implants' command logs included (the pump model is
rebuilt from them; cached snapshots, sessions and the audit trail are not part of a
patient's record). The FHIR adapter maps it to and from a Bundle; the use cases in
:class:`~itb.services.clinic.service.ClinicService` read and store it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from itb.domain.clinic.records import (
    AssessmentRecord,
    CommandEntry,
    ContactRecord,
    ImplantRecord,
    InterrogationRecord,
    PatientRecord,
    ProgrammingChange,
    RefillVisitRecord,
    SurgeryRecord,
    SymptomRecord,
    VisitRecord,
)
from itb.services.clinic.inputs import NewImplant, NewPatient

__all__ = ["ClinicRow", "ImportReport", "PatientFile", "RowProblem", "by_id"]


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


H = TypeVar("H", bound=_HasId)


def by_id(records: Iterable[H]) -> tuple[H, ...]:
    """Records in the order of their identifiers' numbers (``P9999`` before ``P10000``)."""
    return tuple(sorted(records, key=lambda r: (len(r.id), r.id)))


@dataclass(frozen=True, slots=True)
class PatientFile:
    """Everything the registry holds on one patient, each list in identifier order (the
    command log in its own order)."""

    patient: PatientRecord
    contacts: tuple[ContactRecord, ...] = ()
    assessments: tuple[AssessmentRecord, ...] = ()
    implants: tuple[ImplantRecord, ...] = ()
    surgeries: tuple[SurgeryRecord, ...] = ()
    commands: tuple[CommandEntry, ...] = ()
    interrogations: tuple[InterrogationRecord, ...] = ()
    refills: tuple[RefillVisitRecord, ...] = ()
    changes: tuple[ProgrammingChange, ...] = ()
    visits: tuple[VisitRecord, ...] = ()
    symptoms: tuple[SymptomRecord, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many records of each kind."""
        return {
            "patients": 1,
            "contacts": len(self.contacts),
            "assessments": len(self.assessments),
            "implants": len(self.implants),
            "surgeries": len(self.surgeries),
            "commands": len(self.commands),
            "interrogations": len(self.interrogations),
            "refills": len(self.refills),
            "changes": len(self.changes),
            "visits": len(self.visits),
            "symptoms": len(self.symptoms),
        }


@dataclass(frozen=True, slots=True)
class ClinicRow:
    """One row of an existing clinic's patient and pump list: the patient, and the pump
    in use with its fill and program (None: no pump yet). ``line`` is the row's line in
    the file (the header is line 1)."""

    line: int
    patient: NewPatient
    implant: NewImplant | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row refused: its line and the one-line reason (naming the column)."""

    line: int
    message: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import of rows did: the rows read, the patients registered (line, patient
    id) and the rows refused. Nothing is registered when a row was refused, unless only
    the valid rows were asked for."""

    rows: int
    imported: tuple[tuple[int, str], ...]
    refused: tuple[RowProblem, ...]
