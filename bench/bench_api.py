"""Benchmark: the clinic API under load, on SQLite and PostgreSQL.

Starts ``itb serve`` (one uvicorn process) on 127.0.0.1 over a virtual clinic and drives
it from this process with an open-loop schedule (``--rate`` requests per second for
``--seconds``, bounded) of a realistic mix: the radar, patient pages, the pump now,
visit lists (reads) and refills and programming changes staged, verified by a second
physician and committed (writes). Records throughput, latency percentiles per kind,
and errors. The reference, measured under the same load in the same run, is
``/api/v1/health`` (HTTP, routing and JSON with no registry behind it): the floor
any endpoint pays; each kind's p50 is also given as a multiple of it.

Writes bench/results/api.json and bench/results/api.md.

Run: ``.venv/bin/python bench/bench_api.py [--rate 200 40] [--seconds 60] [--patients 40]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import pgcluster  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

ITB = Path(sys.executable).parent / "itb"
RESULTS = ROOT / "bench" / "results"
MIX = {
    "radar": 0.10,
    "patient page": 0.30,
    "pump now": 0.27,
    "visits": 0.10,
    "health (reference)": 0.08,
    "refill": 0.10,
    "programming change": 0.05,
}
"""A clinic day: mostly reading (the radar, patient pages, the pump now), some refills and
programming changes (each change is three requests: stage, verify, commit)."""
TARGET_RATE = 200.0
TARGET_P99_MS = 50.0
"""The clinic's target: this many requests per second with no error, reads under this p99."""
READS = ("radar", "patient page", "pump now", "visits", "health (reference)")
FILL = {
    "volume_ml": 20.0,
    "concentration_mcg_per_ml": 2000.0,
    "product": "baclofen_2000",
    "lot": "BENCH",
}


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    ys = sorted(xs)
    k = min(len(ys) - 1, max(0, round(q / 100.0 * (len(ys) - 1))))
    return ys[k]


