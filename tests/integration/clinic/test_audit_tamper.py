"""Tampering with the audit trail directly in the database — an edited row, a deleted row,
reordered rows, a cut end, a whole rewritten chain — is caught by ``audit verify``, which
names the first broken entry; on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa
from tests.support.clinic_setup import Clinic

from itb import bootstrap
from itb.domain.clinic.audit import GENESIS_HASH, AuditEntry


def _sql(handle: bootstrap.ClinicHandle, statement: str, **params: object) -> None:
    with handle.registry.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _check(clinic: Clinic) -> tuple[bool, int | None, str]:
    result = clinic.service.verify_audit(clinic.viewer)
    return result.ok, result.first_broken_seq, result.problem


def test_an_intact_trail_verifies(sql_clinic: Clinic) -> None:
    assert _check(sql_clinic) == (True, None, "")


def test_an_edited_row_is_named(sql_clinic: Clinic, registry: bootstrap.ClinicHandle) -> None:
    _sql(registry, "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 7")
    ok, seq, problem = _check(sql_clinic)
    assert (ok, seq) == (False, 7)
    assert "changed after it was written" in problem


def test_an_edited_value_inside_the_json_is_named(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    with registry.registry.engine.connect() as conn:
        after = conn.execute(sa.text("SELECT after FROM audit_log WHERE seq = 9")).scalar_one()
    data = after if isinstance(after, dict) else json.loads(after)
    data = {**data, "forged": True}
    _sql(registry, "UPDATE audit_log SET after = :a WHERE seq = 9", a=json.dumps(data))
    ok, seq, _ = _check(sql_clinic)
    assert (ok, seq) == (False, 9)


def test_a_deleted_row_is_named(sql_clinic: Clinic, registry: bootstrap.ClinicHandle) -> None:
    _sql(registry, "DELETE FROM audit_log WHERE seq = 5")
    ok, seq, problem = _check(sql_clinic)
    assert (ok, seq) == (False, 6)
    assert "missing or reordered" in problem


def test_reordered_rows_are_caught(sql_clinic: Clinic, registry: bootstrap.ClinicHandle) -> None:
    # swap the sequence numbers of entries 3 and 4 (through a free number)
    _sql(registry, "UPDATE audit_log SET seq = 100000 WHERE seq = 3")
    _sql(registry, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    _sql(registry, "UPDATE audit_log SET seq = 4 WHERE seq = 100000")
    ok, seq, _ = _check(sql_clinic)
    assert (ok, seq) == (False, 3)


def test_a_cut_end_is_caught_by_the_recorded_head(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    head = sql_clinic.service.verify_audit(sql_clinic.viewer).head.seq
    _sql(registry, "DELETE FROM audit_log WHERE seq > :n", n=head - 2)
    ok, _, problem = _check(sql_clinic)
    assert not ok
    assert "removed from the end" in problem


def test_a_rewritten_chain_is_caught_only_by_a_checkpoint(
    sql_clinic: Clinic, registry: bootstrap.ClinicHandle
) -> None:
    checkpoint = sql_clinic.service.verify_audit(sql_clinic.viewer).head
    entries = sql_clinic.service.audit_trail(sql_clinic.viewer)
    # a forger rewrites entry 2 and recomputes every hash after it, head included
    prev = GENESIS_HASH
    with registry.registry.engine.begin() as conn:
        for e in entries:
            reason = "rewritten" if e.seq == 2 else e.reason
            new = AuditEntry.make(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                role=e.role,
                action=e.action,
                entity=e.entity,
                entity_id=e.entity_id,
                before=e.before,
                after=e.after,
                reason=reason,
                prev_hash=prev,
            )
            conn.execute(
                sa.text(
                    "UPDATE audit_log SET reason = :r, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"r": new.reason, "p": new.prev_hash, "h": new.hash, "s": e.seq},
            )
            prev = new.hash
        conn.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert _check(sql_clinic)[0]  # consistent again: only the checkpoint can tell
    result = sql_clinic.service.verify_audit(sql_clinic.viewer, checkpoint=checkpoint)
    assert not result.ok
    assert result.first_broken_seq == checkpoint.seq
    assert "rewritten" in result.problem
