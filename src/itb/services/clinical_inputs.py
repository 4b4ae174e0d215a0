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
from itb.services.toml_fields import Fields

__all__ = ["CANDIDACY_KEYS", "parse_candidacy_record"]

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
