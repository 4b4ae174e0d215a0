"""A virtual clinic that scores the reservoir forecast: pumps with known true delivery
factors, refills observed as a clinic sees them, and three ways of booking the visits.

Each pump (vectorised over pumps) is filled to its reservoir capacity and runs a
continuous program; over each refill interval it really draws ``f + η`` mL per mL
programmed (``f`` drawn per pump from the spread between pumps within the rated band,
``η`` per interval). At the visit the nurse withdraws the real residual, read from
the syringe with an error; a reservoir that ran dry gives nothing to withdraw. A
booked visit is missed with a probability and tried again some days later (again
with that probability). The pump is then refilled to capacity.

The clinic books each visit by one of three rules:

* ``alarm``: the pump's own low-reservoir alarm date less the refill margin (the
  programmer's date, which assumes the pump delivers as programmed);
* ``band``: the same, but never after the day before the pump could be dry at the top
  of its rated band (the registry's refill planner without a forecast);
* ``radar``: the radar's advice: no later than the day the forecast's P(empty) reaches
  its advice probability, less the margin, and never after the alarm date less the
  margin; the forecast learns each pump's factor from its refills.

Under every rule, the same pumps, factors, reading errors and missed visits (paired).
The radar rule's forecasts, made at each fill, are scored against the truth: does the
stated band hold the true empty time, does the learned factor approach the true one,
and does P(dry before the booked visit) say how often it happens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from itb.domain.clinic.forecast import ForecastRules
from itb.domain.clinical.care import choose_concentration
from itb.domain.pump.presets import PumpPreset
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.forecast import (
    Beliefs,
    BoolArray,
    FloatArray,
    IntArray,
    Profiles,
    forecast,
    learn,
)
from itb.simulation.vector_engine import within_band

__all__ = [
    "LEARNED_GROUPS",
    "POLICIES",
    "Care",
    "ClinicPumps",
    "PolicyResult",
    "Scores",
    "Truth",
    "bootstrap_rates",
    "calibration",
    "draw_pumps",
    "paired_ever_dry_difference",
    "policy_summary",
    "refill_findings",
    "run_policy",
    "run_trial",
]


POLICIES: tuple[str, ...] = ("alarm", "band", "radar")
"""How visits are booked (see the module)."""

_MAX_MISSES = 20
"""Consecutive missed attempts drawn per visit (the chance of more is negligible)."""


@dataclass(frozen=True, slots=True)
class Care:
    """How the virtual clinic works: its refill margin, the drug's stability, missed visits."""

    margin_days: float
    stability_days: float
    missed_probability: float
    missed_delay_days: float
    syringe_floor_ml: float
    """Below this a residual difference is syringe imprecision (the verdict's floor)."""


@dataclass(frozen=True, slots=True)
class Truth:
    """How the virtual pumps really behave (the forecast's own numbers by default; other
    values test it against a truth it does not assume)."""

    spread_mean: float
    spread_sd: float
    interval_sd: float
    reading_sd_ml: float


@dataclass(frozen=True, slots=True)
class ClinicPumps:
    """The virtual clinic's pumps and every random draw they need (shared by the rules).

    Attributes:
        capacity_ml, low_ml, band_pct: the preset's reservoir, alarm volume, rated band.
        rate_ml_per_h: the programmed rate.
        factor: the true mean delivery factor of each pump.
        interval_noise: the true factor's deviation in each interval, shape (N, K).
        reading_noise_ml: the syringe reading's error at each visit, shape (N, K).
        misses: missed attempts before each visit is kept, shape (N, K).
    """

    preset: Sequence[str]
    capacity_ml: FloatArray
    low_ml: FloatArray
    band_pct: FloatArray
    rate_ml_per_h: FloatArray
    factor: FloatArray
    interval_noise: FloatArray
    reading_noise_ml: FloatArray
    misses: IntArray

    @property
    def n(self) -> int:
        """How many pumps."""
        return int(self.capacity_ml.size)


