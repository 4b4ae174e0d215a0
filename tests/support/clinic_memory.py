"""In-memory fakes of the registry's ports (for unit tests of the use cases).

A :class:`MemoryStore` holds committed state; each :class:`MemoryUnitOfWork`
works on a deep copy and writes it back only on commit, so a use case that
raises leaves the store exactly as it was — the property the real unit of
work has. Optimistic locking and unique keys behave as in the adapter.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from itb.domain.clinic.audit import GENESIS_HASH, AuditEntry, Checkpoint
from itb.domain.clinic.forecast import RefillObservation
from itb.domain.clinic.records import (
    CalendarFeed,
    ClinicInfo,
    CommandEntry,
    ImplantStatus,
    PumpSnapshot,
    SessionRecord,
    VisitStatus,
)
from itb.domain.errors import InvalidValue, StaleVersion
from itb.services.clinic.ports import RadarFacts

R = TypeVar("R")


def _key(record: Any) -> str:
    return str(getattr(record, "id", None) or record.username)


def _order(key: str) -> tuple[int, str]:
    return (len(key), key)


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


class MemoryRecords(Generic[R]):
    def __init__(self, rows: dict[str, R], what: str, unique: tuple[str, ...] = ()) -> None:
        self.rows = rows
        self.what = what
        self.unique = unique

    def add(self, record: R) -> None:
        key = _key(record)
        if key in self.rows:
            raise InvalidValue(self.what, key, f"a {self.what} not yet recorded")
        for name in self.unique:
            if any(getattr(r, name) == getattr(record, name) for r in self.rows.values()):
                raise InvalidValue(self.what, key, f"a {self.what} not yet recorded")
        self.rows[key] = record

    def get(self, key: str) -> R | None:
        return self.rows.get(key)

    def find(self, **equals: object) -> list[R]:
        out = [
            r
            for r in self.rows.values()
            if all(_value(getattr(r, k)) == _value(v) for k, v in equals.items())
        ]
        return sorted(out, key=lambda r: _order(_key(r)))

    def all(self) -> list[R]:
        return self.find()

    def latest(self, n: int, *, by: str, **equals: object) -> list[R]:
        rows = sorted(self.find(**equals), key=lambda r: (getattr(r, by), _order(_key(r))))
        return rows[-n:] if n > 0 else []

    def count(self, **equals: object) -> int:
        return len(self.find(**equals))

    def update(self, record: R, *, expected_version: int) -> None:
        key = _key(record)
        old = self.rows.get(key)
        if old is None or old.version != expected_version:
            raise StaleVersion(f"{self.what} {key} was changed by someone else")
        self.rows[key] = record


class MemoryCommandLog:
    def __init__(self, rows: dict[tuple[str, int], CommandEntry]) -> None:
        self.rows = rows

    def append(self, entry: CommandEntry) -> None:
        if (entry.implant_id, entry.seq) in self.rows:
            raise StaleVersion(f"implant {entry.implant_id} already has command {entry.seq}")
        self.rows[(entry.implant_id, entry.seq)] = entry

    def for_implant(self, implant_id: str, *, after_seq: int = 0) -> list[CommandEntry]:
        return sorted(
            (e for (i, s), e in self.rows.items() if i == implant_id and s > after_seq),
            key=lambda e: e.seq,
        )

    def count(self) -> int:
        return len(self.rows)


class MemorySnapshots:
    def __init__(self, rows: dict[str, PumpSnapshot]) -> None:
        self.rows = rows

    def get(self, implant_id: str) -> PumpSnapshot | None:
        return self.rows.get(implant_id)

    def put(self, snapshot: PumpSnapshot) -> None:
        self.rows[snapshot.implant_id] = snapshot

    def all(self, *, with_state: bool = True) -> list[PumpSnapshot]:
        rows = list(self.rows.values())
        return rows if with_state else [replace(r, state={}) for r in rows]


class MemoryRadar:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def facts(self, now: datetime, patient_ids: Collection[str] | None = None) -> list[RadarFacts]:
        out = []
        for implant in self.state["implants"].values():
            if implant.status is not ImplantStatus.ACTIVE:
                continue
            if patient_ids is not None and implant.patient_id not in patient_ids:
                continue
            p = self.state["patients"][implant.patient_id]
            snap = self.state["snapshots"].get(implant.id)
            visits = [
                v.at
                for v in self.state["visits"].values()
                if v.patient_id == p.id and v.status is VisitStatus.BOOKED and v.at >= now
            ]
            out.append(
                RadarFacts(
                    p.id, p.given_name, p.family_name, p.sci_at_or_above_t6,
                    p.communication_difficulty, p.previous_withdrawal, implant.id,
                    implant.pump_preset, None if snap is None else replace(snap, state={}),
                    min(visits, default=None),
                    sum(1 for r in self.state["refills"].values()
                        if r.implant_id == implant.id and not r.resolved),
                    RefillObservation.of(
                        r for r in self.state["refills"].values() if r.implant_id == implant.id
                    ),
                )
            )  # fmt: skip
        return out

    def generation(self) -> int | None:
        return None  # the fake cannot tell: the radar reads its facts every time

    def changed_since(self, generation: int) -> frozenset[str] | None:
        return None


class MemoryClinic:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def get(self) -> ClinicInfo | None:
        info: ClinicInfo | None = self.state.get("clinic")
        return info

    def put(self, info: ClinicInfo) -> None:
        self.state["clinic"] = info


class MemorySessions:
    def __init__(self, rows: dict[str, SessionRecord]) -> None:
        self.rows = rows

    def add(self, session: SessionRecord) -> None:
        self.rows[session.token_hash] = session

    def get(self, token_hash: str) -> SessionRecord | None:
        return self.rows.get(token_hash)

    def touch(self, token_hash: str, at: datetime) -> None:
        if token_hash in self.rows:
            self.rows[token_hash] = replace(self.rows[token_hash], last_seen_at=at)

    def delete(self, token_hash: str) -> None:
        self.rows.pop(token_hash, None)

    def delete_for_user(self, username: str) -> int:
        gone = [k for k, v in self.rows.items() if v.username == username]
        for k in gone:
            del self.rows[k]
        return len(gone)


class MemoryCalendarFeeds:
    def __init__(self, rows: dict[str, CalendarFeed]) -> None:
        self.rows = rows

    def add(self, feed: CalendarFeed) -> None:
        self.rows[feed.token_hash] = feed

    def get(self, token_hash: str) -> CalendarFeed | None:
        return self.rows.get(token_hash)

    def delete_for_patient(self, patient_id: str) -> int:
        gone = [k for k, v in self.rows.items() if v.patient_id == patient_id]
        for k in gone:
            del self.rows[k]
        return len(gone)


class MemoryAudit:
    def __init__(self, entries: list[AuditEntry]) -> None:
        self.rows = entries

    def head(self) -> Checkpoint:
        return self.recorded_head()

    def recorded_head(self) -> Checkpoint:
        if not self.rows:
            return Checkpoint(0, GENESIS_HASH)
        return Checkpoint(self.rows[-1].seq, self.rows[-1].hash)

    def append(self, entry: AuditEntry) -> None:
        self.rows.append(entry)

    def entries(self) -> Iterator[AuditEntry]:
        return iter(list(self.rows))

    def for_entity(self, entity: str, entity_id: str) -> list[AuditEntry]:
        return [e for e in self.rows if e.entity == entity and e.entity_id == entity_id]


class MemoryIds:
    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters

    def next(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{self.counters[prefix]:04d}"

    def reserve(self, identifier: str) -> None:
        prefix = identifier.rstrip("0123456789")
        number = int(identifier[len(prefix) :])
        self.counters[prefix] = max(self.counters.get(prefix, 0), number)


@dataclass
class MemoryStore:
    """Committed state of an in-memory registry."""

    state: dict[str, Any] = field(
        default_factory=lambda: {
            name: {}
            for name in (
                "patients", "contacts", "assessments", "implants", "surgeries", "commands",
                "snapshots", "interrogations", "refills", "changes", "visits", "symptoms",
                "users", "ids", "sessions", "calendar_feeds",
            )
        }
        | {"audit": [], "clinic": None}
    )  # fmt: skip
    commits: int = 0

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)


class MemoryUnitOfWork:
    """A unit of work on a copy of the store's state (written back on commit)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._work: dict[str, Any] | None = None

    def __enter__(self) -> Self:
        w = copy.deepcopy(self.store.state)
        self._work = w
        self.patients = MemoryRecords(w["patients"], "patient", unique=("mrn",))
        self.contacts = MemoryRecords(w["contacts"], "contact")
        self.assessments = MemoryRecords(w["assessments"], "assessment")
        self.implants = MemoryRecords(w["implants"], "implant")
        self.surgeries = MemoryRecords(w["surgeries"], "surgery")
        self.interrogations = MemoryRecords(w["interrogations"], "interrogation")
        self.refills = MemoryRecords(w["refills"], "refill visit")
        self.changes = MemoryRecords(w["changes"], "programming change")
        self.visits = MemoryRecords(w["visits"], "visit")
        self.symptoms = MemoryRecords(w["symptoms"], "symptom report")
        self.users = MemoryRecords(w["users"], "user")
        self.commands = MemoryCommandLog(w["commands"])
        self.snapshots = MemorySnapshots(w["snapshots"])
        self.radar = MemoryRadar(w)
        self.clinic = MemoryClinic(w)
        self.sessions = MemorySessions(w["sessions"])
        self.calendar_feeds = MemoryCalendarFeeds(w["calendar_feeds"])
        self.audit = MemoryAudit(w["audit"])
        self.ids = MemoryIds(w["ids"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._work = None

    def commit(self) -> None:
        assert self._work is not None, "commit outside the unit of work"
        self.store.state = copy.deepcopy(self._work)
        self.store.commits += 1

    def rollback(self) -> None:
        self._work = None


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> datetime:
        self.t = self.t + timedelta(**delta)
        return self.t


class PlainHasher:
    """A password 'hash' that is the password reversed (unit tests only: no cost)."""

    def hash(self, password: str) -> str:
        return "plain$" + password[::-1]

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "plain$" + password[::-1]
