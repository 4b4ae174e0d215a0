"""Rows <-> records: the one place that knows how a domain record sits in a table.

A record's fields map to columns of the same name; its ``stamp`` is the four
``created_*``/``modified_*`` columns; enums are stored by value, tuples as JSON
lists; a field the table does not have is a bug caught at start-up.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import date, datetime
from enum import Enum
from typing import Any, Generic, TypeVar, get_args, get_origin, get_type_hints

import sqlalchemy as sa

from itb.domain.clinic.records import Stamp

__all__ = ["RecordMapper"]

R = TypeVar("R")

_STAMP = ("created_at", "created_by", "modified_at", "modified_by")


def _unwrap(hint: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


class RecordMapper(Generic[R]):
    """Maps one record class to one table."""

    def __init__(self, cls: type[R], table: sa.Table, *, fixed: tuple[str, ...] = ()) -> None:
        """``fixed``: columns of the table the record does not carry (a constant key)."""
        self.cls = cls
        self.table = table
        hints = get_type_hints(cls)
        self._fields: list[tuple[str, Any]] = [
            (f.name, _unwrap(hints[f.name]))
            for f in fields(cls)  # type: ignore[arg-type]
        ]
        columns = set(table.c.keys()) - set(fixed)
        wanted = {n for n, h in self._fields if h is not Stamp} | (
            set(_STAMP) if any(h is Stamp for _, h in self._fields) else set()
        )
        if wanted != columns:
            raise RuntimeError(
                f"{cls.__name__} and table {table.name} differ: {sorted(wanted ^ columns)}"
            )
        # One converter per field, chosen once from its type (rows are many).
        self._readers: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, None if hint is Stamp else _reader(hint)) for name, hint in self._fields
        ]
        # Statements built once (SQLAlchemy caches their compiled form).
        self.insert = table.insert()
        keys = list(table.primary_key.columns)
        if len(keys) == 1:
            key = keys[0]
            # An UPDATE without .values() sets the columns named by the parameters.
            self.select_key = sa.select(table).where(key == sa.bindparam("_key"))
            self.update_key = table.update().where(key == sa.bindparam("_key"))
            self.update_versioned = table.update().where(
                key == sa.bindparam("_key"),
                table.c.version == sa.bindparam("_expected")
                if "version" in table.c
                else sa.false(),
            )

    def key_column(self) -> sa.Column[Any]:
        """The primary-key column (single-column keys only)."""
        (col,) = self.table.primary_key.columns
        return col

    def to_row(self, record: R) -> dict[str, Any]:
        """The row of a record."""
        row: dict[str, Any] = {}
        for name, hint in self._fields:
            value = getattr(record, name)
            if hint is Stamp:
                row.update(
                    created_at=value.created_at,
                    created_by=value.created_by,
                    modified_at=value.modified_at,
                    modified_by=value.modified_by,
                )
            else:
                row[name] = _to_column(value)
        return row

    def from_row(self, row: Mapping[Any, Any]) -> R:
        """The record of a row."""
        values: dict[str, Any] = {}
        for name, convert in self._readers:
            if convert is None:  # the stamp
                values[name] = Stamp(
                    row["created_at"], row["created_by"], row["modified_at"], row["modified_by"]
                )
            else:
                value = row[name]
                values[name] = None if value is None else convert(value)
        return self.cls(**values)

    def column_value(self, name: str, value: Any) -> Any:
        """A value to compare with column ``name`` (an enum by its value)."""
        if name not in self.table.c:
            raise KeyError(f"{self.table.name} has no column {name}")
        return _to_column(value)


def _to_column(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_to_column(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_column(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_column(v) for v in value]
    return value


def _same(value: Any) -> Any:
    return value


def _day(value: Any) -> Any:
    return value.date() if isinstance(value, datetime) else value


def _reader(hint: Any) -> Callable[[Any], Any]:
    """The converter from a column's value to a field of type ``hint`` (None stays None)."""
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    if get_origin(hint) is tuple:
        return tuple
    if hint is float:
        return float
    if hint is bool:
        return bool
    if hint is date:
        return _day
    return _same
