"""Settings, validated when the application starts (never at import time).

Every setting has a default a first run can live with, and can be given by an
environment variable; entrypoints pass command-line values in explicitly.

``ITB_DATABASE_URL``
    The clinic registry's database (SQLAlchemy URL). Default: a SQLite file
    ``itb-clinic.db`` in the current directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from itb.domain.errors import InvalidValue

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite:///itb-clinic.db"
_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the application is configured with."""

    database_url: str

    def __post_init__(self) -> None:
        scheme = self.database_url.split(":", 1)[0]
        if scheme not in _SCHEMES or "://" not in self.database_url:
            raise InvalidValue(
                "database URL",
                self.database_url,
                "sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
            )


def load_settings(
    environ: Mapping[str, str] | None = None, *, database_url: str | None = None
) -> Settings:
    """Settings from explicit values, then the environment, then the defaults.

    Raises:
        InvalidValue: a malformed setting (one line naming it).
    """
    env = os.environ if environ is None else environ
    return Settings(
        database_url=database_url or env.get("ITB_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
