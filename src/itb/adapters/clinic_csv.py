"""An existing clinic's patient and pump list as CSV, read into rows to register.

The template (``docs/clinic-import-template.csv``, columns documented in
``docs/registry.md``) has one row per patient: who they are, and, when they have a pump
in use, the pump, its catheter, the drug in it and the continuous program it runs.
Cells are read here (numbers, dates, yes/no); every value is then judged by the same
use cases as one entered by hand. A cell that cannot be read refuses its row, naming
the line and the column as the file spells it.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from itb.domain.errors import InvalidValue
from itb.services.clinic.exchange import ClinicRow, RowProblem
from itb.services.clinic.inputs import DrugFill, NewImplant, NewPatient, ProgramRequest

__all__ = ["COLUMNS", "PUMP_COLUMNS", "REQUIRED", "read_clinic_csv"]

REQUIRED = ("mrn", "given_name", "family_name", "birth_date", "sex", "cause")
"""Columns every row fills."""

PUMP_COLUMNS = (
    "pump_preset", "serial", "udi", "implanted_at", "catheter_family", "catheter_length_cm",
    "tip_level", "fill_product", "fill_lot", "fill_expiry", "fill_volume_ml",
    "concentration_mcg_per_ml", "dose_mcg_per_day",
)  # fmt: skip
"""The pump in use (all empty: no pump yet); udi, tip_level and fill_expiry may be empty."""

COLUMNS = (
    *REQUIRED, "weight_kg", "injury_level", "sci_at_or_above_t6", "communication_difficulty",
    "previous_withdrawal", "timezone", "notes", *PUMP_COLUMNS,
)  # fmt: skip
"""Every column of the template, in its order."""

_OPTIONAL_PUMP = {"udi", "tip_level", "fill_expiry"}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0", ""}


def _number(column: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InvalidValue(column, raw, "a number") from None


def _day(column: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidValue(column, raw, "a date YYYY-MM-DD") from None


def _moment(column: str, raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidValue(
            column,
            raw,
            "a date and time YYYY-MM-DDTHH:MM (the patient's local time, or with an offset)",
        ) from None


def _flag(column: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise InvalidValue(column, raw, "yes or no")


def _row(cells: dict[str, str], line: int) -> ClinicRow:
    def get(column: str) -> str:
        return (cells.get(column) or "").strip()

    for column in REQUIRED:
        if not get(column):
            raise InvalidValue(column, None, "a value (required)")
    patient = NewPatient(
        mrn=get("mrn"), given_name=get("given_name"), family_name=get("family_name"),
        birth_date=_day("birth_date", get("birth_date")), sex=get("sex"), cause=get("cause"),
        weight_kg=_number("weight_kg", get("weight_kg")) if get("weight_kg") else None,
        injury_level=get("injury_level") or None,
        sci_at_or_above_t6=_flag("sci_at_or_above_t6", get("sci_at_or_above_t6")),
        communication_difficulty=_flag("communication_difficulty", get("communication_difficulty")),
        previous_withdrawal=_flag("previous_withdrawal", get("previous_withdrawal")),
        timezone=get("timezone") or "UTC", notes=get("notes"),
    )  # fmt: skip
    given = [c for c in PUMP_COLUMNS if get(c)]
    if not given:
        return ClinicRow(line, patient, None)
    missing = [c for c in PUMP_COLUMNS if c not in _OPTIONAL_PUMP and not get(c)]
    if missing:
        raise InvalidValue(
            missing[0],
            None,
            "a value: a row with a pump fills every pump column (udi, tip_level, fill_expiry may stay empty)",
        )
    concentration = _number("concentration_mcg_per_ml", get("concentration_mcg_per_ml"))
    implant = NewImplant(
        at=_moment("implanted_at", get("implanted_at")), pump_preset=get("pump_preset"),
        serial=get("serial"), catheter_family=get("catheter_family"),
        catheter_length_cm=_number("catheter_length_cm", get("catheter_length_cm")),
        fill=DrugFill(
            volume_ml=_number("fill_volume_ml", get("fill_volume_ml")),
            concentration_mcg_per_ml=concentration, product=get("fill_product"),
            lot=get("fill_lot"),
            expiry=_day("fill_expiry", get("fill_expiry")) if get("fill_expiry") else None,
        ),
        program=ProgramRequest(dose_mcg_per_day=_number("dose_mcg_per_day", get("dose_mcg_per_day"))),
        udi=get("udi") or None, tip_level=get("tip_level") or None,
        prime=False, reason="imported from the clinic's list",
    )  # fmt: skip
    return ClinicRow(line, patient, implant)


def read_clinic_csv(text: str) -> tuple[list[ClinicRow], list[RowProblem]]:
    """The rows a CSV holds, and the rows refused while reading (line and reason).

    Raises:
        InvalidValue: not the template: a header without a required column or with a
            column the template does not have.
    """
    try:
        return _read(text)
    except csv.Error as exc:  # a NUL byte, a field past the reader's limit
        raise InvalidValue("CLINIC.csv", str(exc), "a CSV file as the template writes it") from None


def _read(text: str) -> tuple[list[ClinicRow], list[RowProblem]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InvalidValue(
            "CSV header", unknown[0], "the template's columns: " + ", ".join(COLUMNS)
        )
    absent = [c for c in REQUIRED if c not in header]
    if absent:
        raise InvalidValue(
            "CSV header", ",".join(header) or None, f"a {absent[0]} column (required)"
        )
    rows: list[ClinicRow] = []
    problems: list[RowProblem] = []
    for record in reader:
        line = reader.line_num
        cells: dict[str, Any] = {str(k).strip(): v for k, v in record.items() if k is not None}
        if None in record:
            problems.append(
                RowProblem(
                    line,
                    f"row = {len(header) + len(record[None])} cells is not allowed; allowed: {len(header)} (one per column)",
                )
            )
            continue
        try:
            rows.append(_row(cells, line))
        except InvalidValue as exc:
            problems.append(RowProblem(line, str(exc)))
    return rows, problems