class _Reply:
    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class _Client:
    """The few calls the mix needs, over one aiohttp session (keep-alive connections)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def get(self, path: str, headers: dict[str, str] | None = None) -> _Reply:
        async with self.session.get(path, headers=headers) as r:
            return _Reply(r.status, await r.read())

    async def post(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
    ) -> _Reply:
        async with self.session.post(path, headers=headers, json=json, data=data) as r:
            return _Reply(r.status, await r.read())


async def _drive(
    base: str, users: dict[str, str], rate: float, seconds: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        client = _Client(session)
        tokens = {}
        for name, password in users.items():
            r = await client.post(
                "/api/v1/auth/token", data={"username": name, "password": password}
            )
            tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        doc, second, nurse = tokens["dr.ahmed"], tokens["dr.berg"], tokens["nurse.cole"]
        patients = [p["id"] for p in (await client.get("/api/v1/patients", headers=doc)).json()]
        implants = [
            r["implant_id"] for r in (await client.get("/api/v1/radar", headers=doc)).json()
        ]
        lat: dict[str, list[float]] = defaultdict(list)
        status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        errors: list[str] = []

        async def one(kind: str) -> None:
            t0 = time.perf_counter()
            try:
                if kind == "radar":
                    r = await client.get("/api/v1/radar", headers=doc)
                elif kind == "patient page":
                    r = await client.get(f"/api/v1/patients/{rng.choice(patients)}", headers=nurse)
                elif kind == "pump now":
                    r = await client.get(
                        f"/api/v1/implants/{rng.choice(implants)}/pump", headers=nurse
                    )
                elif kind == "visits":
                    r = await client.get("/api/v1/visits", headers=nurse)
                elif kind == "health (reference)":
                    r = await client.get("/api/v1/health")
                elif kind == "refill":
                    iid = rng.choice(implants)
                    now = (await client.get(f"/api/v1/implants/{iid}/pump", headers=nurse)).json()
                    withdrawn = round(float(now["reservoir_calculated_ml"]), 1)
                    strength = now["forecast"]["concentration_mcg_per_ml"]
                    fill = {
                        **FILL,
                        "concentration_mcg_per_ml": strength,
                        "product": f"baclofen_{strength:.0f}",
                    }
                    r = await client.post(
                        f"/api/v1/implants/{iid}/refills",
                        headers=nurse,
                        json={"withdrawn_ml": withdrawn, "fill": fill},
                    )
                else:
                    iid = rng.choice(implants)
                    now = (await client.get(f"/api/v1/implants/{iid}/pump", headers=nurse)).json()
                    dose = now["dose_mcg_per_day"] or 100.0
                    r = await client.post(
                        f"/api/v1/implants/{iid}/changes",
                        headers=nurse,
                        json={
                            "program": {"dose_mcg_per_day": round(dose * 1.05, 1)},
                            "reason": "bench",
                            "override_reason": "bench run",
                        },
                    )
                    if r.status_code == 201:
                        cid = r.json()["id"]
                        if r.json()["needs_verification"]:
                            await client.post(f"/api/v1/changes/{cid}/verify", headers=second)
                        r = await client.post(f"/api/v1/changes/{cid}/commit", headers=doc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{kind}: {type(exc).__name__}")
                return
            lat[kind].append((time.perf_counter() - t0) * 1000.0)
            status[kind][r.status_code] += 1
            if r.status_code >= 500:
                errors.append(f"{kind}: HTTP {r.status_code}")

        kinds = list(MIX)
        weights = [MIX[k] for k in kinds]
        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(rng.choices(kinds, weights)[0])))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    health_p50 = (
        statistics.median(lat["health (reference)"]) if lat["health (reference)"] else float("nan")
    )
    per_kind = {
        k: {
            "requests": len(v),
            "p50_ms": _pct(v, 50),
            "p99_ms": _pct(v, 99),
            "max_ms": max(v) if v else float("nan"),
            "p50_over_health_p50": _pct(v, 50) / health_p50,
            "statuses": dict(status[k]),
        }
        for k, v in lat.items()
    }
    reads = [x for k in READS if k != "health (reference)" for x in lat[k]]
    return {
        "requests": n,
        "completed": sum(len(v) for v in lat.values()),
        "wall_s": wall,
        "throughput_per_s": sum(len(v) for v in lat.values()) / wall,
        "reads_p50_ms": _pct(reads, 50),
        "reads_p99_ms": _pct(reads, 99),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
        "server_errors": sum(c for k in status for s, c in status[k].items() if s >= 500),
        "kinds": per_kind,
    }


def _demo(url: str, patients: int) -> dict[str, str]:
    out = subprocess.run(
        [str(ITB), "clinic", "demo", "--db", url, "--patients", str(patients), "--seed", "2026", "--today", datetime.now(UTC).date().isoformat(), "--json"],
        capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    demo = json.loads(out.stdout)
    return {
        u["username"]: u["password"] for u in demo["users"] if u["role"] in ("physician", "nurse")
    }


def _serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(ITB), "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"itb serve did not start: {proc.stderr.read() if proc.stderr else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[200.0, 40.0],
        help="requests per second offered (several: one run at each, on a fresh server)",
    )
    ap.add_argument("--seconds", type=float, default=60.0, help="how long")
    ap.add_argument("--patients", type=int, default=40, help="virtual clinic size")
    ap.add_argument("--workers", type=int, default=2, help="itb serve processes")
    args = ap.parse_args(argv)
    if not (all(0 < r <= 1000 for r in args.rate) and 0 < args.seconds <= 600):
        raise SystemExit("--rate 1..1000 and --seconds 1..600 (the load is bounded)")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "args": vars(args),
        "mix": MIX,
        "runs": [],
    }
    cluster = pgcluster.start_cluster()
    try:
        engine = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sa.text(f"ALTER SYSTEM SET {setting} = on"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
            conn.execute(sa.text('CREATE DATABASE "bench_api"'))
        engine.dispose()
        pg_url = (
            sa.engine.make_url(cluster.url)
            .set(database="bench_api")
            .render_as_string(hide_password=False)
        )
        with tempfile.TemporaryDirectory() as tmp:
            for backend, url in (
                ("sqlite", f"sqlite:///{Path(tmp) / 'clinic.db'}"),
                ("postgresql", pg_url),
            ):
                print(
                    f"== {backend}: building a {args.patients}-patient virtual clinic", flush=True
                )
                users = _demo(url, args.patients)
                for rate in args.rate:
                    proc, base = _serve(url, args.workers)
                    try:
                        print(
                            f"== {backend}: {rate:g} requests/s for {args.seconds:g} s", flush=True
                        )
                        out = asyncio.run(_drive(base, users, rate, args.seconds, seed=7))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=30)
                    out["rate"] = rate
                    summary = {k: v for k, v in out.items() if k != "kinds"}
                    print(json.dumps(summary, indent=2), flush=True)
                    results["runs"].append({"backend": backend, **out})
    finally:
        pgcluster.stop(cluster.base)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "api.md").write_text(_markdown(results), encoding="utf-8")
    print(_markdown(results))
    return 0


def _markdown(r: dict[str, Any]) -> str:
    a = r["args"]
    lines = [
        "# Clinic API under load",
        "",
        f"{r['when']}, {r['machine']}; `itb serve --workers {a['workers']}` (uvicorn) and the load generator "
        f"on the same 2-core machine; {' and '.join(f'{x:g}' for x in a['rate'])} requests/s offered for {a['seconds']:g} s each "
        f"(open loop) over a {a['patients']}-patient virtual clinic; durable commits on both backends.",
        "",
        "| backend | offered /s | completed | throughput /s | server errors | other errors | reads p50 ms | reads p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in r["runs"]:
        lines.append(
            f"| {b['backend']} | {b['rate']:g} | {b['completed']:,} | {b['throughput_per_s']:.0f} | {b['server_errors']} | "
            f"{b['errors'] - b['server_errors']} | {b['reads_p50_ms']:.1f} | {b['reads_p99_ms']:.1f} |"
        )
    lines += [
        "",
        "| backend | offered /s | request | n | p50 ms | p99 ms | p50 / health p50 (reference) | statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in r["runs"]:
        for kind, k in sorted(b["kinds"].items()):
            lines.append(
                f"| {b['backend']} | {b['rate']:g} | {kind} | {k['requests']} | {k['p50_ms']:.1f} | {k['p99_ms']:.1f} | "
                f"{k['p50_over_health_p50']:.1f}x | {', '.join(f'{s}: {c}' for s, c in sorted(k['statuses'].items()))} |"
            )
    lines += [
        "",
        f"Target: {TARGET_RATE:g} requests/s for 60 s with no error and reads p99 under {TARGET_P99_MS:g} ms.",
    ]
    for b in r["runs"]:
        met = (
            b["rate"] >= TARGET_RATE
            and b["throughput_per_s"] >= 0.99 * b["rate"]
            and b["errors"] == 0
            and b["reads_p99_ms"] < TARGET_P99_MS
        )
        if b["rate"] >= TARGET_RATE:
            lines.append(f"- {b['backend']} at {b['rate']:g}/s: {'met' if met else 'NOT met'}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
