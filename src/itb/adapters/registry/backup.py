"""Backups of the whole registry as one JSON document, and their restore.

A backup holds every table's rows (times in ISO form, UTC), the schema revision
and a digest of its own content; :func:`restore` loads it into an empty
registry of the same schema in one transaction, so a restore is whole or not
at all. The audit chain travels with the rows: after a restore
``itb clinic audit verify`` proves nothing was lost or altered.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from itb.adapters.registry import tables as t
from itb.adapters.registry.migrate import head_revision
from itb.domain.errors import InvalidValue

__all__ = ["FORMAT", "dump", "load"]

FORMAT = "itb-registry-backup"
FORMAT_VERSION = 1

_ORDER = (
    "clinic",
    "id_counters",
    "patients",
    "users",
    "contacts",
    "assessments",
    "implants",
    "surgeries",
    "complications",
    "commands",
    "snapshots",
    "interrogations",
    "refills",
    "changes",
    "visits",
    "symptoms",
    "audit_log",
    "audit_head",
)
"""Tables in an order that satisfies their foreign keys."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _digest(tables: dict[str, list[dict[str, Any]]]) -> str:
    text = json.dumps(tables, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dump(engine: Engine) -> dict[str, Any]:
    """Every row of every table, in one consistent read."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        conn.begin()
        for name in _ORDER:
            table = t.TABLES[name]
            order = list(table.primary_key.columns)
            rows = conn.execute(sa.select(table).order_by(*order)).mappings()
            out[table.name] = [{k: _plain(v) for k, v in r.items()} for r in rows]
        conn.rollback()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema": head_revision(),
        "digest": _digest(out),
        "tables": out,
    }


def _parse(table: sa.Table, row: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in table.columns:
        if col.name not in row:
            raise InvalidValue(f"{where}.{col.name}", None, "a value (the backup lacks it)")
        value = row[col.name]
        if value is not None and isinstance(col.type, t.UtcDateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(col.type, sa.Date):
            value = date.fromisoformat(value)
        out[col.name] = value
    return out


def load(engine: Engine, backup: Any) -> dict[str, int]:
    """Load a backup into an empty registry; the rows restored per table.

    Raises:
        InvalidValue: not an ``itb`` backup, another schema, a damaged backup (its
            digest differs), or a registry that is not empty.
    """
    if not isinstance(backup, dict) or backup.get("format") != FORMAT:
        raise InvalidValue("backup", type(backup).__name__, f"an {FORMAT} JSON document")
    if backup.get("format_version") != FORMAT_VERSION:
        raise InvalidValue(
            "backup format_version", backup.get("format_version"), str(FORMAT_VERSION)
        )
    if backup.get("schema") != head_revision():
        raise InvalidValue(
            "backup schema", backup.get("schema"), f"{head_revision()} (this itb's registry schema)"
        )
    tables = backup.get("tables")
    names = [t.TABLES[name].name for name in _ORDER]
    if not isinstance(tables, dict) or set(tables) != set(names):
        raise InvalidValue("backup tables", sorted(tables or {}), ", ".join(names))
    if _digest(tables) != backup.get("digest"):
        raise InvalidValue(
            "backup digest",
            backup.get("digest"),
            "the digest of its content (the file was changed or cut)",
        )
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name in _ORDER:
            if name == "id_counters":
                continue
            table = t.TABLES[name]
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                raise InvalidValue(
                    "registry", name, "an empty registry to restore into (itb clinic init --empty)"
                )
        for name in _ORDER:
            table = t.TABLES[name]
            rows = [
                _parse(table, r, f"{table.name}[{i}]") for i, r in enumerate(tables[table.name])
            ]
            if name == "id_counters":
                conn.execute(sa.delete(table))
            if rows:
                conn.execute(sa.insert(table), rows)
            counts[name] = len(rows)
    return counts
