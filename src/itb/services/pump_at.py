"""The pump of a pump spec as it stands at a chosen date-time.

Builds the pump exactly as :func:`itb.services.pump_run.run_pump` does (same
spec format, same planning checks, same event handling, reused from that
module) and applies every event at or before the chosen instant, then stops.
The refill planner and the programming-safety check start from that state.

Time of ``at``: a date-time without an offset is local wall time in the
spec's ``pump.timezone``; a date alone means 00:00 local on that date, or the
implant instant when the pump was implanted later that day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from itb.domain.errors import InvalidValue, ITBError
from itb.domain.pump import ProgrammingSession, Pump
from itb.services.pump_run import (
    PatientBolusRow,
    PumpCatalog,
    RefillRow,
    WallClock,
    _apply,  # reused, not copied: the run's own event handling
    _plan,
    _prefixed,
    _Step,
    build_pump,
)
from itb.services.pump_spec import PumpSpec, RefillEvent

__all__ = ["PumpAt", "parse_when", "pump_at"]


@dataclass(slots=True)
class PumpAt:
    """A pump at ``t_h`` hours after implant, with its wall clock and last fill time."""

    pump: Pump
    clock: WallClock
    t_h: float
    last_fill_t_h: float
    events_applied: int


def parse_when(text: str, *, field: str) -> datetime | date:
    """``2026-03-01`` (a date) or ``2026-03-01T09:00[:00][+01:00]`` (a date-time).

    Raises:
        InvalidValue: anything else (one line).
    """
    value = text.strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidValue(
            field, text, "a date YYYY-MM-DD or a date-time YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
        ) from None


def _at_hours(clock: WallClock, at: datetime | date | None) -> float:
    if at is None:
        return 0.0
    if isinstance(at, datetime):
        t = clock.t_h(at, field="--at")
    else:
        t = clock.t_h(datetime(at.year, at.month, at.day), field="--at")
        if t < 0.0 and at == clock.local(0.0).date():
            t = 0.0
    if t < 0.0:
        raise InvalidValue("--at", at.isoformat(), f"at or after the implant ({clock.iso(0.0)})")
    return t


def pump_at(
    spec: PumpSpec,
    catalog: PumpCatalog,
    at: datetime | date | None = None,
    *,
    until_h: float | None = None,
    before_event: Callable[[_Step, Pump, WallClock], None] | None = None,
) -> PumpAt:
    """The spec's pump at ``at`` (default: the implant, after the first fill and programming).

    ``until_h`` (hours after implant) may be given instead of ``at``; ``before_event``
    is called with each event step, the pump and the clock just before the event is
    applied (the pump is then at the event's time).

    Raises:
        InvalidValue, NotAllowedForPump, ConcentrationMismatch: the spec is refused
            (one line naming the field), or ``at`` is before the implant.
        PumpStateError: an event before ``at`` is refused by the pump.
    """
    pump, clock = build_pump(spec, catalog)
    t_at = _at_hours(clock, at) if until_h is None else until_h
    initial, priming, steps, _ = _plan(spec, pump, catalog, clock, t_at)
    pump.fill(
        0.0,
        spec.fill.volume_ml,
        spec.fill.concentration_mcg_per_ml,
        true_concentration_mcg_per_ml=spec.fill.true_concentration_mcg_per_ml,
        reason="initial fill at implant",
    )
    alarm = spec.prescription.low_reservoir_alarm_ml if spec.prescription else None
    if initial is not None or priming is not None or alarm is not None:
        session = ProgrammingSession(pump, 0.0, reason="programming at implant")
        if initial is not None:
            session.stage_prescription(initial, "initial prescription")
        if alarm is not None:
            session.stage_low_reservoir_alarm(alarm, "initial prescription")
        if priming is not None:
            session.stage_bolus(priming, "priming bolus: advance drug to the catheter tip")
        session.commit(0.0)
    refills: list[RefillRow] = []
    boluses: list[PatientBolusRow] = []
    last_fill_t = 0.0

    def ignore(_: object) -> None:
        return None

    for step in steps:
        pump.advance_to(step.t_h)
        if before_event is not None:
            before_event(step, pump, clock)
        try:
            _apply(step, pump, clock, catalog, ignore, refills, boluses)
        except ITBError as exc:
            raise _prefixed(
                exc, f"events[{step.index}] ({step.action} at {clock.iso(step.t_h)})"
            ) from None
        if isinstance(step.event, RefillEvent):
            last_fill_t = step.t_h
    pump.advance_to(t_at)
    return PumpAt(pump, clock, t_at, last_fill_t, len(steps))
