"""Benchmark: the clinic registry on SQLite and PostgreSQL.

Times, on each backend, with durable commits (SQLite WAL + ``synchronous=FULL``;
PostgreSQL with ``fsync``, ``synchronous_commit`` and ``full_page_writes`` on):

* **record a refill** (one use case: read the pump's snapshot, judge the residual,
  apply the refill command, append it, update snapshot and implant, write the
  refill visit and its audit entry, commit) — operations per second;
* **commit a programming change** (stage, verify by a second physician, commit:
  three use cases; the commit alone is also timed) — operations per second;
* the **reference a database user would compare with**: the bare cost of one
  committed transaction on the same database (insert one row, commit): the floor
  no use case can beat; the ratio says how many such transactions a use case costs;
* **the refill radar on a clinic of 5,000 patients** (a 50-patient virtual clinic
  whose histories are cloned a hundred times), min and median of repeated runs,
  against the **reference** of computing the same radar by replaying every pump's
  command log from its implant (what the registry would do without its snapshots).

Writes bench/results/registry.json and bench/results/registry.md.

Run: ``.venv/bin/python bench/bench_registry.py [--patients 5000] [--ops 200] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import pgcluster  # noqa: E402

from itb import bootstrap  # noqa: E402
from itb.adapters.passwords import Argon2Hasher  # noqa: E402
from itb.adapters.registry import tables as t  # noqa: E402
from itb.domain.clinic.forecast import RefillObservation, delivery_profile  # noqa: E402
from itb.domain.clinic.radar import RadarInput, assess_pump, sort_radar  # noqa: E402
from itb.services.clinic import (  # noqa: E402
    ChangeRequest,
    DrugFill,
    NewImplant,
    NewPatient,
    ProgramRequest,
    RefillRequest,
)
from itb.services.clinic.demo import build_demo_clinic  # noqa: E402
from itb.services.clinic.forecasting import ForecastInput, forecast_pumps  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HASHER = Argon2Hasher(time_cost=1, memory_cost_kib=8)
TODAY = datetime(2026, 12, 1, 8, tzinfo=UTC)


class StepClock:
    def __init__(self, start: datetime) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t


def _stats(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "n": len(samples)}


# ------------------------------------------------------------------ operations per second


def _ops(url: str, n_ops: int) -> dict[str, Any]:
    clock = StepClock(datetime(2025, 1, 6, 9, tzinfo=UTC))
    handle = bootstrap.clinic(url, create=True, clock=clock, hasher=HASHER)
    svc = handle.service
    svc.initialise(
        clinic_name="Bench",
        clinic_phone="0",
        nurses_may_verify=False,
        admin_username="doc",
        admin_display_name="Doc",
        admin_password="correct-horse-1",
    )
    doc = svc.actor("doc")
    svc.create_user(doc, username="doc2", role="physician", password="correct-horse-1")
    svc.create_user(doc, username="nurse", role="nurse", password="correct-horse-1")
    doc2, nurse = svc.actor("doc2"), svc.actor("nurse")
    fill = DrugFill(20.0, 2000.0, "baclofen_2000", "L1", None)
    implants = []
    for k in range(n_ops):
        p = svc.register_patient(
            nurse,
            NewPatient(
                mrn=f"B{k}",
                given_name="B",
                family_name=str(k),
                birth_date=datetime(1970, 1, 1).date(),
                sex="male",
                cause="spinal_cord_injury",
                timezone="UTC",
            ),
        )
        implants.append(
            svc.record_implant(
                doc,
                p.id,
                NewImplant(
                    at=clock.now(),
                    pump_preset="synchromed_ii_40",
                    serial=f"S{k}",
                    catheter_family="ascenda_like",
                    catheter_length_cm=60.0,
                    fill=fill,
                    program=ProgramRequest(dose_mcg_per_day=300.0),
                ),
            ).id
        )
    clock.t += timedelta(days=60)

    t0 = time.perf_counter()
    for iid in implants:
        svc.record_refill(nurse, iid, RefillRequest(at=clock.t, withdrawn_ml=11.0, fill=fill))
    refill_s = time.perf_counter() - t0

    staged = []
    t0 = time.perf_counter()
    for iid in implants:
        c = svc.stage_change(
            nurse,
            iid,
            ChangeRequest(program=ProgramRequest(dose_mcg_per_day=330.0), reason="bench"),
        )
        svc.verify_change(doc2, c.id)
        staged.append(c.id)
    stage_verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for cid in staged:
        svc.commit_change(doc, cid)
    commit_s = time.perf_counter() - t0

    # the floor: one committed single-row transaction on the same database
    probe = sa.Table(
        "bench_probe",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("v", sa.Text),
    )
    engine = handle.registry.engine
    probe.create(engine)
    t0 = time.perf_counter()
    for k in range(n_ops):
        with engine.begin() as conn:
            conn.execute(probe.insert(), {"id": k, "v": "x"})
    bare_s = time.perf_counter() - t0
    probe.drop(engine)
    assert svc.verify_audit(doc).ok
    handle.close()
    per = lambda s: n_ops / s  # noqa: E731
    return {
        "operations": n_ops,
        "record_refill_per_s": per(refill_s),
        "programming_change_per_s": per(stage_verify_s + commit_s),
        "commit_change_per_s": per(commit_s),
        "bare_transaction_per_s": per(bare_s),
        "refill_cost_in_bare_transactions": (refill_s / n_ops) / (bare_s / n_ops),
        "change_cost_in_bare_transactions": ((stage_verify_s + commit_s) / n_ops)
        / (bare_s / n_ops),
    }


# ------------------------------------------------------------------ a 5,000-patient clinic


def _clone(url: str, copies: int) -> None:
    """Clone every patient's records ``copies`` times under new identifiers (SQL only)."""
    engine = bootstrap.clinic(url).registry.engine
    with engine.begin() as conn:
        rows = {
            name: [dict(r) for r in conn.execute(sa.select(t.TABLES[name])).mappings()]
            for name in (
                "patients",
                "contacts",
                "implants",
                "commands",
                "snapshots",
                "refills",
                "visits",
            )
        }
        for c in range(1, copies):

            def pid(x: str, c: int = c) -> str:
                return f"P{c:03d}{x[1:]}"

            def iid(x: str, c: int = c) -> str:
                return f"I{c:03d}{x[1:]}"

            batches = {
                "patients": [
                    {**r, "id": pid(r["id"]), "mrn": f"{r['mrn']}-{c}"} for r in rows["patients"]
                ],
                "contacts": [
                    {**r, "id": f"K{c:03d}{r['id'][1:]}", "patient_id": pid(r["patient_id"])}
                    for r in rows["contacts"]
                ],
                "implants": [
                    {**r, "id": iid(r["id"]), "patient_id": pid(r["patient_id"])}
                    for r in rows["implants"]
                ],
                "commands": [{**r, "implant_id": iid(r["implant_id"])} for r in rows["commands"]],
                "snapshots": [{**r, "implant_id": iid(r["implant_id"])} for r in rows["snapshots"]],
                "refills": [
                    {**r, "id": f"R{c:03d}{r['id'][1:]}", "implant_id": iid(r["implant_id"])}
                    for r in rows["refills"]
                ],
                "visits": [
                    {**r, "id": f"V{c:03d}{r['id'][1:]}", "patient_id": pid(r["patient_id"])}
                    for r in rows["visits"]
                ],
            }
            for name, batch in batches.items():
                if batch:
                    conn.execute(sa.insert(t.TABLES[name]), batch)
    engine.dispose()


