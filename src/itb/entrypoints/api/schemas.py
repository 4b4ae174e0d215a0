"""The API's request and response schemas: strict at the edge, separate from the tables and
from the domain's records.

``XCreate`` / ``XUpdate`` models are what a client sends: strict (no type coercion: a
number is a number, a flag is true or false), no unknown fields, no NaN or infinity.
Times are ISO 8601; a time without an offset is the patient's local time. ``XPublic``
models are what the API returns; every record carries its server-stamped ``stamp``
(created and last modified, when and by whom).

The schemas check shapes and types only. Every clinical bound — a dose, a volume, a
concentration, a date — is checked by the domain in the use case, so the API refuses
exactly what the command line refuses, with the same one-line reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEntryPublic",
    "ChainCheckPublic",
    "ChangeCancel",
    "ChangeCreate",
    "ChangePublic",
    "CommandPublic",
    "ComplicationCreate",
    "ComplicationPublic",
    "ComplicationUpdate",
    "ContactCreate",
    "ContactPublic",
    "ErrorPublic",
    "FillIn",
    "ForecastPublic",
    "ImplantCreate",
    "ImplantPublic",
    "InterrogationCreate",
    "InterrogationPublic",
    "MePublic",
    "PatientChartPublic",
    "PatientCreate",
    "PatientPublic",
    "PatientUpdate",
    "ProgramIn",
    "PumpNowPublic",
    "PumpOutPublic",
    "RadarRowPublic",
    "RefillCreate",
    "RefillOutcomePublic",
    "RefillPreviewCreate",
    "RefillPreviewPublic",
    "RefillPublic",
    "SurgeryCreate",
    "SurgeryPublic",
    "SymptomCreate",
    "SymptomOutcomePublic",
    "TokenPublic",
    "UserCreate",
    "UserPublic",
    "VisitCreate",
    "VisitPublic",
    "VisitUpdate",
]

Text = Annotated[str, Field(max_length=4000)]
"""Free text as sent (the registry's own, shorter bounds are checked by the domain)."""
Name = Annotated[str, Field(max_length=400)]
When = Annotated[datetime, Field(strict=False)]
"""An ISO 8601 date-time (JSON has no date type: a string is parsed)."""
Day = Annotated[date, Field(strict=False)]
"""An ISO 8601 date."""
Id = Annotated[str, Field(pattern=r"^[A-Z][0-9]{4,9}$", examples=["P0001"])]


class _In(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=True)


# ------------------------------------------------------------------ common


class StampPublic(_Out):
    """Who created a record and when; who changed it last and when (UTC)."""

    created_at: datetime
    created_by: str
    modified_at: datetime
    modified_by: str


class ErrorDetail(_Out):
    """What went wrong, in one line; for a refused value, the field as sent, the value and
    what is allowed."""

    type: str = Field(description="The error's kind (InvalidValue, StaleVersion, Forbidden ...).")
    message: str
    field: str | None = None
    value: Any = None
    allowed: str | None = None


class ErrorPublic(_Out):
    """Every error response."""

    error: ErrorDetail


class TokenPublic(_Out):
    """A bearer token (OAuth2 password flow)."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds until the session's absolute end.")
    username: str
    role: str


class MePublic(_Out):
    """The signed-in user."""

    username: str
    role: str
    patient_id: str | None


# ------------------------------------------------------------------ users


class UserCreate(_In):
    """A new registry user (physicians add users)."""

    username: Name
    role: Literal["physician", "nurse", "viewer", "patient", "caregiver"]
    password: Annotated[str, Field(min_length=1, max_length=400)]
    display_name: Name = ""
    patient_id: Id | None = None


class UserPublic(_Out):
    """A registry user (never the password hash)."""

    username: str
    display_name: str
    role: str
    patient_id: str | None
    active: bool
    version: int
    stamp: StampPublic


# ------------------------------------------------------------------ patients


class PatientCreate(_In):
    """A patient to register."""

    mrn: Name
    given_name: Name
    family_name: Name
    birth_date: Day
    sex: Literal["female", "male", "other", "unknown"]
    cause: str = Field(
        max_length=64,
        description="spinal_cord_injury, multiple_sclerosis, cerebral_palsy, "
        "traumatic_brain_injury, stroke or other",
    )
    weight_kg: float | None = None
    injury_level: Annotated[str, Field(max_length=8)] | None = None
    sci_at_or_above_t6: bool = False
    communication_difficulty: bool = False
    previous_withdrawal: bool = False
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    notes: Text = ""


class PatientUpdate(_In):
    """Changed details of a patient, made from the version the client read."""

    version: int
    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: Day | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    cause: Annotated[str, Field(max_length=64)] | None = None
    weight_kg: float | None = None
    injury_level: Annotated[str, Field(max_length=8)] | None = None
    sci_at_or_above_t6: bool | None = None
    communication_difficulty: bool | None = None
    previous_withdrawal: bool | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    notes: Text | None = None


class PatientPublic(_Out):
    """A patient."""

    id: str
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    weight_kg: float | None
    cause: str
    origin: str
    injury_level: str | None
    sci_at_or_above_t6: bool
    communication_difficulty: bool
    previous_withdrawal: bool
    withdrawal_risk: list[str]
    timezone: str
    notes: str
    version: int
    stamp: StampPublic


class ContactCreate(_In):
    """A contact or caregiver."""

    name: Name
    relation: Name
    phone: Name
    caregiver: bool = False


class ContactPublic(_Out):
    """A contact or caregiver."""

    id: str
    patient_id: str
    name: str
    relation: str
    phone: str
    caregiver: bool
    version: int
    stamp: StampPublic


class AssessmentPublic(_Out):
    """A candidacy assessment or screening trial with its verdict."""

    id: str
    patient_id: str
    at: datetime
    kind: str
    verdict: str
    summary: str
    detail: dict[str, Any]
    stamp: StampPublic


# ------------------------------------------------------------------ implants and pumps


class FillIn(_In):
    """Drug put into a pump."""

    volume_ml: float
    concentration_mcg_per_ml: float
    product: Annotated[str, Field(max_length=64, examples=["baclofen_2000"])]
    lot: Name
    expiry: Day | None = None


class PatientBolusIn(_In):
    """Patient-activated bolus settings."""

    dose_mcg: float
    duration_h: float
    lockout_h: float
    max_per_day: int


class ProgramIn(_In):
    """A prescription: a daily dose (simple continuous); with ``flex_steps`` (start hour,
    rate mcg/h, every day) the dose is the intended one they are checked against; or a
    periodic program."""

    dose_mcg_per_day: float | None = None
    flex_steps: list[tuple[float, float]] = Field(default_factory=list, max_length=48)
    periodic: tuple[float, float, float, float, float] | None = Field(
        default=None,
        description="basal mcg/day, bolus mcg, bolus duration h, interval h, first start h",
    )
    patient_bolus: PatientBolusIn | None = None


class ImplantCreate(_In):
    """An implanted system with its first fill and program."""

    at: When | None = None
    pump_preset: Annotated[str, Field(max_length=64)]
    serial: Name
    catheter_family: Annotated[str, Field(max_length=64)]
    catheter_length_cm: float
    fill: FillIn
    program: ProgramIn | None = None
    udi: Name | None = None
    tip_level: Annotated[str, Field(max_length=8)] | None = None
    low_reservoir_alarm_ml: float | None = None
    prime: bool = True
    reason: Text = ""
    override_reason: Text | None = None


class ImplantPublic(_Out):
    """An implanted system."""

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
    status: str
    ended_at: datetime | None
    end_reason: str
    version: int
    stamp: StampPublic


class SnapshotPublic(_Out):
    """The programmer's dates after the pump's last command."""

    seq: int
    at: datetime
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
    active_alarms: list[str]
    critical_alarms: list[str]
    last_fill_at: datetime | None


class PumpNowPublic(_Out):
    """The pump as the record says it is now (or at the time asked)."""

    implant: ImplantPublic
    at: datetime
    forecast: SnapshotPublic
    reservoir_calculated_ml: float
    running: bool
    stop_reason: str
    active_alarms: list[str]
    critical_alarms: list[str]
    prescription: str
    dose_mcg_per_day: float | None
    battery_used_fraction: float | None
    eri_reached: bool
    last_command_at: datetime


class CommandPublic(_Out):
    """One line of a pump's command log."""

    implant_id: str
    seq: int
    at: datetime
    command: dict[str, Any]
    entered_by: str
    role: str
    reason: str
    verified_by: str | None
    override_reason: str | None
    recorded_at: datetime


class SurgeryCreate(_In):
    """An operation on an implanted system."""

    kind: Literal["catheter_revision", "explant", "pocket_revision", "other"]
    at: When | None = None
    detail: Text = ""
    expected_version: int | None = None


class SurgeryPublic(_Out):
    """An operation on an implanted system."""

    id: str
    implant_id: str
    at: datetime
    kind: str
    detail: str
    stamp: StampPublic


Word = Annotated[str, Field(max_length=80)]
"""A word of a vocabulary (a complication kind, a treatment, a sign ...): the use case says
which words it takes, with the same one-line reason as the command line."""


class ComplicationCreate(_In):
    """A complication of the implanted system, found now or at ``found_at``; ``at`` (default
    ``found_at``) is when the treatment given began (an explant's time). A treatment
    ``explant`` records the explant surgery and ends the implant (a physician)."""

    kind: Word = Field(description="wound_infection, meningitis, csf_leak, skin_erosion, "
                       "pump_flip, catheter_tip_mass, haematoma, neurological_injury")  # fmt: skip
    found_at: When | None = None
    onset_at: When | None = None
    at: When | None = None
    signs: list[Word] = Field(default=[], max_length=20, description="Triage sign keys.")
    treatments: list[Word] = Field(
        default=[],
        max_length=10,
        description="observation, antibiotics, bed_rest, blood_patch, drainage, "
        "pocket_revision, catheter_revision, explant, reimplant",
    )
    bridge: Word = Field(default="none", description="none, oral or intrathecal")
    oral_bridge_mg_per_day: float | None = None
    status: Word | None = Field(default=None, description="ongoing, explanted or resolved")
    note: Text = ""
    expected_version: int | None = None


class ComplicationUpdate(_In):
    """An entry appended to a complication (the one named must be its latest): treatments
    added, the bridge, the status, more signs, a note; what is left out stays as it was."""

    at: When | None = None
    signs: list[Word] = Field(default=[], max_length=20)
    treatments: list[Word] = Field(default=[], max_length=10)
    bridge: Word | None = None
    oral_bridge_mg_per_day: float | None = None
    status: Word | None = None
    note: Text = ""
    expected_version: int | None = None


class ComplicationPublic(_Out):
    """One entry about a complication (the latest of its episode is the complication now)."""

    id: str
    patient_id: str
    implant_id: str
    episode_id: str
    follows: str | None
    kind: str
    onset_at: datetime | None
    found_at: datetime
    at: datetime
    signs: list[str]
    treatments: list[str]
    bridge: str
    oral_bridge_mg_per_day: float | None
    status: str
    explant_surgery_id: str | None
    note: str
    stamp: StampPublic


class InterrogationCreate(_In):
    """What the programmer showed (fields left out: the record's model stands in)."""

    at: When | None = None
    reservoir_ml: float | None = None
    alarms: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    note: Text = ""
    expected_version: int | None = None


class InterrogationPublic(_Out):
    """A recorded interrogation."""

    id: str
    implant_id: str
    at: datetime
    reservoir_calculated_ml: float
    expected_ml: float
    running: bool
    stop_reason: str
    active_alarms: list[str]
    eri_reached: bool
    predicted_eri_at: datetime | None
    note: str
    stamp: StampPublic


class RefillCreate(_In):
    """A refill as the nurse records it."""

    at: When | None = None
    withdrawn_ml: float
    fill: FillIn
    program: ProgramIn | None = None
    bridge_bolus: bool = False
    low_reservoir_alarm_ml: float | None = None
    reason: Text = ""
    override_reason: Text | None = None
    verified_by: Name | None = None
    expected_version: int | None = Field(
        default=None,
        description="The implant version read (refused if the pump was acted on since).",
    )


class RefillPublic(_Out):
    """A refill visit."""

    id: str
    implant_id: str
    at: datetime
    expected_ml: float
    withdrawn_ml: float
    programmed_ml: float | None = Field(
        description="volume programmed since the previous fill, mL (null: not known)"
    )
    filled_ml: float | None = Field(
        description="the calculated volume the previous fill left, mL (null: not known)"
    )
    allowed_ml: float
    verdict: str
    watch: list[str]
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
    stamp: StampPublic


class DiscrepancyPublic(_Out):
    """The domain's verdict on a withdrawn residual."""

    expected_ml: float
    withdrawn_ml: float
    difference_ml: float
    difference_pct_of_expected: float | None
    implied_rate_error_pct: float | None
    allowed_ml: float
    verdict: str
    causes: list[str]
    watch: list[str]
    advice: str
    programmed_since_fill_ml: float | None
    filled_ml: float | None


_Band = tuple[datetime | None, datetime | None, datetime | None]
"""A forecast time as a band: its low end, median and high end (null: beyond the forecast)."""


class ForecastPublic(_Out):
    """The reservoir forecast of one pump, learned from its own refills
    (docs/forecast.md): when the real reservoir reaches the low-reservoir volume and when
    it is empty, each a band, and the chance of either before the next visit."""

    factor_mean: float = Field(
        description="the delivery factor expected over the coming interval, x programmed"
    )
    factor_sd: float = Field(description="its predictive sd, x programmed")
    refills_learned: int = Field(description="refills measured since the implant")
    found_empty: int = Field(description="refills that found the reservoir empty")
    delivered_pct: float | None = Field(
        description="how much more (+) or less (-) than programmed the pump used over the "
        "measured refills, % (null: none measured)"
    )
    band_probability: float = Field(description="the central probability of the bands (0.9)")
    low_at: _Band = Field(
        description="when the real reservoir reaches the low-reservoir volume: band low "
        "end, median, band high end"
    )
    empty_at: _Band = Field(description="when it is empty: band low end, median, band high end")
    by_at: datetime = Field(
        description="the date the probabilities are for (the next booked visit, or the "
        "radar's look-ahead without one)"
    )
    by_visit: bool = Field(description="by_at is a booked visit")
    p_low: float = Field(description="probability of the low-reservoir volume by by_at")
    p_dry: float = Field(description="probability of an empty reservoir by by_at")
    advised_by: datetime | None = Field(description="refill by this date (null: no date)")
    history: str = Field(description="what the pump's refills say about it, in words")


class RefillPreviewCreate(_In):
    """A refill to check before it is recorded (nothing is recorded): the residual
    withdrawn and the fill, with a new program if the strength changes."""

    at: When | None = None
    withdrawn_ml: float
    fill: FillIn
    program: ProgramIn | None = None
    bridge_bolus: bool = False
    low_reservoir_alarm_ml: float | None = None


class RefillPreviewPublic(_Out):
    """A refill previewed: the residual's verdict, whether the pump and the drug library
    would take the fill, and the reservoir forecast now and after the refill (the residual
    already learned from)."""

    implant_id: str
    at: datetime
    discrepancy: DiscrepancyPublic
    refusal: str | None = Field(
        description="why the pump or the drug library would refuse the refill as entered "
        "(null: it would take it)"
    )
    forecast_now: ForecastPublic | None
    forecast_after: ForecastPublic | None = Field(
        description="null: the refill would be refused, or the pump would deliver nothing"
    )


class RefillOutcomePublic(_Out):
    """A recorded refill and its verdict."""

    refill: RefillPublic
    discrepancy: DiscrepancyPublic
    forecast: SnapshotPublic


# ------------------------------------------------------------------ programming changes


class ChangeCreate(_In):
    """A programming change to stage."""

    program: ProgramIn | None = None
    low_reservoir_alarm_ml: float | None = None
    bolus_mcg: float | None = None
    bolus_duration_h: float | None = None
    reason: Text
    override_reason: Text | None = None
    expected_version: int | None = None


class ChangeCancel(_In):
    """Why a staged change is cancelled."""

    reason: Text


class ChangePublic(_Out):
    """A programming change and its safety review."""

    id: str
    implant_id: str
    state: str
    command: dict[str, Any]
    review: dict[str, Any]
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
    stamp: StampPublic


# ------------------------------------------------------------------ visits, symptoms


class VisitCreate(_In):
    """A visit to book."""

    at: When
    kind: Literal["refill", "checkup", "titration", "troubleshooting", "surgery", "screening"]
    note: Text = ""


class VisitUpdate(_In):
    """A visit marked done, missed or cancelled, from the version read."""

    status: Literal["booked", "done", "missed", "cancelled"]
    version: int
    note: Text = ""


class VisitPublic(_Out):
    """A visit."""

    id: str
    patient_id: str
    at: datetime
    kind: str
    status: str
    note: str
    version: int
    stamp: StampPublic


class SymptomCreate(_In):
    """Signs a patient or caregiver reports."""

    signs: list[Annotated[str, Field(max_length=80)]] = Field(min_length=1, max_length=20)
    at: When | None = None


class SymptomPublic(_Out):
    """Reported signs and their triage."""

    id: str
    patient_id: str
    at: datetime
    signs: list[str]
    urgency: str
    causes: list[str]
    actions: list[str]
    stamp: StampPublic


class SymptomOutcomePublic(_Out):
    """The record and the triage in words."""

    record: SymptomPublic
    urgency_label: str
    actions: list[str]


class PatientChartPublic(_Out):
    """Everything the registry holds on one patient."""

    patient: PatientPublic
    contacts: list[ContactPublic]
    assessments: list[AssessmentPublic]
    implants: list[ImplantPublic]
    visits: list[VisitPublic]
    refills: list[RefillPublic]
    changes: list[ChangePublic]
    symptoms: list[SymptomPublic]
    surgeries: list[SurgeryPublic]
    totals: dict[str, int] = Field(
        description="How many refills, visits, changes and symptom reports exist in all "
        "(the lists hold the latest `recent`)."
    )


# ------------------------------------------------------------------ radar and audit


class FlagPublic(_Out):
    """One thing the radar says about a pump."""

    code: str
    urgency: int
    text: str


class PumpOutPublic(_Out):
    """A patient whose pump came out for a complication, with no new pump yet."""

    patient_id: str
    patient_name: str
    implant_id: str
    complication_id: str
    kind: str
    since: datetime
    bridge: str = Field(description="none, oral or intrathecal")
    oral_bridge_mg_per_day: float | None
    days_out: float


class RadarRowPublic(_Out):
    """A pump on the refill radar."""

    patient_id: str
    patient_name: str
    implant_id: str
    pump_label: str
    urgency: int = Field(description="0 nothing to do ... 4 act now")
    words: str
    flags: list[FlagPublic]
    running: bool
    reservoir_calculated_ml: float
    low_alarm_at: datetime | None
    empty_at: datetime | None
    earliest_dry_at: datetime | None
    stability_until: datetime | None
    eri_at: datetime | None
    next_visit_at: datetime | None
    refill_by: datetime | None
    active_alarms: list[str]
    unresolved_discrepancies: int
    withdrawal_risk: list[str]
    forecast: ForecastPublic | None = Field(
        description="the reservoir forecast learned from the pump's refills (null: not "
        "forecast; the dates above are the programmer's)"
    )


class AuditEntryPublic(_Out):
    """One audit entry."""

    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    prev_hash: str
    hash: str


class ChainCheckPublic(_Out):
    """The audit chain walked."""

    ok: bool
    entries: int
    first_broken_seq: int | None
    problem: str
    head_seq: int
    head_hash: str


class FhirBundlePublic(BaseModel):
    """A FHIR R4 Bundle (type collection) of one patient's whole record or the clinic's
    (docs/fhir.md: the resources, the codes and which are local)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    resource_type: Literal["Bundle"] = Field(alias="resourceType")
    type: Literal["collection"]
    entry: list[dict[str, Any]]


class CalendarFeedPublic(_Out):
    """A calendar subscription address (the token is in it: show it once, keep it private)."""

    patient_id: str
    path: str
    url: str
