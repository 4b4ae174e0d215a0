"""Schema migrations (Alembic), run from inside the package: no alembic.ini to find.

:func:`upgrade` brings a database to the newest schema; :func:`schema_state`
says whether a database is empty, current or older than this ``itb``.
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

__all__ = ["head_revision", "schema_state", "upgrade"]

SchemaState = Literal["empty", "current", "older", "newer"]


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("itb.adapters.registry").joinpath("migrations"))
    )
    return cfg


def head_revision() -> str:
    """The newest schema revision this ``itb`` knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Create or migrate the registry's tables to the newest revision (one transaction)."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_state(engine: Engine) -> SchemaState:
    """Whether the database is empty, at this ``itb``'s schema, older, or newer."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    if current is None:
        return "empty"
    head = head_revision()
    if current == head:
        return "current"
    script = ScriptDirectory.from_config(_config())
    known = {rev.revision for rev in script.walk_revisions()}
    return "older" if current in known else "newer"
