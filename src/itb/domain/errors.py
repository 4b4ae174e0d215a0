"""One exception tree for the whole package.

Every rule raises a subclass of :class:`ITBError`; none returns ``None`` for
"failed". The CLI maps the tree to exit codes and the API to HTTP statuses,
each in one place.
"""

from __future__ import annotations

__all__ = [
    "ConcentrationMismatch",
    "DoseOutOfRange",
    "HardLimitExceeded",
    "ITBError",
    "InvalidValue",
    "NotAllowedForPump",
    "PumpStateError",
    "ReservoirOverfill",
    "SessionError",
    "SoftLimitNeedsReason",
    "TimeWentBackwards",
]


class ITBError(Exception):
    """Root of every error raised by itb."""


class InvalidValue(ITBError, ValueError):
    """A value is outside what is allowed.

    The message is always one line naming the field, the value and what is
    allowed, e.g. ``dose_mcg_per_day = -5 is not allowed; allowed: > 0``.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} = {value!r} is not allowed; allowed: {allowed}")


class DoseOutOfRange(InvalidValue):
    """A dose or rate is outside the pump's or the drug library's range."""


class ReservoirOverfill(InvalidValue):
    """A fill would put more into the reservoir than it holds."""


class ConcentrationMismatch(ITBError):
    """A program's concentration differs from the drug the pump holds."""

    def __init__(self, programmed_mcg_per_ml: float, in_pump_mcg_per_ml: float) -> None:
        self.programmed_mcg_per_ml = programmed_mcg_per_ml
        self.in_pump_mcg_per_ml = in_pump_mcg_per_ml
        super().__init__(
            f"concentration_mcg_per_ml = {programmed_mcg_per_ml:g} does not match the drug in "
            f"the pump; allowed: {in_pump_mcg_per_ml:g}"
        )


class NotAllowedForPump(ITBError):
    """The pump kind (or the drug's labelling for it) does not allow the action."""


class PumpStateError(ITBError):
    """The action is impossible in the pump's present state."""


class SessionError(ITBError):
    """A programming session was used out of order."""


class TimeWentBackwards(InvalidValue):
    """A command was dated before the pump's present time."""


class HardLimitExceeded(InvalidValue):
    """A drug-library hard limit: it cannot be passed, whatever the reason."""


class SoftLimitNeedsReason(ITBError):
    """A drug-library soft limit: passing it needs an explicit, recorded reason."""

    def __init__(self, field: str, value: object, limit: str) -> None:
        self.field = field
        self.value = value
        self.limit = limit
        super().__init__(
            f"{field} = {value!r} passes the soft limit {limit}; allowed: only with an explicit "
            "override reason"
        )
