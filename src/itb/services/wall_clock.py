"""Run time (hours since implant) and the patient's wall clock.

Model time is ``t_h``, hours after the implant instant; calendar dates exist
only at the edges. The pump keeps its own clock (hours since a Monday 00:00
of local wall time at the moment it was set), so a daylight-saving change
moves the wall clock but not the pump's until the clock is set again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from itb.domain.errors import InvalidValue

__all__ = ["WallClock"]


class WallClock:
    """Converts between run time (hours since implant) and the patient's wall clock."""

    def __init__(self, implanted_at: datetime, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.implant_utc = self.instant(implanted_at, field="pump.implanted_at").astimezone(UTC)
        local = self.implant_utc.astimezone(self.zone).replace(tzinfo=None)
        monday = local.date() - timedelta(days=local.weekday())
        self._epoch = datetime(monday.year, monday.month, monday.day)

    def instant(self, when: datetime, *, field: str) -> datetime:
        """An aware instant; naive times are local wall time (first occurrence if repeated).

        Raises:
            InvalidValue: a local time inside the hour skipped by a DST change.
        """
        if when.tzinfo is not None:
            return when
        aware = when.replace(tzinfo=self.zone, fold=0)
        if aware.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != when:
            raise InvalidValue(
                field,
                when.isoformat(),
                f"a local time that exists in {self.zone.key} (this one falls in the hour "
                "skipped by a daylight-saving change)",
            )
        return aware

    def t_h(self, when: datetime, *, field: str) -> float:
        """Hours after implant of ``when``."""
        delta = self.instant(when, field=field).astimezone(UTC) - self.implant_utc
        return delta.total_seconds() / 3600.0

    def local(self, t_h: float) -> datetime:
        """Aware local date-time at run time ``t_h``."""
        return (self.implant_utc + timedelta(hours=t_h)).astimezone(self.zone)

    def iso(self, t_h: float) -> str:
        """ISO local date-time with offset, to the second."""
        return self.local(t_h).isoformat(timespec="seconds")

    def pump_clock_offset_h(self, t_h: float) -> float:
        """Offset that makes the pump clock read local wall hours since a Monday 00:00."""
        wall = self.local(t_h).replace(tzinfo=None)
        return (wall - self._epoch).total_seconds() / 3600.0 - t_h

    def hour_of_day(self, t_h: float) -> float:
        """Local hour of the day (0-24) at run time ``t_h``."""
        local = self.local(t_h)
        return local.hour + local.minute / 60.0 + local.second / 3600.0
