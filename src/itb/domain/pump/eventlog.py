"""The pump's append-only event log: every change and event, with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["EventLog", "LogEntry"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event: when (hours), what kind, details, and why (for changes)."""

    t_h: float
    kind: str
    detail: str
    reason: str = ""


class EventLog:
    """Append-only: entries can be added and read, never changed or removed."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []

    def append(self, t_h: float, kind: str, detail: str, reason: str = "") -> LogEntry:
        """Record an event and return it."""
        entry = LogEntry(t_h, kind, detail, reason)
        self._entries.append(entry)
        return entry

    @property
    def entries(self) -> tuple[LogEntry, ...]:
        """All entries, oldest first (a copy: the log itself cannot be edited)."""
        return tuple(self._entries)

    def of_kind(self, kind: str) -> tuple[LogEntry, ...]:
        """Entries of one kind."""
        return tuple(e for e in self._entries if e.kind == kind)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(tuple(self._entries))
