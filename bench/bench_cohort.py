"""Benchmark: the vectorised cohort engine, in simulated patient-hours per second.

1. One core (this process, BLAS at one thread): cohorts of 1, 1,000, 10,000 and
   100,000 patients (``--sizes``), one arm (refill 7 days before the low-reservoir
   alarm date, label titration), ``--years`` of follow-up (default 1), chunks of
   ``--chunk-size``. Reported: the whole trial path (draw, screen, implant, run,
   aggregate) and the engine alone (``run_arm`` on implanted patients).
   A large row: ``--large-size`` patients (default 1,000,000) over ``--large-days``
   (default 30) through the same chunked path, with the process's peak resident
   memory (the chunk bounds it, not the cohort).
   Engine cost by program shape: ``--shape-size`` patients, engine only, for a
   continuous, a 3-step flex, a 6-hourly periodic arm and one with patient and
   bridge boluses.
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
import resource
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from itb.bootstrap import catalog, cohort_setup
from itb.domain.patient import PatientState, advance, derivatives
from itb.domain.pump import PatientBolusSettings
from itb.domain.units import HOURS_PER_DAY
from itb.services.cohort_trial import default_arm
from itb.simulation.arm_program import ProgramShape
from itb.simulation.blas import single_threaded_blas
from itb.simulation.cohort_runner import run_chunks_dask, run_chunks_local
from itb.simulation.cohort_trial import TrialSetup, implant, run_implanted
from itb.simulation.population import draw_patient
from itb.simulation.vector_engine import draw_pump_randomness

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ARM = default_arm(catalog(), "refill 7 days early", refill_margin_days=7)
"""The protocol's default arm (``protocol.toml``) with refills 7 days before the alarm date."""
_PROTOCOL = catalog().protocol
PERIODIC = ProgramShape(
    "periodic",
    periodic_fraction=_PROTOCOL["periodic_bolus_fraction"],
    periodic_interval_h=_PROTOCOL["periodic_interval_h"],
    periodic_duration_h=_PROTOCOL["periodic_bolus_duration_h"],
)
"""The periodic program a trial arm gets from the protocol (a share of the dose as boluses)."""


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


def large(n: int, days: int, chunk: int) -> dict[str, Any]:
    """The chunked whole-trial path for a large cohort, with the peak resident memory."""
    setup = replace(_setup(n, 1.0), horizon_days=days)
    t0 = time.perf_counter()
    partial = run_chunks_local(setup, chunk_size=chunk)
    wall = time.perf_counter() - t0
    hours = partial.responders * days * HOURS_PER_DAY
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"one core  N={n:>9,} x {days} days: {wall:8.2f} s  {hours / wall:14,.0f} patient-h/s  "
        f"peak RSS {peak_mb:,.0f} MB (chunks of {chunk:,})",
        flush=True,
    )
    return {
        "patients": n,
        "implanted": partial.responders,
        "days": days,
        "chunk_size": chunk,
        "wall_s": wall,
        "patient_hours_per_s": hours / wall,
        "peak_rss_mb": peak_mb,
    }


SHAPES = (
    ARM,
    replace(
        ARM,
        name="flex, 3 steps",
        program=ProgramShape("flex", flex_steps=((0.0, 1.3), (7.0, 0.8), (21.0, 1.3))),
    ),
    replace(ARM, name=f"periodic, {PERIODIC.periodic_interval_h:g}-hourly", program=PERIODIC),
    replace(
        ARM,
        name="patient + bridge boluses",
        bridge_bolus=True,
        patient_bolus=PatientBolusSettings(50.0, 0.5, 4.0, 3),
    ),
)


def shapes(n: int, years: float) -> list[dict[str, Any]]:
    """Engine-only cost of each program shape on the same implanted patients."""
    setup = _setup(n, years)
    imp = implant(setup, 0, n)
    draws = draw_pump_randomness(setup.seed, imp.ks)
    rows = []
    for arm in SHAPES:
        t0 = time.perf_counter()
        run_implanted(setup, imp, arm, draws)
        wall = time.perf_counter() - t0
        hours = len(imp.ks) * setup.horizon_days * HOURS_PER_DAY
        rows.append({"arm": arm.name, "patients": len(imp.ks), "wall_s": wall,
                     "patient_hours_per_s": hours / wall})  # fmt: skip
        print(f"shape {arm.name:<26} {wall:8.2f} s  {hours / wall:14,.0f} patient-h/s", flush=True)
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
    ap.add_argument("--large-size", type=int, default=1_000_000, help="0: skip the large row")
    ap.add_argument("--large-days", type=int, default=30)
    ap.add_argument("--shape-size", type=int, default=5000)
    args = ap.parse_args()
    single_threaded_blas()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = one_core(args.sizes, args.years, args.chunk_size)
    shape_rows = shapes(args.shape_size, args.years)
    big = large(args.large_size, args.large_days, args.chunk_size) if args.large_size else None
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
        "large": big,
        "shapes": shape_rows,
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
    if big is not None:
        md += [
            "",
            f"Large cohort, same chunked path (chunks of {big['chunk_size']:,}), "
            f"{big['days']} days of follow-up:",
            "",
            "| patients | implanted | wall s | patient-h/s | peak resident memory |",
            "|---:|---:|---:|---:|---:|",
            f"| {big['patients']:,} | {big['implanted']:,} | {big['wall_s']:.1f} | "
            f"{big['patient_hours_per_s']:,.0f} | {big['peak_rss_mb']:,.0f} MB |",
        ]
    md += ["", f"Engine only, by program shape ({shape_rows[0]['patients']:,} implanted patients):"]
    md += ["", "| arm | wall s | patient-h/s |", "|---|---:|---:|"]
    md += [
        f"| {r['arm']} | {r['wall_s']:.2f} | {r['patient_hours_per_s']:,.0f} |" for r in shape_rows
    ]
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
