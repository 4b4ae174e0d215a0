"""Users' clinical TOML files -> domain objects (candidacy record, screening trial, card).

Takes the already-read TOML mapping (the entrypoint reads the file through
``itb.adapters.datafiles.read_toml_file``) and returns plain domain objects.
Every error is one line: ``field = value is not allowed; allowed: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from itb.domain.clinical.candidacy import (
    ACTIVE_ISSUES,
    CAUSES,
    ORAL_BACLOFEN,
    ORIGINS,
    RELATIVE_CONTRAINDICATIONS,
    RISK_GROUPS,
    CandidacyRecord,
    OralBaclofen,
    Origin,
)
from itb.domain.clinical.card import PUMP_KINDS as CARD_PUMP_KINDS
from itb.domain.clinical.card import CardData, Contact
from itb.domain.clinical.drug_library import DrugLibrary
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced
from itb.services.toml_fields import Fields

__all__ = [
    "CANDIDACY_KEYS",
    "CARD_KEYS",
    "CARD_TEXT_MAX_CHARS",
    "CardLimits",
    "RecordLimits",
    "card_limits",
    "parse_candidacy_record",
    "parse_card_file",
]


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """What a person's record can hold (``candidacy.toml`` ``[record_limits]``)."""

    max_age_years: Sourced
    max_implant_depth_cm: Sourced

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> RecordLimits:
        """From the candidacy data table.

        Raises:
            InvalidValue: an entry is missing or malformed.
        """
        from itb.domain.provenance import sourced

        limits = table.get("record_limits", {})
        return cls(
            sourced(limits, "max_age_years", where="candidacy.record_limits"),
            sourced(limits, "max_implant_depth_cm", where="candidacy.record_limits"),
        )

    def why_age(self) -> str:
        """Where the age bound comes from, for messages."""
        return f"a human life: {self.max_age_years.source}"


CANDIDACY_KEYS = (
    "assessed_on",
    "age_years",
    "origin",
    "cause",
    "oral_baclofen",
    "hypersensitivity_to_baclofen",
    "body_size_sufficient",
    "implant_depth_cm",
    "spinal_anomalies",
    "active_infection",
    "brain_injury_date",
    "active_issues",
    "relative_contraindications",
    "risk_groups",
    "can_attend_follow_up",
    "name",
    "notes",
)


def parse_candidacy_record(
    table: Mapping[str, Any], limits: RecordLimits | None = None
) -> tuple[CandidacyRecord, date | None]:
    """Parse a candidacy record file; returns the record and its ``assessed_on`` (if given).

    ``limits`` bound the age and the implant depth to what a person can have.
    """
    f = Fields(table, "", CANDIDACY_KEYS)
    max_age = None if limits is None else limits.max_age_years.value
    max_depth = None if limits is None else limits.max_implant_depth_cm.value
    record = CandidacyRecord(
        age_years=f.number(
            "age_years",
            minimum=0.0,
            maximum=max_age,
            why="" if limits is None else "a human lifetime",
        ),
        origin=cast(Origin, f.choice("origin", ORIGINS)),
        cause=f.choice("cause", CAUSES),
        oral_baclofen=cast(OralBaclofen, f.choice("oral_baclofen", ORAL_BACLOFEN)),
        hypersensitivity_to_baclofen=f.boolean("hypersensitivity_to_baclofen"),
        body_size_sufficient=f.opt_boolean("body_size_sufficient"),
        implant_depth_cm=f.opt_number(
            "implant_depth_cm",
            minimum=0.0,
            maximum=max_depth,
            why="" if limits is None else "under the skin of the abdomen",
        ),
        spinal_anomalies=f.boolean("spinal_anomalies"),
        active_infection=f.boolean("active_infection"),
        brain_injury_date=f.opt_calendar_date("brain_injury_date"),
        active_issues=f.choices("active_issues", ACTIVE_ISSUES),
        relative_contraindications=f.choices(
            "relative_contraindications", RELATIVE_CONTRAINDICATIONS
        ),
        risk_groups=f.choices("risk_groups", RISK_GROUPS),
        can_attend_follow_up=f.opt_boolean("can_attend_follow_up"),
    )
    if f.has("name"):
        f.text("name")
    if f.has("notes"):
        f.text("notes")
    return record, f.opt_calendar_date("assessed_on")


CARD_KEYS = ("issued_on", "patient_name", "pump", "therapy", "dates", "clinic", "contact")
CARD_TEXT_MAX_CHARS = 120
"""The longest entry on a wallet card (a name, a phone number, a pump model): a panel is
85.6 x 54 mm, so longer text cannot be printed on it at a readable size."""

