"""What a registry record may hold: the checks every entry point shares.

A nurse typing at the command line, a form in the browser, a JSON request and
a backup being restored all reach the same functions here, so a weight in
grams or a birth date next century gets the same one-line refusal everywhere.
The bounds are data (``itb/data/clinic.toml``), each with its source or its
"plausibility limit" note.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from itb.domain.clinic.records import ComplicationStatus, ImplantStatus
from itb.domain.clinical.complications import Bridge, ComplicationKind, Treatment
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced

__all__ = [
    "SEXES",
    "SPINAL_LEVELS",
    "VISIT_KINDS",
    "ComplicationTerms",
    "RadarWindows",
    "RegistryRules",
    "ReminderPolicy",
    "SessionPolicy",
    "check_complication",
    "parse_registry_rules",
]

SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")
"""How a patient's sex is recorded."""

SPINAL_LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 9)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    *(f"S{i}" for i in range(1, 6)),
)
"""Spinal levels, head to tail (an injury level, a catheter tip level)."""

VISIT_KINDS: tuple[str, ...] = (
    "refill",
    "checkup",
    "titration",
    "troubleshooting",
    "surgery",
    "screening",
)
"""What a booked visit is for."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class RadarWindows:
    """The refill radar's windows, days (see :mod:`itb.domain.clinic.radar`)."""

    due_window_days: Sourced
    look_ahead_days: Sourced
    battery_window_days: Sourced


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a signed-in session lasts, and how failed log-ins are slowed."""

    idle_minutes: Sourced
    lifetime_hours: Sourced
    free_failed_logins: Sourced
    failed_login_delay_s: Sourced
    failed_login_delay_max_s: Sourced
    failed_login_window_minutes: Sourced


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    """When the calendar of refill reminders alerts before a visit and before the
    refill-by date."""

    visit_lead_hours: Sourced
    refill_by_lead_days: Sourced


@dataclass(frozen=True, slots=True)
class RegistryRules:
    """The bounds of a registry record (``clinic.toml``)."""

    weight_kg_min: Sourced
    weight_kg_max: Sourced
    max_age_years: Sourced
    max_text_chars: Sourced
    max_name_chars: Sourced
    future_tolerance_minutes: Sourced
    oral_bridge_mg_per_day_max: Sourced
    """The most oral baclofen a recorded bridge may hold (a typing-slip bound), mg/day."""
    radar: RadarWindows
    sessions: SessionPolicy
    reminders: ReminderPolicy

    # ------------------------------------------------------------ text

    def name(self, field: str, value: str, *, required: bool = True) -> str:
        """A name or identifier: stripped, one line, not too long.

        Raises:
            InvalidValue: empty (when required), several lines, control characters or too long.
        """
        return self._text(field, value, int(self.max_name_chars.value), required, one_line=True)

    def text(self, field: str, value: str, *, required: bool = False) -> str:
        """Free text (notes, reasons): stripped, not too long, no control characters."""
        return self._text(field, value, int(self.max_text_chars.value), required, one_line=False)

    @staticmethod
    def _text(field: str, value: str, limit: int, required: bool, *, one_line: bool) -> str:
        if not isinstance(value, str):
            raise InvalidValue(field, value, "text")
        out = value.strip()
        if required and not out:
            raise InvalidValue(field, value, "a non-empty value")
        if len(out) > limit:
            raise InvalidValue(field, out, f"at most {limit} characters (this has {len(out)})")
        if one_line and ("\n" in out or "\r" in out):
            raise InvalidValue(field, out, "one line")
        if _CONTROL.search(out):
            raise InvalidValue(field, out, "text without control characters")
        return out

    # ------------------------------------------------------------ values

    def weight_kg(self, value: float | None, *, field: str = "weight_kg") -> float | None:
        """A body weight, kg (None: not recorded)."""
        if value is None:
            return None
        lo, hi = self.weight_kg_min.value, self.weight_kg_max.value
        if isinstance(value, bool) or not math.isfinite(value) or not lo <= value <= hi:
            raise InvalidValue(field, value, f"{lo:g} to {hi:g} kg")
        return float(value)

    def birth_date(self, value: date, *, today: date, field: str = "birth_date") -> date:
        """A date of birth: not after today, not more than the oldest age ago."""
        if value > today:
            raise InvalidValue(field, value.isoformat(), f"a date on or before {today.isoformat()}")
        oldest = int(self.max_age_years.value)
        earliest = date(today.year - oldest, 1, 1)
        if value < earliest:
            raise InvalidValue(
                field, value.isoformat(), f"on or after {earliest.isoformat()} (age {oldest})"
            )
        return value

    def when(self, value: datetime, *, now: datetime, field: str = "at") -> datetime:
        """A time something happened: aware, and not after now (a small clock allowance).

        Raises:
            InvalidValue: a naive time, or one in the future.
        """
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidValue(field, value.isoformat(), "a date-time with a time zone")
        limit = now + timedelta(minutes=self.future_tolerance_minutes.value)
        if value > limit:
            raise InvalidValue(
                field,
                value.isoformat(timespec="minutes"),
                f"a time up to now ({now.isoformat(timespec='minutes')}): a record says what "
                "happened, not what will",
            )
        return value

    @staticmethod
    def choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
        """One of ``allowed``."""
        if value not in allowed:
            raise InvalidValue(field, value, ", ".join(allowed))
        return value

    @staticmethod
    def level(field: str, value: str | None) -> str | None:
        """A spinal level (``T6``), upper-cased; None: not recorded."""
        if value is None or not value.strip():
            return None
        out = value.strip().upper()
        if out not in SPINAL_LEVELS:
            raise InvalidValue(field, value, "a spinal level C1-C8, T1-T12, L1-L5 or S1-S5")
        return out

    @staticmethod
    def timezone(value: str, *, field: str = "timezone") -> str:
        """An IANA time-zone name (``Europe/London``)."""
        if not isinstance(value, str) or not value or value.startswith(("/", ".")):
            raise InvalidValue(field, value, "an IANA time zone such as Europe/London or UTC")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidValue(
                field, value, "an IANA time zone such as Europe/London or UTC"
            ) from None
        return value

    @staticmethod
    def positive(field: str, value: float, *, upper: float | None = None, unit: str = "") -> float:
        """A finite number > 0 (and <= ``upper``)."""
        if isinstance(value, bool) or not math.isfinite(value) or value <= 0.0:
            raise InvalidValue(field, value, f"> 0{' ' + unit if unit else ''}")
        if upper is not None and value > upper:
            raise InvalidValue(field, value, f"> 0 and <= {upper:g}{' ' + unit if unit else ''}")
        return float(value)

    @staticmethod
    def non_negative(
        field: str, value: float, *, upper: float | None = None, unit: str = ""
    ) -> float:
        """A finite number >= 0 (and <= ``upper``)."""
        if isinstance(value, bool) or not math.isfinite(value) or value < 0.0:
            raise InvalidValue(field, value, f">= 0{' ' + unit if unit else ''}")
        if upper is not None and value > upper:
            raise InvalidValue(field, value, f"0 to {upper:g}{' ' + unit if unit else ''}")
        return float(value)


def _positive(value: Sourced, field: str) -> Sourced:
    if value.value <= 0.0:
        raise InvalidValue(field, value.value, "> 0")
    return value


def parse_registry_rules(table: Mapping[str, Any]) -> RegistryRules:
    """Parse ``clinic.toml``.

    Raises:
        InvalidValue: a malformed entry, or a minimum above its maximum.
    """
    record = table.get("record")
    radar = table.get("radar")
    sessions = table.get("sessions")
    reminders = table.get("reminders")
    if not isinstance(reminders, Mapping):
        raise InvalidValue("clinic.reminders", reminders, "a table of sourced numbers")
    if not isinstance(sessions, Mapping):
        raise InvalidValue("clinic.sessions", sessions, "a table of sourced numbers")
    if not isinstance(record, Mapping):
        raise InvalidValue("clinic.record", record, "a table of sourced numbers")
    if not isinstance(radar, Mapping):
        raise InvalidValue("clinic.radar", radar, "a table of sourced numbers")

    def r(key: str) -> Sourced:
        return sourced(record, key, where="clinic.record")

    def w(key: str) -> Sourced:
        value = sourced(radar, key, where="clinic.radar")
        if value.value <= 0.0:
            raise InvalidValue(f"clinic.radar.{key}", value.value, "> 0 days")
        return value

    rules = RegistryRules(
        weight_kg_min=r("weight_kg_min"),
        weight_kg_max=r("weight_kg_max"),
        max_age_years=r("max_age_years"),
        max_text_chars=r("max_text_chars"),
        max_name_chars=r("max_name_chars"),
        future_tolerance_minutes=r("future_tolerance_minutes"),
        oral_bridge_mg_per_day_max=r("oral_bridge_mg_per_day_max"),
        radar=RadarWindows(
            due_window_days=w("due_window_days"),
            look_ahead_days=w("look_ahead_days"),
            battery_window_days=w("battery_window_days"),
        ),
        sessions=SessionPolicy(
            *(
                _positive(sourced(sessions, key, where="clinic.sessions"), f"clinic.sessions.{key}")
                for key in (
                    "idle_minutes",
                    "lifetime_hours",
                    "free_failed_logins",
                    "failed_login_delay_s",
                    "failed_login_delay_max_s",
                    "failed_login_window_minutes",
                )
            )
        ),
        reminders=ReminderPolicy(
            *(
                _positive(
                    sourced(reminders, key, where="clinic.reminders"), f"clinic.reminders.{key}"
                )
                for key in ("visit_lead_hours", "refill_by_lead_days")
            )
        ),
    )
    if not 0.0 < rules.weight_kg_min.value < rules.weight_kg_max.value:
        raise InvalidValue(
            "clinic.record.weight_kg_min", rules.weight_kg_min.value, "> 0 and < weight_kg_max"
        )
    return rules


# ------------------------------------------------------------------ complications


@dataclass(frozen=True, slots=True)
class ComplicationTerms:
    """A complication entry's checked terms (:func:`check_complication`).

    Attributes:
        kind: which complication.
        treatments: every treatment given so far (the earlier entry's, then the new ones).
        bridge: how therapy is carried over while the pump is out.
        oral_bridge_mg_per_day: the oral bridge, mg/day (None unless the bridge is oral).
        status: where the complication is.
        explants: this entry takes the pump out (the explant is to be recorded with it).
    """

    kind: ComplicationKind
    treatments: tuple[str, ...]
    bridge: Bridge
    oral_bridge_mg_per_day: float | None
    status: ComplicationStatus
    explants: bool


def _one_of(field: str, value: object, allowed: type[StrEnum]) -> Any:
    if not isinstance(value, str):
        raise InvalidValue(field, value, ", ".join(x.value for x in allowed))
    try:
        return allowed(value)
    except ValueError:
        raise InvalidValue(field, value, ", ".join(x.value for x in allowed)) from None


def check_complication(
    oral_bridge_max_mg_per_day: float,
    *,
    kind: str,
    treatments: Sequence[str],
    bridge: str,
    oral_bridge_mg_per_day: float | None,
    status: str | None,
    implant_status: ImplantStatus,
    previous_treatments: Sequence[str] = (),
    previous_status: ComplicationStatus | None = None,
) -> ComplicationTerms:
    """Check what a complication entry says, against the entry before it and the implant.

    Rules: the kind, treatments, bridge and status are of their vocabularies
    (:mod:`itb.domain.clinical.complications`); treatments given before stay given (an
    entry adds to them); an explant needs the implant in use, and takes it out; a
    re-implant, a bridge other than ``none`` and the ``explanted`` status need the pump
    out (explanted before, or by this entry); an oral bridge needs its dose, more than 0
    and at most the record's plausibility bound (``clinic.toml``: bridges go above the
    oral label's maximum), and no
    other bridge has one. Without a status, an entry that explants is ``explanted``, an
    update keeps the earlier status, and a first entry is ``ongoing``.

    Args:
        oral_bridge_max_mg_per_day: the most a recorded oral bridge may hold, mg/day.
        kind: the complication (a :class:`ComplicationKind` value).
        treatments: treatments this entry gives (:class:`Treatment` values).
        bridge: a :class:`Bridge` value.
        oral_bridge_mg_per_day: the oral bridge's dose, mg/day.
        status: a :class:`ComplicationStatus` value (None: as above).
        implant_status: the implant's status before this entry.
        previous_treatments: what the earlier entry of the complication held.
        previous_status: the earlier entry's status (None: a first entry).

    Raises:
        InvalidValue: naming the field (``kind``, ``treatment``, ``bridge``,
            ``oral_bridge_mg_per_day``, ``status``), the value and what is allowed.
    """
    k = _one_of("kind", kind, ComplicationKind)
    given: list[str] = list(previous_treatments)
    new: list[Treatment] = []
    for raw in treatments:
        t = _one_of("treatment", raw, Treatment)
        if t.value not in given:
            given.append(t.value)
            new.append(t)
    explants = Treatment.EXPLANT in new
    if explants and implant_status is not ImplantStatus.ACTIVE:
        raise InvalidValue(
            "treatment",
            Treatment.EXPLANT.value,
            f"a treatment other than explant: the implant is not in use ({implant_status.value})",
        )
    pump_out = explants or implant_status is ImplantStatus.EXPLANTED
    if Treatment.REIMPLANT in new and not pump_out:
        raise InvalidValue(
            "treatment",
            Treatment.REIMPLANT.value,
            "reimplant only once the pump is out (an explant before or in this entry)",
        )
    b = _one_of("bridge", bridge, Bridge)
    if b is not Bridge.NONE and not pump_out:
        raise InvalidValue(
            "bridge",
            b.value,
            "none while the pump is in (a bridge carries therapy while it is out)",
        )
    oral_max = oral_bridge_max_mg_per_day
    mg: float | None = None
    if b is Bridge.ORAL:
        if oral_bridge_mg_per_day is None:
            raise InvalidValue(
                "oral_bridge_mg_per_day",
                None,
                f"> 0 and <= {oral_max:g} mg/day with an oral bridge",
            )
        value = oral_bridge_mg_per_day
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0.0 < value <= oral_max
        ):
            raise InvalidValue(
                "oral_bridge_mg_per_day",
                value,
                f"> 0 and <= {oral_max:g} mg/day",
            )
        mg = float(value)
    elif oral_bridge_mg_per_day is not None:
        raise InvalidValue(
            "oral_bridge_mg_per_day", oral_bridge_mg_per_day, "none unless the bridge is oral"
        )
    if status is None:
        if explants:
            st = ComplicationStatus.EXPLANTED
        else:
            st = previous_status or ComplicationStatus.ONGOING
    else:
        st = _one_of("status", status, ComplicationStatus)
    if st is ComplicationStatus.EXPLANTED and not pump_out:
        raise InvalidValue(
            "status",
            st.value,
            "ongoing or resolved while the pump is in (explanted: after an explant)",
        )
    return ComplicationTerms(k, tuple(given), b, mg, st, explants)
