"""Benchmark: memory of ``itb cohort`` against the number of patients, and chunk-size independence.

1. Memory: for each cohort size (``--sizes``, default 10,000, 100,000 and 1,000,000
   patients) a trial file with two arms (refill on the low-reservoir alarm day, or 14
   days before it, as ``examples/trials/refill_margin.toml``) and ``--years`` of
   follow-up (default 1) is written to a temporary directory and run as a subprocess:
   ``.venv/bin/itb cohort FILE --out DIR --json --chunk-size C [--workers W]``.
   Every ``--interval`` seconds (default 0.2) the resident memory (RSS) of the whole
   process tree is sampled with psutil: the itb process and all its descendants
   (with ``--workers``, the dask worker processes). Reported per run:
   patients, implanted patient-years simulated (sum over arms of ``patient_years``
   in the printed summary), wall seconds, peak total RSS of the tree, peak RSS of
   the largest single process (sampled, and the kernel's exact ``ru_maxrss`` from
   ``wait4``), chunk size and workers. With the chunk size fixed, memory should stay
   flat as the patient count grows: it is bounded by the chunk.
2. Chunk-size check: one small trial (``--check-patients``, default 3,000) run with
   two chunk sizes (``--check-chunks``, default 777 and 5000); the two printed
   summaries, minus the timing and execution fields, must be identical.

Writes bench/results/memory.json and bench/results/memory.md.

Run: ``.venv/bin/python bench/bench_memory.py [--sizes 10000 100000 1000000] [--years 1]
[--chunk-size 5000] [--workers 2]``; smoke run: ``.venv/bin/python bench/bench_memory.py --quick``
(2,000 and 8,000 patients).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ITB = ROOT / ".venv" / "bin" / "itb"
SEED = 20261121
MB = 1024 * 1024
QUICK_SIZES = [2000, 8000]
# Fields of the printed summary that describe the run, not the result.
RUN_FIELDS = ("wall_time_s", "execution")

TRIAL = """\
# Written by bench/bench_memory.py: two refill policies, as examples/trials/refill_margin.toml.
[trial]
name = "Memory benchmark: {patients} patients"
patients = {patients}
horizon_years = {years}
seed = {seed}

[[arm]]
name = "refill on alarm day"
pump = "synchromed_ii_20"
refill = "margin"
refill_margin_days = 0
low_reservoir_alarm_ml = 2.0