_CARD_FIELDS = {
    "patient_name": "patient_name",
    "pump_model": "pump.model",
    "pump_kind": "pump.kind",
    "implant_date": "pump.implant_date",
    "replacement_due_date": "pump.replacement_due",
    "drug": "therapy.drug",
    "concentration_mcg_per_ml": "therapy.concentration_mcg_per_ml",
    "daily_dose_mcg_per_day": "therapy.daily_dose_mcg_per_day",
    "program_summary": "therapy.program",
    "next_refill_date": "dates.next_refill",
    "low_reservoir_alarm_date": "dates.low_reservoir_alarm",
    "issued_on": "issued_on",
}
"""The card's fields (:class:`CardData`) as the card file names them."""


@dataclass(frozen=True, slots=True)
class CardLimits:
    """What a card may state: the drug library's strongest product and highest hard
    maximum daily dose (any population)."""

    max_concentration_mcg_per_ml: float
    max_daily_dose_mcg_per_day: float


def card_limits(library: DrugLibrary) -> CardLimits:
    """The card's limits from the drug library."""
    return CardLimits(library.strongest_mcg_per_ml, library.highest_hard_max_mcg_per_day)


def _card_dates_in_order(data: CardData) -> None:
    """Dates that cannot come before the implant (the pump was not there yet)."""
    if data.implant_date is None:
        return
    for name, when in (
        ("replacement_due_date", data.replacement_due_date),
        ("next_refill_date", data.next_refill_date),
        ("low_reservoir_alarm_date", data.low_reservoir_alarm_date),
    ):
        if when is not None and when < data.implant_date:
            raise InvalidValue(
                _CARD_FIELDS[name],
                when.isoformat(),
                f"on or after pump.implant_date {data.implant_date.isoformat()}",
            )


def parse_card_file(
    table: Mapping[str, Any], *, default_issued_on: date, limits: CardLimits | None = None
) -> CardData:
    """Parse a wallet-card TOML (docs/clinical-workflow.md, "Wallet card file").

    Args:
        table: the file's TOML.
        default_issued_on: the issue date when the file has no ``issued_on`` (the entrypoint
            passes today; the clock is not read here).
        limits: the drug library's bounds on the concentration and the daily dose.

    Raises:
        InvalidValue: one line naming the field as the file writes it (``pump.implant_date``).
    """
    try:
        data = _card_data(table, default_issued_on, limits)
    except InvalidValue as exc:
        if exc.field in _CARD_FIELDS:
            raise exc.renamed(_CARD_FIELDS[exc.field]) from None
        raise
    _card_dates_in_order(data)
    return data


def _card_data(
    table: Mapping[str, Any], default_issued_on: date, limits: CardLimits | None
) -> CardData:
    f = Fields(table, "", CARD_KEYS)
    pump = Fields(
        f.table.get("pump", {}), "pump", ("model", "kind", "implant_date", "replacement_due")
    )
    therapy = Fields(
        f.table.get("therapy", {}),
        "therapy",
        ("drug", "concentration_mcg_per_ml", "daily_dose_mcg_per_day", "program"),
    )
    dates = Fields(f.table.get("dates", {}), "dates", ("next_refill", "low_reservoir_alarm"))
    clinic = Fields(f.table.get("clinic", {}), "clinic", ("name", "phone"))
    n = CARD_TEXT_MAX_CHARS
    contacts = []
    for i, entry in enumerate(f.tables("contact"), start=1):
        c = Fields(entry, f"contact[{i}]", ("name", "phone", "role"))
        contacts.append(
            Contact(
                c.text("name", max_chars=n),
                c.text("phone", max_chars=n),
                c.text("role", default="Contact", max_chars=n),
            )
        )
    if not contacts:
        raise InvalidValue("contact", None, "at least one [[contact]] with name and phone")
    max_conc = None if limits is None else limits.max_concentration_mcg_per_ml
    max_dose = None if limits is None else limits.max_daily_dose_mcg_per_day
    library = "" if limits is None else "the drug library"
    return CardData(
        patient_name=f.text("patient_name", max_chars=n),
        pump_model=pump.text("model", max_chars=n),
        pump_kind=pump.choice("kind", CARD_PUMP_KINDS),
        implant_date=pump.opt_calendar_date("implant_date"),
        replacement_due_date=pump.opt_calendar_date("replacement_due"),
        drug=therapy.text("drug", default="Baclofen injection (intrathecal)", max_chars=n),
        concentration_mcg_per_ml=therapy.number(
            "concentration_mcg_per_ml", minimum=0.0, maximum=max_conc, why=library
        ),
        daily_dose_mcg_per_day=therapy.number(
            "daily_dose_mcg_per_day", minimum=0.0, maximum=max_dose, why=library
        ),
        program_summary=therapy.text("program", max_chars=n),
        next_refill_date=dates.calendar_date("next_refill"),
        low_reservoir_alarm_date=dates.opt_calendar_date("low_reservoir_alarm"),
        implanting_clinic=Contact(
            clinic.text("name", max_chars=n), clinic.text("phone", max_chars=n), "ITB clinic"
        ),
        emergency_contacts=tuple(contacts),
        issued_on=f.opt_calendar_date("issued_on") or default_issued_on,
    )
