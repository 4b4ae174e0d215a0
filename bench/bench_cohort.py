"""Benchmark: the vectorised cohort engine, in simulated patient-hours per second.

The headline comparison (sections 1 and 2) is against the reference a cohort user
would actually write for the same computation: an exact, vectorised numpy update
of the same 5-state patient model.

1. Engine vs exact numpy, by program shape. The same implanted patients (one
   ``CohortArrays``, ``--compare-size`` screened, default 5,000, the engine's default
   chunk) over ``--compare-days`` (default 365), for continuous and for flex day
   programs of 1, 3, 6 and 13 steps (``ProgramShape("flex", flex_steps=...)``). The arm
   is the protocol's default one with the dose held (``titration="hold"``), no fault
   hazards, no missed refills, no concentration step-up, no boluses, so the
   commanded delivery is known in advance: each patient's rate into the CSF is
   piecewise constant with the program's pieces, ``quantized(dose * slot / conc)``
   mL/h x the pump's accuracy factor x the concentration. The reference takes those
   rates and propagates every patient exactly, ``x' = Phi x + Gamma R`` per piece,
   with ``(Phi, Gamma)`` per patient from ``scipy.linalg.expm`` of the
   input-augmented system matrix (``CohortArrays.propagators``), computed once per
   distinct piece length, then one ``np.einsum`` per piece. The engine does the same
   patient propagation plus its pump and clinic machinery (refills, alarms, battery,
   plug flow, fault and complication checks), which changes nothing on this
   delivery. A second reference also computes what the engine counts at every day
   end (the observation map; days with withdrawal and overdose signs). Checked in
   the same run: the engine's final states for every patient and its day-end states
   and delivered drug (``trace=True``) for ``--check-patients`` patients agree with
   the reference's within ``AGREE_RTOL`` of the patient's largest state of the same
   unit; the per-patient outcome day counts are compared; and the engine reports no
   dry reservoir, fault, concentration change, bolus, explant or end of service (so
   it delivered what the reference assumes). Reported: engine and reference
   patient-h/s (min and median of the repeats), the reference's split between its
   ``expm`` set-up and its propagation loop, and the ratio engine time / reference
   time measured in the same run.
2. Scaling: cost per patient-day, engine and reference, against the number of
   implanted patients (``--scale-sizes``, default 1,000, 10,000, 100,000; patients
   beyond the first ``--scale-base`` implanted are those patients repeated, which
   costs the same per patient as new ones and saves drawing and screening them) over
   ``--scale-days`` (default 14), for continuous and 13-step flex programs; and,
   from section 1, against the number of flex steps.
3. The whole trial path (draw, screen, implant, run, aggregate) and the engine
   alone, default arm with label titration, for ``--sizes`` patients over
   ``--years``; engine cost of other program shapes (periodic boluses, patient and
   bridge boluses) at ``--shape-size`` patients over ``--shape-days``; dask scaling
   on a LocalCluster of 1 and 2 worker processes (``--dask-size`` patients over
   ``--dask-days``); a large row (``--large-size``, off by default: it alone takes
   about 6.5 minutes here) with peak resident memory.
4. A general ODE solver for scale (not the reference above): ``solve_ivp`` (LSODA,
   rtol 1e-8) on ``itb.domain.patient.derivatives`` for a few patients, fed each
   patient's daily delivery from the engine, checked against the exact solution.

Every timing is repeated (``--repeat``, default 3; the cheap reference timings
``--repeat-cheap``, default 5) and reported as min and median wall-clock seconds
(CPU seconds in the JSON). The load average and CPU count are printed and recorded.
One core: BLAS at one thread. Writes bench/results/cohort.json and cohort.md.

Run: ``.venv/bin/python bench/bench_cohort.py`` (about 9 minutes on 2 shared cores)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from checkout import commit_of, seconds_on
from itb.bootstrap import catalog, cohort_setup
from itb.domain.patient import PatientState, advance, derivatives
from itb.domain.pump import PatientBolusSettings
from itb.domain.units import HOURS_PER_DAY
from itb.services.cohort_trial import default_arm
from itb.simulation.arm_program import ProgramShape
from itb.simulation.blas import single_threaded_blas
from itb.simulation.cohort import CohortArrays, CohortState, observe
from itb.simulation.cohort_runner import run_chunks_dask, run_chunks_local
from itb.simulation.cohort_trial import Implanted, TrialSetup, implant, run_implanted
from itb.simulation.population import draw_patient
from itb.simulation.vector_engine import (
    ArmPolicy,
    EngineResult,
    PumpDraws,
    accuracy_factors,
    draw_pump_randomness,
    quantize_ml_per_h,
)

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

TARGET_CONTINUOUS = 3e8
TARGET_FLEX13 = 1e8
"""The issue's targets, engine only, patient-h/s (continuous; 13 flex steps per day)."""
AGREE_RTOL = 1e-9
"""Engine and reference states must agree within this fraction of the patient's largest
state of the same unit (:data:`_SAME_UNIT`; over the horizon for the traced day-end states)."""


def _flex(starts: Sequence[float], rel: Sequence[float]) -> ProgramShape:
    return ProgramShape("flex", flex_steps=tuple(zip(starts, rel, strict=True)))


COMPARE_SHAPES: dict[str, ProgramShape] = {
    "continuous": ProgramShape(),
    "flex, 1 step": _flex([0.0], [1.0]),
    "flex, 3 steps": _flex([0.0, 7.0, 21.0], [1.3, 0.8, 1.3]),
    "flex, 6 steps": _flex([0.0, 4.0, 8.0, 12.0, 16.0, 20.0], [1.3, 0.8, 1.0, 1.2, 0.9, 1.1]),
    "flex, 13 steps": _flex(
        [0.0, 1.0, 3.0, 5.0, 6.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0, 21.0],
        [1.0, 1.4, 0.8, 1.2, 0.9, 1.1, 1.3, 0.7, 1.0, 1.2, 0.9, 1.5, 1.1],
    ),
}
"""Program shapes of the engine-vs-reference rows (13 is the most flex steps the
default pump allows)."""
SCALE_SHAPES = ("continuous", "flex, 13 steps")