def _radar_by_replay(handle: bootstrap.ClinicHandle, on: datetime) -> list[Any]:
    """The reference: the same radar with every pump rebuilt from its command log."""
    svc = handle.service
    windows = svc.rules.radar
    margin = svc.catalog.protocol["refill_margin_days"]
    rows = []
    with handle.registry.uow() as uow:
        patients = {p.id: p for p in uow.patients.all()}
        visits: dict[str, datetime] = {}
        for v in uow.visits.find(status="booked"):
            if v.at >= on and (v.patient_id not in visits or v.at < visits[v.patient_id]):
                visits[v.patient_id] = v.at
        open_refills: dict[str, int] = {}
        for r in uow.refills.find(resolved=False):
            open_refills[r.implant_id] = open_refills.get(r.implant_id, 0) + 1
        for implant in uow.implants.find(status="active"):
            p = patients[implant.patient_id]
            ctx = svc.model.context(p, implant)
            entries = uow.commands.for_implant(implant.id)
            pump, seq = svc.model.replay(ctx, entries)
            fills = [
                e.at for e in entries if e.command.get("kind") in ("fill_at_implant", "refill")
            ]
            snap = svc.model.snapshot(ctx, pump, seq=seq, last_fill_at=fills[-1] if fills else None)
            visit = visits.get(p.id)
            (forecast,) = forecast_pumps(
                svc.catalog.forecast,
                [
                    ForecastInput(
                        snap.at, delivery_profile(pump),
                        RefillObservation.of(uow.refills.find(implant_id=implant.id)),
                        visit or on + timedelta(days=windows.look_ahead_days.value),
                        visit is not None, float(margin),
                    )
                ],
            )  # fmt: skip
            rows.append(
                assess_pump(
                    RadarInput(
                        patient_id=p.id,
                        patient_name=p.name,
                        implant_id=implant.id,
                        pump_label=ctx.preset.label,
                        running=snap.running,
                        stop_reason=snap.stop_reason,
                        reservoir_calculated_ml=snap.reservoir_calculated_ml,
                        low_alarm_at=snap.low_alarm_at,
                        empty_at=snap.empty_at,
                        earliest_dry_at=snap.earliest_dry_at,
                        stability_until=snap.stability_until,
                        eri_at=snap.eri_at,
                        eri_reached=snap.eri_reached
                        or (snap.eri_at is not None and snap.eri_at <= on),
                        next_visit_at=visits.get(p.id),
                        active_alarms=snap.active_alarms,
                        critical_alarms=snap.critical_alarms,
                        unresolved_discrepancies=open_refills.get(implant.id, 0),
                        refill_margin_days=margin,
                        withdrawal_risk=p.withdrawal_risk,
                        forecast=forecast,
                    ),
                    now=on,
                    due_window_days=windows.due_window_days.value,
                    look_ahead_days=windows.look_ahead_days.value,
                    battery_window_days=windows.battery_window_days.value,
                    forecast_rules=svc.catalog.forecast,
                )
            )
    return sort_radar(rows)


