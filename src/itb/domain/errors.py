"""One exception tree for the whole package.

Every rule raises a subclass of :class:`ITBError`; none returns ``None`` for
"failed". Two families matter to a user:

- **bad input or a refused action** (:class:`InvalidValue` and its subclasses,
  :class:`ConcentrationMismatch`, :class:`NotAllowedForPump`,
  :class:`PumpStateError`, :class:`SessionError`, :class:`SoftLimitNeedsReason`,
  :class:`NotFound`): the request cannot be carried out as given;
- **a check that failed** (:class:`CheckFailed`: a blocked programming change,
  a failed validation, a broken audit chain, a refused role, a stale version):
  the input was understood and the answer is no.

The entrypoints map the tree to exit codes and HTTP statuses in one table
(:mod:`itb.entrypoints.errors`). On the way up an error keeps its class:
callers add context with :meth:`ITBError.within` (``events[3]`` before a
field name), they never re-wrap it as another class.
"""

from __future__ import annotations

from typing import Self

__all__ = [
    "AuditChainBroken",
    "AuthenticationFailed",
    "BlockedBySafetyCheck",
    "CheckFailed",
    "ConcentrationMismatch",
    "DoseOutOfRange",
    "Forbidden",
    "HardLimitExceeded",
    "ITBError",
    "InvalidValue",
    "NotAllowedForPump",
    "NotFound",
    "OverrideReasonRequired",
    "PumpStateError",
    "ReservoirOverfill",
    "SafetyCheckRefused",
    "SeptumUnreachable",
    "SessionError",
    "SoftLimitNeedsReason",
    "StaleVersion",
    "StorageUnavailable",
    "TimeWentBackwards",
    "TooManyAttempts",
    "ValidationFailed",
    "VerificationRequired",
]

_MAX_VALUE_CHARS = 80
"""Values echoed in a message are cut to this many characters (a 10,000-character
string is named, not repeated)."""


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        return text[: _MAX_VALUE_CHARS - 1] + f"… ({len(text)} characters)"
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


class ITBError(Exception):
    """Root of every error raised by itb. Its message is always one line."""

    def __init__(self, message: str = "") -> None:
        super().__init__(_one_line(message))

    def _clone(self) -> Self:
        """A copy of the same class with the same attributes (exceptions do not copy well:
        their constructors take their own arguments, not their message)."""
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.args = self.args
        return out

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self.args[0]) if self.args else ""

    def within(self, where: str) -> Self:
        """The same error (same class) placed in context: ``where: message``.

        ``where`` names the part of the input it came from (``events[3] (refill at
        2026-04-05T09:00)``); the error's own class, fields and meaning are kept.
        """
        out = self._clone()
        out.args = (f"{where}: {self.message}",)
        return out


class InvalidValue(ITBError, ValueError):
    """A value is outside what is allowed.

    The message is always one line naming the field, the value and what is
    allowed, e.g. ``dose_mcg_per_day = -5 is not allowed; allowed: > 0``.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(self._text())

    def _text(self) -> str:
        return f"{self.field} = {_shown(self.value)} is not allowed; allowed: {self.allowed}"

    def within(self, where: str) -> Self:
        """The same error with its field placed under ``where`` (``events[3].volume_ml``).

        A ``where`` that already ends the field's path is not repeated; a ``where``
        with spaces (a description, not a path) is put in front of the message.
        """
        if " " in where:
            return super().within(where)
        out = self._clone()
        if not (out.field == where or out.field.startswith(f"{where}.")):
            out.field = f"{where}.{out.field}" if out.field else where
        out.args = (_one_line(out._text()),)
        return out

    def renamed(self, field: str) -> Self:
        """The same error naming the field as the caller's user wrote it (a CLI flag)."""
        out = self._clone()
        out.field = field
        out.args = (_one_line(out._text()),)
        return out


class DoseOutOfRange(InvalidValue):
    """A dose or rate is outside the pump's or the drug library's range."""


class ReservoirOverfill(InvalidValue):
    """A fill would put more into the reservoir than it holds."""


class TimeWentBackwards(InvalidValue):
    """A command was dated before the pump's present time."""


class HardLimitExceeded(InvalidValue):
    """A drug-library hard limit: it cannot be passed, whatever the reason."""


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


class SeptumUnreachable(PumpStateError):
    """The refill septum cannot be reached (the pump has turned over in its pocket)."""


class SessionError(ITBError):
    """A programming session was used out of order."""


class SoftLimitNeedsReason(InvalidValue):
    """A drug-library soft limit: passing it needs an explicit, recorded reason."""

    def __init__(self, field: str, value: object, limit: str) -> None:
        self.limit = limit
        super().__init__(field, value, "only with an explicit override reason")

    def _text(self) -> str:
        return (
            f"{self.field} = {_shown(self.value)} passes the soft limit {self.limit}; "
            f"allowed: {self.allowed}"
        )


class NotFound(ITBError):
    """A record that does not exist, or that the asker may not know exists."""


class StorageUnavailable(ITBError):
    """The registry's database cannot be reached or stays busy; nothing was written.
    Trying again later may succeed (exit code 75, HTTP 503)."""


# ------------------------------------------------------------- checks that failed


class CheckFailed(ITBError):
    """The input was understood and a check said no (exit code 1)."""


class SafetyCheckRefused(CheckFailed):
    """A checked programming change was refused; nothing was written to the pump."""


class BlockedBySafetyCheck(SafetyCheckRefused):
    """A block finding exists."""


class OverrideReasonRequired(SafetyCheckRefused):
    """A finding can only be passed with a recorded override reason, and none was given."""


class VerificationRequired(SafetyCheckRefused):
    """The change needs a second person's verification first."""


class ValidationFailed(CheckFailed):
    """A validation (of the model against its targets, of a file) did not pass."""


class AuditChainBroken(CheckFailed):
    """The audit trail's hash chain does not verify."""


class AuthenticationFailed(CheckFailed):
    """Who is asking could not be established (wrong password, expired session)."""


class TooManyAttempts(CheckFailed):
    """Log-ins refused for a while after repeated failures (per account and per address)."""

    def __init__(self, message: str = "", retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(CheckFailed):
    """The asker's role does not allow the action."""


class StaleVersion(CheckFailed):
    """Someone else changed the record first (optimistic locking)."""
