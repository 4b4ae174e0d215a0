"""What the clinic keeps, as frozen records (the clinic's view, never the simulator's truth).

Every record carries who created and last changed it and when (server-stamped,
UTC), and the records people edit carry a ``version`` for optimistic locking:
a change names the version it was made from and is refused when someone else
changed the record first.

A pump's settings are not columns: each implant keeps its **command log** —
the domain's pump commands (:mod:`itb.domain.pump.commands`) in order, with who
entered and verified each — and "the pump now" is computed by replaying it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from functools import cache
from typing import Any

from itb.domain.clinical.complications import Bridge, ComplicationKind
from itb.domain.errors import InvalidValue
from itb.domain.patient.model import Cause

__all__ = [
    "CAUSES",
    "SPASTICITY_SCALE",
    "AssessmentRecord",
    "ChangeState",
    "ClinicInfo",
    "CommandEntry",
    "ComplicationRecord",
    "ComplicationStatus",
    "ContactRecord",
    "ImplantRecord",
    "ImplantStatus",
    "InterrogationRecord",
    "PatientRecord",
    "ProgrammingChange",
    "PumpSnapshot",
    "RefillVisitRecord",
    "SessionRecord",
    "Stamp",
    "SurgeryRecord",
    "SymptomRecord",
    "UserAccount",
    "VisitRecord",
    "VisitStatus",
    "plain",
    "withdrawal_risk_factors",
]

CAUSES: tuple[str, ...] = tuple(c.value for c in Cause)
"""The causes of spasticity a patient can be recorded with (the patient model's vocabulary)."""

SPASTICITY_SCALE: tuple[float, float] = (0.0, 4.0)
"""The range of the follow-up scores: the Modified Ashworth Scale, 0-4 (grade 1+ coded
between 1 and 2) [C47], and the Penn Spasm Frequency Scale, 0-4 [C48]. A definition of
the scales, not a clinical threshold."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """Who created a record and when, who last changed it and when (UTC)."""

    created_at: datetime
    created_by: str
    modified_at: datetime
    modified_by: str

    @staticmethod
    def new(at: datetime, by: str) -> Stamp:
        """A record made now by ``by``."""
        return Stamp(at, by, at, by)

    def touched(self, at: datetime, by: str) -> Stamp:
        """The stamp after a change now by ``by``."""
        return Stamp(self.created_at, self.created_by, at, by)


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient: identifiers, cause and origin of spasticity, withdrawal-risk factors.

    Attributes:
        id: the registry's identifier (``P0001``).
        mrn: the hospital's medical record number (unique).
        given_name, family_name: names.
        birth_date: date of birth.
        sex: as recorded (``female``, ``male``, ``other``, ``unknown``).
        weight_kg: body weight, kg.
        cause: the cause of spasticity (one of :data:`CAUSES`).
        injury_level: the spinal level of a spinal cord injury (``T4``), if any.
        sci_at_or_above_t6, communication_difficulty, previous_withdrawal: the
            boxed warning's withdrawal-risk factors [F2][C4][C5].
        timezone: the patient's IANA time zone (the pump clock follows local time).
        notes: free text.
        version: optimistic-locking version.
        stamp: who and when.
    """

    id: str
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    weight_kg: float | None
    cause: str
    injury_level: str | None
    sci_at_or_above_t6: bool
    communication_difficulty: bool
    previous_withdrawal: bool
    timezone: str
    notes: str
    version: int
    stamp: Stamp

    @property
    def origin(self) -> str:
        """Spinal or cerebral origin (the label's two groups)."""
        return Cause(self.cause).origin

    @property
    def name(self) -> str:
        """Given and family name."""
        return f"{self.given_name} {self.family_name}"

    def age_years(self, on: date) -> float:
        """Age in years on a date."""
        days = (on - self.birth_date).days
        if days < 0:
            raise InvalidValue(
                "birth_date", self.birth_date.isoformat(), f"before {on.isoformat()}"
            )
        return days / 365.25

    @property
    def withdrawal_risk(self) -> tuple[str, ...]:
        """The withdrawal-risk factors present, in words."""
        return withdrawal_risk_factors(
            self.sci_at_or_above_t6, self.communication_difficulty, self.previous_withdrawal
        )


def withdrawal_risk_factors(
    sci_at_or_above_t6: bool, communication_difficulty: bool, previous_withdrawal: bool
) -> tuple[str, ...]:
    """The boxed warning's withdrawal-risk factors present, in words [F2][C4][C5]."""
    out = []
    if sci_at_or_above_t6:
        out.append("spinal cord injury at T6 or above")
    if communication_difficulty:
        out.append("communication difficulties")
    if previous_withdrawal:
        out.append("history of withdrawal")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact or caregiver of a patient."""

    id: str
    patient_id: str
    name: str
    relation: str
    phone: str
    caregiver: bool
    version: int
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """A candidacy assessment or a screening trial, with the domain's verdict.

    Attributes:
        kind: ``candidacy`` or ``screening``.
        verdict: the verdict in one word (``candidate``, ``not_candidate``,
            ``responder``, ``non_responder`` ...).
        summary: the verdict in words.
        detail: the inputs and findings as plain data.
    """

    id: str
    patient_id: str
    at: datetime
    kind: str
    verdict: str
    summary: str
    detail: Mapping[str, Any]
    stamp: Stamp


class ImplantStatus(StrEnum):
    """Where an implant is in its life."""

    ACTIVE = "active"
    REPLACED = "replaced"
    EXPLANTED = "explanted"


@dataclass(frozen=True, slots=True)
class ImplantRecord:
    """An implanted pump system: pump, catheter, dates, status.

    Attributes:
        id: identifier (``I0001``).
        patient_id: whose.
        pump_preset: the pump model (a preset key of ``pumps.toml``).
        serial: the pump's serial number.
        udi: the device identifier (UDI), if known.
        implanted_at: implant time, aware UTC.
        catheter_family: catheter family key (``catheters.toml``).
        catheter_length_cm: implanted catheter length, cm.
        tip_level: the catheter tip's spinal level (``T10``).
        fill_product, fill_lot, fill_expiry, fill_volume_ml, fill_concentration_mcg_per_ml:
            the drug filled at implant (later fills are on the refill visits).
        status: active, replaced or explanted.
        ended_at: when it was replaced or explanted.
        end_reason: why.
        version: optimistic-locking version (every command appended bumps it).
        stamp: who and when.
    """

    id: str
    patient_id: str
    pump_preset: str
    serial: str
    udi: str | None
    implanted_at: datetime
    catheter_family: str
    catheter_length_cm: float
    tip_level: str | None
    fill_product: str
    fill_lot: str
    fill_expiry: date | None
    fill_volume_ml: float
    fill_concentration_mcg_per_ml: float
    status: ImplantStatus
    ended_at: datetime | None
    end_reason: str
    version: int
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class SurgeryRecord:
    """An operation on an implanted system: a catheter revision, a pump replacement, an
    explant (and bridging), or another procedure."""

    id: str
    implant_id: str
    at: datetime
    kind: str
    detail: str
    stamp: Stamp


class ComplicationStatus(StrEnum):
    """Where a complication is."""

    ONGOING = "ongoing"
    """Being treated with the pump in (or just found)."""
    EXPLANTED = "explanted"
    """The pump is out because of it (treatment and any bridge go on)."""
    RESOLVED = "resolved"
    """Over."""


@dataclass(frozen=True, slots=True)
class ComplicationRecord:
    """One entry about a complication of an implanted system (append-only).

    A complication is an *episode* of entries: the first says what was found; each later
    entry (a treatment added, the pump taken out, resolved) is a new record that
    ``follows`` the one before and states the whole complication as it then stands, so
    the latest entry is the complication now and the earlier ones its history. An entry
    is never changed.

    Attributes:
        id: identifier (``X0001``).
        patient_id, implant_id: whose, and the implanted system it concerns.
        episode_id: the first entry's id (its own for the first entry).
        follows: the entry this one updates (None: the first).
        kind: which complication.
        onset_at: when it began, as far as known (None: not known).
        found_at: when the clinic found it.
        at: when this entry's state began (the first: when found; an update: when the
            treatment was given or the status changed; an explant: the operation).
        signs: the signs seen (triage sign keys).
        treatments: every treatment given so far (:class:`~itb.domain.clinical.complications.Treatment`
            values, in the order first given).
        bridge: how therapy is carried over while the pump is out.
        oral_bridge_mg_per_day: the oral baclofen bridge, mg/day (only with an oral bridge).
        status: ongoing, explanted or resolved.
        explant_surgery_id: the explant surgery this complication led to (the entry that
            recorded it and those after it).
        note: free text (signs in words, findings, what was decided).
        stamp: who recorded the entry and when.
    """

    id: str
    patient_id: str
    implant_id: str
    episode_id: str
    follows: str | None
    kind: ComplicationKind
    onset_at: datetime | None
    found_at: datetime
    at: datetime
    signs: tuple[str, ...]
    treatments: tuple[str, ...]
    bridge: Bridge
    oral_bridge_mg_per_day: float | None
    status: ComplicationStatus
    explant_surgery_id: str | None
    note: str
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class PumpSnapshot:
    """The registry's pump model of one implant after its last command (a cache).

    The command log is the truth; this is its replay kept for speed: the model's
    state (:func:`itb.domain.pump.codec.pump_state`) and the forecast the radar
    reads. Rebuilt from the log whenever it is missing or of another layout.

    Attributes:
        implant_id: whose.
        seq: the last command applied.
        at: the model's present time (the last command's time).
        state: the model pump as plain data.
        reservoir_calculated_ml: the calculated reservoir at ``at``.
        concentration_mcg_per_ml: the labelled concentration in the reservoir.
        dose_mcg_per_day: the programmed daily dose (None: constant flow).
        low_alarm_at, empty_at, earliest_dry_at: forecast dates (None: beyond the forecast).
        stability_until: the drug's stability end from the last fill.
        eri_at: the battery's elective replacement indicator, predicted or reached.
        eri_reached: reached at ``at``.
        running: the pump runs at ``at``.
        stop_reason: why not.
        active_alarms: alarms active at ``at``.
        critical_alarms: the critical ones among them.
        last_fill_at: the last fill or refill.
        profile: the commanded delivery from ``at`` on, as the reservoir forecast reads
            it (:meth:`~itb.domain.clinic.forecast.DeliveryProfile.to_data`; None: the
            pump delivers nothing).
    """

    implant_id: str
    seq: int
    at: datetime
    state: Mapping[str, Any]
    reservoir_calculated_ml: float
    concentration_mcg_per_ml: float
    dose_mcg_per_day: float | None
    low_alarm_at: datetime | None
    empty_at: datetime | None
    earliest_dry_at: datetime | None
    stability_until: datetime | None
    eri_at: datetime | None
    eri_reached: bool
    running: bool
    stop_reason: str
    active_alarms: tuple[str, ...]
    critical_alarms: tuple[str, ...]
    last_fill_at: datetime | None
    profile: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class CommandEntry:
    """One line of an implant's command log (append-only).

    Attributes:
        implant_id: whose pump.
        seq: 1, 2, ... per implant.
        at: when it was applied, aware UTC.
        command: the command as plain data (:func:`itb.domain.pump.codec.command_to_data`).
        entered_by, role, reason, verified_by, override_reason: its authorship.
        recorded_at: when it was written to the registry.
    """

    implant_id: str
    seq: int
    at: datetime
    command: Mapping[str, Any]
    entered_by: str
    role: str
    reason: str
    verified_by: str | None
    override_reason: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class InterrogationRecord:
    """What a programmer read from the pump.

    Attributes:
        reservoir_calculated_ml: the calculated reservoir the programmer showed (the
            record's model when it was not read).
        expected_ml: what the record's model expected; a difference means a command is
            missing from the record.
        active_alarms: the alarms shown (and those the model holds), now acknowledged.
    """

    id: str
    implant_id: str
    at: datetime
    reservoir_calculated_ml: float
    expected_ml: float
    running: bool
    stop_reason: str
    active_alarms: tuple[str, ...]
    eri_reached: bool
    predicted_eri_at: datetime | None
    note: str
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class RefillVisitRecord:
    """A refill: the residual expected and withdrawn, the verdict, what was filled.

    Attributes:
        expected_ml: the pump's calculated residual at the visit.
        withdrawn_ml: what the nurse withdrew.
        programmed_ml: what the pump was programmed to deliver since the previous fill,
            mL; filled_ml: the calculated volume that fill left, mL. The pump really used
            ``filled_ml - withdrawn_ml`` of its ``programmed_ml`` (the reservoir forecast
            learns from it; None: a refill recorded before these were kept).
        verdict, watch, advice, allowed_ml: the domain's judgement.
        product, lot, expiry: the drug filled.
        fill_volume_ml, concentration_mcg_per_ml: how much, how strong.
        bridge_bolus: a bridge bolus was given (a concentration change).
        low_alarm_at, empty_at, earliest_dry_at: the programmer's new dates.
        resolved: within tolerance, or a discrepancy worked up since.
    """

    id: str
    implant_id: str
    at: datetime
    expected_ml: float
    withdrawn_ml: float
    programmed_ml: float | None
    filled_ml: float | None
    allowed_ml: float
    verdict: str
    watch: tuple[str, ...]
    advice: str
    product: str
    lot: str
    expiry: date | None
    fill_volume_ml: float
    concentration_mcg_per_ml: float
    bridge_bolus: bool
    low_alarm_at: datetime | None
    empty_at: datetime | None
    earliest_dry_at: datetime | None
    resolved: bool
    version: int
    stamp: Stamp


class ChangeState(StrEnum):
    """Where a programming change is."""

    STAGED = "staged"
    VERIFIED = "verified"
    COMMITTED = "committed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ProgrammingChange:
    """A programming change: staged, checked, verified by a second person, committed.

    Attributes:
        command: the proposed pump command as plain data (a reprogram).
        review: the safety review as plain data (findings, verification reasons, rows).
        blocked: a hard finding: it can never be committed.
        override_reason: the recorded reason for passing soft limits.
    """

    id: str
    implant_id: str
    state: ChangeState
    command: Mapping[str, Any]
    review: Mapping[str, Any]
    blocked: bool
    needs_verification: bool
    override_reason: str | None
    staged_by: str
    staged_at: datetime
    verified_by: str | None
    verified_at: datetime | None
    committed_by: str | None
    committed_at: datetime | None
    reason: str
    version: int
    stamp: Stamp


class VisitStatus(StrEnum):
    """A booked visit's status."""

    BOOKED = "booked"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """A booked visit (refill, check-up, troubleshooting, surgery)."""

    id: str
    patient_id: str
    at: datetime
    kind: str
    status: VisitStatus
    note: str
    version: int
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class SymptomRecord:
    """Signs a patient or caregiver reported, and the triage the domain gave."""

    id: str
    patient_id: str
    at: datetime
    signs: tuple[str, ...]
    urgency: str
    causes: tuple[str, ...]
    actions: tuple[str, ...]
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class UserAccount:
    """A user: name, role, the patient a patient or caregiver belongs to, password hash."""

    username: str
    display_name: str
    role: str
    patient_id: str | None
    password_hash: str
    active: bool
    version: int
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in session of the API or the dashboard (the token itself is never stored,
    only its SHA-256).

    Attributes:
        token_hash: SHA-256 (hex) of the bearer token.
        username: whose session.
        created_at: when it began (the absolute lifetime counts from here).
        last_seen_at: the last request (the inactivity timeout counts from here).
        address: the client's address when it began.
    """

    token_hash: str
    username: str
    created_at: datetime
    last_seen_at: datetime
    address: str


@dataclass(frozen=True, slots=True)
class ClinicInfo:
    """The clinic itself: its name and phone (printed on wallet cards), and whether a
    nurse other than a change's author may verify it."""

    name: str
    phone: str
    nurses_may_verify: bool
    version: int
    stamp: Stamp


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name != "password_hash")


def plain(value: Any) -> Any:
    """A record (or any value inside one) as JSON-ready plain data: dates and times in ISO
    form, enums by value, tuples as lists; a password hash is never included."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class CalendarFeed:
    """A patient's calendar subscription address: a read-only feed of their refill
    reminders, reached by an unguessable token in its URL (only the token's SHA-256 is
    stored). Revoking it deletes it; issuing a new one revokes the old.

    Attributes:
        token_hash: SHA-256 (hex) of the token.
        patient_id: whose reminders.
        created_at, created_by: when and by whom it was issued.
    """

    token_hash: str
    patient_id: str
    created_at: datetime
    created_by: str