[[arm]]
name = "refill 14 days early"
pump = "synchromed_ii_20"
refill = "margin"
refill_margin_days = 14
low_reservoir_alarm_ml = 2.0
"""


def source_state(itb: Path) -> dict[str, Any]:
    """Where the ``itb`` package is imported from, a digest of it, the commit, and whether
    src/ has uncommitted changes.

    The package is installed in editable mode, so a run uses whatever is in src/ at the
    time: a digest that differs at the end of the benchmark means the code changed
    during it, and the runs are not comparable.
    """
    python = itb.parent / "python"
    found = subprocess.run(
        [str(python), "-c", "import itb; print(itb.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(found.stdout.strip()).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".toml"}:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=package, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "package": str(package),
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--", ".")),
        "digest": digest.hexdigest()[:16],
    }


def write_trial(directory: Path, patients: int, years: float) -> Path:
    path = directory / f"trial_{patients}.toml"
    path.write_text(TRIAL.format(patients=patients, years=years, seed=SEED), encoding="utf-8")
    return path


def _tree_rss(root: psutil.Process) -> tuple[int, int, int]:
    """(total RSS, largest single RSS, process count) of ``root`` and its descendants."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    sizes = []
    for p in procs:
        try:
            sizes.append(p.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return sum(sizes), max(sizes, default=0), len(sizes)


def _downsample(series: list[list[float]], points: int = 100) -> list[list[float]]:
    if len(series) <= points:
        return series
    step = len(series) / points
    return [series[int(i * step)] for i in range(points)] + [series[-1]]


def run_itb(
    itb: Path,
    trial: Path,
    out: Path,
    *,
    chunk_size: int,
    workers: int | None,
    interval: float,
    timeout: float | None,
) -> dict[str, Any]:
    """Run ``itb cohort`` once, sampling the process tree's RSS; return the summary and memory."""
    cmd = [str(itb), "cohort", str(trial), "--out", str(out), "--json"]
    cmd += ["--chunk-size", str(chunk_size)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    stdout_path = out.parent / f"{out.name}.stdout"
    stderr_path = out.parent / f"{out.name}.stderr"
    peak_total = peak_single = peak_procs = 0
    series: list[list[float]] = []
    with stdout_path.open("wb") as so, stderr_path.open("wb") as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=ROOT)
        root = psutil.Process(proc.pid)
        while True:
            # wait4 reaps the child and gives its rusage: ru_maxrss (KiB on Linux) is the
            # largest peak RSS of the child or any descendant it reaped (dask workers).
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            elapsed = time.perf_counter() - t0
            if pid != 0:
                break
            total, single, count = _tree_rss(root)
            peak_total = max(peak_total, total)
            peak_single = max(peak_single, single)
            peak_procs = max(peak_procs, count)
            series.append([round(elapsed, 2), round(total / MB, 1), round(single / MB, 1)])
            if timeout is not None and elapsed > timeout:
                proc.kill()
            time.sleep(interval)
        proc.returncode = os.waitstatus_to_exitcode(status)
    error = None
    summary = None
    if proc.returncode == 0:
        summary = json.loads(stdout_path.read_text(encoding="utf-8"))
    else:
        # Keep the memory numbers of a failed run; the last line of stderr names the error.
        tail = stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        error = f"exit code {proc.returncode}: {tail[-1] if tail else ''}"
        print(f"{' '.join(cmd)} failed ({error})", file=sys.stderr, flush=True)
    return {
        "command": cmd,
        "error": error,
        "summary": summary,
        "wall_s": elapsed,
        "peak_total_rss_mb": peak_total / MB,
        "peak_single_rss_mb": peak_single / MB,
        "kernel_max_single_rss_mb": usage.ru_maxrss * 1024 / MB,
        "max_processes": peak_procs,
        "samples": len(series),
        "timeline_s_total_mb_single_mb": _downsample(series),
    }


def patient_years(summary: dict[str, Any]) -> float:
    """Implanted patient-years simulated: the sum over arms of each arm's ``patient_years``."""
    return float(sum(arm["patient_years"] for arm in summary["arms"]))


def result_only(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in RUN_FIELDS}


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in dict.fromkeys([*a, *b]):
            out += _differences(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path or '.'}: {a!r} != {b!r}"]


def memory_runs(args: argparse.Namespace, sizes: list[int], tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        trial = write_trial(tmp, n, args.years)
        run = run_itb(
            args.itb,
            trial,
            tmp / f"out_{n}",
            chunk_size=args.chunk_size,
            workers=args.workers,
            interval=args.interval,
            timeout=args.timeout,
        )
        s = run["summary"] or {}
        row = {
            "patients": n,
            "implanted": s.get("patients_implanted"),
            "arms": len(s["arms"]) if s else None,
            "horizon_days": s.get("horizon_days"),
            "patient_years": patient_years(s) if s else None,
            "wall_s": run["wall_s"],
            "wall_s_inside_command": s.get("wall_time_s"),
            "peak_total_rss_mb": run["peak_total_rss_mb"],
            "peak_single_rss_mb": run["peak_single_rss_mb"],
            "kernel_max_single_rss_mb": run["kernel_max_single_rss_mb"],
            "max_processes": run["max_processes"],
            "chunk_size": args.chunk_size,
            "workers": args.workers,
            "error": run["error"],
            "samples": run["samples"],
            "timeline_s_total_mb_single_mb": run["timeline_s_total_mb_single_mb"],
        }
        rows.append(row)
        years = "failed" if row["error"] else f"{row['patient_years']:,.0f}"
        print(
            f"N={n:>9,}: {years:>12} patient-years  {row['wall_s']:8.1f} s  "
            f"tree peak {row['peak_total_rss_mb']:7.0f} MB  largest process "
            f"{row['peak_single_rss_mb']:6.0f} MB (kernel {row['kernel_max_single_rss_mb']:.0f} MB)",
            flush=True,
        )
    return rows


def chunk_check(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    trial = write_trial(tmp, args.check_patients, args.years)
    summaries: list[dict[str, Any]] = []
    walls = []
    errors: list[str] = []
    for c in args.check_chunks:
        run = run_itb(
            args.itb,
            trial,
            tmp / f"check_{c}",
            chunk_size=c,
            workers=None,
            interval=args.interval,
            timeout=args.timeout,
        )
        if run["error"]:
            errors.append(f"chunk size {c}: {run['error']}")
        else:
            summaries.append(result_only(run["summary"]))
        walls.append(run["wall_s"])
    diffs = sorted({d for s in summaries[1:] for d in _differences(summaries[0], s)})
    identical = not errors and not diffs
    print(
        f"chunk-size check, {args.check_patients:,} patients, chunks {args.check_chunks}: "
        f"identical summaries: {identical}"
        + ("" if identical else f" (differ: {diffs[:10]}; errors: {errors})"),
        flush=True,
    )
    return {
        "patients": args.check_patients,
        "chunk_sizes": args.check_chunks,
        "workers": None,
        "wall_s": walls,
        "compared": f"the printed JSON summary without {', '.join(RUN_FIELDS)}",
        "identical": identical,
        "differences": diffs[:50],
        "errors": errors,
    }


def markdown(out: dict[str, Any]) -> str:
    rows, check, m, src = out["memory"], out["chunk_check"], out["machine"], out["source"]
    workers = out["workers"]
    where = "one process" if workers is None else f"a local dask cluster of {workers} workers"
    md = ["# Memory of `itb cohort` against the number of patients", ""]
    if out["quick"]:
        md += [
            "**Quick run (`--quick`): smoke sizes only, not the recorded benchmark.** "
            "The recorded run is `.venv/bin/python bench/bench_memory.py` "
            "(10,000, 100,000 and 1,000,000 patients).",
            "",
        ]
    md += [
        f"Run {out['started']} on {m['platform']}, {m['cpus']} CPUs, "
        f"{m['memory_gib']:.0f} GiB RAM; load average at the start {m['load_average_start']}. "
        "The machine is shared with other work, so wall times move with its load; "
        "memory does not depend on the load.",
        "",
        f"Code: `{src['package']}`, commit `{src['commit'][:10] or 'none'}`"
        + (", with uncommitted changes" if src["uncommitted_changes"] else "")
        + f" (digest `{src['digest']}`)"
        + (
            "; **the source changed during the run: the runs are not comparable**."
            if src["changed_during_run"]
            else "."
        ),
        "",
        f"Each run is `itb cohort TRIAL --out DIR --json --chunk-size {out['chunk_size']}"
        + ("" if workers is None else f" --workers {workers}")
        + f"` in {where}: two arms (refill on the alarm day, refill 14 days early; "
        f"`examples/trials/refill_margin.toml`), {out['years']:g} year(s) of follow-up, "
        f"seed {SEED}. Patient-years are implanted patient-years simulated, summed over "
        "both arms (`arms[].patient_years` of the summary). Memory is the resident set "
        f"(RSS) sampled every {out['interval_s']:g} s over the whole process tree (the itb "
        "process and every descendant, e.g. dask workers): *tree peak* is the largest "
        "sum over the tree, *largest process* the largest single process (sampled, and "
        "exact from the kernel's `ru_maxrss`). The tree sum counts shared library pages "
        "once per process, so it overstates the tree's real footprint.",
        "",
        "| patients | implanted | patient-years | wall s | tree peak RSS MB | "
        "largest process MB (sampled / kernel) | processes | chunk | workers |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        implanted = "—" if r["implanted"] is None else f"{r['implanted']:,}"
        years = "failed" if r["patient_years"] is None else f"{r['patient_years']:,.0f}"
        md.append(
            f"| {r['patients']:,} | {implanted} | {years} | "
            f"{r['wall_s']:.1f} | {r['peak_total_rss_mb']:,.0f} | "
            f"{r['peak_single_rss_mb']:,.0f} / {r['kernel_max_single_rss_mb']:,.0f} | "
            f"{r['max_processes']} | {r['chunk_size']:,} | "
            f"{'—' if r['workers'] is None else r['workers']} |"
        )
    failed = [r for r in rows if r["error"]]
    if failed:
        md += [
            "",
            "Failed runs (memory and wall time up to the failure are still shown above):",
            "",
        ]
        md += [f"- {r['patients']:,} patients: `{r['error']}`" for r in failed]
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        md += [
            "",
            f"From {lo['patients']:,} to {hi['patients']:,} patients "
            f"({hi['patients'] / lo['patients']:,.0f} times as many) the tree peak goes from "
            f"{lo['peak_total_rss_mb']:,.0f} to {hi['peak_total_rss_mb']:,.0f} MB "
            f"(x{hi['peak_total_rss_mb'] / lo['peak_total_rss_mb']:.2f}). What the numbers "
            "mean: with the chunk size fixed, memory that stays flat as the patient count "
            "grows is bounded by the chunk (each process holds one chunk's arrays and the "
            "merged integer aggregates), so the cohort size is limited by time, not memory. "
            "A cohort smaller than the chunk size runs as one smaller chunk, so its row "
            "can sit a little lower.",
        ]
    md += [
        "",
        f"Chunk-size check: {check['patients']:,} patients, chunk sizes "
        f"{', '.join(f'{c:,}' for c in check['chunk_sizes'])} (one process): "
        f"identical summaries (JSON without {', '.join(RUN_FIELDS)}): "
        f"**{str(check['identical']).lower()}**"
        + (
            "."
            if check["identical"]
            else f"; differing fields: {check['differences'][:10]}; errors: {check['errors']}."
        ),
        "",
    ]
    return "\n".join(md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: sizes {QUICK_SIZES}")
    ap.add_argument("--years", type=float, default=1.0, help="horizon_years of the trial")
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=None, help="local dask workers (default: none)")
    ap.add_argument("--check-patients", type=int, default=3000)
    ap.add_argument("--check-chunks", type=int, nargs=2, default=[777, 5000])
    ap.add_argument("--interval", type=float, default=0.2, help="RSS sampling interval, s")
    ap.add_argument("--timeout", type=float, default=None, help="kill a run after this many s")
    ap.add_argument("--itb", type=Path, default=ITB, help="the itb executable")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where to write the results")
    args = ap.parse_args()
    sizes = QUICK_SIZES if args.quick else args.sizes
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load = os.getloadavg()
    source = source_state(args.itb)
    with tempfile.TemporaryDirectory(prefix="itb-bench-memory-") as d:
        tmp = Path(d)
        rows = memory_runs(args, sizes, tmp)
        check = chunk_check(args, tmp)
    source_after = source_state(args.itb)
    source["changed_during_run"] = source_after["digest"] != source["digest"]
    if source["changed_during_run"]:
        print("warning: the itb source changed during the benchmark", flush=True)
    out = {
        "benchmark": "bench_memory.py",
        "started": started,
        "quick": args.quick,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_gib": psutil.virtual_memory().total / 1024**3,
            "load_average_start": [round(x, 2) for x in load],
            "shared": True,
        },
        "source": source,
        "years": args.years,
        "chunk_size": args.chunk_size,
        "workers": args.workers,
        "interval_s": args.interval,
        "patient_years_field": "sum over arms of arms[].patient_years",
        "memory": rows,
        "chunk_check": check,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "memory.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (args.results / "memory.md").write_text(markdown(out), encoding="utf-8")
    return 0 if check["identical"] and not any(r["error"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
