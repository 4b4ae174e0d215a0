"""A writer killed with SIGKILL in the middle of its work leaves every committed record and
no half record: a real process, killed at a moment of the test's choosing, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER

from itb import bootstrap
from itb.adapters.registry.store import make_engine

WORKER = Path(__file__).with_name("kill9_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def _run_and_kill(
    url: str, run: int, after_lines: int, extra_delay_s: float
) -> list[tuple[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    committed: list[tuple[str, str]] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    try:
        while len(committed) < after_lines:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(
                    f"worker ended early: {proc.stderr.read() if proc.stderr else ''}"
                )
            if line.startswith("COMMITTED"):
                _, kind, ident = line.split()
                committed.append((kind, ident))
            assert time.monotonic() < deadline, "worker too slow"
        time.sleep(extra_delay_s)  # let it get into the middle of the next write
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    for line in rest.splitlines():  # lines printed after our count but before the kill
        if line.startswith("COMMITTED"):
            _, kind, ident = line.split()
            committed.append((kind, ident))
    return committed


def _check(url: str, committed: list[tuple[str, str]]) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:

            def ids(table: str, col: str = "id") -> set[str]:
                return set(conn.execute(sa.text(f"SELECT {col} FROM {table}")).scalars())

            patients, implants, refills = ids("patients"), ids("implants"), ids("refill_visits")
            for kind, ident in committed:
                assert ident in {"patient": patients, "implant": implants, "refill": refills}[kind]
            # no half record: every implant has its commands, contiguous, and its snapshot
            # after the last of them; every refill visit has its refill command
            for implant in implants:
                seqs = list(
                    conn.execute(
                        sa.text("SELECT seq FROM commands WHERE implant_id = :i ORDER BY seq"),
                        {"i": implant},
                    ).scalars()
                )
                assert seqs == list(range(1, len(seqs) + 1))
                assert len(seqs) >= 2
                snap = conn.execute(
                    sa.text("SELECT seq FROM pump_snapshots WHERE implant_id = :i"), {"i": implant}
                ).scalar_one()
                assert snap == seqs[-1]
                n_refill_cmds = conn.execute(
                    sa.text("SELECT COUNT(*) FROM commands WHERE implant_id = :i AND seq > 2"),
                    {"i": implant},
                ).scalar_one()
                n_visits = conn.execute(
                    sa.text("SELECT COUNT(*) FROM refill_visits WHERE implant_id = :i"),
                    {"i": implant},
                ).scalar_one()
                assert n_refill_cmds == n_visits
            patients_with_implant = set(
                conn.execute(sa.text("SELECT patient_id FROM implants")).scalars()
            )
            assert patients_with_implant <= patients
            # every record has its audit entry, in one unbroken chain
            audited = set(
                conn.execute(
                    sa.text(
                        "SELECT entity_id FROM audit_log WHERE action IN ('register_patient', 'record_implant', 'record_refill')"
                    )
                ).scalars()
            )
            assert patients | implants | refills == audited
    finally:
        engine.dispose()
    handle = bootstrap.clinic(url, clock=FakeClock(), hasher=CHEAP_HASHER)
    try:
        doc = handle.service.actor("doc")
        assert handle.service.verify_audit(doc).ok
        handle.service.add_contact(doc, "P0001", name="after", relation="test", phone="0")
    finally:
        handle.close()


def test_a_killed_writer_leaves_only_whole_records(db_url: str) -> None:
    total: list[tuple[str, str]] = []
    for run, (after, delay) in enumerate(((6, 0.0), (3, 0.013), (4, 0.041))):
        total += _run_and_kill(db_url, run, after, delay)
        _check(db_url, total)
    assert len({i for _, i in total}) == len(total)
