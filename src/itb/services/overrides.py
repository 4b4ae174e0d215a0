"""Command-line variations of an input file: ``--set PATH=VALUE`` on its TOML table.

A path is the file's keys joined by dots, with ``[n]`` for an item of a list
(``patient.weight_kg``, ``trial.patients``, ``arm[0].name``); a value is read as TOML
(``80``, ``2.5``, ``true``, ``"text"``, ``2027-01-05T09:00:00``), and a bare word that is
not TOML is text. The changed table is then validated exactly as the file would be; an
error about a value that was set names it as ``--set PATH``.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Sequence
from typing import Any

from itb.domain.errors import InvalidValue

__all__ = ["apply_sets", "named_for_sets"]

_PATH = re.compile(r"[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*")
_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")
_FORM = "PATH=VALUE with PATH the file's keys joined by dots (patient.weight_kg, arm[0].name)"


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parts(path: str) -> list[str | int]:
    return [int(i) if i else key for key, i in _PART.findall(path)]


def apply_sets(
    table: dict[str, Any], sets: Sequence[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``table`` with every ``PATH=VALUE`` applied (a copy), and the paths set.

    Raises:
        InvalidValue: not ``PATH=VALUE``, or a path through something the file does not
            have (a missing table, a list index past its end), named ``--set PATH``.
    """
    out = copy.deepcopy(table)
    paths = []
    for raw in sets:
        path, eq, text = raw.partition("=")
        path = path.strip()
        if not eq or not _PATH.fullmatch(path):
            raise InvalidValue("--set", raw, _FORM)
        parts = _parts(path)
        node: Any = out
        for k, part in enumerate(parts):
            last = k == len(parts) - 1
            so_far = path if last else _joined(parts[: k + 1])
            if isinstance(part, int):
                if not isinstance(node, list) or not 0 <= part < len(node):
                    size = len(node) if isinstance(node, list) else 0
                    raise InvalidValue(
                        f"--set {path}", text, f"an item the file has ({so_far}: {size} item(s))"
                    )
            elif not isinstance(node, dict):
                raise InvalidValue(
                    f"--set {path}",
                    text,
                    f"a key of a table ({_joined(parts[:k]) or 'the file'} is not a table)",
                )
            elif not last and part not in node:
                raise InvalidValue(f"--set {path}", text, f"a table the file has (no {so_far})")
            if last:
                node[part] = _value(text)
            else:
                node = node[part]
        paths.append(path)
    return out, tuple(paths)


def _joined(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def named_for_sets(exc: InvalidValue, paths: Sequence[str]) -> InvalidValue:
    """The error naming ``--set PATH`` when it is about a value that was set."""
    field = exc.field
    for p in paths:
        if (
            field == p
            or field.startswith((f"{p}.", f"{p}["))
            or p.startswith((f"{field}.", f"{field}["))
        ):
            return exc.renamed(f"--set {field}")
    return exc
