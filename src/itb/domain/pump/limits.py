"""What a pump asks before it accepts a program or a bolus: the drug library's limits.

The pump does not know the drug library or the patient; it holds an object
with this shape (:class:`itb.domain.clinical.dose_guard.DoseGuard` is the one
implementation) and asks it at every staging, so every path that programs a
pump meets the same limits. A refusal raises; an allowed change returns a
:class:`LimitVerdict` whose lines the pump writes to its event log (soft
limits passed with a reason, hazards a simulation declared).
"""

from __future__ import annotations

from typing import Protocol

from itb.domain.pump.prescription import Prescription

__all__ = ["DoseLimits", "LimitVerdict"]


class LimitVerdict(Protocol):
    """An allowed change, and what the pump should log about it."""

    @property
    def hazards(self) -> tuple[str, ...]:
        """Limits passed because the simulation declares a hazard, one line each."""
        ...

    def log_lines(self) -> tuple[str, ...]:
        """Soft limits passed with a reason and declared hazards, for the event log."""
        ...


class DoseLimits(Protocol):
    """The drug library for the patient this pump is implanted in."""

    @property
    def declared_hazard(self) -> str | None:
        """What the simulation deliberately models, if anything."""
        ...

    def check_concentration(self, concentration_mcg_per_ml: float, pump_kind: str) -> None:
        """Raise when the pump kind may not hold this concentration."""
        ...

    def check_prescription(
        self,
        prescription: Prescription,
        *,
        pump_kind: str,
        previous: Prescription | None = None,
        override_reason: str | None = None,
    ) -> LimitVerdict:
        """Raise on a hard limit, or a soft limit without a reason; else the verdict."""
        ...

    def check_bolus(
        self,
        bolus_mcg: float,
        concentration_mcg_per_ml: float,
        pump_kind: str,
        override_reason: str | None = None,
    ) -> LimitVerdict:
        """Raise on a hard limit, or a soft limit without a reason; else the verdict."""
        ...
