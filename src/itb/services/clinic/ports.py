"""The registry's ports: repositories, the unit of work, the clock, password hashing.

The use cases (:mod:`itb.services.clinic.service`) reach storage only through
these protocols. The SQLAlchemy adapter (:mod:`itb.adapters.registry`)
implements them on SQLite and PostgreSQL; the unit tests use in-memory fakes.

A unit of work is a context manager: everything done inside it is one
transaction, rolled back on leaving unless :meth:`UnitOfWork.commit` was
called, so a use case writes all of its records (and its audit entry) or none.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar

from itb.domain.clinic.audit import AuditEntry, Checkpoint
from itb.domain.clinic.forecast import RefillObservation
from itb.domain.clinic.records import (
    AssessmentRecord,
    CalendarFeed,
    ClinicInfo,
    CommandEntry,
    ComplicationRecord,
    ContactRecord,
    ImplantRecord,
    InterrogationRecord,
    PatientRecord,
    ProgrammingChange,
    PumpSnapshot,
    RefillVisitRecord,
    SessionRecord,
    SurgeryRecord,
    SymptomRecord,
    UserAccount,
    VisitRecord,
)

__all__ = [
    "AuditLog",
    "ClinicSettings",
    "Clock",
    "CommandLog",
    "IdSource",
    "PasswordHasher",
    "RadarFacts",
    "RadarQuery",
    "Records",
    "Sessions",
    "Snapshots",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "VersionedRecords",
]

R = TypeVar("R")


class Records(Protocol[R]):
    """A collection of one kind of record, keyed by ``id`` (users: by ``username``)."""

    def add(self, record: R) -> None:
        """Store a new record.

        Raises:
            InvalidValue: a record with the same key (or unique field) exists.
        """
        ...

    def get(self, key: str) -> R | None:
        """The record with this key, or None."""
        ...

    def find(self, **equals: object) -> list[R]:
        """The records whose fields equal the given values, in key order."""
        ...

    def all(self) -> list[R]:
        """Every record, in key order."""
        ...

    def latest(self, n: int, *, by: str, **equals: object) -> list[R]:
        """The ``n`` records with the latest ``by`` (a time field) among those matching,
        oldest first."""
        ...

    def count(self, **equals: object) -> int:
        """How many records match."""
        ...


class VersionedRecords(Records[R], Protocol[R]):
    """Records people edit: every update names the version it was made from."""

    def update(self, record: R, *, expected_version: int) -> None:
        """Replace the stored record (``record.version`` is the new version).

        Raises:
            StaleVersion: the stored version is not ``expected_version`` (someone else
                changed it first); nothing is written.
        """
        ...


class CommandLog(Protocol):
    """Every implant's pump commands, append-only."""

    def append(self, entry: CommandEntry) -> None:
        """Append one command.

        Raises:
            StaleVersion: another command already holds ``entry.seq`` for this implant.
        """
        ...

    def for_implant(self, implant_id: str, *, after_seq: int = 0) -> list[CommandEntry]:
        """The implant's commands after ``after_seq``, in order."""
        ...

    def count(self) -> int:
        """How many commands the registry holds."""
        ...


class Snapshots(Protocol):
    """The cached pump model of each implant (rebuilt from the command log when missing)."""

    def get(self, implant_id: str) -> PumpSnapshot | None:
        """The snapshot, or None."""
        ...

    def put(self, snapshot: PumpSnapshot) -> None:
        """Store or replace the snapshot."""
        ...

    def all(self, *, with_state: bool = True) -> list[PumpSnapshot]:
        """Every snapshot (``with_state=False``: the dates only, ``state`` empty — what
        the radar reads)."""
        ...


class AuditLog(Protocol):
    """The audit trail, append-only and chained by hash."""

    def head(self) -> Checkpoint:
        """The last entry's position and hash, locked until the unit of work ends (so that
        two writers never chain onto the same entry)."""
        ...

    def append(self, entry: AuditEntry) -> None:
        """Append an entry (its ``seq`` is the head's plus one) and move the head."""
        ...

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in stored order."""
        ...

    def for_entity(self, entity: str, entity_id: str) -> list[AuditEntry]:
        """The entries about one record, in order."""
        ...

    def recorded_head(self) -> Checkpoint:
        """The head as the database records it (without locking)."""
        ...


class ClinicSettings(Protocol):
    """The clinic's own record (one per registry)."""

    def get(self) -> ClinicInfo | None:
        """The clinic's record (None: the registry is not initialised)."""
        ...

    def put(self, info: ClinicInfo) -> None:
        """Store or replace it."""
        ...


