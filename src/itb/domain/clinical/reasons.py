"""Reasons with their sources: what every clinical verdict carries.

A rule's wording lives in code; its outcome, its source tags ([Cn] clinical,
[Dn] device, [Fn] founding texts) and whether that source confirms it live in
the reviewed data files, so a reviewer can change a rule's weight without touching code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import STATUSES, Status

__all__ = ["Reason", "RuleInfo", "parse_rule", "require_keys"]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule's outcome and provenance, as reviewed in a data file.

    Attributes:
        rule: the rule's id, e.g. ``"min_age"``.
        outcome: what the rule does when it fires (vocabulary of the module using it).
        source: source tag, e.g. ``"[C5][C6]"``.
        status: ``"confirmed"`` or ``"assumed"`` (see :mod:`itb.domain.provenance`).
        note: why an assumption was made, or other reviewer notes.
    """

    rule: str
    outcome: str
    source: str
    status: Status
    note: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a verdict, with the rule that produced it and its source."""

    rule: str
    outcome: str
    text: str
    source: str
    status: Status

    @classmethod
    def of(cls, info: RuleInfo, text: str) -> Reason:
        """A reason for ``info`` worded as ``text``."""
        return cls(info.rule, info.outcome, text, info.source, info.status)


def parse_rule(
    table: Mapping[str, Any], key: str, *, outcomes: tuple[str, ...], where: str
) -> RuleInfo:
    """Parse ``table[key]`` (``outcome``, ``source``, ``status``, optional ``note``).

    Raises:
        InvalidValue: missing entry, unknown outcome or status, empty source.
    """
    field = f"{where}.{key}"
    entry = table.get(key)
    if not isinstance(entry, Mapping):
        raise InvalidValue(field, entry, "a table with outcome, source and status")
    outcome = entry.get("outcome")
    if outcome not in outcomes:
        raise InvalidValue(f"{field}.outcome", outcome, " or ".join(outcomes))
    status = entry.get("status")
    if status not in STATUSES:
        raise InvalidValue(f"{field}.status", status, " or ".join(STATUSES))
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise InvalidValue(f"{field}.source", source, "a non-empty source string")
    return RuleInfo(key, str(outcome), source, status, str(entry.get("note", "")))


def require_keys(table: Mapping[str, Any], keys: tuple[str, ...], *, where: str) -> None:
    """Raise :class:`InvalidValue` if ``table`` lacks any of ``keys``."""
    missing = [k for k in keys if k not in table]
    if missing:
        raise InvalidValue(where, sorted(table), f"a table with {', '.join(keys)}")
