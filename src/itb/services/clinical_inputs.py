"""Users' clinical TOML files -> domain objects (candidacy record, screening trial, card).

Takes the already-read TOML mapping (the entrypoint reads the file through
``itb.adapters.datafiles.read_toml_file``) and returns plain domain objects.
Every error is one line: ``field = value is not allowed; allowed: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from itb.domain.errors import InvalidValue
from itb.services.toml_fields import Fields

__all__ = [
    "CANDIDACY_KEYS",
    "CARD_KEYS",
    "parse_candidacy_record",
    "parse_card_file",
]

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


def parse_candidacy_record(table: Mapping[str, Any]) -> tuple[CandidacyRecord, date | None]:
    """Parse a candidacy record file; returns the record and its ``assessed_on`` (if given)."""
    f = Fields(table, "", CANDIDACY_KEYS)
    record = CandidacyRecord(
        age_years=f.number("age_years", minimum=0.0),
        origin=cast(Origin, f.choice("origin", ORIGINS)),
        cause=f.choice("cause", CAUSES),
        oral_baclofen=cast(OralBaclofen, f.choice("oral_baclofen", ORAL_BACLOFEN)),
        hypersensitivity_to_baclofen=f.boolean("hypersensitivity_to_baclofen"),
        body_size_sufficient=f.opt_boolean("body_size_sufficient"),
        implant_depth_cm=f.opt_number("implant_depth_cm", minimum=0.0),
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


def parse_card_file(table: Mapping[str, Any], *, default_issued_on: date) -> CardData:
    """Parse a wallet-card TOML (docs/clinical-workflow.md, "Wallet card file").

    Args:
        table: the file's TOML.
        default_issued_on: the issue date when the file has no ``issued_on`` (the entrypoint
            passes today; the clock is not read here).
    """
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
    contacts = []
    for i, entry in enumerate(f.tables("contact"), start=1):
        c = Fields(entry, f"contact[{i}]", ("name", "phone", "role"))
        contacts.append(Contact(c.text("name"), c.text("phone"), c.text("role", default="Contact")))
    if not contacts:
        raise InvalidValue("contact", None, "at least one [[contact]] with name and phone")
    return CardData(
        patient_name=f.text("patient_name"),
        pump_model=pump.text("model"),
        pump_kind=pump.choice("kind", CARD_PUMP_KINDS),
        implant_date=pump.opt_calendar_date("implant_date"),
        replacement_due_date=pump.opt_calendar_date("replacement_due"),
        drug=therapy.text("drug", default="Baclofen injection (intrathecal)"),
        concentration_mcg_per_ml=therapy.number("concentration_mcg_per_ml", minimum=0.0),
        daily_dose_mcg_per_day=therapy.number("daily_dose_mcg_per_day", minimum=0.0),
        program_summary=therapy.text("program"),
        next_refill_date=dates.calendar_date("next_refill"),
        low_reservoir_alarm_date=dates.opt_calendar_date("low_reservoir_alarm"),
        implanting_clinic=Contact(clinic.text("name"), clinic.text("phone"), "ITB clinic"),
        emergency_contacts=tuple(contacts),
        issued_on=f.opt_calendar_date("issued_on") or default_issued_on,
    )