# ----------------------------------------------------------------- timing helpers


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _stats(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """Min and median of repeated (wall, CPU) timings, seconds."""
    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    return {
        "repeat": len(samples),
        "min_s": min(wall),
        "median_s": statistics.median(wall),
        "cpu_min_s": min(cpu),
        "cpu_median_s": statistics.median(cpu),
        "wall_s": wall,
    }


def _timed(fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - w0, time.process_time() - c0), out


def _repeat(fn: Callable[[], Any], repeat: int) -> tuple[dict[str, Any], Any]:
    samples = []
    out = None
    for _ in range(repeat):
        sample, out = _timed(fn)
        samples.append(sample)
    return _stats(samples), out


def _setup(n: int, years: float, seed: int = 2026) -> TrialSetup:
    return replace(
        cohort_setup(), seed=seed, patients=n, horizon_days=round(years * 365.25), arms=(ARM,)
    )


# ------------------------------------------ 1-2. engine vs the exact numpy reference


def _no_fault_setup(screened: int, days: int, seed: int = 2026) -> TrialSetup:
    """Fault hazards, missed refills and the low-residual under-delivery set to zero (the
    delivery is then the program's)."""
    base = cohort_setup()
    d = base.data

    def zero(s: Any) -> Any:
        return replace(s, value=0.0)

    # the reference cannot know when a reservoir falls below the low-residual volume (the
    # under-delivery of a nearly empty SynchroMed-like pump, [C101]): the comparison pump
    # has no such effect
    presets = {
        key: replace(p, low_residual_volume_ml=0.0, low_residual_flow_fraction=1.0)
        for key, p in base.presets.items()
    }
    data = replace(
        d,
        occlusion_per_year=zero(d.occlusion_per_year),
        disconnection_per_year=zero(d.disconnection_per_year),
        stall_per_year=zero(d.stall_per_year),
        leak_per_year=zero(d.leak_per_year),
        migration_per_year=zero(d.migration_per_year),
        missed_refill_probability=zero(d.missed_refill_probability),
    )
    return replace(
        base, seed=seed, patients=screened, horizon_days=days, data=data, presets=presets
    )


def _compare_arm(name: str, shape: ProgramShape) -> ArmPolicy:
    return default_arm(
        catalog(), name, program=shape, titration="hold", min_refill_interval_days=None
    )


def _take(imp: Implanted, draws: PumpDraws, n: int) -> tuple[Implanted, PumpDraws]:
    """The first ``n`` patients of ``imp`` (repeated cyclically when ``n`` is larger)."""
    idx = np.resize(np.arange(len(imp.ks)), n)
    sub = Implanted(
        ks=imp.ks[idx],
        screened=imp.screened,
        cohort=imp.cohort.subset(idx),
        ages_years=imp.ages_years[idx],
        initial_dose_mcg_per_day=imp.initial_dose_mcg_per_day[idx],
        group=imp.group[idx],
    )
    fields = {name: getattr(draws, name)[idx] for name in draws.__dataclass_fields__}
    return sub, PumpDraws(**fields)


def commanded_csf_rates(
    setup: TrialSetup, imp: Implanted, arm: ArmPolicy, draws: PumpDraws
) -> list[np.ndarray]:
    """Each program slot's rate into the CSF (mcg/h) per patient: the held dose clipped to
    the pump's range, quantised to its resolution (mL/h), x accuracy factor x concentration."""
    preset = setup.presets[arm.pump]
    shape = arm.program
    conc = np.full(len(imp.ks), float(arm.initial_concentration_mcg_per_ml))
    dose = shape.clip_dose(np.asarray(imp.initial_dose_mcg_per_day), conc, preset)
    acc = accuracy_factors(draws, setup.data, preset)
    return [
        quantize_ml_per_h(r / conc, preset.rate_resolution_ml_per_day) * acc * conc
        for r in shape.slot_rates_mcg_per_h(dose)
    ]


def exact_reference(
    cohort: CohortArrays,
    pieces: Sequence[tuple[float, float, int]],
    rates: Sequence[np.ndarray],
    days: int,
    *,
    outcomes: bool = False,
    record: bool = False,
) -> dict[str, Any]:
    """Exact vectorised propagation of every patient over ``days`` days of ``pieces``
    (``(start_h, end_h, slot)``) at the per-patient ``rates`` of each slot (mcg/h).

    ``(Phi, Gamma)`` once per distinct piece length (``expm``, per patient), then
    ``x <- Phi x + Gamma R`` per piece with one ``einsum``. With ``outcomes``, also
    what the engine counts at every day end: the observation map
    (:func:`itb.simulation.cohort.observe`) and the days with withdrawal (any, severe)
    and overdose signs. ``record`` keeps the day-end states.
    """
    t0 = time.perf_counter()
    props = {length: cohort.propagators(length) for length in {b - a for a, b, _ in pieces}}
    t1 = time.perf_counter()
    n = cohort.n
    x = np.zeros((n, 5))
    track = outcomes or record
    delivered, therapy = np.zeros(n), np.zeros(n)
    wd = np.zeros(n, dtype=np.int64)
    severe, od = wd.copy(), wd.copy()
    tr_x = np.zeros((days + 1, n, 5)) if record else None
    tr_d = np.zeros((days + 1, n)) if record else None
    steps = [(props[b - a], rates[slot], b - a) for a, b, slot in pieces]
    for day in range(days):
        for (phi, gamma), rate, dt in steps:
            x = np.einsum("nij,nj->ni", phi, x) + gamma * rate[:, None]
            np.maximum(x[:, :4], 0.0, out=x[:, :4])
            if track:
                on = (delivered > 0.0) | (rate > 0.0)
                delivered = delivered + rate * dt
                therapy = np.where(on, therapy + dt, 0.0)
        if outcomes:
            obs = observe(cohort, CohortState((day + 1) * HOURS_PER_DAY, x, delivered, therapy))
            wd += obs.withdrawal_stage >= 1
            severe += obs.withdrawal_stage >= 2
            od += obs.overdose_stage >= 1
        if tr_x is not None and tr_d is not None:
            tr_x[day + 1], tr_d[day + 1] = x, delivered
    t2 = time.perf_counter()
    return {
        "x": x,
        "setup_s": t1 - t0,
        "loop_s": t2 - t1,
        "withdrawal_days": wd,
        "severe_withdrawal_days": severe,
        "overdose_days": od,
        "trace_x": tr_x,
        "trace_delivered": tr_d,
    }


def _interleaved(
    engine: Callable[[], EngineResult],
    references: dict[str, Callable[[], dict[str, Any]]],
    repeat: int,
    repeat_ref: int,
) -> tuple[dict[str, Any], EngineResult, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Time the engine ``repeat`` times and each reference ``repeat_ref`` times, interleaved
    (so that all see the same load). Returns the engine's stats and last result, and per
    reference its stats (with the min of its expm set-up and of its loop) and last answer."""
    eng: list[tuple[float, float]] = []
    ref: dict[str, list[tuple[float, float]]] = {k: [] for k in references}
    parts: dict[str, list[tuple[float, float]]] = {k: [] for k in references}
    result: EngineResult | None = None
    last: dict[str, dict[str, Any]] = {}
    for r in range(max(repeat, repeat_ref)):
        if r < repeat:
            sample, result = _timed(engine)
            eng.append(sample)
        if r < repeat_ref:
            for k, fn in references.items():
                sample, last[k] = _timed(fn)
                ref[k].append(sample)
                parts[k].append((last[k]["setup_s"], last[k]["loop_s"]))
    assert result is not None
    stats = {}
    for k in references:
        st = _stats(ref[k])
        st["expm_setup_min_s"] = min(p for p, _ in parts[k])
        st["loop_min_s"] = min(q for _, q in parts[k])
        stats[k] = st
    return _stats(eng), result, stats, last


def _same_delivery(result: EngineResult) -> None:
    """The engine ran the delivery the reference assumes (nothing interrupted or changed it)."""
    checks = {
        "reservoir ran dry": result.dry_events.sum(),
        "faults": result.faults.sum(),
        "concentration changes": result.concentration_changes.sum(),
        "missed refills": result.missed_refills.sum(),
        "patient boluses": result.patient_boluses.sum(),
        "bridge boluses": result.bridge_boluses.sum(),
        "explants": result.explants.sum(),
        "end of service": result.eos_reached.sum(),
    }
    bad = {k: int(v) for k, v in checks.items() if v}
    if bad:
        raise SystemExit(f"engine run is not the reference's delivery: {bad}")


_SAME_UNIT = ((0, 1), (2, 3, 4))
"""State groups of one unit: the two amounts (mcg); effect-site, dependence and withdrawal
(mcg/mL). The withdrawal state follows dependence minus effect, so at a steady rate it
tends to 0 and only a scale shared with the other two makes a relative difference."""


def _rel_diff(a: np.ndarray, b: np.ndarray, axis: tuple[int, ...] = ()) -> float:
    """Largest |a - b| of the patient states ``(..., N, 5)`` relative to each patient's
    largest |b| among the states of the same unit (over ``axis`` too, e.g. the days)."""
    worst = 0.0
    for group in _SAME_UNIT:
        g = list(group)
        scale = np.abs(b[..., g]).max(axis=(*axis, -1), keepdims=True)
        scale = np.maximum(scale, 1e-300)
        worst = max(worst, float(np.max(np.abs(a[..., g] - b[..., g]) / scale)))
    return worst


def _rel_diff_delivered(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| of day-end delivered drug ``(days + 1, N)``, relative to each
    patient's total."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b).max(axis=0), 1e-300)))


def compare(
    screened: int, days: int, repeat: int, repeat_cheap: int, check_patients: int
) -> dict[str, Any]:
    """Engine vs the exact numpy reference for each of :data:`COMPARE_SHAPES`."""
    setup = _no_fault_setup(screened, days)
    imp = implant(setup, 0, screened)
    draws = draw_pump_randomness(setup.seed, imp.ks)
    n = len(imp.ks)
    hours = n * days * HOURS_PER_DAY
    few, few_draws = _take(imp, draws, min(check_patients, n))
    rows = []
    for name, shape in COMPARE_SHAPES.items():
        arm = _compare_arm(name, shape)
        pieces = shape.day_pieces()

        def engine(arm: ArmPolicy = arm) -> EngineResult:
            return run_implanted(setup, imp, arm, draws, data=setup.data)

        def reference(
            arm: ArmPolicy = arm, pieces: Any = pieces, outcomes: bool = False
        ) -> dict[str, Any]:
            rates = commanded_csf_rates(setup, imp, arm, draws)
            return exact_reference(imp.cohort, pieces, rates, days, outcomes=outcomes)

        e, result, refs, last = _interleaved(
            engine,
            {"patient": reference, "outcomes": lambda r=reference: r(outcomes=True)},
            repeat,
            repeat_cheap,
        )
        f, g = refs["patient"], refs["outcomes"]
        _same_delivery(result)
        final_diff = max(_rel_diff(last[k]["x"], result.final_x) for k in last)
        counts_differ = int(
            sum(
                (last["outcomes"][k] != getattr(result, k)).sum()
                for k in ("withdrawal_days", "severe_withdrawal_days", "overdose_days")
            )
        )
        # day-end states of a few patients, engine trace vs reference
        traced = run_implanted(setup, few, arm, few_draws, data=setup.data, trace=True)
        _same_delivery(traced)
        rates = commanded_csf_rates(setup, few, arm, few_draws)
        few_ref = exact_reference(few.cohort, pieces, rates, days, record=True)
        assert traced.trace_x is not None
        assert traced.trace_delivered is not None
        trace_diff = _rel_diff(few_ref["trace_x"], traced.trace_x, (0,))
        delivered_diff = _rel_diff_delivered(few_ref["trace_delivered"], traced.trace_delivered)
        worst = max(final_diff, trace_diff, delivered_diff)
        if worst > AGREE_RTOL:
            raise SystemExit(f"{name}: engine and reference differ by {worst:.2e} > {AGREE_RTOL}")
        row = {
            "program": name,
            "pieces_per_day": len(pieces),
            "distinct_piece_lengths": len({b - a for a, b, _ in pieces}),
            "patients": n,
            "days": days,
            "engine": e,
            "reference": f,
            "reference_with_outcomes": g,
            "engine_patient_hours_per_s": hours / e["min_s"],
            "engine_patient_hours_per_s_median": hours / e["median_s"],
            "reference_patient_hours_per_s": hours / f["min_s"],
            "reference_patient_hours_per_s_median": hours / f["median_s"],
            "reference_loop_only_patient_hours_per_s": hours / f["loop_min_s"],
            "reference_with_outcomes_patient_hours_per_s": hours / g["min_s"],
            "engine_us_per_patient_day": e["min_s"] / (n * days) * 1e6,
            "reference_us_per_patient_day": f["min_s"] / (n * days) * 1e6,
            "ratio_engine_over_reference_min": e["min_s"] / f["min_s"],
            "ratio_engine_over_reference_median": e["median_s"] / f["median_s"],
            "ratio_engine_over_reference_with_outcomes_min": e["min_s"] / g["min_s"],
            "max_rel_diff_final_state_all_patients": final_diff,
            "max_rel_diff_day_end_states_traced": trace_diff,
            "max_rel_diff_delivered_traced": delivered_diff,
            "outcome_day_counts_differing": counts_differ,
            "traced_patients": len(few.ks),
            "engine_refills": int(result.refills.sum()),
        }
        rows.append(row)
        print(
            f"{name:<15} engine {e['min_s']:7.2f} s (median {e['median_s']:7.2f}) "
            f"{row['engine_patient_hours_per_s']:14,.0f} patient-h/s | exact numpy "
            f"{f['min_s']:6.3f} s (median {f['median_s']:6.3f}; expm {f['expm_setup_min_s']:.3f}) "
            f"{row['reference_patient_hours_per_s']:14,.0f} patient-h/s | "
            f"engine/reference {row['ratio_engine_over_reference_min']:5.1f}x "
            f"({row['ratio_engine_over_reference_with_outcomes_min']:4.1f}x with outcomes) | "
            f"agree {worst:.1e}, outcome counts differing {counts_differ}",
            flush=True,
        )
    return {
        "screened": screened,
        "patients": n,
        "days": days,
        "check_patients": len(few.ks),
        "agree_rtol": AGREE_RTOL,
        "rows": rows,
    }


def scaling(
    sizes: Sequence[int], base: int, days: int, repeat: int, repeat_cheap: int
) -> dict[str, Any]:
    """Cost per patient-day, engine and reference, against the number of patients."""
    setup = _no_fault_setup(base, days, seed=2027)
    imp0 = implant(setup, 0, base)
    draws0 = draw_pump_randomness(setup.seed, imp0.ks)
    rows = []
    for n in sizes:
        imp, draws = _take(imp0, draws0, n)
        for name in SCALE_SHAPES:
            arm = _compare_arm(name, COMPARE_SHAPES[name])
            pieces = arm.program.day_pieces()
            reps = repeat_cheap if n <= 10_000 else repeat

            def engine(arm: ArmPolicy = arm, imp: Implanted = imp, d: PumpDraws = draws) -> Any:
                return run_implanted(setup, imp, arm, d, data=setup.data)

            def reference(
                arm: ArmPolicy = arm, imp: Implanted = imp, d: PumpDraws = draws, p: Any = pieces
            ) -> dict[str, Any]:
                return exact_reference(imp.cohort, p, commanded_csf_rates(setup, imp, arm, d), days)

            e, result, refs, last = _interleaved(engine, {"patient": reference}, reps, reps)
            f = refs["patient"]
            _same_delivery(result)
            diff = _rel_diff(last["patient"]["x"], result.final_x)
            if diff > AGREE_RTOL:
                raise SystemExit(f"scaling {name} N={n}: differ by {diff:.2e}")
            pd = n * days
            row = {
                "program": name,
                "patients": n,
                "distinct_patients": min(n, len(imp0.ks)),
                "days": days,
                "engine": e,
                "reference": f,
                "engine_us_per_patient_day": e["min_s"] / pd * 1e6,
                "engine_us_per_patient_day_median": e["median_s"] / pd * 1e6,
                "reference_us_per_patient_day": f["min_s"] / pd * 1e6,
                "reference_us_per_patient_day_median": f["median_s"] / pd * 1e6,
                "reference_loop_us_per_patient_day": f["loop_min_s"] / pd * 1e6,
                "reference_expm_us_per_patient": f["expm_setup_min_s"] / n * 1e6,
                "engine_patient_hours_per_s": pd * HOURS_PER_DAY / e["min_s"],
                "ratio_engine_over_reference_min": e["min_s"] / f["min_s"],
                "max_rel_diff_final_state": diff,
            }
            rows.append(row)
            print(
                f"scale {name:<15} N={n:>7,} x {days} d: engine "
                f"{row['engine_us_per_patient_day']:7.2f} us/patient-day "
                f"({row['engine_patient_hours_per_s']:14,.0f} patient-h/s), exact numpy "
                f"{row['reference_us_per_patient_day']:6.2f} us/patient-day "
                f"(loop {row['reference_loop_us_per_patient_day']:5.2f}; expm "
                f"{row['reference_expm_us_per_patient']:5.1f} us/patient), "
                f"engine/reference {row['ratio_engine_over_reference_min']:5.1f}x",
                flush=True,
            )
    return {"base_implanted": len(imp0.ks), "days": days, "rows": rows}


# ------------------------------------------------------------ 3. trial path, shapes, dask


def one_core(sizes: list[int], years: float, chunk: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        setup = _setup(n, years)
        whole, partial = _repeat(
            lambda s=setup, n=n: run_chunks_local(s, chunk_size=min(chunk, n)), repeat
        )
        implanted = partial.responders
        hours = implanted * setup.horizon_days * HOURS_PER_DAY
        engine = None
        if n <= 10_000:
            imp = implant(setup, 0, n)
            draws = draw_pump_randomness(setup.seed, imp.ks)
            engine, _ = _repeat(
                lambda s=setup, imp=imp, d=draws: run_implanted(s, imp, ARM, d), repeat
            )
        rows.append(
            {
                "patients": n,
                "implanted": implanted,
                "days": setup.horizon_days,
                "whole_path": whole,
                "patient_hours_per_s": hours / whole["min_s"],
                "engine_only": engine,
                "engine_patient_hours_per_s": None if engine is None else hours / engine["min_s"],
            }
        )
        print(
            f"one core  N={n:>7,}: {whole['min_s']:8.2f} s (median {whole['median_s']:.2f})  "
            f"{hours / whole['min_s']:14,.0f} patient-h/s (whole trial path)"
            + ("" if engine is None else f"  {hours / engine['min_s']:14,.0f} (engine only)"),
            flush=True,
        )
    return rows


def large(n: int, days: int, chunk: int) -> dict[str, Any]:
    """The chunked whole-trial path for a large cohort, with the peak resident memory (once)."""
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


def shapes(n: int, days: int, repeat: int) -> list[dict[str, Any]]:
    """Engine-only cost of each program shape on the same implanted patients (label
    titration, the reviewed hazards)."""
    setup = replace(_setup(n, 1.0), horizon_days=days)
    imp = implant(setup, 0, n)
    draws = draw_pump_randomness(setup.seed, imp.ks)
    hours = len(imp.ks) * days * HOURS_PER_DAY
    rows = []
    for arm in SHAPES:
        t, _ = _repeat(lambda arm=arm: run_implanted(setup, imp, arm, draws), repeat)
        rows.append(
            {"arm": arm.name, "patients": len(imp.ks), "days": days, "timing": t,
             "patient_hours_per_s": hours / t["min_s"]}
        )  # fmt: skip
        print(
            f"shape {arm.name:<26} {t['min_s']:8.2f} s (median {t['median_s']:.2f})  "
            f"{hours / t['min_s']:14,.0f} patient-h/s",
            flush=True,
        )
    return rows


def dask_scaling(n: int, days: int, chunk: int, repeat: int) -> list[dict[str, Any]]:
    """The trial on a LocalCluster (started inside the timing) of 1 and 2 workers."""
    rows = []
    setup = replace(_setup(n, 1.0), horizon_days=days)
    reference = None
    for workers in (1, 2):
        t, partial = _repeat(
            lambda w=workers: run_chunks_dask(setup, chunk_size=chunk, workers=w), repeat
        )
        hours = partial.responders * setup.horizon_days * HOURS_PER_DAY
        reference = reference or partial
        rows.append(
            {
                "workers": workers,
                "patients": n,
                "days": days,
                "chunk_size": chunk,
                "timing": t,
                "patient_hours_per_s": hours / t["min_s"],
                "identical_to_1_worker": partial == reference,
            }
        )
        print(
            f"dask {workers} worker(s) N={n:,}: {t['min_s']:8.2f} s (median {t['median_s']:.2f})"
            f"  {hours / t['min_s']:14,.0f} patient-h/s",
            flush=True,
        )
    return rows


# ------------------------------------------------------------ 4. a general ODE solver


def ode_reference(patients: int, years: float, repeat: int) -> dict[str, Any]:
    """solve_ivp on the patient derivatives, fed the engine's daily delivery, vs exact."""
    setup = _setup(patients, years, seed=7)
    imp = implant(setup, 0, patients)
    result = run_implanted(setup, imp, ARM, draw_pump_randomness(setup.seed, imp.ks), trace=True)
    assert result.trace_delivered is not None
    delivered = result.trace_delivered  # (days + 1, N)
    days = setup.horizon_days
    params = [draw_patient(setup.population, setup.seed, int(k)) for k in imp.ks]
    daily = [np.diff(delivered[:, i]) / HOURS_PER_DAY for i in range(len(imp.ks))]

    def ode() -> list[np.ndarray]:
        out = []
        for p, rates in zip(params, daily, strict=True):
            x = np.zeros(5)
            for r in rates:

                def rhs(_t: float, y: np.ndarray, r: float = float(r), p: Any = p) -> list[float]:
                    return list(derivatives(p, tuple(y), r))

                sol = solve_ivp(rhs, (0.0, HOURS_PER_DAY), x, method="LSODA", rtol=1e-8, atol=1e-12)
                x = sol.y[:, -1]
            out.append(x)
        return out

    def exact() -> list[np.ndarray]:
        out = []
        for p, rates in zip(params, daily, strict=True):
            state = PatientState()
            for r in rates:
                state = advance(p, state, float(r), HOURS_PER_DAY)
            out.append(np.array(state.vector))
        return out

    t_ode, xs = _repeat(ode, repeat)
    t_exact, exacts = _repeat(exact, repeat)
    worst = 0.0
    for x, ex in zip(xs, exacts, strict=True):
        scale = np.maximum(np.abs(ex), 1e-12)
        worst = max(worst, float(np.max(np.abs(x[:4] - ex[:4]) / scale[:4])))
    hours = len(imp.ks) * days * HOURS_PER_DAY
    print(
        f"solve_ivp ({len(imp.ks)} patients): {hours / t_ode['min_s']:14,.0f} patient-h/s; "
        f"exact single-patient domain: {hours / t_exact['min_s']:14,.0f} patient-h/s; "
        f"max relative difference {worst:.2e}"
    )
    return {
        "patients": len(imp.ks),
        "days": days,
        "method": "solve_ivp LSODA rtol 1e-8 atol 1e-12, restarted daily",
        "ode": t_ode,
        "exact_domain": t_exact,
        "ode_patient_hours_per_s": hours / t_ode["min_s"],
        "exact_domain_patient_hours_per_s": hours / t_exact["min_s"],
        "max_relative_difference_vs_exact": worst,
    }


# ------------------------------------------------------------------------- report


def _ph(v: float) -> str:
    return f"{v:,.0f}"


def _x(v: float) -> str:
    return f"{v:,.1f}x" if v < 10 else f"{v:,.0f}x"


def _markdown(out: dict[str, Any], command: str) -> str:
    cmp_, sc = out["compare"], out["scaling"]
    m = out["machine"]
    rows = {r["program"]: r for r in cmp_["rows"]}
    cont, flex13 = rows["continuous"], rows["flex, 13 steps"]
    ref_meets = (
        flex13["reference_patient_hours_per_s"] >= TARGET_FLEX13,
        cont["reference_patient_hours_per_s"] >= TARGET_CONTINUOUS,
    )
    md = [
        "# Cohort engine benchmark",
        "",
        f"Command: `{command}`  ",
        f"Run {out['started']} to {out['finished']} ({out['elapsed_s'] / 60:.1f} min) on "
        f"{m['platform']}, {m['cpus']} CPUs, Python {m['python']}, numpy {m['numpy']}, scipy "
        f"{m['scipy']}; one core (BLAS at one thread). Load average (1, 5, 15 min) at start "
        f"{m['load_start']}, at end {m['load_end']}: the machine is shared with other work, so "
        "absolute numbers move with its load; timings interleaved in one run are comparable. "
        "Every timing is repeated; min and median wall-clock seconds are given (CPU seconds "
        "in `cohort.json`), throughputs and ratios are from the minima.",
        "",
        "## Targets",
        "",
        f"The issue's targets are engine-only throughputs: **≥ {TARGET_FLEX13:,.0f} "
        f"patient-h/s at 13 flex steps per day** and **≥ {TARGET_CONTINUOUS:,.0f} "
        f"continuous**. Measured here (engine only, {cmp_['patients']:,} patients, "
        f"{cmp_['days']} days, best of the repeats): "
        f"{_ph(flex13['engine_patient_hours_per_s'])} patient-h/s at 13 flex steps, "
        f"**{_x(TARGET_FLEX13 / flex13['engine_patient_hours_per_s'])} short** of its target; "
        f"{_ph(cont['engine_patient_hours_per_s'])} continuous, "
        f"**{_x(TARGET_CONTINUOUS / cont['engine_patient_hours_per_s'])} short**. Neither "
        "target is met. For comparison, the exact numpy reference below, which does only the "
        f"patient update, reaches {_ph(flex13['reference_patient_hours_per_s'])} and "
        f"{_ph(cont['reference_patient_hours_per_s'])} patient-h/s in the same run "
        f"({'meeting' if ref_meets[0] else 'short of'} the 13-step target and "
        f"{'meeting' if ref_meets[1] else 'short of'} the continuous one on this machine).",
        "",
        "## Engine vs an exact vectorised numpy update of the same model",
        "",
        f"The same {cmp_['patients']:,} implanted patients (one `CohortArrays`, "
        f"{cmp_['screened']:,} screened) over {cmp_['days']} days. The arm is the protocol's "
        'default with the dose held (`titration="hold"`), fault hazards and missed refills '
        "set to zero, no low-residual under-delivery (the pump preset's set to 0 mL), no "
        "concentration step-up, no boluses: every patient's rate into the CSF "
        "is then the program's piecewise-constant rate (quantised mL/h x accuracy factor x "
        "concentration), known in advance.",
        "",
        "- **Reference** (what a cohort user would write): those rates, then `x <- Phi x + "
        "Gamma R` for every patient at once, one `np.einsum` per program piece, with "
        "per-patient `(Phi, Gamma)` from `scipy.linalg.expm` of the input-augmented system "
        "(`CohortArrays.propagators`) computed once per distinct piece length (inside its "
        "timing; the *expm* column).",
        "- **Reference + outcomes**: the same, plus what the engine counts at every day end "
        "(the observation map `itb.simulation.cohort.observe`; days with withdrawal, severe "
        "withdrawal and overdose signs).",
        "- **Engine**: `run_implanted` (`run_arm`): the same patient propagation and day-end "
        "counts plus its pump and clinic machinery (refills, alarms, battery, plug flow, fault "
        "and complication checks), which on this delivery changes nothing. The day's pieces "
        "run in the compiled kernel (`itb.simulation.piece_kernel`, numba, one patient at a "
        "time, the patient in modal coordinates); the day-end observation and clinic rules "
        "run in numpy over all patients.",
        "",
        "Same computation, checked in this run: the engine reported no dry reservoir, fault, "
        "concentration change, bolus, explant or end of service; its final states (all "
        f"patients) and day-end states and delivered drug (`trace=True`, "
        f"{cmp_['check_patients']} patients, every day) agree with the reference's within "
        f"{AGREE_RTOL:.0e} of the patient's largest state of the same unit (largest "
        "difference found in the *agreement* column); and the per-patient counts of "
        "withdrawal, severe withdrawal and overdose days are compared (*counts differing*).",
        "",
        "| program | pieces/day | engine s (min / median) | reference s (min / median) | "
        "of which expm | reference + outcomes s (min / median) | agreement | counts differing |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in cmp_["rows"]:
        e, f, g = r["engine"], r["reference"], r["reference_with_outcomes"]
        diff = max(
            r["max_rel_diff_final_state_all_patients"],
            r["max_rel_diff_day_end_states_traced"],
            r["max_rel_diff_delivered_traced"],
        )
        md.append(
            f"| {r['program']} | {r['pieces_per_day']} | {e['min_s']:.2f} / {e['median_s']:.2f} | "
            f"{f['min_s']:.3f} / {f['median_s']:.3f} | {f['expm_setup_min_s']:.3f} | "
            f"{g['min_s']:.3f} / {g['median_s']:.3f} | {diff:.0e} | "
            f"{r['outcome_day_counts_differing']} |"
        )
    md += [
        "",
        "| program | engine patient-h/s | reference patient-h/s | reference, loop only "
        "(no expm) | reference + outcomes | **engine / reference** (time) | engine / "
        "(reference + outcomes) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in cmp_["rows"]:
        md.append(
            f"| {r['program']} | {_ph(r['engine_patient_hours_per_s'])} | "
            f"{_ph(r['reference_patient_hours_per_s'])} | "
            f"{_ph(r['reference_loop_only_patient_hours_per_s'])} | "
            f"{_ph(r['reference_with_outcomes_patient_hours_per_s'])} | "
            f"**{_x(r['ratio_engine_over_reference_min'])}** | "
            f"{_x(r['ratio_engine_over_reference_with_outcomes_min'])} |"
        )
    reps = cmp_["rows"][0]
    r1 = [r["ratio_engine_over_reference_min"] for r in cmp_["rows"]]
    r2 = [r["ratio_engine_over_reference_with_outcomes_min"] for r in cmp_["rows"]]
    md += [
        "",
        f"Across these rows the engine takes {min(r1):.1f}x to {max(r1):.1f}x the time of the "
        f"exact numpy update, and {min(r2):.1f}x to {max(r2):.1f}x that of the update with the "
        "day-end outcomes. The extra time is the engine's pump and clinic machinery (the "
        "compiled pieces' pump state, plug flow, alarms and battery; the numpy day-end rules "
        "over all patients), which on this delivery changes nothing.",
        "",
        f"Repeats: engine {reps['engine']['repeat']}, references "
        f"{reps['reference']['repeat']} each, interleaved. Engine / reference is how many times "
        "longer the engine takes than the exact numpy update for the same patients, program "
        "and horizon (ratio of the minima; of the medians in `cohort.json`).",
        "",
        "## Scaling",
        "",
        f"With the number of patients: cost per patient-day over {sc['days']} days, the same "
        f"arm as above. The first {sc['base_implanted']:,} implanted patients are distinct; "
        "larger cohorts repeat them (the same cost per patient as new ones: the engine's "
        "result for a patient does not depend on who shares its chunk; drawing and screening "
        "them is not what is timed). At this short horizon the one-off `expm` per patient and "
        "piece length is a large share of both times: the reference's is shown apart "
        "(*reference loop* excludes it; the engine computes the same propagators inside its "
        "time).",
        "",
        "| program | patients | engine µs per patient-day (min / median) | engine patient-h/s | "
        "reference µs per patient-day (min / median) | reference loop µs per patient-day | "
        "expm µs per patient | engine / reference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sc["rows"]:
        md.append(
            f"| {r['program']} | {r['patients']:,} | {r['engine_us_per_patient_day']:.2f} / "
            f"{r['engine_us_per_patient_day_median']:.2f} | "
            f"{_ph(r['engine_patient_hours_per_s'])} | "
            f"{r['reference_us_per_patient_day']:.2f} / "
            f"{r['reference_us_per_patient_day_median']:.2f} | "
            f"{r['reference_loop_us_per_patient_day']:.2f} | "
            f"{r['reference_expm_us_per_patient']:.1f} | "
            f"{_x(r['ratio_engine_over_reference_min'])} |"
        )
    md += [
        "",
        f"1,000,000 patients: {out['scale_1e6_note']}",
        "",
        f"With flex steps ({cmp_['patients']:,} patients, {cmp_['days']} days, from the first "
        "tables):",
        "",
        "| program | pieces/day | engine µs per patient-day | engine µs per patient-piece | "
        "reference µs per patient-day | reference µs per patient-piece |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in cmp_["rows"]:
        k = r["pieces_per_day"]
        md.append(
            f"| {r['program']} | {k} | {r['engine_us_per_patient_day']:.2f} | "
            f"{r['engine_us_per_patient_day'] / k:.2f} | {r['reference_us_per_patient_day']:.2f} | "
            f"{r['reference_us_per_patient_day'] / k:.2f} |"
        )
    if out.get("before_after"):
        md += [
            "",
            "## Against the engine of an earlier checkout",
            "",
            f"Before: commit `{out['before_commit']}` (a checkout's `src` given as "
            "`--before-src`). The same comparison patients "
            f"({out['before_after'][0]['screened']:,} screened) and arm for "
            f"{out['before_after'][0]['days']} days, each run in a fresh process after an "
            "untimed warm-up (which compiles or loads the kernel), before and after in turn.",
            "",
            "| program | before s (min / median) | after s (min / median) | after / before "
            "(median of pairs) |",
            "|---|---:|---:|---:|",
        ]
        for r in out["before_after"]:
            md.append(
                f"| {r['program']} | {r['before_s']['min']:.2f} / {r['before_s']['median']:.2f} "
                f"| {r['after_s']['min']:.2f} / {r['after_s']['median']:.2f} | "
                f"**{r['after_over_before_median_of_pairs']:.3f}** |"
            )
    md += [
        "",
        "## Whole trial path and engine, default arm",
        "",
        f"{out['years']:g} year(s) of follow-up, one arm ({ARM.name}), label titration, the "
        "reviewed hazards.",
        "",
        "| patients | implanted | whole path s (min / median) | patient-h/s (whole path) | "
        "engine only s (min / median) | patient-h/s (engine only) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in out["one_core"]:
        w, e = r["whole_path"], r["engine_only"]
        md.append(
            f"| {r['patients']:,} | {r['implanted']:,} | {w['min_s']:.2f} / {w['median_s']:.2f} | "
            f"{_ph(r['patient_hours_per_s'])} | "
            + ("— | — |" if e is None else f"{e['min_s']:.2f} / {e['median_s']:.2f} | "
               f"{_ph(r['engine_patient_hours_per_s'])} |")
        )  # fmt: skip
    big = out["large"]
    if big is None:
        md += ["", f"Large cohort row: {out['large_note']}"]
    else:
        md += [
            "",
            f"Large cohort, same chunked path (chunks of {big['chunk_size']:,}), "
            f"{big['days']} days of follow-up, timed once:",
            "",
            "| patients | implanted | wall s | patient-h/s | peak resident memory |",
            "|---:|---:|---:|---:|---:|",
            f"| {big['patients']:,} | {big['implanted']:,} | {big['wall_s']:.1f} | "
            f"{_ph(big['patient_hours_per_s'])} | {big['peak_rss_mb']:,.0f} MB |",
        ]
    sh = out["shapes"]
    md += [
        "",
        f"Engine only, by program shape ({sh[0]['patients']:,} implanted patients, "
        f"{sh[0]['days']} days, label titration, reviewed hazards):",
        "",
        "| arm | s (min / median) | patient-h/s |",
        "|---|---:|---:|",
        *(
            f"| {r['arm']} | {r['timing']['min_s']:.2f} / {r['timing']['median_s']:.2f} | "
            f"{_ph(r['patient_hours_per_s'])} |"
            for r in sh
        ),
        "",
        "dask (a LocalCluster started inside the timing, one thread per worker; with the load "
        "average near the CPU count, a second worker process competes with the machine's other "
        "work for the two cores):",
        "",
        "| dask workers | patients | days | s (min / median) | patient-h/s | identical result |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in out["dask"]:
        md.append(
            f"| {r['workers']} | {r['patients']:,} | {r['days']} | {r['timing']['min_s']:.2f} / "
            f"{r['timing']['median_s']:.2f} | {_ph(r['patient_hours_per_s'])} | "
            f"{r['identical_to_1_worker']} |"
        )
    ode = out["ode_reference"]
    md += [
        "",
        "## A general ODE solver, for scale",
        "",
        f"{ode['method']}, {ode['patients']} patients, {ode['days']} days, fed each patient's "
        f"daily delivery from the engine: {_ph(ode['ode_patient_hours_per_s'])} patient-h/s "
        "(patient model only); the exact single-patient domain (`itb.domain.patient.advance`, "
        f"one patient at a time): {_ph(ode['exact_domain_patient_hours_per_s'])} patient-h/s; "
        "largest relative difference of the ODE from the exact solution "
        f"{ode['max_relative_difference_vs_exact']:.1e}. A cohort user would not step this "
        "linear model with a general solver, nor one patient at a time: the ratios against "
        "these are not the comparison that matters (that is the exact numpy reference above).",
        "",
        "| ratio | value |",
        "|---|---:|",
        *(f"| {k} | {v:,.1f} |" for k, v in out["ratios"].items()),
        "",
    ]
    return "\n".join(md)


def _scale_1e6_note(sc: dict[str, Any], sizes: Sequence[int], repeat: int) -> str:
    """Why the million-patient scaling row is not run (estimated from the largest row)."""
    if 1_000_000 in sizes:
        return "run (see the table)."
    top = max(r["patients"] for r in sc["rows"])
    cost = {r["program"]: r for r in sc["rows"] if r["patients"] == top}
    est = {
        k: (r["engine"]["min_s"] + r["reference"]["min_s"]) * 1_000_000 / top
        for k, r in cost.items()
    }
    total = sum(est.values()) * repeat
    per = " and ".join(f"about {v:,.0f} s ({k})" for k, v in est.items())
    return (
        f"skipped. At the {top:,}-patient rows' cost per patient-day one repeat of engine and "
        f"reference would take {per}, {total / 60:,.0f} minutes for {repeat} repeats, beyond "
        "the run's 10-minute budget; and one propagator length for a million patients in one "
        "array is a (10^6, 6, 6) `expm` input and output of 288 MB each, kept as 240 MB of "
        "`(Phi, Gamma)` per cached length. The engine runs large cohorts in chunks (5,000 "
        "patients by default), so a million patients cost per patient what a chunk does "
        "(`--large-size 1000000` adds the chunked whole-path row)."
    )


_CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
import bench_cohort as b
from itb.simulation.cohort_trial import implant, run_implanted
from itb.simulation.vector_engine import draw_pump_randomness
n, days, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
setup = b._no_fault_setup(n, days)
imp = implant(setup, 0, n)
draws = draw_pump_randomness(setup.seed, imp.ks)
arm = b._compare_arm(name, b.COMPARE_SHAPES[name])
warm = b._no_fault_setup(50, 2)
w_imp = implant(warm, 0, 50)
run_implanted(warm, w_imp, arm, draw_pump_randomness(warm.seed, w_imp.ks), data=warm.data)
t0 = time.perf_counter()
run_implanted(setup, imp, arm, draws, data=setup.data)
print(time.perf_counter() - t0)
"""
"""One engine run in a fresh process on the ``src`` on its path (after an untimed warm-up,
which compiles or loads the kernel), with this file's set-up helpers."""


def _child_seconds(src: Path, n: int, days: int, name: str) -> float:
    code = _CHILD.format(bench=str(Path(__file__).resolve().parent))
    return seconds_on(src, code, str(n), str(days), name)


def before_after(src: Path, n: int, days: int, repeat: int) -> list[dict[str, Any]]:
    """The engine of an earlier checkout (``src``) against this one, in fresh processes,
    interleaved B A B A ..., on the comparison's patients (continuous, 13 flex steps)."""
    rows = []
    for name in ("continuous", "flex, 13 steps"):
        before: list[float] = []
        after: list[float] = []
        for _ in range(repeat):
            before.append(_child_seconds(src, n, days, name))
            after.append(_child_seconds(ROOT / "src", n, days, name))
        pair = statistics.median(a / b for a, b in zip(after, before, strict=True))
        rows.append(
            {
                "program": name,
                "screened": n,
                "days": days,
                "before_s": {"min": min(before), "median": statistics.median(before)},
                "after_s": {"min": min(after), "median": statistics.median(after)},
                "after_over_before_median_of_pairs": pair,
            }
        )
        print(
            f"before/after {name:<15} before {min(before):7.2f} s (median "
            f"{statistics.median(before):.2f}), after {min(after):7.2f} s (median "
            f"{statistics.median(after):.2f}): after / before {pair:.3f}",
            flush=True,
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare-size", type=int, default=5000, help="screened patients")
    ap.add_argument("--compare-days", type=int, default=365)
    ap.add_argument("--check-patients", type=int, default=5)
    ap.add_argument("--scale-sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--scale-base", type=int, default=10_250, help="screened, distinct")
    ap.add_argument("--scale-days", type=int, default=14)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 1000, 10_000])
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--dask-size", type=int, default=10_000)
    ap.add_argument("--dask-days", type=int, default=182)
    ap.add_argument("--ode-patients", type=int, default=3)
    ap.add_argument("--large-size", type=int, default=0, help="0 (default): skip the large row")
    ap.add_argument("--large-days", type=int, default=30)
    ap.add_argument("--shape-size", type=int, default=5000)
    ap.add_argument("--shape-days", type=int, default=91)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repeat-cheap", type=int, default=5)
    ap.add_argument(
        "--before-src",
        type=Path,
        default=None,
        help="an earlier checkout's src: its engine against this one (fresh processes)",
    )
    ap.add_argument("--before-days", type=int, default=120)
    args = ap.parse_args()
    if min(args.repeat, args.repeat_cheap) < 1:
        ap.error("--repeat and --repeat-cheap must be >= 1")
    single_threaded_blas()
    command = " ".join([".venv/bin/python", "bench/bench_cohort.py", *sys.argv[1:]])
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t_start = time.perf_counter()
    load_start = _load()
    print(f"{os.cpu_count()} CPUs, load average {load_start}", flush=True)
    # warm-up (imports, first calls), not timed
    warm = _no_fault_setup(50, 2)
    w_imp = implant(warm, 0, 50)
    run_implanted(warm, w_imp, _compare_arm("warm", COMPARE_SHAPES["flex, 3 steps"]),
                  draw_pump_randomness(warm.seed, w_imp.ks), data=warm.data)  # fmt: skip

    cmp_ = compare(
        args.compare_size, args.compare_days, args.repeat, args.repeat_cheap, args.check_patients
    )
    sc = scaling(args.scale_sizes, args.scale_base, args.scale_days, args.repeat, args.repeat_cheap)
    rows = one_core(args.sizes, args.years, args.chunk_size, args.repeat)
    shape_rows = shapes(args.shape_size, args.shape_days, args.repeat)
    big = large(args.large_size, args.large_days, args.chunk_size) if args.large_size else None
    dask = dask_scaling(args.dask_size, args.dask_days, min(args.chunk_size, 2500), args.repeat)
    ode = ode_reference(args.ode_patients, args.years, args.repeat)
    versus = (
        before_after(args.before_src, args.compare_size, args.before_days, args.repeat)
        if args.before_src is not None
        else None
    )
    load_end = _load()
    elapsed = time.perf_counter() - t_start

    by = {r["program"]: r for r in cmp_["rows"]}
    ratios = {
        f"engine / exact numpy reference, time, {name}": r["ratio_engine_over_reference_min"]
        for name, r in by.items()
    }
    engine = max((r["engine_patient_hours_per_s"] or 0.0) for r in rows)
    ratios |= {
        "target / engine, continuous": TARGET_CONTINUOUS
        / by["continuous"]["engine_patient_hours_per_s"],
        "target / engine, 13 flex steps": TARGET_FLEX13
        / by["flex, 13 steps"]["engine_patient_hours_per_s"],
        "engine (default arm) / solve_ivp, throughput": engine / ode["ode_patient_hours_per_s"],
        "engine (default arm) / exact single-patient domain, throughput": engine
        / ode["exact_domain_patient_hours_per_s"],
        "dask 2 / 1 worker, speed": dask[0]["timing"]["min_s"] / dask[1]["timing"]["min_s"],
    }
    for k, v in ratios.items():
        print(f"ratio {k}: {v:,.1f}")
    print(f"load average at end {load_end}; elapsed {elapsed:.0f} s")
    scale_1e6 = _scale_1e6_note(sc, args.scale_sizes, args.repeat)
    large_note = (
        "skipped by default: `--large-size 1000000 --large-days 30` runs it (timed once, not "
        "repeated); it took 390 s on this machine in the previous recorded run (2026-12-01), "
        "which would not fit the 10-minute budget of the whole run. `bench_memory.py` records "
        "the memory bound."
    )
    out = {
        "benchmark": "bench_cohort.py",
        "command": command,
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": elapsed,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "scipy": __import__("scipy").__version__,
            "load_start": load_start,
            "load_end": load_end,
        },
        "targets_patient_hours_per_s": {
            "continuous": TARGET_CONTINUOUS,
            "flex_13_steps": TARGET_FLEX13,
        },
        "years": args.years,
        "compare": cmp_,
        "scaling": sc,
        "scale_1e6_note": scale_1e6,
        "one_core": rows,
        "large": big,
        "large_note": large_note,
        "shapes": shape_rows,
        "dask": dask,
        "ode_reference": ode,
        "before_after": versus,
        "before_commit": None if args.before_src is None else commit_of(args.before_src),
        "ratios": ratios,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cohort.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "cohort.md").write_text(_markdown(out, command), encoding="utf-8")
    print(f"written: {RESULTS / 'cohort.json'}, {RESULTS / 'cohort.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
