"""Benchmark: ten simulated years of the full protocol for one patient.

The flagship scenario (``itb/data/scenarios/seven_years_end_to_end.toml``:
screening, titration, refills, check-ups, concentration changes, a late
refill, an MRI, a catheter kink, battery replacement) run for ten years
(``--years``) with the whole course engine — pump, clinic, sampling grid,
metrics — twice:

1. exact: the patient advanced piece by piece with the closed form
   (``itb.domain.patient.advance``), as ``itb simulate`` does;
2. reference: the same engine with every constant-rate piece integrated by a
   general ODE solver (``scipy.integrate.solve_ivp``, LSODA, rtol 1e-10,
   atol 1e-12) on ``itb.domain.patient.derivatives``.

Everything but the patient's pharmacology is shared, so the ratio shows what
the closed form saves on a whole course; the two courses are compared (final
state, metrics) to show they agree.

Prints both times and the ratio; writes bench/results/simulate.json and
bench/results/simulate.md.

Run: ``.venv/bin/python bench/bench_simulate.py [--years 10] [--repeat 3] [--sample-every-h 6]``
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


class _Timed:
    """Wraps a patient step and adds up the time spent in it (the pharmacology's share)."""

    def __init__(self, step: Any) -> None:
        self.step = step
        self.seconds = 0.0
        self.calls = 0

    def __call__(
        self, params: PatientParameters, state: PatientState, rate: float, dt: float
    ) -> PatientState:
        t0 = time.perf_counter()
        out: PatientState = self.step(params, state, rate, dt)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def _run(setup: CourseSetup) -> tuple[float, float, int, CourseRun, MemoryRecorder]:
    """Whole-course seconds, seconds inside the patient step, pieces, run, recorder."""
    timed = _Timed(setup.patient_step)
    recorder = MemoryRecorder()
    t0 = time.perf_counter()
    run = run_course(replace(setup, patient_step=timed), recorder)
    return time.perf_counter() - t0, timed.seconds, timed.calls, run, recorder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3, help="exact runs (reference: once)")
    parser.add_argument("--sample-every-h", type=float, default=6.0)
    args = parser.parse_args(argv)

    setup, offset = _setup(args.years, args.sample_every_h)
    exact_times: list[float] = []
    exact_pk: list[float] = []
    for _ in range(args.repeat):
        seconds, pk_seconds, pieces, run, rec = _run(setup)
        exact_times.append(seconds)
        exact_pk.append(pk_seconds)
    print(
        f"exact:     {min(exact_times):8.2f} s (min of {args.repeat}), "
        f"{run.segments} delivery segments, {len(rec.samples)} samples, "
        f"{len(rec.timeline)} timeline lines; {pieces} constant-rate patient pieces, "
        f"{min(exact_pk):.3f} s of it in the closed-form pharmacology"
    )
    ref_seconds, ref_pk, _, ref_run, ref_rec = _run(replace(setup, patient_step=ode_step))
    print(
        f"reference: {ref_seconds:8.2f} s (solve_ivp LSODA, rtol {RTOL:g}, atol {ATOL:g}); "
        f"{ref_pk:.2f} s of it in the ODE solver"
    )
    ratio = ref_seconds / min(exact_times)
    pk_ratio = ref_pk / min(exact_pk)
    print(f"ratio reference / exact: whole course {ratio:.1f}, pharmacology alone {pk_ratio:.0f}")

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

    result = {
        "benchmark": "bench_simulate",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "scenario": SCENARIO,
        "years": args.years,
        "sample_every_h": args.sample_every_h,
        "delivery_segments": run.segments,
        "samples": len(rec.samples),
        "timeline_lines": len(rec.timeline),
        "exact_seconds": {
            "min": min(exact_times),
            "median": statistics.median(exact_times),
            "runs": exact_times,
        },
        "reference": {"method": "LSODA", "rtol": RTOL, "atol": ATOL, "seconds": ref_seconds},
        "patient_pieces": pieces,
        "pharmacology_seconds": {"exact_min": min(exact_pk), "reference": ref_pk},
        "ratio_reference_over_exact": ratio,
        "ratio_pharmacology_reference_over_exact": pk_ratio,
        "agreement": {
            "final_state_max_relative_difference": max_rel,
            "max_abs_mas_difference": max_mas,
            "same_timeline": same_events,
            "metrics_differing": differing,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "simulate.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# bench_simulate: ten years of the full protocol for one patient",
        "",
        f"Run {result['when']} on {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, Python {result['machine']['python']}.",
        "",
        f"Scenario `{SCENARIO}` for {args.years:g} years, sampled every "
        f"{args.sample_every_h:g} h: {run.segments} delivery segments, {len(rec.samples)} "
        f"samples, {len(rec.timeline)} timeline lines.",
        "",
        "| method | seconds |",
        "|---|---|",
        f"| exact closed form (min of {args.repeat}) | {min(exact_times):.2f} |",
        f"| exact closed form (median) | {statistics.median(exact_times):.2f} |",
        f"| solve_ivp LSODA rtol {RTOL:g} atol {ATOL:g} (same engine) | {ref_seconds:.2f} |",
        f"| **ratio reference / exact, whole course** | **{ratio:.1f}** |",
        "",
        f"Time inside the patient step alone ({pieces} constant-rate pieces): closed form "
        f"{min(exact_pk):.3f} s, ODE solver {ref_pk:.2f} s: **ratio {pk_ratio:.0f}**. The rest "
        "of the course (pump, clinic, sampling, observations, metrics) is shared.",
        "",
        f"Agreement: final patient state within {max_rel:.1e} (relative), MAS within "
        f"{max_mas:.1e} at every sample, same timeline: {same_events}, metrics differing: "
        f"{', '.join(differing) or 'none'}.",
        "",
    ]
    (RESULTS / "simulate.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
