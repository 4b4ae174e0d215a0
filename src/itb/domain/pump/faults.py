"""Faults for simulation.

Each fault changes how drug moves, not what the pump believes: the pump's
calculated reservoir keeps following the program, which is why faults show as
refill discrepancies and symptoms before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from itb.domain.errors import InvalidValue
from itb.domain.units import require_finite

__all__ = ["CATHETER_FAULT_KINDS", "Fault", "FaultKind"]


class FaultKind(StrEnum):
    """Fault types."""

    OCCLUSION = "occlusion"
    """Catheter kink or occlusion: nothing flows; the reservoir stops emptying."""
    LEAK = "leak"
    """Catheter leak or tear: ``fraction`` of the flow is lost to tissue."""
    DISCONNECTION = "disconnection"
    """Catheter disconnected at the pump: all flow is lost to tissue, none reaches the CSF."""
    MIGRATION = "migration"
    """Tip migrated out of the intrathecal space: only ``fraction`` reaches the CSF."""
    MOTOR_STALL = "motor_stall"
    """The motor stops (critical alarm)."""
    BATTERY_DEPLETION = "battery_depletion"
    """Premature battery depletion: drain multiplied by ``factor``."""
    OVERINFUSION_DRIFT = "overinfusion_drift"
    """The accuracy factor steps to ``factor`` (e.g. 1.25 = 25 % over programmed)."""
    MEMORY_ERROR = "memory_error"
    """Memory error; critical when ``critical``."""
    TIP_MASS = "tip_mass"
    """An inflammatory mass at the catheter tip: only ``fraction`` reaches the CSF
    (:mod:`itb.domain.clinical.complications`)."""
    CSF_LEAK = "csf_leak"
    """Spinal fluid leaks where the catheter enters the spine: only ``fraction`` of the
    drug delivered stays in the CSF."""
    POCKET_FLIP = "pocket_flip"
    """The pump has turned over in its pocket: the refill septum cannot be reached, so
    no refill is possible until a surgical re-fixation; delivery goes on."""


CATHETER_FAULT_KINDS: frozenset[FaultKind] = frozenset(
    {
        FaultKind.DISCONNECTION,
        FaultKind.OCCLUSION,
        FaultKind.LEAK,
        FaultKind.MIGRATION,
        FaultKind.TIP_MASS,
    }
)
"""Faults of the catheter: a catheter study (dye study, CAP aspiration, imaging [D95]) finds
them and a surgical revision ends them. Every engine and the clinic use this one set."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault and its size.

    Attributes:
        kind: what fails.
        fraction: for LEAK the fraction lost (0-1); for MIGRATION, TIP_MASS and CSF_LEAK
            the fraction still reaching (or staying in) the CSF (0-1).
        factor: for BATTERY_DEPLETION the drain multiplier (> 1); for
            OVERINFUSION_DRIFT the new accuracy factor (> 0).
        critical: for MEMORY_ERROR.
    """

    kind: FaultKind
    fraction: float = 1.0
    factor: float = 1.0
    critical: bool = False

    def __post_init__(self) -> None:
        require_finite("fault fraction", self.fraction)
        require_finite("fault factor", self.factor)
        if not 0.0 <= self.fraction <= 1.0:
            raise InvalidValue("fault fraction", self.fraction, "0 to 1")
        if self.factor <= 0.0:
            raise InvalidValue("fault factor", self.factor, "> 0")
