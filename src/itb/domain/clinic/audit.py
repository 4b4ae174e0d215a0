"""A tamper-evident audit trail: append-only entries chained by hash.

Every change to the registry (and every refusal) is one :class:`AuditEntry`:
who, in what role, when (UTC), what, why, and the values before and after.
Each entry's hash covers its own content and the previous entry's hash, so
editing, deleting or reordering any entry breaks the chain from there on;
:func:`verify_chain` walks it and names the first broken entry. A checkpoint
(the sequence number and hash of an entry, kept outside the database) also
catches a rewrite of the whole chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itb.domain.errors import InvalidValue

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "ChainCheck",
    "Checkpoint",
    "entry_hash",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
"""The "previous hash" of the first entry."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LIMITS = {"actor": 120, "role": 16, "action": 64, "entity": 32, "entity_id": 120, "reason": 2000}
"""Longest text kept per field (the rest is cut, with an ellipsis)."""


def _safe(text: str, limit: int) -> str:
    """One storable line: control characters (NUL included) shown as U+FFFD, cut to ``limit``."""
    out = _CONTROL.sub("\ufffd", str(text))
    return out if len(out) <= limit else out[: limit - 1] + "\u2026"


def _safe_data(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_CONTROL.sub("\ufffd", str(k)): _safe_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe_data(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail.

    Attributes:
        seq: position in the chain (1, 2, ...).
        at: when, an aware UTC date-time.
        actor: the user name.
        role: their role.
        action: what was done (``register_patient``, ``refill``, ``refused:refill`` ...).
        entity: the kind of record (``patient``, ``implant``, ``refill_visit`` ...).
        entity_id: its identifier.
        before: its values before (None for a new record).
        after: its values after (None for a refusal or a removal).
        reason: why, in the user's words (or the refusal's message).
        prev_hash: the previous entry's hash.
        hash: this entry's hash.
    """

    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    entity: str
    entity_id: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    reason: str
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """What the hash covers (everything but the hash itself)."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "prev_hash": self.prev_hash,
        }

    @staticmethod
    def make(
        *,
        seq: int,
        at: datetime,
        actor: str,
        role: str,
        action: str,
        entity: str,
        entity_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        reason: str,
        prev_hash: str,
    ) -> AuditEntry:
        """A new entry, its hash computed.

        Raises:
            InvalidValue: a time without a time zone (the trail is kept in UTC).
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidValue("audit at", at.isoformat(), "an aware UTC date-time")
        at = at.astimezone(UTC)
        # Refusals echo what a client sent: keep every entry storable and one line.
        actor, role, action = (
            _safe(actor, _LIMITS["actor"]),
            _safe(role, _LIMITS["role"]),
            _safe(action, _LIMITS["action"]),
        )
        entity, entity_id = _safe(entity, _LIMITS["entity"]), _safe(entity_id, _LIMITS["entity_id"])
        reason = _safe(reason, _LIMITS["reason"])
        before = None if before is None else _safe_data(before)
        after = None if after is None else _safe_data(after)
        draft = AuditEntry(
            seq, at, actor, role, action, entity, entity_id, before, after, reason, prev_hash, ""
        )
        return AuditEntry(
            seq,
            at,
            actor,
            role,
            action,
            entity,
            entity_id,
            before,
            after,
            reason,
            prev_hash,
            entry_hash(draft.content()),
        )


def entry_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry's canonical JSON content."""
    return hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """An entry's position and hash, kept outside the database."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The result of walking the chain.

    Attributes:
        entries: how many entries were read.
        first_broken_seq: the first entry that does not verify (None: all verify).
        problem: what is wrong with it, in words.
        head: the last entry's position and hash.
    """

    entries: int
    first_broken_seq: int | None
    problem: str
    head: Checkpoint

    @property
    def ok(self) -> bool:
        """True when every entry verifies."""
        return self.first_broken_seq is None


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    checkpoint: Checkpoint | None = None,
    head: Checkpoint | None = None,
) -> ChainCheck:
    """Walk the chain in stored order; name the first entry that breaks it.

    Args:
        entries: every entry, in the order they are stored (by ``seq``).
        checkpoint: an entry's position and hash recorded earlier, outside the database.
        head: the chain head the database records (its last position and hash).
    """
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    last = Checkpoint(0, GENESIS_HASH)
    seen_checkpoint = checkpoint is None
    for e in entries:
        count += 1
        if e.seq != expected_seq:
            return ChainCheck(
                count,
                e.seq,
                f"entry {e.seq} follows entry {expected_seq - 1}: entries are missing or reordered",
                last,
            )
        if e.prev_hash != prev:
            return ChainCheck(
                count, e.seq, f"entry {e.seq} does not point to entry {e.seq - 1}'s hash", last
            )
        if entry_hash(e.content()) != e.hash:
            return ChainCheck(count, e.seq, f"entry {e.seq} was changed after it was written", last)
        if checkpoint is not None and e.seq == checkpoint.seq:
            if e.hash != checkpoint.hash:
                return ChainCheck(
                    count,
                    e.seq,
                    f"entry {e.seq} differs from the checkpoint: the chain was rewritten",
                    last,
                )
            seen_checkpoint = True
        prev = e.hash
        last = Checkpoint(e.seq, e.hash)
        expected_seq += 1
    if not seen_checkpoint and checkpoint is not None:
        return ChainCheck(
            count,
            checkpoint.seq,
            f"the checkpoint's entry {checkpoint.seq} is missing: the chain was cut",
            last,
        )
    if head is not None and (head.seq, head.hash) != (last.seq, last.hash):
        return ChainCheck(
            count,
            last.seq + 1 if head.seq > last.seq else head.seq,
            f"the recorded head is entry {head.seq} but the chain ends at entry {last.seq}: "
            "entries were removed from the end",
            last,
        )
    return ChainCheck(count, None, "", last)
