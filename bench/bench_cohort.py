"""Benchmark: the vectorised cohort engine, in simulated patient-hours per second.

1. One core (this process, BLAS at one thread): cohorts of 1, 1,000, 10,000 and
   100,000 patients (``--sizes``), one arm (refill 7 days before the low-reservoir
   alarm date, label titration), ``--years`` of follow-up (default 1), chunks of
   ``--chunk-size``. Reported: the whole trial path (draw, screen, implant, run,
   aggregate) and the engine alone (``run_arm`` on implanted patients).
2. dask scaling: the same trial at ``--dask-size`` patients on a LocalCluster of 1
   and 2 worker processes (one thread each).
3. Reference in the same run: the same patient model stepped with a general ODE
   solver (``scipy.integrate.solve_ivp``, LSODA, rtol 1e-8, restarted at every
   daily rate change) on ``itb.domain.patient.derivatives`` for a few patients,
   fed each patient's daily delivery from the engine; its accuracy is checked
   against the exact per-segment solution (``itb.domain.patient.advance``).

Prints the ratios; writes bench/results/cohort.json and bench/results/cohort.md.

Run: ``.venv/bin/python bench/bench_cohort.py [--sizes 1 1000 10000 100000] [--years 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from itb.bootstrap import cohort_setup
from itb.domain.patient import PatientState, advance, derivatives
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.blas import single_threaded_blas
from itb.simulation.cohort_runner import run_chunks_dask, run_chunks_local
from itb.simulation.cohort_trial import TrialSetup, implant, run_implanted
from itb.simulation.population import draw_patient
from itb.simulation.vector_engine import ArmPolicy, draw_pump_randomness

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ARM = ArmPolicy("refill 7 days early", refill_margin_days=7)


def _setup(n: int, years: float, seed: int = 2026) -> TrialSetup:
    return replace(
        cohort_setup(), seed=seed, patients=n, horizon_days=round(years * 365.25), arms=(ARM,)
    )


def _engine_only(setup: TrialSetup, n: int) -> tuple[float, Any]:
    imp = implant(setup, 0, n)
    draws = draw_pump_randomness(setup.seed, imp.ks)
    t0 = time.perf_counter()
    result = run_implanted(setup, imp, ARM, draws, trace=n <= 10)
    return time.perf_counter() - t0, (imp, result)


def one_core(sizes: list[int], years: float, chunk: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        setup = _setup(n, years)
        t0 = time.perf_counter()
        partial = run_chunks_local(setup, chunk_size=min(chunk, n))
        whole = time.perf_counter() - t0
        implanted = partial.responders
        hours = implanted * setup.horizon_days * HOURS_PER_DAY
        engine_s = None
        if n <= 10_000:
            engine_s, _ = _engine_only(setup, n)
        rows.append(
            {
                "patients": n,
                "implanted": implanted,
                "days": setup.horizon_days,
                "wall_s": whole,
                "patient_hours_per_s": hours / whole,
                "engine_only_s": engine_s,
                "engine_patient_hours_per_s": None if engine_s is None else hours / engine_s,
            }
        )
        print(
            f"one core  N={n:>7,}: {whole:8.2f} s  "
            f"{hours / whole:14,.0f} patient-h/s (whole trial path)"
            + ("" if engine_s is None else f"  {hours / engine_s:14,.0f} (engine only)"),
            flush=True,
        )
    return rows


def dask_scaling(n: int, years: float, chunk: int) -> list[dict[str, Any]]:
    rows = []
    setup = _setup(n, years)
    reference = None
    for workers in (1, 2):
        t0 = time.perf_counter()
        partial = run_chunks_dask(setup, chunk_size=chunk, workers=workers)
        wall = time.perf_counter() - t0
        hours = partial.responders * setup.horizon_days * HOURS_PER_DAY
        reference = reference or partial
        rows.append(
            {
                "workers": workers,
                "patients": n,
                "chunk_size": chunk,
                "wall_s": wall,
                "patient_hours_per_s": hours / wall,
                "identical_to_1_worker": partial == reference,
            }
        )
        print(f"dask {workers} worker(s) N={n:,}: {wall:8.2f} s  {hours / wall:14,.0f} patient-h/s")
    return rows


def ode_reference(patients: int, years: float) -> dict[str, Any]:
    """solve_ivp on the patient derivatives, fed the engine's daily delivery, vs exact."""
    setup = _setup(patients, years, seed=7)
    _, (imp, result) = _engine_only(setup, patients)
    delivered = result.trace_delivered  # (days + 1, N)
    days = setup.horizon_days
    t_ode = t_exact = 0.0
    worst = 0.0
    for i, k in enumerate(imp.ks):
        params = draw_patient(setup.population, setup.seed, int(k))
        rates = np.diff(delivered[:, i]) / HOURS_PER_DAY
        t0 = time.perf_counter()
        x = np.zeros(5)
        for r in rates:

            def rhs(_t: float, y: np.ndarray, r: float = float(r), p: Any = params) -> list[float]:
                return list(derivatives(p, tuple(y), r))

            sol = solve_ivp(rhs, (0.0, HOURS_PER_DAY), x, method="LSODA", rtol=1e-8, atol=1e-12)
            x = sol.y[:, -1]
        t_ode += time.perf_counter() - t0
        t0 = time.perf_counter()
        state = PatientState()
        for r in rates:
            state = advance(params, state, float(r), HOURS_PER_DAY)
        t_exact += time.perf_counter() - t0
        exact = np.array(state.vector)
        scale = np.maximum(np.abs(exact), 1e-12)
        worst = max(worst, float(np.max(np.abs(x[:4] - exact[:4]) / scale[:4])))
    hours = len(imp.ks) * days * HOURS_PER_DAY
    print(
        f"solve_ivp reference ({len(imp.ks)} patients): {hours / t_ode:14,.0f} patient-h/s; "
        f"exact single-patient domain: {hours / t_exact:14,.0f} patient-h/s; "
        f"max relative difference {worst:.2e}"
    )
    return {
        "patients": len(imp.ks),
        "days": days,
        "method": "solve_ivp LSODA rtol 1e-8 atol 1e-12, restarted daily",
        "ode_patient_hours_per_s": hours / t_ode,
        "exact_domain_patient_hours_per_s": hours / t_exact,
        "max_relative_difference_vs_exact": worst,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 1000, 10_000, 100_000])
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--dask-size", type=int, default=10_000)
    ap.add_argument("--ode-patients", type=int, default=3)
    args = ap.parse_args()
    single_threaded_blas()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = one_core(args.sizes, args.years, args.chunk_size)
    scaling = dask_scaling(args.dask_size, args.years, min(args.chunk_size, 2500))
    ode = ode_reference(args.ode_patients, args.years)
    best = max(r["patient_hours_per_s"] for r in rows)
    engine = max((r["engine_patient_hours_per_s"] or 0.0) for r in rows)
    ratios = {
        "vector_engine_vs_ode": engine / ode["ode_patient_hours_per_s"],
        "whole_trial_path_vs_ode": best / ode["ode_patient_hours_per_s"],
        "vector_engine_vs_exact_single_patient_patient_model_only": engine
        / ode["exact_domain_patient_hours_per_s"],
        "dask_2_vs_1_worker": scaling[0]["wall_s"] / scaling[1]["wall_s"],
    }
    for k, v in ratios.items():
        print(f"ratio {k}: {v:,.1f}")
    out = {
        "benchmark": "bench_cohort.py",
        "started": started,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
        },
        "years": args.years,
        "one_core": rows,
        "dask": scaling,
        "ode_reference": ode,
        "ratios": ratios,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cohort.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    md = [
        "# Cohort engine benchmark",
        "",
        f"Run {started} on {platform.platform()}, {os.cpu_count()} CPUs; {args.years:g} year(s) "
        f"of follow-up, one arm ({ARM.name}), label titration. The machine is shared, so "
        "absolute numbers move with its load; ratios in one run are comparable.",
        "",
        "| patients | implanted | wall s (whole path) | patient-h/s (whole path) | "
        "patient-h/s (engine only) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        eng = r["engine_patient_hours_per_s"]
        md.append(
            f"| {r['patients']:,} | {r['implanted']:,} | {r['wall_s']:.2f} | "
            f"{r['patient_hours_per_s']:,.0f} | {'—' if eng is None else f'{eng:,.0f}'} |"
        )
    md += ["", "| dask workers | patients | wall s | patient-h/s | identical result |"]
    md += ["|---:|---:|---:|---:|---|"]
    for r in scaling:
        md.append(
            f"| {r['workers']} | {r['patients']:,} | {r['wall_s']:.2f} | "
            f"{r['patient_hours_per_s']:,.0f} | {r['identical_to_1_worker']} |"
        )
    md += [
        "",
        f"Reference: {ode['method']}, {ode['patients']} patients: "
        f"{ode['ode_patient_hours_per_s']:,.0f} patient-h/s (patient model only); exact "
        f"single-patient domain: {ode['exact_domain_patient_hours_per_s']:,.0f} patient-h/s; "
        f"largest relative difference from the exact solution "
        f"{ode['max_relative_difference_vs_exact']:.1e}.",
        "",
        "| ratio | value |",
        "|---|---:|",
        *(f"| {k} | {v:,.1f} |" for k, v in ratios.items()),
        "",
    ]
    (RESULTS / "cohort.md").write_text("\n".join(md), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
