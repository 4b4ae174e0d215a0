"""The clinic registry's use cases.

Each public method of :class:`ClinicService` is one use case: it receives the
actor (who is asking, in what role), decides whether they may
(:func:`itb.domain.clinic.access.authorize`), checks every value with the
domain's rules, does its work in **one unit of work** and writes its audit
entry in the same transaction, so it commits whole or not at all. A refusal
(a role that may not, a value the domain refuses, a change someone else made
first) raises, rolls everything back and is recorded in the audit trail in a
transaction of its own.

Pump settings are never stored as columns: a use case that acts on a pump
turns into a domain command (:mod:`itb.domain.pump.commands`) applied to the
registry's model of that pump (:mod:`itb.services.clinic.pump_model`), so the
pump's own checks and the drug library refuse a bad value exactly as they do
everywhere else, and the command is appended to the implant's log.

Optimistic locking: every record people edit carries a version; an implant's
version moves with every command appended to its log. A use case that acts on
a pump updates the implant "from version v"; when two people act at once, the
second finds the version moved and gets :class:`~itb.domain.errors.StaleVersion`
with nothing written.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from itb.domain.clinic.access import Action, Actor, Role, authorize
from itb.domain.clinic.audit import AuditEntry, ChainCheck, Checkpoint, verify_chain
from itb.domain.clinic.forecast import (
    DeliveryProfile,
    PumpForecast,
    RefillObservation,
    delivery_profile,
)
from itb.domain.clinic.radar import RadarInput, RadarRow, assess_pump, sort_radar
from itb.domain.clinic.records import (
    CAUSES,
    SPASTICITY_SCALE,
    AssessmentRecord,
    CalendarFeed,
    ChangeState,
    ClinicInfo,
    CommandEntry,
    ComplicationRecord,
    ContactRecord,
    ImplantRecord,
    ImplantStatus,
    InterrogationRecord,
    PatientRecord,
    ProgrammingChange,
    PumpSnapshot,
    RefillVisitRecord,
    SessionRecord,
    Stamp,
    SurgeryRecord,
    SymptomRecord,
    UserAccount,
    VisitRecord,
    VisitStatus,
    plain,
    withdrawal_risk_factors,
)
from itb.domain.clinic.rules import (
    SEXES,
    VISIT_KINDS,
    RegistryRules,
    ReminderPolicy,
    check_complication,
)
from itb.domain.clinical.candidacy import CandidacyRecord, assess_candidacy, check_cause_fits
from itb.domain.clinical.card import CardData, Contact, WalletCard, build_wallet_card
from itb.domain.clinical.drug_library import population_for
from itb.domain.clinical.safety import SafetyChecks, SafetyReview, stage_checked
from itb.domain.clinical.triage import TriageResult, normalise_sign, triage
from itb.domain.errors import (
    AuthenticationFailed,
    BlockedBySafetyCheck,
    Forbidden,
    InvalidValue,
    ITBError,
    NotFound,
    OverrideReasonRequired,
    StaleVersion,
    TooManyAttempts,
    VerificationRequired,
)
from itb.domain.patient.weight import WeightForAge
from itb.domain.pump import Pump
from itb.domain.pump.alarms import AlarmKind
from itb.domain.pump.codec import command_from_data, command_to_data, prescription_from_data
from itb.domain.pump.commands import (
    Authorship,
    FillAtImplant,
    Interrogate,
    PrimingBolus,
    PumpCommand,
    Refill,
    Reprogram,
    SingleBolus,
)
from itb.domain.pump.prescription import Prescription
from itb.domain.pump.programs import Flex
from itb.domain.pump.refill import Discrepancy, Verdict, judge_residual
from itb.domain.pump.session import ProgrammingSession
from itb.domain.units import DAYS_PER_YEAR
from itb.services.catalog import Catalog
from itb.services.clinic.exchange import (
    ClinicRow,
    ImportReport,
    PatientFile,
    RowProblem,
    by_id,
)
from itb.services.clinic.forecasting import ForecastInput, forecast_pumps
from itb.services.clinic.inputs import (
    ChangeRequest,
    DrugFill,
    NewImplant,
    NewPatient,
    ProgramRequest,
    Reading,
    RefillRequest,
)
from itb.services.clinic.ports import (
    Clock,
    PasswordHasher,
    RadarFacts,
    UnitOfWork,
    UnitOfWorkFactory,
)
from itb.services.clinic.pump_model import ModelContext, PumpModel
from itb.services.clinic.sessions import IssuedToken, LoginThrottle, new_token, token_hash
from itb.services.screening_record import ScreeningRecord, evaluate_screening_record
from itb.services.wall_clock import WallClock

__all__ = [
    "ClinicInfo",
    "ClinicService",
    "PatientChart",
    "PumpNow",
    "PumpOut",
    "RefillOutcome",
    "SymptomOutcome",
]

T = TypeVar("T")

TOKEN_TRUST_S = 5.0
"""How long a verified bearer token is trusted without reading its session again, s (a
serving detail, not a clinical number)."""

SURGERY_KINDS: tuple[str, ...] = (
    "catheter_revision",
    "pump_replacement",
    "explant",
    "pocket_revision",
    "other",
)
"""Operations on an implanted system."""


@dataclass(frozen=True, slots=True)
class PatientChart:
    """Everything the registry holds on one patient."""

    patient: PatientRecord
    contacts: tuple[ContactRecord, ...]
    assessments: tuple[AssessmentRecord, ...]
    implants: tuple[ImplantRecord, ...]
    visits: tuple[VisitRecord, ...]
    refills: tuple[RefillVisitRecord, ...]
    changes: tuple[ProgrammingChange, ...]
    symptoms: tuple[SymptomRecord, ...]
    surgeries: tuple[SurgeryRecord, ...]
    totals: Mapping[str, int]
    """How many refills, visits, changes and symptom reports there are in all (the lists
    hold the latest ones when the chart was asked for with ``recent``)."""

    @property
    def active_implant(self) -> ImplantRecord | None:
        """The implant in use, if any."""
        return next((i for i in self.implants if i.status is ImplantStatus.ACTIVE), None)


@dataclass(frozen=True, slots=True)
class PumpNow:
    """ "The pump now": the record's model moved to a date.

    Attributes:
        at: the date the model is for.
        snapshot: the model after its last command (dates the programmer shows).
        reservoir_calculated_ml: the calculated reservoir at ``at``.
        running, stop_reason, active_alarms, critical_alarms: the model at ``at``.
        prescription: the program in words.
        dose_mcg_per_day: the daily dose.
        battery_used_fraction: battery used, 0-1 (None: no battery).
        eri_reached: at ``at``.
        last_command_at: the last command's time.
    """

    implant: ImplantRecord
    at: datetime
    snapshot: PumpSnapshot
    reservoir_calculated_ml: float
    running: bool
    stop_reason: str
    active_alarms: tuple[str, ...]
    critical_alarms: tuple[str, ...]
    prescription: str
    dose_mcg_per_day: float | None
    battery_used_fraction: float | None
    eri_reached: bool
    last_command_at: datetime


@dataclass(frozen=True, slots=True)
class PumpOut:
    """A patient whose pump is out: explanted for a complication, no new pump yet. Not on
    the refill radar (there is nothing to refill), but at risk of withdrawal until the
    new pump: the bridge is what carries the therapy.

    Attributes:
        patient_id, patient_name: whose.
        implant_id: the implant that came out.
        complication_id: the complication's latest entry.
        kind: the complication (a ``ComplicationKind`` value).
        since: when the pump came out.
        bridge: ``none``, ``oral`` or ``intrathecal``.
        oral_bridge_mg_per_day: the oral bridge, mg/day (None unless oral).
        days_out: days since the explant at the time asked about.
    """

    patient_id: str
    patient_name: str
    implant_id: str
    complication_id: str
    kind: str
    since: datetime
    bridge: str
    oral_bridge_mg_per_day: float | None
    days_out: float


@dataclass(frozen=True, slots=True)
class RefillOutcome:
    """A recorded refill: the visit record and the domain's discrepancy verdict."""

    visit: RefillVisitRecord
    discrepancy: Discrepancy
    snapshot: PumpSnapshot


@dataclass(frozen=True, slots=True)
class DosePoint:
    """A prescription the pump was given: when, the daily dose and strength, in words,
    who entered it and who verified it."""

    at: datetime
    dose_mcg_per_day: float
    concentration_mcg_per_ml: float
    program: str
    entered_by: str
    verified_by: str | None
    reason: str
    day_profile: tuple[tuple[float, float], ...] = ()
    """A flex program's first day as (start hour, mcg/h) steps; empty for other programs."""
    same_every_day: bool = True


@dataclass(frozen=True, slots=True)
class _RadarPatient:
    id: str
    name: str
    withdrawal_risk: tuple[str, ...]


_RadarPump = tuple[
    _RadarPatient, str, str, PumpSnapshot | None, datetime | None, int,
    tuple[RefillObservation, ...],
]  # fmt: skip
"""One pump's radar facts: who, implant, pump preset, snapshot, next booked visit, open
discrepancies, the refills the forecast learns from."""


_RADAR_PATCH_MAX = 1000
"""Past so many patients written since the kept facts, the radar reads all of them again."""


@dataclass(frozen=True, slots=True)
class _RadarCache:
    """The radar's facts as they stood at registry generation ``generation``, true for
    any time from ``read_for`` up to ``valid_until`` (the earliest next booked visit,
    after which a visit has passed and some patient's next visit is another)."""

    generation: int
    read_for: datetime
    valid_until: datetime | None
    by_patient: Mapping[str, tuple[_RadarPump, ...]]
    pumps: tuple[_RadarPump, ...]

    @staticmethod
    def of(
        generation: int, read_for: datetime, by_patient: Mapping[str, tuple[_RadarPump, ...]]
    ) -> _RadarCache:
        pumps = tuple(p for mine in by_patient.values() for p in mine)
        visits = [p[4] for p in pumps if p[4] is not None]
        return _RadarCache(generation, read_for, min(visits, default=None), by_patient, pumps)

    def fits(self, now: datetime) -> bool:
        return now >= self.read_for and (self.valid_until is None or now <= self.valid_until)


@dataclass(frozen=True, slots=True)
class PatientReminders:
    """A patient's refill reminders: booked visits ahead, the pump's refill-by date (its
    radar row), and the alert lead times."""

    patient: PatientRecord
    clinic_name: str
    clinic_phone: str
    visits: tuple[VisitRecord, ...]
    radar: RadarRow | None
    policy: ReminderPolicy
    made_at: datetime


@dataclass(frozen=True, slots=True)
class ResidualCheck:
    """The verdict a withdrawn residual would get, before anything is recorded."""

    implant_id: str
    at: datetime
    expected_ml: float
    discrepancy: Discrepancy


@dataclass(frozen=True, slots=True)
class ChangePreview:
    """A programming change reviewed by the safety checks, nothing staged: the old and new
    program side by side, the findings, and whether it could be staged."""

    implant_id: str
    review: Mapping[str, Any]
    blocked: bool
    needs_verification: bool
    needs_override_reason: bool
    refusal: str | None
    """Why it cannot be staged as entered (a blocking finding, or a soft limit without an
    override reason), in the words staging would refuse it with; None: it can be."""
    forecast_now: PumpForecast | None
    """The reservoir forecast as the pump is programmed now."""
    forecast_after: PumpForecast | None
    """The same if the change were committed now (None: the pump would refuse it, or
    would deliver nothing)."""


@dataclass(frozen=True, slots=True)
class RefillPreview:
    """A refill checked before it is recorded: the residual's verdict, what the pump or
    the drug library would say of the fill, and the reservoir forecast before and after
    (the residual just withdrawn already learned from)."""

    implant_id: str
    at: datetime
    discrepancy: Discrepancy
    refusal: str | None
    """Why the pump or the drug library would refuse the refill as entered (None: it
    would take it)."""
    forecast_now: PumpForecast | None
    forecast_after: PumpForecast | None


@dataclass(frozen=True, slots=True)
class SymptomOutcome:
    """Recorded signs and the domain's triage."""

    record: SymptomRecord
    triage: TriageResult


_AuditRow = tuple[
    Actor | None, datetime, str, str, str, Mapping[str, Any] | None, Mapping[str, Any] | None, str
]
"""An audit entry to write: actor, time, action, entity, entity id, before, after, reason."""


class _ReadBatch:
    """Audit entries of reads, written by a background thread every so often in one unit of
    work (and at close). A read never waits for the write lock; an entry keeps its read's
    time. Entries not yet written when the process is killed are lost (changes are never
    batched: they are written with the change)."""

    def __init__(self, service: ClinicService, every_s: float) -> None:
        self.service = service
        self.every_s = every_s
        self._rows: list[_AuditRow] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="itb-read-audit", daemon=True)
        self._thread.start()

    def add(self, row: _AuditRow) -> None:
        with self._lock:
            self._rows.append(row)

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            with self.service._uow() as uow:
                self.service._chain_rows(uow, rows)
                uow.commit()
        except ITBError:
            with self._lock:  # the database was busy or away: keep them for the next try
                self._rows[:0] = rows

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()


@dataclass(slots=True)
class _Work:
    """What a use case collects inside its unit of work: the audit entries to chain."""

    uow: UnitOfWork
    entries: list[tuple[str, str, str, Mapping[str, Any] | None, Mapping[str, Any] | None, str]]

    def audit(
        self,
        action: str,
        entity: str,
        entity_id: str,
        before: object | None,
        after: object | None,
        reason: str = "",
    ) -> None:
        self.entries.append(
            (
                action,
                entity,
                entity_id,
                None if before is None else _data(before),
                None if after is None else _data(after),
                reason,
            )
        )


def _data(record: object) -> Mapping[str, Any]:
    out = plain(record)
    return out if isinstance(out, dict) else {"value": out}


def _in_order(
    field: str,
    when: datetime,
    *,
    after: datetime | None = None,
    before: datetime | None = None,
    what: str,
) -> None:
    """Refuse ``when`` earlier than ``after`` or later than ``before`` (``what`` names the
    time it is compared with), as the one-line error every entry gets."""
    minutes = "minutes"
    if after is not None and when < after:
        raise InvalidValue(
            field,
            when.isoformat(timespec=minutes),
            f"on or after {what} ({after.isoformat(timespec=minutes)})",
        )
    if before is not None and when > before:
        raise InvalidValue(
            field,
            when.isoformat(timespec=minutes),
            f"on or before {what} ({before.isoformat(timespec=minutes)})",
        )


