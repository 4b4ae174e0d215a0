"""Reviewed numbers with their unit, source and confirmation status.

Every clinical or device number in ``itb/data/*.toml`` is written as a table::

    [reservoir_ml]
    value = 40.0
    unit = "mL"
    status = "confirmed"          # or "assumed"
    source = "[D30][D31]"
    note = "optional: what an assumption was calibrated to"

Rules receive these numbers as arguments; nothing clinical is a literal in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from itb.domain.errors import InvalidValue

__all__ = ["STATUSES", "Sourced", "sourced", "sourced_value"]

Status = Literal["confirmed", "assumed"]
STATUSES: tuple[Status, ...] = ("confirmed", "assumed")


@dataclass(frozen=True, slots=True)
class Sourced:
    """A number with its unit, its source and whether that source confirms it."""

    value: float
    unit: str
    status: Status
    source: str
    note: str = ""

    @property
    def assumed(self) -> bool:
        """True when the number is a modelling assumption, not a confirmed fact."""
        return self.status == "assumed"


def sourced(table: Mapping[str, Any], key: str, *, where: str = "") -> Sourced:
    """Parse ``table[key]`` as a :class:`Sourced` number.

    Raises:
        InvalidValue: the entry is missing, not a number, or lacks unit, source or status.
    """
    field = f"{where}.{key}" if where else key
    entry = table.get(key)
    if not isinstance(entry, Mapping):
        raise InvalidValue(field, entry, "a table with value, unit, status and source")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"{field}.value", value, "a number")
    status = entry.get("status")
    if status not in STATUSES:
        raise InvalidValue(f"{field}.status", status, " or ".join(STATUSES))
    unit, source = entry.get("unit"), entry.get("source")
    if not isinstance(unit, str) or not unit:
        raise InvalidValue(f"{field}.unit", unit, "a non-empty unit string")
    if not isinstance(source, str) or not source:
        raise InvalidValue(f"{field}.source", source, "a non-empty source string")
    note = entry.get("note", "")
    return Sourced(float(value), unit, status, source, str(note))


def sourced_value(table: Mapping[str, Any], key: str, *, where: str = "") -> float:
    """The bare value of :func:`sourced` (unit and provenance already checked)."""
    return sourced(table, key, where=where).value
