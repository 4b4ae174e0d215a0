"""The registry on SQLAlchemy 2: engine, repositories and the unit of work.

SQLite (the default, a file) runs in WAL mode with a busy timeout, foreign keys
on and ``synchronous = FULL``; every unit of work begins with ``BEGIN
IMMEDIATE``, so writers queue instead of failing half-way. PostgreSQL runs at
READ COMMITTED; the audit chain's head row is locked (``SELECT ... FOR
UPDATE``) by the unit of work that appends to it, so the chain never forks.

Optimistic locking: ``update`` writes ``WHERE key = :key AND version =
:expected``; no row updated means someone else changed it first
(:class:`~itb.domain.errors.StaleVersion`). A database that cannot be reached
or stays locked raises :class:`~itb.domain.errors.StorageUnavailable`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from itb.adapters.registry import tables as t
from itb.adapters.registry.mapping import RecordMapper
from itb.domain.clinic.audit import GENESIS_HASH, AuditEntry, Checkpoint
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
from itb.domain.errors import InvalidValue, StaleVersion, StorageUnavailable
from itb.services.clinic.ports import (
    AuditLog,
    CalendarFeeds,
    ClinicSettings,
    CommandLog,
    IdSource,
    RadarFacts,
    RadarQuery,
    Records,
    Sessions,
    Snapshots,
    VersionedRecords,
)

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "SqlUnitOfWork",
    "make_engine",
    "normalise_url",
]

R = TypeVar("R")

SQLITE_BUSY_TIMEOUT_MS = 15_000
"""How long a SQLite writer waits for another to finish before giving up, ms."""

ID_PREFIXES = ("P", "K", "A", "I", "S", "Q", "R", "C", "V", "Y", "X")
"""Identifier prefixes: patient, contact, assessment, implant, surgery, interrogation,
refill, change, visit, symptom report, complication entry."""

ID_DIGITS = 4
"""Identifiers are zero-padded to at least this many digits (``P0001``)."""


def normalise_url(url: str) -> str:
    """A database URL with its driver named (``postgresql://`` -> psycopg 3).

    Raises:
        InvalidValue: not a SQLite or PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise InvalidValue(
            "database URL", url, "sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise InvalidValue("database URL", url, "sqlite:///PATH or postgresql://USER@HOST/DB")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """An engine for a registry URL (SQLite pragmas and ``BEGIN IMMEDIATE`` set up)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            json_serializer=t.json_dumps,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000.0},
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # readers share the WAL snapshot; writers queue for the one write lock
            readonly = conn.get_execution_options().get("itb_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(
        url,
        json_serializer=t.json_dumps,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": 10},
    )


def _storable(value: object) -> bool:
    """False for text no column can hold (a NUL character)."""
    return not (isinstance(value, str) and "\x00" in value)


def _unique_violation(exc: IntegrityError) -> bool:
    """A duplicate key (not another constraint: those are bugs and stay loud)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # psycopg: unique_violation
        return True
    return "UNIQUE constraint failed" in str(orig)  # sqlite3


def _storage_error(exc: DBAPIError) -> StorageUnavailable:
    first = str(exc.orig or exc).strip().splitlines()
    return StorageUnavailable(
        f"the registry's database is unavailable: {first[0] if first else type(exc).__name__}"
    )


# ------------------------------------------------------------------ repositories


class SqlRecords(Generic[R]):
    """A table of one kind of record."""

    def __init__(self, conn: Connection, mapper: RecordMapper[R], what: str) -> None:
        self.conn = conn
        self.m = mapper
        self.what = what
        self.key = mapper.key_column()

    def _order(self) -> list[Any]:
        return [sa.func.length(self.key), self.key]

    def add(self, record: R) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(self.m.insert, self.m.to_row(record))
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise
            key = getattr(record, self.key.name)
            raise InvalidValue(self.what, key, f"a {self.what} not yet recorded") from None

    def get(self, key: str) -> R | None:
        if not _storable(key):
            return None  # no stored key holds a NUL (PostgreSQL cannot even compare one)
        row = self.conn.execute(self.m.select_key, {"_key": key}).mappings().first()
        return None if row is None else self.m.from_row(row)

    def find(self, **equals: object) -> list[R]:
        if not all(_storable(v) for v in equals.values()):
            return []
        query = sa.select(self.m.table)
        for name, value in equals.items():
            query = query.where(self.m.table.c[name] == self.m.column_value(name, value))
        rows = self.conn.execute(query.order_by(*self._order())).mappings()
        return [self.m.from_row(r) for r in rows]

    def all(self) -> list[R]:
        return self.find()

    def _where(self, query: Any, equals: dict[str, object]) -> Any:
        for name, value in equals.items():
            query = query.where(self.m.table.c[name] == self.m.column_value(name, value))
        return query

    def latest(self, n: int, *, by: str, **equals: object) -> list[R]:
        if n <= 0 or not all(_storable(v) for v in equals.values()):
            return []
        column = self.m.table.c[by]
        query = self._where(sa.select(self.m.table), equals).order_by(
            column.desc(), self.key.desc()
        )
        rows = self.conn.execute(query.limit(n)).mappings()
        return [self.m.from_row(r) for r in rows][::-1]

    def count(self, **equals: object) -> int:
        if not all(_storable(v) for v in equals.values()):
            return 0
        query = self._where(sa.select(sa.func.count()).select_from(self.m.table), equals)
        return int(self.conn.execute(query).scalar_one())

    def update(self, record: R, *, expected_version: int) -> None:
        row = self.m.to_row(record)
        key = row[self.key.name]
        result = self.conn.execute(
            self.m.update_versioned, {**row, "_key": key, "_expected": expected_version}
        )
        if result.rowcount != 1:
            raise StaleVersion(
                f"{self.what} {key} was changed by someone else since version "
                f"{expected_version}; nothing was written: read it again and retry"
            )


class SqlComplications(SqlRecords[ComplicationRecord]):
    """Complication entries, append-only: a second entry following the same one is a
    change someone made first (the ``follows`` column is unique)."""

    def add(self, record: ComplicationRecord) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(self.m.insert, self.m.to_row(record))
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise
            if record.follows is None or self.get(record.id) is not None:
                raise InvalidValue(
                    self.what, record.id, f"a {self.what} not yet recorded"
                ) from None
            raise StaleVersion(
                f"complication {record.follows} was updated by someone else first; nothing "
                "was written: read the complication again and update its latest entry"
            ) from None


class SqlCommandLog:
    """The implants' command logs."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.m = _mappers().commands

    def append(self, entry: CommandEntry) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(self.m.insert, self.m.to_row(entry))
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise
            raise StaleVersion(
                f"implant {entry.implant_id} already has command {entry.seq}: someone else "
                "acted on this pump first; nothing was written"
            ) from None

    def for_implant(self, implant_id: str, *, after_seq: int = 0) -> list[CommandEntry]:
        rows = self.conn.execute(
            sa.select(t.commands)
            .where(t.commands.c.implant_id == implant_id, t.commands.c.seq > after_seq)
            .order_by(t.commands.c.seq)
        ).mappings()
        return [self.m.from_row(r) for r in rows]

    def count(self) -> int:
        return int(
            self.conn.execute(sa.select(sa.func.count()).select_from(t.commands)).scalar_one()
        )


class SqlSnapshots:
    """The cached pump models."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.m = _mappers().snapshots

    def get(self, implant_id: str) -> PumpSnapshot | None:
        row = (
            self.conn.execute(sa.select(t.snapshots).where(t.snapshots.c.implant_id == implant_id))
            .mappings()
            .first()
        )
        return None if row is None else self.m.from_row(row)

    def put(self, snapshot: PumpSnapshot) -> None:
        row = self.m.to_row(snapshot)
        done = self.conn.execute(self.m.update_key, {**row, "_key": snapshot.implant_id})
        if done.rowcount == 0:
            self.conn.execute(self.m.insert, row)

    def all(self, *, with_state: bool = True) -> list[PumpSnapshot]:
        if with_state:
            rows = self.conn.execute(sa.select(t.snapshots)).mappings()
            return [self.m.from_row(r) for r in rows]
        columns = [c for c in t.snapshots.columns if c.name != "state"]
        rows = self.conn.execute(sa.select(*columns)).mappings()
        return [self.m.from_row({**r, "state": {}}) for r in rows]


class SqlRadar:
    """The radar's facts in one query: implants in use joined to their patient and cached
    forecast, and to two grouped passes (the next booked visit per patient, the open
    discrepancies per implant): one scan of each table, whatever plan the database picks."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.m = _mappers().snapshots

    def facts(self, now: datetime, patient_ids: Collection[str] | None = None) -> list[RadarFacts]:
        i, p, s, v, r = t.implants, t.patients, t.snapshots, t.visits, t.refills
        visits = sa.select(v.c.patient_id, sa.func.min(v.c.at)).where(
            v.c.status == "booked", v.c.at >= now
        )
        open_refills = sa.select(r.c.implant_id, sa.func.count()).where(r.c.resolved.is_(False))
        if patient_ids is not None:
            some = sorted(patient_ids)
            visits = visits.where(v.c.patient_id.in_(some))
            open_refills = open_refills.where(
                r.c.implant_id.in_(sa.select(i.c.id).where(i.c.patient_id.in_(some)))
            )
        next_visit: dict[str, datetime] = dict(
            self.conn.execute(visits.group_by(v.c.patient_id)).all()
        )
        unresolved: dict[str, int] = dict(
            self.conn.execute(open_refills.group_by(r.c.implant_id)).all()
        )
        implants = sa.select(i.c.id).where(i.c.status == "active")
        if patient_ids is not None:
            implants = implants.where(i.c.patient_id.in_(sorted(patient_ids)))
        history = sa.select(
            r.c.implant_id, r.c.programmed_ml, r.c.filled_ml, r.c.withdrawn_ml, r.c.verdict,
        ).where(
            r.c.programmed_ml.is_not(None),
            r.c.filled_ml.is_not(None),
            r.c.implant_id.in_(implants),  # only the implants asked for: one index range each
        )  # fmt: skip
        refills: dict[str, list[RefillObservation]] = {}
        for iid, programmed, filled, withdrawn, verdict in self.conn.execute(
            history.order_by(r.c.implant_id, r.c.at, r.c.id)
        ):
            refills.setdefault(iid, []).append(
                RefillObservation(programmed, filled, withdrawn, verdict)
            )
        columns = [
            i.c.id, i.c.patient_id, i.c.pump_preset, p.c.given_name, p.c.family_name,
            p.c.sci_at_or_above_t6, p.c.communication_difficulty, p.c.previous_withdrawal,
            s.c.implant_id, s.c.seq, s.c.at, s.c.reservoir_calculated_ml,
            s.c.concentration_mcg_per_ml, s.c.dose_mcg_per_day, s.c.low_alarm_at,
            s.c.empty_at, s.c.earliest_dry_at, s.c.stability_until, s.c.eri_at,
            s.c.eri_reached, s.c.running, s.c.stop_reason,
            sa.cast(s.c.active_alarms, sa.Text), sa.cast(s.c.critical_alarms, sa.Text),
            s.c.last_fill_at, sa.cast(s.c.profile, sa.Text),
        ]  # fmt: skip
        # 5,000 pumps: the driver's values as they come (no type layer) and converted here,
        # to the same types the mappers give: most of the radar's cost otherwise
        untyped = [
            sa.type_coerce(c, sa.types.NullType()).label(f"c{k}") for k, c in enumerate(columns)
        ]
        query = (
            sa.select(*untyped)
            .join(p, p.c.id == i.c.patient_id)
            .outerjoin(s, s.c.implant_id == i.c.id)
            .where(i.c.status == "active")
        )
        if patient_ids is not None:
            query = query.where(i.c.patient_id.in_(sorted(patient_ids)))
        when = _utc_reader(self.conn.dialect.name)
        out = []
        for raw in self.conn.execute(query):
            row: tuple[Any, ...] = tuple(raw)
            (iid, pid, preset, given, family, sci, comm, prev, snap_id, seq, at, reservoir,
             strength, dose, low, empty, dry, stable, eri, eri_reached, running, stop,
             active, critical, last_fill, profile) = row  # fmt: skip
            snap = None
            if snap_id is not None:
                snap = PumpSnapshot(
                    snap_id, seq, _must(when(at)), {}, reservoir, strength, dose, when(low),
                    when(empty), when(dry), when(stable), when(eri), bool(eri_reached),
                    bool(running), stop, _alarms(active), _alarms(critical), when(last_fill),
                    None if profile is None else json.loads(profile),
                )  # fmt: skip
            fact = RadarFacts(
                str(pid), str(given), str(family), bool(sci), bool(comm), bool(prev), str(iid),
                str(preset), snap, next_visit.get(pid), int(unresolved.get(iid, 0)),
                tuple(refills.get(iid, ())),
            )  # fmt: skip
            out.append(fact)
        return out

    def generation(self) -> int | None:
        n = self.conn.execute(
            sa.select(t.radar_generation.c.n).where(t.radar_generation.c.id == 1)
        ).scalar()
        return None if n is None else int(n)

    def changed_since(self, generation: int) -> frozenset[str] | None:
        c = t.radar_changes.c
        oldest = self.conn.execute(sa.select(sa.func.min(c.gen))).scalar()
        if oldest is None or int(oldest) > generation + 1:
            return None  # pruned past it (or an empty log: nothing to go by)
        rows = self.conn.execute(
            sa.select(c.patient_id, c.implant_id).where(c.gen > generation).distinct()
        ).all()
        if any(pid is None and iid is None for pid, iid in rows):
            return None  # a table emptied at once
        patients = {str(pid) for pid, _ in rows if pid is not None}
        implants = sorted({str(iid) for _, iid in rows if iid is not None})
        if implants:
            patients.update(
                str(x)
                for x in self.conn.execute(
                    sa.select(t.implants.c.patient_id).where(t.implants.c.id.in_(implants))
                ).scalars()
            )
        return frozenset(patients)


def _must(value: datetime | None) -> datetime:
    assert value is not None
    return value


def _alarms(raw: str | None) -> tuple[str, ...]:
    return () if raw in (None, "[]") else tuple(json.loads(raw))


def _utc_reader(dialect: str) -> Callable[[Any], datetime | None]:
    """How a date-time comes back from the driver without the type layer: SQLite's text
    (naive UTC) or PostgreSQL's aware value, as an aware UTC date-time."""

    def sqlite(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # naive UTC text: parsed as UTC at once (7x a replace)
            return datetime.fromisoformat(value + "+00:00")
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def other(value: Any) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    return sqlite if dialect == "sqlite" else other


class SqlClinic:
    """The clinic's own record."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.m = _mappers().clinic

    def get(self) -> ClinicInfo | None:
        row = self.conn.execute(sa.select(t.clinic).where(t.clinic.c.id == 1)).mappings().first()
        if row is None:
            return None
        return self.m.from_row(row)

    def put(self, info: ClinicInfo) -> None:
        row = self.m.to_row(info)
        done = self.conn.execute(sa.update(t.clinic).where(t.clinic.c.id == 1).values(**row))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(t.clinic).values(id=1, **row))


class SqlSessions:
    """Signed-in sessions."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.m = _mappers().sessions

    def add(self, session: SessionRecord) -> None:
        self.conn.execute(self.m.insert, self.m.to_row(session))

    def get(self, token_hash: str) -> SessionRecord | None:
        if not _storable(token_hash):
            return None
        row = self.conn.execute(self.m.select_key, {"_key": token_hash}).mappings().first()
        return None if row is None else self.m.from_row(row)

    def touch(self, token_hash: str, at: datetime) -> None:
        self.conn.execute(
            sa.update(t.sessions)
            .where(t.sessions.c.token_hash == token_hash)
            .values(last_seen_at=at)
        )

    def delete(self, token_hash: str) -> None:
        self.conn.execute(sa.delete(t.sessions).where(t.sessions.c.token_hash == token_hash))

    def delete_for_user(self, username: str) -> int:
        done = self.conn.execute(sa.delete(t.sessions).where(t.sessions.c.username == username))
        return int(done.rowcount)


class SqlCalendarFeeds:
    """Calendar subscription addresses."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.m = _mappers().calendar_feeds

    def add(self, feed: CalendarFeed) -> None:
        self.conn.execute(self.m.insert, self.m.to_row(feed))

    def get(self, token_hash: str) -> CalendarFeed | None:
        if not _storable(token_hash):
            return None
        row = self.conn.execute(self.m.select_key, {"_key": token_hash}).mappings().first()
        return None if row is None else self.m.from_row(row)

    def delete_for_patient(self, patient_id: str) -> int:
        c = t.calendar_feeds.c
        done = self.conn.execute(sa.delete(t.calendar_feeds).where(c.patient_id == patient_id))
        return int(done.rowcount)


class SqlAuditLog:
    """The audit trail and its head."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def head(self) -> Checkpoint:
        row = self.conn.execute(
            sa.select(t.audit_head.c.seq, t.audit_head.c.hash)
            .where(t.audit_head.c.id == 1)
            .with_for_update()
        ).first()
        if row is None:
            return Checkpoint(0, GENESIS_HASH)
        return Checkpoint(int(row.seq), str(row.hash))

    def recorded_head(self) -> Checkpoint:
        row = self.conn.execute(
            sa.select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
        ).first()
        return (
            Checkpoint(0, GENESIS_HASH) if row is None else Checkpoint(int(row.seq), str(row.hash))
        )

    def append(self, entry: AuditEntry) -> None:
        self.conn.execute(
            sa.insert(t.audit_log).values(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                role=entry.role,
                action=entry.action,
                entity=entry.entity,
                entity_id=entry.entity_id,
                before=entry.before,
                after=entry.after,
                reason=entry.reason,
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        done = self.conn.execute(
            sa.update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(seq=entry.seq, hash=entry.hash)
        )
        if done.rowcount == 0:
            self.conn.execute(sa.insert(t.audit_head).values(id=1, seq=entry.seq, hash=entry.hash))

    @staticmethod
    def _entry(r: Any) -> AuditEntry:
        return AuditEntry(
            int(r.seq),
            r.at,
            r.actor,
            r.role,
            r.action,
            r.entity,
            r.entity_id,
            r.before,
            r.after,
            r.reason,
            r.prev_hash,
            r.hash,
        )

    def entries(self) -> Iterator[AuditEntry]:
        result = self.conn.execute(
            sa.select(t.audit_log).order_by(t.audit_log.c.seq).execution_options(yield_per=2000)
        )
        for r in result:
            yield self._entry(r)

    def for_entity(self, entity: str, entity_id: str) -> list[AuditEntry]:
        rows = self.conn.execute(
            sa.select(t.audit_log)
            .where(t.audit_log.c.entity == entity, t.audit_log.c.entity_id == entity_id)
            .order_by(t.audit_log.c.seq)
        )
        return [self._entry(r) for r in rows]


class SqlIds:
    """Identifier counters (``P0001``): one row per prefix, incremented in the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def next(self, prefix: str) -> str:
        c = t.id_counters.c
        bump = (
            sa.update(t.id_counters)
            .where(c.prefix == prefix)
            .values(value=c.value + 1)
            .returning(c.value)
        )
        value = self.conn.execute(bump).scalar()
        if value is None:
            self._counter(prefix)
            value = self.conn.execute(bump).scalar_one()
        return f"{prefix}{int(value):0{ID_DIGITS}d}"

    def _counter(self, prefix: str) -> None:
        insert = (pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert)(
            t.id_counters
        )
        self.conn.execute(insert.values(prefix=prefix, value=0).on_conflict_do_nothing())

    def reserve(self, identifier: str) -> None:
        prefix, number = _id_parts(identifier)
        c = t.id_counters.c
        self._counter(prefix)
        self.conn.execute(
            sa.update(t.id_counters)
            .where(c.prefix == prefix)
            .values(value=sa.case((c.value < number, number), else_=c.value))
        )


def _id_parts(identifier: str) -> tuple[str, int]:
    m = re.fullmatch(r"([A-Z]{1,4})(\d+)", identifier)
    if m is None:
        raise InvalidValue("identifier", identifier, "a registry identifier such as P0001")
    return m.group(1), int(m.group(2))


# ------------------------------------------------------------------ unit of work


@dataclass(frozen=True, slots=True)
class _Mappers:
    patients: RecordMapper[PatientRecord]
    contacts: RecordMapper[ContactRecord]
    assessments: RecordMapper[AssessmentRecord]
    implants: RecordMapper[ImplantRecord]
    surgeries: RecordMapper[SurgeryRecord]
    complications: RecordMapper[ComplicationRecord]
    interrogations: RecordMapper[InterrogationRecord]
    refills: RecordMapper[RefillVisitRecord]
    changes: RecordMapper[ProgrammingChange]
    visits: RecordMapper[VisitRecord]
    symptoms: RecordMapper[SymptomRecord]
    users: RecordMapper[UserAccount]
    commands: RecordMapper[CommandEntry]
    snapshots: RecordMapper[PumpSnapshot]
    clinic: RecordMapper[ClinicInfo]
    sessions: RecordMapper[SessionRecord]
    calendar_feeds: RecordMapper[CalendarFeed]


_MAPPERS: _Mappers | None = None


def _mappers() -> _Mappers:
    global _MAPPERS
    if _MAPPERS is None:
        _MAPPERS = _Mappers(
            RecordMapper(PatientRecord, t.patients),
            RecordMapper(ContactRecord, t.contacts),
            RecordMapper(AssessmentRecord, t.assessments),
            RecordMapper(ImplantRecord, t.implants),
            RecordMapper(SurgeryRecord, t.surgeries),
            RecordMapper(ComplicationRecord, t.complications),
            RecordMapper(InterrogationRecord, t.interrogations),
            RecordMapper(RefillVisitRecord, t.refills),
            RecordMapper(ProgrammingChange, t.changes),
            RecordMapper(VisitRecord, t.visits),
            RecordMapper(SymptomRecord, t.symptoms),
            RecordMapper(UserAccount, t.users),
            RecordMapper(CommandEntry, t.commands),
            RecordMapper(PumpSnapshot, t.snapshots),
            RecordMapper(ClinicInfo, t.clinic, fixed=("id",)),
            RecordMapper(SessionRecord, t.sessions),
            RecordMapper(CalendarFeed, t.calendar_feeds),
        )
    return _MAPPERS


class SqlUnitOfWork:
    """One transaction over every repository (rolled back unless committed).

    ``readonly``: a transaction that reads only (SQLite: a deferred BEGIN, so readers never
    queue behind writers; PostgreSQL: READ ONLY, so it cannot write by mistake).
    """

    patients: VersionedRecords[PatientRecord]
    contacts: VersionedRecords[ContactRecord]
    assessments: Records[AssessmentRecord]
    implants: VersionedRecords[ImplantRecord]
    surgeries: Records[SurgeryRecord]
    complications: Records[ComplicationRecord]
    commands: CommandLog
    snapshots: Snapshots
    radar: RadarQuery
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

    def __init__(self, engine: Engine, *, readonly: bool = False) -> None:
        self.engine = engine
        self.readonly = readonly
        self._conn: Connection | None = None

    def __enter__(self) -> Self:
        try:
            conn = self.engine.connect()
            if self.readonly:
                conn.execution_options(itb_readonly=True, postgresql_readonly=True)
            conn.begin()
        except OperationalError as exc:
            raise _storage_error(exc) from None
        self._conn = conn
        m = _mappers()
        self.patients = SqlRecords(conn, m.patients, "patient")
        self.contacts = SqlRecords(conn, m.contacts, "contact")
        self.assessments = SqlRecords(conn, m.assessments, "assessment")
        self.implants = SqlRecords(conn, m.implants, "implant")
        self.surgeries = SqlRecords(conn, m.surgeries, "surgery")
        self.complications = SqlComplications(conn, m.complications, "complication")
        self.interrogations = SqlRecords(conn, m.interrogations, "interrogation")
        self.refills = SqlRecords(conn, m.refills, "refill visit")
        self.changes = SqlRecords(conn, m.changes, "programming change")
        self.visits = SqlRecords(conn, m.visits, "visit")
        self.symptoms = SqlRecords(conn, m.symptoms, "symptom report")
        self.users = SqlRecords(conn, m.users, "user")
        self.commands = SqlCommandLog(conn)
        self.snapshots = SqlSnapshots(conn)
        self.radar = SqlRadar(conn)
        self.clinic = SqlClinic(conn)
        self.sessions = SqlSessions(conn)
        self.calendar_feeds = SqlCalendarFeeds(conn)
        self.audit = SqlAuditLog(conn)
        self.ids = SqlIds(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
        if isinstance(exc, OperationalError):
            raise _storage_error(exc) from None

    def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("commit outside the unit of work")
        try:
            self._conn.commit()
        except OperationalError as exc:
            raise _storage_error(exc) from None

    def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction():
            self._conn.rollback()
