"""Benchmark: the dashboard's refill radar for a clinic of 5,000 patients, server time.

Builds a virtual clinic (``--base`` patients with years of history from the simulation
engine), clones its records under new identifiers until it holds ``--patients``
patients (SQL only, as bench_registry does), starts ``itb serve`` on 127.0.0.1, signs
in through the sign-in form and loads the radar page ``--repeat`` times. The server
time is the page's ``Server-Timing`` header (request received to response started, on
the server); the wall time is what the client waited. References measured in the same
run: the same radar as JSON from the API (``/api/v1/radar``, every row) and
``/api/v1/health`` (the floor of any request). SQLite and PostgreSQL.

Writes bench/results/dashboard.json and bench/results/dashboard.md.

Run: ``.venv/bin/python bench/bench_dashboard.py [--patients 5000] [--base 10] [--repeat 20]``
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support import pgcluster  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

from bench_registry import _clone  # noqa: E402

ITB = Path(sys.executable).parent / "itb"
RESULTS = ROOT / "bench" / "results"
TARGET_MS = 300.0


def _stats(xs: list[float]) -> dict[str, float]:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)}


def _build(url: str, base: int, patients: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(ITB), "clinic", "demo", "--db", url, "--patients", str(base), "--seed", "2026", "--json"],
        capture_output=True, text=True, check=True, timeout=3600,
    )  # fmt: skip
    demo = json.loads(out.stdout)
    built = time.perf_counter() - t0
    _clone(url, max(1, patients // base))
    return {"demo": demo, "demo_build_s": built}


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(ITB), "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("itb serve did not start")


def _server_ms(r: httpx.Response) -> float:
    m = re.search(r"dur=([\d.]+)", r.headers.get("server-timing", ""))
    if not m:
        raise SystemExit(f"no Server-Timing header on {r.url} ({r.status_code})")
    return float(m.group(1))


def _measure(base: str, username: str, password: str, repeat: int) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=120) as c:
        form = c.get("/login").text
        nonce = re.search(r'name="nonce" value="([^"]+)"', form)
        assert nonce
        signed = c.post(
            "/login",
            data={"username": username, "password": password, "nonce": nonce.group(1), "next": "/"},
        )
        assert signed.status_code == 303, signed.text[:200]
        token = c.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        c.get("/radar?show=all")  # warm: imports, templates, caches
        page_server, page_wall, api_wall, health_wall, cold_server = [], [], [], [], []
        rows = 0
        someone = c.get("/api/v1/radar", headers=bearer).json()[0]["patient_id"]
        for k in range(repeat):
            # cold: a write first (a visit booked through the API), so the radar's facts
            # are read from the registry again, as after any refill or change
            booked = c.post(
                f"/api/v1/patients/{someone}/visits",
                headers=bearer,
                json={"at": f"2030-01-{1 + k % 28:02d}T09:00:00Z", "kind": "checkup"},
            )
            assert booked.status_code == 201, booked.text[:200]
            cold = c.get("/radar?show=all")
            assert cold.status_code == 200
            cold_server.append(_server_ms(cold))
            t0 = time.perf_counter()
            r = c.get("/radar?show=all")
            page_wall.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
            page_server.append(_server_ms(r))
            rows = r.text.count('<tr class="u')
            t0 = time.perf_counter()
            j = c.get("/api/v1/radar", headers=bearer)
            api_wall.append((time.perf_counter() - t0) * 1000)
            assert j.status_code == 200
            pumps = len(j.json())
            t0 = time.perf_counter()
            c.get("/api/v1/health")
            health_wall.append((time.perf_counter() - t0) * 1000)
    return {
        "pumps": pumps,
        "rows_on_first_page": rows,
        "page_server_ms": _stats(page_server),
        "page_after_a_write_server_ms": _stats(cold_server),
        "page_wall_ms": _stats(page_wall),
        "api_radar_wall_ms": _stats(api_wall),
        "health_wall_ms": _stats(health_wall),
        "page_over_api_median": statistics.median(page_wall) / statistics.median(api_wall),
        "within_target": statistics.median(page_server) < TARGET_MS,
        "within_target_after_a_write": statistics.median(cold_server) < TARGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--base", type=int, default=10, help="virtual patients simulated, then cloned")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    if not (1 <= args.base <= args.patients <= 50_000 and 1 <= args.repeat <= 200):
        raise SystemExit("--base <= --patients <= 50000 and --repeat 1..200 (bounded)")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "args": vars(args),
        "target_server_ms": TARGET_MS,
        "backends": {},
    }
    cluster = pgcluster.start_cluster()
    try:
        engine = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE "bench_dashboard"'))
        engine.dispose()
        pg_url = (
            sa.engine.make_url(cluster.url)
            .set(database="bench_dashboard")
            .render_as_string(hide_password=False)
        )
        with tempfile.TemporaryDirectory() as tmp:
            for backend, url in (
                ("sqlite", f"sqlite:///{Path(tmp) / 'clinic.db'}"),
                ("postgresql", pg_url),
            ):
                print(f"== {backend}: a clinic of {args.patients} patients", flush=True)
                built = _build(url, args.base, args.patients)
                lead = next(u for u in built["demo"]["users"] if u["role"] == "physician")
                proc, base = _serve(url)
                try:
                    out = _measure(base, lead["username"], lead["password"], args.repeat)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                out["demo_build_s"] = built["demo_build_s"]
                print(json.dumps(out, indent=2), flush=True)
                results["backends"][backend] = out
    finally:
        pgcluster.stop(cluster.base)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "dashboard.md").write_text(_markdown(results), encoding="utf-8")
    print(_markdown(results))
    return 0


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# The dashboard's refill radar, 5,000 patients",
        "",
        f"{r['when']}, {r['machine']}; `itb serve` (one process) and the client on the same "
        f"2-core machine; {r['args']['repeat']} loads of `/radar?show=all` (every pump counted "
        "and filtered, the 100 most urgent rendered); server time from the page's "
        "`Server-Timing` header. References in the same run: the API's radar as JSON "
        '(every row) and `/api/v1/health`. "After a write": a visit is booked through '
        "the API before each load, so the radar's facts are read from the registry again "
        "(the server keeps them only while the registry's generation has not moved).",
        "",
        "| backend | pumps | page server ms min | median | under 300 ms | after a write: min | median | under 300 ms | page wall ms median | API radar JSON wall ms median (reference) | page / API | health ms median |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    yes = {True: "yes", False: "NO"}
    for name, b in r["backends"].items():
        lines.append(
            f"| {name} | {b['pumps']:,} | {b['page_server_ms']['min']:.0f} | "
            f"{b['page_server_ms']['median']:.0f} | {yes[b['within_target']]} | "
            f"{b['page_after_a_write_server_ms']['min']:.0f} | "
            f"{b['page_after_a_write_server_ms']['median']:.0f} | "
            f"{yes[b['within_target_after_a_write']]} | {b['page_wall_ms']['median']:.0f} | "
            f"{b['api_radar_wall_ms']['median']:.0f} | {b['page_over_api_median']:.2f}x | "
            f"{b['health_wall_ms']['median']:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
