"""The whole pump spec checked before anything runs, whatever part of it a run reaches.

:func:`itb.services.pump_plan.plan` checks the commands a run reaches; a run of
``--days 3`` would otherwise accept a refill of 1e300 mL at day 300 without a word.
:func:`check_spec` plans the first occurrence of every event, however late, through
the same checks, and then checks what only the pump itself would refuse when the
event comes (an access-port injection larger than the kit's syringe, a fault
beyond what the pump could do), so that every problem of the file is found first
and named by its path (``events[3].volume_ml``).
"""

from __future__ import annotations

from itb.domain.clinical.drug_library import DrugLibrary
from itb.domain.errors import InvalidValue, ITBError
from itb.domain.pump.commands import InjectAccessPort, StartFault
from itb.domain.units import HOURS_PER_DAY
from itb.services.catalog import Catalog
from itb.services.limits import MAX_RUN_DAYS
from itb.services.pump_plan import build_pump, plan
from itb.services.pump_spec import PumpSpec
from itb.services.wall_clock import WallClock

__all__ = ["check_access_port_drug", "check_spec"]

_LONGEST_H = MAX_RUN_DAYS * HOURS_PER_DAY


def _first_occurrences(spec: PumpSpec) -> PumpSpec:
    events = [
        ev.model_copy(update={"repeat_every_days": None, "repeat_count": None})
        for ev in spec.events
    ]
    return spec.model_copy(update={"events": events})


def _check_times(spec: PumpSpec) -> None:
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    for i, ev in enumerate(spec.events):
        if ev.at is not None and clock.t_h(ev.at, field=f"events[{i}].at") > _LONGEST_H:
            raise InvalidValue(
                f"events[{i}].at",
                ev.at.isoformat(),
                f"within {MAX_RUN_DAYS:g} days of pump.implanted_at (the longest run)",
            )


def check_access_port_drug(library: DrugLibrary, concentration_mcg_per_ml: float) -> None:
    """What goes through the catheter access port: contrast or saline (0) up to the
    strongest baclofen product.

    Raises:
        InvalidValue: a concentration stronger than any product (``concentration_mcg_per_ml``).
    """
    strongest = library.strongest_mcg_per_ml
    if concentration_mcg_per_ml > strongest:
        raise InvalidValue(
            "concentration_mcg_per_ml",
            concentration_mcg_per_ml,
            f"0 (contrast or saline) to {strongest:g} mcg/mL (the strongest baclofen product)",
        )


def check_spec(spec: PumpSpec, catalog: Catalog) -> None:
    """Check every event of ``spec`` against the pump and the drug library.

    Raises:
        InvalidValue, NotAllowedForPump, ConcentrationMismatch, HardLimitExceeded,
        SoftLimitNeedsReason: the first problem, one line naming the field by its path.
    """
    _check_times(spec)
    p = plan(_first_occurrences(spec), catalog, end_h=_LONGEST_H)
    pump = build_pump(p)
    for step in p.commands:
        command = step.command
        try:
            if isinstance(command, InjectAccessPort):
                pump.validate_access_port_injection(
                    command.volume_ml, command.concentration_mcg_per_ml, command.duration_h
                )
                check_access_port_drug(catalog.library, command.concentration_mcg_per_ml)
            elif isinstance(command, StartFault):
                pump.validate_fault(command.fault)
        except ITBError as exc:
            raise exc.within(step.where) from None