class ClinicService:
    """The clinic registry's use cases (one instance per database)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        catalog: Catalog,
        clock: Clock,
        hasher: PasswordHasher,
        *,
        read_uow: UnitOfWorkFactory | None = None,
    ) -> None:
        self._uow = uow
        self._read_uow = read_uow or uow
        self._token_cache: dict[str, tuple[Actor, datetime, datetime, datetime]] = {}
        self._labels: dict[str, str] = {}  # pump preset key -> label (the radar, per row)
        self._radar_cache: _RadarCache | None = None
        self._forecast_cache: dict[str, tuple[object, PumpForecast | None]] = {}
        self._read_batch: _ReadBatch | None = None
        self.catalog = catalog
        self.rules: RegistryRules = catalog.registry
        self._weight_for_age = WeightForAge.from_table(catalog.patient_table)
        self.throttle = LoginThrottle(self.rules.sessions)
        self.clock = clock
        self.hasher = hasher
        self.model = PumpModel(catalog)

    # ============================================================ plumbing

    def _now(self) -> datetime:
        return self.clock.now()

    def _run(
        self,
        actor: Actor | None,
        action: str,
        entity: str,
        entity_id: str,
        body: Callable[[_Work], T],
    ) -> T:
        """Run ``body`` in one unit of work; commit it with its audit entries, or record the
        refusal in a unit of work of its own and raise."""
        try:
            with self._uow() as uow:
                work = _Work(uow, [])
                result = body(work)
                self._chain(uow, actor, work.entries)
                uow.commit()
                return result
        except ITBError as exc:
            self._refused(actor, action, entity, entity_id, exc)
            raise

    def _read(self, body: Callable[[UnitOfWork], T]) -> T:
        with self._read_uow() as uow:
            return body(uow)

    def _audited_read(
        self, actor: Actor, what: str, entity: str, entity_id: str, body: Callable[[UnitOfWork], T]
    ) -> T:
        """A sensitive read: its result (read-only), and an audit entry saying who read what."""
        out = self._read(body)
        row = (actor, self._now(), f"read:{what}", entity, entity_id, None, None, "")
        batch = self._read_batch
        if batch is None:
            with self._uow() as uow:
                self._chain_rows(uow, [row])
                uow.commit()
        else:
            batch.add(row)
        return out

    def batch_read_audit(self, *, every_s: float) -> None:
        """Write the audit entries of reads in batches, every ``every_s`` seconds (a server
        under load: a read then never waits for the registry's write lock). Each entry keeps
        the time of its read. :meth:`close` writes what is left."""
        if self._read_batch is None:
            self._read_batch = _ReadBatch(self, every_s)

    def flush_read_audit(self) -> None:
        """Write the batched read entries now."""
        if self._read_batch is not None:
            self._read_batch.flush()

    def close(self) -> None:
        """Write what is batched and stop the batch writer."""
        batch, self._read_batch = self._read_batch, None
        if batch is not None:
            batch.close()

    def _allow(
        self, actor: Actor, action: Action, *, what: str, patient_id: str | None = None
    ) -> None:
        """Authorize, recording a refusal."""
        try:
            authorize(actor, action, patient_id)
        except ITBError as exc:
            self._refused(
                actor, what, "patient" if patient_id else "registry", patient_id or "", exc
            )
            raise

    def _chain(
        self,
        uow: UnitOfWork,
        actor: Actor | None,
        entries: Iterable[
            tuple[str, str, str, Mapping[str, Any] | None, Mapping[str, Any] | None, str]
        ],
    ) -> None:
        now = self._now()
        self._chain_rows(uow, [(actor, now, *e) for e in entries])

    def _chain_rows(self, uow: UnitOfWork, rows: Sequence[_AuditRow]) -> None:
        """Append entries (each with its actor and time) to the chain, in order."""
        if not rows:
            return
        head = uow.audit.head()
        seq, prev = head.seq, head.hash
        for actor, at, action, entity, entity_id, before, after, reason in rows:
            seq += 1
            entry = AuditEntry.make(
                seq=seq,
                at=at,
                actor=actor.username if actor else "system",
                role=actor.role.value if actor else "system",
                action=action,
                entity=entity,
                entity_id=entity_id,
                before=before,
                after=after,
                reason=reason,
                prev_hash=prev,
            )
            uow.audit.append(entry)
            prev = entry.hash

    def _refused(
        self, actor: Actor | None, action: str, entity: str, entity_id: str, exc: ITBError
    ) -> None:
        try:
            with self._uow() as uow:
                self._chain(
                    uow,
                    actor,
                    [(f"refused:{action}", entity, entity_id, None, None, str(exc)[:2000])],
                )
                uow.commit()
        except ITBError:  # the refusal is what the user must see, not a failure to log it
            pass

    def _stamp(self, actor: Actor) -> Stamp:
        return Stamp.new(self._now(), actor.username)

    @staticmethod
    def _patient(uow: UnitOfWork, patient_id: str) -> PatientRecord:
        p = uow.patients.get(patient_id)
        if p is None:
            raise NotFound(f"patient {patient_id} not found")
        return p

    @staticmethod
    def _implant(uow: UnitOfWork, implant_id: str) -> ImplantRecord:
        i = uow.implants.get(implant_id)
        if i is None:
            raise NotFound(f"implant {implant_id} not found")
        return i

    def _patient_of_implant(self, implant_id: str) -> str | None:
        implant = self._read(lambda uow: uow.implants.get(implant_id))
        return None if implant is None else implant.patient_id

    def _when(self, at: datetime | None, timezone: str, field: str = "at") -> datetime:
        """When something happened: now by default; a time without an offset is the
        patient's local time (a local time skipped by a daylight-saving change is refused)."""
        now = self._now()
        if at is None:
            return now
        if at.tzinfo is None:
            at = WallClock(now, timezone).instant(at, field=field)
        return self.rules.when(at, now=now, field=field)

    def _tz(self, uow: UnitOfWork, implant: ImplantRecord) -> str:
        return self._patient(uow, implant.patient_id).timezone

    # ============================================================ clinic and users

    def clinic_info(self) -> ClinicInfo | None:
        """The clinic's name, phone and verification policy (None: not initialised)."""
        return self._read(lambda uow: uow.clinic.get())

    def initialise(
        self,
        *,
        clinic_name: str,
        clinic_phone: str,
        nurses_may_verify: bool,
        admin_username: str,
        admin_display_name: str,
        admin_password: str,
    ) -> UserAccount:
        """Set up an empty registry: the clinic's details and its first physician account.

        Raises:
            InvalidValue: the registry already has users, or a bad name or password.
        """
        name = self.rules.name("clinic_name", clinic_name)
        phone = self.rules.name("clinic_phone", clinic_phone)
        self._password_ok(admin_password)

        def body(w: _Work) -> UserAccount:
            if w.uow.users.all() or w.uow.clinic.get() is not None:
                raise InvalidValue(
                    "registry", "initialised", "an empty registry (this one is set up already)"
                )
            info = ClinicInfo(
                name=name,
                phone=phone,
                nurses_may_verify=bool(nurses_may_verify),
                version=1,
                stamp=Stamp.new(self._now(), "system"),
            )
            w.uow.clinic.put(info)
            w.audit("initialise", "clinic", "clinic", None, info)
            user = self._new_user(
                w.uow,
                "system",
                admin_username,
                admin_display_name,
                Role.PHYSICIAN,
                admin_password,
                None,
            )
            w.audit("create_user", "user", user.username, None, user)
            return user

        return self._run(None, "initialise", "clinic", "clinic", body)

    @staticmethod
    def _password_ok(password: str) -> None:
        if not isinstance(password, str) or len(password) < 8:
            raise InvalidValue("password", "(hidden)", "at least 8 characters")
        if len(password) > 256:
            raise InvalidValue("password", "(hidden)", "at most 256 characters")

    def _new_user(
        self,
        uow: UnitOfWork,
        by: str,
        username: str,
        display_name: str,
        role: Role,
        password: str,
        patient_id: str | None,
    ) -> UserAccount:
        name = self.rules.name("username", username)
        if any(c.isspace() for c in name):
            raise InvalidValue("username", name, "a name without spaces")
        if uow.users.get(name) is not None:
            raise InvalidValue("username", name, "a user name not yet taken")
        self._password_ok(password)
        if role in (Role.PATIENT, Role.CAREGIVER):
            if not patient_id:
                raise InvalidValue("patient_id", None, f"the patient a {role.value} belongs to")
            self._patient(uow, patient_id)
        elif patient_id:
            raise InvalidValue("patient_id", patient_id, f"none for a {role.value}")
        user = UserAccount(
            username=name,
            display_name=self.rules.name("display_name", display_name or name),
            role=role.value,
            patient_id=patient_id or None,
            password_hash=self.hasher.hash(password),
            active=True,
            stamp=Stamp.new(self._now(), by),
            version=1,
        )
        uow.users.add(user)
        return user

    def create_user(
        self,
        actor: Actor,
        *,
        username: str,
        role: str,
        password: str,
        display_name: str = "",
        patient_id: str | None = None,
    ) -> UserAccount:
        """Add a user account (physicians manage users).

        Raises:
            Forbidden: the actor may not manage users.
            InvalidValue: a taken name, unknown role, short password, missing patient.
        """
        r = Role(self.rules.choice("role", role, tuple(x.value for x in Role)))

        def body(w: _Work) -> UserAccount:
            authorize(actor, Action.MANAGE_USERS)
            user = self._new_user(
                w.uow, actor.username, username, display_name, r, password, patient_id
            )
            w.audit("create_user", "user", user.username, None, user)
            return user

        return self._run(actor, "create_user", "user", username, body)

    def users(self, actor: Actor) -> list[UserAccount]:
        """Every user account (staff only)."""
        self._allow(actor, Action.READ, what="list_users")
        return self._read(lambda uow: uow.users.all())

    def authenticate(self, username: str, password: str, *, address: str = "") -> Actor:
        """The actor for a user name and password.

        Raises:
            TooManyAttempts: too many recent failures for this account or address.
            AuthenticationFailed: unknown user, inactive account or wrong password (the
                message does not say which).
        """
        now = self._now()
        keys = (f"user:{username.strip().lower()[:120]}", f"addr:{address[:64]}")
        try:
            self.throttle.check(keys, now)
        except TooManyAttempts as exc:
            self._refused(None, "login", "user", username[:120], exc)
            raise
        user = self._read(lambda uow: uow.users.get(username)) if username else None
        ok = user is not None and user.active and self.hasher.verify(user.password_hash, password)
        if not ok or user is None:
            self.throttle.failed(keys, now)
            refusal = AuthenticationFailed("user name or password not recognised")
            self._refused(None, "login", "user", username[:120], refusal)
            raise refusal
        self.throttle.succeeded(keys)
        return Actor(user.username, Role(user.role), user.patient_id)

    def log_in(self, username: str, password: str, *, address: str) -> IssuedToken:
        """Sign in: a new session and its bearer token (shown once).

        Raises:
            TooManyAttempts, AuthenticationFailed: as :meth:`authenticate`.
        """
        actor = self.authenticate(username, password, address=address)
        token = new_token()
        policy = self.rules.sessions

        def body(w: _Work) -> IssuedToken:
            now = self._now()
            w.uow.sessions.add(
                SessionRecord(token_hash(token), actor.username, now, now, address[:64])
            )
            w.audit("log_in", "user", actor.username, None, {"address": address[:64]})
            return IssuedToken(
                token, int(policy.lifetime_hours.value * 3600), actor.username, actor.role.value
            )

        return self._run(actor, "log_in", "user", actor.username, body)

    def trusted_actor(self, token: str) -> Actor | None:
        """The actor of a token verified within the last :data:`TOKEN_TRUST_S`, from memory
        (no registry read, so it never waits); None when the token must be looked up.

        Raises:
            AuthenticationFailed: not a token at all (empty or too long).
        """
        if not token or len(token) > 256:
            raise AuthenticationFailed("not signed in (no valid bearer token)")
        cached = self._token_cache.get(token_hash(token))
        if cached is None:
            return None
        actor, created, seen, checked = cached
        policy = self.rules.sessions
        now = self._now()
        if (
            (now - checked).total_seconds() < TOKEN_TRUST_S
            and now - seen <= timedelta(minutes=policy.idle_minutes.value)
            and now - created <= timedelta(hours=policy.lifetime_hours.value)
            and (now - seen).total_seconds() < 60.0
        ):
            return actor
        return None

    def actor_for_token(self, token: str) -> Actor:
        """The signed-in actor of a bearer token; the session's last request is now.

        A token just verified is trusted for :data:`TOKEN_TRUST_S` without reading the
        registry again (logging out ends that at once; a deactivated user's sessions end
        within it); the session's last request is written at most once a minute.

        Raises:
            AuthenticationFailed: an unknown token, or a session that ended (inactive too
                long, past its lifetime, or its user deactivated).
        """
        known = self.trusted_actor(token)
        if known is not None:
            return known
        key = token_hash(token)
        policy = self.rules.sessions
        idle = timedelta(minutes=policy.idle_minutes.value)
        lifetime = timedelta(hours=policy.lifetime_hours.value)
        now = self._now()
        session, user = self._read(
            lambda uow: (
                s := uow.sessions.get(key),
                None if s is None else uow.users.get(s.username),
            )
        )
        if session is None:
            self._token_cache.pop(key, None)
            raise AuthenticationFailed("not signed in (no valid bearer token)")
        if (
            now - session.last_seen_at > idle
            or now - session.created_at > lifetime
            or user is None
            or not user.active
        ):
            self._token_cache.pop(key, None)
            with self._uow() as uow:
                uow.sessions.delete(key)
                uow.commit()
            raise AuthenticationFailed("the session has ended: sign in again")
        seen = session.last_seen_at
        if (now - seen).total_seconds() >= 60.0:
            with self._uow() as uow:
                uow.sessions.touch(key, now)
                uow.commit()
            seen = now
        actor = Actor(user.username, Role(user.role), user.patient_id)
        if len(self._token_cache) > 10_000:
            self._token_cache.clear()
        self._token_cache[key] = (actor, session.created_at, seen, now)
        return actor

    def log_out(self, token: str) -> None:
        """End the session of a bearer token (nothing happens for an unknown one)."""
        key = token_hash(token)
        self._token_cache.pop(key, None)
        with self._uow() as uow:
            session = uow.sessions.get(key)
            if session is None:
                return
            uow.sessions.delete(key)
            user = uow.users.get(session.username)
            self._chain(
                uow,
                Actor(session.username, Role(user.role) if user else Role.VIEWER),
                [("log_out", "user", session.username, None, None, "")],
            )
            uow.commit()

    def actor(self, username: str) -> Actor:
        """The actor for a user name (the command line, whose user holds the database).

        Raises:
            AuthenticationFailed: no such active user.
        """
        user = self._read(lambda uow: uow.users.get(username)) if username else None
        if user is None or not user.active:
            raise AuthenticationFailed(
                f"user = {username!r} is not an active registry user; allowed: a user of "
                "this registry (itb clinic user list)"
            )
        return Actor(user.username, Role(user.role), user.patient_id)

    # ============================================================ patients

    def _check_patient(self, p: NewPatient) -> dict[str, Any]:
        r = self.rules
        today = self._now().date()
        cause = r.choice("cause", p.cause, CAUSES)
        level = r.level("injury_level", p.injury_level)
        check_cause_fits(
            cause, sci_at_or_above_t6=bool(p.sci_at_or_above_t6), t6_field="sci_at_or_above_t6"
        )
        birth = r.birth_date(p.birth_date, today=today)
        weight = r.weight_kg(p.weight_kg)
        if weight is not None:
            age = (today - birth).days / DAYS_PER_YEAR
            self._weight_for_age.check(age, weight, field="weight_kg")
        return {
            "mrn": r.name("mrn", p.mrn),
            "given_name": r.name("given_name", p.given_name),
            "family_name": r.name("family_name", p.family_name),
            "birth_date": birth,
            "sex": r.choice("sex", p.sex, SEXES),
            "weight_kg": weight,
            "cause": cause,
            "injury_level": level,
            "sci_at_or_above_t6": bool(p.sci_at_or_above_t6),
            "communication_difficulty": bool(p.communication_difficulty),
            "previous_withdrawal": bool(p.previous_withdrawal),
            "timezone": r.timezone(p.timezone),
            "notes": r.text("notes", p.notes),
        }

    def register_patient(self, actor: Actor, new: NewPatient) -> PatientRecord:
        """Register a patient.

        Raises:
            Forbidden: the actor may not register patients.
            InvalidValue: a bad value, or a medical record number already registered.
        """

        return self._run(
            actor, "register_patient", "patient", new.mrn,
            lambda w: self._register_in(w, actor, new),
        )  # fmt: skip

    def _register_in(self, w: _Work, actor: Actor, new: NewPatient) -> PatientRecord:
        authorize(actor, Action.REGISTER_PATIENT)
        values = self._check_patient(new)
        if w.uow.patients.find(mrn=values["mrn"]):
            raise InvalidValue("mrn", values["mrn"], "a medical record number not yet registered")
        record = PatientRecord(
            id=w.uow.ids.next("P"), version=1, stamp=self._stamp(actor), **values
        )
        w.uow.patients.add(record)
        w.audit("register_patient", "patient", record.id, None, record)
        return record

    def edit_patient(
        self, actor: Actor, patient_id: str, *, expected_version: int, **changes: Any
    ) -> PatientRecord:
        """Change a patient's details (named fields only), from the version the user saw.

        Raises:
            StaleVersion: someone changed the record since ``expected_version``.
            InvalidValue: an unknown field or a bad value.
        """
        allowed = set(NewPatient.__dataclass_fields__) - {"mrn"}

        def body(w: _Work) -> PatientRecord:
            authorize(actor, Action.EDIT_PATIENT, patient_id)
            before = self._patient(w.uow, patient_id)
            for key in changes:
                if key not in allowed:
                    raise InvalidValue(key, changes[key], "one of " + ", ".join(sorted(allowed)))
            merged = NewPatient(
                **{f: changes.get(f, getattr(before, f)) for f in NewPatient.__dataclass_fields__}
            )
            values = self._check_patient(merged)
            after = replace(
                before,
                **values,
                version=before.version + 1,
                stamp=before.stamp.touched(self._now(), actor.username),
            )
            w.uow.patients.update(after, expected_version=expected_version)
            w.audit("edit_patient", "patient", patient_id, before, after, changes.get("notes", ""))
            return after

        return self._run(actor, "edit_patient", "patient", patient_id, body)

    def add_contact(
        self,
        actor: Actor,
        patient_id: str,
        *,
        name: str,
        relation: str,
        phone: str,
        caregiver: bool = False,
    ) -> ContactRecord:
        """Add a contact or caregiver of a patient."""

        def body(w: _Work) -> ContactRecord:
            authorize(actor, Action.EDIT_PATIENT, patient_id)
            self._patient(w.uow, patient_id)
            record = ContactRecord(
                id=w.uow.ids.next("K"),
                patient_id=patient_id,
                name=self.rules.name("name", name),
                relation=self.rules.name("relation", relation),
                phone=self.rules.name("phone", phone),
                caregiver=bool(caregiver),
                version=1,
                stamp=self._stamp(actor),
            )
            w.uow.contacts.add(record)
            w.audit("add_contact", "contact", record.id, None, record)
            return record

        return self._run(actor, "add_contact", "patient", patient_id, body)

    def patients(
        self, actor: Actor, *, modified_since: datetime | None = None
    ) -> list[PatientRecord]:
        """The patients the actor may see (staff: all; a patient or caregiver: their own),
        optionally only those changed since a time."""
        if actor.role.is_staff:
            self._allow(actor, Action.READ, what="list_patients")
            rows = self._read(lambda uow: uow.patients.all())
        else:
            self._allow(actor, Action.READ_OWN, what="list_patients", patient_id=actor.patient_id)
            own = self._read(lambda uow: uow.patients.get(actor.patient_id or ""))
            rows = [] if own is None else [own]
        return _since(rows, modified_since)

    def chart(self, actor: Actor, patient_id: str, *, recent: int | None = None) -> PatientChart:
        """Everything the registry holds on one patient (``recent``: only the latest so many
        refills, visits, changes and symptom reports; the totals say how many there are).

        Raises:
            NotFound: no such patient (or, for a patient or caregiver, not theirs).
            InvalidValue: ``recent`` below 1.
        """
        if recent is not None and recent < 1:
            raise InvalidValue("recent", recent, ">= 1")
        self._authorize_read(actor, patient_id)

        def some(repo: Any, by: str, **equals: object) -> list[Any]:
            return list(
                repo.find(**equals) if recent is None else repo.latest(recent, by=by, **equals)
            )

        def body(uow: UnitOfWork) -> PatientChart:
            p = self._patient(uow, patient_id)
            implants = tuple(uow.implants.find(patient_id=patient_id))
            ids = {i.id for i in implants}
            refills: list[RefillVisitRecord] = []
            changes: list[ProgrammingChange] = []
            surgeries: list[SurgeryRecord] = []
            totals = {"refills": 0, "changes": 0}
            for iid in sorted(ids):
                refills += some(uow.refills, "at", implant_id=iid)
                changes += some(uow.changes, "staged_at", implant_id=iid)
                surgeries += uow.surgeries.find(implant_id=iid)
                totals["refills"] += uow.refills.count(implant_id=iid)
                totals["changes"] += uow.changes.count(implant_id=iid)
            totals["visits"] = uow.visits.count(patient_id=patient_id)
            totals["symptoms"] = uow.symptoms.count(patient_id=patient_id)
            refills.sort(key=lambda r: r.at)
            changes.sort(key=lambda c: c.staged_at)
            if recent is not None:
                refills, changes = refills[-recent:], changes[-recent:]
            return PatientChart(
                patient=p,
                contacts=tuple(uow.contacts.find(patient_id=patient_id)),
                assessments=tuple(
                    sorted(uow.assessments.find(patient_id=patient_id), key=lambda a: a.at)
                ),
                implants=tuple(sorted(implants, key=lambda i: i.implanted_at)),
                visits=tuple(
                    sorted(some(uow.visits, "at", patient_id=patient_id), key=lambda v: v.at)
                ),
                refills=tuple(refills),
                changes=tuple(changes),
                symptoms=tuple(
                    sorted(some(uow.symptoms, "at", patient_id=patient_id), key=lambda s: s.at)
                ),
                surgeries=tuple(sorted(surgeries, key=lambda s: s.at)),
                totals=totals,
            )

        return self._audited_read(actor, "chart", "patient", patient_id, body)

    def _authorize_read(self, actor: Actor, patient_id: str | None) -> None:
        action = Action.READ if actor.role.is_staff else Action.READ_OWN
        try:
            authorize(actor, action, patient_id)
        except ITBError as exc:
            self._refused(actor, "read", "patient", patient_id or "", exc)
            raise

    # ============================================================ assessments

    def record_candidacy(
        self, actor: Actor, patient_id: str, record: CandidacyRecord, *, on: date | None = None
    ) -> AssessmentRecord:
        """Assess candidacy by the domain's rules and record the verdict.

        Raises:
            InvalidValue: the record's cause or origin differs from the patient's.
        """

        def body(w: _Work) -> AssessmentRecord:
            authorize(actor, Action.RECORD_ASSESSMENT, patient_id)
            p = self._patient(w.uow, patient_id)
            if record.cause != p.cause:
                raise InvalidValue("cause", record.cause, f"the patient's recorded cause {p.cause}")
            if record.origin != p.origin:
                raise InvalidValue("origin", record.origin, f"the patient's origin {p.origin}")
            when = on or self._now().date()
            result = assess_candidacy(record, self.catalog.candidacy, assessed_on=when)
            a = AssessmentRecord(
                id=w.uow.ids.next("A"),
                patient_id=patient_id,
                at=self._now(),
                kind="candidacy",
                verdict=result.verdict.value,
                summary="; ".join(r.text for r in result.blocking) or result.verdict.value,
                detail={"record": plain(record), "reasons": plain(result.reasons)},
                stamp=self._stamp(actor),
            )
            w.uow.assessments.add(a)
            w.audit("record_candidacy", "assessment", a.id, None, a)
            return a

        return self._run(actor, "record_candidacy", "patient", patient_id, body)

    def record_screening(
        self, actor: Actor, patient_id: str, record: ScreeningRecord
    ) -> AssessmentRecord:
        """Assess a screening trial by the protocol and record the verdict."""

        def body(w: _Work) -> AssessmentRecord:
            authorize(actor, Action.RECORD_ASSESSMENT, patient_id)
            self._patient(w.uow, patient_id)
            report = evaluate_screening_record(self.catalog.screening, record)
            step = report.next_step
            a = AssessmentRecord(
                id=w.uow.ids.next("A"),
                patient_id=patient_id,
                at=self._now(),
                kind="screening",
                verdict=str(step.kind),
                summary=step.text,
                detail={
                    "criterion": report.criterion,
                    "reduced_start": report.reduced_start,
                    "boluses": [
                        {"bolus": plain(b), "assessment": plain(a)} for b, a in report.boluses
                    ],
                    "next_step": plain(step),
                },
                stamp=self._stamp(actor),
            )
            w.uow.assessments.add(a)
            w.audit("record_screening", "assessment", a.id, None, a)
            return a

        return self._run(actor, "record_screening", "patient", patient_id, body)

    def record_follow_up(
        self,
        actor: Actor,
        patient_id: str,
        *,
        mas: float,
        psfs: float | None = None,
        at: datetime | None = None,
        note: str = "",
    ) -> AssessmentRecord:
        """Record the spasticity scores of a follow-up visit: the Modified Ashworth score
        and, when taken, the Penn Spasm Frequency score (both 0-4 [C47][C48]).

        Raises:
            InvalidValue: a score outside 0-4, a time in the future.
            Forbidden: the actor may not record assessments.
        """

        def body(w: _Work) -> AssessmentRecord:
            authorize(actor, Action.RECORD_ASSESSMENT, patient_id)
            p = self._patient(w.uow, patient_id)
            when = self._when(at, p.timezone)
            _, high = SPASTICITY_SCALE
            scores = {
                name: self.rules.non_negative(name, value, upper=high, unit="points")
                for name, value in (("mas", mas), ("psfs", psfs))
                if value is not None
            }
            words = ", ".join(f"{k.upper()} {v:g}" for k, v in scores.items())
            a = AssessmentRecord(
                id=w.uow.ids.next("A"),
                patient_id=patient_id,
                at=when,
                kind="follow_up",
                verdict="scored",
                summary=words,
                detail={
                    **{k: float(v) for k, v in scores.items()},
                    "note": self.rules.text("note", note),
                },
                stamp=self._stamp(actor),
            )
            w.uow.assessments.add(a)
            w.audit("record_follow_up", "assessment", a.id, None, a)
            return a

        return self._run(actor, "record_follow_up", "patient", patient_id, body)

    # ============================================================ implants and the pump

    def _fill_checks(self, fill: DrugFill, pump_kind: str, at: datetime) -> None:
        r = self.rules
        r.positive("fill.volume_ml", fill.volume_ml, unit="mL")
        r.positive("fill.concentration_mcg_per_ml", fill.concentration_mcg_per_ml, unit="mcg/mL")
        product = next((p for p in self.catalog.drugs.products if p.key == fill.product), None)
        if product is None or product.screening_only:
            names = [p.key for p in self.catalog.drugs.products if not p.screening_only]
            raise InvalidValue("fill.product", fill.product, ", ".join(names))
        allowed = self.catalog.fill_products(pump_kind)
        if product not in allowed:
            raise InvalidValue(
                "fill.product",
                fill.product,
                f"a product for a {pump_kind} pump: {', '.join(p.key for p in allowed)}",
            )
        if fill.concentration_mcg_per_ml > product.concentration_mcg_per_ml:
            raise InvalidValue(
                "fill.concentration_mcg_per_ml",
                fill.concentration_mcg_per_ml,
                f"at most the product's {product.concentration_mcg_per_ml:g} mcg/mL "
                "(a lower value is a dilution of it)",
            )
        self.catalog.library.require_pump_concentration(fill.concentration_mcg_per_ml, pump_kind)
        r.name("fill.lot", fill.lot)
        if fill.expiry is not None and fill.expiry < at.date():
            raise InvalidValue(
                "fill.expiry",
                fill.expiry.isoformat(),
                f"on or after the fill date {at.date().isoformat()} (expired drug is never filled)",
            )

    def _prescription(
        self, request: ProgramRequest | None, concentration: float, pump: Pump
    ) -> Prescription | None:
        if request is None:
            return None
        if not pump.preset.programmable:
            raise InvalidValue("program", "given", f"none: {pump.preset.label} has a fixed flow")
        pb = request.patient_bolus
        if pb is None and concentration == pump.prescription.concentration_mcg_per_ml:
            pb = pump.prescription.patient_bolus
        return replace(request, patient_bolus=pb).prescription(concentration)

    def _append(
        self,
        w: _Work,
        ctx: ModelContext,
        pump: Pump,
        seq: int,
        command: PumpCommand,
        at: datetime,
        by: Authorship,
        actor: Actor,
    ) -> int:
        """Apply ``command`` to the model and append it to the log; the next ``seq``."""
        self.model.apply(ctx, pump, command, at, by)
        seq += 1
        w.uow.commands.append(
            CommandEntry(
                implant_id=ctx.implant.id,
                seq=seq,
                at=at,
                command=command_to_data(command),
                entered_by=by.entered_by or actor.username,
                role=by.role or actor.role.value,
                reason=by.reason,
                verified_by=by.verified_by,
                override_reason=by.override_reason,
                recorded_at=self._now(),
            )
        )
        return seq

    def _bump(
        self, w: _Work, implant: ImplantRecord, actor: Actor, **changes: Any
    ) -> ImplantRecord:
        after = replace(
            implant,
            **changes,
            version=implant.version + 1,
            stamp=implant.stamp.touched(self._now(), actor.username),
        )
        w.uow.implants.update(after, expected_version=implant.version)
        return after

    def record_implant(self, actor: Actor, patient_id: str, new: NewImplant) -> ImplantRecord:
        """Record an implanted system with its first fill and program (and a priming bolus).

        A patient with an implant in use has it marked replaced (a pump replacement).

        Raises:
            Forbidden: only a physician records an implant.
            InvalidValue, HardLimitExceeded, SoftLimitNeedsReason ...: the pump, the drug
                library or the registry refuses a value (nothing is written).
        """

        return self._run(
            actor, "record_implant", "patient", patient_id,
            lambda w: self._record_implant_in(w, actor, patient_id, new),
        )  # fmt: skip

    def _record_implant_in(
        self, w: _Work, actor: Actor, patient_id: str, new: NewImplant
    ) -> ImplantRecord:
        authorize(actor, Action.RECORD_IMPLANT, patient_id)
        p = self._patient(w.uow, patient_id)
        r = self.rules
        at = self._when(new.at, p.timezone)
        preset = self.catalog.preset(new.pump_preset, field="pump_preset")
        self.catalog.catheter(new.catheter_family, new.catheter_length_cm, field="catheter")
        self._fill_checks(new.fill, preset.kind.value, at)
        implant = ImplantRecord(
            id=w.uow.ids.next("I"),
            patient_id=patient_id,
            pump_preset=preset.key,
            serial=r.name("serial", new.serial),
            udi=None if not new.udi else r.name("udi", new.udi),
            implanted_at=at,
            catheter_family=new.catheter_family,
            catheter_length_cm=float(new.catheter_length_cm),
            tip_level=r.level("tip_level", new.tip_level),
            fill_product=new.fill.product,
            fill_lot=r.name("fill.lot", new.fill.lot),
            fill_expiry=new.fill.expiry,
            fill_volume_ml=float(new.fill.volume_ml),
            fill_concentration_mcg_per_ml=float(new.fill.concentration_mcg_per_ml),
            status=ImplantStatus.ACTIVE,
            ended_at=None,
            end_reason="",
            version=1,
            stamp=self._stamp(actor),
        )
        for old in w.uow.implants.find(patient_id=patient_id):
            if old.status is ImplantStatus.ACTIVE:
                if at <= old.implanted_at:
                    raise InvalidValue(
                        "at",
                        at.isoformat(timespec="minutes"),
                        f"after the implant in use ({old.implanted_at.date().isoformat()})",
                    )
                ended = self._bump(
                    w,
                    old,
                    actor,
                    status=ImplantStatus.REPLACED,
                    ended_at=at,
                    end_reason=f"replaced by {implant.id}",
                )
                w.audit("replace_implant", "implant", old.id, old, ended, new.reason)
                s = SurgeryRecord(
                    w.uow.ids.next("S"),
                    old.id,
                    at,
                    "pump_replacement",
                    f"replaced by {implant.id} ({preset.label})",
                    self._stamp(actor),
                )
                w.uow.surgeries.add(s)
                w.audit("record_surgery", "surgery", s.id, None, s)
        w.uow.implants.add(implant)
        ctx = self.model.context(p, implant)
        pump = self.model.new_pump(ctx)
        reason = r.text("reason", new.reason) or "implant"
        by = Authorship(actor.username, actor.role.value, reason)
        seq = self._append(
            w,
            ctx,
            pump,
            0,
            FillAtImplant(new.fill.volume_ml, new.fill.concentration_mcg_per_ml),
            at,
            by,
            actor,
        )
        rx = self._prescription(new.program, new.fill.concentration_mcg_per_ml, pump)
        if preset.programmable and (
            rx is not None or new.low_reservoir_alarm_ml is not None or new.prime
        ):
            bolus = PrimingBolus(self.catalog.protocol["priming_duration_h"]) if new.prime else None
            seq = self._append(
                w,
                ctx,
                pump,
                seq,
                Reprogram(
                    prescription=rx,
                    low_reservoir_alarm_ml=new.low_reservoir_alarm_ml,
                    bolus=bolus,
                ),
                at,
                replace(by, override_reason=_clean(new.override_reason)),
                actor,
            )
        snap = self.model.snapshot(ctx, pump, seq=seq, last_fill_at=at)
        w.uow.snapshots.put(snap)
        w.audit(
            "record_implant",
            "implant",
            implant.id,
            None,
            {
                "implant": plain(implant),
                "fill": plain(new.fill),
                "program": None if rx is None else rx.describe(),
            },
            reason,
        )
        return implant

    def record_surgery(
        self,
        actor: Actor,
        implant_id: str,
        *,
        kind: str,
        at: datetime | None = None,
        detail: str = "",
        expected_version: int | None = None,
    ) -> SurgeryRecord:
        """Record an operation on an implanted system; an explant ends the implant.

        Raises:
            InvalidValue: an unknown kind, or an implant no longer in use.
        """

        def body(w: _Work) -> SurgeryRecord:
            implant = self._implant(w.uow, implant_id)
            authorize(actor, Action.RECORD_SURGERY, implant.patient_id)
            k = self.rules.choice(
                "kind", kind, tuple(x for x in SURGERY_KINDS if x != "pump_replacement")
            )
            when = self._when(at, self._tz(w.uow, implant))
            self._active(w.uow, implant_id, expected_version)
            if when < implant.implanted_at:
                raise InvalidValue("at", when.isoformat(timespec="minutes"), "after the implant")
            return self._surgery_in(w, actor, implant, k, when, self.rules.text("detail", detail))

        return self._run(actor, "record_surgery", "implant", implant_id, body)

    def _surgery_in(
        self, w: _Work, actor: Actor, implant: ImplantRecord, kind: str, when: datetime, detail: str
    ) -> SurgeryRecord:
        """Store a checked surgery with its audit entry; an explant ends the implant."""
        s = SurgeryRecord(w.uow.ids.next("S"), implant.id, when, kind, detail, self._stamp(actor))
        w.uow.surgeries.add(s)
        w.audit("record_surgery", "surgery", s.id, None, s, s.detail)
        if kind == "explant":
            after = self._bump(
                w,
                implant,
                actor,
                status=ImplantStatus.EXPLANTED,
                ended_at=when,
                end_reason=s.detail or "explanted",
            )
            w.audit("explant", "implant", implant.id, implant, after, s.detail)
        return s

    # ============================================================ complications

    def _signs(self, raw: Iterable[str]) -> tuple[str, ...]:
        """Sign keys of the triage guide (aliases and spacing as :func:`triage` reads them)."""
        guide = self.catalog.triage
        out: list[str] = []
        for sign in raw:
            key = guide.aliases.get(normalise_sign(sign)) if isinstance(sign, str) else None
            if key is None:
                raise InvalidValue("sign", sign, f"one of {', '.join(guide.signs)}")
            if key not in out:
                out.append(key)
        return tuple(out)

    def _complication_explant(
        self,
        w: _Work,
        actor: Actor,
        implant: ImplantRecord,
        when: datetime,
        entry_id: str,
        kind: str,
        expected_version: int | None,
    ) -> str:
        """The explant a complication entry records: the same surgery, in the same unit of
        work, as ``record_surgery(kind="explant")``; its id."""
        authorize(actor, Action.RECORD_SURGERY, implant.patient_id)
        self._active(w.uow, implant.id, expected_version)
        label = self.catalog.complications.spec(kind).label
        detail = f"explant for a complication: {label} ({entry_id})"
        return self._surgery_in(w, actor, implant, "explant", when, detail).id

    @staticmethod
    def _at_version(implant: ImplantRecord, expected_version: int | None) -> None:
        if expected_version is not None and implant.version != expected_version:
            raise StaleVersion(
                f"implant {implant.id} is at version {implant.version}, not {expected_version}: "
                "someone acted on this pump since you read it; nothing was written: read it "
                "again and retry"
            )

    def record_complication(
        self,
        actor: Actor,
        implant_id: str,
        *,
        kind: str,
        found_at: datetime | None = None,
        onset_at: datetime | None = None,
        at: datetime | None = None,
        signs: Iterable[str] = (),
        treatments: Iterable[str] = (),
        bridge: str = "none",
        oral_bridge_mg_per_day: float | None = None,
        status: str | None = None,
        note: str = "",
        expected_version: int | None = None,
    ) -> ComplicationRecord:
        """Record a complication of an implanted system: the first entry of its episode.

        ``found_at`` defaults to now, ``at`` (when this entry's state began; an explant's
        time) to ``found_at``; a time without an offset is the patient's local time. A
        treatment ``explant`` records the explant surgery in the same unit of work (a
        physician's, like every surgery) and ends the implant, as
        :meth:`record_surgery` does.

        Raises:
            Forbidden: a role that may not record complications (or, with an explant, surgery).
            NotFound: no such implant (or another patient's).
            InvalidValue: a value outside its vocabulary or bounds, or times out of order
                (the implant, then the onset, then when found, then ``at``, none after now).
            StaleVersion: ``expected_version`` is not the implant's version.
        """
        given_signs, given_treatments = list(signs), list(treatments)

        def body(w: _Work) -> ComplicationRecord:
            implant = self._implant(w.uow, implant_id)
            authorize(actor, Action.RECORD_COMPLICATION, implant.patient_id)
            tz = self._tz(w.uow, implant)
            terms = check_complication(
                self.rules.oral_bridge_mg_per_day_max.value,
                kind=kind,
                treatments=given_treatments,
                bridge=bridge,
                oral_bridge_mg_per_day=oral_bridge_mg_per_day,
                status=status,
                implant_status=implant.status,
            )
            found = self._when(found_at, tz, "found_at")
            onset = None if onset_at is None else self._when(onset_at, tz, "onset_at")
            when = found if at is None else self._when(at, tz, "at")
            if onset is not None:
                _in_order("onset_at", onset, after=implant.implanted_at, what="the implant")
            _in_order("found_at", found, after=implant.implanted_at, what="the implant")
            if onset is not None:
                _in_order("onset_at", onset, before=found, what="found_at")
            _in_order("at", when, after=found, what="found_at")
            checked_signs = self._signs(given_signs)
            text = self.rules.text("note", note)
            self._at_version(implant, expected_version)
            rid = w.uow.ids.next("X")
            surgery = None
            if terms.explants:
                surgery = self._complication_explant(
                    w, actor, implant, when, rid, terms.kind.value, expected_version
                )
            rec = ComplicationRecord(
                id=rid,
                patient_id=implant.patient_id,
                implant_id=implant.id,
                episode_id=rid,
                follows=None,
                kind=terms.kind,
                onset_at=onset,
                found_at=found,
                at=when,
                signs=checked_signs,
                treatments=terms.treatments,
                bridge=terms.bridge,
                oral_bridge_mg_per_day=terms.oral_bridge_mg_per_day,
                status=terms.status,
                explant_surgery_id=surgery,
                note=text,
                stamp=self._stamp(actor),
            )
            w.uow.complications.add(rec)
            w.audit("record_complication", "complication", rec.id, None, rec, text)
            return rec

        return self._run(actor, "record_complication", "implant", implant_id, body)

    def update_complication(
        self,
        actor: Actor,
        complication_id: str,
        *,
        at: datetime | None = None,
        signs: Iterable[str] = (),
        treatments: Iterable[str] = (),
        bridge: str | None = None,
        oral_bridge_mg_per_day: float | None = None,
        status: str | None = None,
        note: str = "",
        expected_version: int | None = None,
    ) -> ComplicationRecord:
        """Append an entry to a complication: treatments added, a bridge, a status (resolved,
        explanted), more signs, a note. The entry updated must be the complication's latest
        (its id is the version the user read); the new entry states the whole complication
        (what is not given is carried over; treatments and signs add to the earlier ones).
        A treatment ``explant`` records the explant surgery with it, as
        :meth:`record_complication` does.

        Raises:
            StaleVersion: the entry was updated already (by someone else, or before); nothing
                is written: update the latest entry.
            InvalidValue: nothing to update, a value refused, or a time before the entry
                updated.
        """
        given_signs, given_treatments = list(signs), list(treatments)

        def body(w: _Work) -> ComplicationRecord:
            prev = w.uow.complications.get(complication_id)
            if prev is None:
                raise NotFound(f"complication {complication_id} not found")
            authorize(actor, Action.RECORD_COMPLICATION, prev.patient_id)
            later = w.uow.complications.find(follows=prev.id)
            if later:
                raise StaleVersion(
                    f"complication {prev.id} was updated already by {later[0].id}: nothing was "
                    "written: read the complication again and update its latest entry"
                )
            implant = self._implant(w.uow, prev.implant_id)
            when = self._when(at, self._tz(w.uow, implant))
            _in_order("at", when, after=prev.at, what="the entry it updates")
            if not (
                given_signs
                or given_treatments
                or bridge is not None
                or oral_bridge_mg_per_day is not None
                or status is not None
                or note.strip()
            ):
                raise InvalidValue(
                    "update",
                    "nothing",
                    "a treatment, bridge, oral bridge dose, status, sign or note",
                )
            b = prev.bridge.value if bridge is None else bridge
            mg = oral_bridge_mg_per_day
            if mg is None and b == prev.bridge.value:
                mg = prev.oral_bridge_mg_per_day
            terms = check_complication(
                self.rules.oral_bridge_mg_per_day_max.value,
                kind=prev.kind.value,
                treatments=given_treatments,
                bridge=b,
                oral_bridge_mg_per_day=mg,
                status=status,
                implant_status=implant.status,
                previous_treatments=prev.treatments,
                previous_status=prev.status,
            )
            more = self._signs(given_signs)
            text = self.rules.text("note", note)
            self._at_version(implant, expected_version)
            rid = w.uow.ids.next("X")
            surgery = prev.explant_surgery_id
            if terms.explants:
                surgery = self._complication_explant(
                    w, actor, implant, when, prev.episode_id, prev.kind.value, expected_version
                )
            rec = replace(
                prev,
                id=rid,
                follows=prev.id,
                at=when,
                signs=prev.signs + tuple(x for x in more if x not in prev.signs),
                treatments=terms.treatments,
                bridge=terms.bridge,
                oral_bridge_mg_per_day=terms.oral_bridge_mg_per_day,
                status=terms.status,
                explant_surgery_id=surgery,
                note=text,
                stamp=self._stamp(actor),
            )
            w.uow.complications.add(rec)
            w.audit("update_complication", "complication", rec.id, prev, rec, text)
            return rec

        return self._run(actor, "update_complication", "complication", complication_id, body)

    def complications(
        self,
        actor: Actor,
        patient_id: str,
        *,
        implant_id: str | None = None,
        latest_only: bool = False,
    ) -> list[ComplicationRecord]:
        """A patient's complications, each episode's entries in order, the episodes in the
        order they were found (``implant_id``: of one implant; ``latest_only``: each
        complication's latest entry, what it is now).

        Raises:
            NotFound: no such patient (or, for a patient or caregiver, not theirs).
        """
        self._authorize_read(actor, patient_id)

        def body(uow: UnitOfWork) -> list[ComplicationRecord]:
            self._patient(uow, patient_id)
            equals: dict[str, object] = {"patient_id": patient_id}
            if implant_id is not None:
                equals["implant_id"] = implant_id
            rows = uow.complications.find(**equals)
            if latest_only:
                followed = {r.follows for r in rows}
                rows = [r for r in rows if r.id not in followed]
            first = {r.id: r.found_at for r in rows if r.follows is None}

            def order(r: ComplicationRecord) -> tuple[Any, ...]:
                return (first.get(r.episode_id, r.found_at), len(r.episode_id), r.episode_id,
                        len(r.id), r.id)  # fmt: skip

            return sorted(rows, key=order)

        return self._audited_read(actor, "complications", "patient", patient_id, body)

    def pumps_out(self, actor: Actor, *, on: datetime | None = None) -> list[PumpOut]:
        """Every patient whose pump came out for a complication and who has no pump in use
        since, longest out first, with the bridge of the complication's latest entry (so
        that the team sees who depends on it, and who is out with none).

        Raises:
            Forbidden: the actor may not read the radar.
        """
        self._allow(actor, Action.READ, what="radar")
        now = self._now() if on is None else on
        if now.tzinfo is None:
            raise InvalidValue("on", now.isoformat(), "a date-time with a time zone")

        def body(uow: UnitOfWork) -> list[PumpOut]:
            entries = uow.complications.find()
            followed = {r.follows for r in entries if r.follows is not None}
            rows: list[PumpOut] = []
            for r in entries:
                if r.id in followed or r.explant_surgery_id is None:
                    continue  # not the latest entry, or no explant (resolved or not, the
                    # pump stays out until a new one is implanted)
                implants = uow.implants.find(patient_id=r.patient_id)
                if any(i.status is ImplantStatus.ACTIVE for i in implants):
                    continue  # a new pump is in
                removed = next((i for i in implants if i.id == r.implant_id), None)
                since = r.at if removed is None or removed.ended_at is None else removed.ended_at
                patient = self._patient(uow, r.patient_id)
                rows.append(
                    PumpOut(
                        patient_id=r.patient_id,
                        patient_name=patient.name,
                        implant_id=r.implant_id,
                        complication_id=r.id,
                        kind=r.kind.value,
                        since=since,
                        bridge=r.bridge.value,
                        oral_bridge_mg_per_day=r.oral_bridge_mg_per_day,
                        days_out=max(0.0, (now - since).total_seconds() / 86400.0),
                    )
                )
            # a patient out for two complications at once is listed once, by the latest
            latest: dict[str, PumpOut] = {}
            for row in rows:
                kept = latest.get(row.patient_id)
                later = (len(row.complication_id), row.complication_id)
                if kept is None or later > (len(kept.complication_id), kept.complication_id):
                    latest[row.patient_id] = row
            return sorted(latest.values(), key=lambda p: (p.since, p.patient_id))

        return self._audited_read(actor, "pumps_out", "registry", "radar", body)

    def _model(
        self, uow: UnitOfWork, implant: ImplantRecord, *, persist: bool = True
    ) -> tuple[ModelContext, Pump, PumpSnapshot]:
        """The model of an implant after its last command (snapshot, or replay; a replayed
        model is kept as the new snapshot unless ``persist`` is off: a read-only unit of
        work)."""
        patient = self._patient(uow, implant.patient_id)
        ctx = self.model.context(patient, implant)
        snap = uow.snapshots.get(implant.id)
        pump = None if snap is None else self.model.restore(ctx, snap)
        if pump is None or snap is None:
            entries = uow.commands.for_implant(implant.id)
            pump, seq = self.model.replay(ctx, entries)
            fills = [
                e.at for e in entries if e.command.get("kind") in ("fill_at_implant", "refill")
            ]
            snap = self.model.snapshot(
                ctx, pump, seq=seq, last_fill_at=fills[-1] if fills else None
            )
            if persist:
                uow.snapshots.put(snap)
        return ctx, pump, snap

    def _active(
        self, uow: UnitOfWork, implant_id: str, expected_version: int | None = None
    ) -> ImplantRecord:
        """An implant in use, at the version the user saw (when they say which)."""
        implant = self._implant(uow, implant_id)
        if implant.status is not ImplantStatus.ACTIVE:
            raise InvalidValue(
                "implant", implant_id, f"an implant in use (this one was {implant.status.value})"
            )
        if expected_version is not None and implant.version != expected_version:
            raise StaleVersion(
                f"implant {implant_id} is at version {implant.version}, not {expected_version}: "
                "someone acted on this pump since you read it; nothing was written: read it "
                "again and retry"
            )
        return implant

    def pump_now(self, actor: Actor, implant_id: str, *, at: datetime | None = None) -> PumpNow:
        """The pump as the record says it is on ``at`` (default: now): reservoir, dates,
        alarms, battery, from the domain's pump model."""
        patient_id = self._patient_of_implant(implant_id)
        self._authorize_read(actor, patient_id or implant_id)

        def body(uow: UnitOfWork) -> PumpNow:
            implant = self._implant(uow, implant_id)
            ctx, pump, snap = self._model(uow, implant, persist=False)
            if at is None:
                when = self._now()
            elif at.tzinfo is None:
                when = WallClock(at, self._tz(uow, implant)).instant(at, field="at")
            else:
                when = at
            end = implant.ended_at
            if end is not None and when > end:
                when = end
            _in_order("at", when, after=snap.at, what="the last recorded command")
            self.model.at_time(ctx, pump, when)
            battery = pump.battery_used if pump.preset.battery is not None else None
            program = pump.prescription.program
            return PumpNow(
                implant=implant,
                at=when,
                snapshot=snap,
                reservoir_calculated_ml=pump.reservoir_calculated_ml,
                running=pump.running,
                stop_reason="; ".join(sorted(r.value for r in pump.stop_reasons)),
                active_alarms=tuple(sorted(a.value for a in pump.active_alarms)),
                critical_alarms=pump.critical_alarms(),
                prescription=pump.status().prescription,
                dose_mcg_per_day=program.daily_dose_mcg()
                if pump.preset.programmable
                else snap.dose_mcg_per_day,
                battery_used_fraction=battery,
                eri_reached=pump.eri_t_h is not None and pump.eri_t_h <= pump.t_h,
                last_command_at=snap.at,
            )

        return self._read(body)

    def command_log(self, actor: Actor, implant_id: str) -> list[CommandEntry]:
        """The implant's command log, in order."""
        patient_id = self._patient_of_implant(implant_id)
        self._authorize_read(actor, patient_id or implant_id)
        return self._read(lambda uow: uow.commands.for_implant(self._implant(uow, implant_id).id))

    def dose_history(self, actor: Actor, implant_id: str) -> list[DosePoint]:
        """Every prescription the pump was given (at implant, refills, programming changes),
        in order: the daily dose, the strength, who entered it and who verified it."""
        out = []
        for e in self.command_log(actor, implant_id):
            rx = e.command.get("prescription")
            if not isinstance(rx, Mapping):
                continue
            prescription = prescription_from_data(rx, where=f"command {e.seq}")
            out.append(
                DosePoint(
                    at=e.at,
                    dose_mcg_per_day=prescription.program.daily_dose_mcg(),
                    concentration_mcg_per_ml=prescription.concentration_mcg_per_ml,
                    program=prescription.describe(),
                    entered_by=e.entered_by,
                    verified_by=e.verified_by,
                    reason=e.reason,
                    day_profile=_day_profile(prescription.program),
                    same_every_day=not isinstance(prescription.program, Flex)
                    or len(set(prescription.program.days)) == 1,
                )
            )
        return out

    def record_interrogation(
        self,
        actor: Actor,
        implant_id: str,
        *,
        at: datetime | None = None,
        reading: Reading | None = None,
        expected_version: int | None = None,
    ) -> InterrogationRecord:
        """Record an interrogation: what the programmer showed (or, where not read, what the
        record's model says) and the alarms it acknowledged."""
        reading = reading or Reading()

        def body(w: _Work) -> InterrogationRecord:
            implant = self._implant(w.uow, implant_id)
            authorize(actor, Action.INTERROGATE, implant.patient_id)
            implant = self._active(w.uow, implant_id, expected_version)
            when = self._when(at, self._tz(w.uow, implant))
            ctx, pump, snap = self._model(w.uow, implant)
            self._bump(w, implant, actor)
            seq = self._append(
                w,
                ctx,
                pump,
                snap.seq,
                Interrogate(),
                when,
                Authorship(actor.username, actor.role.value, "interrogation"),
                actor,
            )
            expected = pump.reservoir_calculated_ml
            read_ml = (
                expected
                if reading.reservoir_ml is None
                else self.rules.non_negative(
                    "reservoir_ml", reading.reservoir_ml, upper=pump.preset.reservoir_ml, unit="mL"
                )
            )
            kinds = tuple(a.value for a in AlarmKind)
            alarms = tuple(self.rules.choice("alarm", a, kinds) for a in reading.alarms)
            status_alarms = tuple(sorted({a.value for a in pump.active_alarms} | set(alarms)))
            eri = pump.predicted_eri_eos_t_h()
            record = InterrogationRecord(
                id=w.uow.ids.next("Q"),
                implant_id=implant_id,
                at=when,
                reservoir_calculated_ml=read_ml,
                expected_ml=expected,
                running=pump.running,
                stop_reason="; ".join(sorted(r.value for r in pump.stop_reasons)),
                active_alarms=status_alarms,
                eri_reached=pump.eri_t_h is not None and pump.eri_t_h <= pump.t_h,
                predicted_eri_at=None if eri is None else ctx.at(eri[0]),
                note=self.rules.text("note", reading.note),
                stamp=self._stamp(actor),
            )
            w.uow.interrogations.add(record)
            snap = self.model.snapshot(ctx, pump, seq=seq, last_fill_at=snap.last_fill_at)
            w.uow.snapshots.put(snap)
            w.audit("record_interrogation", "interrogation", record.id, None, record)
            return record

        return self._run(actor, "record_interrogation", "implant", implant_id, body)

    def record_refill(
        self,
        actor: Actor,
        implant_id: str,
        request: RefillRequest,
        *,
        expected_version: int | None = None,
    ) -> RefillOutcome:
        """Record a refill: the residual expected by the record against the one withdrawn
        (the domain's verdict), the drug filled, any new program, the new dates.

        Raises:
            Forbidden: the actor may not refill.
            InvalidValue, ReservoirOverfill, HardLimitExceeded ...: the pump, the drug
                library or the registry refuses a value.
            StaleVersion: someone else acted on this pump since it was read.
        """

        def body(w: _Work) -> RefillOutcome:
            implant = self._implant(w.uow, implant_id)
            authorize(actor, Action.REFILL, implant.patient_id)
            implant = self._active(w.uow, implant_id, expected_version)
            when = self._when(request.at, self._tz(w.uow, implant))
            ctx, pump, snap = self._model(w.uow, implant)
            self._fill_checks(request.fill, pump.preset.kind.value, when)
            withdrawn, expected, verdict = self._judged_residual(
                ctx, pump, request.withdrawn_ml, when
            )
            rx = self._prescription(request.program, request.fill.concentration_mcg_per_ml, pump)
            reason = self.rules.text("reason", request.reason) or "refill"
            by = Authorship(
                actor.username,
                actor.role.value,
                reason,
                verified_by=_clean(request.verified_by),
                override_reason=_clean(request.override_reason),
            )
            self._bump(w, implant, actor)
            seq = self._append(
                w,
                ctx,
                pump,
                snap.seq,
                self._refill_command(request, rx),
                when,
                by,
                actor,
            )
            new_snap = self.model.snapshot(ctx, pump, seq=seq, last_fill_at=when)
            w.uow.snapshots.put(new_snap)
            visit = RefillVisitRecord(
                id=w.uow.ids.next("R"),
                implant_id=implant_id,
                at=when,
                expected_ml=expected,
                withdrawn_ml=withdrawn,
                programmed_ml=verdict.programmed_since_fill_ml,
                filled_ml=verdict.filled_ml,
                allowed_ml=verdict.allowed_ml,
                verdict=verdict.verdict.value,
                watch=verdict.watch,
                advice=verdict.advice,
                product=request.fill.product,
                lot=self.rules.name("fill.lot", request.fill.lot),
                expiry=request.fill.expiry,
                fill_volume_ml=request.fill.volume_ml,
                concentration_mcg_per_ml=request.fill.concentration_mcg_per_ml,
                bridge_bolus=request.bridge_bolus,
                low_alarm_at=new_snap.low_alarm_at,
                empty_at=new_snap.empty_at,
                earliest_dry_at=new_snap.earliest_dry_at,
                resolved=verdict.verdict is Verdict.WITHIN_TOLERANCE,
                version=1,
                stamp=self._stamp(actor),
            )
            w.uow.refills.add(visit)
            w.audit("record_refill", "refill_visit", visit.id, None, visit, reason)
            self._close_visit(w, actor, implant.patient_id, when, "refill")
            return RefillOutcome(visit, verdict, new_snap)

        return self._run(actor, "record_refill", "implant", implant_id, body)

    def _judged_residual(
        self, ctx: ModelContext, pump: Pump, withdrawn_ml: float, when: datetime
    ) -> tuple[float, float, Discrepancy]:
        """The withdrawn residual checked against the reservoir, the pump moved to ``when``,
        its expected residual and the domain's verdict: the one path of a refill's
        judgement (recorded by :meth:`record_refill`, shown by :meth:`check_residual`)."""
        withdrawn = self.rules.non_negative(
            "withdrawn_ml", withdrawn_ml, upper=pump.preset.reservoir_ml, unit="mL"
        )
        self.model.at_time(ctx, pump, when)
        verdict = judge_residual(pump, withdrawn, self.catalog.refill_tolerance)
        return withdrawn, pump.reservoir_calculated_ml, verdict

    def check_residual(
        self, actor: Actor, implant_id: str, withdrawn_ml: float, *, at: datetime | None = None
    ) -> ResidualCheck:
        """The verdict :meth:`record_refill` would give a withdrawn residual, with nothing
        recorded: what the refill form shows before the fill is entered.

        Raises:
            Forbidden: the actor may not refill.
            InvalidValue: a residual below 0 or above the reservoir, or an implant not in use.
        """
        patient_id = self._patient_of_implant(implant_id)
        self._allow(actor, Action.REFILL, what="check_residual", patient_id=patient_id)

        def body(uow: UnitOfWork) -> ResidualCheck:
            implant = self._active(uow, implant_id)
            when = self._when(at, self._tz(uow, implant))
            ctx, pump, _ = self._model(uow, implant, persist=False)
            _, expected, verdict = self._judged_residual(ctx, pump, withdrawn_ml, when)
            return ResidualCheck(implant_id, when, expected, verdict)

        return self._read(body)

    def resolve_discrepancy(
        self, actor: Actor, refill_id: str, *, expected_version: int, note: str
    ) -> RefillVisitRecord:
        """Mark a refill discrepancy as worked up (the note says what was found)."""

        def body(w: _Work) -> RefillVisitRecord:
            before = w.uow.refills.get(refill_id)
            if before is None:
                raise NotFound(f"refill {refill_id} not found")
            implant = self._implant(w.uow, before.implant_id)
            authorize(actor, Action.REFILL, implant.patient_id)
            text = self.rules.text("note", note, required=True)
            after = replace(
                before,
                resolved=True,
                version=before.version + 1,
                stamp=before.stamp.touched(self._now(), actor.username),
            )
            w.uow.refills.update(after, expected_version=expected_version)
            w.audit("resolve_discrepancy", "refill_visit", refill_id, before, after, text)
            return after

        return self._run(actor, "resolve_discrepancy", "refill_visit", refill_id, body)

    # ============================================================ programming changes

    def stage_change(
        self,
        actor: Actor,
        implant_id: str,
        request: ChangeRequest,
        *,
        expected_version: int | None = None,
    ) -> ProgrammingChange:
        """Stage a programming change and review it with the safety checks.

        A change with a blocking finding (a hard limit, a unit mix-up) is refused; one
        that passes a soft limit needs its override reason now.

        Raises:
            BlockedBySafetyCheck: a blocking finding (recorded as a refusal).
            OverrideReasonRequired: a soft limit passed without a reason.
            Forbidden: the actor may not stage changes.
        """

        def body(w: _Work) -> ProgrammingChange:
            implant = self._implant(w.uow, implant_id)
            authorize(actor, Action.STAGE_CHANGE, implant.patient_id)
            implant = self._active(w.uow, implant_id, expected_version)
            now = self._now()
            ctx, pump, _ = self._model(w.uow, implant)
            self.model.at_time(ctx, pump, now)
            command, review = self._review(ctx, pump, request, now)
            override = _clean(request.override_reason)
            refusal = _refusal(review, override)
            if refusal is not None:
                raise refusal
            change = ProgrammingChange(
                id=w.uow.ids.next("C"),
                implant_id=implant_id,
                state=ChangeState.STAGED,
                command=command_to_data(command),
                review=_review_data(review, implant.version),
                blocked=False,
                needs_verification=review.verification_required,
                override_reason=override,
                staged_by=actor.username,
                staged_at=now,
                verified_by=None,
                verified_at=None,
                committed_by=None,
                committed_at=None,
                reason=self.rules.text("reason", request.reason, required=True),
                version=1,
                stamp=self._stamp(actor),
            )
            w.uow.changes.add(change)
            w.audit("stage_change", "programming_change", change.id, None, change, change.reason)
            return change

        return self._run(actor, "stage_change", "implant", implant_id, body)

    def preview_change(
        self, actor: Actor, implant_id: str, request: ChangeRequest
    ) -> ChangePreview:
        """Review a programming change with the same safety checks as :meth:`stage_change`,
        staging nothing: the old and new program side by side and every finding, including
        the hard limits that would refuse it.

        Raises:
            Forbidden: the actor may not stage changes.
            InvalidValue, HardLimitExceeded ...: a value the pump or the library cannot
                take at all (outside what can even be reviewed).
        """
        patient_id = self._patient_of_implant(implant_id)
        self._allow(actor, Action.STAGE_CHANGE, what="preview_change", patient_id=patient_id)

        def body(uow: UnitOfWork) -> ChangePreview:
            implant = self._active(uow, implant_id, None)
            now = self._now()
            ctx, pump, _ = self._model(uow, implant, persist=False)
            self.model.at_time(ctx, pump, now)
            command, review = self._review(ctx, pump, request, now)
            refusal = _refusal(review, _clean(request.override_reason))
            history = RefillObservation.of(uow.refills.find(implant_id=implant_id))
            after, _ = self._what_if(ctx, pump, command, now, Authorship(actor.username))
            return ChangePreview(
                implant_id=implant_id,
                review=_review_data(review, implant.version),
                blocked=isinstance(refusal, BlockedBySafetyCheck),
                needs_verification=review.verification_required,
                needs_override_reason=review.needs_override_reason,
                refusal=None if refusal is None else str(refusal),
                forecast_now=self._forecast_model(uow, ctx, pump, history),
                forecast_after=None
                if after is None or refusal is not None
                else self._forecast_model(uow, ctx, after, history),
            )

        return self._read(body)

    def preview_refill(
        self, actor: Actor, implant_id: str, request: RefillRequest
    ) -> RefillPreview:
        """What :meth:`record_refill` would find and forecast, with nothing recorded: the
        residual's verdict, whether the pump and the drug library take the fill (a new
        concentration, a new program), and the forecast now and after the refill, the
        residual withdrawn already learned from.

        Raises:
            Forbidden: the actor may not refill.
            InvalidValue: a value no refill could have (a residual outside the reservoir,
                an unknown product).
        """
        patient_id = self._patient_of_implant(implant_id)
        self._allow(actor, Action.REFILL, what="preview_refill", patient_id=patient_id)

        def body(uow: UnitOfWork) -> RefillPreview:
            implant = self._active(uow, implant_id)
            when = self._when(request.at, self._tz(uow, implant))
            ctx, pump, _ = self._model(uow, implant, persist=False)
            self._fill_checks(request.fill, pump.preset.kind.value, when)
            withdrawn, _, verdict = self._judged_residual(ctx, pump, request.withdrawn_ml, when)
            history = RefillObservation.of(uow.refills.find(implant_id=implant_id))
            rx = self._prescription(request.program, request.fill.concentration_mcg_per_ml, pump)
            after, refusal = self._what_if(
                ctx, pump, self._refill_command(request, rx), when, Authorship(actor.username)
            )
            learned = (
                *history,
                RefillObservation(
                    verdict.programmed_since_fill_ml or 0.0, verdict.filled_ml or 0.0,
                    withdrawn, verdict.verdict.value,
                ),
            )  # fmt: skip
            return RefillPreview(
                implant_id=implant_id,
                at=when,
                discrepancy=verdict,
                refusal=refusal,
                forecast_now=self._forecast_model(uow, ctx, pump, history),
                forecast_after=None
                if after is None
                else self._forecast_model(uow, ctx, after, learned),
            )

        return self._read(body)

    def _what_if(
        self, ctx: ModelContext, pump: Pump, command: PumpCommand, at: datetime, by: Authorship
    ) -> tuple[Pump | None, str | None]:
        """A copy of the model given ``command`` (the model itself unchanged), or None and
        the pump's or the drug library's refusal in words."""
        trial = copy.deepcopy(pump)
        try:
            self.model.apply(ctx, trial, command, at, by)
        except ITBError as refused:
            return None, str(refused)
        return trial, None

    def _forecast_model(
        self,
        uow: UnitOfWork,
        ctx: ModelContext,
        pump: Pump,
        refills: tuple[RefillObservation, ...],
    ) -> PumpForecast | None:
        """The reservoir forecast of a model pump at its present time, against the
        patient's next booked visit (or the radar's look-ahead)."""
        at = ctx.at(pump.t_h)
        visit = min(
            (
                v.at
                for v in uow.visits.find(patient_id=ctx.patient.id, status=VisitStatus.BOOKED.value)
                if v.at >= at
            ),
            default=None,
        )
        by_at = visit or at + timedelta(days=self.rules.radar.look_ahead_days.value)
        (fc,) = forecast_pumps(
            self.catalog.forecast,
            [
                ForecastInput(
                    at, delivery_profile(pump), refills, by_at, visit is not None,
                    float(self.catalog.protocol["refill_margin_days"]),
                )
            ],
        )  # fmt: skip
        return fc

    @staticmethod
    def _refill_command(request: RefillRequest, rx: Prescription | None) -> Refill:
        """The pump command of a refill as the nurse entered it."""
        return Refill(
            request.fill.volume_ml,
            request.fill.concentration_mcg_per_ml,
            prescription=rx,
            bridge_bolus=request.bridge_bolus,
            low_reservoir_alarm_ml=request.low_reservoir_alarm_ml,
        )

    def _review(
        self, ctx: ModelContext, pump: Pump, request: ChangeRequest, at: datetime
    ) -> tuple[Reprogram, SafetyReview]:
        rx = self._prescription(request.program, pump.labelled_concentration_mcg_per_ml, pump)
        bolus_order = None
        if request.bolus_mcg is not None:
            duration = request.bolus_duration_h
            if duration is None:
                raise InvalidValue("bolus_duration_h", None, "the bolus duration, h")
            bolus_order = SingleBolus(request.bolus_mcg, duration)
        command = Reprogram(
            prescription=rx,
            low_reservoir_alarm_ml=request.low_reservoir_alarm_ml,
            bolus=bolus_order,
        )
        if command.low_reservoir_alarm_ml is not None:
            pump.validate_low_reservoir_alarm(command.low_reservoir_alarm_ml)
        population = population_for(
            self.catalog.library,
            age_years=ctx.patient.age_years(at.date()),
            origin=ctx.patient.origin,
        )
        pump.guard = self.catalog.guard(population)
        checks = SafetyChecks(
            self.catalog.safety,
            self.catalog.library,
            population,
            intended_dose_mcg_per_day=None
            if request.program is None
            else request.program.intended_dose_mcg_per_day,
        )
        session = ProgrammingSession(pump, pump.t_h, clinician="review", reason="review")
        review = stage_checked(
            session,
            checks,
            prescription=rx,
            bolus=None if bolus_order is None else bolus_order.bolus(pump),
            reason=request.reason or "programming change",
            override_reason=_clean(request.override_reason),
        )
        session.abandon(pump.t_h)
        return command, review

    def _change(self, uow: UnitOfWork, change_id: str) -> ProgrammingChange:
        c = uow.changes.get(change_id)
        if c is None:
            raise NotFound(f"programming change {change_id} not found")
        return c

    def _change_and_patient(self, uow: UnitOfWork, change_id: str) -> tuple[ProgrammingChange, str]:
        change = self._change(uow, change_id)
        return change, self._implant(uow, change.implant_id).patient_id

    def verify_change(self, actor: Actor, change_id: str) -> ProgrammingChange:
        """A second person verifies a staged change.

        Raises:
            Forbidden: the actor's role may not verify, or they staged it themselves.
            InvalidValue: the change is not staged.
        """

        def body(w: _Work) -> ProgrammingChange:
            info = w.uow.clinic.get()
            before, patient_id = self._change_and_patient(w.uow, change_id)
            authorize(
                actor,
                Action.VERIFY_CHANGE,
                patient_id,
                nurses_may_verify=bool(info and info.nurses_may_verify),
            )
            if before.state is not ChangeState.STAGED:
                raise InvalidValue(
                    "change", change_id, f"a staged change (this one is {before.state.value})"
                )
            if before.staged_by == actor.username:
                raise Forbidden(
                    f"{actor.username} staged {change_id} and may not verify it: a second person verifies"
                )
            now = self._now()
            after = replace(
                before,
                state=ChangeState.VERIFIED,
                verified_by=actor.username,
                verified_at=now,
                version=before.version + 1,
                stamp=before.stamp.touched(now, actor.username),
            )
            w.uow.changes.update(after, expected_version=before.version)
            w.audit("verify_change", "programming_change", change_id, before, after)
            return after

        return self._run(actor, "verify_change", "programming_change", change_id, body)

    def commit_change(self, actor: Actor, change_id: str) -> ProgrammingChange:
        """Program the pump with a staged (and, where needed, verified) change.

        The pump's own checks and the drug library run again on the pump as it is now.

        Raises:
            VerificationRequired: the change needs a second person's verification first.
            StaleVersion: the pump changed since the change was staged (stage it again).
        """

        def body(w: _Work) -> ProgrammingChange:
            before, patient_id = self._change_and_patient(w.uow, change_id)
            authorize(actor, Action.COMMIT_CHANGE, patient_id)
            if before.state not in (ChangeState.STAGED, ChangeState.VERIFIED):
                raise InvalidValue(
                    "change",
                    change_id,
                    f"a staged or verified change (this one is {before.state.value})",
                )
            if before.needs_verification and before.verified_by is None:
                reasons = "; ".join(str(r) for r in before.review.get("verification", []))
                raise VerificationRequired(
                    f"commit refused: a second person must verify {change_id} first ({reasons})"
                )
            implant = self._active(w.uow, before.implant_id)
            if implant.version != before.review.get("implant_version"):
                raise StaleVersion(
                    f"commit refused: the pump of {implant.id} changed after {change_id} was "
                    "staged (a refill or another change); stage it again"
                )
            now = self._now()
            ctx, pump, snap = self._model(w.uow, implant)
            command = command_from_data(before.command)
            staged_by = w.uow.users.get(before.staged_by)
            by = Authorship(
                before.staged_by,
                staged_by.role if staged_by else "",
                before.reason,
                verified_by=before.verified_by,
                override_reason=before.override_reason,
            )
            self._bump(w, implant, actor)
            seq = self._append(w, ctx, pump, snap.seq, command, now, by, actor)
            w.uow.snapshots.put(
                self.model.snapshot(ctx, pump, seq=seq, last_fill_at=snap.last_fill_at)
            )
            after = replace(
                before,
                state=ChangeState.COMMITTED,
                committed_by=actor.username,
                committed_at=now,
                version=before.version + 1,
                stamp=before.stamp.touched(now, actor.username),
            )
            w.uow.changes.update(after, expected_version=before.version)
            w.audit("commit_change", "programming_change", change_id, before, after, before.reason)
            return after

        return self._run(actor, "commit_change", "programming_change", change_id, body)

    def cancel_change(self, actor: Actor, change_id: str, *, reason: str) -> ProgrammingChange:
        """Cancel a staged or verified change."""

        def body(w: _Work) -> ProgrammingChange:
            before, patient_id = self._change_and_patient(w.uow, change_id)
            authorize(actor, Action.STAGE_CHANGE, patient_id)
            if before.state not in (ChangeState.STAGED, ChangeState.VERIFIED):
                raise InvalidValue(
                    "change",
                    change_id,
                    f"a staged or verified change (this one is {before.state.value})",
                )
            now = self._now()
            text = self.rules.text("reason", reason, required=True)
            after = replace(
                before,
                state=ChangeState.CANCELLED,
                version=before.version + 1,
                stamp=before.stamp.touched(now, actor.username),
            )
            w.uow.changes.update(after, expected_version=before.version)
            w.audit("cancel_change", "programming_change", change_id, before, after, text)
            return after

        return self._run(actor, "cancel_change", "programming_change", change_id, body)

    def changes(
        self, actor: Actor, *, open_only: bool = True, modified_since: datetime | None = None
    ) -> list[ProgrammingChange]:
        """Programming changes (default: those staged or verified, awaiting commit)."""
        self._allow(actor, Action.READ, what="list_changes")
        rows = self._read(lambda uow: uow.changes.all())
        if open_only:
            rows = [c for c in rows if c.state in (ChangeState.STAGED, ChangeState.VERIFIED)]
        return _since(rows, modified_since)

    def change(self, actor: Actor, change_id: str) -> ProgrammingChange:
        """One programming change."""

        def body(uow: UnitOfWork) -> ProgrammingChange:
            change, patient_id = self._change_and_patient(uow, change_id)
            action = Action.READ if actor.role.is_staff else Action.READ_OWN
            authorize(actor, action, patient_id)
            return change

        try:
            return self._read(body)
        except (NotFound, Forbidden) as exc:
            self._refused(actor, "read", "programming_change", change_id, exc)
            raise

    def refills(
        self,
        actor: Actor,
        *,
        open_only: bool = False,
        modified_since: datetime | None = None,
        implant_id: str | None = None,
    ) -> list[RefillVisitRecord]:
        """Refill visits (of one pump, or every pump; ``open_only``: unresolved discrepancies),
        oldest first."""
        self._allow(actor, Action.READ, what="list_refills")
        equals: dict[str, object] = {} if implant_id is None else {"implant_id": implant_id}
        if open_only:
            equals["resolved"] = False
        rows = self._read(lambda uow: uow.refills.find(**equals))
        return sorted(_since(rows, modified_since), key=lambda r: r.at)

    # ============================================================ visits and symptoms

    def book_visit(
        self, actor: Actor, patient_id: str, *, at: datetime, kind: str, note: str = ""
    ) -> VisitRecord:
        """Book a visit (refill, check-up ...)."""

        def body(w: _Work) -> VisitRecord:
            authorize(actor, Action.BOOK_VISIT, patient_id)
            p = self._patient(w.uow, patient_id)
            when = (
                at if at.tzinfo is not None else WallClock(at, p.timezone).instant(at, field="at")
            )
            now = self._now()
            if when < now - timedelta(minutes=self.rules.future_tolerance_minutes.value):
                raise InvalidValue(
                    "at",
                    at.isoformat(timespec="minutes"),
                    f"a time from now ({now.isoformat(timespec='minutes')}) on: a booking is for the future",
                )
            v = VisitRecord(
                id=w.uow.ids.next("V"),
                patient_id=patient_id,
                at=when,
                kind=self.rules.choice("kind", kind, VISIT_KINDS),
                status=VisitStatus.BOOKED,
                note=self.rules.text("note", note),
                version=1,
                stamp=self._stamp(actor),
            )
            w.uow.visits.add(v)
            w.audit("book_visit", "visit", v.id, None, v)
            return v

        return self._run(actor, "book_visit", "patient", patient_id, body)

    def set_visit_status(
        self, actor: Actor, visit_id: str, *, status: str, expected_version: int, note: str = ""
    ) -> VisitRecord:
        """Mark a booked visit done, missed or cancelled."""

        def body(w: _Work) -> VisitRecord:
            before = w.uow.visits.get(visit_id)
            if before is None:
                raise NotFound(f"visit {visit_id} not found")
            authorize(actor, Action.BOOK_VISIT, before.patient_id)
            new = VisitStatus(
                self.rules.choice("status", status, tuple(s.value for s in VisitStatus))
            )
            after = replace(
                before,
                status=new,
                note=self.rules.text("note", note) or before.note,
                version=before.version + 1,
                stamp=before.stamp.touched(self._now(), actor.username),
            )
            w.uow.visits.update(after, expected_version=expected_version)
            w.audit("set_visit_status", "visit", visit_id, before, after, note)
            return after

        return self._run(actor, "set_visit_status", "visit", visit_id, body)

    def _close_visit(
        self, w: _Work, actor: Actor, patient_id: str, at: datetime, kind: str
    ) -> None:
        """A booked visit of this kind within a day of ``at`` is done."""
        for v in w.uow.visits.find(patient_id=patient_id, status=VisitStatus.BOOKED.value):
            if v.kind == kind and abs((v.at - at).total_seconds()) <= 86400:
                after = replace(
                    v,
                    status=VisitStatus.DONE,
                    version=v.version + 1,
                    stamp=v.stamp.touched(self._now(), actor.username),
                )
                w.uow.visits.update(after, expected_version=v.version)
                w.audit("set_visit_status", "visit", v.id, v, after, f"{kind} recorded")

    def visits(
        self,
        actor: Actor,
        *,
        patient_id: str | None = None,
        modified_since: datetime | None = None,
        booked_only: bool = False,
    ) -> list[VisitRecord]:
        """Visits (of one patient, or every patient the actor may see; ``booked_only``: the
        visits still booked), soonest first."""
        equals: dict[str, object] = {"status": VisitStatus.BOOKED.value} if booked_only else {}
        if patient_id is not None or not actor.role.is_staff:
            pid = patient_id or actor.patient_id
            self._authorize_read(actor, pid)
            rows = self._read(lambda uow: uow.visits.find(patient_id=pid, **equals))
        else:
            self._allow(actor, Action.READ, what="list_visits")
            rows = self._read(lambda uow: uow.visits.find(**equals))
        return sorted(_since(rows, modified_since), key=lambda v: v.at)

    def record_symptoms(
        self, actor: Actor, patient_id: str, *, signs: Iterable[str], at: datetime | None = None
    ) -> SymptomOutcome:
        """Record reported signs with the domain's triage (patients and caregivers may report
        their own)."""
        reported = list(signs)

        def body(w: _Work) -> SymptomOutcome:
            authorize(actor, Action.RECORD_SYMPTOMS, patient_id)
            self._patient(w.uow, patient_id)
            result = triage(self.catalog.triage, reported)
            rec = SymptomRecord(
                id=w.uow.ids.next("Y"),
                patient_id=patient_id,
                at=self._when(at, self._patient(w.uow, patient_id).timezone),
                signs=result.signs,
                urgency=result.urgency.value,
                causes=tuple(c.cause for c in result.causes),
                actions=result.actions,
                stamp=self._stamp(actor),
            )
            w.uow.symptoms.add(rec)
            w.audit("record_symptoms", "symptoms", rec.id, None, rec)
            return SymptomOutcome(rec, result)

        return self._run(actor, "record_symptoms", "patient", patient_id, body)

    # ============================================================ card

    def wallet_card(self, actor: Actor, patient_id: str, *, on: date | None = None) -> WalletCard:
        """The patient's wallet card, from the record (pump, drug, dose, dates, contacts)."""

        def body(w: _Work) -> WalletCard:
            authorize(actor, Action.ISSUE_CARD, patient_id)
            p = self._patient(w.uow, patient_id)
            info = w.uow.clinic.get()
            if info is None:
                raise InvalidValue("registry", "not initialised", "itb clinic init first")
            implant = next(
                (
                    i
                    for i in w.uow.implants.find(patient_id=patient_id)
                    if i.status is ImplantStatus.ACTIVE
                ),
                None,
            )
            if implant is None:
                raise InvalidValue("patient", patient_id, "a patient with an implant in use")
            ctx, pump, snap = self._model(w.uow, implant)
            today = on or self._now().date()
            visits = sorted(
                (
                    v
                    for v in w.uow.visits.find(
                        patient_id=patient_id, status=VisitStatus.BOOKED.value
                    )
                    if v.kind == "refill" and v.at.date() >= today
                ),
                key=lambda v: v.at,
            )
            contacts = tuple(
                Contact(c.name, c.phone, c.relation)
                for c in w.uow.contacts.find(patient_id=patient_id)
            )
            if not contacts:
                raise InvalidValue(
                    "contacts", [], "at least one contact on the record (itb clinic contact add)"
                )
            next_refill = (
                visits[0].at.date()
                if visits
                else (snap.low_alarm_at.date() if snap.low_alarm_at else today)
            )
            data = CardData(
                patient_name=p.name,
                pump_model=ctx.preset.label,
                pump_kind=ctx.preset.kind.value,
                drug="Baclofen injection (intrathecal)",
                concentration_mcg_per_ml=snap.concentration_mcg_per_ml,
                daily_dose_mcg_per_day=snap.dose_mcg_per_day or 0.0,
                program_summary=pump.status().prescription,
                next_refill_date=next_refill,
                implanting_clinic=Contact(info.name, info.phone, "ITB clinic"),
                emergency_contacts=contacts,
                issued_on=today,
                low_reservoir_alarm_date=snap.low_alarm_at.date() if snap.low_alarm_at else None,
                replacement_due_date=snap.eri_at.date() if snap.eri_at else None,
                implant_date=implant.implanted_at.date(),
            )
            card = build_wallet_card(data, self.catalog.card)
            w.audit("issue_card", "patient", patient_id, None, {"issued_on": today.isoformat()})
            return card

        return self._run(actor, "issue_card", "patient", patient_id, body)

    # ============================================================ exchange

    def patient_files(self, actor: Actor, patient_id: str | None = None) -> list[PatientFile]:
        """Everything the registry holds on one patient, or on every patient (None), for an
        export.

        Raises:
            NotFound: no such patient (or, for a patient or caregiver, not theirs).
        """
        if patient_id is None:
            self._allow(actor, Action.READ, what="the whole registry")
        else:
            self._authorize_read(actor, patient_id)

        def body(uow: UnitOfWork) -> list[PatientFile]:
            if patient_id is not None:
                return [self._patient_file(uow, self._patient(uow, patient_id))]
            return [self._patient_file(uow, p) for p in by_id(uow.patients.all())]

        return self._audited_read(
            actor, "export", "patient" if patient_id else "registry", patient_id or "all", body
        )

    @staticmethod
    def _patient_file(uow: UnitOfWork, p: PatientRecord) -> PatientFile:
        implants = by_id(uow.implants.find(patient_id=p.id))

        def per_implant(repo: Any) -> tuple[Any, ...]:
            return tuple(x for i in implants for x in by_id(repo.find(implant_id=i.id)))

        return PatientFile(
            patient=p,
            contacts=by_id(uow.contacts.find(patient_id=p.id)),
            assessments=by_id(uow.assessments.find(patient_id=p.id)),
            implants=implants,
            surgeries=per_implant(uow.surgeries),
            commands=tuple(e for i in implants for e in uow.commands.for_implant(i.id)),
            interrogations=per_implant(uow.interrogations),
            refills=per_implant(uow.refills),
            changes=per_implant(uow.changes),
            visits=by_id(uow.visits.find(patient_id=p.id)),
            symptoms=by_id(uow.symptoms.find(patient_id=p.id)),
        )

    def import_patient_files(self, actor: Actor, files: Sequence[PatientFile]) -> dict[str, int]:
        """Store whole patient records (an import), keeping their identifiers, stamps and
        versions; each implant's pump model is rebuilt from its command log, so the pump
        and the drug library judge every imported command as they judged it first. All
        or nothing: one bad record refuses the whole import, naming it.

        Raises:
            Forbidden: the actor may not import records.
            InvalidValue: a bad value (named by its record and field), an identifier or
                medical record number already in the registry, or records that do not
                belong together.
            HardLimitExceeded ...: an imported command the pump or the library refuses.
        """

        def body(w: _Work) -> dict[str, int]:
            authorize(actor, Action.IMPORT_RECORDS)
            totals: dict[str, int] = {}
            seen_mrn: set[str] = set()
            for f in files:
                for kind, n in self._import_file(w, f, seen_mrn).items():
                    totals[kind] = totals.get(kind, 0) + n
            return totals

        return self._run(actor, "import_records", "registry", "import", body)

    def import_clinic_rows(
        self,
        actor: Actor,
        rows: Sequence[ClinicRow],
        *,
        refused: Sequence[RowProblem] = (),
        valid_only: bool = False,
    ) -> ImportReport:
        """Register an existing clinic's patients and their pumps, row by row, through
        the same use cases as one at a time (register a patient, record an implant with
        its fill and program: the pump and the drug library judge each).

        Every row is first tried alone in a unit of work that is rolled back, so each bad
        row is reported with its line; ``refused`` are rows the file reader already
        refused. Nothing is written if any row is refused, unless ``valid_only``: then
        the valid rows are registered in one transaction and the report says which were
        not.

        Raises:
            Forbidden: the actor may not import records.
        """
        try:
            authorize(actor, Action.IMPORT_RECORDS)
        except ITBError as exc:  # a refusal is audited like any other
            self._refused(actor, "import_clinic_rows", "registry", "rows", exc)
            raise
        problems = list(refused)
        lines_of: dict[str, list[int]] = {}
        for row in rows:
            lines_of.setdefault(row.patient.mrn.strip(), []).append(row.line)
        for row in rows:
            first = lines_of[row.patient.mrn.strip()][0]
            if first != row.line:
                problems.append(
                    RowProblem(row.line, f"mrn = {row.patient.mrn!r} is not allowed; allowed: "
                               f"a medical record number not used above (line {first})")
                )  # fmt: skip
                continue
            try:
                with self._uow() as uow:  # never committed: a trial of this row alone
                    self._import_row(_Work(uow, []), actor, row)
            except ITBError as exc:
                problems.append(RowProblem(row.line, str(exc)))
        problems.sort(key=lambda p: p.line)
        bad = {p.line for p in problems}
        good = [r for r in rows if r.line not in bad]
        total = len(rows) + len(refused)
        if (problems and not valid_only) or not good:
            return ImportReport(total, (), tuple(problems))

        def body(w: _Work) -> tuple[tuple[int, str], ...]:
            done = tuple((row.line, self._import_row(w, actor, row)) for row in good)
            w.audit("import_clinic_rows", "registry", "rows", None,
                    {"imported": len(done), "refused": len(problems)})  # fmt: skip
            return done

        done = self._run(actor, "import_clinic_rows", "registry", "rows", body)
        return ImportReport(total, done, tuple(problems))

    def _import_row(self, w: _Work, actor: Actor, row: ClinicRow) -> str:
        p = self._register_in(w, actor, row.patient)
        if row.implant is not None:
            self._record_implant_in(w, actor, p.id, row.implant)
        return p.id

    def _import_file(self, w: _Work, f: PatientFile, seen_mrn: set[str]) -> dict[str, int]:
        uow = w.uow
        p = f.patient
        where = f"Patient/{p.id}"
        if uow.patients.get(p.id) is not None:
            raise InvalidValue(f"{where}.id", p.id, "an identifier not yet in this registry")
        if p.mrn in seen_mrn or uow.patients.find(mrn=p.mrn):
            raise InvalidValue(f"{where}.mrn", p.mrn, "a medical record number not yet registered")
        seen_mrn.add(p.mrn)
        fields = {k: getattr(p, k) for k in NewPatient.__dataclass_fields__}
        try:
            checked = self._check_patient(NewPatient(**fields))
        except InvalidValue as exc:
            raise exc.within(where) from None
        if replace(p, **checked) != p:
            changed = next(k for k, v in checked.items() if getattr(p, k) != v)
            raise InvalidValue(f"{where}.{changed}", getattr(p, changed), repr(checked[changed]))
        uow.patients.add(p)
        uow.ids.reserve(p.id)
        implant_ids = {i.id for i in f.implants}
        for i in f.implants:
            self.catalog.preset(i.pump_preset, field=f"Implant/{i.id}.pump_preset")
            self.catalog.catheter(
                i.catheter_family, i.catheter_length_cm, field=f"Implant/{i.id}.catheter"
            )
        for e in f.commands:
            if e.implant_id not in implant_ids:
                raise InvalidValue(
                    f"Command {e.implant_id}#{e.seq}.implant_id",
                    e.implant_id,
                    "one of this patient's implants",
                )
        # (kind as the error names it, records, the reference to this patient, repository)
        groups: tuple[tuple[str, tuple[Any, ...], str, set[str], Any], ...] = (
            ("Contact", f.contacts, "patient_id", {p.id}, uow.contacts),
            ("Assessment", f.assessments, "patient_id", {p.id}, uow.assessments),
            ("Implant", f.implants, "patient_id", {p.id}, uow.implants),
            ("Surgery", f.surgeries, "implant_id", implant_ids, uow.surgeries),
            ("Interrogation", f.interrogations, "implant_id", implant_ids, uow.interrogations),
            ("Refill", f.refills, "implant_id", implant_ids, uow.refills),
            ("Change", f.changes, "implant_id", implant_ids, uow.changes),
            ("Visit", f.visits, "patient_id", {p.id}, uow.visits),
            ("Symptom", f.symptoms, "patient_id", {p.id}, uow.symptoms),
        )
        for kind, records, ref, allowed, repo in groups:
            for record in records:
                value = getattr(record, ref)
                if value not in allowed:
                    raise InvalidValue(
                        f"{kind}/{record.id}.{ref}",
                        value,
                        f"one of this patient's ({', '.join(sorted(allowed)) or 'none'})",
                    )
                if repo.get(record.id) is not None:
                    raise InvalidValue(
                        f"{kind}/{record.id}.id",
                        record.id,
                        "an identifier not yet in this registry",
                    )
                repo.add(record)
                uow.ids.reserve(record.id)
            if kind == "Implant":  # the log after its implants, before what refers to them
                for e in f.commands:
                    uow.commands.append(e)
        for i in f.implants:
            try:
                self._model(uow, i)  # the log replayed: the pump and the library judge it
            except ITBError as exc:
                raise exc.within(f"the command log of Implant/{i.id}") from None
        counts = f.counts()
        w.audit("import_patient", "patient", p.id, None, counts)
        return counts

    # ============================================================ radar

    def radar(self, actor: Actor, *, on: datetime | None = None) -> list[RadarRow]:
        """Every pump in use against its next booked visit, most urgent first."""
        self._allow(actor, Action.READ, what="radar")
        now = self._now() if on is None else on
        if now.tzinfo is None:
            raise InvalidValue("on", now.isoformat(), "a date-time with a time zone")

        def body(uow: UnitOfWork) -> list[RadarRow]:
            pumps = []
            for who, implant_id, preset, snap, next_visit, unresolved, refills in self._radar_facts(
                uow, now
            ):
                if snap is None:  # never modelled, or a layout of another version
                    _, _, snap = self._model(uow, self._implant(uow, implant_id))
                pumps.append((who, implant_id, preset, snap, next_visit, unresolved, refills))
            forecasts = self._forecasts(
                now, [(p[1], p[3], p[4], p[6]) for p in pumps], everyone=True
            )
            return sort_radar(
                [
                    self._radar_row(who, iid, preset, snap, now, visit, unresolved, fc)
                    for (who, iid, preset, snap, visit, unresolved, _), fc in zip(
                        pumps, forecasts, strict=True
                    )
                ]
            )

        return self._audited_read(actor, "radar", "registry", "radar", body)

    def _radar_facts(self, uow: UnitOfWork, now: datetime) -> tuple[_RadarPump, ...]:
        """The radar's facts for ``now``, kept from the last read while no booked visit has
        passed since: as they were if the registry's generation has not moved, with the
        patients written since read again if it has (every writer moves the generation
        and logs whose rows it wrote, so a write from another process is seen at the next
        read), all read again otherwise."""
        generation = uow.radar.generation()
        cache = self._radar_cache
        if (
            generation is not None
            and cache is not None
            and cache.fits(now)
            and generation >= cache.generation  # not a registry put back to an older state
        ):
            if generation == cache.generation:
                return cache.pumps
            changed = uow.radar.changed_since(cache.generation)
            if changed is not None and len(changed) <= _RADAR_PATCH_MAX:
                by_patient = {k: v for k, v in cache.by_patient.items() if k not in changed}
                if changed:
                    self._add_radar_pumps(by_patient, uow.radar.facts(now, changed))
                self._radar_cache = _RadarCache.of(generation, now, by_patient)
                return self._radar_cache.pumps
        everyone: dict[str, tuple[_RadarPump, ...]] = {}
        self._add_radar_pumps(everyone, uow.radar.facts(now))
        if generation is None:
            return tuple(p for mine in everyone.values() for p in mine)
        self._radar_cache = _RadarCache.of(generation, now, everyone)
        return self._radar_cache.pumps

    @staticmethod
    def _add_radar_pumps(
        into: dict[str, tuple[_RadarPump, ...]], facts: Iterable[RadarFacts]
    ) -> None:
        """Each pump's radar facts added under its patient."""
        no_risk: tuple[str, ...] = ()
        for f in facts:
            risk = (
                withdrawal_risk_factors(
                    f.sci_at_or_above_t6, f.communication_difficulty, f.previous_withdrawal
                )
                if f.sci_at_or_above_t6 or f.communication_difficulty or f.previous_withdrawal
                else no_risk
            )
            pump: _RadarPump = (
                _RadarPatient(f.patient_id, f"{f.given_name} {f.family_name}", risk),
                f.implant_id, f.pump_preset, f.snapshot, f.next_visit_at,
                f.unresolved_discrepancies, f.refills,
            )  # fmt: skip
            into[f.patient_id] = (*into.get(f.patient_id, ()), pump)

    def _radar_row(
        self,
        p: _RadarPatient | PatientRecord,
        implant_id: str,
        preset: str,
        snap: PumpSnapshot,
        now: datetime,
        next_visit_at: datetime | None,
        unresolved: int,
        forecast: PumpForecast | None,
    ) -> RadarRow:
        windows = self.rules.radar
        label = self._labels.get(preset)
        if label is None:
            label = self._labels[preset] = self.catalog.preset(preset).label
        return assess_pump(
            RadarInput(
                patient_id=p.id,
                patient_name=p.name,
                implant_id=implant_id,
                pump_label=label,
                running=snap.running,
                stop_reason=snap.stop_reason,
                reservoir_calculated_ml=snap.reservoir_calculated_ml,
                low_alarm_at=snap.low_alarm_at,
                empty_at=snap.empty_at,
                earliest_dry_at=snap.earliest_dry_at,
                stability_until=snap.stability_until,
                eri_at=snap.eri_at,
                eri_reached=snap.eri_reached or (snap.eri_at is not None and snap.eri_at <= now),
                next_visit_at=next_visit_at,
                active_alarms=snap.active_alarms,
                critical_alarms=snap.critical_alarms,
                unresolved_discrepancies=unresolved,
                refill_margin_days=self.catalog.protocol["refill_margin_days"],
                withdrawal_risk=p.withdrawal_risk,
                forecast=forecast,
            ),
            now=now,
            due_window_days=windows.due_window_days.value,
            look_ahead_days=windows.look_ahead_days.value,
            battery_window_days=windows.battery_window_days.value,
            forecast_rules=self.catalog.forecast,
        )

    def _forecasts(
        self,
        now: datetime,
        pumps: Sequence[tuple[str, PumpSnapshot, datetime | None, tuple[RefillObservation, ...]]],
        *,
        everyone: bool = False,
    ) -> list[PumpForecast | None]:
        """The reservoir forecast of each ``(implant, snapshot, next visit, refills)``, kept
        between reads while those facts (and, without a visit, the look-ahead's end) stay
        the same; the rest computed together in one vectorised pass. ``everyone``: these
        are all the pumps in use (the kept forecasts of others are dropped)."""
        look_ahead = timedelta(days=self.rules.radar.look_ahead_days.value)
        margin = float(self.catalog.protocol["refill_margin_days"])
        kept = self._forecast_cache
        out: list[PumpForecast | None] = []
        keys, todo = [], []
        for k, (implant_id, snap, visit, refills) in enumerate(pumps):
            # without a visit, to the look-ahead's end at the start of its hour: the same
            # forecast is kept within the hour (90 days on, an hour moves P(dry) by nothing
            # a clinic would act on)
            by_at = (
                visit
                if visit is not None
                else (now + look_ahead).replace(minute=0, second=0, microsecond=0)
            )
            key = (implant_id, snap.seq, snap.at, by_at, refills)
            keys.append(key)
            hit = kept.get(implant_id)
            if hit is not None and hit[0] == key:
                out.append(hit[1])
                continue
            out.append(None)
            profile = None if snap.profile is None else DeliveryProfile.from_data(snap.profile)
            todo.append(
                (k, ForecastInput(snap.at, profile, refills, by_at, visit is not None, margin))
            )
        for (k, _), fc in zip(
            todo, forecast_pumps(self.catalog.forecast, [it for _, it in todo]), strict=True
        ):
            out[k] = fc
        fresh: dict[str, tuple[object, PumpForecast | None]] = {
            key[0]: (key, fc) for key, fc in zip(keys, out, strict=True)
        }
        self._forecast_cache = fresh if everyone else {**kept, **fresh}
        return out

    def issue_calendar_feed(self, actor: Actor, patient_id: str) -> str:
        """A new calendar subscription address for a patient's refill reminders: its
        token (shown once; only its hash is kept). An earlier address stops working.

        Raises:
            Forbidden, NotFound: the actor may not (a patient or caregiver: only their own;
                a viewer: not at all).
        """

        def body(w: _Work) -> str:
            self._authorize_feed(actor, patient_id)
            self._patient(w.uow, patient_id)
            revoked = w.uow.calendar_feeds.delete_for_patient(patient_id)
            token = new_token()
            w.uow.calendar_feeds.add(
                CalendarFeed(token_hash(token), patient_id, self._now(), actor.username)
            )
            w.audit("issue_calendar_feed", "patient", patient_id, None, {"revoked": revoked})
            return token

        return self._run(actor, "issue_calendar_feed", "patient", patient_id, body)

    def revoke_calendar_feed(self, actor: Actor, patient_id: str) -> int:
        """Stop a patient's calendar subscription address; how many were revoked."""

        def body(w: _Work) -> int:
            self._authorize_feed(actor, patient_id)
            self._patient(w.uow, patient_id)
            revoked = w.uow.calendar_feeds.delete_for_patient(patient_id)
            w.audit("revoke_calendar_feed", "patient", patient_id, None, {"revoked": revoked})
            return revoked

        return self._run(actor, "revoke_calendar_feed", "patient", patient_id, body)

    @staticmethod
    def _authorize_feed(actor: Actor, patient_id: str) -> None:
        """A patient or caregiver for their own record; on the staff, those who book
        visits (a viewer reads, and makes no addresses)."""
        if actor.role in (Role.PATIENT, Role.CAREGIVER):
            authorize(actor, Action.ISSUE_CARD, patient_id)
        else:
            authorize(actor, Action.BOOK_VISIT, patient_id)

    def feed_reminders(self, token: str) -> PatientReminders:
        """What a calendar subscription address shows: the patient's refill reminders,
        read with the patient's own access and nothing more.

        Raises:
            NotFound: no such address, or it was revoked.
        """
        feed = self._read(lambda uow: uow.calendar_feeds.get(token_hash(token)))
        if feed is None:
            raise NotFound("this calendar address is unknown or was revoked")
        reader = Actor(f"calendar feed of {feed.patient_id}", Role.PATIENT, feed.patient_id)
        return self.reminders(reader, feed.patient_id)

    def clinic_visits(
        self, actor: Actor
    ) -> tuple[ClinicInfo | None, list[tuple[VisitRecord, str]]]:
        """Every booked visit from now on, with the patient's name (the clinic's calendar).

        Raises:
            Forbidden: a patient or caregiver (staff only).
        """
        self._allow(actor, Action.READ, what="the clinic's calendar")
        now = self._now()

        def body(uow: UnitOfWork) -> tuple[ClinicInfo | None, list[tuple[VisitRecord, str]]]:
            names = {p.id: p.name for p in uow.patients.all()}
            booked = [
                (v, names.get(v.patient_id, v.patient_id))
                for v in uow.visits.find(status=VisitStatus.BOOKED.value)
                if v.at >= now
            ]
            return uow.clinic.get(), sorted(booked, key=lambda x: (x[0].at, x[0].id))

        return self._audited_read(actor, "clinic_calendar", "registry", "visits", body)

    def reminders(self, actor: Actor, patient_id: str) -> PatientReminders:
        """What the calendar of refill reminders holds for one patient: the booked visits
        ahead, the pump's radar row (its refill-by date), and when to alert."""
        self._authorize_read(actor, patient_id)
        now = self._now()

        def body(uow: UnitOfWork) -> PatientReminders:
            p = self._patient(uow, patient_id)
            visits = sorted(
                (
                    v
                    for v in uow.visits.find(patient_id=patient_id, status=VisitStatus.BOOKED.value)
                    if v.at >= now
                ),
                key=lambda v: v.at,
            )
            implant = next(
                (
                    i
                    for i in uow.implants.find(patient_id=patient_id)
                    if i.status is ImplantStatus.ACTIVE
                ),
                None,
            )
            row = None
            if implant is not None:
                snap = uow.snapshots.get(implant.id)
                if snap is None:
                    _, _, snap = self._model(uow, implant)
                refills = list(uow.refills.find(implant_id=implant.id))
                unresolved = sum(1 for r in refills if not r.resolved)
                visit = visits[0].at if visits else None
                (fc,) = self._forecasts(
                    now, [(implant.id, snap, visit, RefillObservation.of(refills))]
                )
                row = self._radar_row(
                    p, implant.id, implant.pump_preset, snap, now, visit, unresolved, fc
                )
            info = uow.clinic.get()
            return PatientReminders(
                patient=p,
                clinic_name=info.name if info else "ITB clinic",
                clinic_phone=info.phone if info else "",
                visits=tuple(visits),
                radar=row,
                policy=self.rules.reminders,
                made_at=now,
            )

        return self._audited_read(actor, "reminders", "patient", patient_id, body)

    # ============================================================ audit

    def verify_audit(self, actor: Actor, *, checkpoint: Checkpoint | None = None) -> ChainCheck:
        """Walk the audit chain; name the first broken entry."""
        self._allow(actor, Action.VERIFY_AUDIT, what="verify_audit")

        def body(uow: UnitOfWork) -> ChainCheck:
            return verify_chain(
                uow.audit.entries(), checkpoint=checkpoint, head=uow.audit.recorded_head()
            )

        return self._read(body)

    def audit_trail(
        self, actor: Actor, *, entity: str | None = None, entity_id: str | None = None
    ) -> list[AuditEntry]:
        """Audit entries (all, or those about one record)."""
        self._allow(actor, Action.VERIFY_AUDIT, what="audit_trail")
        if entity is not None and entity_id is not None:
            return self._read(lambda uow: uow.audit.for_entity(entity, entity_id))
        return self._read(lambda uow: list(uow.audit.entries()))

    def note_backup(self, actor: Actor, *, what: str) -> None:
        """Record (and allow) a backup or a restore by ``actor``."""

        def body(w: _Work) -> None:
            authorize(actor, Action.BACKUP)
            w.audit(what, "registry", "backup", None, {"at": self._now().isoformat()})

        self._run(actor, what, "registry", "backup", body)


R = TypeVar("R", PatientRecord, ProgrammingChange, RefillVisitRecord, VisitRecord)


def _since(rows: list[R], since: datetime | None) -> list[R]:
    """The records changed at or after ``since`` (aware), all when None."""
    if since is None:
        return rows
    if since.tzinfo is None:
        raise InvalidValue("modified_since", since.isoformat(), "a date-time with a time zone")
    return [r for r in rows if r.stamp.modified_at >= since]


def _refusal(
    review: SafetyReview, override_reason: str | None
) -> BlockedBySafetyCheck | OverrideReasonRequired | None:
    """Why a reviewed change cannot be staged (None: it can): a blocking finding, or a soft
    limit passed without an override reason. Staging raises it; a preview shows it."""
    blocks = [f for f in review.findings if f.severity == "block"]
    if blocks:
        more = f" (+{len(blocks) - 1} more)" if len(blocks) > 1 else ""
        return BlockedBySafetyCheck(f"change refused: {blocks[0].message}{more}")
    if review.needs_override_reason and not override_reason:
        first = next(f for f in review.findings if f.needs_override_reason)
        return OverrideReasonRequired(
            f"change refused: {first.message}; give an override reason to proceed"
        )
    return None


def _day_profile(program: object) -> tuple[tuple[float, float], ...]:
    if not isinstance(program, Flex):
        return ()
    return tuple((step.start_h, step.rate_mcg_per_h) for step in program.days[0])


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    out = text.strip()
    return out or None


def _review_data(review: SafetyReview, implant_version: int) -> dict[str, Any]:
    return {
        "implant_version": implant_version,
        "findings": [plain(f) for f in review.findings],
        "verification": [r.text for r in review.verification],
        "rows": [plain(r) for r in review.rows],
        "blocked": review.blocked,
    }
