"""Benchmark: ten simulated years of the full protocol for one patient.

The flagship scenario (``itb/data/scenarios/seven_years_end_to_end.toml``:
screening, titration, refills, check-ups, concentration changes, a late
refill, an MRI, a catheter kink, battery replacement) run for ten years
(``--years``) with the whole course engine: pump, clinic, the sampling grid
read from the course tape, metrics. Measured in the same run:

1. exact: the event-only engine as ``itb simulate`` runs it (closed-form
   pharmacology, ``itb.domain.patient.advance``, and the grid from the
   patient's modes in one vectorised pass);
2. reference: the same engine with every constant-rate piece, and every grid
   point, integrated by a general ODE solver (``scipy.integrate.solve_ivp``,
   LSODA, rtol 1e-10, atol 1e-12) on ``itb.domain.patient.derivatives``;
3. before (``--before-src DIR``, optional): the same course on an earlier
   checkout's ``src`` (e.g. the engine that stepped pump and patient at every
   grid point), in a fresh process, interleaved with the present code in a
   fresh process, each timing ``run_course`` in-process.

Everything but what is named is shared; the courses are compared (final
state, MAS at every sample, timeline, metrics) to show they agree.

Prints the times, min and median, and the ratios; writes
bench/results/simulate.json and bench/results/simulate.md.

Run: ``.venv/bin/python bench/bench_simulate.py [--years 10] [--repeat 7]
[--sample-every-h 6] [--before-src DIR]``; an earlier checkout:
``git worktree add /tmp/itb-before <commit>``, then ``--before-src /tmp/itb-before/src``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scipy.integrate import solve_ivp

from checkout import commit_of, seconds_on
from itb import bootstrap
from itb.domain.patient import PatientParameters, PatientState, derivatives
from itb.services.scenario import build_setup
from itb.simulation.engine import CourseRun, CourseSetup, MemoryRecorder, run_course
from itb.simulation.metrics import compute_metrics

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCENARIO = "seven_years_end_to_end"
RTOL = 1e-10
ATOL = 1e-12


def ode_step(
    params: PatientParameters, state: PatientState, rate_mcg_per_h: float, dt_h: float
) -> PatientState:
    """One constant-rate piece with scipy's LSODA on the model's right-hand side."""
    if dt_h <= 0.0:
        return state
    sol = solve_ivp(
        lambda _t, x: derivatives(params, tuple(x), rate_mcg_per_h),
        (0.0, dt_h),
        list(state.vector),
        method="LSODA",
        rtol=RTOL,
        atol=ATOL,
    )
    x = sol.y[:, -1]
    on_therapy = state.on_therapy or rate_mcg_per_h > 0.0
    return PatientState(
        t_h=state.t_h + dt_h,
        central_mcg=max(float(x[0]), 0.0),
        peripheral_mcg=max(float(x[1]), 0.0),
        effect_site_mcg_per_ml=max(float(x[2]), 0.0),
        adaptation_mcg_per_ml=max(float(x[3]), 0.0),
        withdrawal_drive_mcg_per_ml=float(x[4]),
        delivered_mcg=state.delivered_mcg + rate_mcg_per_h * dt_h,
        therapy_h=state.therapy_h + dt_h if on_therapy else 0.0,
    )


def _setup(years: float, sample_every_h: float) -> tuple[CourseSetup, float]:
    scenario = bootstrap.builtin_scenario(SCENARIO)
    scenario = scenario.model_copy(update={"horizon_days": round(years * 365.25, 2)})
    setup, clock, _patient, _screening = build_setup(scenario, bootstrap.catalog())
    return replace(setup, sample_every_h=sample_every_h), clock.pump_clock_offset_h(0.0)


_CHILD = """
import sys, time
from dataclasses import replace
from itb import bootstrap
from itb.services.scenario import build_setup
from itb.simulation.engine import MemoryRecorder, run_course
years, every = float(sys.argv[1]), float(sys.argv[2])
scenario = bootstrap.builtin_scenario("{scenario}")
scenario = scenario.model_copy(update={{"horizon_days": round(years * 365.25, 2)}})
setup = replace(build_setup(scenario, bootstrap.catalog())[0], sample_every_h=every)
run_course(setup, MemoryRecorder())
t0 = time.perf_counter()
run_course(setup, MemoryRecorder())
print(time.perf_counter() - t0)
"""
"""One course in a fresh process on the ``src`` on its path (after one untimed course)."""


def _run(setup: CourseSetup) -> tuple[float, CourseRun, MemoryRecorder]:
    """Whole-course seconds (``run_course``), run, recorder."""
    recorder = MemoryRecorder()
    t0 = time.perf_counter()
    run = run_course(setup, recorder)
    return time.perf_counter() - t0, run, recorder


def _child_seconds(src: Path, years: float, every_h: float) -> float:
    return seconds_on(src, _CHILD.format(scenario=SCENARIO), str(years), str(every_h))


def _stats(runs: list[float]) -> dict[str, Any]:
    return {"min": min(runs), "median": statistics.median(runs), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=7, help="exact runs")
    parser.add_argument("--reference-repeat", type=int, default=2, help="solve_ivp runs")
    parser.add_argument("--sample-every-h", type=float, default=6.0)
    parser.add_argument(
        "--before-src", type=Path, default=None, help="an earlier checkout's src directory"
    )
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    started = datetime.now(UTC)

    setup, offset = _setup(args.years, args.sample_every_h)
    run_course(setup, MemoryRecorder())  # warm-up: data tables, caches
    exact_times: list[float] = []
    ref_times: list[float] = []
    for k in range(max(args.repeat, args.reference_repeat)):
        if k < args.repeat:
            seconds, run, rec = _run(setup)
            exact_times.append(seconds)
        if k < args.reference_repeat:
            seconds, ref_run, ref_rec = _run(replace(setup, patient_step=ode_step))
            ref_times.append(seconds)
    hours = args.years * 365.25 * 24.0
    best = min(exact_times)
    ratio = min(ref_times) / best
    print(
        f"exact:     min {best:.3f} s, median {statistics.median(exact_times):.3f} s "
        f"({args.repeat} runs), {hours / best:,.0f} patient-h/s; {run.segments} delivery "
        f"segments, {len(rec.samples)} samples, {len(rec.timeline)} timeline lines"
    )
    print(
        f"reference: min {min(ref_times):.2f} s, median {statistics.median(ref_times):.2f} s "
        f"(solve_ivp LSODA, rtol {RTOL:g}, atol {ATOL:g}; {args.reference_repeat} runs); "
        f"ratio reference / exact {ratio:.1f}"
    )
    t0 = time.perf_counter()
    compute_metrics(
        rec.samples,
        run,
        setup.protocol,
        horizon_h=setup.horizon_h,
        sample_every_h=setup.sample_every_h,
        pump_clock_offset_h=offset,
    )
    metrics_seconds = time.perf_counter() - t0

    before: dict[str, Any] | None = None
    if args.before_src is not None:
        now_src = ROOT / "src"
        b_runs: list[float] = []
        a_runs: list[float] = []
        for _ in range(args.repeat):
            b_runs.append(_child_seconds(args.before_src, args.years, args.sample_every_h))
            a_runs.append(_child_seconds(now_src, args.years, args.sample_every_h))
        pair = statistics.median(a / b for a, b in zip(a_runs, b_runs, strict=True))
        before = {
            "commit": commit_of(args.before_src),
            "before_seconds": _stats(b_runs),
            "after_seconds": _stats(a_runs),
            "after_over_before_median_of_pairs": pair,
        }
        print(
            f"before:    min {min(b_runs):.3f} s, median {statistics.median(b_runs):.3f} s; "
            f"after (fresh processes) min {min(a_runs):.3f} s, median "
            f"{statistics.median(a_runs):.3f} s; after / before {pair:.3f}"
        )

    def metrics(r: CourseRun, m: MemoryRecorder) -> dict[str, Any]:
        return compute_metrics(
            m.samples,
            r,
            setup.protocol,
            horizon_h=setup.horizon_h,
            sample_every_h=setup.sample_every_h,
            pump_clock_offset_h=offset,
        )

    m_exact, m_ref = metrics(run, rec), metrics(ref_run, ref_rec)
    differing = sorted(k for k in m_exact if m_exact[k] != m_ref[k])
    a, b = run.final_state, ref_run.final_state
    # Relative difference per state, with a floor of 1e-6 (in the state's unit) so a
    # state passing through zero (the withdrawal drive) is not divided by ~0.
    max_rel = max(
        abs(x - y) / max(abs(x), abs(y), 1e-6) for x, y in zip(a.vector, b.vector, strict=True)
    )
    same_events = [(e.t_h, e.kind) for e in rec.timeline] == [
        (e.t_h, e.kind) for e in ref_rec.timeline
    ]
    max_mas = max(abs(x.mas - y.mas) for x, y in zip(rec.samples, ref_rec.samples, strict=True))
    print(
        f"agreement: final state max relative difference {max_rel:.2e}; "
        f"max |MAS difference| over samples {max_mas:.2e}; same timeline: {same_events}; "
        f"metrics differing: {differing or 'none'}"
    )
    load_end = os.getloadavg()
    target_s, target_rate, target_ratio = 0.1, 1e6, 100.0
    result = {
        "benchmark": "bench_simulate",
        "when": started.isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_start": list(load_start),
            "load_average_end": list(load_end),
        },
        "scenario": SCENARIO,
        "years": args.years,
        "sample_every_h": args.sample_every_h,
        "delivery_segments": run.segments,
        "samples": len(rec.samples),
        "timeline_lines": len(rec.timeline),
        "exact_seconds": _stats(exact_times),
        "exact_patient_hours_per_second": hours / best,
        "metrics_seconds": metrics_seconds,
        "reference": {
            "method": "LSODA",
            "rtol": RTOL,
            "atol": ATOL,
            "seconds": _stats(ref_times),
        },
        "ratio_reference_over_exact": ratio,
        "before": before,
        "targets": {
            "ten_years_seconds": target_s,
            "patient_hours_per_second": target_rate,
            "ratio_over_solve_ivp": target_ratio,
        },
        "agreement": {
            "final_state_max_relative_difference": max_rel,
            "max_abs_mas_difference": max_mas,
            "same_timeline": same_events,
            "metrics_differing": differing,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "simulate.json").write_text(json.dumps(result, indent=2) + "\n")

    def verdict(met: bool, short: float) -> str:
        return "met" if met else f"**missed, {short:.1f}x short**"

    md = [
        "# bench_simulate: ten years of the full protocol for one patient",
        "",
        f"Command: `.venv/bin/python bench/bench_simulate.py"
        f"{''.join(' ' + a for a in (sys.argv[1:] if argv is None else argv))}`  ",
        f"Run {result['when']} on {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, Python {result['machine']['python']}; load average "
        f"(1, 5, 15 min) {list(load_start)} at start, {list(load_end)} at end (the machine is "
        "shared, so absolute times move with its load; the timings below are interleaved).",
        "",
        f"Scenario `{SCENARIO}` for {args.years:g} years, sampled every "
        f"{args.sample_every_h:g} h: {run.segments} delivery segments, {len(rec.samples)} "
        f"samples, {len(rec.timeline)} timeline lines. The engine steps pump, patient and "
        "clinic only at events (every daily symptom check, refill, visit, alarm, fault); "
        "the samples are read from the course tape afterwards in one pass.",
        "",
        "## Targets",
        "",
        "| target | measured (best of the repeats) | verdict |",
        "|---|---:|---|",
        f"| 10 simulated years in under {target_s:g} s | {best:.3f} s | "
        f"{verdict(best < target_s, best / target_s)} |",
        f"| >= {target_rate:,.0f} patient-h/s | {hours / best:,.0f} | "
        f"{verdict(hours / best >= target_rate, target_rate / (hours / best))} |",
        f"| >= {target_ratio:g}x the same engine with solve_ivp | {ratio:.1f}x | "
        f"{verdict(ratio >= target_ratio, target_ratio / ratio)} |",
        "",
        "## Times (wall seconds, `run_course` in-process)",
        "",
        "| method | runs | min | median |",
        "|---|---:|---:|---:|",
        f"| event-only engine, closed form | {args.repeat} | {best:.3f} | "
        f"{statistics.median(exact_times):.3f} |",
        f"| same engine, solve_ivp LSODA rtol {RTOL:g} atol {ATOL:g} | {args.reference_repeat} "
        f"| {min(ref_times):.2f} | {statistics.median(ref_times):.2f} |",
        "",
        f"Ratio reference / exact (minima): **{ratio:.1f}**. Metrics from the samples take a "
        f"further {metrics_seconds:.3f} s.",
        "",
    ]
    if before is not None:
        bs, as_ = before["before_seconds"], before["after_seconds"]
        md += [
            "## Against the engine before (fresh processes, interleaved B A B A ...)",
            "",
            "| code | runs | min | median |",
            "|---|---:|---:|---:|",
            f"| before (commit `{before['commit']}`) | {len(bs['runs'])} | {bs['min']:.3f} | "
            f"{bs['median']:.3f} |",
            f"| after (this checkout) | {len(as_['runs'])} | {as_['min']:.3f} | "
            f"{as_['median']:.3f} |",
            "",
            f"After / before, median of the pairs: **{before['after_over_before_median_of_pairs']:.3f}**.",
            "",
        ]
    md += [
        f"Agreement with the reference: final patient state within {max_rel:.1e} (relative), "
        f"MAS within {max_mas:.1e} at every sample, same timeline: {same_events}, metrics "
        f"differing: {', '.join(differing) or 'none'}.",
        "",
    ]
    (RESULTS / "simulate.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
