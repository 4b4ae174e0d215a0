"""The one table from the error tree to exit codes and HTTP statuses.

Every entrypoint maps an :class:`~itb.domain.errors.ITBError` here and nowhere
else. The most specific class listed wins (the error's own class first, then
its bases, in method-resolution order).

Exit codes (documented in the README): 0 done; 1 a check that failed (a blocked
programming change, a failed validation or audit, a refused role, a stale
version); 2 bad input or a refused action (a value outside what is allowed, an
unknown record, a command the pump refuses); 70 an internal error (a bug: the
message says so, never a traceback); 75 the registry's database could not be
reached or stayed busy (nothing was written; try again); 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.domain.errors import (
    AuditChainBroken,
    AuthenticationFailed,
    CheckFailed,
    ConcentrationMismatch,
    Forbidden,
    InvalidValue,
    ITBError,
    NotAllowedForPump,
    NotFound,
    PumpStateError,
    SafetyCheckRefused,
    SessionError,
    StaleVersion,
    StorageUnavailable,
    TooManyAttempts,
    ValidationFailed,
    VerificationRequired,
)

__all__ = [
    "ERROR_TABLE",
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TRY_AGAIN",
    "ErrorOutcome",
    "outcome_of",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70
EXIT_TRY_AGAIN = 75
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class ErrorOutcome:
    """What an error means to a command-line user and to an HTTP client."""

    exit_code: int
    http_status: int


ERROR_TABLE: dict[type[ITBError], ErrorOutcome] = {
    # checks that failed
    VerificationRequired: ErrorOutcome(EXIT_CHECK_FAILED, 409),
    SafetyCheckRefused: ErrorOutcome(EXIT_CHECK_FAILED, 422),
    ValidationFailed: ErrorOutcome(EXIT_CHECK_FAILED, 422),
    AuditChainBroken: ErrorOutcome(EXIT_CHECK_FAILED, 409),
    AuthenticationFailed: ErrorOutcome(EXIT_CHECK_FAILED, 401),
    TooManyAttempts: ErrorOutcome(EXIT_CHECK_FAILED, 429),
    Forbidden: ErrorOutcome(EXIT_CHECK_FAILED, 403),
    StaleVersion: ErrorOutcome(EXIT_CHECK_FAILED, 409),
    CheckFailed: ErrorOutcome(EXIT_CHECK_FAILED, 422),
    # the database could not be reached or stayed busy
    StorageUnavailable: ErrorOutcome(EXIT_TRY_AGAIN, 503),
    # bad input or a refused action
    NotFound: ErrorOutcome(EXIT_BAD_INPUT, 404),
    PumpStateError: ErrorOutcome(EXIT_BAD_INPUT, 409),
    SessionError: ErrorOutcome(EXIT_BAD_INPUT, 409),
    InvalidValue: ErrorOutcome(EXIT_BAD_INPUT, 422),
    ConcentrationMismatch: ErrorOutcome(EXIT_BAD_INPUT, 422),
    NotAllowedForPump: ErrorOutcome(EXIT_BAD_INPUT, 422),
    ITBError: ErrorOutcome(EXIT_BAD_INPUT, 400),
}
"""Error class -> outcome. Every class of :mod:`itb.domain.errors` is covered by it or a base."""


def outcome_of(exc: ITBError) -> ErrorOutcome:
    """The outcome of ``exc``: its own class's, else its nearest listed base's."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return ERROR_TABLE[ITBError]