class Sessions(Protocol):
    """Signed-in sessions, by token hash."""

    def add(self, session: SessionRecord) -> None:
        """Store a new session."""
        ...

    def get(self, token_hash: str) -> SessionRecord | None:
        """The session, or None."""
        ...

    def touch(self, token_hash: str, at: datetime) -> None:
        """Record a request now."""
        ...

    def delete(self, token_hash: str) -> None:
        """End a session."""
        ...

    def delete_for_user(self, username: str) -> int:
        """End every session of a user; how many."""
        ...


class CalendarFeeds(Protocol):
    """Calendar subscription addresses, by token hash."""

    def add(self, feed: CalendarFeed) -> None:
        """Store a new feed."""
        ...

    def get(self, token_hash: str) -> CalendarFeed | None:
        """The feed, or None."""
        ...

    def delete_for_patient(self, patient_id: str) -> int:
        """Revoke every feed of a patient; how many."""
        ...


class IdSource(Protocol):
    """Human-readable identifiers: ``P0001``, ``I0001`` ..."""

    def next(self, prefix: str) -> str:
        """The next identifier with ``prefix``."""
        ...

    def reserve(self, identifier: str) -> None:
        """An identifier of this form taken by an import: :meth:`next` gives later ones."""
        ...


@dataclass(frozen=True, slots=True)
class RadarFacts:
    """What the radar needs of one pump in use, read in one query: the patient's name and
    withdrawal-risk factors, the pump, its cached forecast (None: no snapshot yet, the
    model must be rebuilt), the next booked visit from ``now``, the refills whose
    discrepancy is not yet worked up, and the implant's refills as the reservoir forecast
    learns from them (oldest first)."""

    patient_id: str
    given_name: str
    family_name: str
    sci_at_or_above_t6: bool
    communication_difficulty: bool
    previous_withdrawal: bool
    implant_id: str
    pump_preset: str
    snapshot: PumpSnapshot | None
    next_visit_at: datetime | None
    unresolved_discrepancies: int
    refills: tuple[RefillObservation, ...]


class RadarQuery(Protocol):
    """The refill radar's one read over the registry."""

    def facts(self, now: datetime, patient_ids: Collection[str] | None = None) -> list[RadarFacts]:
        """Every implant in use with its radar facts (snapshots without their state); only
        those of ``patient_ids`` when given."""
        ...

    def generation(self) -> int | None:
        """A number that moves whenever anything :meth:`facts` reads is written, by any
        writer; None when the store cannot tell (the facts are then read every time)."""
        ...

    def changed_since(self, generation: int) -> frozenset[str] | None:
        """The patients whose radar facts were written after ``generation`` (None: the
        store no longer knows, or everything changed: read all the facts again)."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository."""

    patients: VersionedRecords[PatientRecord]
    contacts: VersionedRecords[ContactRecord]
    assessments: Records[AssessmentRecord]
    implants: VersionedRecords[ImplantRecord]
    surgeries: Records[SurgeryRecord]
    complications: Records[ComplicationRecord]
    """Append-only: an entry's ``follows`` is unique (adding a second entry after the same
    one raises :class:`~itb.domain.errors.StaleVersion`)."""
    commands: CommandLog
    snapshots: Snapshots
    interrogations: Records[InterrogationRecord]
    refills: VersionedRecords[RefillVisitRecord]
    changes: VersionedRecords[ProgrammingChange]
    visits: VersionedRecords[VisitRecord]
    symptoms: Records[SymptomRecord]
    users: VersionedRecords[UserAccount]
    clinic: ClinicSettings
    sessions: Sessions
    calendar_feeds: CalendarFeeds
    audit: AuditLog
    ids: IdSource
    radar: RadarQuery

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make everything done in this unit of work permanent."""
        ...

    def rollback(self) -> None:
        """Discard everything done in this unit of work."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
"""Makes a fresh unit of work (one per use case)."""


class Clock(Protocol):
    """The registry's clock (aware UTC); tests and the demo clinic pass their own."""

    def now(self) -> datetime:
        """The present instant, aware UTC."""
        ...


class PasswordHasher(Protocol):
    """Password hashing (argon2 in production)."""

    def hash(self, password: str) -> str:
        """A hash of ``password`` to store."""
        ...

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches the stored hash."""
        ...
