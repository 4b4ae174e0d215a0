"""Reading TOML: the package's reviewed data tables and users' own files.

Reviewed data keep each clinical or device fact in exactly one file. Where
another file needs the same fact, it refers to it instead of repeating it::

    inpatient_titration_days = { same_as = "protocol.titration.inpatient_titration_days" }

:func:`load_data_table` replaces such a reference with the entry it names
(value, unit, status, source), adding a note that says where it comes from,
so every parser sees an ordinary sourced number.
"""

from __future__ import annotations

import hashlib
import stat
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from itb.domain.errors import InvalidValue

__all__ = [
    "data_files_digest",
    "data_table_names",
    "load_data_table",
    "read_raw_data_table",
    "read_toml_file",
]

_MAX_USER_FILE_BYTES = 10 * 1024 * 1024
"""A user's TOML file larger than this is refused (no input of itb is that large)."""


def data_table_names() -> tuple[str, ...]:
    """The reviewed data tables shipped in ``itb/data`` (top level), sorted."""
    return tuple(
        sorted(
            p.name.removesuffix(".toml")
            for p in resources.files("itb.data").iterdir()
            if p.name.endswith(".toml")
        )
    )


def data_files_digest() -> str:
    """SHA-256 (hex) over every reviewed data file of ``itb/data``, in path order."""
    digest = hashlib.sha256()
    root = resources.files("itb.data")

    def walk(node: Any, prefix: str) -> None:
        for entry in sorted(node.iterdir(), key=lambda e: e.name):
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                walk(entry, f"{name}/")
            elif entry.name.endswith(".toml"):
                digest.update(name.encode())
                digest.update(entry.read_bytes())

    walk(root, "")
    return digest.hexdigest()


@cache
def _raw(name: str) -> Mapping[str, Any]:
    ref = resources.files("itb.data").joinpath(f"{name}.toml")
    with ref.open("rb") as fh:
        return tomllib.load(fh)


def read_raw_data_table(name: str) -> dict[str, Any]:
    """``itb/data/<name>.toml`` as written (references not resolved)."""
    out: dict[str, Any] = _copy(_raw(name))
    return out


def _copy(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _lookup(path: str, seen: tuple[str, ...]) -> dict[str, Any]:
    file, _, rest = path.partition(".")
    node: Any = _raw(file) if file in data_table_names() else None
    for part in rest.split(".") if rest else ():
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping) or ("value" not in node and "same_as" not in node):
        raise InvalidValue("same_as", path, "the path of a sourced entry, file.section.key")
    out: dict[str, Any] = _resolve(dict(node), path, seen)
    return out


def _resolve(node: Any, where: str, seen: tuple[str, ...]) -> Any:
    if isinstance(node, Mapping):
        ref = node.get("same_as")
        if isinstance(ref, str):
            if ref in seen:
                raise InvalidValue(f"{where}.same_as", ref, "no circular reference")
            target = _lookup(ref, (*seen, ref))
            note = f"same fact as {ref}" + (f"; {target['note']}" if target.get("note") else "")
            return {**target, "note": note}
        return {k: _resolve(v, f"{where}.{k}", seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, where, seen) for v in node]
    return node


def load_data_table(name: str) -> dict[str, Any]:
    """Load ``itb/data/<name>.toml`` (reviewed clinical and device data), references resolved.

    Raises:
        InvalidValue: a ``same_as`` reference that names no sourced entry, or a cycle.
    """
    resolved: dict[str, Any] = _resolve(_raw(name), name, ())
    return resolved


def read_toml_file(path: Path, *, field: str = "file") -> dict[str, Any]:
    """Read a user's TOML file.

    Only a regular file is read (a FIFO or a device would block), and only up to
    a sane size.

    Raises:
        InvalidValue: the file is missing, not a regular file, too large, unreadable or
            not valid TOML (one-line message).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InvalidValue(field, str(path), "an existing TOML file") from None
    except OSError as exc:
        raise InvalidValue(field, str(path), f"a readable TOML file ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidValue(field, str(path), "a regular TOML file (not a directory or a pipe)")
    if info.st_size > _MAX_USER_FILE_BYTES:
        raise InvalidValue(
            field, str(path), f"a TOML file under {_MAX_USER_FILE_BYTES // (1024 * 1024)} MB"
        )
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidValue(field, str(path), f"valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise InvalidValue(field, str(path), "a UTF-8 text TOML file") from None
    except RecursionError:
        raise InvalidValue(field, str(path), "TOML nested less deeply") from None
    except OSError as exc:
        raise InvalidValue(field, str(path), f"a readable TOML file ({exc.strerror})") from None
