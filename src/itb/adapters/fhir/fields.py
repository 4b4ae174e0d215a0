"""Record fields as FHIR extensions, and back, typed by the record's own annotations.

Every field of a registry record that has no standard FHIR element is carried as one
extension ``EXT + "<record>-<field>"`` with the value type its Python type calls for
(``valueBoolean``, ``valueInteger``, ``valueDecimal``, ``valueString``, ``valueDateTime``,
``valueDate``, ``valueCode`` for an enumeration); a list of words or a mapping travels
as ``valueString`` holding compact JSON. An empty text is left out (FHIR has no empty
strings) and comes back empty; a None is left out and comes back None.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from itb.adapters.fhir.codes import EXT
from itb.domain.clinic.records import Stamp
from itb.domain.errors import InvalidValue

__all__ = ["from_extensions", "stamp_extension", "to_extensions", "when"]


def when(value: datetime) -> str:
    """An aware date-time as FHIR writes it (UTC, to the microsecond)."""
    return value.isoformat()


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _base(tp: Any) -> tuple[Any, bool]:
    """The type without None, and whether None is allowed."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _value(tp: Any, v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"valueBoolean": v}
    if isinstance(v, enum.Enum):
        return {"valueCode": str(v.value)}
    if isinstance(v, int) and tp is int:
        return {"valueInteger": v}
    if isinstance(v, int | float):
        return {"valueDecimal": float(v)}
    if isinstance(v, datetime):
        return {"valueDateTime": when(v)}
    if isinstance(v, date):
        return {"valueDate": v.isoformat()}
    if isinstance(v, str):
        return {"valueString": v}
    return {"valueString": json.dumps(_plain(v), sort_keys=True, separators=(",", ":"))}


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def to_extensions(record: Any, kind: str, fields: Iterable[str]) -> list[dict[str, Any]]:
    """The named fields of ``record`` as extensions (empty text and None left out)."""
    hints = _hints(type(record))
    out = []
    for name in fields:
        v = getattr(record, name)
        if v is None or v == "" or (isinstance(v, tuple | list | dict) and not v):
            continue
        tp, _ = _base(hints[name])
        out.append({"url": f"{EXT}{kind}-{name}", **_value(tp, v)})
    return out


def stamp_extension(stamp: Stamp) -> dict[str, Any]:
    """Who made a record and when, who last changed it and when."""
    return {
        "url": f"{EXT}stamp",
        "extension": [
            {"url": "createdAt", "valueDateTime": when(stamp.created_at)},
            {"url": "createdBy", "valueString": stamp.created_by},
            {"url": "modifiedAt", "valueDateTime": when(stamp.modified_at)},
            {"url": "modifiedBy", "valueString": stamp.modified_by},
        ],
    }


_VALUE_KEYS = (
    "valueBoolean",
    "valueInteger",
    "valueDecimal",
    "valueString",
    "valueDateTime",
    "valueDate",
    "valueCode",
)


def _one_value(ext: Mapping[str, Any]) -> Any:
    return next((ext[k] for k in _VALUE_KEYS if k in ext), None)


def _parse(tp: Any, raw: Any, field: str) -> Any:
    try:
        if tp is bool:
            if not isinstance(raw, bool):
                raise TypeError
            return raw
        if tp is int:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise TypeError
            return raw
        if tp is float:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise TypeError
            return float(raw)
        if tp is datetime:
            out = datetime.fromisoformat(raw)
            if out.tzinfo is None:
                raise ValueError
            return out
        if tp is date:
            return date.fromisoformat(raw)
        if tp is str:
            if not isinstance(raw, str):
                raise TypeError
            return raw
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp(raw)
        origin = typing.get_origin(tp)
        data = json.loads(raw)
        if origin is tuple:
            if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
                raise TypeError
            return tuple(data)
        if not isinstance(data, dict):
            raise TypeError
        return data
    except (TypeError, ValueError, json.JSONDecodeError):
        allowed = {
            bool: "true or false",
            int: "an integer",
            float: "a number",
            datetime: "a date-time with a time zone",
            date: "a date (YYYY-MM-DD)",
            str: "text",
        }.get(tp, "a value of the documented form")
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            allowed = "one of " + ", ".join(str(m.value) for m in tp)
        raise InvalidValue(field, raw, allowed) from None


def _empty(tp: Any) -> Any:
    if tp is str:
        return ""
    if tp is bool:  # a flag a hand-written resource leaves out: not set
        return False
    origin = typing.get_origin(tp)
    if origin is tuple:
        return ()
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        return {}
    return dataclasses.MISSING


def from_extensions(
    resource: Mapping[str, Any], cls: type, kind: str, fields: Iterable[str], where: str
) -> dict[str, Any]:
    """The named fields of a ``cls`` record read back from ``resource``'s extensions.

    Raises:
        InvalidValue: a value of the wrong type, or a required field missing (named as
            ``where.extension[<url>]``).
    """
    hints = _hints(cls)
    by_url = {e.get("url"): e for e in resource.get("extension", ()) if isinstance(e, Mapping)}
    out: dict[str, Any] = {}
    for name in fields:
        url = f"{EXT}{kind}-{name}"
        tp, optional = _base(hints[name])
        field = f"{where}.extension[{url}]"
        ext = by_url.get(url)
        if ext is None:
            if optional:
                out[name] = None
                continue
            empty = _empty(tp)
            if empty is dataclasses.MISSING:
                raise InvalidValue(field, None, f"a value for {name} (the extension is required)")
            out[name] = empty
            continue
        out[name] = _parse(tp, _one_value(ext), field)
    return out


def read_stamp(resource: Mapping[str, Any], where: str) -> Stamp | None:
    """The record's stamp, or None when the resource carries none (a hand-written one)."""
    ext = next((e for e in resource.get("extension", ()) if e.get("url") == f"{EXT}stamp"), None)
    if ext is None:
        return None
    parts = {p.get("url"): _one_value(p) for p in ext.get("extension", ())}
    field = f"{where}.extension[{EXT}stamp]"
    return Stamp(
        _parse(datetime, parts.get("createdAt"), f"{field}.createdAt"),
        _parse(str, parts.get("createdBy"), f"{field}.createdBy"),
        _parse(datetime, parts.get("modifiedAt"), f"{field}.modifiedAt"),
        _parse(str, parts.get("modifiedBy"), f"{field}.modifiedBy"),
    )


def parse_value(tp: Any, raw: Any, field: str) -> Any:
    """One value of type ``tp`` from a resource (the same rules as the extensions)."""
    return _parse(tp, raw, field)