def _radar(url: str, patients: int, repeat: int, base: int) -> dict[str, Any]:
    handle = bootstrap.clinic(url, create=True, hasher=HASHER)
    t0 = time.perf_counter()
    build_demo_clinic(
        handle.registry.uow, bootstrap.catalog(), HASHER, patients=base, seed=2026, today=TODAY
    )
    demo_s = time.perf_counter() - t0
    handle.close()
    copies = max(1, patients // base)
    t0 = time.perf_counter()
    _clone(url, copies)
    clone_s = time.perf_counter() - t0
    handle = bootstrap.clinic(url, hasher=HASHER)
    lead = handle.service.actor("dr.ahmed")
    on = TODAY + timedelta(hours=1)
    fast: list[float] = []
    rows: list[Any] = []
    for _ in range(repeat):
        # every pump's facts read from the registry: nothing kept from the run before
        handle.service._radar_cache = None
        t0 = time.perf_counter()
        rows = handle.service.radar(lead, on=on)
        fast.append(time.perf_counter() - t0)
    kept: list[float] = []
    for _ in range(repeat):  # what a server answers while nothing is written
        t0 = time.perf_counter()
        handle.service.radar(lead, on=on)
        kept.append(time.perf_counter() - t0)
    slow: list[float] = []
    reference: list[Any] = []
    for _ in range(max(2, repeat // 2)):
        t0 = time.perf_counter()
        reference = _radar_by_replay(handle, on)
        slow.append(time.perf_counter() - t0)
    same = [(r.pump.implant_id, r.urgency, r.words) for r in rows] == [
        (r.pump.implant_id, r.urgency, r.words) for r in reference
    ]
    with handle.registry.engine.connect() as conn:
        n_patients = conn.execute(sa.text("SELECT COUNT(*) FROM patients")).scalar_one()
        n_commands = conn.execute(sa.text("SELECT COUNT(*) FROM commands")).scalar_one()
    handle.close()
    return {
        "patients": n_patients,
        "pumps_on_radar": len(rows),
        "commands": n_commands,
        "demo_build_s": demo_s,
        "demo_patients": base,
        "clone_s": clone_s,
        "radar_s": _stats(fast),
        "radar_kept_s": _stats(kept),
        "replay_radar_s": _stats(slow),
        "ratio_replay_over_snapshot_median": statistics.median(slow) / statistics.median(fast),
        "same_radar": same,
        "need_action": sum(1 for r in rows if r.urgency >= 3),
    }


def _durable_pg(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sa.text(f"ALTER SYSTEM SET {setting} = on"))
        conn.execute(sa.text("SELECT pg_reload_conf()"))
        time.sleep(1.0)
        assert conn.execute(sa.text("SHOW fsync")).scalar() == "on"
    engine.dispose()


def _new_pg_db(server: str, name: str) -> str:
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=5000, help="patients on the radar")
    ap.add_argument(
        "--base", type=int, default=50, help="virtual-clinic patients cloned to --patients"
    )
    ap.add_argument("--ops", type=int, default=200, help="refills and changes timed per backend")
    ap.add_argument("--repeat", type=int, default=5, help="radar runs (min and median)")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "args": vars(args),
        "backends": {},
    }
    cluster = pgcluster.start_cluster()
    try:
        _durable_pg(cluster.url)
        with tempfile.TemporaryDirectory() as tmp:
            backends: list[tuple[str, Callable[[str], str]]] = [
                ("sqlite", lambda name: f"sqlite:///{Path(tmp) / (name + '.db')}"),
                ("postgresql", lambda name: _new_pg_db(cluster.url, name)),
            ]
            for backend, make in backends:
                print(f"== {backend}: operations", flush=True)
                ops = _ops(make("ops"), args.ops)
                print(json.dumps(ops, indent=2), flush=True)
                print(f"== {backend}: radar on {args.patients} patients", flush=True)
                radar = _radar(make("radar"), args.patients, args.repeat, args.base)
                print(json.dumps(radar, indent=2), flush=True)
                results["backends"][backend] = {"operations": ops, "radar": radar}
    finally:
        pgcluster.stop(cluster.base)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registry.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "registry.md").write_text(_markdown(results), encoding="utf-8")
    print(_markdown(results))
    return 0


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Clinic registry benchmark",
        "",
        f"{r['when']}, {r['machine']}. Durable commits on both backends (SQLite WAL with "
        "synchronous=FULL; PostgreSQL with fsync, synchronous_commit and full_page_writes on), "
        "one client, on this machine's disk.",
        "",
        "| backend | record a refill /s | programming change (stage, verify, commit) /s | commit alone /s | bare 1-row transaction /s (reference) | refill = N bare transactions | change = N bare transactions |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, b in r["backends"].items():
        o = b["operations"]
        lines.append(
            f"| {name} | {o['record_refill_per_s']:.0f} | {o['programming_change_per_s']:.0f} | "
            f"{o['commit_change_per_s']:.0f} | {o['bare_transaction_per_s']:.0f} | "
            f"{o['refill_cost_in_bare_transactions']:.1f} | {o['change_cost_in_bare_transactions']:.1f} |"
        )
    lines += [
        "",
        "| backend | patients | pumps | commands | radar min s | radar median s | kept facts (nothing written since) median s | replay-every-log radar median s (reference) | ratio | same answer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in r["backends"].items():
        x = b["radar"]
        kept = x.get("radar_kept_s", {}).get("median")
        lines.append(
            f"| {name} | {x['patients']:,} | {x['pumps_on_radar']:,} | {x['commands']:,} | "
            f"{x['radar_s']['min']:.3f} | {x['radar_s']['median']:.3f} | "
            f"{'-' if kept is None else f'{kept:.3f}'} | {x['replay_radar_s']['median']:.2f} | "
            f"{x['ratio_replay_over_snapshot_median']:.0f}x | {'yes' if x['same_radar'] else 'NO'} |"
        )
    lines += [
        "",
        f"The 5,000-patient clinic is a {r['args']['base']}-patient virtual clinic "
        "(`itb clinic demo`, built through the use cases) whose patients, pumps, command logs, "
        "snapshots, refills and visits are cloned under new identifiers.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
