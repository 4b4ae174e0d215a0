"""Password hashing with Argon2id (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Argon2Hasher"]


class Argon2Hasher:
    """Argon2id hashes; the library's recommended parameters unless given (tests use
    cheaper ones to stay fast)."""

    def __init__(self, *, time_cost: int | None = None, memory_cost_kib: int | None = None) -> None:
        if time_cost is None and memory_cost_kib is None:
            self._h = PasswordHasher()
        else:
            self._h = PasswordHasher(
                time_cost=time_cost or 1, memory_cost=memory_cost_kib or 8, parallelism=1
            )

    def hash(self, password: str) -> str:
        """A hash to store."""
        return self._h.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches."""
        try:
            return self._h.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
