"""Signing in: bearer tokens with an inactivity timeout and an absolute lifetime, and failed
log-ins slowed per account and per address.

A token is 32 random bytes (URL-safe text) handed to the client once; the registry keeps
only its SHA-256, so a copy of the database signs nobody in. The throttle lives in the
serving process: after the free failures each further one doubles the wait, up to a
maximum, and failures older than the window are forgotten (``clinic.toml [sessions]``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock

from itb.domain.clinic.rules import SessionPolicy
from itb.domain.errors import TooManyAttempts

__all__ = ["IssuedToken", "LoginThrottle", "new_token", "token_hash"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new session's bearer token (shown once) and how long it may live, s."""

    token: str
    expires_in_s: int
    username: str
    role: str


def new_token() -> str:
    """A fresh bearer token."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the registry keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class LoginThrottle:
    """Failed log-ins per key (``user:NAME``, ``addr:IP``) and the wait they impose."""

    def __init__(self, policy: SessionPolicy) -> None:
        self.policy = policy
        self._failures: dict[str, deque[datetime]] = {}
        self._blocked_until: dict[str, datetime] = {}
        self._lock = Lock()

    def check(self, keys: tuple[str, ...], now: datetime) -> None:
        """Refuse while any key is waiting.

        Raises:
            TooManyAttempts: with the seconds to wait.
        """
        with self._lock:
            waits = [
                (until - now).total_seconds()
                for k in keys
                if (until := self._blocked_until.get(k)) is not None and until > now
            ]
        if waits:
            wait = max(waits)
            raise TooManyAttempts(
                f"too many failed log-ins: try again in {wait:.0f} s", retry_after_s=wait
            )

    def failed(self, keys: tuple[str, ...], now: datetime) -> None:
        """Count a failure for every key."""
        p = self.policy
        window = timedelta(minutes=p.failed_login_window_minutes.value)
        with self._lock:
            for k in keys:
                q = self._failures.setdefault(k, deque())
                q.append(now)
                while q and now - q[0] > window:
                    q.popleft()
                extra = len(q) - int(p.free_failed_logins.value)
                if extra > 0:
                    delay = min(
                        p.failed_login_delay_s.value * 2.0 ** (extra - 1),
                        p.failed_login_delay_max_s.value,
                    )
                    self._blocked_until[k] = now + timedelta(seconds=delay)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        """Forget the failures of every key."""
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
                self._blocked_until.pop(k, None)
