"""The clinic registry's storage: SQLAlchemy 2 on SQLite (default) or PostgreSQL.

:func:`open_registry` connects to a registry URL and refuses one whose schema is
missing or of another ``itb``; :meth:`Registry.create` sets up a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from itb.adapters.registry import backup as _backup
from itb.adapters.registry.migrate import schema_state, upgrade
from itb.adapters.registry.store import SqlUnitOfWork, make_engine, normalise_url
from itb.domain.errors import InvalidValue, StorageUnavailable

__all__ = ["Registry", "SystemClock", "open_registry"]


class SystemClock:
    """The machine's clock, aware UTC."""

    def now(self) -> datetime:
        """Now, UTC."""
        return datetime.now(UTC)


@dataclass
class Registry:
    """A registry database: its engine and units of work."""

    url: str
    engine: Engine

    @property
    def where(self) -> str:
        """The URL with any password hidden (for messages)."""
        return make_url(self.url).render_as_string(hide_password=True)

    def uow(self) -> SqlUnitOfWork:
        """A new unit of work."""
        return SqlUnitOfWork(self.engine)

    def read_uow(self) -> SqlUnitOfWork:
        """A new read-only unit of work."""
        return SqlUnitOfWork(self.engine, readonly=True)

    def create(self) -> None:
        """Create (or migrate) the schema."""
        try:
            upgrade(self.engine)
        except OperationalError as exc:
            raise StorageUnavailable(
                f"cannot set up the registry at {self.where}: {str(exc.orig).splitlines()[0]}"
            ) from None

    def require_current(self) -> None:
        """Refuse a database without this ``itb``'s schema.

        Raises:
            InvalidValue: empty (never initialised), older or newer schema.
            StorageUnavailable: the database cannot be reached.
        """
        try:
            state = schema_state(self.engine)
        except OperationalError as exc:
            raise StorageUnavailable(
                f"cannot open the registry at {self.where}: {str(exc.orig).splitlines()[0]}"
            ) from None
        if state == "empty":
            raise InvalidValue(
                "registry",
                self.where,
                "a registry set up with itb clinic init (or itb clinic demo)",
            )
        if state == "older":
            raise InvalidValue(
                "registry", self.where, "a registry migrated with itb clinic upgrade"
            )
        if state == "newer":
            raise InvalidValue("registry", self.where, "a registry of this itb version or older")

    def dump(self) -> dict[str, Any]:
        """A backup of everything."""
        return _backup.dump(self.engine)

    def load(self, data: Any) -> dict[str, int]:
        """Restore a backup into this (empty) registry."""
        return _backup.load(self.engine, data)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


def open_registry(url: str) -> Registry:
    """A registry at ``url`` (SQLite file or PostgreSQL); nothing is created or checked yet.

    Raises:
        InvalidValue: not a SQLite or PostgreSQL URL, or a SQLite file in a missing folder.
    """
    normal = normalise_url(url)
    parsed = make_url(normal)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise InvalidValue(
                "database URL", url, f"a SQLite file in an existing folder ({folder} is not one)"
            )
    return Registry(normal, make_engine(normal))
