"""The audit chain: any edit, deletion, insertion or reordering is caught at the first entry
it breaks; a checkpoint catches a rewrite of the whole chain; the head catches a cut end."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from itb.domain.clinic.audit import GENESIS_HASH, AuditEntry, Checkpoint, verify_chain

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        e = AuditEntry.make(
            seq=i,
            at=T0 + timedelta(minutes=i),
            actor="nina",
            role="nurse",
            action="record_refill",
            entity="refill_visit",
            entity_id=f"R{i:04d}",
            before=None,
            after={"withdrawn_ml": 1.5 * i, "lot": f"L{i}"},
            reason="refill",
            prev_hash=prev,
        )
        out.append(e)
        prev = e.hash
    return out


def test_an_intact_chain_verifies_with_its_head() -> None:
    entries = chain(5)
    check = verify_chain(entries, head=Checkpoint(5, entries[-1].hash))
    assert check.ok
    assert check.entries == 5
    assert check.head.hash == entries[-1].hash


@given(st.integers(2, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_an_edited_entry_is_named(case: tuple[int, int]) -> None:
    n, k = case
    entries = chain(n)
    entries[k] = replace(entries[k], after={"withdrawn_ml": 0.0, "lot": "forged"})
    check = verify_chain(entries)
    assert check.first_broken_seq == k + 1
    assert "changed" in check.problem


@given(st.integers(3, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 2))))
def test_a_deleted_entry_is_named(case: tuple[int, int]) -> None:
    n, k = case
    entries = chain(n)
    del entries[k]
    check = verify_chain(entries)
    assert check.first_broken_seq == k + 2  # the entry after the gap
    assert not check.ok


@given(st.integers(3, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 2))))
def test_swapped_entries_are_caught(case: tuple[int, int]) -> None:
    n, k = case
    entries = chain(n)
    entries[k], entries[k + 1] = entries[k + 1], entries[k]
    check = verify_chain(entries)
    assert check.first_broken_seq == k + 2
    assert "reordered" in check.problem or "point" in check.problem


def test_renumbering_after_a_deletion_is_still_caught() -> None:
    entries = chain(6)
    del entries[2]
    entries = [replace(e, seq=i) for i, e in enumerate(entries, start=1)]
    check = verify_chain(entries)
    assert not check.ok
    assert check.first_broken_seq == 3


def test_a_cut_end_is_caught_by_the_recorded_head() -> None:
    entries = chain(6)
    head = Checkpoint(6, entries[-1].hash)
    check = verify_chain(entries[:4], head=head)
    assert not check.ok
    assert "removed from the end" in check.problem


def test_a_rewritten_chain_is_caught_by_a_checkpoint() -> None:
    entries = chain(6)
    checkpoint = Checkpoint(4, entries[3].hash)
    forged = chain(6)
    forged[1] = replace(forged[1], reason="forged")
    # rebuild every hash from the forged entry on: a consistent but different chain
    rebuilt: list[AuditEntry] = []
    prev = GENESIS_HASH
    for e in forged:
        again = AuditEntry.make(
            **{
                **{
                    f: getattr(e, f)
                    for f in (
                        "seq",
                        "at",
                        "actor",
                        "role",
                        "action",
                        "entity",
                        "entity_id",
                        "before",
                        "after",
                        "reason",
                    )
                },
                "prev_hash": prev,
            }
        )
        rebuilt.append(again)
        prev = again.hash
    assert verify_chain(rebuilt).ok  # internally consistent ...
    check = verify_chain(rebuilt, checkpoint=checkpoint)
    assert not check.ok
    assert check.first_broken_seq == 4
    assert "rewritten" in check.problem
    cut = verify_chain(entries[:3], checkpoint=checkpoint)
    assert not cut.ok
    assert "missing" in cut.problem


def test_times_are_kept_in_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 6, 1, 10, tzinfo=ZoneInfo("Europe/London"))
    e = AuditEntry.make(
        seq=1,
        at=local,
        actor="a",
        role="nurse",
        action="x",
        entity="y",
        entity_id="z",
        before=None,
        after=None,
        reason="",
        prev_hash=GENESIS_HASH,
    )
    assert e.at.utcoffset() == timedelta(0)
    assert e.at == local
