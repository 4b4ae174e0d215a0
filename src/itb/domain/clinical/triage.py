"""Symptom triage for people with an ITB pump and their caregivers.

From reported signs (a documented vocabulary in ``itb/data/triage.toml``) to
likely causes (possible underdose or withdrawal, possible overdose, infection or
meningitis signs, the implanted system's complications such as a spinal fluid
leak or a pump turned over in its pocket, expected side effect, pump alarm), an
urgency (emergency now / call the clinic today / mention at the next visit) and
plain-language actions.

Each sign has an urgency of its own; combinations of signs (e.g. rapidly
worsening stiffness with autonomic instability, or floppy muscles with
drowsiness, [C20]) can raise it. The overall urgency is the
highest of all that fire, so adding a sign never lowers it. Every sign and
combination that fires is returned as a :class:`Reason` with its source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from itb.domain.clinical.reasons import Reason
from itb.domain.errors import InvalidValue
from itb.domain.provenance import STATUSES, Status

__all__ = [
    "CauseFinding",
    "Combination",
    "SignInfo",
    "TriageGuide",
    "TriageResult",
    "Urgency",
    "normalise_sign",
    "parse_triage_guide",
    "triage",
]


class Urgency(StrEnum):
    """How soon to act; ordered by :attr:`rank`."""

    NEXT_VISIT = "next_visit"
    CALL_TODAY = "call_today"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """0 (least urgent) to 2 (emergency)."""
        return _RANK[self]


_RANK = {Urgency.NEXT_VISIT: 0, Urgency.CALL_TODAY: 1, Urgency.EMERGENCY: 2}


@dataclass(frozen=True, slots=True)
class Guidance:
    """Label, actions and source of an urgency level or a cause."""

    key: str
    label: str
    actions: tuple[str, ...]
    source: str
    status: Status
    benign: bool = False
    """A cause that is not offered when the urgency is an emergency (expected side effect)."""


@dataclass(frozen=True, slots=True)
class SignInfo:
    """A sign in the vocabulary."""

    key: str
    label: str
    aliases: tuple[str, ...]
    causes: tuple[str, ...]
    urgency: Urgency
    source: str
    status: Status
    note: str = ""


@dataclass(frozen=True, slots=True)
class Combination:
    """Signs that together raise the urgency: all of ``requires`` and ``min_count`` of
    ``any_of``."""

    key: str
    label: str
    requires: tuple[str, ...]
    any_of: tuple[str, ...]
    min_count: int
    causes: tuple[str, ...]
    urgency: Urgency
    source: str
    status: Status
    note: str = ""

    def fires(self, present: frozenset[str]) -> bool:
        """True when the combination is present (monotone in ``present``)."""
        return set(self.requires) <= present and (
            sum(1 for s in self.any_of if s in present) >= self.min_count
        )


@dataclass(frozen=True, slots=True)
class TriageGuide:
    """The reviewed triage vocabulary and rules."""

    urgencies: Mapping[Urgency, Guidance]
    causes: Mapping[str, Guidance]
    signs: Mapping[str, SignInfo]
    combinations: tuple[Combination, ...]
    aliases: Mapping[str, str]


def normalise_sign(text: str) -> str:
    """Lower-case and turn spaces and hyphens into underscores: ``"Low blood-pressure"`` ->
    ``"low_blood_pressure"``."""
    return "_".join(text.strip().lower().replace("-", " ").split())


def _status(entry: Mapping[str, Any], where: str) -> Status:
    status = entry.get("status")
    if status not in STATUSES:
        raise InvalidValue(f"{where}.status", status, " or ".join(STATUSES))
    return status  # type: ignore[no-any-return]


def _source(entry: Mapping[str, Any], where: str) -> str:
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise InvalidValue(f"{where}.source", source, "a non-empty source string")
    return source


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidValue(f"{where}.{key}", value, "a list of strings")
    return tuple(value)


def _urgency(entry: Mapping[str, Any], where: str) -> Urgency:
    value = entry.get("urgency")
    try:
        return Urgency(str(value))
    except ValueError:
        raise InvalidValue(f"{where}.urgency", value, ", ".join(u.value for u in Urgency)) from None


def _guidance(key: str, entry: Mapping[str, Any], where: str) -> Guidance:
    actions = _strings(entry, "actions", where)
    if not actions:
        raise InvalidValue(f"{where}.actions", [], "at least one action")
    benign = entry.get("benign", False)
    if not isinstance(benign, bool):
        raise InvalidValue(f"{where}.benign", benign, "true or false")
    return Guidance(
        key,
        str(entry.get("label", key)),
        actions,
        _source(entry, where),
        _status(entry, where),
        benign,
    )


def parse_triage_guide(table: Mapping[str, Any]) -> TriageGuide:
    """Parse ``itb/data/triage.toml``.

    Raises:
        InvalidValue: missing urgency level, unknown cause or sign in a rule, duplicate alias.
    """
    urg_table = table.get("urgencies", {})
    urgencies: dict[Urgency, Guidance] = {}
    for u in Urgency:
        if u.value not in urg_table:
            raise InvalidValue(
                f"triage.urgencies.{u.value}", None, "a table with label and actions"
            )
        urgencies[u] = _guidance(u.value, urg_table[u.value], f"triage.urgencies.{u.value}")
    causes = {k: _guidance(k, v, f"triage.causes.{k}") for k, v in table.get("causes", {}).items()}

    def known_causes(values: tuple[str, ...], where: str) -> tuple[str, ...]:
        for c in values:
            if c not in causes:
                raise InvalidValue(f"{where}.causes", c, ", ".join(causes))
        if not values:
            raise InvalidValue(f"{where}.causes", [], "at least one cause")
        return values

    signs: dict[str, SignInfo] = {}
    aliases: dict[str, str] = {}
    for key, entry in table.get("signs", {}).items():
        where = f"triage.signs.{key}"
        info = SignInfo(
            key=key,
            label=str(entry.get("label", key)),
            aliases=tuple(normalise_sign(a) for a in _strings(entry, "aliases", where)),
            causes=known_causes(_strings(entry, "causes", where), where),
            urgency=_urgency(entry, where),
            source=_source(entry, where),
            status=_status(entry, where),
            note=str(entry.get("note", "")),
        )
        signs[key] = info
        for name in (key, *info.aliases):
            if name in aliases and aliases[name] != key:
                raise InvalidValue(f"{where}.aliases", name, f"unique (already {aliases[name]})")
            aliases[name] = key
    if not signs:
        raise InvalidValue("triage.signs", None, "at least one sign")

    combinations: list[Combination] = []
    for key, entry in table.get("combinations", {}).items():
        where = f"triage.combinations.{key}"
        requires, any_of = _strings(entry, "requires", where), _strings(entry, "any_of", where)
        for s in (*requires, *any_of):
            if s not in signs:
                raise InvalidValue(f"{where}", s, "signs defined in [signs]")
        min_count = entry.get("min_count", 0)
        if not isinstance(min_count, int) or not 0 <= min_count <= len(any_of):
            raise InvalidValue(f"{where}.min_count", min_count, f"0 to {len(any_of)}")
        if not requires and min_count == 0:
            raise InvalidValue(where, "always fires", "requires or min_count > 0")
        combinations.append(
            Combination(
                key=key,
                label=str(entry.get("label", key)),
                requires=requires,
                any_of=any_of,
                min_count=min_count,
                causes=known_causes(_strings(entry, "causes", where), where),
                urgency=_urgency(entry, where),
                source=_source(entry, where),
                status=_status(entry, where),
                note=str(entry.get("note", "")),
            )
        )
    return TriageGuide(urgencies, causes, signs, tuple(combinations), aliases)


@dataclass(frozen=True, slots=True)
class CauseFinding:
    """A likely cause, the signs that point to it, and what to do about it."""

    cause: str
    label: str
    signs: tuple[str, ...]
    actions: tuple[str, ...]
    source: str
    status: Status


@dataclass(frozen=True, slots=True)
class TriageResult:
    """Urgency, likely causes, actions and the reasons behind them."""

    signs: tuple[str, ...]
    urgency: Urgency
    urgency_label: str
    causes: tuple[CauseFinding, ...]
    actions: tuple[str, ...]
    reasons: tuple[Reason, ...]


def triage(guide: TriageGuide, reported: Iterable[str]) -> TriageResult:
    """Triage the reported signs.

    Args:
        guide: the reviewed vocabulary and rules (:func:`parse_triage_guide`).
        reported: sign keys or aliases (spaces and hyphens allowed: ``"low blood pressure"``).

    Raises:
        InvalidValue: no sign, or a sign not in the vocabulary.
    """
    keys: list[str] = []
    for raw in reported:
        name = normalise_sign(raw) if isinstance(raw, str) else raw
        if name not in guide.aliases:
            raise InvalidValue("sign", raw, f"one of {', '.join(guide.signs)}")
        key = guide.aliases[name]
        if key not in keys:
            keys.append(key)
    if not keys:
        raise InvalidValue("sign", [], "at least one sign (see --list-signs)")
    present = frozenset(keys)

    reasons: list[Reason] = []
    cause_signs: dict[str, list[str]] = {}
    urgency = Urgency.NEXT_VISIT
    for key in keys:
        sign = guide.signs[key]
        urgency = max(urgency, sign.urgency, key=lambda u: u.rank)
        causes = ", ".join(guide.causes[c].label.lower() for c in sign.causes)
        reasons.append(
            Reason(
                rule=f"sign:{key}",
                outcome=sign.urgency.value,
                text=f"{sign.label}: {causes}.",
                source=sign.source,
                status=sign.status,
            )
        )
        for c in sign.causes:
            cause_signs.setdefault(c, []).append(key)
    for combo in guide.combinations:
        if not combo.fires(present):
            continue
        urgency = max(urgency, combo.urgency, key=lambda u: u.rank)
        matched = [s for s in (*combo.requires, *combo.any_of) if s in present]
        reasons.append(
            Reason(
                rule=f"combination:{combo.key}",
                outcome=combo.urgency.value,
                text=f"{combo.label} ({', '.join(guide.signs[s].label.lower() for s in matched)}).",
                source=combo.source,
                status=combo.status,
            )
        )
        for c in combo.causes:
            lst = cause_signs.setdefault(c, [])
            lst.extend(s for s in matched if s not in lst)

    reasons.sort(key=lambda r: -Urgency(r.outcome).rank)
    if urgency is Urgency.EMERGENCY:
        # An emergency is never put down to an expected side effect.
        cause_signs = {c: s for c, s in cause_signs.items() if not guide.causes[c].benign}
    findings = tuple(
        CauseFinding(
            cause=c,
            label=guide.causes[c].label,
            signs=tuple(signs),
            actions=guide.causes[c].actions,
            source=guide.causes[c].source,
            status=guide.causes[c].status,
        )
        for c, signs in sorted(
            cause_signs.items(), key=lambda kv: (-len(kv[1]), list(guide.causes).index(kv[0]))
        )
    )
    level = guide.urgencies[urgency]
    actions = list(level.actions)
    for f in findings:
        actions.extend(a for a in f.actions if a not in actions)
    return TriageResult(
        signs=tuple(keys),
        urgency=urgency,
        urgency_label=level.label,
        causes=findings,
        actions=tuple(actions),
        reasons=tuple(reasons),
    )
