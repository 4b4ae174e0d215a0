"""Benchmark: the reservoir forecast of 60,000 pumps in one vectorised pass.

Times, on one core, everything the radar's forecast does for every pump in a clinic:
pack the pumps' commanded-delivery profiles into arrays, learn each pump's delivery
factor from its refills (about six each), and compute the band of its low-reservoir and
empty times, P(low) and P(dry) by its next visit and the advised refill date
(:func:`itb.simulation.forecast.forecast_profiles`). The pumps are a mix of programs:
half continuous, three in ten 13-step flex days, two in ten weekly flex programs whose
days differ; one refill in a hundred found empty.

The **reference** is what a registry without the vectorised pass would do: the same
forecast one pump at a time (the same function called with one pump), which gives the
same numbers; the ratio is the cost of the loop over pumps.

Min and median of repeated runs, the machine's load average, recorded in
bench/results/forecast.json and bench/results/forecast.md.

Run: ``.venv/bin/python bench/bench_forecast.py [--pumps 60000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from itb import bootstrap  # noqa: E402
from itb.domain.clinic.forecast import DeliveryProfile  # noqa: E402
from itb.simulation.forecast import forecast_profiles  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RULES = bootstrap.catalog().forecast


Observations = tuple[list[int], list[float], list[float], list[bool]]
"""Refills as columns: pump, programmed mL, used mL, found empty."""


def _stats(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "n": len(samples)}


def make_clinic(n: int, seed: int) -> tuple[list[DeliveryProfile], Observations, list[float]]:
    """``n`` pumps' profiles, their refills and the hours to each one's next visit."""
    rng = np.random.default_rng(seed)
    profiles: list[DeliveryProfile] = []
    observations: Observations = ([], [], [], [])
    by_h: list[float] = []
    for i in range(n):
        cap = float(rng.choice([20.0, 40.0]))
        rate = float(rng.uniform(0.2, 1.5)) / 24.0  # mL/h
        kind = rng.random()
        if kind < 0.5:
            period, pieces = 24.0, ((24.0, rate),)
        elif kind < 0.8:
            w = rng.uniform(0.5, 1.5, 13)
            hours = np.full(13, 24.0 / 13)
            pieces = tuple(
                (float(h), float(rate * x / w.mean())) for h, x in zip(hours, w, strict=True)
            )
            period = 24.0
        else:
            w = rng.uniform(0.5, 1.5, 21)
            hours = np.full(21, 168.0 / 21)
            pieces = tuple(
                (float(h), float(rate * x / w.mean())) for h, x in zip(hours, w, strict=True)
            )
            period = 168.0
        done = float(rng.uniform(0.0, 0.8)) * cap
        profiles.append(DeliveryProfile(cap, done, cap - done, 2.0, 0.0, 0.0, period, pieces))
        for _ in range(int(rng.integers(0, 13))):
            programmed = float(rng.uniform(0.6, 0.95)) * cap
            f = float(rng.normal(1.01, 0.04))
            empty = rng.random() < 0.01
            used = cap if empty else f * programmed + float(rng.normal(0.0, 0.25))
            observations[0].append(i)
            observations[1].append(programmed)
            observations[2].append(used)
            observations[3].append(empty)
        by_h.append(float(rng.uniform(24.0, 120 * 24.0)))
    return profiles, observations, by_h


def run(profiles: list[DeliveryProfile], observations: Observations, by_h: list[float]) -> Any:
    return forecast_profiles(
        profiles, observations, by_h,
        prior_mean=RULES.prior_mean.value, prior_sd=RULES.prior_sd.value,
        reading_sd_ml=RULES.reading_sd_ml.value, interval_sd=RULES.interval_sd.value,
        probabilities=RULES.band_quantiles, advise_probability=RULES.advise_dry_probability.value,
    )  # fmt: skip


def one_at_a_time(
    profiles: list[DeliveryProfile], observations: Observations, by_h: list[float]
) -> list[float]:
    mine: dict[int, Observations] = {}
    for i, programmed, used, empty in zip(*observations, strict=True):
        pump, p_ml, u_ml, e = mine.setdefault(i, ([], [], [], []))
        pump.append(0)
        p_ml.append(programmed)
        u_ml.append(used)
        e.append(empty)
    out = []
    for i, p in enumerate(profiles):
        _, times = run([p], mine.get(i, ([], [], [], [])), [by_h[i]])
        out.append(float(times.p_dry[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pumps", type=int, default=60_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference-repeat", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    load_before = os.getloadavg()
    profiles, observations, by_h = make_clinic(args.pumps, seed=3)
    run(profiles[:100], ([], [], [], []), by_h[:100])  # warm up
    vec: list[float] = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        _, times = run(profiles, observations, by_h)
        vec.append(time.process_time() - t0)
    ref: list[float] = []
    for _ in range(args.reference_repeat):
        t0 = time.process_time()
        p_dry = one_at_a_time(profiles, observations, by_h)
        ref.append(time.process_time() - t0)
    same = bool(np.allclose(p_dry, times.p_dry, rtol=1e-9, atol=1e-12))
    r = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (one used)",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "pumps": args.pumps,
        "refills": len(observations[0]),
        "max_pieces_per_period": max(len(p.pieces) for p in profiles),
        "vectorised_cpu_s": _stats(vec),
        "one_at_a_time_cpu_s": _stats(ref),
        "ratio_median": statistics.median(ref) / statistics.median(vec),
        "same_answer": same,
        "target_s": 1.0,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forecast.json").write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    md = [
        "# Reservoir forecast benchmark",
        "",
        f"{r['when']}, {r['machine']}; load average {r['load_average_before']} before, "
        f"{r['load_average_after']} after. CPU time (`time.process_time`), one core.",
        "",
        "| pumps | refills | vectorised min s | vectorised median s | target s | one pump at a time median s (reference) | ratio | same P(dry) |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {r['pumps']:,} | {r['refills']:,} | {r['vectorised_cpu_s']['min']:.3f} | "
        f"{r['vectorised_cpu_s']['median']:.3f} | {r['target_s']:g} | "
        f"{r['one_at_a_time_cpu_s']['median']:.2f} | {r['ratio_median']:.0f}x | "
        f"{'yes' if same else 'NO'} |",
        "",
        f"Vectorised: {r['vectorised_cpu_s']['n']} runs; reference: {r['one_at_a_time_cpu_s']['n']} runs. "
        "Each run packs the profiles, learns every pump's factor and forecasts its times.",
    ]
    (RESULTS / "forecast.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
