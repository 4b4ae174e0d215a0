"""The pump of a pump spec as it stands at a chosen date-time.

Plans the spec exactly as :func:`itb.services.pump_run.run_pump` does (the same
:mod:`itb.services.pump_plan`: same commands, same checks) and replays every
command at or before the chosen instant, then stops. The refill planner, the
programming-safety check and the audit start from that state.

Time of ``at``: a date-time without an offset is local wall time in the
spec's ``pump.timezone``; a date alone means 00:00 local on that date, or the
implant instant when the pump was implanted later that day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from itb.domain.errors import InvalidValue
from itb.domain.pump import Pump
from itb.domain.pump.commands import Applied, FillAtImplant, Refill
from itb.services.catalog import Catalog
from itb.services.limits import MAX_RUN_DAYS
from itb.services.pump_check import check_spec
from itb.services.pump_plan import PlannedCommand, PumpPlan, build_pump, plan, replay
from itb.services.pump_spec import MAX_YEAR, MIN_YEAR, PumpSpec
from itb.services.wall_clock import WallClock

__all__ = ["PumpAt", "parse_when", "pump_at"]


@dataclass(slots=True)
class PumpAt:
    """A pump at ``t_h`` hours after implant, with its plan, wall clock and last fill time."""

    pump: Pump
    plan: PumpPlan
    t_h: float
    last_fill_t_h: float
    events_applied: int

    @property
    def clock(self) -> WallClock:
        """The plan's wall clock."""
        return self.plan.clock


def parse_when(text: str, *, field: str) -> datetime | date:
    """``2026-03-01`` (a date) or ``2026-03-01T09:00[:00][+01:00]`` (a date-time).

    Raises:
        InvalidValue: anything else, or a year outside what a run can be placed in.
    """
    value = text.strip()
    try:
        out: datetime | date = (
            date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        )
    except ValueError:
        raise InvalidValue(
            field, text, "a date YYYY-MM-DD or a date-time YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
        ) from None
    if not MIN_YEAR <= out.year <= MAX_YEAR:
        raise InvalidValue(field, text, f"a date in the years {MIN_YEAR} to {MAX_YEAR}")
    return out


def _at_hours(clock: WallClock, at: datetime | date | None, field: str) -> float:
    if at is None:
        return 0.0
    if isinstance(at, datetime):
        t = clock.t_h(at, field=field)
    else:
        t = clock.t_h(datetime(at.year, at.month, at.day), field=field)
        if t < 0.0 and at == clock.local(0.0).date():
            t = 0.0
    if t < 0.0:
        raise InvalidValue(field, at.isoformat(), f"at or after the implant ({clock.iso(0.0)})")
    if t > MAX_RUN_DAYS * 24.0:
        raise InvalidValue(field, at.isoformat(), f"within {MAX_RUN_DAYS:g} days of the implant")
    return t


def pump_at(
    spec: PumpSpec,
    catalog: Catalog,
    at: datetime | date | None = None,
    *,
    until_h: float | None = None,
    before_command: Callable[[PlannedCommand, Pump], None] | None = None,
    field: str = "at",
) -> PumpAt:
    """The spec's pump at ``at`` (default: the implant, after the first fill and programming).

    Args:
        spec: the pump spec.
        catalog: the reviewed data.
        at: a wall-clock date or date-time (see the module docstring).
        until_h: hours after implant, instead of ``at``.
        before_command: called with each command and the pump just before it is
            applied (the pump is then at the command's time).
        field: how the caller names ``at`` in its errors (a CLI flag, an API field).

    Raises:
        InvalidValue, NotAllowedForPump, ConcentrationMismatch, HardLimitExceeded: the
            spec is refused (one line naming the field), or ``at`` is before the implant.
        PumpStateError: a command before ``at`` is refused by the pump.
    """
    check_spec(spec, catalog)
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    t_at = _at_hours(clock, at, field) if until_h is None else until_h
    p = plan(spec, catalog, end_h=t_at)
    pump = build_pump(p)
    last_fill = 0.0
    events = 0

    def after(step: PlannedCommand, applied: Applied) -> None:
        nonlocal last_fill, events
        if isinstance(step.command, (Refill, FillAtImplant)):
            last_fill = step.t_h
        if step.index is not None:
            events += 1

    replay(p, pump, catalog, until_h=t_at, before=before_command, after=after)
    return PumpAt(pump, p, t_at, last_fill, events)
