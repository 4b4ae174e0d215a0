"""A recorded screening trial (user TOML) -> per-bolus assessments and the next step.

Calendar date-times are turned into hours since the first bolus here, at the
edge; the domain planner works in hours. Each recorded bolus is replayed
through :func:`itb.domain.clinical.screening.check_next_bolus`, so a record that
breaks the protocol (wrong dose, under 24 h apart) is refused with the field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itb.domain.clinical.screening import (
    BolusAssessment,
    GivenBolus,
    Observation,
    ScreeningProtocol,
    ScreeningStep,
    assess_bolus,
    check_next_bolus,
    plan_next_step,
)
from itb.domain.errors import InvalidValue
from itb.domain.units import MINUTES_PER_HOUR
from itb.services.toml_fields import Fields

__all__ = [
    "RecordedBolus",
    "ScreeningRecord",
    "ScreeningReport",
    "evaluate_screening_record",
    "parse_screening_record",
]

SECONDS_PER_HOUR = MINUTES_PER_HOUR * 60.0


@dataclass(frozen=True, slots=True)
class RecordedBolus:
    """A bolus as recorded by the team."""

    dose_mcg: float
    given_at: datetime
    observations: tuple[Observation, ...]


@dataclass(frozen=True, slots=True)
class ScreeningRecord:
    """A screening trial record."""

    reduced_start: bool
    criterion: str | None
    boluses: tuple[RecordedBolus, ...]


@dataclass(frozen=True, slots=True)
class ScreeningReport:
    """Assessments of the recorded boluses and the protocol's next step."""

    criterion: str
    reduced_start: bool
    boluses: tuple[tuple[RecordedBolus, BolusAssessment | None], ...]
    next_step: ScreeningStep
    next_dose_earliest_at: datetime | None


def parse_screening_record(table: Mapping[str, Any]) -> ScreeningRecord:
    """Parse a screening trial TOML (docs/clinical-workflow.md, "Screening trial record")."""
    f = Fields(table, "", ("reduced_start", "criterion", "bolus", "name", "notes"))
    reduced = f.opt_boolean("reduced_start") or False
    criterion = f.text("criterion") if f.has("criterion") else None
    boluses: list[RecordedBolus] = []
    for i, entry in enumerate(f.tables("bolus"), start=1):
        b = Fields(entry, f"bolus[{i}]", ("dose_mcg", "given_at", "observations"))
        observations: list[Observation] = []
        for j, row in enumerate(b.tables("observations"), start=1):
            o = Fields(row, f"bolus[{i}].observations[{j}]", ("after_h", "mas", "psfs"))
            if not (o.has("mas") or o.has("psfs")):
                raise InvalidValue(o.name("mas"), None, "a mas and/or psfs score")
            observations.append(
                Observation(
                    t_after_h=o.number("after_h"),
                    mas=o.opt_number("mas", minimum=0.0),
                    psfs=o.opt_number("psfs", minimum=0.0),
                )
            )
        boluses.append(
            RecordedBolus(
                dose_mcg=b.number("dose_mcg", minimum=0.0),
                given_at=b.local_datetime("given_at"),
                observations=tuple(observations),
            )
        )
    if not boluses:
        raise InvalidValue(
            "bolus",
            None,
            "at least one [[bolus]] with dose_mcg, given_at and observations (an empty "
            "record has nothing to assess; itb screen plans a trial)",
        )
    return ScreeningRecord(reduced, criterion, tuple(boluses))


def _check_observations(protocol: ScreeningProtocol, i: int, b: RecordedBolus) -> None:
    """Each observation of bolus ``i`` (1-based) within the screening interval around it,
    and each score on its scale, named by its place in the file."""
    window = protocol.min_interval_h.value
    for j, o in enumerate(b.observations, start=1):
        where = f"bolus[{i}].observations[{j}]"
        if not -window <= o.t_after_h <= window:
            raise InvalidValue(
                f"{where}.after_h",
                o.t_after_h,
                f"-{window:g} to {window:g} h (observations of a bolus fall within the "
                f"{window:g} h screening interval around it {protocol.min_interval_h.source})",
            )
        for measure in ("mas", "psfs"):
            value = getattr(o, measure)
            top = protocol.scale_max[measure].value
            if value is not None and value > top:
                raise InvalidValue(f"{where}.{measure}", value, f"0 to {top:g}")


def evaluate_screening_record(
    protocol: ScreeningProtocol, record: ScreeningRecord
) -> ScreeningReport:
    """Assess every recorded bolus and plan the next step.

    Raises:
        InvalidValue: a bolus breaks the protocol or its observations are invalid; the
            field names the bolus (``bolus[2].given_at``).
    """
    crit = protocol.criterion(record.criterion)
    for i, b in enumerate(record.boluses, start=1):
        _check_observations(protocol, i, b)
    start = record.boluses[0].given_at if record.boluses else None
    history: list[GivenBolus] = []
    rows: list[tuple[RecordedBolus, BolusAssessment | None]] = []
    for i, b in enumerate(record.boluses, start=1):
        assert start is not None
        at_h = (b.given_at - start).total_seconds() / SECONDS_PER_HOUR
        try:
            check_next_bolus(
                protocol, history, b.dose_mcg, at_h, reduced_start=record.reduced_start
            )
        except InvalidValue as exc:
            field = {"given_at_h": "given_at", "dose_mcg": "dose_mcg"}.get(exc.field, exc.field)
            value = b.given_at.isoformat() if field == "given_at" else exc.value
            allowed = exc.allowed
            if field == "given_at" and history:
                earliest = (
                    start
                    + timedelta(hours=history[-1].given_at_h)
                    + timedelta(hours=protocol.min_interval_h.value)
                )
                allowed = (
                    f"at or after {earliest.isoformat()} "
                    f"({protocol.min_interval_h.value:g} h after the previous bolus)"
                )
            raise InvalidValue(f"bolus[{i}].{field}", value, allowed) from None
        assessment = None
        if b.observations:
            try:
                assessment = assess_bolus(protocol, b.observations, criterion=crit.key)
            except InvalidValue as exc:
                field = exc.field if exc.field != "observations" else ""
                raise exc.renamed(
                    f"bolus[{i}].observations" + (f".{field}" if field else "")
                ) from None
        outcome = assessment.outcome if assessment is not None else "pending"
        history.append(GivenBolus(b.dose_mcg, at_h, outcome))
        rows.append((b, assessment))
    step = plan_next_step(protocol, history, reduced_start=record.reduced_start)
    earliest_at = (
        start + timedelta(hours=step.earliest_at_h)
        if start is not None and step.earliest_at_h is not None
        else None
    )
    return ScreeningReport(crit.key, record.reduced_start, tuple(rows), step, earliest_at)
