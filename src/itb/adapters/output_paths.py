"""Output paths: checked before anything runs, written atomically.

A command that writes files checks every output path first
(:func:`check_output_dir`, :func:`check_output_file`), so that a path that
cannot be written is refused with one line before a long simulation runs, not
after it. Files are then written to a temporary sibling and renamed into place
(:func:`write_file_atomic`, :func:`write_files_atomic`), so a failure never
leaves a partial file, and outputs that belong together (a card's PDF and HTML)
appear together or not at all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from itb.domain.errors import InvalidValue

__all__ = [
    "MARKER",
    "check_output_dir",
    "check_output_file",
    "write_file_atomic",
    "write_files_atomic",
]

MARKER = ".itb-output"
"""File that marks a directory as written by itb (and so replaceable)."""

_NAME_MAX_FALLBACK = 255
"""The longest file name most file systems allow (used when the system does not say)."""


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return _NAME_MAX_FALLBACK


def _lstat(path: Path) -> os.stat_result | None:
    """The path's own status, or None if it does not exist (or cannot be reached)."""
    try:
        return path.lstat()
    except OSError:  # missing, below a file, a name too long: it does not exist as such
        return None


def _writable_parent(path: Path, field: str, allowed: str, *, create: bool) -> None:
    """The nearest existing ancestor of ``path`` is a writable directory, and every name
    still to be made fits the file system."""
    missing: list[Path] = []
    ancestor = path.parent
    while _lstat(ancestor) is None and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InvalidValue(field, str(path), f"{allowed} ({ancestor} is not a directory)")
    if missing and not create:
        raise InvalidValue(field, str(path), f"{allowed} in an existing directory")
    limit = _name_max(ancestor)
    for part in (*missing, path):
        if len(os.fsencode(part.name)) > limit:
            raise InvalidValue(
                field, str(path), f"{allowed} whose names have at most {limit} bytes"
            )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InvalidValue(field, str(path), f"{allowed} in a directory you can write to")


def check_output_dir(path: Path, *, field: str = "--out") -> Path:
    """Check that ``path`` can be written as an output directory; return it resolved.

    Allowed: a new directory (its missing parents are created), or one an earlier itb
    run wrote (it holds the marker file; it is replaced).

    Raises:
        InvalidValue: the path exists and is not such a directory, a parent is a file,
            a name is too long for the file system, or the parent cannot be written.
    """
    allowed = "a new directory, or one an earlier itb run wrote (it is replaced)"
    target = Path(os.path.abspath(path))
    info = _lstat(target)
    itb_wrote_it = info is not None and stat.S_ISDIR(info.st_mode) and _lstat(target / MARKER)
    if info is not None and not itb_wrote_it:
        raise InvalidValue(field, str(path), allowed)
    _writable_parent(target, field, allowed, create=True)
    return target


def check_output_file(path: Path, *, field: str, suffix: str | None = None) -> Path:
    """Check that ``path`` can be written as an output file; return it absolute.

    Allowed: a new file, or an existing regular file (it is replaced), in an existing
    directory; with ``suffix``, only names ending in it.

    Raises:
        InvalidValue: the path is a directory, a pipe or a device, its directory does
            not exist or is not a directory, the name is too long, or it ends otherwise.
    """
    allowed = f"a {suffix} file" if suffix else "a file"
    if suffix is not None and path.suffix.lower() != suffix:
        raise InvalidValue(field, str(path), f"{allowed} name (ending in {suffix})")
    target = Path(os.path.abspath(path))
    info = _lstat(target)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise InvalidValue(field, str(path), f"{allowed} (not a directory, a pipe or a device)")
    _writable_parent(target, field, allowed, create=False)
    return target


def _temporary_sibling(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name[:40]}.tmp-", dir=path.parent)
    os.close(fd)
    return Path(name)


def write_file_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling renamed into place."""
    return write_files_atomic([(path, data)])[0]


def write_files_atomic(items: Sequence[tuple[Path, bytes]]) -> list[Path]:
    """Write every ``(path, data)`` or none: all go to temporary siblings first, then
    each is renamed into place; a failure removes the new files and puts back any file
    they replaced.
    """
    temps: list[tuple[Path, Path]] = []
    done: list[tuple[Path, Path | None]] = []
    try:
        for path, data in items:
            tmp = _temporary_sibling(path)
            temps.append((tmp, path))
            tmp.write_bytes(data)
            tmp.chmod(0o644)
        for tmp, path in temps:
            backup: Path | None = None
            if _lstat(path) is not None:
                backup = _temporary_sibling(path)
                os.replace(path, backup)
            done.append((path, backup))
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        for path, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)
                else:
                    path.unlink()
        raise
    for _, backup in done:
        if backup is not None:
            with contextlib.suppress(OSError):
                backup.unlink()
    return [path for path, _ in items]
