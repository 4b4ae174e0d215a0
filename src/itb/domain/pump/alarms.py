"""Pump alarms and the alarm log.

Critical alarms sound two tones; non-critical ones a single tone repeating
about once an hour ([D5][D13][D14]). Critical: empty reservoir, end of
service, motor stall, pump stopped for over 48 h, critical memory error.
Non-critical: low reservoir, elective replacement indicator (ERI), non-critical
memory error ([D36][D51]).

An alarm is *active* while its condition holds and ends only when the cause is
fixed (a refill, a new pump, a repair). An interrogation *acknowledges* it:
the sound stops, the alarm stays active and shown (how alarms are silenced is
not confirmed by the sources: assumed, by a programmer's
interrogation; the patient cannot silence them). A critical memory error stops
infusion (a safe state, assumed by analogy with the reduced-battery safe
state [D5]); end of service stops the pump [D6][D7].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["CRITICAL", "AlarmKind", "AlarmRecord", "tone_of"]


class AlarmKind(StrEnum):
    """What an alarm is about."""

    LOW_RESERVOIR = "low_reservoir"
    EMPTY_RESERVOIR = "empty_reservoir"
    ELECTIVE_REPLACEMENT = "elective_replacement_indicator"
    END_OF_SERVICE = "end_of_service"
    MOTOR_STALL = "motor_stall"
    PUMP_STOPPED = "pump_stopped_over_48h"
    MEMORY_ERROR_CRITICAL = "memory_error_critical"
    MEMORY_ERROR = "memory_error"


CRITICAL: frozenset[AlarmKind] = frozenset(
    {
        AlarmKind.EMPTY_RESERVOIR,
        AlarmKind.END_OF_SERVICE,
        AlarmKind.MOTOR_STALL,
        AlarmKind.PUMP_STOPPED,
        AlarmKind.MEMORY_ERROR_CRITICAL,
    }
)


def tone_of(kind: AlarmKind) -> str:
    """The sound the pump makes for ``kind``."""
    if kind in CRITICAL:
        return "two-tone (~3 s), critical"
    return "single tone (~1 s), repeating about hourly"


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One line of the alarm log: an alarm raised or ended at ``t_h`` (hours)."""

    t_h: float
    kind: AlarmKind
    action: Literal["raised", "cleared_cause_fixed", "acknowledged_by_interrogation"]
    detail: str = ""

    @property
    def critical(self) -> bool:
        """True for two-tone critical alarms."""
        return self.kind in CRITICAL

    @property
    def tone(self) -> str:
        """How it sounds."""
        return tone_of(self.kind)
