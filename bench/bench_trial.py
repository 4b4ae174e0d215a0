"""Benchmark: the whole virtual-trial command on a local dask cluster, 1 against 2 workers.

What a researcher runs (README): ``itb cohort TRIAL.toml --workers W --out DIR``, each
run a fresh process timed from outside (wall clock, and the peak resident memory of the
largest process it waited for, through ``os.wait4``), the throughput from the run's own
``summary.json`` (implanted patient-years x 8,766 h over the wall time):

1. paired runs on ``--patients`` x ``--years`` (default 100,000 x 1), 1 and 2 workers in
   turn (1 2 1 2 ...); the dask efficiency of 2 workers is (time on 1 / time on 2) / 2,
   pair by pair, its median and range reported;
2. ``--million``: the 1,000,000-patient, 5-year trial on 2 workers, once (``--repeat 0``
   skips the pairs; a section not run keeps its last recorded result).

Writes bench/results/trial.json and bench/results/trial.md.

Run: ``.venv/bin/python bench/bench_trial.py [--patients 100000] [--years 1] [--repeat 2]
[--million]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itb.domain.units import HOURS_PER_YEAR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ITB = Path(sys.executable).parent / "itb"
TRIAL = ROOT / "examples" / "trials" / "refill_margin.toml"
TARGET_EFFICIENCY = 0.8


def _shown(path: Path) -> str:
    """``path`` as written from the repository root (when it is inside it)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _run(trial: Path, patients: int, years: float, workers: int) -> dict[str, Any]:
    """One ``itb cohort`` run in a fresh process: wall s, peak RSS MB, patient-hours."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [
            str(ITB),
            "cohort",
            str(trial),
            "--patients",
            str(patients),
            "--years",
            str(years),
            "--workers",
            str(workers),
            "--out",
            str(out),
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {stderr[-2000:]}")
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    years_done = sum(a["patient_years"] for a in summary["arms"])
    hours = years_done * HOURS_PER_YEAR
    return {
        "command": " ".join(["itb", "cohort", _shown(trial), *cmd[3:-1], "DIR"]),
        "workers": workers,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "patient_years": years_done,
        "patient_hours_per_s": hours / wall,
        "arms": len(summary["arms"]),
        "implanted": [a["implanted"] for a in summary["arms"]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trial", type=Path, default=TRIAL)
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=2, help="pairs of 1- and 2-worker runs (0: none)")
    ap.add_argument("--million", action="store_true", help="also 1,000,000 x 5 years, 2 workers")
    args = ap.parse_args(argv)
    # a section not run this time keeps its last recorded result (each says when it ran)
    out = _previous()
    out.update(
        {
            "benchmark": "bench_trial.py",
            "machine": {
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
        }
    )
    trial = (
        str(args.trial.relative_to(ROOT)) if args.trial.is_relative_to(ROOT) else str(args.trial)
    )
    if args.repeat > 0:
        run = _section_start()
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for _ in range(args.repeat):
            one = _run(args.trial, args.patients, args.years, 1)
            two = _run(args.trial, args.patients, args.years, 2)
            pairs.append((one, two))
            print(
                f"{args.patients:,} x {args.years:g} y: 1 worker {one['wall_s']:.1f} s, "
                f"2 workers {two['wall_s']:.1f} s: efficiency "
                f"{one['wall_s'] / two['wall_s'] / 2:.2f}",
                flush=True,
            )
        eff = [a["wall_s"] / b["wall_s"] / 2 for a, b in pairs]
        out["efficiency"] = {
            "run": _section_end(run),
            "trial": trial,
            "patients": args.patients,
            "years": args.years,
            "pairs": [{"one_worker": a, "two_workers": b} for a, b in pairs],
            "median": statistics.median(eff),
            "min": min(eff),
            "max": max(eff),
            "target": TARGET_EFFICIENCY,
        }
    if args.million:
        run = _section_start()
        million = _run(args.trial, 1_000_000, 5.0, 2)
        out["million"] = {**million, "trial": trial, "run": _section_end(run)}
        print(
            f"1,000,000 x 5 y on 2 workers: {million['wall_s']:.0f} s, "
            f"{million['patient_hours_per_s']:,.0f} patient-h/s, "
            f"peak {million['peak_rss_mb']:,.0f} MB",
            flush=True,
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "trial.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "trial.md").write_text(_markdown(out), encoding="utf-8")
    print(f"written: {RESULTS / 'trial.json'}, {RESULTS / 'trial.md'}")
    return 0


def _section_start() -> dict[str, Any]:
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_start": list(os.getloadavg()),
    }


def _section_end(run: dict[str, Any]) -> dict[str, Any]:
    return {
        **run,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_end": list(os.getloadavg()),
    }


def _previous() -> dict[str, Any]:
    """The last recorded results (kept for the sections not run this time)."""
    try:
        data: dict[str, Any] = json.loads((RESULTS / "trial.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def _when(run: dict[str, Any]) -> str:
    def load(key: str) -> str:
        return "not recorded" if run.get(key) is None else str(run[key])

    return (
        f"Run {run['started']} to {run['finished']}; load average (1, 5, 15 min) "
        f"{load('load_start')} at start, {load('load_end')} at end."
    )


def _markdown(out: dict[str, Any]) -> str:
    m = out["machine"]
    md = [
        "# Whole trial command: 1 against 2 workers, and a million patients",
        "",
        "Commands: `.venv/bin/python bench/bench_trial.py` (the pairs) and "
        "`.venv/bin/python bench/bench_trial.py --repeat 0 --million` (the million); a "
        "section keeps its last recorded result when only the other is run.  ",
        f"On {m['platform']}, {m['cpus']} CPUs, Python {m['python']} (the machine is shared "
        "with other work). Each run is `itb cohort` in a fresh process, as the README runs "
        "it; wall seconds from outside, the peak resident memory of the largest process it "
        "waited for (`os.wait4`), the throughput from the run's own summary (implanted "
        "patient-years x 8,766 h / wall).",
        "",
    ]
    e = out.get("efficiency")
    if e:
        verdict = (
            "met"
            if e["median"] >= e["target"]
            else f"**missed** by {e['target'] - e['median']:.2f}"
        )
        md += [
            f"## Dask efficiency: `{e['trial']}`, {e['patients']:,} patients per arm, "
            f"{e['years']:g} year(s)",
            "",
            _when(e["run"]),
            "",
            "| pair | 1 worker s | 2 workers s | efficiency (t1 / t2 / 2) | 2 workers "
            "patient-h/s | peak MB (1 / 2 workers) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for k, p in enumerate(e["pairs"], 1):
            a, b = p["one_worker"], p["two_workers"]
            md.append(
                f"| {k} | {a['wall_s']:.1f} | {b['wall_s']:.1f} | "
                f"{a['wall_s'] / b['wall_s'] / 2:.2f} | {b['patient_hours_per_s']:,.0f} | "
                f"{a['peak_rss_mb']:,.0f} / {b['peak_rss_mb']:,.0f} |"
            )
        md += [
            "",
            f"Efficiency of 2 workers, median of the pairs: **{e['median']:.2f}** (range "
            f"{e['min']:.2f}-{e['max']:.2f}); target {e['target']:g}: {verdict}.",
            "",
        ]
    mil = out.get("million")
    if mil:
        md += [
            f"## 1,000,000 patients per arm, 5 years, 2 workers (`{mil['trial']}`)",
            "",
            _when(mil["run"]),
            "",
            f"`{mil['command']}`: **{mil['wall_s'] / 60:.1f} min** wall "
            f"({mil['wall_s']:,.0f} s), {mil['patient_years']:,.0f} implanted patient-years "
            f"over {mil['arms']} arms, **{mil['patient_hours_per_s']:,.0f} patient-h/s**, peak "
            f"resident memory of the largest process **{mil['peak_rss_mb']:,.0f} MB**; "
            f"{mil['cpu_s']:,.0f} CPU seconds in the processes it waited for.",
            "",
        ]
    return "\n".join(md)


if __name__ == "__main__":
    sys.exit(main())