def draw_pumps(
    rng: np.random.Generator,
    *,
    n: int,
    intervals: int,
    preset: Sequence[str],
    capacity_ml: FloatArray,
    low_ml: FloatArray,
    band_pct: FloatArray,
    rate_ml_per_h: FloatArray,
    truth: Truth,
    care: Care,
) -> ClinicPumps:
    """The pumps' true factors and their clinic's random events, from ``rng``."""
    factor = within_band(rng.random(n), truth.spread_mean, truth.spread_sd, band_pct)
    noise = truth.interval_sd * rng.standard_normal((n, intervals))
    reading = truth.reading_sd_ml * rng.standard_normal((n, intervals))
    misses = rng.geometric(1.0 - care.missed_probability, (n, intervals)) - 1
    return ClinicPumps(
        preset, capacity_ml, low_ml, band_pct, rate_ml_per_h, factor, noise, reading,
        np.minimum(misses, _MAX_MISSES).astype(np.int64),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Scores:
    """The radar rule's forecasts made at each fill, against the truth (one row per fill).

    Attributes:
        pump: whose fill.
        learned: refills learned from before the forecast.
        covered: the stated band held the true empty time.
        low_end_h, high_end_h, true_empty_h: the band and the truth, h after the fill.
        factor_error: learned mean factor minus the true factor of that pump.
        factor_sd: the forecast's predictive sd.
        p_dry_booked: the forecast's P(empty before the booked visit).
        dry_booked: the reservoir was really empty by the booked visit.
        p_dry_visit: the forecast's P(empty before the visit as it happened (a missed
            visit later), had the clinic known its date).
        dry_visit: the reservoir was really empty by then.
    """

    pump: IntArray
    learned: IntArray
    covered: BoolArray
    low_end_h: FloatArray
    high_end_h: FloatArray
    true_empty_h: FloatArray
    factor_error: FloatArray
    factor_sd: FloatArray
    p_dry_booked: FloatArray
    dry_booked: BoolArray
    p_dry_visit: FloatArray
    dry_visit: BoolArray


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """One booking rule over the virtual clinic (per pump), and the forecast made at every
    fill scored against the truth (the forecast is made under every rule; only the radar
    rule books by it)."""

    policy: str
    pump_years: FloatArray
    visits: IntArray
    dry_visits: IntArray
    """Visits at which the reservoir was found to have run dry."""
    dry_days: FloatArray
    missed: IntArray
    scores: Scores


def _constant_profiles(pumps: ClinicPumps) -> Profiles:
    n = pumps.n
    return Profiles.of(
        pumps.capacity_ml, np.zeros(n), pumps.capacity_ml, pumps.low_ml, np.zeros(n),
        np.zeros(n), np.full(n, HOURS_PER_DAY), np.full((n, 1), HOURS_PER_DAY),
        pumps.rate_ml_per_h[:, None],
    )  # fmt: skip


def refill_findings(
    pumps: ClinicPumps, programmed: FloatArray, withdrawn: FloatArray, care: Care
) -> tuple[BoolArray, BoolArray]:
    """The refill verdict's two cases the forecast treats apart, on arrays (the rule of
    :func:`itb.domain.pump.refill.judge_discrepancy`): found empty (nothing withdrawn
    where drug was expected, or the pump already read empty), and more withdrawn than
    the rated band allows."""
    expected = np.maximum(pumps.capacity_ml - programmed, 0.0)
    empty = (withdrawn == 0.0) & ((expected > 0.0) | (programmed >= pumps.capacity_ml))
    allowed = np.maximum(pumps.band_pct / 100.0 * programmed, care.syringe_floor_ml)
    more = ~empty & (withdrawn - expected > allowed)
    return empty, more


def run_policy(
    pumps: ClinicPumps,
    policy: str,
    *,
    rules: ForecastRules,
    care: Care,
    horizon_days: float,
) -> PolicyResult:
    """Follow every pump for ``horizon_days`` with visits booked by ``policy``."""
    if policy not in POLICIES:
        raise ValueError(policy)
    n, k_max = pumps.n, pumps.interval_noise.shape[1]
    horizon_h = horizon_days * HOURS_PER_DAY
    margin_h = care.margin_days * HOURS_PER_DAY
    stability_h = care.stability_days * HOURS_PER_DAY
    profiles = _constant_profiles(pumps)
    beliefs = Beliefs(np.full(n, rules.prior_mean.value), np.full(n, rules.prior_sd.value**2))
    quantiles = rules.band_quantiles
    t = np.zeros(n)
    visits = np.zeros(n, dtype=np.int64)
    dry_visits = np.zeros(n, dtype=np.int64)
    missed = np.zeros(n, dtype=np.int64)
    dry_days = np.zeros(n)
    learned = np.zeros(n, dtype=np.int64)
    rows: dict[str, list[NDArray[np.generic]]] = {name: [] for name in Scores.__dataclass_fields__}
    alarm_h = (pumps.capacity_ml - pumps.low_ml) / pumps.rate_ml_per_h
    earliest_dry_h = pumps.capacity_ml / ((1.0 + pumps.band_pct / 100.0) * pumps.rate_ml_per_h)
    for k in range(k_max):
        active = t < horizon_h
        if not active.any():
            break
        f_k = pumps.factor + pumps.interval_noise[:, k]
        true_empty_h = pumps.capacity_ml / (f_k * pumps.rate_ml_per_h)
        times = forecast(
            profiles, beliefs, interval_sd=rules.interval_sd.value, by_h=np.zeros(n),
            probabilities=quantiles, advise_probability=rules.advise_dry_probability.value,
        )  # fmt: skip
        if policy == "alarm":
            booked = alarm_h - margin_h
        elif policy == "band":
            booked = np.minimum(alarm_h - margin_h, earliest_dry_h - HOURS_PER_DAY)
        else:
            booked = np.minimum(times.advise_h, alarm_h) - margin_h
        booked = np.clip(booked, HOURS_PER_DAY, stability_h)
        visit = booked + pumps.misses[:, k] * care.missed_delay_days * HOURS_PER_DAY
        # every interval that starts within the horizon is followed to its visit
        counted = active
        at_booked = forecast(
            profiles, beliefs, interval_sd=rules.interval_sd.value, by_h=booked,
            probabilities=(0.5,), advise_probability=0.5,
        )  # fmt: skip
        at_visit = forecast(
            profiles, beliefs, interval_sd=rules.interval_sd.value, by_h=visit,
            probabilities=(0.5,), advise_probability=0.5,
        )  # fmt: skip
        sd = beliefs.predictive_sd(rules.interval_sd.value)
        for name, value in (
            ("pump", np.flatnonzero(counted)),
            ("learned", learned[counted]),
            ("covered", ((times.empty_h[:, 0] <= true_empty_h)
                         & (true_empty_h <= times.empty_h[:, 2]))[counted]),
            ("low_end_h", times.empty_h[counted, 0]),
            ("high_end_h", times.empty_h[counted, 2]),
            ("true_empty_h", true_empty_h[counted]),
            ("factor_error", (beliefs.mean - pumps.factor)[counted]),
            ("factor_sd", sd[counted]),
            ("p_dry_booked", at_booked.p_dry[counted]),
            ("dry_booked", (true_empty_h <= booked)[counted]),
            ("p_dry_visit", at_visit.p_dry[counted]),
            ("dry_visit", (true_empty_h <= visit)[counted]),
        ):  # fmt: skip
            rows[name].append(np.asarray(value))
        programmed = pumps.rate_ml_per_h * visit
        residual = np.maximum(pumps.capacity_ml - f_k * programmed, 0.0)
        withdrawn = np.where(
            residual > 0.0, np.maximum(residual + pumps.reading_noise_ml[:, k], 0.0), 0.0
        )
        dry = counted & (true_empty_h < visit)
        visits += counted
        missed += np.where(counted, pumps.misses[:, k], 0)
        dry_visits += dry
        dry_days += np.where(dry, (visit - true_empty_h) / HOURS_PER_DAY, 0.0)
        empty, more = refill_findings(pumps, programmed, withdrawn, care)
        learn_now = counted & ~more
        idx = np.flatnonzero(learn_now)
        updated = learn(
            idx.size,
            prior_mean=beliefs.mean[idx],
            prior_sd=np.sqrt(beliefs.var[idx]),
            pump=np.arange(idx.size, dtype=np.int64),
            programmed_ml=programmed[idx],
            used_ml=pumps.capacity_ml[idx] - withdrawn[idx],
            found_empty=empty[idx],
            reading_sd_ml=rules.reading_sd_ml.value,
            interval_sd=rules.interval_sd.value,
        )
        beliefs.mean[idx] = updated.mean
        beliefs.var[idx] = updated.var
        learned += learn_now
        t = np.where(active, t + visit, t)
    pump_years = t / (HOURS_PER_DAY * 365.25)
    joined: dict[str, Any] = {
        name: np.concatenate(v) if v else np.zeros(0) for name, v in rows.items()
    }
    scores = Scores(**joined)
    return PolicyResult(policy, pump_years, visits, dry_visits, dry_days, missed, scores)


# ------------------------------------------------------------------ summaries


_PER_100_YEARS = 100.0


def _rate_per_100(events: NDArray[np.generic], years: FloatArray) -> float:
    return float(_PER_100_YEARS * events.sum() / years.sum())


def _bootstrap_rates(r: PolicyResult, idx: IntArray) -> FloatArray:
    return np.asarray(
        _PER_100_YEARS * r.dry_visits[idx].sum(1) / r.pump_years[idx].sum(1), dtype=np.float64
    )


def bootstrap_rates(
    rng: np.random.Generator,
    results: Sequence[PolicyResult],
    *,
    resamples: int,
    chunk: int = 100,
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Dry visits per 100 pump-years under each rule with a 95 % bootstrap interval, and
    each later rule's rate minus the first's (paired: each resample keeps a pump's courses
    under every rule)."""
    n = results[0].visits.size
    draws: list[list[FloatArray]] = [[] for _ in results]
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        for k, r in enumerate(results):
            draws[k].append(_bootstrap_rates(r, idx))
    rates = [np.concatenate(d) for d in draws]

    def est(values: FloatArray, point: float) -> dict[str, float]:
        lo, hi = np.quantile(values, [0.025, 0.975])
        return {"estimate": point, "low": float(lo), "high": float(hi), "resamples": resamples}

    points = [_rate_per_100(r.dry_visits, r.pump_years) for r in results]
    each = [est(v, p) for v, p in zip(rates, points, strict=True)]
    minus_first = [
        est(v - rates[0], p - points[0]) for v, p in zip(rates[1:], points[1:], strict=True)
    ]
    return each, minus_first


def paired_ever_dry_difference(
    rng: np.random.Generator,
    a: PolicyResult,
    b: PolicyResult,
    *,
    resamples: int,
    chunk: int = 100,
) -> dict[str, float]:
    """The share of pumps that ran dry at least once under ``a`` minus under ``b``, with a
    95 % paired bootstrap interval over pumps."""
    da = (a.dry_visits > 0).astype(np.float64)
    db = (b.dry_visits > 0).astype(np.float64)
    d = da - db
    n = d.size
    means = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        means.append(d[idx].mean(1))
    lo, hi = np.quantile(np.concatenate(means), [0.025, 0.975])
    return {
        "estimate": float(d.mean()),
        "low": float(lo),
        "high": float(hi),
        "resamples": resamples,
    }


def policy_summary(r: PolicyResult) -> dict[str, float | int]:
    """One booking rule's outcomes over the clinic."""
    years = float(r.pump_years.sum())
    return {
        "pump_years": years,
        "visits": int(r.visits.sum()),
        "visits_per_pump_year": float(r.visits.sum() / years),
        "dry_visits": int(r.dry_visits.sum()),
        "dry_per_100_pump_years": _rate_per_100(r.dry_visits, r.pump_years),
        "pumps_ever_dry": int((r.dry_visits > 0).sum()),
        "dry_days_per_100_pump_years": float(_PER_100_YEARS * r.dry_days.sum() / years),
        "missed_visits": int(r.missed.sum()),
    }


LEARNED_GROUPS: tuple[tuple[int, int | None], ...] = (
    (0, 0),
    (1, 1),
    (2, 2),
    (3, 4),
    (5, 9),
    (10, None),
)
"""Groups of refills learned from, for the calibration by experience."""


def _group(learned: IntArray, lo: int, hi: int | None) -> BoolArray:
    return np.asarray((learned >= lo) & (learned <= (hi if hi is not None else np.inf)))


def calibration(scores: Scores, *, reliability_bins: Sequence[float]) -> dict[str, object]:
    """How the forecasts fared against the truth: the band's coverage and the learned
    factor's error by refills learned; P(dry) at the visits as they happened against how
    often the reservoir was really empty then (the reliability table); P(dry) at the
    booked visits, summed, against the count."""
    by_learned = []
    for lo, hi in LEARNED_GROUPS:
        g = _group(scores.learned, lo, hi)
        if not g.any():
            continue
        err = np.abs(scores.factor_error[g])
        by_learned.append(
            {
                "learned": f"{lo}" if hi == lo else (f"{lo}+" if hi is None else f"{lo}-{hi}"),
                "forecasts": int(g.sum()),
                "covered": int(scores.covered[g].sum()),
                "median_abs_factor_error": float(np.median(err)),
                "p90_abs_factor_error": float(np.quantile(err, 0.9)),
                "median_predictive_sd": float(np.median(scores.factor_sd[g])),
            }
        )
    edges = np.asarray(reliability_bins)
    p, dry = scores.p_dry_visit, scores.dry_visit
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, edges.size - 2)
    reliability = []
    for b in range(edges.size - 1):
        g = which == b
        if not g.any():
            continue
        reliability.append(
            {
                "p_from": float(edges[b]),
                "p_to": float(edges[b + 1]),
                "forecasts": int(g.sum()),
                "mean_predicted": float(p[g].mean()),
                "dry": int(dry[g].sum()),
            }
        )
    return {
        "forecasts": int(scores.covered.size),
        "covered": int(scores.covered.sum()),
        "by_learned": by_learned,
        "reliability": reliability,
        "expected_dry_booked": float(scores.p_dry_booked.sum()),
        "dry_booked": int(scores.dry_booked.sum()),
        "expected_dry_visit": float(p.sum()),
        "dry_visit": int(dry.sum()),
    }


_RELIABILITY_BINS = (0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0)
"""P(dry before the booked visit) groups of the reliability table."""


def run_trial(
    presets: Sequence[PumpPreset],
    strengths_by_kind: Mapping[str, Sequence[float]],
    *,
    rules: ForecastRules,
    care: Care,
    dose_median_mcg_per_day: float,
    dose_log_sd: float,
    min_interval_days: float,
    pumps: int,
    years: float,
    seed: int,
    resamples: int,
    misspecified_interval_sd: float | None,
    misspecified_spread_sd: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The virtual clinic under every booking rule: the JSON-ready summary (inputs,
    outcomes per rule, the trial's effect with its interval, the calibration, and the
    calibration under a misspecified truth when asked) and the arrays its plots need."""
    median, log_sd = dose_median_mcg_per_day, dose_log_sd
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(presets), pumps)
    dose = median * np.exp(log_sd * rng.standard_normal(pumps))
    chosen = [presets[int(i)] for i in which]
    capacity = np.array([p.reservoir_ml for p in chosen])
    low = np.array([p.low_reservoir_alarm_default_ml for p in chosen])
    band = np.array([p.accuracy_band_pct for p in chosen])
    conc = np.empty(pumps)
    min_interval = min_interval_days
    for i, (p, d) in enumerate(zip(chosen, dose, strict=True)):
        strengths = strengths_by_kind[p.kind.value]
        stronger = choose_concentration(
            dose_mcg_per_day=float(d), concentration_mcg_per_ml=strengths[0],
            strengths_mcg_per_ml=strengths, usable_ml=p.reservoir_ml - p.low_reservoir_alarm_default_ml,
            margin_days=care.margin_days, min_interval_days=min_interval,
        )  # fmt: skip
        conc[i] = strengths[0] if stronger is None else stronger
    rate = dose / conc / HOURS_PER_DAY
    intervals = math.ceil(years * 365.25 / 7.0) + 2  # visits at least a week apart
    assumed = Truth(
        rules.prior_mean.value, rules.prior_sd.value, rules.interval_sd.value,
        rules.reading_sd_ml.value,
    )  # fmt: skip

    def clinic(truth: Truth, stream: int) -> ClinicPumps:
        return draw_pumps(
            np.random.default_rng([seed, stream]), n=pumps, intervals=intervals,
            preset=[presets[int(i)].key for i in which], capacity_ml=capacity, low_ml=low,
            band_pct=band, rate_ml_per_h=rate, truth=truth, care=care,
        )  # fmt: skip

    horizon = years * 365.25
    the_clinic = clinic(assumed, 1)
    results = {
        p: run_policy(the_clinic, p, rules=rules, care=care, horizon_days=horizon) for p in POLICIES
    }
    radar = results["radar"]
    ci_by_policy: dict[str, dict[str, float]] = {}
    ordered = [radar, results["alarm"], results["band"]]
    each, (alarm_minus_radar, band_minus_radar) = bootstrap_rates(
        np.random.default_rng([seed, 2]), ordered, resamples=resamples
    )
    for r, ci in zip(ordered, each, strict=True):
        ci_by_policy[r.policy] = ci
    summary: dict[str, Any] = {
        "pumps": pumps,
        "years": years,
        "seed": seed,
        "presets": [p.key for p in presets],
        "dose_median_mcg_per_day": float(np.median(dose)),
        "concentrations_mcg_per_ml": {
            f"{c:g}": int((conc == c).sum()) for c in sorted(set(conc.tolist()))
        },
        "care": {
            "margin_days": care.margin_days,
            "stability_days": care.stability_days,
            "missed_probability": care.missed_probability,
            "missed_delay_days": care.missed_delay_days,
        },
        "truth": {
            "spread_mean": assumed.spread_mean,
            "spread_sd": assumed.spread_sd,
            "interval_sd": assumed.interval_sd,
            "reading_sd_ml": assumed.reading_sd_ml,
        },
        "band_probability": rules.band_probability.value,
        "advice_dry_probability": rules.advise_dry_probability.value,
        "policies": {
            p: {**policy_summary(r), "dry_per_100_pump_years_ci": ci_by_policy[p]}
            for p, r in results.items()
        },
        "effect": {
            "alarm_minus_radar_dry_per_100_pump_years": alarm_minus_radar,
            "band_minus_radar_dry_per_100_pump_years": band_minus_radar,
            "alarm_minus_radar_share_of_pumps_ever_dry": paired_ever_dry_difference(
                np.random.default_rng([seed, 4]), results["alarm"], radar, resamples=resamples
            ),
        },
        "calibration": calibration(radar.scores, reliability_bins=_RELIABILITY_BINS),
        "calibration_alarm_visits": calibration(
            results["alarm"].scores, reliability_bins=_RELIABILITY_BINS
        ),
    }
    if misspecified_interval_sd is not None or misspecified_spread_sd is not None:
        other = Truth(
            assumed.spread_mean,
            misspecified_spread_sd if misspecified_spread_sd is not None else assumed.spread_sd,
            misspecified_interval_sd
            if misspecified_interval_sd is not None
            else assumed.interval_sd,
            assumed.reading_sd_ml,
        )
        off = run_policy(clinic(other, 3), "radar", rules=rules, care=care, horizon_days=horizon)
        summary["misspecified"] = {
            "truth": {"spread_sd": other.spread_sd, "interval_sd": other.interval_sd},
            "calibration": calibration(off.scores, reliability_bins=_RELIABILITY_BINS),
            "radar": policy_summary(off),
        }
    s = radar.scores
    # the example: of the first pumps, the one closest to 1.5 sd above the mean factor (a
    # pump delivering more than programmed, as the radar is there to catch)
    aim = rules.prior_mean.value + 1.5 * rules.prior_sd.value
    first = int(np.argmin(np.abs(the_clinic.factor[:1000] - aim)))
    mine = s.pump == first
    plots = {
        "example": {
            "pump": first,
            "preset": the_clinic.preset[first],
            "true_factor": float(the_clinic.factor[first]),
            "learned": s.learned[mine].tolist(),
            "learned_mean": (s.factor_error[mine] + the_clinic.factor[first]).tolist(),
            "predictive_sd": s.factor_sd[mine].tolist(),
        },
    }
    return summary, plots
