"""Reading fields of a user's TOML table with one-line errors.

Every failure raises :class:`itb.domain.errors.InvalidValue`, whose message is
``field = value is not allowed; allowed: ...``. Unknown keys are refused too:
in a clinical record a misspelt key must not silently become "not recorded".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from itb.domain.errors import InvalidValue

__all__ = [
    "MAX_TEXT_CHARS",
    "MAX_YEAR",
    "MIN_YEAR",
    "Fields",
]

_MISSING = object()
MIN_YEAR, MAX_YEAR = 1900, 2200
"""Dates in a clinical record: within a person's lifetime and the therapy's, and far inside
what calendar arithmetic can reach (year 1 or 9999 is a typing error, not a date)."""
MAX_TEXT_CHARS = 2000
"""The longest text in a record (a name, a note): longer is pasted by mistake."""


class Fields:
    """Typed access to one TOML table, naming fields as ``where.key`` in errors."""

    def __init__(self, table: object, where: str, allowed: Iterable[str]) -> None:
        self.where = where
        if not isinstance(table, Mapping):
            raise InvalidValue(where or "file", table, "a table")
        self.table: Mapping[str, Any] = table
        allowed_keys = tuple(allowed)
        for key in self.table:
            if key not in allowed_keys:
                raise InvalidValue(
                    self.name(key), self.table[key], f"known keys: {', '.join(allowed_keys)}"
                )

    def name(self, key: str) -> str:
        """The field's full name for messages."""
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        """True if ``key`` is present."""
        return key in self.table

    def _get(self, key: str, required: bool, what: str) -> object:
        value = self.table.get(key, _MISSING)
        if value is _MISSING and required:
            raise InvalidValue(self.name(key), None, f"{what} (required)")
        return value

    def number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        why: str = "",
    ) -> float:
        """A required finite number, optionally ``>= minimum`` and ``<= maximum`` (``why``
        says where the maximum comes from)."""
        value = self._get(key, True, "a number")
        return self._as_number(key, value, minimum, maximum, why)

    def opt_number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        why: str = "",
    ) -> float | None:
        """An optional finite number (``None`` when absent)."""
        value = self._get(key, False, "a number")
        if value is _MISSING:
            return None
        return self._as_number(key, value, minimum, maximum, why)

    def _as_number(
        self,
        key: str,
        value: object,
        minimum: float | None,
        maximum: float | None = None,
        why: str = "",
    ) -> float:
        allowed = "a finite number"
        if minimum is not None and maximum is not None:
            allowed += f" from {minimum:g} to {maximum:g}"
        elif minimum is not None:
            allowed += f" >= {minimum:g}"
        elif maximum is not None:
            allowed += f" <= {maximum:g}"
        if why:
            allowed += f" ({why})"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidValue(self.name(key), value, allowed)
        if (
            not math.isfinite(value)
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            raise InvalidValue(self.name(key), value, allowed)
        return float(value)

    def boolean(self, key: str) -> bool:
        """A required ``true``/``false``."""
        value = self._get(key, True, "true or false")
        if not isinstance(value, bool):
            raise InvalidValue(self.name(key), value, "true or false")
        return value

    def opt_boolean(self, key: str) -> bool | None:
        """An optional ``true``/``false`` (``None`` when absent: not assessed)."""
        value = self._get(key, False, "true or false")
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            raise InvalidValue(self.name(key), value, "true or false, or leave it out")
        return value

    def text(self, key: str, *, default: str | None = None, max_chars: int = MAX_TEXT_CHARS) -> str:
        """A non-empty string of at most ``max_chars`` (required unless ``default`` is given)."""
        value = self._get(key, default is None, "a non-empty string")
        if value is _MISSING:
            assert default is not None
            return default
        if not isinstance(value, str) or not value.strip():
            raise InvalidValue(self.name(key), value, "a non-empty string")
        if len(value.strip()) > max_chars:
            raise InvalidValue(self.name(key), value, f"a string of at most {max_chars} characters")
        return value.strip()

    def choice(self, key: str, choices: Iterable[str], *, default: str | None = None) -> str:
        """One of ``choices`` (required unless ``default`` is given)."""
        options = tuple(choices)
        value = self._get(key, default is None, ", ".join(options))
        if value is _MISSING:
            assert default is not None
            return default
        if value not in options:
            raise InvalidValue(self.name(key), value, ", ".join(options))
        return str(value)

    def choices(self, key: str, choices: Iterable[str]) -> tuple[str, ...]:
        """An optional list of distinct values from ``choices`` (empty when absent)."""
        options = tuple(choices)
        value = self._get(key, False, "")
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            raise InvalidValue(self.name(key), value, f"a list of: {', '.join(options)}")
        for item in value:
            if item not in options:
                raise InvalidValue(self.name(key), item, ", ".join(options))
        return tuple(dict.fromkeys(str(v) for v in value))

    def opt_calendar_date(self, key: str) -> date | None:
        """An optional calendar date (TOML date ``2026-03-01`` or an ISO string)."""
        value = self._get(key, False, "a date")
        if value is _MISSING:
            return None
        return self._as_date(key, value)

    def calendar_date(self, key: str) -> date:
        """A required calendar date."""
        return self._as_date(key, self._get(key, True, "a date like 2026-03-01"))

    def _as_date(self, key: str, value: object) -> date:
        allowed = f"a date like 2026-03-01, in the years {MIN_YEAR} to {MAX_YEAR}"
        if isinstance(value, datetime):
            raise InvalidValue(self.name(key), value.isoformat(), allowed)
        out: date | None = value if isinstance(value, date) else None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                out = date.fromisoformat(value)
        if out is None or not MIN_YEAR <= out.year <= MAX_YEAR:
            raise InvalidValue(
                self.name(key), out.isoformat() if out is not None else value, allowed
            )
        return out

    def local_datetime(self, key: str) -> datetime:
        """A required local date-time (TOML ``2026-03-01T09:00:00``, no time zone)."""
        value = self._get(key, True, "a date-time like 2026-03-01T09:00:00")
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = datetime.fromisoformat(value)
        if (
            not isinstance(value, datetime)
            or value.tzinfo is not None
            or not MIN_YEAR <= value.year <= MAX_YEAR
        ):
            raise InvalidValue(
                self.name(key),
                value.isoformat() if isinstance(value, (date, datetime)) else value,
                "a local date-time like 2026-03-01T09:00:00 (no time zone), in the years "
                f"{MIN_YEAR} to {MAX_YEAR}",
            )
        return value

    def tables(self, key: str) -> list[Any]:
        """An optional array of tables (empty when absent)."""
        value = self._get(key, False, "")
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            raise InvalidValue(self.name(key), value, "an array of tables")
        return value
