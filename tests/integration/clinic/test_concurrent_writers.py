"""Two people acting on the same pump at once cannot both win: one change is written whole,
the other is refused with StaleVersion and nothing of it is written — on PostgreSQL and on
SQLite, with real concurrent connections."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime

import pytest
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, Clinic, fill

from itb import bootstrap
from itb.domain.errors import ITBError, StaleVersion
from itb.services.clinic import ChangeRequest, ClinicService, ProgramRequest, RefillRequest


def _race(*bodies: Callable[[], object]) -> list[object]:
    """Run the bodies in threads released together; their results or exceptions."""
    start = threading.Barrier(len(bodies))
    out: list[object] = [None] * len(bodies)

    def run(i: int, body: Callable[[], object]) -> None:
        start.wait()
        try:
            out[i] = body()
        except ITBError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return out


def _services(
    c: Clinic, db_url: str, n: int, clock: object | None = None
) -> list[bootstrap.ClinicHandle]:
    return [bootstrap.clinic(db_url, clock=clock or c.clock, hasher=CHEAP_HASHER) for _ in range(n)]


def test_two_refills_from_the_same_reading(sql_clinic: Clinic, db_url: str) -> None:
    c = sql_clinic
    c.clock.advance(days=40)
    seen = c.service.pump_now(c.nurse, c.implant_id).implant.version
    handles = _services(c, db_url, 2)
    try:
        requests = [
            RefillRequest(at=c.clock.now(), withdrawn_ml=w, fill=fill()) for w in (11.9, 12.1)
        ]
        results = _race(
            *(
                (
                    lambda h=h, r=r, who=who: h.service.record_refill(
                        h.service.actor(who), c.implant_id, r, expected_version=seen
                    )
                )
                for h, r, who in zip(handles, requests, ("nina", "ned"), strict=True)
            )
        )
    finally:
        for h in handles:
            h.close()
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, StaleVersion)]
    assert (len(wins), len(losses)) == (1, 1), results
    chart = c.service.chart(c.nurse, c.patient_id)
    assert len(chart.refills) == 1
    assert [e.command["kind"] for e in c.service.command_log(c.nurse, c.implant_id)].count(
        "refill"
    ) == 1
    check = c.service.verify_audit(c.viewer)
    assert check.ok
    writes = [e.action for e in c.service.audit_trail(c.viewer) if not e.action.startswith("read:")]
    assert writes[-2:] in (
        ["record_refill", "refused:record_refill"],
        ["refused:record_refill", "record_refill"],
    )


def test_two_commits_of_changes_staged_on_the_same_pump(sql_clinic: Clinic, db_url: str) -> None:
    c = sql_clinic
    ids = []
    for dose in (110.0, 115.0):
        ch = c.service.stage_change(
            c.nurse,
            c.implant_id,
            ChangeRequest(program=ProgramRequest(dose_mcg_per_day=dose), reason="tone"),
        )
        ids.append(ch.id)
    handles = _services(c, db_url, 2)
    try:
        results = _race(
            *(
                (lambda h=h, i=i: h.service.commit_change(h.service.actor("drlee"), i))
                for h, i in zip(handles, ids, strict=True)
            )
        )
    finally:
        for h in handles:
            h.close()
    assert sum(isinstance(r, StaleVersion) for r in results) == 1, results
    dose = c.service.pump_now(c.nurse, c.implant_id).dose_mcg_per_day
    winner = next(r for r in results if not isinstance(r, Exception))
    assert dose == winner.command["prescription"]["program"]["dose_mcg_per_day"]  # type: ignore[attr-defined]


class _MeetingClock(FakeClock):
    """Holds each writer at its first look at the clock (inside its transaction, after it
    read the pump) until both are there, so both act on the same version."""

    def __init__(self, start: datetime, meeting: threading.Barrier) -> None:
        super().__init__(start)
        self.meeting = meeting
        self.first = True

    def now(self) -> datetime:
        if self.first:
            self.first = False
            # SQLite: the other writer is queued behind this one's transaction (never meets)
            with contextlib.suppress(threading.BrokenBarrierError):
                self.meeting.wait(timeout=3)
        return self.t


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_interleaved_writers_without_a_version_cannot_both_apply_to_the_same_state(
    backend: str, request: pytest.FixtureRequest
) -> None:
    from tests.support.clinic_setup import make_clinic

    url = str(request.getfixturevalue("postgres_url" if backend == "postgresql" else "sqlite_url"))
    setup = bootstrap.clinic(url, create=True, clock=FakeClock(), hasher=CHEAP_HASHER)
    c = make_clinic(uow=setup.registry.uow, hasher=CHEAP_HASHER)
    c.clock.advance(days=40)
    meeting = threading.Barrier(2)
    clocks = [_MeetingClock(c.clock.now(), meeting) for _ in range(2)]
    handles = [bootstrap.clinic(url, clock=k, hasher=CHEAP_HASHER) for k in clocks]
    services: list[ClinicService] = [h.service for h in handles]
    try:
        results = _race(
            *(
                (
                    lambda s=s, w=w: s.record_refill(
                        s.actor("nina"),
                        c.implant_id,
                        RefillRequest(at=None, withdrawn_ml=w, fill=fill()),
                    )
                )
                for s, w in zip(services, (11.9, 12.1), strict=True)
            )
        )
    finally:
        for h in handles:
            h.close()
        setup.close()
    refills = c.service.chart(c.nurse, c.patient_id).refills
    if backend == "postgresql":
        # both read version v in their own transaction; the second UPDATE ... WHERE
        # version = v finds the row moved on and the whole transaction is refused
        assert sum(isinstance(r, StaleVersion) for r in results) == 1, results
        assert len(refills) == 1
    else:
        # SQLite queues the second writer behind the first (BEGIN IMMEDIATE): it reads the
        # state the first committed, so its refill follows the first, never beside it
        assert not any(isinstance(r, Exception) for r in results), results
        assert len(refills) == 2
        first, second = sorted(refills, key=lambda r: r.id)
        assert second.expected_ml == pytest.approx(first.fill_volume_ml, abs=0.01)
    log = c.service.command_log(c.nurse, c.implant_id)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert c.service.verify_audit(c.viewer).ok
